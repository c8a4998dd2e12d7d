#!/usr/bin/env bash
# Prepare everything needed to boot a throwaway Linux guest with a virtio-fs share:
#   - Debian packages: qemu-system-x86 (QEMU 7.2, also ships /usr/lib/qemu/virtiofsd via
#     qemu-system-common), busybox-static, cpio, xz-utils, zstd
#   - a Debian cloud kernel (the package linux-image-cloud-amd64 depends on), unpacked with dpkg -x
#   - a busybox initramfs with the virtio/fuse/virtiofs modules and an /init (see README.md)
# Idempotent: a stamp file makes a second run a fast no-op. Quiet on success, loud on failure.
#
# Env: VFSD_VM_DIR (cache dir, default <repo>/.vm), VFSD_KERNEL_PKG (force a kernel package name),
#      VFSD_SETUP_FORCE=1 (rebuild even if the stamp is current), VFSD_SETUP_VERBOSE=1,
#      VFSD_GUEST_FLAVOR=bookworm (default: Debian's QEMU 7.2 and 6.1 cloud kernel) or backports
#      (QEMU 10 and the 6.12 cloud kernel from bookworm-backports, unpacked with dpkg -x into
#      <cache dir>/backports beside Debian's QEMU 7.2, which stays installed; its own apt lists).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
FLAVOR="${VFSD_GUEST_FLAVOR:-bookworm}"
case "$FLAVOR" in
  bookworm) VM_DIR="${VFSD_VM_DIR:-$REPO/.vm}" ;;
  backports) VM_DIR="${VFSD_VM_DIR:-$REPO/.vm}/backports" ;;
  *) echo "setup.sh: ERROR: VFSD_GUEST_FLAVOR must be bookworm or backports, not '$FLAVOR'" >&2; exit 1 ;;
esac
STAMP="$VM_DIR/ready"
# QEMU 10 from bookworm-backports: these packages unpacked (not installed) under $VM_DIR/qemu.
BACKPORTS_QEMU_PKGS=(qemu-system-x86 qemu-system-data qemu-system-common seabios)
FALLBACK_KERNEL_PKG="linux-image-6.1.0-56-cloud-amd64"
APT_PKGS=(qemu-system-x86 qemu-system-common busybox-static cpio xz-utils zstd gcc libc6-dev tmux)
# Modules wanted in the guest, in load order. Built-in ones are skipped; dependencies are added
# from modules.dep ahead of the module that needs them.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci fuse virtiofs)

log() { if [[ "${VFSD_SETUP_VERBOSE:-0}" == 1 ]]; then echo "setup.sh: $*" >&2; fi; }
die() { echo "setup.sh: ERROR: $*" >&2; exit 1; }

# The stamp records the recipe (this file's hash) and what was built; a match means nothing to do.
recipe_hash() { cat "$HERE/setup.sh" "$HERE/tools/guestctl.c" | sha256sum | cut -c1-16; }

stamp_ok() {
  [[ "${VFSD_SETUP_FORCE:-0}" != 1 && -f "$STAMP" ]] || return 1
  local want_recipe; want_recipe="$(recipe_hash)"
  # shellcheck disable=SC1090
  ( source "$STAMP"
    [[ "${VFSD_RECIPE:-}" == "$want_recipe" ]] &&
    [[ -z "${VFSD_KERNEL_PKG:-}" || "${VFSD_KERNEL_PKG}" == "${KERNEL_PKG:-}" ]] &&
    [[ -s "${KERNEL:-/nonexistent}" && -s "${INITRD:-/nonexistent}" && -x "$VM_DIR/guestctl-host" ]] &&
    [[ "$FLAVOR" == bookworm || -x "${QEMU_BIN:-/nonexistent}" ]] ) || return 1
  command -v qemu-system-x86_64 >/dev/null && [[ -x /usr/lib/qemu/virtiofsd ]] &&
    [[ -x /bin/busybox ]] && command -v cpio >/dev/null
}

if stamp_ok; then exit 0; fi

