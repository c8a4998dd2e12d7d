#!/usr/bin/env bash
# Runs the guest conformance checks (checks/conformance.sh) against a daemon: `vfsd` (this checkout)
# or `virtiofsd` (Debian's C daemon), and prints the guest's report plus host-side checks.
#   scripts/guest/conformance.sh vfsd|virtiofsd [DAEMON_ARGS...]   (added to the daemon's command line)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
which="${1:-vfsd}"
shift || true
"$HERE/setup.sh"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/share"
echo from-host > "$work/share/host-made.txt"
sock="$work/d.sock"
case "$which" in
  vfsd) node "$REPO/packages/cli/bin/vfsd" --socket-path "$sock" --shared-dir "$work/share" --xattr --log-level warn "$@" & ;;
  virtiofsd) /usr/lib/qemu/virtiofsd --socket-path="$sock" -o source="$work/share" -o cache=none -o posix_lock -o xattr "$@" & ;;
  *) echo "usage: $0 vfsd|virtiofsd" >&2; exit 2 ;;
esac
for _ in $(seq 100); do [[ -S "$sock" ]] && break; sleep 0.05; done
set +e
"$HERE/run-guest.sh" "$sock" conf "$HERE/checks/conformance.sh" 512M 240
rc=$?
set -e
# Host side: what the guest wrote is there.
hp=0; hf=0
hc() { if eval "$2"; then echo "PASS host:$1"; hp=$((hp+1)); else echo "FAIL host:$1"; hf=$((hf+1)); fi; }
hc guest-file-visible '[[ "$(cat "$work/share/t1" 2>/dev/null)" == hello ]]'
hc large-file-checksum '[[ -f "$work/share/big.md5" ]] && (cd "$work/share" && md5sum -c --status big.md5)'
echo "HOST-TOTAL $hp/$hf (guest exit $rc)"
