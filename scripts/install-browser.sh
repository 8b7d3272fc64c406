#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (tests/e2e/test_api_docs_browser.py), which drives
# it with Playwright at /usr/bin/chromium. Playwright's own browser download cannot work on these
# machines (no network but the package registries), so the browser comes from apt.
# Idempotent: does nothing when /usr/bin/chromium is already there, or when
# BOXOFFICE_SKIP_BROWSER=1 (the browser test is then skipped too). Needs root (CI runs as root).
set -euo pipefail
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ] || [ "${BOXOFFICE_SKIP_BROWSER:-0}" = 1 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser: $CHROMIUM is missing and only root can apt-get install it" >&2
  echo "install-browser: run 'sudo apt-get update && sudo apt-get install -y chromium'" >&2
  exit 1
fi
echo "install-browser: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation
"$CHROMIUM" --version