mkdir -p "$VM_DIR"
exec 9>"$VM_DIR/.setup.lock"
flock 9            # concurrent callers (parallel jest workers) wait for the first one
if stamp_ok; then exit 0; fi

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_update() {
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    apt-get update -qq >"$VM_DIR/apt-update.log" 2>&1 || { cat "$VM_DIR/apt-update.log" >&2; die "apt-get update failed"; }
    APT_UPDATED=1
  fi
}
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
# The backports flavour asks apt about bookworm-backports only, through lists of its own, so the
# machine's apt configuration and state stay as they are.
BP_APT=()
if [[ "$FLAVOR" == backports ]]; then
  BP_DIR="$VM_DIR/apt"
  mkdir -p "$BP_DIR/lists/partial" "$BP_DIR/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" >"$BP_DIR/sources.list"
  BP_APT=(-o "Dir::Etc::sourcelist=$BP_DIR/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$BP_DIR/lists"
    -o "Dir::Cache=$BP_DIR/cache" -o APT::Get::List-Cleanup=0)
fi
bp_update() {
  log "apt-get update (bookworm-backports lists in $BP_DIR)"
  apt-get "${BP_APT[@]}" update -qq >"$VM_DIR/apt-update-backports.log" 2>&1 ||
    { cat "$VM_DIR/apt-update-backports.log" >&2; die "apt-get update of bookworm-backports failed"; }
}
# apt-cache / apt-get download against the flavour's archive.
k_cache() { apt-cache "${BP_APT[@]}" "$@"; }
k_download() { apt-get "${BP_APT[@]}" download -qq "$@"; }
k_candidate() { k_cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }

# --- 1. Debian packages ------------------------------------------------------------------------
missing=()
for p in "${APT_PKGS[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"install ok installed"* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ "$(id -u)" == 0 ]] || die "packages missing (${missing[*]}): run as root so apt-get can install them"
  for p in "${missing[@]}"; do
    c="$(candidate "$p")"; if [[ -z "$c" || "$c" == "(none)" ]]; then apt_update; break; fi
  done
  log "apt-get install ${missing[*]}"
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$VM_DIR/apt-install.log" 2>&1; then
    if [[ $APT_UPDATED == 0 ]]; then      # stale package lists (404s): refresh once and retry
      apt_update
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$VM_DIR/apt-install.log" 2>&1 ||
        { cat "$VM_DIR/apt-install.log" >&2; die "apt-get install failed"; }
    else
      cat "$VM_DIR/apt-install.log" >&2; die "apt-get install failed"
    fi
  fi
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after install"
[[ -x /usr/lib/qemu/virtiofsd ]] || log "warning: /usr/lib/qemu/virtiofsd missing (peer daemon for tests)"
# No `| grep -q` under pipefail: grep stops at the first match and the writer dies of SIGPIPE.
[[ -x /bin/busybox ]] && [[ $'\n'"$(/bin/busybox --list)"$'\n' == *$'\n'insmod$'\n'* ]] || die "/bin/busybox (busybox-static) missing or lacks insmod"

