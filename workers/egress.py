"""The egress-only network: the Docker bridge sandboxes join when ENABLE_NETWORKING=true.

Docker NATs a sandbox's traffic out of the host; the host firewall rules installed here take away
everything but the public internet:

- FORWARD, in Docker's DOCKER-USER chain (which FORWARD jumps to before any of Docker's own ACCEPTs):
  traffic in from the bridge to another Docker bridge (other sandboxes, other containers) or to a private,
  shared, loopback, link-local (cloud metadata), multicast or reserved range is dropped. Docker's embedded
  resolver (127.0.0.11 in each sandbox) forwards queries from the sandbox's own network namespace, so a host
  resolver in such a range stays reachable, on port 53 and nothing else.
- INPUT: everything from the bridge to the host itself is dropped: Redis, the API, a Docker TCP socket,
  any port the host listens on.
- IPv6: the network has none (Docker turns it off in the sandbox); ip6tables drops the bridge all the same.

Rules come first, then the network, so the network never exists unfiltered; the worker host installs
them again every RECHECK_EVERY_BEATS heartbeats (10 s), so a flushed firewall is mended within that time.
Installing is idempotent: the FORWARD rules live in a chain of our own (PENNY-<bridge>) rebuilt in one
iptables-restore transaction, and each jump is kept exactly once, at the head of its chain. When the rules
cannot be installed (not root, no iptables, dockerd without iptables) ensure() raises ConfigError and the
worker refuses to start.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors
import requests
from docker.types import IPAMConfig, IPAMPool

from core.errors import ConfigError
from core.settings import Settings

log = logging.getLogger(__name__)

# Never a sandbox's destination: "this network", RFC 1918 private, RFC 6598 shared (carrier NAT), loopback,
# link-local (169.254.169.254 is the clouds' metadata service), multicast, and reserved up to broadcast.
BLOCKED_RANGES = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                  "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
# Interfaces of the other Docker networks: the default bridge and the user-defined ones (br-<id>).
DOCKER_BRIDGES = ("docker0", "br-+")
# dockerd runs `iptables` from its PATH; the one whose tables hold DOCKER-USER is the one it uses.
IPTABLES_PROGRAMS = ("iptables", "iptables-nft", "iptables-legacy")
RESOLV_CONF = Path("/etc/resolv.conf")
# Docker, like us, reads the real upstream servers here when resolv.conf names only systemd-resolved's stub.
SYSTEMD_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")
IPV6_SYSCTLS = Path("/proc/sys/net/ipv6")
LABEL_EGRESS = "penny.egress"
COMMAND_TIMEOUT_S = 30
MAX_DUPLICATES = 100
# The worker host restores the rules every this many heartbeats (seconds).
RECHECK_EVERY_BEATS = 10


class CommandRunner(Protocol):
    """Runs one program (argv, no shell) with optional stdin text; a missing program is exit code 127."""

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]: ...


def run_command(argv: Sequence[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real CommandRunner: subprocess, output captured, COMMAND_TIMEOUT_S at most."""
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False,
                              timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", "command not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {COMMAND_TIMEOUT_S} s")


