"""The deployment files: docker-compose.yml parsed and checked, Kubernetes manifests schema-validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_the_four_services_with_ports_and_healthchecks() -> None:
    services = _compose()["services"]
    assert set(services) == {"redis", "api", "worker", "flower"}
    assert "3003:3003" in services["api"]["ports"] and "5555:5555" in services["flower"]["ports"]
    for name in services:
        assert "test" in services[name]["healthcheck"], f"{name} has no healthcheck"
    assert services["worker"]["command"] == ["penny-worker"] and "ports" not in services["worker"]


def test_only_the_worker_mounts_the_docker_socket() -> None:
    services = _compose()["services"]
    mounting = {name for name, spec in services.items()
                if any("docker.sock" in str(volume) for volume in spec.get("volumes", []))}
    assert mounting == {"worker"}


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_kubernetes_manifest_is_valid_against_the_schemas() -> None:
    manifests = _manifests()
    kinds = sorted(doc["kind"] for _, doc in manifests)
    assert kinds.count("Deployment") == 3 and "DaemonSet" in kinds and "NetworkPolicy" in kinds
    for name, doc in manifests:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {doc['kind']} {doc['metadata']['name']}: {exc}")


def test_the_validator_rejects_a_broken_manifest() -> None:
    name, doc = next((n, d) for n, d in _manifests() if d["kind"] == "DaemonSet")
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"not": "a port"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_pods_have_limits_and_probes_and_the_api_runs_locked_down() -> None:
    for name, doc in _manifests():
        if doc["kind"] not in ("Deployment", "DaemonSet"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["resources"]["limits"] and container["resources"]["requests"], name
            assert "readinessProbe" in container, name
    api = next(d for _, d in _manifests() if d["metadata"]["name"] == "penny-api" and d["kind"] == "Deployment")
    context = api["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert context["runAsNonRoot"] and context["runAsUser"] == 1000 and not context["allowPrivilegeEscalation"]
    assert context["capabilities"]["drop"] == ["ALL"]
