"""The egress network's rules and their installation, against a fake firewall and a fake Docker (no root)."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from core.errors import ConfigError
from core.settings import Settings
from workers import egress
from workers.egress import EgressNetwork
from workers.hardening import sandbox_container_config

NETWORK = EgressNetwork(name="egress0", subnet="172.31.255.0/24", bridge="egress0")
DOCKER_RULES = {(4, "DOCKER-USER"): ["-j RETURN"], (4, "INPUT"): ["-i eth0 -j ACCEPT"],
                (4, "FORWARD"): ["-j DOCKER-USER", "-o docker0 -j DOCKER"], (6, "INPUT"): [], (6, "FORWARD"): []}


class FakeFirewall:
    """iptables, ip6tables and iptables-restore of one backend ("nft" or "legacy") as a CommandRunner.

    Only the backend named by `docker_backend` holds Docker's chains; `programs` lists the installed ones.
    """

    def __init__(self, *, docker_backend: str = "nft", root: bool = True,
                 programs: Sequence[str] = ("iptables", "ip6tables", "iptables-nft", "ip6tables-nft",
                                            "iptables-legacy", "ip6tables-legacy")) -> None:
        self.root = root
        self.programs = set(programs) | {f"{p}-restore" for p in programs}
        self.tables: dict[str, dict[tuple[int, str], list[str]]] = {"nft": {}, "legacy": {}}
        self.tables[docker_backend] = {chain: list(rules) for chain, rules in DOCKER_RULES.items()}
        self.calls: list[list[str]] = []
        self.events: list[str] | None = None

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        if self.events is not None:
            self.events.append(" ".join(argv[:3]))
        if argv[0] not in self.programs:
            return subprocess.CompletedProcess(argv, 127, "", "command not found")
        if not self.root:
            return subprocess.CompletedProcess(argv, 4, "", "iptables: Permission denied (you must be root).")
        family = 6 if argv[0].startswith("ip6") else 4
        chains = self.tables["legacy" if "legacy" in argv[0] else "nft"]
        if argv[0].endswith("-restore"):
            return self._restore(argv, chains, stdin or "")
        assert argv[1] == "-w", "every call waits for the xtables lock"
        op, chain, rest = argv[2], argv[3], argv[4:]
        key = (family, chain)
        if op == "-F" or op == "-X":
            if key not in chains:
                return subprocess.CompletedProcess(argv, 1, "", "No chain/target/match by that name.")
            if op == "-F":
                chains[key] = []
            else:
                del chains[key]
            return subprocess.CompletedProcess(argv, 0, "", "")
        if key not in chains:
            return subprocess.CompletedProcess(argv, 1, "", "No chain/target/match by that name.")
        rules = chains[key]
        if op == "-S":
            listing = "".join(f"-A {chain} {rule}\n" for rule in rules)
            return subprocess.CompletedProcess(argv, 0, f"-N {chain}\n{listing}", "")
        if op == "-I":
            rules.insert(int(rest[0]) - 1, " ".join(rest[1:]))
        elif op == "-D" and len(rest) == 1 and rest[0].isdigit():
            del rules[int(rest[0]) - 1]
        elif op == "-D":
            if " ".join(rest) not in rules:
                return subprocess.CompletedProcess(argv, 1, "", "Bad rule (does a matching rule exist?)")
            rules.remove(" ".join(rest))
        else:
            raise AssertionError(f"unexpected iptables call {argv}")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def _restore(self, argv: list[str], chains: dict[tuple[int, str], list[str]],
                 script: str) -> subprocess.CompletedProcess[str]:
        if "--noflush" not in argv:
            chains.clear()  # what iptables-restore does to every chain of the table without --noflush
        for line in script.splitlines():
            if line.startswith(":"):
                chains[(4, line[1:].split()[0])] = []
            elif line.startswith("-A "):
                _, chain, rule = line.split(" ", 2)
                chains[(4, chain)].append(rule)
        return subprocess.CompletedProcess(argv, 0, "", "")

    def rules(self, chain: str, *, family: int = 4, backend: str = "nft") -> list[str]:
        return self.tables[backend].get((family, chain), [])


class FakeNetworks:
    def __init__(self, client: FakeDocker) -> None:
        self.client = client

    def create(self, name: str, **kwargs: Any) -> None:
        self.client.events.append("docker network create")
        if self.client.race:
            self.client.existing = self.client.race
            raise docker.errors.APIError("conflict", response=_response(409))
        self.client.created = {"name": name, **kwargs}
        self.client.existing = _attrs(options=kwargs["options"], subnet=kwargs["ipam"]["Config"][0]["Subnet"])

    def get(self, name: str) -> FakeNetworks:
        if self.client.existing is None:
            raise docker.errors.NotFound(name)
        return self

    def remove(self) -> None:
        self.client.existing = None


class FakeDocker:
    """The few calls egress makes of a DockerClient; `race` is a network another worker creates first."""

    def __init__(self, existing: dict[str, Any] | None = None, race: dict[str, Any] | None = None) -> None:
        self.existing, self.race = existing, race
        self.created: dict[str, Any] | None = None
        self.events: list[str] = []
        self.networks = FakeNetworks(self)
        self.api = self

    def inspect_network(self, name: str) -> dict[str, Any]:
        if self.existing is None:
            raise docker.errors.NotFound(name)
        return self.existing


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    return response


def _attrs(*, options: dict[str, str] | None = None, subnet: str = NETWORK.subnet, **over: Any) -> dict[str, Any]:
    return {"Name": NETWORK.name, "Driver": "bridge", "EnableIPv6": False, "IPAM": {"Config": [{"Subnet": subnet}]},
            "Options": dict(NETWORK.docker_options if options is None else options), **over}


def verdict(rules: list[list[str]], *, dst: str, proto: str = "tcp", port: int = 443, out: str = "eth0") -> str:
    """What our chain does with a packet in from the bridge: the first matching rule's target, else RETURN."""
    for rule in rules:
        match = dict(zip(rule[::2], rule[1::2], strict=True))
        if "-d" in match and ipaddress.ip_address(dst) not in ipaddress.ip_network(match["-d"]):
            continue
        if match.get("-p", proto) != proto or int(match.get("--dport", port)) != port:
            continue
        wanted = match.get("-o", out)
        if wanted != out and not (wanted.endswith("+") and out.startswith(wanted[:-1])):
            continue
        return match["-j"]
    return "RETURN"


