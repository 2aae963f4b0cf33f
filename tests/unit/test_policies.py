from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.policies import DEFAULT_POLICY_DIR, PackagePolicy


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
