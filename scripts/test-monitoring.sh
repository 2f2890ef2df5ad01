#!/usr/bin/env bash
# The alerts and dashboards under deploy/ checked offline (make test runs this):
#   - promtool check rules and promtool test rules on deploy/prometheus (every alert fires and
#     resolves in its unit tests), the PrometheusRule in sync with the plain rules file, every
#     runbook link an anchor of docs/deploy.md;
#   - every Grafana panel expression parses (as a recording rule, with promtool).
# That every metric they name is on a running des's /metrics is checked by the Swift test
# MonitoringTests (it scrapes real workers and runs scripts/check-monitoring.py metrics).
# promtool comes from Debian's prometheus package, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null 2>&1; then
  echo "test-monitoring: installing promtool (Debian package prometheus)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package starts a Prometheus server; the checks need only its promtool.
  $SUDO systemctl stop prometheus >/dev/null 2>&1 || $SUDO service prometheus stop >/dev/null 2>&1 || true
fi
python3 -c "import yaml" 2>/dev/null || python3 -m pip install -q pyyaml 2>/dev/null || python3 -m pip install -q --break-system-packages pyyaml
python3 scripts/check-monitoring.py rules
python3 scripts/check-monitoring.py dashboards
