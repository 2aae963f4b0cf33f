"""The kernel's seccomp rule table read as pure data, and the Docker profile's derivation from Docker's default.

The real filter (libseccomp, loaded in a kernel) is exercised in tests/integration/test_seccomp.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox_runtime import kernel, seccomp_filter, seccomp_notify
from sandbox_runtime.seccomp_filter import Action, verdict

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "deploy" / "seccomp"
REPORT, REFUSE = Action.REPORT, Action.REFUSE


def args(*values: int) -> tuple[int, ...]:
    return (*values, *(0 for _ in range(6 - len(values))))


@pytest.mark.parametrize("syscall", [
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_send_signal",
    "pidfd_getfd", "bpf", "userfaultfd", "mount", "umount2", "unshare", "setns", "pivot_root", "chroot",
])
def test_calls_nothing_legitimate_makes_are_reported_whatever_the_arguments(syscall: str) -> None:
    assert verdict(syscall) is REPORT
    assert verdict(syscall, args(1, 2, 3, 4, 5, 6)) is REPORT


@pytest.mark.parametrize("syscall", [
    "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semctl", "mq_open", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "mq_unlink",
    "keyctl", "add_key", "request_key", "perf_event_open", "personality", "io_uring_setup",
])
def test_calls_libraries_probe_fail_with_eperm_and_are_not_reported(syscall: str) -> None:
    assert verdict(syscall) is REFUSE


@pytest.mark.parametrize("pid", [1, -1, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0x1_0000_0001, 0xDEAD_0000_0000_0001])
def test_kill_of_pid_1_or_every_process_is_reported_however_the_pid_is_widened(pid: int) -> None:
    assert verdict("kill", args(pid, 9)) is REPORT
    assert verdict("rt_sigqueueinfo", args(pid, 9)) is REPORT


def test_signals_inside_the_kernels_own_processes_are_allowed() -> None:
    for pid in (0, 2, 57, 0x1_0000_0000):  # 0: the kernel's own process group (it calls setpgid(0, 0))
        assert verdict("kill", args(pid, 9)) is None
    assert verdict("tgkill", args(57, 58, 2)) is None
    assert verdict("tgkill", args(1, 58, 2)) is REPORT and verdict("tgkill", args(57, 1, 2)) is REPORT
    assert verdict("tkill", args(1, 2)) is REPORT and verdict("rt_tgsigqueueinfo", args(1, 3)) is REPORT


def test_the_channel_fds_cannot_be_closed_or_replaced() -> None:
    assert seccomp_filter.CHANNEL_FDS == (kernel.REQUEST_FD, kernel.RESULT_FD)
    for fd in (3, 4, 0x7_0000_0004):
        assert verdict("close", args(fd)) is REFUSE
        assert verdict("dup2", args(0, fd)) is REPORT
        assert verdict("dup3", args(0, fd, 0)) is REPORT
    for fd in (0, 1, 2, 5, 100):
        assert verdict("close", args(fd)) is None and verdict("dup2", args(0, fd)) is None
    assert verdict("dup2", args(3, 7)) is None  # copying the channel elsewhere is not replacing it


@pytest.mark.parametrize(("first", "last", "refused"), [
    (0, 0xFFFF_FFFF, True), (3, 3, True), (4, 4, True), (2, 3, True), (0, 2, False), (5, 0xFFFF_FFFF, False),
    (0x1_0000_0000, 0xFFFF_FFFF, True),  # first truncates to 0 in the kernel
    (0x1_0000_0003, 0x1_0000_0004, True),
])
def test_close_range_covering_the_channel_is_refused_after_truncation(first: int, last: int, refused: bool) -> None:
    assert (verdict("close_range", args(first, last, 0)) is REFUSE) is refused


def test_clone_with_a_namespace_flag_is_reported_and_clone3_says_not_implemented() -> None:
    sigchld, thread_flags = 17, 0x3D0F00
    assert verdict("clone", args(sigchld)) is None and verdict("clone", args(thread_flags)) is None
    for flag in seccomp_filter.CLONE_NAMESPACE_FLAGS:
        assert verdict("clone", args(flag | sigchld)) is REPORT
    assert verdict("clone3") is Action.ENOSYS


def test_everything_else_is_left_to_the_container_profile() -> None:
    for syscall in ("read", "write", "openat", "mmap", "futex", "socket", "fork", "wait4", "shmdt"):
        assert verdict(syscall, args(3, 4)) is None


def test_the_filter_is_required_in_a_container_and_off_on_a_host() -> None:
    assert seccomp_filter.mode({"PENNY_SECCOMP": "required"}) == "required"
    assert seccomp_filter.mode({"PENNY_SECCOMP": "off"}) == "off"
    assert seccomp_filter.mode({"PENNY_SECCOMP": "refuse"}) == "refuse"  # gVisor: no user notification
    assert seccomp_filter.mode({}) == "off"  # this test process is not PID 1
    with pytest.raises(ValueError, match="PENNY_SECCOMP"):
        seccomp_filter.mode({"PENNY_SECCOMP": "maybe"})


def test_the_ioctl_numbers_match_linux() -> None:
    # linux/seccomp.h: SECCOMP_IOCTL_NOTIF_RECV = _IOWR('!', 0, struct seccomp_notif) (80 bytes), SEND (24).
    assert seccomp_notify.SECCOMP_IOCTL_NOTIF_RECV == 0xC0502100
    assert seccomp_notify.SECCOMP_IOCTL_NOTIF_SEND == 0xC0182101
    assert seccomp_notify.violation("execve") == {
        "rule": "syscall", "target": "execve", "message": "the system call execve is refused in the sandbox"}


# --- the container's Docker profile ----------------------------------------------------------------------

def _allowed(profile: dict[str, object]) -> set[str]:
    """Names the profile allows unconditionally and without a capability."""
    names: set[str] = set()
    for entry in profile["syscalls"]:  # type: ignore[attr-defined]
        if entry["action"] == "SCMP_ACT_ALLOW" and not entry.get("args") and not entry.get("includes", {}).get(
                "caps"):
            names |= set(entry["names"])
    return names


def test_the_sandbox_profile_is_dockers_default_minus_what_no_sandbox_needs() -> None:
    default = json.loads((PROFILES / "docker-default.json").read_text())
    penny = json.loads((PROFILES / "penny-sandbox.json").read_text())
    assert penny["defaultAction"] == "SCMP_ACT_ERRNO"
    assert _allowed(penny) <= _allowed(default)  # nothing added
    removed = _allowed(default) - _allowed(penny)
    assert removed >= {"ptrace", "process_vm_readv", "process_vm_writev", "vmsplice", "name_to_handle_at"}
    assert not any(entry.get("includes", {}).get("caps") for entry in penny["syscalls"])  # no cap-gated grants
    assert [arch["subArchitectures"] for arch in penny["archMap"]] == [[], []]


def test_the_sandbox_profile_keeps_what_the_runtime_and_the_tests_need() -> None:
    allowed = _allowed(json.loads((PROFILES / "penny-sandbox.json").read_text()))
    # seccomp: the kernel loads its filter; execve: the container starts python3; SysV IPC and mq: the
    # reset's checks create leftovers through `docker exec` (the kernel filter refuses them to user code).
    needed = {"seccomp", "execve", "fork", "vfork", "wait4", "ioctl", "pidfd_open", "kill", "setpgid", "prctl",
              "shmget", "msgget", "semget", "mq_open", "socketpair", "sendmsg", "recvmsg", "mmap", "futex"}
    assert needed <= allowed
    assert not allowed & {"io_uring_setup", "keyctl", "bpf", "userfaultfd", "mount", "unshare", "setns"}


def test_another_processes_limits_and_priorities_cannot_be_set() -> None:
    """PID 1 and the light parent fork the next tenants' kernels: what they inherit is not for user code."""
    rlimit_nofile, new, old = 7, 0x7FFF_0000, 0x7FFF_1000
    assert verdict("prlimit64", args(1, rlimit_nofile, new, 0)) is REFUSE
    assert verdict("prlimit64", args(1 << 32, rlimit_nofile, new, 0)) is REFUSE  # over-refused, safe
    assert verdict("prlimit64", args(0, rlimit_nofile, new, old)) is None  # its own (setrlimit)
    assert verdict("prlimit64", args(1, rlimit_nofile, 0, old)) is None  # reading is allowed
    prio_process, prio_pgrp, prio_user = 0, 1, 2
    assert verdict("setpriority", args(prio_process, 1, 19)) is REFUSE
    assert verdict("setpriority", args(prio_user, 0, 19)) is REFUSE  # every process of the user
    assert verdict("setpriority", args(prio_process, 0, 19)) is None
    assert verdict("setpriority", args(prio_pgrp, 0, 19)) is None  # its own process group
    assert verdict("ioprio_set", args(1, 1, 0)) is REFUSE and verdict("ioprio_set", args(3, 0, 0)) is REFUSE
    assert verdict("ioprio_set", args(1, 0, 0)) is None
    for name in ("sched_setattr", "sched_setscheduler", "sched_setparam", "sched_setaffinity"):
        assert verdict(name, args(1, 0, 0)) is REFUSE and verdict(name, args(0, 0, 0)) is None
