#!/usr/bin/env bash
# Installs (Debian) what the playground's browser tests need: Debian's chromium, driven headless by Playwright
# (which never downloads a browser of its own: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 in the Makefile).
# Idempotent and quick when it is already there.
set -euo pipefail

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "penny: need root to install chromium (the browser tests drive it)" >&2
    exit 1
  fi
  echo "penny: installing chromium"
  # Another apt run (a set-up in parallel) holds the dpkg lock for a while: wait for it instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
