#!/usr/bin/env python3
"""Build the PENNY sandbox Docker image without a container registry.

Run as root on the host::

    python3 deploy/sandbox/build_image.py [--image NAME] [--force] [--keep-old] [--print-tag]

The image is tagged ``NAME:HASH`` where HASH (12 hex digits of sha256) covers every file under
``sandbox_runtime/`` plus this builder's inputs in ``deploy/sandbox/``. If that image already
exists it is only re-tagged as ``NAME:TAG`` (``DOCKER_IMAGE``, default ``penny-sandbox:latest``)
and nothing is built. Otherwise the image is assembled from:

* a Debian bookworm ``minbase`` root file system with ``python3`` and ``python3-seccomp``, made once
  by debootstrap and cached as ``.cache/sandbox/rootfs-bookworm-minbase-<packages>.tar`` (delete it
  to refresh; a change of DEBIAN_PACKAGES makes a new one and removes the old);
* ``deploy/sandbox/requirements.txt`` installed with the host's Python 3.11 into /opt/penny/lib
  from a wheelhouse in ``.cache/sandbox/pip`` (filled on first use, so rebuilds download nothing);
* the ``sandbox_runtime`` package and ``deploy/sandbox/sitecustomize.py`` (keeps matplotlib's
  prebuilt font cache usable on the read-only root fs) in /opt/penny, a ``sandbox`` user
  (uid/gid 1000) with home /workspace, the font cache itself and byte-compiled sources (the root
  fs is read-only at run time),

and streamed into ``docker import``. Images of earlier input hashes are removed after a build
(``--keep-old`` keeps them). The Debian mirror is read from the host's apt sources; when
none fits, debootstrap's default is used. ``deploy/sandbox/Dockerfile`` builds the same layout
for hosts that can reach a registry.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn

SUITE = "bookworm"
VARIANT = "minbase"
# Debian packages of the root fs. python3-seccomp: libseccomp's binding (`import seccomp` for /usr/bin/python3,
# from /usr/lib/python3/dist-packages), with which each kernel loads its filter (sandbox_runtime.seccomp_filter).
DEBIAN_PACKAGES = ("python3", "python3-seccomp")
DEFAULT_DOCKER_IMAGE = "penny-sandbox:latest"
SANDBOX_USER = "sandbox"
SANDBOX_ID = 1000
PYTHON_VERSION = (3, 11)

RUNTIME_DIR = "sandbox_runtime"
SANDBOX_DIR = "deploy/sandbox"
REQUIREMENTS = f"{SANDBOX_DIR}/requirements.txt"
SITECUSTOMIZE = f"{SANDBOX_DIR}/sitecustomize.py"
BUILDER = f"{SANDBOX_DIR}/build_image.py"
HASHED_FILES = (REQUIREMENTS, SITECUSTOMIZE, BUILDER)
CACHE_DIR = ".cache/sandbox"

PENNY = "/opt/penny"
IMAGE_ENV = {
    "PYTHONPATH": f"{PENNY}/lib:{PENNY}",
    "MPLCONFIGDIR": f"{PENNY}/mplconfig",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "LANG": "C.UTF-8",
    "HOME": "/workspace",
    # A kernel that cannot load its seccomp filter exits before running any code.
    "PENNY_SECCOMP": "required",
}
IMAGE_CHANGES = (
    *(f"ENV {key}={value}" for key, value in IMAGE_ENV.items()),
    f"USER {SANDBOX_ID}:{SANDBOX_ID}",
    "WORKDIR /workspace",
    'CMD ["python3", "-m", "sandbox_runtime"]',
)
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PRUNE = (
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/locale/*",
    "var/cache/apt/archives/*.deb",
    "var/lib/apt/lists/*",
)
# Debian suite names that a bookworm mirror also carries (used to pick a mirror from apt sources).
DEBIAN_SUITES = frozenset(
    {"buster", "bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing", "unstable", "oldstable"}
)

START = time.monotonic()


class BuildError(Exception):
    """A failure reported to the user as one line."""


class AptSource(NamedTuple):
    uri: str
    suites: tuple[str, ...]


# --------------------------------------------------------------------------- inputs and naming


def hashed_paths(repo_root: Path) -> list[str]:
    """Repo-relative POSIX paths of the image inputs that exist, sorted."""
    paths = [p for p in HASHED_FILES if (repo_root / p).is_file()]
    runtime = repo_root / RUNTIME_DIR
    for dirpath, dirnames, filenames in os.walk(runtime):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".pyc"):
                paths.append((Path(dirpath) / name).relative_to(repo_root).as_posix())
    return sorted(paths)


def input_hash(repo_root: Path) -> str:
    """First 12 hex digits of a sha256 over the path and bytes of every image input."""
    digest = hashlib.sha256()
    for rel in hashed_paths(repo_root):
        data = (repo_root / rel).read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:12]


def split_image_ref(ref: str) -> tuple[str, str]:
    """``repo[:tag]`` -> (repo, tag); a ``:`` inside a registry host:port is not a tag."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


