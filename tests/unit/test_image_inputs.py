"""Inputs of the sandbox image builder (deploy/sandbox/build_image.py): no Docker needed."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "deploy" / "sandbox"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses/NamedTuple look the module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return load(SANDBOX / "build_image.py", "penny_build_image_under_test")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A minimal fake repository with every kind of image input."""
    (tmp_path / "sandbox_runtime").mkdir()
    (tmp_path / "sandbox_runtime" / "x.py").write_text("X = 1\n")
    (tmp_path / "deploy" / "sandbox").mkdir(parents=True)
    (tmp_path / "deploy" / "sandbox" / "requirements.txt").write_text("numpy==2.4.6\n")
    (tmp_path / "deploy" / "sandbox" / "build_image.py").write_text("# builder\n")
    return tmp_path


def test_hash_is_twelve_hex_digits_and_stable(builder: ModuleType, tree: Path) -> None:
    first = builder.input_hash(tree)
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert builder.input_hash(tree) == first


def test_hash_of_real_repo(builder: ModuleType) -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", builder.input_hash(REPO))


def test_hash_changes_when_a_runtime_file_changes(builder: ModuleType, tree: Path) -> None:
    before = builder.input_hash(tree)
    (tree / "sandbox_runtime" / "x.py").write_text("X = 2\n")
    assert builder.input_hash(tree) != before


def test_hash_changes_when_a_runtime_file_is_added(builder: ModuleType, tree: Path) -> None:
    before = builder.input_hash(tree)
    (tree / "sandbox_runtime" / "sub").mkdir()
    (tree / "sandbox_runtime" / "sub" / "y.py").write_text("")
    assert builder.input_hash(tree) != before


def test_hash_changes_when_a_file_is_renamed(builder: ModuleType, tree: Path) -> None:
    before = builder.input_hash(tree)
    (tree / "sandbox_runtime" / "x.py").rename(tree / "sandbox_runtime" / "z.py")
    assert builder.input_hash(tree) != before


@pytest.mark.parametrize("name", ["requirements.txt", "build_image.py"])
def test_hash_covers_the_builder_inputs(builder: ModuleType, tree: Path, name: str) -> None:
    before = builder.input_hash(tree)
    with (tree / "deploy" / "sandbox" / name).open("a") as handle:
        handle.write("# changed\n")
    assert builder.input_hash(tree) != before


def test_hash_ignores_pycache_and_pyc(builder: ModuleType, tree: Path) -> None:
    before = builder.input_hash(tree)
    cache = tree / "sandbox_runtime" / "__pycache__"
    cache.mkdir()
    (cache / "x.cpython-311.pyc").write_bytes(b"\x00junk")
    (cache / "notes.txt").write_text("also ignored")
    (tree / "sandbox_runtime" / "stray.pyc").write_bytes(b"\x00junk")
    assert builder.input_hash(tree) == before


def test_hash_with_no_runtime_dir(builder: ModuleType, tree: Path) -> None:
    (tree / "sandbox_runtime" / "x.py").unlink()
    (tree / "sandbox_runtime").rmdir()
    assert re.fullmatch(r"[0-9a-f]{12}", builder.input_hash(tree))
    assert builder.hashed_paths(tree) == ["deploy/sandbox/build_image.py", "deploy/sandbox/requirements.txt"]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("penny-sandbox:latest", ("penny-sandbox", "latest")),
        ("penny-sandbox", ("penny-sandbox", "latest")),
        ("localhost:5000/penny/sandbox:v2", ("localhost:5000/penny/sandbox", "v2")),
        ("localhost:5000/penny/sandbox", ("localhost:5000/penny/sandbox", "latest")),
    ],
)
def test_split_image_ref(builder: ModuleType, ref: str, expected: tuple[str, str]) -> None:
    assert builder.split_image_ref(ref) == expected


def test_mirror_from_deb822_and_one_line_sources(builder: ModuleType, tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("# nothing here\ndeb-src http://src.example/debian bookworm main\n")
    (etc / "sources.list.d" / "off.sources").write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    (etc / "sources.list.d" / "other.list").write_text(
        "deb [arch=amd64 signed-by=/k.gpg] https://vendor.example/apt stable-vendor main\n"
    )
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    sources = builder.read_apt_sources(builder.apt_source_files(etc))
    assert builder.pick_debian_mirror(sources) == "http://mirror.example/debian"


def test_mirror_falls_back_to_another_debian_suite_or_none(builder: ModuleType) -> None:
    source = builder.AptSource
    trixie = [source("http://mirror.example/debian-security", ("trixie-security",))]
    trixie.append(source("http://mirror.example/debian", ("trixie", "trixie-updates")))
    assert builder.pick_debian_mirror(trixie) == "http://mirror.example/debian"
    ubuntu = [source("http://archive.example/ubuntu", ("jammy", "jammy-updates"))]
    assert builder.pick_debian_mirror(ubuntu) is None
    assert builder.pick_debian_mirror([source("cdrom:[Debian]/", ("bookworm",))]) is None


def test_image_config_matches_the_dockerfile(builder: ModuleType) -> None:
    dockerfile = (SANDBOX / "Dockerfile").read_text()
    for key, value in builder.IMAGE_ENV.items():
        assert f"{key}={value}" in dockerfile
    assert 'CMD ["python3", "-m", "sandbox_runtime"]' in builder.IMAGE_CHANGES
    assert 'CMD ["python3", "-m", "sandbox_runtime"]' in dockerfile
    assert "USER 1000:1000" in builder.IMAGE_CHANGES and "USER 1000:1000" in dockerfile


def test_requirements_are_exact_pins() -> None:
    lines = [ln.strip() for ln in (SANDBOX / "requirements.txt").read_text().splitlines()]
    pins = dict(ln.split("==") for ln in lines if ln and not ln.startswith("#"))
    assert set(pins) == {"numpy", "pandas", "matplotlib", "plotly", "scipy"}
    assert all(re.fullmatch(r"\d+(\.\d+)+", version) for version in pins.values())


def test_sitecustomize_copies_a_read_only_mplconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "mplconfig"
    shipped.mkdir()
    (shipped / "fontlist-v390.json").write_text('{"_version": 390}')
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    hook = load(SANDBOX / "sitecustomize.py", "penny_sitecustomize_under_test")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == shipped else real_access(p, mode))
    environ = {"MPLCONFIGDIR": str(shipped), "TMPDIR": str(scratch)}

    target = hook.redirect_mplconfig(environ)

    assert target == environ["MPLCONFIGDIR"] == str(scratch / f".penny-mplconfig-{os.getuid()}")
    assert (Path(target) / "fontlist-v390.json").read_text() == '{"_version": 390}'
    # The runtime wipes /tmp between jobs and calls the hook again: the copy comes back.
    (Path(target) / "fontlist-v390.json").unlink()
    Path(target).rmdir()
    assert hook.redirect_mplconfig(environ) == target
    assert (Path(target) / "fontlist-v390.json").read_text() == '{"_version": 390}'


def test_sitecustomize_leaves_a_writable_mplconfig_alone(tmp_path: Path) -> None:
    hook = load(SANDBOX / "sitecustomize.py", "penny_sitecustomize_under_test")
    environ = {"MPLCONFIGDIR": str(tmp_path)}
    assert hook.redirect_mplconfig(environ) is None
    assert hook.redirect_mplconfig({}) is None
    assert environ == {"MPLCONFIGDIR": str(tmp_path)}
