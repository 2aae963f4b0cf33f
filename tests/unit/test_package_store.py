"""The package store, site generations and resolution, with local wheels and a fake index (no network)."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from core.policies import PackagePolicy
from workers.index import Candidate, candidate_of
from workers.packages import PackageInstaller
from workers.site import CURRENT, SiteConflict, SiteDir, copy_file
from workers.store import file_sha256

REPO = Path(__file__).resolve().parents[2]


def make_wheel(directory: Path, name: str, version: str, *, module: str | None = None) -> Path:
    """A minimal pure-Python wheel whose module says its version."""
    module = module or name.replace("-", "_")
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", f"__version__ = {version!r}\n")
        archive.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{dist}.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist}.dist-info/RECORD", "")
    return path


class FakeIndex:
    """An index offering the wheels of one directory; counts look-ups and downloads."""

    def __init__(self, offered: Path) -> None:
        self.offered = offered
        self.downloads: list[str] = []

    def best(self, name: str, specifier: SpecifierSet) -> Candidate | None:
        found = []
        for path in self.offered.glob("*.whl"):
            dist, version = path.name.split("-")[:2]
            if canonicalize_name(dist) == canonicalize_name(name) and specifier.contains(version):
                found.append(Candidate(name, Version(version), path.name, file_sha256(path)))
        return max(found, key=lambda c: c.version, default=None)

    def download(self, candidate: Candidate, dest: Path) -> Path:
        self.downloads.append(candidate.filename)
        target = dest / candidate.filename
        target.write_bytes((self.offered / candidate.filename).read_bytes())
        return target


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def index(tmp_path: Path) -> FakeIndex:
    offered = tmp_path / "index"
    offered.mkdir()
    for version in ("10.0.0", "10.8.0"):
        make_wheel(offered, "more-itertools", version)
    return FakeIndex(offered)


@pytest.fixture
def installer(tmp_path: Path, index: FakeIndex) -> PackageInstaller:
    return PackageInstaller(PackagePolicy.load(REPO / "policies"), tmp_path / "wheels", index=index)


def test_a_wheel_is_unpacked_once_read_only_under_its_hash(installer: PackageInstaller, index: FakeIndex) -> None:
    plan = installer.plan(["more-itertools==10.0.0"], {})
    tree = installer.trees(plan.wheels)["more-itertools"]
    assert tree.name == f"sha256-{file_sha256(plan.wheels[0])}"
    for path in [tree, *tree.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o555 if path.is_dir() else 0o444), (path, oct(mode))
    assert installer.trees(plan.wheels)["more-itertools"] == tree
    assert len(list(installer.store.root.iterdir())) == 1


def test_resolution_takes_the_index_best_not_the_best_cached(installer: PackageInstaller,
                                                               index: FakeIndex) -> None:
    assert installer.plan(["more-itertools==10.0.0"], {}).installed[0]["version"] == "10.0.0"
    plan = installer.plan(["more-itertools"], {})  # only 10.0.0 is cached now
    assert plan.installed == [{"name": "more-itertools", "version": "10.8.0"}]
    assert index.downloads == ["more_itertools-10.0.0-py3-none-any.whl", "more_itertools-10.8.0-py3-none-any.whl"]


def test_a_cached_wheel_that_does_not_match_the_index_is_fetched_again(installer: PackageInstaller,
                                                                        index: FakeIndex, tmp_path: Path) -> None:
    (tmp_path / "wheels" / "more_itertools-10.8.0-py3-none-any.whl").write_bytes(b"tampered")
    plan = installer.plan(["more-itertools"], {})
    assert plan.failed == [] and file_sha256(plan.wheels[0]) == file_sha256(
        index.offered / "more_itertools-10.8.0-py3-none-any.whl")


def test_a_forced_reinstall_swaps_a_new_generation_and_leaves_the_store_and_other_sites_alone(
        installer: PackageInstaller, tmp_path: Path) -> None:
    old = installer.trees(installer.plan(["more-itertools==10.0.0"], {}).wheels)
    beta, acme = SiteDir(tmp_path / "beta"), SiteDir(tmp_path / "acme")
    beta.install(old)
    acme.install(old)
    store_before = tree_digest(old["more-itertools"])
    beta_file = beta.current / "more_itertools" / "__init__.py"
    beta_stat = beta_file.stat()
    store_stat = (old["more-itertools"] / "more_itertools" / "__init__.py").stat()
    acme_generation = acme.current

    acme.install(installer.trees(installer.plan(["more-itertools==10.8.0"], {}).wheels))  # force

    assert (acme.current / "more_itertools" / "__init__.py").read_text() == "__version__ = '10.8.0'\n"
    assert acme.current != acme_generation and not acme_generation.exists()
    assert os.readlink(acme.root / CURRENT) == acme.current.name
    assert beta_file.read_text() == "__version__ = '10.0.0'\n"
    assert tree_digest(old["more-itertools"]) == store_before
    after = beta_file.stat()
    assert (after.st_ino, after.st_nlink, after.st_ctime_ns) == (beta_stat.st_ino, 1, beta_stat.st_ctime_ns)
    store_after = (old["more-itertools"] / "more_itertools" / "__init__.py").stat()
    assert (store_after.st_nlink, store_after.st_ctime_ns) == (1, store_stat.st_ctime_ns)
    assert beta_stat.st_atime_ns == beta_stat.st_mtime_ns  # the store's access time is not copied


def test_nothing_is_ever_copied_onto_an_existing_name(tmp_path: Path) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    source.write_text("new")
    target.write_text("old")
    with pytest.raises(SiteConflict):
        copy_file(source, target)
    assert target.read_text() == "old"


def test_two_packages_with_the_same_file_leave_the_current_generation(installer: PackageInstaller,
                                                                      index: FakeIndex, tmp_path: Path) -> None:
    make_wheel(index.offered, "toolz", "1.0.0", module="more_itertools")
    site = SiteDir(tmp_path / "site")
    site.install(installer.trees(installer.plan(["more-itertools"], {}).wheels))
    before = site.current
    with pytest.raises(SiteConflict):
        site.install(installer.trees(installer.plan(["toolz"], {}).wheels))
    assert site.current == before and sorted(p.name for p in site.root.iterdir()) == [CURRENT, before.name]


def test_the_index_report_names_the_wheel_and_its_hash() -> None:
    report = {"version": "1", "install": [{"download_info": {
        "url": "https://example.invalid/p/more_itertools-10.8.0-py3-none-any.whl",
        "archive_info": {"hashes": {"sha256": "ab" * 32}}}, "metadata": {"version": "10.8.0"}}]}
    assert candidate_of(report) == Candidate("more-itertools", Version("10.8.0"),
                                             "more_itertools-10.8.0-py3-none-any.whl", "ab" * 32)
    assert candidate_of({"install": []}) is None
