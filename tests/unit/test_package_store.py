"""The package store, site generations and resolution, with local wheels and a fake index (no network)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from core.policies import PackagePolicy
from workers.deadline import Deadline
from workers.index import AnswerCache, Candidate, IndexUnavailable, PipIndex, candidate_of, wheel_filename_of
from workers.packages import PackageInstaller
from workers.site import CURRENT, SiteConflict, SiteDir, copy_file
from workers.store import LAYOUT, STORE_EPOCH_S, PackageStore, StoreError, file_sha256
from workers.wheel_lock import WheelLock

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
        self.lookups: list[str] = []
        self.down = False

    def best(self, name: str, specifier: SpecifierSet, deadline: Deadline) -> Candidate | None:
        self.lookups.append(f"{canonicalize_name(name)}{specifier}")
        if self.down:
            raise IndexUnavailable("the index is down")
        found = []
        for path in self.offered.glob("*.whl"):
            dist, version = path.name.split("-")[:2]
            if canonicalize_name(dist) == canonicalize_name(name) and specifier.contains(version):
                found.append(Candidate(name, Version(version), path.name, file_sha256(path)))
        return max(found, key=lambda c: c.version, default=None)

    def download(self, candidate: Candidate, dest: Path, deadline: Deadline) -> Path:
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
    tree = installer.trees(plan)["more-itertools"]
    assert tree.name == f"sha256-{file_sha256(plan.wheels[0])}.{LAYOUT}"
    for path in [tree, *tree.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o555 if path.is_dir() else 0o444), (path, oct(mode))
    assert installer.trees(plan)["more-itertools"] == tree
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
    old = installer.trees(installer.plan(["more-itertools==10.0.0"], {}))
    beta, acme = SiteDir(tmp_path / "beta"), SiteDir(tmp_path / "acme")
    beta.install(old)
    acme.install(old)
    store_before = tree_digest(old["more-itertools"])
    beta_file = beta.current / "more_itertools" / "__init__.py"
    beta_stat = beta_file.stat()
    store_stat = (old["more-itertools"] / "more_itertools" / "__init__.py").stat()
    acme_generation = acme.current

    acme.install(installer.trees(installer.plan(["more-itertools==10.8.0"], {})))  # force

    assert (acme.current / "more_itertools" / "__init__.py").read_text() == "__version__ = '10.8.0'\n"
    assert acme.current != acme_generation and not acme_generation.exists()
    assert os.readlink(acme.root / CURRENT) == acme.current.name
    assert beta_file.read_text() == "__version__ = '10.0.0'\n"
    assert tree_digest(old["more-itertools"]) == store_before
    after = beta_file.stat()
    assert (after.st_ino, after.st_nlink, after.st_ctime_ns) == (beta_stat.st_ino, 1, beta_stat.st_ctime_ns)
    store_after = (old["more-itertools"] / "more_itertools" / "__init__.py").stat()
    assert (store_after.st_nlink, store_after.st_ctime_ns) == (1, store_stat.st_ctime_ns)
    assert beta_stat.st_atime_ns == beta_stat.st_mtime_ns == STORE_EPOCH_S * 10**9  # no store time is copied


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
    site.install(installer.trees(installer.plan(["more-itertools"], {})))
    before = site.current
    with pytest.raises(SiteConflict):
        site.install(installer.trees(installer.plan(["toolz"], {})))
    assert site.current == before and sorted(p.name for p in site.root.iterdir()) == [CURRENT, before.name]


def test_the_index_report_names_the_wheel_and_its_hash() -> None:
    report = {"version": "1", "install": [{"download_info": {
        "url": "https://example.invalid/p/more_itertools-10.8.0-py3-none-any.whl",
        "archive_info": {"hashes": {"sha256": "ab" * 32}}}, "metadata": {"version": "10.8.0"}}]}
    assert candidate_of(report, "more-itertools") == Candidate("more-itertools", Version("10.8.0"),
                                             "more_itertools-10.8.0-py3-none-any.whl", "ab" * 32)
    assert candidate_of({"install": []}, "more-itertools") is None


def test_a_later_install_shows_the_stores_constant_time_never_the_unpack_time(
        installer: PackageInstaller, tmp_path: Path) -> None:
    before_unpack = time.time_ns()
    tree = installer.trees(installer.plan(["more-itertools"], {}))["more-itertools"]
    after_unpack = time.time_ns()
    site = SiteDir(tmp_path / "later")
    site.install(installer.trees(installer.plan(["more-itertools"], {})))  # another tenant, later
    for root in (tree, site.current):
        files = [p for p in root.rglob("*") if p.is_file()]
        assert any(p.suffix == ".pyc" for p in files), files
        for path in files:
            stat_ = path.stat()
            assert stat_.st_mtime_ns == STORE_EPOCH_S * 10**9, path
            assert root == tree or stat_.st_atime_ns == STORE_EPOCH_S * 10**9, path  # (no sandbox sees the store)
            assert not before_unpack <= stat_.st_mtime_ns <= after_unpack
    for pyc in tree.rglob("*.pyc"):
        header = pyc.read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == 0b01, pyc  # hash-based, unchecked: no time inside


def test_offline_a_cached_wheel_installs_from_the_lock(tmp_path: Path, index: FakeIndex) -> None:
    online = PackageInstaller(PackagePolicy.load(REPO / "policies"), tmp_path / "wheels", index=index)
    assert online.plan(["more-itertools"], {}).installed == [{"name": "more-itertools", "version": "10.8.0"}]
    index.down = True
    offline = PackageInstaller(PackagePolicy.load(REPO / "policies"), tmp_path / "wheels", index=index)  # restart
    plan = offline.plan(["more-itertools"], {})
    assert plan.failed == [] and plan.installed == [{"name": "more-itertools", "version": "10.8.0"}]
    assert offline.trees(plan)["more-itertools"].is_dir()
    assert index.downloads == ["more_itertools-10.8.0-py3-none-any.whl"]
    # A version the lock does not hold, or a cached wheel that changed, is refused, not guessed.
    [failed] = offline.plan(["more-itertools==10.0.0"], {}).failed
    assert "cannot be reached" in failed["reason"]
    (tmp_path / "wheels" / "more_itertools-10.8.0-py3-none-any.whl").write_bytes(b"tampered")
    [failed] = offline.plan(["more-itertools"], {}).failed
    assert "cannot be reached" in failed["reason"]


def test_an_unreachable_index_is_asked_once_per_negative_ttl(installer: PackageInstaller, index: FakeIndex) -> None:
    index.down = True
    for _ in range(3):
        [failed] = installer.plan(["more-itertools"], {}).failed
        assert "cannot be reached" in failed["reason"]
    assert len(index.lookups) == 1


def test_the_pip_index_reports_an_unreachable_index_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(IndexUnavailable):
        PipIndex().best("more-itertools", SpecifierSet(), Deadline.after_ms(60_000))


def test_every_pip_call_gets_what_is_left_of_the_install_deadline(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    timeouts: list[float] = []

    def slow(command: list[str], **kwargs: object) -> None:
        timeouts.append(float(kwargs["timeout"]))  # type: ignore[arg-type]
        raise subprocess.TimeoutExpired(command, float(kwargs["timeout"]))  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(IndexUnavailable):
        PipIndex().best("more-itertools", SpecifierSet(), Deadline.after_ms(5_000))
    with pytest.raises(OSError):
        PipIndex().download(Candidate("more-itertools", Version("10.8.0"), "more_itertools-10.8.0-py3-none-any.whl"),
                            tmp_path / "dl", Deadline.after_ms(4_000))
    wheel = make_wheel(tmp_path, "more-itertools", "10.8.0")
    store = PackageStore(tmp_path / "store")
    with pytest.raises(StoreError, match="ran out of the install's time"):
        store.tree(wheel, Deadline.after_ms(3_000))
    assert 4 < timeouts[0] <= 5 and 3 < timeouts[1] <= 4 and 2 < timeouts[2] <= 3
    assert list(store.root.iterdir()) == [] and list((tmp_path / "dl").iterdir()) == []  # no staging left
    with pytest.raises(StoreError):
        store.tree(wheel, Deadline(time.monotonic() - 1))  # spent: pip is not even started
    assert len(timeouts) == 3


def test_an_install_past_its_deadline_fails_with_a_reason(tmp_path: Path, index: FakeIndex) -> None:
    installer = PackageInstaller(PackagePolicy.load(REPO / "policies"), tmp_path / "wheels", index=index,
                                 install_timeout_ms=0)
    [failed] = installer.plan(["more-itertools"], {}).failed
    assert "could not be downloaded" in failed["reason"] and index.downloads == []


def test_stale_staging_and_download_dirs_are_removed_at_start(tmp_path: Path, index: FakeIndex) -> None:
    cache = tmp_path / "wheels"
    for directory in (cache / ".download-old", cache / "store" / ".staging-old", cache / "store" / ".staging-new"):
        directory.mkdir(parents=True)
    (cache / "store" / ".staging-old" / "f").write_text("x")
    os.chmod(cache / "store" / ".staging-old", 0o555)
    for directory in (cache / ".download-old", cache / "store" / ".staging-old"):
        os.utime(directory, (time.time() - 7200,) * 2)
    PackageInstaller(PackagePolicy.load(REPO / "policies"), cache, index=index)
    assert sorted(p.name for p in (cache / "store").iterdir()) == [".staging-new"]  # maybe another worker's
    assert not (cache / ".download-old").exists()


def test_the_answer_cache_is_keyed_by_name_drops_expired_answers_and_is_bounded() -> None:
    answers = AnswerCache(ttl_s=60, negative_ttl_s=0, max_entries=3)
    best = Candidate("more-itertools", Version("10.8.0"), "more_itertools-10.8.0-py3-none-any.whl")
    for spec in (">=1", ">=2", ">=3"):
        answers.put("More_Itertools", SpecifierSet(spec), best)
    assert len(answers) == 1 and answers.get("more-itertools", SpecifierSet(">=3")) == (True, best)
    assert answers.get("more-itertools", SpecifierSet(">=1")) == (False, None)
    answers.put("gone", SpecifierSet(), None)  # negative, TTL 0: expired at once
    assert answers.get("gone", SpecifierSet()) == (False, None) and len(answers) == 1
    for number in range(10):
        answers.put(f"p{number}", SpecifierSet(), best)
    assert len(answers) == 3


@pytest.mark.parametrize("filename", ["../../evil-1.0-py3-none-any.whl", "/tmp/more_itertools-1.0-py3-none-any.whl",
                                      "requests-2.0-py3-none-any.whl", "more_itertools-1.0.tar.gz", ""])
def test_a_wheel_file_name_must_be_a_plain_name_of_the_requested_project(filename: str, tmp_path: Path,
                                                                         index: FakeIndex) -> None:
    report = {"install": [{"download_info": {"url": "https://example.invalid/p/" + filename.replace("/", "%2F")}}]}
    assert candidate_of(report, "more-itertools") is None
    assert wheel_filename_of("more-itertools", filename) is None

    class Hostile(FakeIndex):
        def best(self, name: str, specifier: SpecifierSet, deadline: Deadline) -> Candidate | None:
            return Candidate(name, Version("1.0"), filename, None)

    installer = PackageInstaller(PackagePolicy.load(REPO / "policies"), tmp_path / "wheels",
                                 index=Hostile(index.offered))
    [failed] = installer.plan(["more-itertools"], {}).failed
    assert "no binary wheel" in failed["reason"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "wheels"]


@pytest.mark.parametrize("file_first", [True, False])
def test_a_file_and_a_directory_of_the_same_name_are_a_site_conflict(tmp_path: Path, file_first: bool) -> None:
    as_file, as_dir = tmp_path / "a", tmp_path / "b"
    as_file.mkdir()
    (as_file / "pkg").write_text("a file")
    (as_dir / "pkg").mkdir(parents=True)
    (as_dir / "pkg" / "mod.py").write_text("x = 1\n")
    site = SiteDir(tmp_path / "site")
    first, second = (as_file, as_dir) if file_first else (as_dir, as_file)
    site.install({"first": first})
    before = site.current
    with pytest.raises(SiteConflict):
        site.install({"second": second})
    assert site.current == before and sorted(p.name for p in site.root.iterdir()) == [CURRENT, before.name]


def test_two_workers_sharing_a_cache_keep_each_others_lock_entries(tmp_path: Path) -> None:
    cache = tmp_path / "wheels"
    cache.mkdir()
    first, second = WheelLock(cache), WheelLock(cache)  # loaded before either wrote
    one = Candidate("more-itertools", Version("10.8.0"), "more_itertools-10.8.0-py3-none-any.whl", "ab" * 32)
    two = Candidate("toolz", Version("1.2.0"), "toolz-1.2.0-py3-none-any.whl", "cd" * 32)
    first.record("more-itertools", SpecifierSet(">=10,<12"), one)
    second.record("toolz", SpecifierSet(">=0.12,<2"), two)
    fresh = WheelLock(cache)
    assert fresh.locked("more-itertools", SpecifierSet(">=10,<12")) == one
    assert fresh.locked("toolz", SpecifierSet(">=0.12,<2")) == two
    assert first.locked("toolz", SpecifierSet(">=0.12,<2")) == two
    assert fresh.locked("toolz", SpecifierSet(">=0.12,<3")) is None  # the allowlist changed: not this answer
