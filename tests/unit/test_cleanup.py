"""The stateless reset's clean-up on the host, in temporary directories: the wipe and the SysV IPC removal.

The wipe runs in the sandbox as the user who made the tree. These tests do the same: when they run as root
(who ignores permissions, so a chmod 000 directory would prove nothing), the tree is built and wiped in a
child process that has dropped to an unprivileged uid.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox_runtime.wipe import OPEN_DIRS_MAX, wipe

REPO = Path(__file__).resolve().parents[2]
UNPRIVILEGED_UID = 1000  # the sandbox's uid
SANDBOX_OPEN_FILES = 1024  # hardening.OPEN_FILES_LIMIT


def as_sandbox_user(function: Callable[..., Any], *args: Any) -> Any:
    """function(*args) in a child process as the sandbox's uid with the sandbox's open-files limit; returns
    its JSON result. A failure in the child fails the test with the child's traceback."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            resource.setrlimit(resource.RLIMIT_NOFILE, (SANDBOX_OPEN_FILES, SANDBOX_OPEN_FILES))
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
                os.setresuid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
            payload = json.dumps({"result": function(*args)})
        except BaseException:
            payload = json.dumps({"error": traceback.format_exc()})
        try:
            with os.fdopen(write_end, "w") as pipe:
                pipe.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        answer = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert "error" not in answer, answer["error"]
    return answer["result"]


