#!/usr/bin/env python3
"""Checks DES's monitoring artefacts: the alert rules, their unit tests, the PrometheusRule, the
Grafana dashboards, and that every metric they use is one the workers export.

    scripts/check-monitoring.py rules
        promtool check rules and promtool test rules on deploy/prometheus/; the PrometheusRule
        (deploy/kubernetes/base/monitoring/prometheusrule.yaml) holds exactly the plain file's
        groups; every alert has a severity label, summary, description and runbook_url
        annotations, and a unit test where it fires and one where it does not.
    scripts/check-monitoring.py dashboards
        every panel query of deploy/grafana/*.json parses (written as recording rules, Grafana
        variables substituted, and given to promtool check rules); the expected panels are there
        (the marker's seven in order); the data source is the ${datasource} variable.
    scripts/check-monitoring.py metrics --scrape FILE [--scrape FILE ...] [--list]
        every metric name an alert or a panel uses is in one of the scrapes (Prometheus text
        format, as /metrics serves it). `up` and kube_* (kube-state-metrics) are external: listed,
        and allowed only in a "Pod Count" panel. --list prints every name used and where.
    scripts/check-monitoring.py all --scrape FILE [--scrape FILE ...]
        the three above.
    scripts/check-monitoring.py prometheusrule
        writes the PrometheusRule from the plain rules file (run it after editing the rules).
    scripts/check-monitoring.py selftest
        tests the metric name extraction of this script (`all` runs it too).

promtool is $PROMTOOL, or `promtool` on PATH (Debian and Ubuntu: the `prometheus` package).
Needs Python 3 and PyYAML. Exit status: 0 all checks passed, 1 a check failed, 2 a usage error
or a missing tool.
"""

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("check-monitoring: PyYAML is needed (pip install pyyaml, or apt-get install python3-yaml)\n")
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
RULES = Path("deploy/prometheus/des-alerts.yaml")
RULE_TESTS = Path("deploy/prometheus/des-alerts.test.yaml")
PROMETHEUS_RULE = Path("deploy/kubernetes/base/monitoring/prometheusrule.yaml")
DASHBOARDS = Path("deploy/grafana")
RUNBOOK_DOC = Path("docs/deploy.md")
RUNBOOK_BASE = "docs/deploy.md#"

SEVERITIES = ("critical", "warning", "info")
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")

# The panels each dashboard must have. The marker's are the original design's, in this order
# and no others; the other dashboards may have more.
MARKER_PANELS = [
    "Processing Rate",
    "Batch Duration",
    "Error Rate by Type",
    "Retry Attempts",
    "DLQ Size",
    "Resource Usage",
    "Pod Count",
]
EXPECTED_PANELS = {
    "marker.json": MARKER_PANELS,
    "packer.json": [
        "Files Packed", "Bytes Packed", "Containers Uploaded", "Bytes Uploaded", "Claim Latency",
        "Finalize Latency", "Leases Held", "Leases Lost", "Fencing Rejections", "Open Containers",
        "Catalog Rows by Source and Status", "Oldest Pending Row Age", "Errors by Type", "Storage Errors",
    ],
    "read-path.json": [
        "Requests by Route and Status", "5xx Ratio (/files)", "Latency (/files)", "Requests in Flight",
        "Connections Open", "Connections Closed by Reason", "Index Cache Hit Ratio", "Storage Requests",
        "Read Checksum Failures",
    ],
    "lifecycle.json": [
        "Bodies Retired", "Bytes Retired", "Retire Skipped by Reason", "Files Expired",
        "Containers Retired by Compaction", "Compaction Bytes", "Objects Deleted", "Relay Event Lag",
        "Events Published by Kind", "Files Seen", "Scan Rows", "Scan Duration", "Scan Parts Held",
    ],
}
ORDERED_EXACTLY = {"marker.json"}

# Metrics DES does not export. Only these are external, and only a "Pod Count" panel may use them.
EXTERNAL_NAMES = {"up"}
EXTERNAL_PREFIXES = ("kube_",)
EXTERNAL_PANEL = "Pod Count"

# What Grafana's built-in variables become for the checks.
BUILTIN_VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__interval_ms": "60000",
    "__range_ms": "3600000",
    "__range_s": "3600",
}