@pytest.mark.parametrize("dst", ["10.1.2.3", "172.17.0.2", "172.31.255.7", "192.168.1.1", "169.254.169.254",
                                 "100.64.0.1", "127.0.0.1", "0.0.0.1", "224.0.0.251", "255.255.255.255"])
def test_private_metadata_and_reserved_destinations_are_dropped(dst: str) -> None:
    assert verdict(egress.forward_rules(NETWORK, []), dst=dst) == "DROP"


@pytest.mark.parametrize("dst", ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1"])
def test_public_destinations_go_on_to_dockers_rules(dst: str) -> None:
    assert verdict(egress.forward_rules(NETWORK, []), dst=dst) == "RETURN"


@pytest.mark.parametrize("out", ["egress0", "docker0", "br-0123456789ab"])
def test_other_sandboxes_and_other_docker_networks_are_dropped(out: str) -> None:
    assert verdict(egress.forward_rules(NETWORK, []), dst="8.8.8.8", out=out) == "DROP"


def test_a_private_resolver_is_reachable_on_port_53_only() -> None:
    rules = egress.forward_rules(NETWORK, ["10.255.255.53"])
    assert verdict(rules, dst="10.255.255.53", proto="udp", port=53) == "RETURN"
    assert verdict(rules, dst="10.255.255.53", proto="tcp", port=53) == "RETURN"
    assert verdict(rules, dst="10.255.255.53", proto="tcp", port=443) == "DROP"
    assert verdict(rules, dst="10.255.255.53", proto="udp", port=123) == "DROP"
    assert verdict(rules, dst="10.255.255.54", proto="udp", port=53) == "DROP"


def test_a_public_resolver_needs_no_exception() -> None:
    assert egress.forward_rules(NETWORK, ["8.8.8.8", "1.1.1.1"]) == egress.forward_rules(NETWORK, [])


def test_nameservers_are_the_ipv4_ones_in_order() -> None:
    text = "# generated\nsearch example\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 127.0.0.53\noptions ndots:0\n"
    assert egress.nameservers(text) == ["10.0.0.2", "127.0.0.53"]


def test_behind_a_systemd_stub_the_real_resolvers_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "stub").write_text("nameserver 127.0.0.53\n")
    (tmp_path / "real").write_text("nameserver 192.168.0.1\nnameserver 127.0.0.1\n")
    monkeypatch.setattr(egress, "RESOLV_CONF", tmp_path / "stub")
    monkeypatch.setattr(egress, "SYSTEMD_RESOLV_CONF", tmp_path / "real")
    assert egress.host_resolvers() == ["192.168.0.1"]