@dataclass(frozen=True)
class EgressNetwork:
    """The Docker network of sandboxes with networking on, and its bridge interface on the host."""

    name: str
    subnet: str
    bridge: str

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressNetwork:
        """EGRESS_NETWORK names both the Docker network and its bridge (Settings keeps it to 15 characters)."""
        return cls(name=settings.egress_network, subnet=settings.egress_subnet, bridge=settings.egress_network)

    @property
    def chain(self) -> str:
        """Our FORWARD chain (iptables allows 28 characters; a bridge name has at most 15)."""
        return f"PENNY-{self.bridge}"

    @property
    def docker_options(self) -> dict[str, str]:
        """The bridge driver options: our interface name, and no traffic between containers (icc)."""
        return {"com.docker.network.bridge.name": self.bridge,
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.enable_ip_masquerade": "true"}


@dataclass(frozen=True)
class Jump:
    """A rule that must stand once, first in a built-in chain, for the IPv4 or IPv6 firewall."""

    family: int
    chain: str
    spec: tuple[str, ...]

    @property
    def listed(self) -> str:
        """The rule as `iptables -S` prints it."""
        return " ".join(("-A", self.chain, *self.spec))


def nameservers(resolv_conf: str) -> list[str]:
    """The IPv4 `nameserver` addresses of a resolv.conf text, in order."""
    found: list[str] = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                found.append(str(ipaddress.IPv4Address(words[1])))
            except ValueError:
                continue  # IPv6: the sandboxes have none
    return found


def host_resolvers() -> list[str]:
    """The upstream servers Docker's embedded resolver forwards to: the host's, loopback ones left out."""
    servers = nameservers(RESOLV_CONF.read_text()) if RESOLV_CONF.exists() else []
    if all(ipaddress.IPv4Address(s).is_loopback for s in servers) and SYSTEMD_RESOLV_CONF.exists():
        servers = nameservers(SYSTEMD_RESOLV_CONF.read_text())
    return [s for s in servers if not ipaddress.IPv4Address(s).is_loopback]


def is_blocked(address: str) -> bool:
    """Whether an IPv4 address lies in one of BLOCKED_RANGES."""
    ip = ipaddress.IPv4Address(address)
    return any(ip in ipaddress.IPv4Network(cidr) for cidr in BLOCKED_RANGES)


def forward_rules(network: EgressNetwork, resolvers: Sequence[str]) -> list[list[str]]:
    """Our FORWARD chain for traffic in from the bridge, first match wins; what falls through, Docker accepts."""
    rules: list[list[str]] = []
    for resolver in sorted(set(filter(is_blocked, resolvers))):
        for proto in ("udp", "tcp"):
            rules.append(["-d", f"{resolver}/32", "-p", proto, "-m", proto, "--dport", "53", "-j", "RETURN"])
    # Sandbox to sandbox crosses the bridge (br_netfilter): enable_icc=false drops it too, in Docker's rules.
    rules.append(["-o", network.bridge, "-j", "DROP"])
    rules += [["-o", interface, "-j", "DROP"] for interface in DOCKER_BRIDGES]
    rules += [["-d", cidr, "-j", "DROP"] for cidr in BLOCKED_RANGES]
    return rules


def forward_chain_script(network: EgressNetwork, resolvers: Sequence[str]) -> str:
    """iptables-restore --noflush input that creates or empties our chain and refills it, atomically."""
    lines = ["*filter", f":{network.chain} - [0:0]"]
    lines += [" ".join(["-A", network.chain, *rule]) for rule in forward_rules(network, resolvers)]
    return "\n".join([*lines, "COMMIT", ""])


def jumps(network: EgressNetwork, *, ipv6: bool) -> list[Jump]:
    """The rules at the head of the built-in chains: into our chain, and drops of the host and of IPv6."""
    bridge = ("-i", network.bridge)
    found = [Jump(4, "DOCKER-USER", (*bridge, "-j", network.chain)), Jump(4, "INPUT", (*bridge, "-j", "DROP"))]
    if ipv6:
        found += [Jump(6, "INPUT", (*bridge, "-j", "DROP")), Jump(6, "FORWARD", (*bridge, "-j", "DROP"))]
    return found


def network_mismatch(attrs: dict[str, Any], network: EgressNetwork) -> str | None:
    """Why an existing Docker network (inspect attributes) is not the egress network we want, or None."""
    options = attrs.get("Options") or {}
    subnets = {config.get("Subnet") for config in (attrs.get("IPAM") or {}).get("Config") or []}
    if attrs.get("Name") != network.name or attrs.get("Driver") != "bridge":
        return f"it is not a bridge network named {network.name}"
    for option, wanted in network.docker_options.items():
        if options.get(option, "") != wanted:
            return f"its option {option} is {options.get(option)!r}, not {wanted!r}"
    if subnets != {network.subnet}:
        return f"its subnets are {sorted(map(str, subnets))}, not [{network.subnet!r}]"
    if attrs.get("EnableIPv6"):
        return "it has IPv6"
    return None


def ensure(client: docker.DockerClient, network: EgressNetwork, *, run: CommandRunner = run_command,
           resolvers: Sequence[str] | None = None, ipv6: bool | None = None) -> None:
    """Install the firewall rules, then create or check the network; ConfigError if either cannot be done.

    resolvers defaults to the host's (what Docker's embedded resolver forwards to); ipv6 to whether the
    kernel has IPv6 at all (without it, there is nothing for ip6tables to drop).
    """
    install_firewall(network, resolvers=host_resolvers() if resolvers is None else resolvers,
                     ipv6=IPV6_SYSCTLS.exists() if ipv6 is None else ipv6, run=run)
    ensure_network(client, network)
    log.info("egress network %s (%s, bridge %s) is ready behind chain %s", network.name, network.subnet,
             network.bridge, network.chain)


def restore_firewall(network: EgressNetwork, *, run: CommandRunner = run_command) -> None:
    """Install the rules again (idempotent): the worker host calls this every few seconds, so rules someone
    flushed (`iptables -F`, a firewall reload) are back within that time. ConfigError if it cannot."""
    install_firewall(network, resolvers=host_resolvers(), ipv6=IPV6_SYSCTLS.exists(), run=run)


def install_firewall(network: EgressNetwork, *, resolvers: Sequence[str], ipv6: bool,
                     run: CommandRunner = run_command) -> None:
    """(Re)build our FORWARD chain and put each jump once at the head of its chain."""
    program = docker_iptables(run)
    _checked(run([f"{program}-restore", "-w", "--noflush"], stdin=forward_chain_script(network, resolvers)))
    for jump in jumps(network, ipv6=ipv6):
        _ensure_first(run, _program(program, jump.family), jump)


def remove(client: docker.DockerClient, network: EgressNetwork, *, run: CommandRunner = run_command) -> None:
    """Take the network and its rules away (tests; turning networking off); never raises."""
    try:
        client.networks.get(network.name).remove()
    except docker.errors.NotFound:
        pass
    except (docker.errors.DockerException, requests.RequestException) as exc:
        log.warning("cannot remove network %s: %s", network.name, exc)
    try:
        program = docker_iptables(run)
    except ConfigError as exc:
        log.warning("cannot remove the rules of %s: %s", network.name, exc)
        return
    for jump in jumps(network, ipv6=True):
        iptables = _program(program, jump.family)
        for _ in range(MAX_DUPLICATES):
            if run([iptables, "-w", "-D", jump.chain, *jump.spec]).returncode != 0:
                break
    run([program, "-w", "-F", network.chain])
    run([program, "-w", "-X", network.chain])


def docker_iptables(run: CommandRunner) -> str:
    """The iptables program whose tables hold Docker's DOCKER-USER chain, i.e. the one dockerd uses."""
    failures: list[str] = []
    for program in IPTABLES_PROGRAMS:
        result = run([program, "-w", "-S", "DOCKER-USER"])
        if result.returncode == 0:
            return program
        failures.append(f"{program}: {_last_line(result)}")
    raise ConfigError("ENABLE_NETWORKING=true needs firewall rules this worker cannot install, so it will not start "
                      "(run it as root on the Docker host, or with NET_ADMIN and the host network, next to a "
                      f"dockerd that manages iptables; or set ENABLE_NETWORKING=false): {'; '.join(failures)}")


def ensure_network(client: docker.DockerClient, network: EgressNetwork) -> None:
    """Create the Docker network, or check that the existing one is exactly it."""
    try:
        try:
            attrs = client.api.inspect_network(network.name)
        except docker.errors.NotFound:
            try:
                client.networks.create(network.name, driver="bridge", options=network.docker_options,
                                       ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=network.subnet)]),
                                       enable_ipv6=False, check_duplicate=True, labels={LABEL_EGRESS: "1"})
                return
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
            attrs = client.api.inspect_network(network.name)  # another worker of this host created it first
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ConfigError(f"ENABLE_NETWORKING=true but the network {network.name} cannot be created: {exc}") from exc
    problem = network_mismatch(attrs, network)
    if problem:
        raise ConfigError(f"ENABLE_NETWORKING=true but the existing network {network.name} is not egress-only: "
                          f"{problem} (remove it, or set EGRESS_NETWORK to another name)")


