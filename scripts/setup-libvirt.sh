#!/usr/bin/env bash
# Debian's libvirt for the libvirt end-to-end test (packages/cli/test/libvirt.e2e.test.ts): installs
# libvirt-daemon-system, libvirt-clients and the QEMU driver if missing, then starts virtlogd and
# libvirtd (qemu:///system) if they are not running. For a machine with no init (a CI container, as
# root): the daemons are started by hand, with the packages' default configuration (nothing under
# /etc is written). Idempotent; when everything is installed and running it takes a few ms.
# Needs root.
set -euo pipefail

PKGS=(libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86)
URI=qemu:///system
log() { echo "setup-libvirt: $*" >&2; }

missing=()
for p in "${PKGS[@]}"; do
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  ((EUID == 0)) || { log "need root to install ${missing[*]}"; exit 1; }
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have stale or no package lists: update only if the install fails.
  apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/setup-libvirt-apt.log 2>&1 || {
    apt-get update >>/tmp/setup-libvirt-apt.log 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/setup-libvirt-apt.log 2>&1 ||
      { tail -n 30 /tmp/setup-libvirt-apt.log >&2; log "apt-get install failed"; exit 1; }
  }
fi

# /dev/kvm as udev makes it on a Debian machine (root:kvm 0660; a machine without udev has it root
# 0600). Otherwise libvirt's QEMU probe saw KVM but its check for the qemu user (libvirt-qemu, in
# group kvm) does not, so it throws its capabilities cache away and probes QEMU again on every
# define and start (about 4 s each, 48 s for one `virsh define` here). Domains of type 'qemu' (TCG) do
# not use KVM either way.
if [[ -c /dev/kvm ]] && getent group kvm >/dev/null && [[ "$(stat -c %G:%a /dev/kvm)" != kvm:6[6-7]? ]]; then
  ((EUID == 0)) || { log "need root to give group kvm access to /dev/kvm"; exit 1; }
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
# virtlogd: libvirt's QEMU driver hands QEMU's (and the virtiofs daemon's) stderr to it (stdio_handler = "logd").
if ! alive /run/virtlogd.pid; then
  ((EUID == 0)) || { log "need root to start virtlogd"; exit 1; }
  virtlogd -d
fi
if ! alive /run/libvirtd.pid; then
  ((EUID == 0)) || { log "need root to start libvirtd"; exit 1; }
  libvirtd -d
fi
# Ready once the socket answers (the QEMU driver probes QEMU's capabilities at start-up: a few s).
for _ in $(seq 1 150); do
  if virsh -c "$URI" list --all >/dev/null 2>&1; then exit 0; fi
  sleep 0.2
done
log "libvirtd does not answer on $URI"
virsh -c "$URI" list --all >&2 || true
exit 1
