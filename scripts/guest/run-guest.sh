#!/usr/bin/env bash
# Boot a throwaway guest whose virtio-fs device talks to a vhost-user-fs daemon, mount the share,
# run a guest shell script in it and exit with that script's status.
#
# usage: run-guest.sh SOCKET TAG SCRIPT [MEM=512M] [TIMEOUT_SECONDS=120]
#        run-guest.sh --interactive SOCKET TAG [MEM=512M] [TIMEOUT_SECONDS=0 (none)]
#
# --interactive: no script; the guest runs an interactive shell (busybox sh) in the mount point on
#         its second serial port, connected to this process's stdin/stdout (a terminal, or pipes).
#         QEMU puts the terminal in raw mode: ^C goes to the guest, Ctrl-A x quits QEMU. The guest
#         powers off when the shell exits; the exit status is the shell's.
# SOCKET  the daemon's vhost-user UNIX socket (the daemon listens, QEMU connects; start it first)
# TAG     the virtio-fs tag (what the guest mounts: mount -t virtiofs TAG /mnt), no whitespace
# SCRIPT  a host file, run in the guest as `/bin/sh SCRIPT` (busybox ash) with cwd = the mount point,
#         stdin /dev/null, env VFSD_MNT and VFSD_TAG. It reaches the guest in a second initramfs
#         appended to the base one, so it does not depend on the share.
# stdout: exactly the script's stdout+stderr (from a serial port of its own, free of kernel noise).
# Exit status: the script's, or 240-247 for harness failures (see README.md).
# Env: VFSD_VM_DIR, VFSD_GUEST_LOG, VFSD_GUEST_RESULT, VFSD_GUEST_ACCEL, VFSD_GUEST_SMP,
#      VFSD_GUEST_MOUNT_OPTS, VFSD_GUEST_APPEND, VFSD_GUEST_QEMU_ARGS, VFSD_SOCKET_WAIT,
#      VFSD_GUEST_KEEP, VFSD_GUEST_VERBOSE, VFSD_DAEMON_PID, VFSD_GUEST_FLAVOR, VFSD_GUEST_QMP,
#      VFSD_GUEST_INCOMING, VFSD_GUEST_FS_OPTS (see README.md).
set -euo pipefail

E_USAGE=240 E_SETUP=241 E_QEMU=242 E_BOOT=243 E_MOUNT=244 E_TIMEOUT=245 E_NOEXIT=246 E_DAEMON=247

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BASE_VM_DIR="${VFSD_VM_DIR:-$REPO/.vm}"
export VFSD_VM_DIR="$BASE_VM_DIR"
case "${VFSD_GUEST_FLAVOR:-bookworm}" in
  bookworm) VM_DIR="$BASE_VM_DIR" ;;
  backports) VM_DIR="$BASE_VM_DIR/backports" ;;
  *) echo "run-guest: VFSD_GUEST_FLAVOR must be bookworm or backports" >&2; exit $E_USAGE ;;
esac

