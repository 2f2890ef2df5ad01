#!/usr/bin/env bash
# Benchmark (not a test): des compact on the embedded default (SQLite, containers on local
# disk). N files of 4 KiB are packed, 40% of them deleted, and the containers compacted; its
# throughput (MB/s of live data rewritten: read, checked against sha256, written, uploaded,
# read back) is printed beside des pack of the same live files in the same run, with the
# storage requests each compacted container cost. Each side is the best of BENCH_RUNS (5) runs,
# both timed by the wall clock around the process;
# the compactor runs with its default concurrency (4 shards at once). Containers are of the
# packer's default limits (1 GiB, 100,000 files): one a shard here.
#   scripts/bench-compact.sh [FILES]      (default 40000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-40000}"
RUNS="${BENCH_RUNS:-5}"
. scripts/bench-lib.sh
bench_build des
WORK="$(mktemp -d -t des-bench-compact.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/des.yaml" <<YAML
sources:
  - name: catalog
    connection: {type: sqlite, database: catalog.sqlite}
    table: {name: files, columns: {id: id, s3_key: s3_key, size_bytes: size_bytes, status: des_status}}
    bodies: {type: local, root: bodies}
storage: {type: local, root: archive, prefix: des}
metadata: {connection: {type: sqlite, database: metadata.sqlite}}
packer: {work_dir: work, shard_bits: 2}
compaction: {grace: 0s, small_container_bytes: 0}
YAML
export DES_LOG_LEVEL=error
now() { date +%s.%N; }
echo "==> $N sample files of 4 KiB, named and packed"
"$DES" sample -c "$WORK/des.yaml" --files "$N" --size 4096 >/dev/null
"$DES" marker run -c "$WORK/des.yaml" --until-idle >/dev/null
"$DES" packer run -c "$WORK/des.yaml" --until-idle >/dev/null
echo "==> 40% of them deleted; the live bodies copied aside for des pack"
python3 - "$WORK" <<'PY'
import os, shutil, sqlite3, sys
work = sys.argv[1]
db = sqlite3.connect(os.path.join(work, "catalog.sqlite"))
rows = db.execute("SELECT id, des_name, s3_key FROM files ORDER BY id").fetchall()
with open(os.path.join(work, "doomed.txt"), "w") as f:
    for i, name, key in rows:
        if i % 5 < 2: f.write(name + "\n")
        else:
            dest = os.path.join(work, "live", key)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(os.path.join(work, "bodies", key), dest)
PY
xargs -a "$WORK/doomed.txt" -d '\n' -n 2000 "$DES" delete -c "$WORK/des.yaml" --reason bench >/dev/null
LIVE_BYTES=$(du -sb --apparent-size "$WORK/live" | cut -f1)

echo "==> des compact (grace 0s: the replaced containers are deleted in the same run), best of $RUNS"
# Each run starts from the same state: the containers and bodies hard-linked (compaction never
# rewrites a file in place), the SQLite databases copied.
copy_state() { mkdir -p "$2" && cp -al "$1/archive" "$1/bodies" "$2/" && cp "$1"/des.yaml "$1"/*.sqlite* "$2/"; }
copy_state "$WORK" "$WORK/snap"
OUT=""
for r in $(seq "$RUNS"); do
  rm -rf "$WORK/run" && copy_state "$WORK/snap" "$WORK/run"
  # Timed by the wall clock around the process, as des pack is below (start-up, planning and
  # the removal of the replaced objects included).
  t0=$(now); ONE="$("$DES" compact -c "$WORK/run/des.yaml" --until-idle --json)"; t1=$(now)
  OUT="$(python3 -c 'import json, sys
one = json.loads(sys.argv[1]); one["wall_seconds"] = float(sys.argv[3]) - float(sys.argv[4])
best = json.loads(sys.argv[2]) if sys.argv[2] else None
print(json.dumps(one if best is None or one["wall_seconds"] < best["wall_seconds"] else best))' "$ONE" "$OUT" "$t1" "$t0")"
done
"$DES" check -c "$WORK/run/des.yaml" >/dev/null
echo "==> des pack of the same live files, best of $RUNS"
best=""
for r in $(seq "$RUNS"); do
  t0=$(now); "$DES" pack "$WORK/live" -o "$WORK/live.des" --force >/dev/null; t1=$(now)
  t=$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')
  best=$(printf '%s\n%s\n' "$t" "$best" | grep -v '^$' | sort -g | head -1)
done
python3 - "$OUT" "$LIVE_BYTES" "$best" <<'PY'
import json, sys
r, live_bytes, pack_s = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
compact_mb = r["live_bytes"] / r["wall_seconds"] / 1e6
compacting_mb = r["live_bytes"] / r["seconds_compacting"] / 1e6
pack_mb = live_bytes / pack_s / 1e6
per = r["storage_requests_total"] / max(1, r["containers_retired"])
print()
print("%-52s %12s" % ("measure (embedded default, 4 KiB files)", "value"))
print("%-52s %12d" % ("containers compacted", r["containers_retired"]))
print("%-52s %12d" % ("live files rewritten", r["live_files"]))
print("%-52s %12d" % ("deleted files dropped", r["dropped_files"]))
print("%-52s %12.1f" % ("des pack of the live files, MB/s (baseline)", pack_mb))
print("%-52s %12.1f" % ("des compact, MB/s of live data (wall clock)", compact_mb))
print("%-52s %12.1f" % ("  of which its compacting phase alone, MB/s", compacting_mb))
print("%-52s %11.2fx" % ("compact / pack (goal >= 0.8)", compact_mb / pack_mb))
print("%-52s %12.1f" % ("storage requests per compacted container", per))
print("%-52s %12s" % ("  by kind", " ".join("%s=%d" % kv for kv in sorted(r["storage_requests"].items()))))
PY
