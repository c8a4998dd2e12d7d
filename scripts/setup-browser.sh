#!/usr/bin/env bash
# Installs Debian's chromium for the inspector's browser test (playwright-core drives it; no browser
# is ever downloaded). Idempotent: does nothing when /usr/bin/chromium exists.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when chromium is not known to apt yet (a fresh machine).
if ! apt-cache show chromium >/dev/null 2>&1; then
  $SUDO apt-get update
fi
if ! $SUDO apt-get install -y --no-install-recommends chromium; then
  # The lists may be stale (a package version gone from the mirror): refresh once and retry.
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends chromium
fi
test -x /usr/bin/chromium
