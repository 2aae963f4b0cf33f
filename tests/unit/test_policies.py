from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.policies import DEFAULT_POLICY_DIR, PackagePolicy
from core.settings import Settings
from workers.hardening import sandbox_container_config

REPO_POLICIES = DEFAULT_POLICY_DIR


def test_the_shipped_policy_loads_and_admits_the_preinstalled_set() -> None:
    policy = PackagePolicy.load(DEFAULT_POLICY_DIR)
    for name in ("numpy", "pandas", "matplotlib", "plotly", "scipy", "tabulate"):
        assert policy.check(name)[1] is None


@pytest.mark.parametrize("spec, reason", [
    ("left-pad", "not in the package allowlist"),
    ("tabulate==0.8.10", "outside the allowed range"),
    ("tabulate @ https://example.invalid/t.whl", "URLs, markers and extras are not allowed"),
    ("not a requirement!", "is not a package requirement"),
])
def test_refusals_give_a_reason(spec: str, reason: str) -> None:
    assert reason in (PackagePolicy.load(DEFAULT_POLICY_DIR).check(spec)[1] or "")


@pytest.mark.parametrize("content, message", [
    ("{", "invalid JSON"),
    ('{"packages": {}}', "key 'packages' must be a list"),
    ('{"packages": [{"name": "x", "category": "toys", "versions": ">=1", "description": "d"}]}',
     r"packages\[0\].category must be one of"),
    ('{"packages": [{"name": "x", "category": "text", "versions": "soon", "description": "d"}]}',
     r"packages\[0\].versions is not a version range"),
    ('{"packages": [{"name": "x", "category": "text", "versions": ">=1"}]}', r"packages\[0\].description"),
])
def test_a_bad_policy_file_names_the_file_and_the_key(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "packages.json").write_text(content)
    with pytest.raises(ConfigError, match=message) as raised:
        PackagePolicy.load(tmp_path)
    assert str(tmp_path / "packages.json") in str(raised.value)


def test_a_package_listed_twice_is_refused(tmp_path: Path) -> None:
    entry = {"name": "Tabulate", "category": "text", "versions": ">=0.9", "description": "d"}
    (tmp_path / "packages.json").write_text(json.dumps({"packages": [entry, {**entry, "name": "tabulate"}]}))
    with pytest.raises(ConfigError, match="listed twice"):
        PackagePolicy.load(tmp_path)


def test_resources_json_sets_the_limits_and_an_environment_variable_overrides_it(tmp_path: Path) -> None:
    shutil.copytree(REPO_POLICIES, tmp_path, dirs_exist_ok=True)
    resources = json.loads((tmp_path / "resources.json").read_text())
    resources["memory"]["maxMemoryPerSession"] = 256 * 1024 * 1024
    resources["cpu"]["maxExecutionTime"] = 5000
    resources["storage"]["maxTotalStorage"] = 50 * 1024 * 1024
    (tmp_path / "resources.json").write_text(json.dumps(resources))
    settings = Settings.from_env({"POLICY_DIR": str(tmp_path), "MAX_EXECUTION_TIME": "7000"})
    assert settings.max_memory_per_session == 256 * 1024 * 1024
    assert settings.workspace_size_bytes == 50 * 1024 * 1024
    assert settings.max_execution_time == 7000  # the environment wins
    config = sandbox_container_config(settings, labels={}, site_dir="/x")
    assert config["mem_limit"] == config["memswap_limit"] == 256 * 1024 * 1024
    assert "size=52428800" in config["tmpfs"]["/workspace"]


@pytest.mark.parametrize("path, value, key", [
    (("memory", "maxMemoryPerSession"), "lots", "memory.maxMemoryPerSession"),
    (("cpu", "maxCpuPercentage"), 0, "cpu.maxCpuPercentage"),
    (("storage", "maxFileSize"), 10**12, "storage.maxFileSize"),
])
def test_a_bad_resources_json_stops_start_up_naming_the_key(tmp_path: Path, path: tuple[str, str], value: object,
                                                            key: str) -> None:
    shutil.copytree(REPO_POLICIES, tmp_path, dirs_exist_ok=True)
    resources = json.loads((tmp_path / "resources.json").read_text())
    resources[path[0]][path[1]] = value
    (tmp_path / "resources.json").write_text(json.dumps(resources))
    with pytest.raises(ConfigError, match=rf"resources\.json.*{key.split('.')[-1]}"):
        Settings.from_env({"POLICY_DIR": str(tmp_path)})


def test_the_sandboxes_get_the_runtime_policy_from_imports_and_filesystem_json() -> None:
    policy = json.loads(sandbox_container_config(Settings(), labels={}, site_dir="/x")["environment"]["PENNY_POLICY"])
    assert "os" in policy["blockedModules"] and "eval" in policy["blockedBuiltins"]
    assert policy["writablePaths"] == ["/tmp", "/workspace"] and "/etc" in policy["blockedPaths"]