QEMU_BIN=qemu-system-x86_64
QEMU_DATA_DIRS=""
if [[ "$FLAVOR" == backports ]]; then
  [[ -n "$(ls "$BP_DIR/lists" 2>/dev/null | grep -v partial || true)" ]] || bp_update
  QDIR="$VM_DIR/qemu"
  if [[ ! -f "$QDIR/.unpacked" ]]; then
    dl="$VM_DIR/dl-qemu"; rm -rf "$dl"; mkdir -p "$dl"
    if ! (cd "$dl" && k_download "${BACKPORTS_QEMU_PKGS[@]}" >"$VM_DIR/apt-download.log" 2>&1); then
      bp_update
      (cd "$dl" && k_download "${BACKPORTS_QEMU_PKGS[@]}" >"$VM_DIR/apt-download.log" 2>&1) ||
        { cat "$VM_DIR/apt-download.log" >&2; die "apt-get download ${BACKPORTS_QEMU_PKGS[*]} (bookworm-backports) failed"; }
    fi
    rm -rf "$QDIR"; mkdir -p "$QDIR"
    for deb in "$dl"/*.deb; do dpkg -x "$deb" "$QDIR"; done
    touch "$QDIR/.unpacked"
    rm -rf "$dl"
  fi
  QEMU_BIN="$QDIR/usr/bin/qemu-system-x86_64"
  QEMU_DATA_DIRS="$QDIR/usr/share/qemu:$QDIR/usr/share/seabios"
  "$QEMU_BIN" --version >"$VM_DIR/qemu-version.log" 2>&1 ||
    { cat "$VM_DIR/qemu-version.log" >&2; die "$QEMU_BIN does not run on this system's libraries"; }
fi

# --- 2. Kernel ---------------------------------------------------------------------------------
resolve_kernel_pkg() {
  if [[ -n "${VFSD_KERNEL_PKG:-}" ]]; then echo "$VFSD_KERNEL_PKG"; return; fi
  local c dep
  c="$(k_candidate linux-image-cloud-amd64)"
  if [[ -z "$c" || "$c" == "(none)" ]]; then
    if [[ "$FLAVOR" == backports ]]; then bp_update; else apt_update; fi
    c="$(k_candidate linux-image-cloud-amd64)"
  fi
  if [[ -n "$c" && "$c" != "(none)" ]]; then
    dep="$(k_cache show "linux-image-cloud-amd64=$c" 2>/dev/null |
      awk -F': ' '/^Depends:/ {print $2; exit}' | tr ',' '\n' |
      sed -E 's/^ *//; s/ .*//' | grep -E '^linux-image-[0-9].*-cloud-amd64(-unsigned)?$' | head -n1 || true)"
    if [[ -n "$dep" ]]; then echo "$dep"; return; fi
  fi
  # Fallback: the newest cloud kernel apt knows of, else a known-good name.
  [[ "$FLAVOR" == bookworm ]] || die "cannot resolve linux-image-cloud-amd64 in bookworm-backports"
  dep="$(k_cache pkgnames linux-image- 2>/dev/null | grep -E '^linux-image-[0-9][0-9.]*-[0-9]+-cloud-amd64$' |
    sort -V | tail -n1 || true)"
  echo "${dep:-$FALLBACK_KERNEL_PKG}"
}

KERNEL_PKG="$(resolve_kernel_pkg)"
log "kernel package: $KERNEL_PKG"
KDIR="$VM_DIR/kernel/$KERNEL_PKG"
if [[ ! -f "$KDIR/.unpacked" ]]; then
  dl="$VM_DIR/dl"; rm -rf "$dl"; mkdir -p "$dl"
  if ! (cd "$dl" && k_download "$KERNEL_PKG" >"$VM_DIR/apt-download.log" 2>&1); then
    if [[ "$FLAVOR" == backports ]]; then bp_update; else apt_update; fi
    (cd "$dl" && k_download "$KERNEL_PKG" >"$VM_DIR/apt-download.log" 2>&1) ||
      { cat "$VM_DIR/apt-download.log" >&2; die "apt-get download $KERNEL_PKG failed"; }
  fi
  deb="$(ls "$dl"/*.deb | head -n1)"
  rm -rf "$KDIR"; mkdir -p "$KDIR"
  dpkg -x "$deb" "$KDIR"
  touch "$KDIR/.unpacked"
  rm -rf "$dl"
fi
KERNEL="$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -n1)"
[[ -s "$KERNEL" ]] || die "no boot/vmlinuz-* in $KERNEL_PKG"
KVER="${KERNEL##*/vmlinuz-}"
MODROOT="$KDIR/lib/modules/$KVER"
[[ -d "$MODROOT/kernel" ]] || die "no $MODROOT/kernel"

# --- 3. Initramfs ------------------------------------------------------------------------------
# The .deb ships no modules.dep (depmod makes it at install time): find module files by name and
# read each one's dependencies from its own .modinfo section ("depends=a,b").
declare -A MODPATH=() LOADED=()
while IFS= read -r path; do
  base="${path##*/}"; name="${base%%.ko*}"; name="${name//-/_}"
  MODPATH[$name]="$path"
