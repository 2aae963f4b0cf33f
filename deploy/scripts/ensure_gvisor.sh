#!/usr/bin/env bash
# Installs gVisor (Debian's runsc) and registers it with dockerd as the runtime `runsc`: the gVisor isolation
# tier (core.isolation). Idempotent and quick when everything is already there.
#
# daemon.json is merged, never overwritten (other keys and runtimes stay; no write when the entry is already
# right). A running dockerd is reloaded with SIGHUP, never restarted: containers other people run on it stay up.
# dockerd reads `runtimes` again on SIGHUP.
#
# The runtime's flags (README, "Running under gVisor"; chosen by experiment with runsc 0.0~20221219):
#   --platform=ptrace  how the Sentry intercepts the application's system calls. KVM hangs under nested
#                      virtualisation and this runsc has no systrap; ptrace works everywhere.
#   --network=none     the Sentry's netstack gets loopback only. Required: with its own netstack (`sandbox`,
#                      the default) this runsc refuses to start under Docker's `--network none` and on a bridge
#                      alike ("cannot run with network enabled in root network namespace"). So a gVisor
#                      sandbox has no network even with ENABLE_NETWORKING=true.
#   no --oci-seccomp   with it this runsc applies the container's seccomp profile inside the sandbox but also
#                      refuses select(2), which the profile allows (the runtime's supervisor needs it). Without
#                      it Docker's profile is not applied inside; gVisor's own syscall table and the kernel's
#                      in-sandbox filter (sandbox_runtime.seccomp_filter) stand in for it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
daemon_json=${PENNY_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
runtime_args=(--platform=ptrace --network=none)

if ! command -v runsc >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "penny: need root to install runsc (gVisor)" >&2
    exit 1
  fi
  echo "penny: installing runsc (gVisor)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null
fi
runsc_path=$(command -v runsc)

registered() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null | python3 -c '
import json, sys
runtimes = json.load(sys.stdin) or {}
entry = runtimes.get("runsc") or {}
wanted = {"path": sys.argv[1], "runtimeArgs": sys.argv[2:]}
sys.exit(0 if {k: entry.get(k) for k in wanted} == wanted else 1)' "$runsc_path" "${runtime_args[@]}"
}

if registered; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "penny: need root to register runsc in $daemon_json" >&2
  exit 1
fi
outcome=$(python3 "$here/docker_runtime.py" "$daemon_json" runsc "$runsc_path" "${runtime_args[@]}")
if pid=$(pgrep -o -x dockerd); then
  echo "penny: daemon.json $outcome; reloading dockerd (SIGHUP) for the runsc runtime"
  kill -HUP "$pid"
  for _ in $(seq 1 60); do
    registered && break
    sleep 0.5
  done
  registered || { echo "penny: dockerd does not list the runsc runtime after a reload; see its log" >&2; exit 1; }
else
  echo "penny: daemon.json $outcome; dockerd is not running (it reads the runtime when it starts)"
fi