def test_installing_builds_the_chain_and_puts_each_jump_first() -> None:
    firewall = FakeFirewall()
    egress.install_firewall(NETWORK, resolvers=["10.255.255.53"], ipv6=True, run=firewall)
    assert firewall.rules("PENNY-egress0") == [" ".join(r) for r in egress.forward_rules(NETWORK, ["10.255.255.53"])]
    assert firewall.rules("DOCKER-USER") == ["-i egress0 -j PENNY-egress0", "-j RETURN"]
    assert firewall.rules("INPUT") == ["-i egress0 -j DROP", "-i eth0 -j ACCEPT"]
    assert firewall.rules("INPUT", family=6) == ["-i egress0 -j DROP"]
    assert firewall.rules("FORWARD", family=6) == ["-i egress0 -j DROP"]
    assert firewall.rules("FORWARD") == DOCKER_RULES[(4, "FORWARD")]  # --noflush: Docker's rules stay


def test_installing_again_changes_nothing() -> None:
    firewall = FakeFirewall()
    egress.install_firewall(NETWORK, resolvers=[], ipv6=True, run=firewall)
    before = {chain: list(rules) for chain, rules in firewall.tables["nft"].items()}
    firewall.calls.clear()
    egress.install_firewall(NETWORK, resolvers=[], ipv6=True, run=firewall)
    assert firewall.tables["nft"] == before
    assert not [call for call in firewall.calls if "-I" in call or "-D" in call]


def test_a_jump_pushed_down_or_doubled_is_left_once_at_the_head() -> None:
    firewall = FakeFirewall()
    egress.install_firewall(NETWORK, resolvers=[], ipv6=False, run=firewall)
    firewall.rules("DOCKER-USER").insert(0, "-i egress0 -j ACCEPT")
    firewall.rules("INPUT").append("-i egress0 -j DROP")
    egress.install_firewall(NETWORK, resolvers=[], ipv6=False, run=firewall)
    assert firewall.rules("DOCKER-USER") == ["-i egress0 -j PENNY-egress0", "-i egress0 -j ACCEPT", "-j RETURN"]
    assert firewall.rules("INPUT") == ["-i egress0 -j DROP", "-i eth0 -j ACCEPT"]


def test_flushed_rules_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    firewall = FakeFirewall()
    monkeypatch.setattr(egress, "host_resolvers", lambda: [])
    egress.install_firewall(NETWORK, resolvers=[], ipv6=False, run=firewall)
    for chain in ("DOCKER-USER", "INPUT", "PENNY-egress0"):  # what `iptables -F <chain>` leaves
        firewall.rules(chain).clear()
    egress.restore_firewall(NETWORK, run=firewall)
    assert firewall.rules("DOCKER-USER") == ["-i egress0 -j PENNY-egress0"]
    assert firewall.rules("INPUT") == ["-i egress0 -j DROP"]
    assert firewall.rules("PENNY-egress0") == [" ".join(r) for r in egress.forward_rules(NETWORK, [])]


def test_without_ipv6_in_the_kernel_ip6tables_is_left_alone() -> None:
    firewall = FakeFirewall(programs=("iptables",))
    egress.install_firewall(NETWORK, resolvers=[], ipv6=False, run=firewall)
    assert not [call for call in firewall.calls if call[0].startswith("ip6")]


def test_the_iptables_holding_dockers_chains_is_used() -> None:
    firewall = FakeFirewall(docker_backend="legacy")
    egress.install_firewall(NETWORK, resolvers=[], ipv6=True, run=firewall)
    assert firewall.rules("DOCKER-USER", backend="legacy")[0] == "-i egress0 -j PENNY-egress0"
    assert firewall.rules("INPUT", family=6, backend="legacy") == ["-i egress0 -j DROP"]
    assert firewall.tables["nft"] == {}


