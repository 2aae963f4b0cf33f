"""The per-tier part of the sandbox container config: gVisor's options differ only where gVisor needs it."""

from __future__ import annotations

from core.isolation import Tier
from core.settings import Settings
from workers.hardening import GVISOR_SENTRY_MEMORY_BYTES, GVISOR_TASKS_PER_PROCESS, sandbox_container_config


def _config(tier: Tier) -> dict:
    return sandbox_container_config(Settings(), labels={}, site_dir="/site", tier=tier)


def test_the_gvisor_tier_runs_on_runsc_and_runc_on_runc() -> None:
    assert _config(Tier.RUNC)["runtime"] == "runc" and _config(Tier.GVISOR)["runtime"] == "runsc"
    assert _config(Tier.GVISOR)["labels"]["penny.tier"] == "gvisor"


def test_gvisor_changes_only_pids_memory_and_the_seccomp_mode() -> None:
    runc, gvisor = _config(Tier.RUNC), _config(Tier.GVISOR)
    differing = {key for key in runc.keys() | gvisor.keys() if runc.get(key) != gvisor.get(key)}
    assert differing == {"runtime", "labels", "pids_limit", "mem_limit", "memswap_limit", "environment"}
    settings = Settings()
    assert runc["pids_limit"] == settings.pids_limit and runc["mem_limit"] == settings.max_memory_per_session
    assert gvisor["pids_limit"] > GVISOR_TASKS_PER_PROCESS * settings.pids_limit  # host tasks, not processes
    memory_bytes = settings.max_memory_per_session + GVISOR_SENTRY_MEMORY_BYTES
    assert gvisor["mem_limit"] == gvisor["memswap_limit"] == memory_bytes
    extra = {k: v for k, v in gvisor["environment"].items() if runc["environment"].get(k) != v}
    assert extra == {"PENNY_SECCOMP": "refuse"} and "PENNY_SECCOMP" not in runc["environment"]