class Failure(Exception):
    """A check failed (exit 1)."""


class UsageError(Exception):
    """A usage error or a missing tool (exit 2)."""


def load_yaml(path):
    full = ROOT / path
    try:
        with open(full, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise Failure(f"{path}: no such file")
    except yaml.YAMLError as e:
        raise Failure(f"{path}: not valid YAML: {e}")


def promtool():
    given = os.environ.get("PROMTOOL")
    if given:
        found = shutil.which(given) or (given if os.access(given, os.X_OK) else None)
        if not found:
            raise UsageError(f"PROMTOOL={given} is not an executable")
        return found
    found = shutil.which("promtool")
    if not found:
        raise UsageError(
            "promtool not found: install it (Debian/Ubuntu: apt-get install prometheus; or a Prometheus "
            "release tarball) or set PROMTOOL to its path"
        )
    return found


def run_promtool(args, label):
    """Runs promtool with `args` in the repository; returns its output, raises Failure on a non-zero exit."""
    cmd = [promtool()] + args
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    out = tidy(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise Failure(f"{label} failed ({' '.join(['promtool'] + args)}):\n{indent(out)}")
    return out


def tidy(text):
    """promtool's output without blank lines and without a line repeated right after itself."""
    lines = []
    for line in text.splitlines():
        if line.strip() and (not lines or lines[-1] != line.rstrip()):
            lines.append(line.rstrip())
    return "\n".join(lines)


def indent(text, by="    "):
    return "\n".join(by + line if line else line for line in text.splitlines())


def say(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------- rules


def alerts_of(groups):
    """(group name, rule) of every alerting rule."""
    for g in groups or []:
        for r in g.get("rules") or []:
            if "alert" in r:
                yield g.get("name"), r


def github_anchors(markdown):
    """The anchors GitHub makes for a Markdown file's headings, and explicit <a id/name=...>."""
    anchors = set()
    seen = {}
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"<[^>]+>", "", m.group(1))
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
            slug = re.sub(r"[^\w\- ]", "", text.lower().replace("`", "")).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
        for a in re.finditer(r"<a\s+(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", line):
            anchors.add(a.group(1))
    return anchors


def check_rules():
    problems = []
    plain = load_yaml(RULES)
    if not isinstance(plain, dict) or not isinstance(plain.get("groups"), list):
        raise Failure(f"{RULES}: expected a mapping with a list `groups`")

    say(f"rules: promtool check rules {RULES}")
    try:
        run_promtool(["check", "rules", str(RULES)], "promtool check rules")
        say(f"rules: promtool test rules {RULE_TESTS}")
        try:
            run_promtool(["test", "rules", str(RULE_TESTS)], "promtool test rules")
        except Failure as e:
            problems.append(str(e))
    except Failure as e:
        problems.append(str(e) + "\n(promtool test rules not run: the rules do not load)")

    # The PrometheusRule holds the same groups.
    pr = load_yaml(PROMETHEUS_RULE)
    if not isinstance(pr, dict) or pr.get("kind") != "PrometheusRule" or not str(pr.get("apiVersion", "")).startswith(
        "monitoring.coreos.com/"
    ):
        problems.append(f"{PROMETHEUS_RULE}: not a monitoring.coreos.com PrometheusRule")
    else:
        theirs = (pr.get("spec") or {}).get("groups")
        if theirs != plain["groups"]:
            diff = "\n".join(
                difflib.unified_diff(
                    dump_groups(plain["groups"]).splitlines(),
                    dump_groups(theirs).splitlines(),
                    fromfile=f"{RULES} groups",
                    tofile=f"{PROMETHEUS_RULE} spec.groups",
                    lineterm="",
                    n=2,
                )
            )
            problems.append(
                f"{PROMETHEUS_RULE}: spec.groups differs from the groups of {RULES} "
                f"(run scripts/check-monitoring.py prometheusrule):\n{indent(diff)}"
            )

    # Labels and annotations; unique names.
    names = {}
    unanchored = {}
    docs = ROOT / RUNBOOK_DOC
    anchors = github_anchors(docs.read_text(encoding="utf-8")) if docs.exists() else None
    for group, rule in alerts_of(plain["groups"]):
        name = rule["alert"]
        where = f"{RULES}: alert {name} (group {group})"
        if name in names:
            problems.append(f"{where}: the name is used twice (also in group {names[name]})")
        names[name] = group
        severity = (rule.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{where}: labels.severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        annotations = rule.get("annotations") or {}
        for key in REQUIRED_ANNOTATIONS:
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{where}: no annotations.{key}")
        url = str(annotations.get("runbook_url", ""))
        if url and not url.startswith(RUNBOOK_BASE):
            problems.append(f"{where}: runbook_url must be {RUNBOOK_BASE}<anchor>, got {url}")
        elif url and anchors is not None and url[len(RUNBOOK_BASE):] not in anchors:
            unanchored.setdefault(url[len(RUNBOOK_BASE):], []).append(name)
    for anchor, alerts in sorted(unanchored.items()):
        problems.append(f"{RUNBOOK_DOC}: no heading or <a id> makes the anchor #{anchor} "
                        f"(runbook_url of {', '.join(alerts)})")
    if not names:
        problems.append(f"{RULES}: no alerting rules")
    if anchors is None:
        say(f"rules: note: {RUNBOOK_DOC} does not exist yet, runbook anchors not checked")

    # Every alert is tested firing and not firing.
    tests = load_yaml(RULE_TESTS) or {}
    fires, quiet = set(), set()
    for t in tests.get("tests") or []:
        for a in t.get("alert_rule_test") or []:
            (fires if a.get("exp_alerts") else quiet).add(a.get("alertname"))
    for name in sorted(names):
        if name not in fires:
            problems.append(f"{RULE_TESTS}: no test where {name} fires (an alert_rule_test with exp_alerts)")
        if name not in quiet:
            problems.append(f"{RULE_TESTS}: no test where {name} does not fire (exp_alerts: [])")
    for name in sorted((fires | quiet) - set(names)):
        problems.append(f"{RULE_TESTS}: tests alert {name}, which {RULES} does not define")

    if problems:
        raise Failure("\n".join(problems))
    say(f"rules: ok ({len(names)} alerts, each tested firing and not firing; PrometheusRule in sync)")


# ----------------------------------------------------------------------------- PrometheusRule


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)  # lists indented under their key


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _no_aliases(self, data):
    return True


_Dumper.ignore_aliases = _no_aliases


def dump_groups(groups):
    return yaml.dump(groups, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def write_prometheus_rule():
    plain = load_yaml(RULES)
    if not isinstance(plain, dict) or not isinstance(plain.get("groups"), list):
        raise Failure(f"{RULES}: expected a mapping with a list `groups`")
    metadata = {
        "name": "des-alerts",
        "labels": {
            "app.kubernetes.io/name": "des",
            "app.kubernetes.io/component": "monitoring",
            "app.kubernetes.io/part-of": "des",
        },
    }
    target = ROOT / PROMETHEUS_RULE
    if target.exists():  # keep metadata edited by hand (labels the Prometheus's ruleSelector wants)
        try:
            old = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
            if isinstance(old.get("metadata"), dict):
                metadata = old["metadata"]
        except yaml.YAMLError:
            pass
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": plain["groups"]},
    }
    header = (
        "# The DES alerts for the Prometheus Operator: spec.groups is exactly the groups of\n"
        f"# {RULES}, written by `scripts/check-monitoring.py prometheusrule`.\n"
        "# Edit that file and run the script again; `scripts/check-monitoring.py rules` fails when\n"
        "# the two differ. metadata is kept when the script runs again: add the labels your\n"
        "# Prometheus's ruleSelector asks for here or in an overlay.\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True),
                      encoding="utf-8")
    say(f"wrote {PROMETHEUS_RULE}")


# --------------------------------------------------------------------------------- dashboards


def dashboard_files():
    files = sorted((ROOT / DASHBOARDS).glob("*.json"))
    if not files:
        raise Failure(f"{DASHBOARDS}: no dashboards (*.json)")
    return files


def walk_panels(panels):
    """Every panel, rows' nested panels included, in order."""
    for p in panels or []:
        yield p
        if p.get("panels"):
            yield from walk_panels(p["panels"])


def content_panels(board):
    """(index from 1, panel) of every panel that is not a row, in dashboard order."""
    return list(enumerate((p for p in walk_panels(board.get("panels")) if p.get("type") != "row"), start=1))


# $name, ${name}, ${name:format} and [[name]]; not $1 (a label_replace replacement).
VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::[^}]*)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]")


