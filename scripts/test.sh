#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
npx tsc -b
# A run that hangs (an open handle) fails here in minutes, not at CI's 90-minute limit.
timeout 900 npx jest --selectProjects unit
# End-to-end: a real QEMU and Linux guest (Debian packages, installed by the guest harness), and
# Debian's chromium for the inspector page.
./scripts/guest/setup.sh
# QEMU 10 and a 6.12 kernel from bookworm-backports, beside Debian's QEMU 7.2 (migration, multiqueue).
VFSD_GUEST_FLAVOR=backports ./scripts/guest/setup.sh
./scripts/setup-browser.sh
./scripts/setup-libvirt.sh
# About 7 minutes on 2 cores.
timeout 1200 npx jest --selectProjects e2e