@pytest.mark.parametrize("firewall, reason", [
    (FakeFirewall(programs=()), "iptables: command not found"),
    (FakeFirewall(root=False), "Permission denied"),
    (FakeFirewall(docker_backend="none"), "No chain/target/match"),
], ids=["no-iptables", "not-root", "dockerd-without-iptables"])
def test_a_worker_that_cannot_install_the_rules_refuses_to_start(firewall: FakeFirewall, reason: str) -> None:
    client = FakeDocker()
    with pytest.raises(ConfigError, match="ENABLE_NETWORKING=true needs firewall rules") as raised:
        egress.ensure(client, NETWORK, run=firewall, resolvers=[], ipv6=True)  # type: ignore[arg-type]
    assert reason in str(raised.value)
    assert client.created is None and client.events == []  # and no network without its rules


def test_the_rules_are_in_place_before_the_network_exists() -> None:
    client, firewall = FakeDocker(), FakeFirewall()
    firewall.events = client.events
    egress.ensure(client, NETWORK, run=firewall, resolvers=[], ipv6=True)  # type: ignore[arg-type]
    assert client.events[-1] == "docker network create"
    assert any(event.startswith("iptables-restore") for event in client.events[:-1])
    assert client.created is not None
    assert client.created["options"]["com.docker.network.bridge.enable_icc"] == "false"
    assert client.created["options"]["com.docker.network.bridge.name"] == "egress0"
    assert client.created["enable_ipv6"] is False


def test_an_existing_egress_network_is_kept() -> None:
    client = FakeDocker(existing=_attrs())
    egress.ensure_network(client, NETWORK)  # type: ignore[arg-type]
    assert client.created is None


def test_a_network_another_worker_created_first_is_checked_like_an_existing_one() -> None:
    client = FakeDocker(race=_attrs(options={**NETWORK.docker_options,
                                             "com.docker.network.bridge.enable_icc": "true"}))
    with pytest.raises(ConfigError, match="enable_icc is 'true'"):
        egress.ensure_network(client, NETWORK)  # type: ignore[arg-type]


@pytest.mark.parametrize("attrs, problem", [
    (_attrs(options={"com.docker.network.bridge.name": "egress0"}), "enable_icc is None"),
    (_attrs(options={**NETWORK.docker_options, "com.docker.network.bridge.name": "br-1234"}), "bridge.name"),
    (_attrs(subnet="172.18.0.0/16"), "subnets are ['172.18.0.0/16']"),
    (_attrs(EnableIPv6=True), "it has IPv6"),
    (_attrs(Driver="macvlan"), "not a bridge network"),
])
def test_a_network_that_is_not_egress_only_is_refused(attrs: dict[str, Any], problem: str) -> None:
    assert problem in (egress.network_mismatch(attrs, NETWORK) or "")
    with pytest.raises(ConfigError, match="is not egress-only"):
        egress.ensure_network(FakeDocker(existing=attrs), NETWORK)  # type: ignore[arg-type]


def test_remove_takes_the_network_and_every_rule_away() -> None:
    client, firewall = FakeDocker(), FakeFirewall()
    egress.ensure(client, NETWORK, run=firewall, resolvers=[], ipv6=True)  # type: ignore[arg-type]
    firewall.rules("INPUT").append("-i egress0 -j DROP")
    egress.remove(client, NETWORK, run=firewall)  # type: ignore[arg-type]
    assert client.existing is None
    assert firewall.tables["nft"] == DOCKER_RULES


def test_remove_never_raises() -> None:
    egress.remove(FakeDocker(), NETWORK, run=FakeFirewall(programs=()))  # type: ignore[arg-type]


def test_the_network_is_named_by_the_settings() -> None:
    settings = Settings(enable_networking=True, egress_network="penny-egress", egress_subnet="10.99.0.0/24")
    network = EgressNetwork.from_settings(settings)
    assert (network.name, network.bridge, network.subnet) == ("penny-egress", "penny-egress", "10.99.0.0/24")
    assert len(EgressNetwork("x" * 15, "10.99.0.0/24", "x" * 15).chain) <= 28  # iptables' limit


def test_sandboxes_get_no_network_unless_networking_is_enabled() -> None:
    off = sandbox_container_config(Settings(), labels={}, site_dir="/site")
    on = sandbox_container_config(Settings(enable_networking=True, egress_network="egress0"), labels={},
                                  site_dir="/site")
    assert off["network_mode"] == "none" and on["network_mode"] == "egress0"
    assert "dns" not in on and on["cap_drop"] == ["ALL"]  # no NET_RAW: no raw sockets, no spoofed sources