def substitute(expr):
    """The expression with Grafana's variables replaced: intervals by durations, the others by .*"""

    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return BUILTIN_VARIABLES.get(name, ".*")

    return VARIABLE.sub(one, expr)


def variables_used(expr):
    return {m.group(1) or m.group(2) or m.group(3) for m in VARIABLE.finditer(expr)}


def panel_queries(path, board):
    """(where, record name, panel, expression as written) of every Prometheus query of a dashboard."""
    stem = re.sub(r"[^a-zA-Z0-9_]", "_", path.stem)
    out = []
    for index, panel in content_panels(board):
        for t in panel.get("targets") or []:
            expr = t.get("expr")
            if expr is None:
                continue
            ref = re.sub(r"[^a-zA-Z0-9_]", "_", str(t.get("refId", "X")))
            where = f"{DASHBOARDS}/{path.name}: panel {index} \"{panel.get('title', '')}\" query {t.get('refId')}"
            out.append((where, f"dashboard:{stem}:{index}:{ref}", panel, expr))
    return out


def is_datasource_variable(ds):
    if isinstance(ds, str):
        return ds in ("${datasource}", "$datasource")
    if isinstance(ds, dict):
        return ds.get("uid") in ("${datasource}", "$datasource")
    return False


def load_dashboard(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise Failure(f"{DASHBOARDS}/{path.name}: not valid JSON: {e}")


def check_dashboards():
    problems = []
    uids = {}
    groups = []
    where_of = {}
    for expected in sorted(EXPECTED_PANELS):
        if not (ROOT / DASHBOARDS / expected).exists():
            problems.append(f"{DASHBOARDS}/{expected}: no such dashboard")
    for path in dashboard_files():
        name = f"{DASHBOARDS}/{path.name}"
        board = load_dashboard(path)
        uid = board.get("uid")
        if not uid:
            problems.append(f"{name}: no uid")
        elif uid in uids:
            problems.append(f"{name}: uid {uid} is also the uid of {uids[uid]}")
        uids[uid] = name
        if board.get("id") is not None:
            problems.append(f"{name}: id must be null or absent (Grafana gives it), got {board.get('id')}")
        if not isinstance(board.get("schemaVersion"), int):
            problems.append(f"{name}: no schemaVersion")
        if board.get("__inputs") or board.get("__requires"):
            problems.append(f"{name}: has __inputs/__requires (an 'export for sharing'): use the ${{datasource}} variable instead")
        variables = {v.get("name"): v for v in (board.get("templating") or {}).get("list") or []}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            problems.append(f"{name}: no templating variable `datasource` of type datasource, query prometheus")

        panels = content_panels(board)
        titles = [p.get("title") for _, p in panels]
        expected = EXPECTED_PANELS.get(path.name)
        if expected is not None:
            if path.name in ORDERED_EXACTLY:
                if titles != expected:
                    problems.append(f"{name}: the panels must be, in this order, {expected}; they are {titles}")
            else:
                missing = [t for t in expected if t not in titles]
                if missing:
                    problems.append(f"{name}: panels missing: {missing}")
        for index, p in panels:
            label = f"{name}: panel {index} \"{p.get('title', '')}\""
            if not is_datasource_variable(p.get("datasource")):
                problems.append(f"{label}: datasource must be the ${{datasource}} variable, got {p.get('datasource')!r}")
            targets = p.get("targets") or []
            if not targets:
                problems.append(f"{label}: no queries")
            for t in targets:
                if "datasource" in t and not is_datasource_variable(t["datasource"]):
                    problems.append(f"{label} query {t.get('refId')}: datasource must be the ${{datasource}} variable")
                if not str(t.get("expr", "")).strip():
                    problems.append(f"{label} query {t.get('refId')}: no expr")

        rules = []
        refs = set()
        for where, record, panel, expr in panel_queries(path, board):
            if record in refs:
                problems.append(f"{where}: refId used twice in the panel")
            refs.add(record)
            unknown = sorted(v for v in variables_used(expr) if v not in BUILTIN_VARIABLES and v not in variables)
            if unknown:
                problems.append(f"{where}: uses variables the dashboard does not define: {unknown}")
            rules.append({"record": record, "expr": substitute(expr)})
            where_of[record] = where
        if rules:
            groups.append({"name": f"dashboard:{path.stem}", "rules": rules})

    # Every query parses: promtool reads them as recording rules.
    with tempfile.TemporaryDirectory(prefix="des-dashboards-") as tmp:
        file = Path(tmp) / "dashboard-queries.yaml"
        file.write_text(yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=1000), encoding="utf-8")
        proc = subprocess.run([promtool(), "check", "rules", str(file)], capture_output=True, text=True)
        if proc.returncode != 0:
            out = tidy(proc.stdout + proc.stderr)
            lines = []
            for line in out.splitlines():
                m = re.search(r'"(dashboard:[^"]+)": (.*)$', line)
                if m and m.group(1) in where_of:
                    lines.append(f"{where_of[m.group(1)]}: {m.group(2)}")
            problems.append(
                "panel queries that do not parse (promtool check rules, Grafana variables substituted):\n"
                + indent("\n".join(lines) if lines else out)
            )
    if problems:
        raise Failure("\n".join(problems))
    count = sum(len(g["rules"]) for g in groups)
    say(f"dashboards: ok ({len(uids)} dashboards, {count} queries parse, expected panels present)")


