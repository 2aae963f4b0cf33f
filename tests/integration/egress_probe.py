"""What the egress tests run inside a sandbox (and in their sink namespace): standard library only.

    python3 egress_probe.py connect HOST:PORT ... [--timeout S]   one JSON line: {target: outcome}
    python3 egress_probe.py listen PORT [--lifetime S]            `listening`, then `accepted HOST` per client
    python3 egress_probe.py resolve NAME                           one JSON line: IPv4 addresses or an error
    python3 egress_probe.py facts                                  one JSON line: IPv6 addresses, Docker sockets
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock")


def connect(target: str, timeout_s: float) -> str:
    """`connected`, or why not (`timeout` when a firewall dropped the SYN)."""
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return "connected"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def listen(port: int, lifetime_s: float) -> None:
    """Accept and close connections on 0.0.0.0:port for lifetime_s at most, printing each peer."""
    server = socket.create_server(("0.0.0.0", port), reuse_port=False)
    server.settimeout(0.5)
    print("listening", flush=True)
    deadline = time.monotonic() + lifetime_s
    while time.monotonic() < deadline:
        try:
            client, peer = server.accept()
        except TimeoutError:
            continue
        client.close()
        print(f"accepted {peer[0]}", flush=True)


def resolve(name: str) -> dict[str, object]:
    """The IPv4 addresses of name through the sandbox's resolver."""
    try:
        infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"addresses": sorted({str(info[4][0]) for info in infos})}


def facts() -> dict[str, object]:
    """What a sandbox can see of IPv6, the Docker sockets and its resolver."""
    try:
        with open("/proc/net/if_inet6") as inet6:
            ipv6 = inet6.read().split("\n")
    except OSError:
        ipv6 = []
    with open("/etc/resolv.conf") as resolv:
        nameservers = [line.split()[1] for line in resolv if line.startswith("nameserver")]
    return {"ipv6": [line for line in ipv6 if line.strip()],
            "dockerSockets": [path for path in DOCKER_SOCKETS if os.path.exists(path)],
            "nameservers": nameservers}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="egress_probe")
    commands = parser.add_subparsers(dest="command", required=True)
    connecting = commands.add_parser("connect")
    connecting.add_argument("targets", nargs="+")
    connecting.add_argument("--timeout", type=float, default=3.0)
    listening = commands.add_parser("listen")
    listening.add_argument("port", type=int)
    listening.add_argument("--lifetime", type=float, default=300.0)
    resolving = commands.add_parser("resolve")
    resolving.add_argument("name")
    commands.add_parser("facts")
    args = parser.parse_args(argv)
    if args.command == "connect":
        with ThreadPoolExecutor(max_workers=len(args.targets)) as pool:
            outcomes = pool.map(lambda target: connect(target, args.timeout), args.targets)
            print(json.dumps(dict(zip(args.targets, outcomes, strict=True))), flush=True)
    elif args.command == "listen":
        listen(args.port, args.lifetime)
    elif args.command == "resolve":
        print(json.dumps(resolve(args.name)), flush=True)
    else:
        print(json.dumps(facts()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
