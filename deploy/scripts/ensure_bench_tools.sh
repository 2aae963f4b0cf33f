#!/usr/bin/env bash
# Installs (Debian) the load generator `make bench` drives the API with. Idempotent.
set -euo pipefail
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "penny: need root to install wrk" >&2
    exit 1
  fi
  echo "penny: installing wrk"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
