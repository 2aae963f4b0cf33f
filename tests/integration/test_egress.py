"""ENABLE_NETWORKING=true for real: a sandbox on the egress network reaches the internet and nothing else.

Every blocked destination has a live listener behind it, so a test fails when the firewall lets traffic
through: the host listens on all its addresses, a second sandbox listens on the network, and a network
namespace of the test's own (the sink) holds a 10.x, a 192.168.x and the metadata address 169.254.169.254.
Traffic from the test's subnet to those three is policy-routed into the sink, so nothing the test sends there
leaves this machine, rules or no rules. Before the rules go in, a sandbox does reach the host and the sink:
the listeners and the routes work, and what stops the later attempts is the rules.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from core.settings import Settings
from tests.conftest import require
from tests.integration.conftest import docker_ready
from workers import egress
from workers.egress import EgressNetwork
from workers.hardening import LABEL_WORKER, sandbox_container_config

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "penny-sandbox:latest"
PROBE = Path(__file__).resolve().with_name("egress_probe.py")
PROBE_IN_SANDBOX = "/probe/egress_probe.py"
SINK_PORT = 80
SANDBOX_PORT = 8080
BLOCKED_TIMEOUT_S = 3.0
WAIT_S = 30.0


def ip(*args: str) -> str:
    """Run `ip args` (iproute2) and return its output."""
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _taken_ranges(client: docker.DockerClient) -> list[ipaddress.IPv4Network]:
    """Subnets of Docker networks, routes and addresses of this host: what a test subnet must not overlap."""
    taken: list[ipaddress.IPv4Network] = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError):
                taken.append(ipaddress.IPv4Network(config.get("Subnet", ""), strict=False))
    words = ip("-4", "route", "show", "table", "all").split() + ip("-4", "-o", "addr", "show").split()
    for word in words:
        if word[:1].isdigit():
            with contextlib.suppress(ValueError):
                taken.append(ipaddress.IPv4Network(word, strict=False))
    return taken


def _free(candidates: list[str], taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    random.shuffle(candidates)
    for candidate in candidates:
        network = ipaddress.IPv4Network(candidate)
        if not any(network.overlaps(other) for other in taken):
            taken.append(network)
            return network
    raise AssertionError(f"no free subnet among {len(candidates)} candidates")


def _free_egress_network(client: docker.DockerClient, suffix: str) -> EgressNetwork:
    subnet = _free([f"172.{b}.{c}.0/24" for b in (28, 29, 30) for c in range(256)], _taken_ranges(client))
    return EgressNetwork(name=f"pe-{suffix}", subnet=str(subnet), bridge=f"pe-{suffix}")


class HostListener:
    """A TCP listener on 0.0.0.0 of this host that records who connected."""

    def __init__(self) -> None:
        self._server = socket.create_server(("0.0.0.0", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self.peers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="host-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, peer = self._server.accept()
            except TimeoutError:
                continue
            client.close()
            self.peers.append(peer[0])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@dataclass
class Sink:
    """A network namespace behind a veth pair, listening on the targets the sandbox subnet is routed to it for."""

    name: str
    subnet: str
    targets: list[str]
    link: ipaddress.IPv4Network
    table: int
    peers: list[str] = field(default_factory=list)
    _process: subprocess.Popen[str] | None = None
    _listening: threading.Event = field(default_factory=threading.Event)

    @property
    def host_side(self) -> str:
        return f"{self.name}h"

    def start(self) -> None:
        host, sink = str(self.link[1]), str(self.link[2])
        ip("netns", "add", self.name)
        ip("link", "add", self.host_side, "type", "veth", "peer", "name", f"{self.name}s")
        ip("link", "set", f"{self.name}s", "netns", self.name)
        ip("addr", "add", f"{host}/30", "dev", self.host_side)
        ip("link", "set", self.host_side, "up")
        ip("-n", self.name, "link", "set", "lo", "up")
        ip("-n", self.name, "addr", "add", f"{sink}/30", "dev", f"{self.name}s")
        for target in self.targets:
            ip("-n", self.name, "addr", "add", f"{target}/32", "dev", f"{self.name}s")
        ip("-n", self.name, "link", "set", f"{self.name}s", "up")
        ip("-n", self.name, "route", "add", "default", "via", host)
        ip("route", "add", "default", "via", sink, "dev", self.host_side, "table", str(self.table))
        for offset, target in enumerate(self.targets):
            ip("rule", "add", "from", self.subnet, "to", f"{target}/32", "table", str(self.table),
               "priority", str(self.table + offset))
        self._process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, str(PROBE), "listen", str(SINK_PORT)],
            stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, name="sink-listener", daemon=True).start()
        assert self._listening.wait(WAIT_S), "the sink's listener did not start"

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("listening"):
                self._listening.set()
            elif line.startswith("accepted "):
                self.peers.append(line.split()[1])

    def routes_every_target_into_itself(self, source: str) -> bool:
        """Whether traffic from `source` (in the subnet) to each target goes into the sink, never out of the host."""
        return all(f"dev {self.host_side} " in ip("-4", "route", "get", target, "from", source)
                   for target in self.targets)

    def stop(self) -> None:
        """Take everything down; never raises."""
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        for offset, target in enumerate(self.targets):
            subprocess.run(["ip", "rule", "del", "from", self.subnet, "to", f"{target}/32", "table",
                            str(self.table), "priority", str(self.table + offset)], capture_output=True)
        subprocess.run(["ip", "route", "flush", "table", str(self.table)], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_side], capture_output=True)


@dataclass
class Lab:
    client: docker.DockerClient
    network: EgressNetwork
    settings: Settings
    site_dir: Path
    gateway: str
    host: HostListener
    sink: Sink
    before: dict[str, str]
    before_host_peers: int
    before_sink_peers: int
    neighbour: Any = None

    def probe(self, *args: str) -> str:
        """Run egress_probe.py with args in a fresh, hardened sandbox on the egress network; its output."""
        container = self.client.containers.run(**self.sandbox_config(list(args)))
        try:
            container.wait(timeout=60)
            return str(container.logs(stdout=True, stderr=True).decode())
        finally:
            container.remove(force=True)

    def connect(self, *targets: str, timeout_s: float = BLOCKED_TIMEOUT_S) -> dict[str, str]:
        """{target: outcome} of TCP connections a sandbox tries, all at once."""
        outcomes: dict[str, str] = json.loads(self.probe("connect", *targets, "--timeout", str(timeout_s)))
        return outcomes

    def sandbox_config(self, command: list[str]) -> dict[str, Any]:
        """The worker's own hardening, with the probe as the program and its logs kept for us to read."""
        config = sandbox_container_config(self.settings, labels={LABEL_WORKER: self.settings.worker_name},
                                          site_dir=str(self.site_dir))
        del config["log_config"]
        config.update(entrypoint=["python3", PROBE_IN_SANDBOX], command=command, detach=True, stdin_open=False,
                      auto_remove=False)
        config["volumes"] = {**config["volumes"], str(PROBE): {"bind": PROBE_IN_SANDBOX, "mode": "ro"}}
        return config


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    require(docker_ready(), f"no Docker engine or no {IMAGE} image (run `make test`)")
    require(os.geteuid() == 0, "installing the egress firewall needs root")
    require(shutil.which("ip") is not None and shutil.which("iptables") is not None, "iproute2 or iptables missing")
    return docker.from_env(timeout=60)


