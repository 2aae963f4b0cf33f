#!/usr/bin/env bash
# Installs (Debian) and starts what PENNY needs on the host: redis-server, debootstrap, a Docker engine.
# Idempotent and quick when everything is already there.
set -euo pipefail

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v npm >/dev/null || missing+=(nodejs npm)  # the TypeScript client's build and tests (Node 18+)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "penny: need root to install ${missing[*]}" >&2
    exit 1
  fi
  echo "penny: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A dockerd started here runs in a session of its own (setsid), outside the terminal's process group: the
# Ctrl-C that stops `make run` never reaches it, and it keeps running after `make run` ends (the stack's
# clean-up needs it to remove the sandboxes).
log=${PENNY_DOCKERD_LOG:-/var/log/penny-dockerd.log}
if ! docker info >/dev/null 2>&1; then
  if ! pgrep -x dockerd >/dev/null; then
    echo "penny: starting dockerd in its own session (log: $log)"
    setsid -f dockerd </dev/null >>"$log" 2>&1
  fi
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "penny: dockerd did not come up; see $log" >&2; exit 1; }
fi