done < <(cd "$MODROOT" && find kernel -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
builtin_has() { grep -Eq "/${1//_/[-_]}\.ko\$" "$MODROOT/modules.builtin" 2>/dev/null; }
decompress_to() { # src dst
  case "$1" in
    *.ko) cp "$1" "$2" ;;
    *.ko.xz) xz -dc "$1" >"$2" ;;
    *.ko.zst) zstd -qdc "$1" >"$2" ;;
    *.ko.gz) gzip -dc "$1" >"$2" ;;
    *) die "unknown module format: $1" ;;
  esac
}
build="$VM_DIR/initramfs.build"
rm -rf "$build"
mkdir -p "$build"/{bin,sbin,dev,proc,sys,mnt,tmp,root,etc,lib/modules,vfsd}
ORDER=()
add_module() {
  local name="${1//-/_}" path deps d
  [[ -n "${LOADED[$name]:-}" ]] && return 0
  LOADED[$name]=1
  path="${MODPATH[$name]:-}"
  if [[ -z "$path" ]]; then
    builtin_has "$name" || log "module $name neither a module nor built-in (skipped)"
    return 0
  fi
  decompress_to "$MODROOT/$path" "$build/lib/modules/$name.ko"
  deps="$(tr '\0' '\n' <"$build/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' ')"
  for d in $deps; do add_module "$d"; done
  ORDER+=("$name")
}
for m in "${MODULES[@]}"; do add_module "$m"; done
log "modules to load: ${ORDER[*]:-(all built-in)}"
cp /bin/busybox "$build/bin/busybox"
# guestctl: locks, xattrs and mmap from the guest's shell (busybox has none of them); also a host build.
gcc -O2 -static -o "$build/bin/guestctl" "$HERE/tools/guestctl.c" || die "cannot build guestctl (gcc, libc6-dev)"
gcc -O2 -o "$VM_DIR/guestctl-host.tmp" "$HERE/tools/guestctl.c" && mv "$VM_DIR/guestctl-host.tmp" "$VM_DIR/guestctl-host"
printf '%s\n' "${ORDER[@]}" >"$build/etc/vfsd-modules"
# Nodes needed before devtmpfs is mounted (the kernel opens /dev/console for init's stdio).
# (Needs root; without them init still works, it mounts devtmpfs before using /dev.)
mknod -m 600 "$build/dev/console" c 5 1 2>/dev/null || log "mknod failed (not root?): no /dev/console in the initramfs"
mknod -m 666 "$build/dev/null" c 1 3 2>/dev/null || true

cat >"$build/init" <<'INIT'
#!/bin/busybox sh
# vfsd guest init. Kernel command line parameters (all optional except vfsd.tag):
#   vfsd.tag=TAG          virtio-fs tag to mount
#   vfsd.mnt=/mnt         mount point
#   vfsd.mountopts=OPTS   extra mount -o options (comma separated)
#   vfsd.script=PATH      guest script (default /vfsd/script, put there by an appended initramfs)
#   vfsd.umount=0         do not unmount the share after the script
#   vfsd.interactive=1    instead of the script, an interactive shell (busybox sh) in the mount point on
#                         ttyS1 (else the console), its controlling tty; vfsd.rows=/vfsd.cols= set its size
# Console (ttyS0) markers: VFSD-GUEST-INIT, VFSD-GUEST-MOUNTED <uptime>, VFSD-GUEST-MOUNT-FAILED <rc>,
# VFSD-GUEST-BEGIN, VFSD-GUEST-EXIT <status>, VFSD-GUEST-UMOUNT <rc>, VFSD-GUEST-POWEROFF.
# The script's own output goes to ttyS1 (if present) framed by BEGIN/EXIT markers, clear of kernel noise.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || { mount -t tmpfs -o mode=755 tmpfs /dev; mdev -s; }
mount -t tmpfs tmpfs /tmp
exec 0</dev/null

up() { cut -d' ' -f1 /proc/uptime; }
mark() { printf '\n%s\n' "$*" >/dev/console; }
finish() { sync; mark "VFSD-GUEST-POWEROFF"; poweroff -f; sleep 5; echo o >/proc/sysrq-trigger; }
mark "VFSD-GUEST-INIT $(up)"

TAG= MNT=/mnt MOUNTOPTS= SCRIPT=/vfsd/script UMOUNT=1 INTERACTIVE=0 ROWS= COLS=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vfsd.tag=*) TAG="${arg#vfsd.tag=}" ;;
    vfsd.mnt=*) MNT="${arg#vfsd.mnt=}" ;;
    vfsd.mountopts=*) MOUNTOPTS="${arg#vfsd.mountopts=}" ;;
    vfsd.script=*) SCRIPT="${arg#vfsd.script=}" ;;
    vfsd.umount=*) UMOUNT="${arg#vfsd.umount=}" ;;
    vfsd.interactive=*) INTERACTIVE="${arg#vfsd.interactive=}" ;;
    vfsd.rows=*) ROWS="${arg#vfsd.rows=}" ;;
    vfsd.cols=*) COLS="${arg#vfsd.cols=}" ;;
  esac