# ------------------------------------------------------------------------------------ metrics

# Words of PromQL that are not metric names (matched without regard to case, as PromQL does).
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "atan2", "inf", "nan", "start", "end",
    "sum", "avg", "count", "min", "max", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "limitk", "limit_ratio",
}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
NUMBER = re.compile(
    r"(?:0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?"
)
SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)")


def skip_string(s, i):
    """The index after the string literal starting at s[i]."""
    quote = s[i]
    i += 1
    while i < len(s):
        if s[i] == "\\" and quote != "`":
            i += 2
            continue
        if s[i] == quote:
            return i + 1
        i += 1
    return i


def skip_bracketed(s, i, open_, close):
    """The index after the bracketed part starting at s[i] (strings inside skipped)."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = skip_string(s, i)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


MATCHER = re.compile(
    r"""([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)"""
)


def unquote(literal):
    """The value of a PromQL string literal."""
    body = literal[1:-1]
    if literal[0] == "`":
        return body
    return re.sub(r"\\(.)", r"\1", body)


def matchers_in(braces):
    """[(label, op, value)] of a {...} selector's text (the braces included)."""
    return [(m.group(1), m.group(2), unquote(m.group(3))) for m in MATCHER.finditer(braces)]


def selectors(expr):
    """(metric name, [(label, op, value)]) of each selector a PromQL expression makes."""
    out = []
    s = expr
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and s[i] != "\n":
                i += 1
        elif c in "\"'`":
            i = skip_string(s, i)
        elif c == "{":
            end = skip_bracketed(s, i, "{", "}")
            # {__name__="x"} selects x.
            matchers = matchers_in(s[i:end])
            for label, op, value in matchers:
                if label == "__name__" and op == "=":
                    out.append((value, [m for m in matchers if m[0] != "__name__"]))
            i = end
        elif c == "[":
            i = skip_bracketed(s, i, "[", "]")
        elif c.isdigit() or (c == "." and i + 1 < n and s[i + 1].isdigit()):
            m = NUMBER.match(s, i)
            i = m.end() if m and m.end() > i else i + 1
        elif c.isalpha() or c in "_:":
            m = IDENT.match(s, i)
            word = m.group(0)
            i = m.end()
            j = i
            while j < n and s[j].isspace():
                j += 1
            followed_by_paren = j < n and s[j] == "("
            lower = word.lower()
            if lower in LABEL_LISTS:
                if followed_by_paren:
                    i = skip_bracketed(s, j, "(", ")")
            elif lower in KEYWORDS or followed_by_paren:
                pass  # a keyword, an aggregation, or a function
            else:
                matchers = []
                if j < n and s[j] == "{":
                    end = skip_bracketed(s, j, "{", "}")
                    matchers = matchers_in(s[j:end])
                    i = end
                out.append((word, matchers))
        else:
            i += 1
    return out


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    return [name for name, _ in selectors(expr)]


SAMPLE_LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_scrape(path):
    """(names, types, labels) of a Prometheus text exposition: names from samples and # TYPE
    lines; labels[name][label] the set of values each label takes in name's samples."""
    names, types, labels = set(), {}, {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read scrape {path}: {e.strerror}")
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                names.add(parts[2])
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE_NAME.match(line)
        if m:
            name = m.group(1)
            names.add(name)
            seen = labels.setdefault(name, {})
            rest = line[m.end():]
            if rest.startswith("{"):
                for lm in SAMPLE_LABELS.finditer(rest[: skip_bracketed(rest, 0, "{", "}")]):
                    seen.setdefault(lm.group(1), set()).add(re.sub(r"\\(.)", r"\1", lm.group(2)))
    return names, types, labels


# Labels Prometheus adds when it scrapes (not in /metrics), and labels whose values are the
# user's or the traffic's (source names, HTTP statuses and methods): only that the metric has them is checked.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint", "node"}
OPEN_LABELS = {("", "source"), ("des_http_", "status"), ("des_http_", "method")}


def open_label(name, label):
    return any(name.startswith(prefix) and label == lab for prefix, lab in OPEN_LABELS)


def label_problems(name, sample_labels, matchers, where):
    """What is wrong with `matchers` of `name` against the labels its samples carry."""
    out = []
    for label, op, value in matchers:
        if label in TARGET_LABELS or label == "__name__":
            continue
        values = sample_labels.get(label)
        if values is None:
            out.append(f'{name}{{{label}{op}"{value}"}}: {name} has no label {label} in the scrape; used by {where}')
            continue
        if op in ("!=", "!~") or open_label(name, label):
            continue
        if op == "=" and value not in values:
            out.append(f'{name}{{{label}="{value}"}}: no series has {label}="{value}" (it takes {", ".join(sorted(values))}); used by {where}')
        elif op == "=~":
            try:
                pattern = re.compile(value)
            except re.error as e:
                out.append(f'{name}{{{label}=~"{value}"}}: not a regular expression ({e}); used by {where}')
                continue
            # A list of alternatives (a|b|c): each must be a value; else some value must match.
            if re.fullmatch(r"[A-Za-z0-9_./{}*-]+(\|[A-Za-z0-9_./{}*-]+)+", value) and not re.search(r"[.*+?]", value.replace("/**", "")):
                missing = [v for v in value.split("|") if v not in values]
                if missing:
                    out.append(f'{name}{{{label}=~"{value}"}}: no series has {label} {", ".join(missing)}; used by {where}')
            elif not any(pattern.fullmatch(v) for v in values):
                out.append(f'{name}{{{label}=~"{value}"}}: no value of {label} matches (it takes {", ".join(sorted(values))}); used by {where}')
    return out


def is_external(name):
    return name in EXTERNAL_NAMES or name.startswith(EXTERNAL_PREFIXES)


def usages():
    """(name, where, panel title or None, matchers) of every selector the alerts, their tests'
    input series and the dashboards use."""
    out = []
    plain = load_yaml(RULES)
    for g in (plain or {}).get("groups") or []:
        for r in g.get("rules") or []:
            kind = f"alert {r['alert']}" if "alert" in r else f"record {r.get('record')}"
            for name, matchers in selectors(str(r.get("expr", ""))):
                out.append((name, f"{RULES}: {kind}", None, matchers))
    tests = load_yaml(RULE_TESTS)
    for t in (tests or {}).get("tests") or []:
        for series in t.get("input_series") or []:
            for name, matchers in selectors(str(series.get("series", ""))):
                out.append((name, f"{RULE_TESTS}: input series {series.get('series')}", None, matchers))
    for path in dashboard_files():
        board = load_dashboard(path)
        for where, _record, panel, expr in panel_queries(path, board):
            for name, matchers in selectors(substitute(expr)):
                out.append((name, where, panel.get("title"), matchers))
        for v in (board.get("templating") or {}).get("list") or []:
            query = v.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if v.get("type") == "query" and isinstance(query, str):
                m = re.match(r"\s*(?:label_values|query_result)\s*\((.*)\)\s*$", query, re.S)
                if m:
                    inner = m.group(1)
                    if query.strip().startswith("label_values") and "," in inner:
                        inner = inner.rsplit(",", 1)[0]
                    for name, matchers in selectors(substitute(inner)):
                        out.append((name, f"{DASHBOARDS}/{path.name}: variable {v.get('name')}", None, matchers))
    return out


def check_metrics(scrapes, listing=False):
    if not scrapes:
        raise UsageError("metrics: give at least one --scrape FILE (the text of a worker's /metrics)")
    present, types, labels = set(), {}, {}
    for s in scrapes:
        names, t, l = parse_scrape(s)
        present |= names
        types.update(t)
        for name, by_label in l.items():
            for label, values in by_label.items():
                labels.setdefault(name, {}).setdefault(label, set()).update(values)

    def base_of(name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) in ("histogram", "summary"):
                return name[: -len(suffix)]
        return name

    used = usages()
    missing, external, misplaced, seen, wrong_labels = {}, {}, [], {}, []
    for name, where, title, matchers in used:
        seen.setdefault(name, []).append(where)
        if is_external(name):
            external.setdefault(name, []).append(where)
            if title != EXTERNAL_PANEL:
                misplaced.append(f"{name} (external) used outside a \"{EXTERNAL_PANEL}\" panel: {where}")
        elif name not in present and base_of(name) not in present:
            missing.setdefault(name, []).append(where)
        else:
            # The label values it selects must be ones DES writes (a typo, or a value renamed,
            # would make an alert that never fires and a panel that stays empty).
            wrong_labels += label_problems(name, labels.get(name, {}), matchers, where)

    if listing:
        say("metrics: names used (metric: where)")
        for name in sorted(seen):
            if is_external(name):
                mark = " [external]"
            elif name in missing:
                mark = " [MISSING]"
            elif base_of(name) != name:
                mark = f" [of the {types[base_of(name)]} {base_of(name)}]"
            else:
                mark = ""
            say(f"  {name}{mark}")
            for w in sorted(set(seen[name])):
                say(f"      {w}")
    if external:
        say("metrics: external (not exported by DES, allowed only in a \"Pod Count\" panel): "
            + ", ".join(sorted(external)))
    unused = sorted({base_of(n) for n in present if n.startswith("des_")} - {base_of(n) for n in seen})
    if unused:
        say("metrics: note: exported but used by no alert or panel: " + ", ".join(unused))
    problems = []
    for name in sorted(missing):
        places = sorted(set(missing[name]))
        problems.append(f"{name} is not in the scrape ({', '.join(map(str, scrapes))}); used by:\n"
                        + indent("\n".join(places)))
    if missing:
        problems.insert(0, f"{len(missing)} metric name(s) used but not in the scrape: {', '.join(sorted(missing))}")
    problems += misplaced
    problems += sorted(set(wrong_labels))
    if problems:
        raise Failure("\n".join(problems))
    exported = {base_of(n) for n in seen if not is_external(n)}
    checked = sum(1 for _, _, _, m in used if any(label not in TARGET_LABELS for label, _, _ in m))
    say(f"metrics: ok ({len(exported)} metrics used, all in the scrape; {len(external)} external; "
        f"the label values of {checked} selectors found)")


# The name extraction on the constructs it must handle; `selftest` runs them.
SELFTEST = [
    ('sum by (job) (rate(foo_total{a="b}", c=~"x[0-9]"}[5m] offset 1h))', ["foo_total"]),
    ("sum(rate(x[5m])) by (le) / on (instance) group_left(pod) y", ["x", "y"]),
    ('label_replace(up, "dst", "$1", "src", "(.*)")', ["up"]),
    ('count_values("version", build_info)', ["build_info"]),
    ("histogram_quantile(0.9, sum by (le) (rate(a_bucket[1h:5m])))", ["a_bucket"]),
    ('{__name__="foo", job="x"}', ["foo"]),
    ("foo @ start()", ["foo"]),
    ("1e3 * bar - 0x1F + .5 * 1h30m", ["bar"]),
    ("vector(0) or time() - baz offset -5m", ["baz"]),
    ("SUM BY (job) (qux)", ["qux"]),
    ("a and on() b unless ignoring (x) c", ["a", "b", "c"]),
    ("topk(5, d) > bool 3", ["d"]),
    ("f # a comment naming g\n+ h", ["f", "h"]),
    ("min_over_time(rate(g[5m])[30m:1m])", ["g"]),
    ("max without (instance) (h) and sum(i) without (x)", ["h", "i"]),
    ("j:recorded:rate5m{job='x'}", ["j:recorded:rate5m"]),
]


def selftest():
    bad = []
    for expr, want in SELFTEST:
        got = metric_names(expr)
        if got != want:
            bad.append(f"{expr!r}: expected {want}, got {got}")
    if (substitute('label_replace(rate(x{source=~"$source", r="${route:regex}"}[$__rate_interval]), "a", "$1", "b", "(.*)")')
            != 'label_replace(rate(x{source=~".*", r=".*"}[5m]), "a", "$1", "b", "(.*)")'):
        bad.append("variable substitution")
    got = selectors('sum(rate(a_total{x="1", y=~"b|c", z!="q\\"r"}[5m])) / b{w=`v`} + {__name__="c", w=`v`}')
    if got != [("a_total", [("x", "=", "1"), ("y", "=~", "b|c"), ("z", "!=", 'q"r')]), ("b", [("w", "=", "v")]), ("c", [("w", "=", "v")])]:
        bad.append(f"selectors: {got}")
    if bad:
        raise Failure("the metric name extraction is wrong:\n" + indent("\n".join(bad)))
    say(f"selftest: ok ({len(SELFTEST)} expressions)")


# --------------------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="check-monitoring.py",
        description="Checks DES's alert rules, dashboards and the metrics they use.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="promtool: $PROMTOOL or promtool on PATH (Debian: the prometheus package). "
        "Exit status: 0 ok, 1 a check failed, 2 usage error or missing tool.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("rules", help="promtool check/test rules, the PrometheusRule in sync, labels and annotations")
    sub.add_parser("dashboards", help="every panel query parses; the expected panels are there")
    m = sub.add_parser("metrics", help="every metric an alert or a panel uses is in the scrapes")
    m.add_argument("--scrape", action="append", default=[], metavar="FILE", help="a /metrics text (repeatable)")
    m.add_argument("--list", action="store_true", help="print every metric name used and where")
    a = sub.add_parser("all", help="rules, dashboards and metrics")
    a.add_argument("--scrape", action="append", default=[], metavar="FILE", help="a /metrics text (repeatable)")
    sub.add_parser("prometheusrule", help=f"write {PROMETHEUS_RULE} from {RULES}")
    sub.add_parser("selftest", help="test this script's PromQL metric name extraction")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_usage(sys.stderr)
        sys.stderr.write("check-monitoring.py: error: give a command: rules, dashboards, metrics, all, prometheusrule, selftest\n")
        return 2

    steps = {
        "rules": [("rules", check_rules)],
        "dashboards": [("dashboards", check_dashboards)],
        "metrics": [("metrics", lambda: check_metrics(args.scrape, args.list))],
        "all": [
            ("selftest", selftest),
            ("rules", check_rules),
            ("dashboards", check_dashboards),
            ("metrics", lambda: check_metrics(args.scrape)),
        ],
        "prometheusrule": [("prometheusrule", write_prometheus_rule)],
        "selftest": [("selftest", selftest)],
    }[args.command]
    if args.command == "all" and not args.scrape:
        sys.stderr.write("check-monitoring.py: error: all needs --scrape FILE (the text of a worker's /metrics)\n")
        return 2
    failed = []
    for name, step in steps:
        try:
            step()
        except UsageError as e:
            sys.stderr.write(f"check-monitoring: {e}\n")
            return 2
        except Failure as e:
            sys.stderr.write(f"check-monitoring: {name}: FAILED\n{indent(str(e), '  ')}\n")
            failed.append(name)
    if failed:
        sys.stderr.write(f"check-monitoring: failed: {', '.join(failed)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