# The sandbox's writable paths are tmpfs: so are these tests' directories where the host has one.
TMPFS = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@pytest.fixture
def root() -> Iterator[str]:
    """An empty directory the sandbox user owns, like /workspace (mode 0700)."""
    path = tempfile.mkdtemp(prefix="penny-wipe-", dir=TMPFS)
    if os.geteuid() == 0:
        os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    try:
        yield path
    finally:
        wipe([path])  # as ourselves: whatever a failed test left, at any depth
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def outside() -> Iterator[str]:
    """A directory next to the wiped one, with a file in it: symlinks point here, nothing here may go."""
    path = tempfile.mkdtemp(prefix="penny-outside-")
    Path(path, "keep.txt").write_text("keep")
    os.mkdir(os.path.join(path, "keepdir"))
    Path(path, "keepdir", "inner.txt").write_text("keep")
    if os.geteuid() == 0:
        for item in (path, os.path.join(path, "keep.txt"), os.path.join(path, "keepdir"),
                     os.path.join(path, "keepdir", "inner.txt")):
            os.chown(item, UNPRIVILEGED_UID, UNPRIVILEGED_UID)  # the user could delete it if it followed a link
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _chain(root: str, depth: int, name: str = "d") -> int:
    """Make root/d/d/.../d (depth levels) through dir fds (the path is far past PATH_MAX); returns the
    deepest directory's fd."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd


def _deep_tree_and_wipe(root: str, depth: int) -> dict[str, Any]:
    bottom = _chain(root, depth)
    with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=bottom), "w") as handle:
        handle.write("x")
    os.close(bottom)
    sys.setrecursionlimit(100)  # no recursion in the wipe: a recursive one dies here
    started = time.monotonic()
    survivors = wipe([root])
    return {"survivors": survivors, "left": os.listdir(root), "seconds": time.monotonic() - started}


def test_a_5000_level_tree_is_removed_within_the_sandbox_open_files_limit(root: str) -> None:
    outcome = as_sandbox_user(_deep_tree_and_wipe, root, 5000)
    print(f"\nwiped a 5,000-level tree in {outcome['seconds']:.2f} s")
    assert (outcome["survivors"], outcome["left"]) == ([], [])
    assert 5000 > OPEN_DIRS_MAX * 10  # the walk really had to close and reopen ancestors


def _many_files_and_wipe(root: str, flat: int, spread: int) -> dict[str, Any]:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for index in range(flat):
        os.close(os.open(f"f{index}", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    for directory in range(spread // 100):  # the same again, 100 to a directory
        os.mkdir(f"d{directory}", dir_fd=fd)
        sub = os.open(f"d{directory}", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        for index in range(100):
            os.close(os.open(f"f{index}", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=sub))
        os.close(sub)
    os.close(fd)
    started = time.monotonic()
    survivors = wipe([root])
    return {"survivors": survivors, "left": os.listdir(root), "seconds": time.monotonic() - started}


def test_200k_files_are_removed(root: str) -> None:
    outcome = as_sandbox_user(_many_files_and_wipe, root, 100_000, 100_000)
    # Timing is printed, not asserted (a shared machine): compare with the 1.5 s the old wipe added.
    print(f"\nwiped 200,000 files (100,000 in one directory, 100,000 in 1,000) in {outcome['seconds']:.2f} s")
    assert (outcome["survivors"], outcome["left"]) == ([], [])


def _unreadable_dirs_and_wipe(root: str) -> dict[str, Any]:
    top = Path(root)
    modes = {("a",): 0o000, ("a", "b"): 0o000, ("a", "b", "c"): 0o000, ("a", "b", "c", "d"): 0o700,
             ("a", "b", "c", "d", "e"): 0o000, ("x", "y", "z", "w"): 0o000, ("x", "y", "z"): 0o000,
             ("x", "y"): 0o000, ("x",): 0o000, ("e",): 0o100, ("f",): 0o500, ("g",): 0o300}
    for parts in sorted(modes, key=len):  # a file at every level
        top.joinpath(*parts).mkdir()
        top.joinpath(*parts, "file.txt").write_text("data")
    for parts in sorted(modes, key=len, reverse=True):  # then take the rights away, innermost first
        top.joinpath(*parts).chmod(modes[parts])
    top.chmod(0o000)  # /workspace itself, too
    survivors = wipe([root])
    return {"survivors": survivors, "left": os.listdir(root), "mode": os.stat(root).st_mode & 0o777}


def test_directories_made_unreadable_at_several_depths_are_removed(root: str) -> None:
    outcome = as_sandbox_user(_unreadable_dirs_and_wipe, root)
    assert (outcome["survivors"], outcome["left"]) == ([], [])
    assert outcome["mode"] & 0o700 == 0o700  # the root is usable again


def _symlinks_and_wipe(root: str, outside: str) -> dict[str, Any]:
    top = Path(root)
    (top / "to-dir").symlink_to(outside)
    (top / "to-file").symlink_to(os.path.join(outside, "keep.txt"))
    (top / "to-subdir").symlink_to(os.path.join(outside, "keepdir"))
    (top / "dangling").symlink_to("/nonexistent/target")
    (top / "loop").symlink_to("loop")
    (top / "sub").mkdir()
    (top / "sub" / "up").symlink_to("..")
    (top / "sub" / "root").symlink_to("/")
    (top / "sub" / "abs-outside").symlink_to(outside)
    # A link named like the directories the walk opens, one level down from a real one.
    (top / "sub" / "d").symlink_to(os.path.join(outside, "keepdir"))
    survivors = wipe([root])
    return {"survivors": survivors, "left": os.listdir(root)}


def test_symlinks_are_removed_and_never_followed(root: str, outside: str) -> None:
    outcome = as_sandbox_user(_symlinks_and_wipe, root, outside)
    assert (outcome["survivors"], outcome["left"]) == ([], [])
    assert Path(outside, "keep.txt").read_text() == "keep"
    assert Path(outside, "keepdir", "inner.txt").read_text() == "keep"


ODD_NAMES = [b"new\nline", b"\xff\xfe not utf-8", b"-rf", b" ", b"...", b"\\", b"tab\there", b"\x01\x7f",
             "ünïcødé ✓".encode(), b"a" * 255, b"*", b"$(reboot)"]


def _odd_names_and_wipe(root: str) -> dict[str, Any]:
    top = os.fsencode(root)
    for name in ODD_NAMES:
        with open(os.path.join(top, name), "wb") as handle:
            handle.write(b"data")
        os.mkdir(os.path.join(top, name + b".d" if len(name) < 250 else name[:250] + b".d"))
    nested = top
    for name in ODD_NAMES[:6]:  # a directory chain of odd names with a file at each level
        nested = os.path.join(nested, name + b"-dir")
        os.mkdir(nested)
        with open(os.path.join(nested, name), "wb") as handle:
            handle.write(b"data")
    survivors = wipe([root])
    return {"survivors": survivors, "left": os.listdir(root)}


def test_names_with_newlines_and_undecodable_bytes_are_removed(root: str) -> None:
    outcome = as_sandbox_user(_odd_names_and_wipe, root)
    assert (outcome["survivors"], outcome["left"]) == ([], [])


def _special_files_and_wipe(root: str) -> dict[str, Any]:
    os.chdir(root)  # a socket's path must be short
    os.mkfifo("fifo")
    os.mkdir("deeper")
    os.mkfifo("deeper/fifo")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind("sock")
    listener.listen()
    other = socket.socket(socket.AF_UNIX)
    other.bind("deeper/sock")
    os.link("fifo", "hardlink-to-fifo")
    survivors = wipe([root])
    left = os.listdir(root)
    listener.close()
    other.close()
    return {"survivors": survivors, "left": left}


def test_sockets_and_fifos_are_removed_without_opening_them(root: str) -> None:
    # Opening a fifo for reading would block for ever: the wipe must only unlink it.
    outcome = as_sandbox_user(_special_files_and_wipe, root)
    assert (outcome["survivors"], outcome["left"]) == ([], [])


def _concurrent_removal_and_wipe(root: str) -> dict[str, Any]:
    top = Path(root)
    for directory in range(50):
        sub = top / f"d{directory}"
        sub.mkdir()
        for index in range(400):
            (sub / f"f{index}").touch()
    stop = threading.Event()

    def remove_meanwhile() -> None:  # another remover racing the wipe, as a dying process might
        while not stop.is_set():
            for path in list(top.glob("d*/f*"))[:500]:
                try:
                    path.unlink()
                except OSError:
                    pass
            for path in top.glob("d*"):
                try:
                    path.rmdir()
                except OSError:
                    pass

    racer = threading.Thread(target=remove_meanwhile)
    racer.start()
    try:
        survivors = wipe([root])
    finally:
        stop.set()
        racer.join()
    return {"survivors": survivors, "left": os.listdir(root)}


def test_files_removed_by_someone_else_during_the_wipe_are_no_error(root: str) -> None:
    outcome = as_sandbox_user(_concurrent_removal_and_wipe, root)
    assert (outcome["survivors"], outcome["left"]) == ([], [])


def _xattrs_and_wipe(root: str) -> dict[str, Any]:
    try:
        os.setxattr(root, "user.secret", b"s3cr3t")
    except OSError as exc:
        return {"unsupported": exc.strerror}
    Path(root, "file").write_text("x")
    os.setxattr(os.path.join(root, "file"), "user.secret", b"s3cr3t")
    survivors = wipe([root])
    return {"survivors": survivors, "left": os.listdir(root), "xattrs": os.listxattr(root)}


def test_user_attributes_on_the_wiped_directory_itself_are_removed(root: str) -> None:
    # The mount point outlives the wipe, so a job could leave data in its extended attributes.
    outcome = as_sandbox_user(_xattrs_and_wipe, root)
    if "unsupported" in outcome:
        pytest.skip(f"no user extended attributes here: {outcome['unsupported']}")
    assert (outcome["survivors"], outcome["left"], outcome["xattrs"]) == ([], [], [])


def _wipe_only(root: str) -> list[str]:
    return wipe([root])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a file the sandbox user cannot remove (made by root)")
def test_what_cannot_be_removed_is_reported_as_a_survivor(root: str) -> None:
    # Root makes a directory the user cannot write (like a file system the user does not own).
    foreign = Path(root, "foreign\ndir")
    foreign.mkdir(mode=0o755)
    Path(foreign, "stuck.txt").write_text("x")
    Path(root, "mine.txt").write_text("x")
    os.chown(Path(root, "mine.txt"), UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    survivors = as_sandbox_user(_wipe_only, root)
    assert survivors and any("stuck.txt" in line for line in survivors), survivors
    assert all("\n" not in line for line in survivors)  # printable: the newline is escaped
    assert not Path(root, "mine.txt").exists()  # the rest went


def test_wiping_a_path_that_does_not_exist_leaves_nothing_to_report(tmp_path: Path) -> None:
    assert wipe([str(tmp_path / "absent")]) == []


# --- SysV IPC: each test in an IPC namespace of its own, never the host's -------------------------------

IPC_SCRIPT = r"""
import ctypes, json, os, sys
sys.path.insert(0, sys.argv[1])
from sandbox_runtime import cleanup
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT = 0o1000
shm = libc.shmget(0x5e11, 4096, IPC_CREAT | 0o600)
private_shm = libc.shmget(0, 1 << 20, IPC_CREAT | 0o600)
msg = libc.msgget(0x5e12, IPC_CREAT | 0o600)
sem = libc.semget(0x5e13, 3, IPC_CREAT | 0o600)
created = {kind: cleanup.sysv_ipc_ids(kind) for kind in cleanup.SYSV_IPC_KINDS}
survivors = cleanup.clear_leftovers([]) if sys.argv[2] == "reset" else cleanup.remove_sysv_ipc()
after = {kind: cleanup.sysv_ipc_ids(kind) for kind in cleanup.SYSV_IPC_KINDS}
print(json.dumps({"ids": [shm, private_shm, msg, sem], "created": created, "survivors": survivors,
                  "after": after, "pid": os.getpid()}))