# --------------------------------------------------------------------------- apt sources


def apt_source_files(etc_apt: Path = Path("/etc/apt")) -> list[Path]:
    parts = etc_apt / "sources.list.d"
    extra = sorted([*parts.glob("*.list"), *parts.glob("*.sources")]) if parts.is_dir() else []
    return [p for p in [etc_apt / "sources.list", *extra] if p.is_file()]


def parse_one_line_sources(text: str) -> Iterator[AptSource]:
    """``deb [opts] URI SUITE COMPONENT...`` lines of a sources.list file."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # drop [arch=... signed-by=...]
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "deb":
            yield AptSource(fields[1], (fields[2],))


def parse_deb822_sources(text: str) -> Iterator[AptSource]:
    """Stanzas of a deb822 ``.sources`` file (Types/URIs/Suites, honouring ``Enabled: no``)."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield AptSource(uri, tuple(fields.get("suites", "").split()))


def read_apt_sources(files: Iterable[Path]) -> list[AptSource]:
    sources: list[AptSource] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        parser = parse_deb822_sources if path.suffix == ".sources" else parse_one_line_sources
        sources.extend(parser(text))
    return sources


def pick_debian_mirror(sources: Iterable[AptSource], suite: str = SUITE) -> str | None:
    """A mirror URI for ``suite``: one listing it exactly, else one listing another Debian suite."""
    usable = [s for s in sources if s.uri.split(":", 1)[0] in ("http", "https", "file")]
    for wanted in ({suite}, DEBIAN_SUITES):
        for source in usable:
            if wanted.intersection(source.suites):
                return source.uri.rstrip("/")
    return None


# --------------------------------------------------------------------------- process helpers


def log(message: str) -> None:
    print(f"[image] {message}", flush=True)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    started = time.monotonic()
    log(f"{title} ...")
    yield
    log(f"{title}: {time.monotonic() - started:.1f}s (total {time.monotonic() - START:.1f}s)")


def fail(message: str) -> NoReturn:
    raise BuildError(message)


def run(
    cmd: Sequence[str | Path], logfile: Path, env: dict[str, str] | None = None, check: bool = True
) -> bool:
    """Run ``cmd``, output appended to ``logfile``; on failure show its tail and raise (or return False)."""
    args = [str(c) for c in cmd]
    with logfile.open("ab") as out:
        out.write(f"\n$ {' '.join(args)}\n".encode())
        out.flush()
        code = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if code != 0 and check:
        tail = logfile.read_text(errors="replace").splitlines()[-25:]
        print("\n".join(tail), file=sys.stderr)
        fail(f"{Path(args[0]).name} exited with status {code} (full log: {logfile})")
    return code == 0


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def image_exists(ref: str) -> bool:
    """Whether ``ref`` is present locally; raise BuildError if the engine is unreachable."""
    result = docker("image", "inspect", "--format", "{{.Id}}", ref)
    if result.returncode == 0:
        return True
    if "no such image" in result.stderr.lower():
        return False
    lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no output"]
    reason = next((line for line in lines if not line.startswith("WARNING")), lines[0])
    fail(f"docker is unreachable: {reason}")