usage() { echo "usage: $0 SOCKET TAG SCRIPT [MEM=512M] [TIMEOUT_SECONDS=120]" >&2; echo "       $0 --interactive SOCKET TAG [MEM=512M] [TIMEOUT_SECONDS=0]" >&2; exit $E_USAGE; }
INTERACTIVE=0
if [[ "${1:-}" == --interactive ]]; then
  INTERACTIVE=1; shift
  (($# >= 2 && $# <= 4)) || usage
  SOCK="$1" TAG="$2" SCRIPT="" MEM="${3:-512M}" TIMEOUT="${4:-0}"
else
  (($# >= 3 && $# <= 5)) || usage
  SOCK="$1" TAG="$2" SCRIPT="$3" MEM="${4:-512M}" TIMEOUT="${5:-120}"
fi
[[ -n "$TAG" && "$TAG" != *[[:space:]]* && ${#TAG} -le 36 ]] || { echo "run-guest: bad tag '$TAG' (1-36 chars, no whitespace)" >&2; exit $E_USAGE; }
[[ $INTERACTIVE == 1 || ( -f "$SCRIPT" && -r "$SCRIPT" ) ]] || { echo "run-guest: no script file '$SCRIPT'" >&2; exit $E_USAGE; }
[[ "$MEM" =~ ^[0-9]+[MG]$ ]] || { echo "run-guest: memory must look like 512M or 1G, got '$MEM'" >&2; exit $E_USAGE; }
[[ "$TIMEOUT" =~ ^[0-9]+$ && ( "$TIMEOUT" -gt 0 || $INTERACTIVE == 1 ) ]] || { echo "run-guest: bad timeout '$TIMEOUT'" >&2; exit $E_USAGE; }
MOUNT_OPTS="${VFSD_GUEST_MOUNT_OPTS:-}"
[[ "$MOUNT_OPTS" != *[[:space:]]* ]] || { echo "run-guest: VFSD_GUEST_MOUNT_OPTS must not contain whitespace" >&2; exit $E_USAGE; }

now() { date +%s.%N; }
T0="$(now)"

"$HERE/setup.sh" || { echo "run-guest: setup.sh failed" >&2; exit $E_SETUP; }
# shellcheck disable=SC1091
source "$VM_DIR/ready"
QEMU_BIN="${QEMU_BIN:-qemu-system-x86_64}"
QEMU_L=()
IFS=: read -r -a _dirs <<<"${QEMU_DATA_DIRS:-}"
for d in ${_dirs[@]+"${_dirs[@]}"}; do QEMU_L+=(-L "$d"); done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vfsd-guest.XXXXXX")"
QPID=""
cleanup() {
  # QPID is timeout(1): TERM makes it pass TERM on to QEMU (a KILL would orphan QEMU).
  if [[ -n "$QPID" ]] && kill -0 "$QPID" 2>/dev/null; then
    kill -TERM "$QPID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$QPID" 2>/dev/null || true
  fi
  if [[ "${KEEP_WORK:-0}" == 1 || "${VFSD_GUEST_KEEP:-0}" == 1 ]]; then
    echo "run-guest: files kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
CON="$WORK/console.log" OUT="$WORK/out.log" QERR="$WORK/qemu.stderr"

fail() { # code message...
  local code="$1"; shift
  KEEP_WORK=1
  {
    echo "run-guest: FAILED ($code): $*"
    if [[ -s "$QERR" ]]; then echo "--- qemu stderr ($QERR)"; tail -n 20 "$QERR"; fi
    if [[ -s "$CON" ]]; then echo "--- last console lines ($CON)"; tr -d '\r' <"$CON" | tail -n 40; fi
  } >&2
  write_result "$code"
  exit "$code"
}
write_result() { # exit code
  [[ -n "${VFSD_GUEST_RESULT:-}" ]] || return 0
  cat >"$VFSD_GUEST_RESULT" <<EOF
exit=$1
guest_status=${GUEST_STATUS:-}
accel=${ACCEL:-}
mounted_uptime=${MOUNTED_UPTIME:-}
wall_seconds=${WALL:-}
console_log=${VFSD_GUEST_LOG:-$([[ "${KEEP_WORK:-0}" == 1 || "${VFSD_GUEST_KEEP:-0}" == 1 ]] && echo "$CON")}
EOF
}

# --- the guest script goes into a second (gzipped) initramfs appended to the base one ----------
if (( INTERACTIVE )); then
  cp "$INITRD" "$WORK/initrd.img"
else
  mkdir -p "$WORK/extra/vfsd"
  cp "$SCRIPT" "$WORK/extra/vfsd/script"
  chmod 755 "$WORK/extra/vfsd/script"
  (cd "$WORK/extra" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$WORK/extra.cpio.gz"
  cat "$INITRD" "$WORK/extra.cpio.gz" >"$WORK/initrd.img"
fi

# --- accelerator: KVM only if a probe boot actually makes progress (result cached) ---------------
probe_kvm() { # prints the -cpu model that works with KVM, or nothing
  local key cache cpu log
  key="$(uname -r)|$("$QEMU_BIN" --version | head -n1)|$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null || true)"
  cache="$VM_DIR/kvm-probe"
  if [[ -f "$cache" && "$(head -n1 "$cache")" == "$key" ]]; then sed -n 2p "$cache"; return; fi
  cpu=""
  for c in host "host,-arch-capabilities"; do
    log="$WORK/kvm-probe.log"; rm -f "$log"
    # A kernel without initrd panics within a second under KVM ("Unable to mount root fs"; with
    # panic=-1 and -no-reboot QEMU then exits). A broken KVM aborts at once or makes no progress
    # (seen here: "failed to set MSR 0x10a" with -cpu host, a silent hang without arch-capabilities).
    timeout -k 1 4 "$QEMU_BIN" ${QEMU_L[@]+"${QEMU_L[@]}"} -accel kvm -cpu "$c" -m 128M -nodefaults -no-user-config \
      -display none -monitor none -serial "file:$log" -no-reboot -kernel "$KERNEL" \
      -append "console=ttyS0 panic=-1" </dev/null >/dev/null 2>&1 || true
    if grep -a -q -E "Kernel panic|Unable to mount root" "$log" 2>/dev/null; then
      cpu="$c"; break
    fi
  done
  printf '%s\n%s\n' "$key" "$cpu" >"$cache.tmp" && mv "$cache.tmp" "$cache"
  echo "$cpu"
}
ACCEL="${VFSD_GUEST_ACCEL:-auto}"
case "$ACCEL" in
  tcg) ACCEL_ARGS=(-accel tcg -cpu max) ;;
  kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;;
  auto)
    kcpu=""
    if [[ -r /dev/kvm && -w /dev/kvm ]]; then kcpu="$(probe_kvm)"; fi
    if [[ -n "$kcpu" ]]; then ACCEL=kvm; ACCEL_ARGS=(-accel kvm -cpu "$kcpu"); else ACCEL=tcg; ACCEL_ARGS=(-accel tcg -cpu max); fi ;;
  *) echo "run-guest: VFSD_GUEST_ACCEL must be auto, kvm or tcg" >&2; exit $E_USAGE ;;
esac

# --- wait for the daemon's socket ---------------------------------------------------------------
SOCKET_WAIT="${VFSD_SOCKET_WAIT:-10}"
[[ "$SOCKET_WAIT" =~ ^[0-9]+$ ]] || { echo "run-guest: bad VFSD_SOCKET_WAIT '$SOCKET_WAIT'" >&2; exit $E_USAGE; }
tries=$(( SOCKET_WAIT * 20 ))
until [[ -S "$SOCK" ]]; do
  (( tries-- > 0 )) || fail $E_QEMU "no socket at $SOCK after ${SOCKET_WAIT}s (is the daemon running?)"
  sleep 0.05
done

qesc() { printf '%s' "${1//,/,,}"; }   # QEMU option values: a comma is written twice
APPEND="console=ttyS0 panic=-1 quiet vfsd.tag=$TAG"
[[ -n "$MOUNT_OPTS" ]] && APPEND+=" vfsd.mountopts=$MOUNT_OPTS"
if (( INTERACTIVE )); then
  APPEND+=" vfsd.interactive=1"
  if [[ -t 0 ]] && size="$(stty size 2>/dev/null)" && [[ "$size" =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
    APPEND+=" vfsd.rows=${BASH_REMATCH[1]} vfsd.cols=${BASH_REMATCH[2]}"
  fi
  # The shell's serial port (ttyS1) is this process's stdio, multiplexed with a monitor (Ctrl-A c,
  # Ctrl-A x quits); signal=off: ^C reaches the guest instead of killing QEMU.
  SER1=(-chardev stdio,id=ser1,mux=on,signal=off -serial chardev:ser1 -mon chardev=ser1,mode=readline)
else
  SER1=(-chardev "file,id=ser1,path=$OUT" -serial chardev:ser1)
fi
# Live migration. VFSD_GUEST_QMP: a QMP socket for the test to drive QEMU (migrate, query-migrate,
# quit). VFSD_GUEST_INCOMING: this QEMU is the destination (-incoming URI); the guest's script
# began on the source, so its output here starts mid-way: the BEGIN marker is written beforehand
# and QEMU appends.
MIG=()
[[ -n "${VFSD_GUEST_QMP:-}" ]] && MIG+=(-qmp "unix:$(qesc "$VFSD_GUEST_QMP"),server=on,wait=off")
if [[ -n "${VFSD_GUEST_INCOMING:-}" ]]; then
  (( ! INTERACTIVE )) || { echo "run-guest: VFSD_GUEST_INCOMING needs a script" >&2; exit $E_USAGE; }
  MIG+=(-incoming "$VFSD_GUEST_INCOMING")
  printf 'VFSD-GUEST-BEGIN\n' >"$OUT"
  printf '\nVFSD-GUEST-INIT incoming\n' >"$CON"
  SER1=(-chardev "file,id=ser1,path=$OUT,append=on" -serial chardev:ser1)
  CON_APPEND=",append=on"
fi
FS_OPTS="${VFSD_GUEST_FS_OPTS:-}"
[[ -z "$FS_OPTS" || "$FS_OPTS" == ,* ]] || FS_OPTS=",$FS_OPTS"
[[ -n "${VFSD_GUEST_APPEND:-}" ]] && APPEND+=" $VFSD_GUEST_APPEND"
EXTRA_QEMU=()
if [[ -n "${VFSD_GUEST_QEMU_ARGS:-}" ]]; then read -r -a EXTRA_QEMU <<<"$VFSD_GUEST_QEMU_ARGS"; fi

QEMU=("$QEMU_BIN" ${QEMU_L[@]+"${QEMU_L[@]}"} -nodefaults -no-user-config -display none -monitor none -no-reboot
  "${ACCEL_ARGS[@]}" -smp "${VFSD_GUEST_SMP:-1}" -m "$MEM"
  -object "memory-backend-memfd,id=mem,size=$MEM,share=on" -numa node,memdev=mem
  -chardev "socket,id=char0,path=$(qesc "$SOCK")"
  -device "vhost-user-fs-pci,queue-size=1024,chardev=char0,tag=$(qesc "$TAG")$FS_OPTS"
  -chardev "file,id=ser0,path=$CON${CON_APPEND:-}" -serial chardev:ser0
  "${SER1[@]}" ${MIG[@]+"${MIG[@]}"}
  -kernel "$KERNEL" -initrd "$WORK/initrd.img" -append "$APPEND"
  ${EXTRA_QEMU[@]+"${EXTRA_QEMU[@]}"})

# --- run with a watchdog (if the daemon dies, QEMU and the guest would wait forever) ------------
set +e
DAEMON_DIED=0
if (( INTERACTIVE )); then
  # In the foreground, on our stdin/stdout (no daemon watch: Ctrl-A x is the way out of a hang).
  trap - INT
  if (( TIMEOUT > 0 )); then
    timeout --foreground -k 3 "$TIMEOUT" "${QEMU[@]}" 2>"$QERR"
  else
    "${QEMU[@]}" 2>"$QERR"
  fi
  QRC=$?
else
timeout -k 3 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$QERR" 2>&1 &
QPID=$!
if [[ -n "${VFSD_DAEMON_PID:-}" ]]; then
  # Fail fast when the daemon dies under a running guest (QEMU would otherwise hang until the
  # watchdog). The daemon may exit legitimately once the guest has powered off.
  while kill -0 "$QPID" 2>/dev/null; do
    if ! kill -0 "$VFSD_DAEMON_PID" 2>/dev/null; then
      sleep 1
      if kill -0 "$QPID" 2>/dev/null && ! grep -a -q VFSD-GUEST-POWEROFF "$CON" 2>/dev/null; then
        DAEMON_DIED=1; kill -TERM "$QPID" 2>/dev/null || true
      fi
      break
    fi
    sleep 0.1
  done
fi
wait "$QPID"
QRC=$?
QPID=""
fi
set -e
WALL="$(awk -v a="$(now)" -v b="$T0" 'BEGIN { printf "%.2f", a - b }')"
: >>"$CON"; : >>"$OUT"   # QEMU may have failed before creating them
if [[ -n "${VFSD_GUEST_LOG:-}" ]]; then cp "$CON" "$VFSD_GUEST_LOG" 2>/dev/null || true; fi

con_has() { tr -d '\r' <"$CON" 2>/dev/null | grep -a -q -E "^$1"; }
con_val() { tr -d '\r' <"$CON" 2>/dev/null | grep -a -E "^$1 " | tail -n1 | cut -d' ' -f2; }
MOUNTED_UPTIME="$(con_val VFSD-GUEST-MOUNTED || true)"

# Guest status and output: from ttyS1 (raw) if the guest used it, else from the console.
GUEST_STATUS=""
src="$OUT"
if ! head -n1 "$OUT" 2>/dev/null | grep -a -q '^VFSD-GUEST-BEGIN$'; then
  src="$WORK/console.clean"; tr -d '\r' <"$CON" >"$src" 2>/dev/null || : >"$src"
fi
begin_off="$(grep -a -b -x 'VFSD-GUEST-BEGIN' "$src" 2>/dev/null | head -n1 | cut -d: -f1 || true)"
exit_line="$(grep -a -b -E '^VFSD-GUEST-EXIT [0-9]+$' "$src" 2>/dev/null | tail -n1 || true)"
if (( INTERACTIVE )); then
  GUEST_STATUS="$(con_val VFSD-GUEST-EXIT || true)"   # the shell's output went to the terminal
elif [[ -n "$begin_off" && -n "$exit_line" ]]; then
  exit_off="${exit_line%%:*}"; GUEST_STATUS="${exit_line##* }"
  start=$(( begin_off + 17 ))           # after "VFSD-GUEST-BEGIN\n"
  len=$(( exit_off - 1 - start ))        # drop the newline printed before the EXIT marker
  if (( len > 0 )); then tail -c +$(( start + 1 )) "$src" | head -c "$len"; fi
elif [[ -n "$begin_off" ]]; then
  tail -c +$(( begin_off + 18 )) "$src"    # partial output of a script that never finished
fi

[[ "${VFSD_GUEST_VERBOSE:-0}" == 1 ]] &&
  echo "run-guest: accel=$ACCEL qemu_rc=$QRC guest_status=${GUEST_STATUS:-?} mounted_at_uptime=${MOUNTED_UPTIME:-?}s wall=${WALL}s" >&2

if (( DAEMON_DIED )); then
  fail $E_DAEMON "daemon (pid $VFSD_DAEMON_PID) died while the guest was running (guest status: ${GUEST_STATUS:-none})"
fi
if (( QRC == 124 || QRC == 137 )); then
  fail $E_TIMEOUT "timed out after ${TIMEOUT}s (guest status: ${GUEST_STATUS:-none}; mounted: ${MOUNTED_UPTIME:-no})"
fi
if [[ -n "$GUEST_STATUS" ]]; then
  if (( QRC != 0 )); then echo "run-guest: warning: qemu exited $QRC after the script finished" >&2; fi
  write_result "$GUEST_STATUS"
  exit "$GUEST_STATUS"
fi
if con_has VFSD-GUEST-MOUNT-FAILED; then fail $E_MOUNT "guest could not mount tag '$TAG'"; fi
if con_has VFSD-GUEST-BEGIN; then fail $E_NOEXIT "guest script started but never finished (qemu exit $QRC)"; fi
if ! con_has VFSD-GUEST-INIT; then
  if [[ ! -s "$CON" ]]; then fail $E_QEMU "qemu exited $QRC before the guest started"; fi
  fail $E_BOOT "guest never reached /init (qemu exit $QRC)"
fi
fail $E_BOOT "guest did not reach the script (qemu exit $QRC)"