"""


def _in_new_ipc_namespace(*, as_pid_1: bool, mode: str) -> dict[str, Any]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1) for a private IPC namespace")
    command = [unshare, "--ipc"]
    if os.geteuid() != 0:
        command += ["--user", "--map-root-user"]
    if as_pid_1:
        command += ["--pid", "--fork", "--mount-proc"]
    completed = subprocess.run([*command, sys.executable, "-c", IPC_SCRIPT, str(REPO), mode],
                               capture_output=True, text=True, timeout=60)
    if completed.returncode != 0 and "Operation not permitted" in completed.stderr:
        pytest.skip(f"no private namespaces here: {completed.stderr.strip()}")
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout))


def test_every_sysv_shared_memory_segment_message_queue_and_semaphore_set_is_removed() -> None:
    outcome = _in_new_ipc_namespace(as_pid_1=False, mode="remove")
    assert all(ipc_id >= 0 for ipc_id in outcome["ids"])
    assert {kind: len(ids) for kind, ids in outcome["created"].items()} == {"shm": 2, "msg": 1, "sem": 1}
    assert outcome["survivors"] == []
    assert outcome["after"] == {"shm": [], "msg": [], "sem": []}


def test_the_reset_removes_ipc_objects_only_as_pid_1_of_a_namespace_of_its_own() -> None:
    # Not PID 1 (a supervisor run on a host): the objects are not ours to remove, and stay.
    kept = _in_new_ipc_namespace(as_pid_1=False, mode="reset")
    assert kept["pid"] != 1 and kept["survivors"] == []
    assert kept["after"] == kept["created"] and kept["after"]["shm"]
    # PID 1 of its own namespaces, as the supervisor is in its container: every object goes.
    removed = _in_new_ipc_namespace(as_pid_1=True, mode="reset")
    assert removed["pid"] == 1 and removed["created"]["shm"]
    assert (removed["survivors"], removed["after"]) == ([], {"shm": [], "msg": [], "sem": []})
