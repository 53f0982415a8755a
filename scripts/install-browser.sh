#!/usr/bin/env bash
# Installs Debian's chromium for the Playwright browser tests when it is missing.
# Playwright drives it through executable_path; it never downloads a browser.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -n "${PAPERWIRE_CHROMIUM:-}" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "warning: no chromium and no apt-get: browser tests will be skipped" >&2
fi
