#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
npx tsc -b
npx jest --selectProjects unit
# End-to-end: a real QEMU and Linux guest (Debian packages, installed by the guest harness), and
# Debian's chromium for the inspector page.
./scripts/guest/setup.sh
./scripts/setup-browser.sh
npx jest --selectProjects e2e