@pytest.fixture(scope="module")
def lab(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    suffix = uuid.uuid4().hex[:8]
    network = _free_egress_network(client, suffix)
    taken = _taken_ranges(client)
    sink_range = _free([f"10.{b}.{c}.0/24" for b in range(16, 250) for c in (7, 77, 177)], taken)
    targets = [str(sink_range[77]), str(_free([f"192.168.{c}.0/24" for c in range(256)], taken)[77]),
               "169.254.169.254"]
    assert not any(ipaddress.IPv4Address(r) in sink_range for r in egress.host_resolvers())
    settings = Settings(enable_networking=True, egress_network=network.name, egress_subnet=network.subnet,
                        worker_name=f"egress-test-{suffix}")
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(egress.remove, client, network)
        cleanup.callback(_remove_containers, client, settings.worker_name)  # runs first: they hold the network
        egress.ensure_network(client, network)  # no rules yet: the control run below
        gateway = ip("-4", "-o", "addr", "show", "dev", network.bridge).split()[3].split("/")[0]
        host = HostListener()
        cleanup.callback(host.close)
        sink = Sink(f"pe{suffix}", network.subnet, targets, ipaddress.IPv4Network(f"{sink_range[0]}/30"),
                    table=20_000 + random.randrange(10_000))
        cleanup.callback(sink.stop)
        sink.start()
        assert sink.routes_every_target_into_itself(gateway), "refusing to send the sink's traffic off this machine"
        site_dir = tmp_path_factory.mktemp("egress-site")
        lab = Lab(client, network, settings, site_dir, gateway, host, sink, {}, 0, 0)
        lab.before = lab.connect(f"{gateway}:{host.port}", *(f"{t}:{SINK_PORT}" for t in targets))
        lab.before_host_peers, lab.before_sink_peers = len(host.peers), len(sink.peers)
        egress.ensure(client, network)  # what the worker does at start-up: the rules, then the existing network
        lab.neighbour = client.containers.run(**lab.sandbox_config(["listen", str(SANDBOX_PORT)]))
        _wait_for(lambda: b"listening" in lab.neighbour.logs(), "the neighbour sandbox's listener")
        yield lab


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not come up within {WAIT_S} s"
        time.sleep(0.1)


def _remove_containers(client: docker.DockerClient, worker: str) -> None:
    for container in client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL_WORKER}={worker}"}):
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


