#!/usr/bin/env bash
# Benchmark (not a test): the filesystem source, beside the walkers users know, in one run.
#   1. Walk rate, warm, on a tree of N files of 1 KiB in N/100 directories: `fdfind` and `bfs`
#      naming every file, and each stat'ing every file (fd with a size filter, bfs -printf),
#      beside `des scan` passes over the unchanged tree (the walk, a stat of each file, and the
#      comparison with its catalog row: what a rescan is), and the walk of those passes alone
#      (from the scan's debug log; it runs while the catalog is read on the same cores).
#   2. End to end on that tree: des scan (first run: insert, make ready, hash) + des marker +
#      des packer, in files/s, beside `des pack` of the same tree; the packer runs twice on the
#      same marked catalog, in claim_mode row (the default) and lease.
#   3. A rescan of an unchanged tree of M files (default 1,000,000), seconds (goal: under 10 s).
#   scripts/bench-scan.sh [N] [M]      (defaults 100000 and 1000000; M=0 skips part 3)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
M="${2:-1000000}"
need=()
command -v fdfind >/dev/null || need+=(fd-find)
command -v bfs >/dev/null || need+=(bfs)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
. scripts/bench-lib.sh
bench_build des
WORK="$(mktemp -d -t des-bench-scan.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export DES_LOG_LEVEL=warning

# tree DIR COUNT : COUNT files of 1 KiB (each different) in COUNT/100 directories, 100 directories a level.
tree() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
blob = os.urandom(2048)
for i in range(n):
    if i % 100 == 0:
        d = os.path.join(root, "d%03d" % (i // 10000), "e%05d" % (i // 100))
        os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, "f%07d.txt" % i), os.O_WRONLY | os.O_CREAT, 0o644)
    s = i % 1024
    os.write(fd, blob[s:s + 1016] + b"%08d" % i)
    os.close(fd)
PY
}
config() {
  cat > "$1/des.yaml" <<YAML
sources:
  - name: tree
    connection: {type: filesystem, roots: [tree], min_age: 0}
storage: {type: local, root: des-data/archive}
packer: {work_dir: des-data/work}
YAML
  sed 's/^packer: {work_dir: des-data\/work}/packer: {work_dir: des-data\/work, claim_mode: lease}/' "$1/des.yaml" > "$1/des-lease.yaml"
}
now() { python3 -c "import time; print(time.monotonic())"; }
# best CMD... : the best wall time of three runs of CMD (output discarded).
best() {
  local b=999999 a t i
  for i in 1 2 3; do a=$(now); "$@" > /dev/null; t=$(python3 -c "print($(now) - $a)"); b=$(python3 -c "print(min($b, $t))"); done
  echo "$b"
}
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
rate() { python3 -c "print('%.0f' % ($1 / $2))"; }

echo "==> $N files of 1 KiB in $((N / 100)) directories"
mkdir -p "$WORK/a"
tree "$WORK/a/tree" "$N"
config "$WORK/a"
ENTRIES=$((N + N / 100 + N / 10000 + 1))

# 2. End to end first (on a cold catalog), then the warm walks over the same tree.
T0=$(now)
"$DES" scan -c "$WORK/a/des.yaml" --until-idle --json > "$WORK/scan.json"
T1=$(now)
"$DES" marker run -c "$WORK/a/des.yaml" --until-idle > /dev/null
T2=$(now)
cp -a "$WORK/a/des-data" "$WORK/marked"
"$DES" packer run -c "$WORK/a/des.yaml" --until-idle > /dev/null
T3=$(now)
SCAN=$(python3 -c "print($T1 - $T0)"); MARK=$(python3 -c "print($T2 - $T1)"); PACK=$(python3 -c "print($T3 - $T2)")
E2E=$(python3 -c "print($T3 - $T0)")
packed() { python3 -c "import sqlite3; print(sqlite3.connect('$WORK/a/des-data/metadata.sqlite').execute(\"select count(*) from des_fs_files where status='packed'\").fetchone()[0])"; }
PACKED=$(packed)
# The same marked catalog packed again with packer.claim_mode lease.
rm -rf "$WORK/a/des-data"; mv "$WORK/marked" "$WORK/a/des-data"
T4=$(now)
"$DES" packer run -c "$WORK/a/des-lease.yaml" --until-idle > /dev/null
T5=$(now)
PACKL=$(python3 -c "print($T5 - $T4)"); E2EL=$(python3 -c "print($SCAN + $MARK + $PACKL)")
PACKEDL=$(packed)
DESPACK=$(best "$DES" pack "$WORK/a/tree" -o "$WORK/pack.des" --force)

# 1. Walks, warm: five rounds, each tool once a round (on a noisy machine a tool measured three
# times in a row meets different weather than the next one), best of each.
once() { local a t; a=$(now); "$@" > /dev/null; python3 -c "print($(now) - $a)"; }
low() { python3 -c "print(min($1, $2))"; }
FD_NAMES=999; FD_STAT=999; BFS_NAMES=999; BFS_STAT=999; RESCAN=999
for round in 1 2 3 4 5; do
  FD_NAMES=$(low "$FD_NAMES" "$(once fdfind -uu -t f . "$WORK/a/tree")")
  FD_STAT=$(low "$FD_STAT" "$(once fdfind -uu -t f -S -1t . "$WORK/a/tree")")
  BFS_NAMES=$(low "$BFS_NAMES" "$(once bfs "$WORK/a/tree" -type f)")
  BFS_STAT=$(low "$BFS_STAT" "$(once bfs "$WORK/a/tree" -type f -printf '%s %T@ %C@ %i\n')")
  RESCAN=$(low "$RESCAN" "$(once "$DES" scan -c "$WORK/a/des.yaml" --until-idle)")