done

for m in $(cat /etc/vfsd-modules); do
  insmod "/lib/modules/$m.ko" || mark "VFSD-GUEST-INSMOD-FAILED $m"
done

if [ -z "$TAG" ]; then mark "VFSD-GUEST-MOUNT-FAILED no-tag"; finish; fi
mkdir -p "$MNT"
if [ -n "$MOUNTOPTS" ]; then mount -t virtiofs -o "$MOUNTOPTS" "$TAG" "$MNT"; else mount -t virtiofs "$TAG" "$MNT"; fi
rc=$?
if [ $rc -ne 0 ]; then mark "VFSD-GUEST-MOUNT-FAILED $rc"; finish; fi
mark "VFSD-GUEST-MOUNTED $(up)"

if [ "$INTERACTIVE" = 1 ]; then
  TTY=/dev/console
  if [ -c /dev/ttyS1 ] && stty -F /dev/ttyS1 sane 2>/dev/null; then TTY=/dev/ttyS1; fi
  [ -n "$ROWS" ] && stty -F "$TTY" rows "$ROWS" 2>/dev/null
  [ -n "$COLS" ] && stty -F "$TTY" cols "$COLS" 2>/dev/null
  export VFSD_MNT="$MNT" VFSD_TAG="$TAG" TERM=vt100 PS1='guest:\w# '
  mark "VFSD-GUEST-BEGIN"
  # setsid -c: a new session whose controlling tty is the shell's stdin (job control, ^C, ^Z).
  (cd "$MNT" && exec setsid -c /bin/sh -i) <"$TTY" >"$TTY" 2>&1
  status=$?
  cd /
  mark "VFSD-GUEST-EXIT $status"
  if [ "$UMOUNT" != 0 ]; then umount "$MNT"; mark "VFSD-GUEST-UMOUNT $?"; fi
  finish
fi

OUT=/dev/console
if [ -c /dev/ttyS1 ] && stty -F /dev/ttyS1 raw -echo 2>/dev/null; then OUT=/dev/ttyS1; fi
if [ ! -f "$SCRIPT" ]; then mark "VFSD-GUEST-NO-SCRIPT $SCRIPT"; finish; fi
export VFSD_MNT="$MNT" VFSD_TAG="$TAG"
printf 'VFSD-GUEST-BEGIN\n' >"$OUT"
mark "VFSD-GUEST-BEGIN"
(cd "$MNT" && exec /bin/sh "$SCRIPT") </dev/null >"$OUT" 2>&1
status=$?
cd /
printf '\nVFSD-GUEST-EXIT %d\n' "$status" >"$OUT"
mark "VFSD-GUEST-EXIT $status"
if [ "$UMOUNT" != 0 ]; then umount "$MNT"; mark "VFSD-GUEST-UMOUNT $?"; fi
finish
INIT
chmod 755 "$build/init"

INITRD="$VM_DIR/initramfs.cpio.gz"
(cd "$build" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -6 >"$INITRD.tmp"
mv "$INITRD.tmp" "$INITRD"
rm -rf "$build"
cp "$KERNEL" "$VM_DIR/vmlinuz.tmp" && mv "$VM_DIR/vmlinuz.tmp" "$VM_DIR/vmlinuz"

cat >"$STAMP.tmp" <<EOF
VFSD_RECIPE=$(recipe_hash)
KERNEL_PKG=$KERNEL_PKG
KERNEL_VERSION=$KVER
KERNEL=$VM_DIR/vmlinuz
INITRD=$INITRD
MODULES="${ORDER[*]}"
FLAVOR=$FLAVOR
QEMU_BIN=$QEMU_BIN
QEMU_DATA_DIRS=$QEMU_DATA_DIRS
EOF
mv "$STAMP.tmp" "$STAMP"
log "ready: $VM_DIR"