def _ensure_first(run: CommandRunner, iptables: str, jump: Jump) -> None:
    """Leave jump exactly once at the head of its chain; insert before deleting, so there is no gap."""
    listing = _listing(run, iptables, jump.chain)
    if listing[:1] == [jump.listed] and listing.count(jump.listed) == 1:
        return
    _checked(run([iptables, "-w", "-I", jump.chain, "1", *jump.spec]))
    listing = _listing(run, iptables, jump.chain)
    for number in reversed([n for n, rule in enumerate(listing, start=1) if rule == jump.listed][1:]):
        _checked(run([iptables, "-w", "-D", jump.chain, str(number)]))


def _listing(run: CommandRunner, iptables: str, chain: str) -> list[str]:
    result = _checked(run([iptables, "-w", "-S", chain]))
    return [line for line in result.stdout.splitlines() if line.startswith("-A ")]


def _program(iptables: str, family: int) -> str:
    return iptables if family == 4 else iptables.replace("iptables", "ip6tables", 1)


def _checked(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if result.returncode != 0:
        raise ConfigError(f"ENABLE_NETWORKING=true but `{' '.join(result.args)}` failed "
                          f"(exit {result.returncode}): {_last_line(result)}")
    return result


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("# Warning")]
    return lines[-1].strip() if lines else f"exit {result.returncode}"