def tag_image(source: str, target: str) -> None:
    if source != target:
        result = docker("tag", source, target)
        if result.returncode != 0:
            fail(f"docker tag {source} {target} failed: {result.stderr.strip()}")


def remove_old_builds(name: str, keep: str) -> None:
    """Drop other ``NAME:<12 hex>`` tags: each build is one ~600 MB layer that nothing else shares.

    Images still used by a container are left alone (``docker rmi`` without ``--force`` refuses).
    """
    listing = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name)
    for ref in listing.stdout.split():
        if ref != keep and re.fullmatch(r"[0-9a-f]{12}", ref.rpartition(":")[2]):
            if docker("rmi", ref).returncode == 0:
                log(f"removed old build {ref}")


def host_python() -> str:
    """A host interpreter of the image's Python minor version (so pip picks matching wheels)."""
    if sys.version_info[:2] == PYTHON_VERSION:
        return sys.executable
    name = "python{}.{}".format(*PYTHON_VERSION)
    found = shutil.which(name)
    if not found:
        fail(f"need {name} with pip on the host (the image's python3 is {name})")
    return found


def mount_points_below(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """rm -rf that first detaches anything mounted inside (never deletes through a mount)."""
    if not path.exists():
        return
    for point in mount_points_below(path):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def temp_dir(parent: Path, prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        remove_tree(path)


@contextlib.contextmanager
def build_lock(cache: Path) -> Iterator[None]:
    """Serialise builds; temp dirs left by a killed earlier build are removed once locked."""
    with (cache / "build.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("waiting for another build to finish ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        for stale in [*cache.glob("build-*"), *cache.glob("debootstrap-*")]:
            remove_tree(stale)
        yield


# --------------------------------------------------------------------------- build steps


def ensure_rootfs(cache: Path, logfile: Path) -> Path:
    """The cached debootstrap tarball, created on first use (one per package list; others are removed)."""
    tarball = cache / f"rootfs-{SUITE}-{VARIANT}-{'+'.join(DEBIAN_PACKAGES)}.tar"
    if tarball.is_file():
        log(f"reusing {tarball.name}")
        return tarball
    for stale in cache.glob(f"rootfs-{SUITE}-{VARIANT}*.tar"):
        stale.unlink()
    if not shutil.which("debootstrap"):
        fail("debootstrap is not installed (apt-get install debootstrap)")
    mirror = pick_debian_mirror(read_apt_sources(apt_source_files()))
    with (
        step(f"debootstrap {SUITE} ({mirror or 'debootstrap default mirror'})"),
        temp_dir(cache, "debootstrap-") as tmp,
    ):
        target = tmp / "root"
        include = f"--include={','.join(DEBIAN_PACKAGES)}"
        cmd = ["debootstrap", f"--variant={VARIANT}", include, SUITE, str(target)]
        run([*cmd, *([mirror] if mirror else [])], logfile)
        partial = tmp / "rootfs.tar"
        excludes = ["--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*"]
        run(["tar", "-C", target, "--numeric-owner", *excludes, "-cf", partial, "."], logfile)
        os.replace(partial, tarball)
    return tarball


def extract_rootfs(tarball: Path, root: Path, logfile: Path) -> None:
    root.mkdir()
    run(["tar", "-C", root, "--numeric-owner", "-xpf", tarball], logfile)
    if not (root / "usr/bin/python{}.{}".format(*PYTHON_VERSION)).exists():
        fail(f"{tarball} has no python{PYTHON_VERSION[0]}.{PYTHON_VERSION[1]}; delete it and rebuild")


def pip_install(repo_root: Path, cache: Path, root: Path, logfile: Path) -> None:
    """Install the requirements into /opt/penny/lib from a local wheelhouse, filling it when needed.

    The wheelhouse (.cache/sandbox/pip/wheels) makes rebuilds download nothing, even where the
    index's responses are not HTTP-cacheable.
    """
    lib = root / PENNY.lstrip("/") / "lib"
    wheels = cache / "pip" / "wheels"
    requirements = repo_root / REQUIREMENTS
    env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    pip: list[str | Path] = [host_python(), "-m", "pip"]
    install: list[str | Path] = [
        *pip,
        "install",
        "--target",
        lib,
        "--only-binary=:all:",
        "--no-warn-script-location",
    ]
    install += ["--no-compile", "--no-index", "--find-links", wheels, "-r", requirements]
    if not (wheels.is_dir() and run(install, logfile, env=env, check=False)):
        shutil.rmtree(lib, ignore_errors=True)
        download: list[str | Path] = [*pip, "download", "--only-binary=:all:", "--dest", wheels]
        run([*download, "--cache-dir", cache / "pip" / "http", "-r", requirements], logfile, env=env)
        run(install, logfile, env=env)
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts point at the host interpreter


def copy_runtime(repo_root: Path, root: Path) -> None:
    penny = root / PENNY.lstrip("/")
    dest = penny / RUNTIME_DIR
    source = repo_root / RUNTIME_DIR
    if source.is_dir():
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        dest.mkdir(parents=True)
    shutil.copyfile(repo_root / SITECUSTOMIZE, penny / "sitecustomize.py")


def append_line(path: Path, line: str) -> None:
    text = path.read_text()
    with path.open("a") as handle:  # appending keeps the file's owner and mode (shadow: 0640)
        handle.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")


def add_sandbox_user(root: Path) -> None:
    etc = root / "etc"
    for name in ("passwd", "group"):
        for entry in (etc / name).read_text().splitlines():
            fields = entry.split(":")
            if fields[0] == SANDBOX_USER or (len(fields) > 2 and fields[2] == str(SANDBOX_ID)):
                fail(f"/etc/{name} of the rootfs already has {entry!r}")
    home, uid = "/workspace", SANDBOX_ID
    append_line(etc / "passwd", f"{SANDBOX_USER}:x:{uid}:{uid}:PENNY sandbox:{home}:/usr/sbin/nologin")
    append_line(etc / "group", f"{SANDBOX_USER}:x:{uid}:")
    if (etc / "shadow").exists():
        append_line(etc / "shadow", f"{SANDBOX_USER}:!::0:99999:7:::")
    if (etc / "gshadow").exists():
        append_line(etc / "gshadow", f"{SANDBOX_USER}:!::")
    workspace = root / home.lstrip("/")
    workspace.mkdir()
    os.chown(workspace, uid, uid)
    workspace.chmod(0o700)


def chroot_python(root: Path, args: Sequence[str], logfile: Path) -> None:
    env = {**IMAGE_ENV, "PATH": CHROOT_PATH, "HOME": "/root"}
    run(["chroot", root, "python3", *args], logfile, env=env)


def make_world_readable(tree: Path) -> None:
    """a+rX on ``tree``: the sandbox user must read everything under /opt/penny."""
    for dirpath, _dirnames, filenames in os.walk(tree):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o555)
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not os.path.islink(path):
                os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def build_font_cache(root: Path, logfile: Path) -> None:
    mplconfig = root / IMAGE_ENV["MPLCONFIGDIR"].lstrip("/")
    mplconfig.mkdir(parents=True, exist_ok=True)
    chroot_python(root, ["-c", "import matplotlib.pyplot"], logfile)
    if not list(mplconfig.glob("fontlist-*.json")):
        fail("matplotlib did not write its font cache")


def compile_penny(root: Path, logfile: Path) -> None:
    """Byte-compile /opt/penny in the chroot, one worker per host core.

    compileall's worker pool needs POSIX semaphores, i.e. a /dev/shm directory; the cached rootfs
    has an empty /dev (docker provides its own), so a plain directory stands in while compiling.
    """
    shm = root / "dev" / "shm"
    shm.mkdir(mode=0o1777, parents=True, exist_ok=True)
    try:
        chroot_python(root, ["-m", "compileall", "-q", "-j", str(os.cpu_count() or 1), PENNY], logfile)
    finally:
        shutil.rmtree(shm, ignore_errors=True)


def prune(root: Path) -> None:
    for pattern in PRUNE:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for name in ("etc/hostname", "etc/resolv.conf"):  # debootstrap copied the host's; docker mounts its own
        path = root / name
        if path.is_file() and not path.is_symlink():
            path.write_text("")


def docker_import(root: Path, ref: str, digest: str) -> str:
    """Stream ``root`` as a tarball into ``docker import``; return the new image id."""
    changes = [arg for change in IMAGE_CHANGES for arg in ("--change", change)]
    changes += ["--change", f"LABEL org.penny.sandbox.inputs={digest}"]
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        result = subprocess.run(
            ["docker", "import", *changes, "--message", f"penny sandbox {digest}", "-", ref],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        tar.stdout.close()
        tar_code = tar.wait()
    if tar_code != 0 or result.returncode != 0:
        fail(f"docker import failed (tar {tar_code}, docker {result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def build(repo_root: Path, ref: str, digest: str) -> None:
    cache = repo_root / CACHE_DIR
    logfile = cache / "build.log"
    logfile.write_text(f"build of {ref}\n")
    log(f"building {ref} (log: {logfile})")
    tarball = ensure_rootfs(cache, logfile)
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=cache))
    try:
        root = tmp / "root"
        with step("extract rootfs"):
            extract_rootfs(tarball, root, logfile)
        with step(f"pip install -r {REQUIREMENTS}"):
            pip_install(repo_root, cache, root, logfile)
        with step("copy sandbox_runtime, add user sandbox"):
            copy_runtime(repo_root, root)
            add_sandbox_user(root)
        with step("matplotlib font cache"):
            build_font_cache(root, logfile)
        with step("check the seccomp binding"):
            check = "from sandbox_runtime import seccomp_filter as f; f.build(f.binding())"
            chroot_python(root, ["-c", check], logfile)
        with step(f"compileall {PENNY}"):
            compile_penny(root, logfile)
            make_world_readable(root / PENNY.lstrip("/"))
        with step("prune docs, man pages, locales, apt caches"):
            prune(root)
        with step(f"docker import {ref}"):
            log(f"image id {docker_import(root, ref, digest)}")
    finally:
        with step("remove build tree"):
            remove_tree(tmp)


# --------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--image",
        help="image repository, optionally with the alias tag (default: DOCKER_IMAGE or "
        f"{DEFAULT_DOCKER_IMAGE}); the image is tagged NAME:<input hash> and NAME:<alias tag>",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if NAME:<input hash> exists")
    parser.add_argument("--keep-old", action="store_true", help="keep images of earlier input hashes")
    parser.add_argument("--print-tag", action="store_true", help="print the input-hash tag and exit")
    return parser.parse_args(argv)


def raise_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so temp dirs are cleaned up on SIGTERM/SIGHUP too


def run_builder(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    repo_root = Path(__file__).resolve().parents[2]
    digest = input_hash(repo_root)
    if args.print_tag:
        print(digest)
        return 0
    name, alias_tag = split_image_ref(args.image or os.environ.get("DOCKER_IMAGE") or DEFAULT_DOCKER_IMAGE)
    ref, alias = f"{name}:{digest}", f"{name}:{alias_tag}"
    if not shutil.which("docker"):
        fail("docker CLI not found on PATH")
    if not args.force and image_exists(ref):
        tag_image(ref, alias)
        log(f"up to date: {ref} -> {alias} ({time.monotonic() - START:.2f}s)")
        return 0
    if os.geteuid() != 0:
        fail("building the image needs root (debootstrap, chroot, file ownership): run with sudo")
    os.umask(0o022)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, raise_on_signal)
    cache = repo_root / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    with build_lock(cache):
        if args.force or not image_exists(ref):
            build(repo_root, ref, digest)
        tag_image(ref, alias)
        if not args.keep_old:
            remove_old_builds(name, ref)
    log(f"done: {ref} -> {alias} ({time.monotonic() - START:.1f}s)")
    print(ref)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run_builder(argv)
    except BuildError as exc:
        print(f"build_image: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("build_image: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