done
# The walk alone (what fd does: read the directories, stat the files), as the scan times it in its
# debug log, best of three: it runs while the catalog is read on the same two cores, so it is an
# upper bound of what the walk takes by itself.
walk_seconds() {
  local b=999999 i w
  for i in 1 2 3; do
    w=$(DES_LOG_LEVEL=debug "$DES" scan -c "$1" --until-idle 2>&1 | grep -o 'walk_seconds=[0-9.e-]*' | cut -d= -f2 | head -1)
    b=$(python3 -c "print(min($b, $w))")
  done
  echo "$b"
}
WALK=$(walk_seconds "$WORK/a/des.yaml")

printf '\n%-58s %9s %12s %12s %9s\n' "walk, warm ($N files, $ENTRIES entries)" "seconds" "names/s" "stat'd/s" "vs fd+stat"
printf '%-58s %9.3f %12s %12s %9s\n' "fdfind -uu -t f (names only)" "$FD_NAMES" "$(rate $ENTRIES $FD_NAMES)" "-" "-"
printf '%-58s %9.3f %12s %12s %9s\n' "bfs -type f (names only)" "$BFS_NAMES" "$(rate $ENTRIES $BFS_NAMES)" "-" "-"
printf '%-58s %9.3f %12s %12s %9s\n' "fdfind -uu -t f -S -1t (stats every file: the baseline)" "$FD_STAT" "$(rate $ENTRIES $FD_STAT)" "$(rate $N $FD_STAT)" "1.00"
printf '%-58s %9.3f %12s %12s %9s\n' "bfs -type f -printf size,mtime,ctime,inode" "$BFS_STAT" "$(rate $ENTRIES $BFS_STAT)" "$(rate $N $BFS_STAT)" "$(ratio $FD_STAT $BFS_STAT)"
printf '%-58s %9.3f %12s %12s %9s\n' "des scan's walk (walk, stat; the catalog read beside it)" "$WALK" "$(rate $ENTRIES $WALK)" "$(rate $N $WALK)" "$(ratio $FD_STAT $WALK)"
printf '%-58s %9.3f %12s %12s %9s\n' "des scan of the unchanged tree (walk, stat, compare)" "$RESCAN" "$(rate $ENTRIES $RESCAN)" "$(rate $N $RESCAN)" "$(ratio $FD_STAT $RESCAN)"

printf '\n%-58s %9s %12s %9s\n' "end to end ($N files, $PACKED packed)" "seconds" "files/s" "vs pack"
printf '%-58s %9.3f %12s %9s\n' "des pack DIR (the baseline, best of three)" "$DESPACK" "$(rate $N $DESPACK)" "1.00"
printf '%-58s %9.3f %12s %9s\n' "des scan (first: insert, ready, hash) + marker + packer" "$E2E" "$(rate $N $E2E)" "$(ratio $DESPACK $E2E)"
printf '%-58s %9.3f %12s\n' "  of which des scan --until-idle" "$SCAN" "$(rate $N $SCAN)"
printf '%-58s %9.3f %12s\n' "  of which des marker run --until-idle" "$MARK" "$(rate $N $MARK)"
printf '%-58s %9.3f %12s\n' "  of which des packer run --until-idle" "$PACK" "$(rate $N $PACK)"
printf '%-58s %9.3f %12s %9s\n' "the same, the packer with claim_mode: lease ($PACKEDL packed)" "$E2EL" "$(rate $N $E2EL)" "$(ratio $DESPACK $E2EL)"
printf '%-58s %9.3f %12s\n' "  of which des packer run --until-idle (lease)" "$PACKL" "$(rate $N $PACKL)"
python3 -c "import json; t=json.load(open('$WORK/scan.json')); print('first scan: inserted %d, ready %d, read %d' % (t['inserted'], t['ready'], t['read']))"
rm -rf "$WORK/a" "$WORK/pack.des"

if [ "$M" -gt 0 ]; then
  echo
  echo "==> rescan of $M unchanged files (making the tree and its catalog first)"
  mkdir -p "$WORK/b"
  tree "$WORK/b/tree" "$M"
  config "$WORK/b"
  A=$(now); "$DES" scan -c "$WORK/b/des.yaml" --until-idle > /dev/null; B=$(now)
  FIRSTM=$(python3 -c "print($B - $A)")
  RESCANM=999; FDM=999
  for round in 1 2 3; do
    RESCANM=$(low "$RESCANM" "$(once "$DES" scan -c "$WORK/b/des.yaml" --until-idle --json)")
    FDM=$(low "$FDM" "$(once fdfind -uu -t f -S -1t . "$WORK/b/tree")")
  done
  WALKM=$(walk_seconds "$WORK/b/des.yaml")
  printf '%-58s %9s %12s %9s\n' "pass ($M files)" "seconds" "files/s" "vs fd+stat"
  printf '%-58s %9.2f %12s\n' "des scan, first run (insert, ready, hash)" "$FIRSTM" "$(rate $M $FIRSTM)"
  printf '%-58s %9.2f %12s %9s   (goal: under 10 s)\n' "des scan of the unchanged tree (best of three)" "$RESCANM" "$(rate $M $RESCANM)" "$(ratio $FDM $RESCANM)"
  printf '%-58s %9.2f %12s %9s\n' "  of which its walk (walk, stat; the catalog read beside it)" "$WALKM" "$(rate $M $WALKM)" "$(ratio $FDM $WALKM)"
  printf '%-58s %9.2f %12s %9s\n' "fdfind -uu -t f -S -1t (stats every file; best of three)" "$FDM" "$(rate $M $FDM)" "1.00"
fi