def _host_addresses() -> list[str]:
    """Every IPv4 address of this host but loopback: the bridges' gateways, docker0, the uplink."""
    words = ip("-4", "-o", "addr", "show").split()
    found = [words[i + 1].split("/")[0] for i, word in enumerate(words) if word == "inet"]
    return [address for address in found if not address.startswith("127.")]


def _listening_ports() -> list[int]:
    """TCP ports this host listens on for every address (0.0.0.0): Redis, the API, a Docker TCP socket..."""
    ports: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port = local.split(":")
        if state == "0A" and address == "00000000":
            ports.add(int(port, 16))
    return sorted(ports)[:64]


def test_without_the_rules_the_host_and_the_sink_are_reachable(lab: Lab) -> None:
    assert set(lab.before.values()) == {"connected"}, lab.before
    assert lab.before_host_peers == 1 and lab.before_sink_peers == len(lab.sink.targets)


def test_a_sandbox_reaches_the_internet(lab: Lab) -> None:
    from pip._internal.models.index import PyPI  # a host this machine may reach, named at run time only

    try:
        address = socket.getaddrinfo(PyPI.netloc, 443, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError:
        address = ""
    require(bool(address), "this host cannot resolve the package index, so it has no internet to compare with")
    target = f"{address}:443"
    assert lab.connect(target, timeout_s=15)[target] == "connected"


def test_a_sandbox_resolves_names_through_dockers_resolver(lab: Lab) -> None:
    from pip._internal.models.index import PyPI

    assert json.loads(lab.probe("facts"))["nameservers"] == ["127.0.0.11"]
    resolved = json.loads(lab.probe("resolve", PyPI.netloc))
    assert resolved.get("addresses"), resolved


def test_a_sandbox_cannot_reach_any_address_of_the_host(lab: Lab) -> None:
    addresses = _host_addresses()
    assert lab.gateway in addresses
    outcomes = lab.connect(*(f"{address}:{lab.host.port}" for address in addresses))
    assert "connected" not in outcomes.values(), outcomes
    assert len(lab.host.peers) == lab.before_host_peers  # the host's listener saw nobody new


def test_no_port_the_host_listens_on_is_reachable_nor_the_docker_socket(lab: Lab) -> None:
    ports = sorted({*_listening_ports(), 2375, 2376})
    outcomes = lab.connect(*(f"{lab.gateway}:{port}" for port in ports))
    assert "connected" not in outcomes.values(), outcomes
    assert json.loads(lab.probe("facts"))["dockerSockets"] == []


def test_a_sandbox_cannot_reach_another_sandbox(lab: Lab) -> None:
    lab.neighbour.reload()
    address = lab.neighbour.attrs["NetworkSettings"]["Networks"][lab.network.name]["IPAddress"]
    target = f"{address}:{SANDBOX_PORT}"
    assert lab.connect(target)[target] != "connected"
    # The neighbour's listener works: it accepts its own connection, and that is the only one it saw.
    exit_code, output = lab.neighbour.exec_run(["python3", PROBE_IN_SANDBOX, "connect", f"127.0.0.1:{SANDBOX_PORT}"])
    assert exit_code == 0 and "connected" in output.decode()
    _wait_for(lambda: b"accepted" in lab.neighbour.logs(), "the neighbour's own connection")
    accepted = [line for line in lab.neighbour.logs().decode().splitlines() if line.startswith("accepted")]
    assert accepted == ["accepted 127.0.0.1"]


def test_private_and_metadata_addresses_are_unreachable(lab: Lab) -> None:
    assert lab.sink.routes_every_target_into_itself(lab.gateway)  # so nothing below leaves this machine
    outcomes = lab.connect(*(f"{target}:{SINK_PORT}" for target in lab.sink.targets))
    assert "connected" not in outcomes.values(), outcomes
    assert len(lab.sink.peers) == lab.before_sink_peers


def test_a_sandbox_has_no_ipv6(lab: Lab) -> None:
    assert json.loads(lab.probe("facts"))["ipv6"] == []


def test_installing_again_leaves_one_copy_of_each_rule_first_in_its_chain(lab: Lab) -> None:
    program = egress.docker_iptables(egress.run_command)
    chain = subprocess.run([program, "-S", lab.network.chain], check=True, capture_output=True, text=True).stdout
    egress.ensure(lab.client, lab.network)
    assert subprocess.run([program, "-S", lab.network.chain], capture_output=True, text=True).stdout == chain
    for jump in egress.jumps(lab.network, ipv6=True):
        listing = subprocess.run([program.replace("iptables", "ip6tables") if jump.family == 6 else program,
                                  "-S", jump.chain], check=True, capture_output=True, text=True).stdout
        rules = [line for line in listing.splitlines() if line.startswith("-A ")]
        assert rules[0] == jump.listed and rules.count(jump.listed) == 1, rules


def test_rules_someone_flushed_are_restored_by_the_worker_hosts_recheck(lab: Lab) -> None:
    program = egress.docker_iptables(egress.run_command)
    for jump in egress.jumps(lab.network, ipv6=False):  # what a firewall reload does to our rules
        subprocess.run([program, "-w", "-D", jump.chain, *jump.spec], check=True)
    subprocess.run([program, "-w", "-F", lab.network.chain], check=True)
    egress.restore_firewall(lab.network)  # the worker host does this every RECHECK_EVERY_BEATS heartbeats
    outcomes = lab.connect(f"{lab.gateway}:{lab.host.port}", *(f"{t}:{SINK_PORT}" for t in lab.sink.targets))
    assert "connected" not in outcomes.values(), outcomes
    assert len(lab.host.peers) == lab.before_host_peers and len(lab.sink.peers) == lab.before_sink_peers


def test_remove_leaves_no_rule_and_no_network_behind(client: docker.DockerClient) -> None:
    network = _free_egress_network(client, uuid.uuid4().hex[:8])
    try:
        egress.ensure(client, network)
    finally:
        egress.remove(client, network)
    program = egress.docker_iptables(egress.run_command)
    for iptables in (program, program.replace("iptables", "ip6tables")):
        assert network.bridge not in subprocess.run([iptables, "-S"], capture_output=True, text=True).stdout
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(network.name)
