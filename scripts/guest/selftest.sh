#!/usr/bin/env bash
# End-to-end check of the guest harness against the peer daemon Debian ships (QEMU 7.2's C
# virtiofsd): the guest reads a host-made file and writes one that the host then checks.
# usage: selftest.sh [TIMEOUT_SECONDS=120]      (exit 0 and one "selftest: ok" line on success)
# Env: VFSD_SELFTEST_DEBUG=1 runs virtiofsd with -d and keeps its log; VFSD_* of run-guest.sh apply.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TIMEOUT="${1:-120}"
VIRTIOFSD=/usr/lib/qemu/virtiofsd

"$HERE/setup.sh"
[[ -x "$VIRTIOFSD" ]] || { echo "selftest: $VIRTIOFSD missing (package qemu-system-common)" >&2; exit 1; }

T="$(mktemp -d "${TMPDIR:-/tmp}/vfsd-selftest.XXXXXX")"
DPID=""
cleanup() {
  if [[ -n "$DPID" ]] && kill -0 "$DPID" 2>/dev/null; then kill -TERM "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
  if [[ "${KEEP:-0}" == 1 || "${VFSD_SELFTEST_DEBUG:-0}" == 1 ]]; then echo "selftest: files kept in $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
mkdir -p "$T/share"
nonce="$RANDOM-$$-$(date +%s%N)"
printf 'host says %s\n' "$nonce" >"$T/share/from-host.txt"
cat >"$T/guest.sh" <<EOF
set -e
test "\$(pwd)" = "\$VFSD_MNT"
grep -qx 'host says $nonce' from-host.txt
printf 'guest says %s\n' '$nonce' >from-guest.txt
mkdir -p dir/sub && echo nested >dir/sub/file && rm dir/sub/file && rmdir dir/sub
sync
cat from-host.txt
EOF

dargs=(--socket-path="$T/vfs.sock" -o source="$T/share" -o cache=none)
[[ "${VFSD_SELFTEST_DEBUG:-0}" == 1 ]] && dargs+=(-d)
"$VIRTIOFSD" "${dargs[@]}" </dev/null >"$T/virtiofsd.log" 2>&1 &
DPID=$!

set +e
out="$(VFSD_GUEST_RESULT="$T/result" "$HERE/run-guest.sh" "$T/vfs.sock" selftest "$T/guest.sh" 512M "$TIMEOUT")"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  KEEP=1; echo "selftest: FAILED: run-guest.sh exited $rc; virtiofsd log: $T/virtiofsd.log" >&2
  tail -n 20 "$T/virtiofsd.log" >&2 || true
  exit 1
fi
fail() { KEEP=1; echo "selftest: FAILED: $*" >&2; exit 1; }
[[ "$out" == "host says $nonce" ]] || fail "unexpected guest output: '$out'"
[[ "$(cat "$T/share/from-guest.txt" 2>/dev/null)" == "guest says $nonce" ]] || fail "from-guest.txt missing or wrong on the host"
[[ ! -e "$T/share/dir/sub" ]] || fail "dir/sub still exists on the host"
# virtiofsd exits by itself when QEMU disconnects.
for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DPID" 2>/dev/null && fail "virtiofsd still running after the guest powered off"
DPID=""
# shellcheck disable=SC1091
source "$T/result"
echo "selftest: ok (accel=$accel, share mounted at guest uptime ${mounted_uptime}s, whole run ${wall_seconds}s)"
