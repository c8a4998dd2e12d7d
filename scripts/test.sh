#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
npx tsc -b
npx jest --selectProjects unit
if compgen -G "packages/*/dist/test/**/*.e2e.test.js" > /dev/null || ls packages/*/dist/test/*.e2e.test.js >/dev/null 2>&1; then
  npx jest --selectProjects e2e
fi
