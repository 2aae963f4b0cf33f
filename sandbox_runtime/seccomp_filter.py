"""The kernel's seccomp filter: system calls refused in the kernel process, whoever makes them.

The policy layer (guard.py) judges Python events; this filter is enforced by Linux on every thread and every
process forked from the kernel, so a library, a C callback or a forged frame gets the same answer as user
code. It is built with libseccomp (Debian's python3-seccomp, `import seccomp`, present in the sandbox
image; no hand-assembled BPF) and loaded in the freshly forked kernel before any user code runs. The default
action is ALLOW: the container's Docker profile (deploy/seccomp/penny-sandbox.json) is the allowlist; this
filter takes away what the container itself needs (starting programs, signalling, IPC for the tests'
clean-up checks) but user code never does.

Each rule has one action:

- ``report``: the call fails with EPERM (the user sees ``PermissionError``) and the supervisor records a
  ``policy_violation`` naming the system call. Mechanism: seccomp user notification (SECCOMP_RET_USER_NOTIF);
  the kernel hands the listener fd to the supervisor before user code runs and keeps no copy
  (seccomp_notify.py answers every notification with -EPERM). Used for calls nothing legitimate in a
  sandbox makes.
- ``refuse``: the call fails with EPERM, nothing is recorded. Used where libraries probe and fall back
  (keyrings, SysV and POSIX IPC, io_uring, perf, personality) or where a clean-up may innocently close
  every fd (the channel's ``close``/``close_range``).
- ``enosys``: ``clone3`` says "not implemented": its flags sit in memory that seccomp cannot read, and glibc
  then falls back to ``clone``, whose namespace flags are checked (Docker's default profile does the same).

The rules (``RULES``; the README's Security section has the same table):

- report: ``execve``, ``execveat`` (no program can start; matplotlib reads its seeded font cache and never
  runs fc-list); ``ptrace``, ``process_vm_readv``, ``process_vm_writev``, ``kcmp``, ``process_madvise`` (no
  access to another process); ``kill``/``rt_sigqueueinfo`` aimed at PID 1 (the supervisor) or -1 (every
  process), ``tkill``/``tgkill``/``rt_tgsigqueueinfo`` aimed at thread (group) 1; ``pidfd_open``,
  ``pidfd_send_signal``, ``pidfd_getfd`` (a pidfd, or an fd of /proc/1, would reach PID 1); ``mount``,
  ``umount2``, ``pivot_root``, ``chroot`` and the new mount API (``fsopen``, ``fsmount``, ``fspick``,
  ``fsconfig``, ``move_mount``, ``open_tree``, ``mount_setattr``); ``unshare``, ``setns`` and ``clone``
  with a CLONE_NEW* flag (no namespaces); ``bpf``, ``userfaultfd``; ``dup2``/``dup3`` onto fd 3 or 4 (the
  kernel's request/result channel cannot be replaced).
- refuse: ``close`` of fd 3 or 4 and ``close_range`` covering them (the channel cannot be closed);
  ``keyctl``, ``add_key``, ``request_key``; SysV IPC (``shmget``, ``shmat``, ``shmctl``, ``msgget``,
  ``msgsnd``, ``msgrcv``, ``msgctl``, ``semget``, ``semop``, ``semtimedop``, ``semctl``) and POSIX message
  queues (``mq_open``, ``mq_timedsend``, ``mq_timedreceive``, ``mq_notify``, ``mq_getsetattr``,
  ``mq_unlink``): nothing of one job outlives it; ``io_uring_setup``/``_enter``/``_register`` (io_uring
  would run close/dup outside this filter); ``perf_event_open``, ``personality``; ``prlimit64`` setting
  another process's limits, ``setpriority`` and ``ioprio_set`` aimed at another process or at every process
  of the user, ``sched_setattr``, ``sched_setscheduler``, ``sched_setparam`` and ``sched_setaffinity`` aimed
  at another process (the runtime and the light parent fork the next jobs' kernels, which would inherit them).
- enosys: ``clone3``.

Arguments are compared as the kernel reads them: ``int``/``pid_t``/``unsigned int`` arguments are 32-bit, so
equality is tested on the low 32 bits (a caller cannot dodge ``kill(1)`` by setting the upper half), and
``close_range`` is refused whenever its range could cover the channel after truncation. Only the native
architecture (x86_64) is in the filter; a call through another ABI (i386 ``int 0x80``, x32) kills the kernel
(SIGSYS), which the supervisor reports as a policy violation.

Under gVisor (mode ``refuse``, which the worker sets for that tier): gVisor's Sentry implements seccomp for
the application itself, at libseccomp API level 2: no SECCOMP_RET_USER_NOTIF and no KILL_PROCESS. There every
``report`` rule refuses with EPERM like a ``refuse`` rule (same rules, same arguments, same answer to the
caller) but records no ``policy_violation``; a call through another ABI kills the calling thread (gVisor runs
no 32-bit system calls on x86_64 anyway). What is lost is the record, not the refusal.

Cost: the filter is built and loaded once per kernel, right after the fork (see ``install``).
"""

from __future__ import annotations

import errno
import functools
import glob
import importlib.util
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The kernel's channel (kernel.REQUEST_FD, kernel.RESULT_FD); kernel.py imports this module's users, not us.
CHANNEL_FDS = (3, 4)
U32 = 0xFFFF_FFFF
# PENNY_SECCOMP: "required" (the image sets it; also the default when the runtime is PID 1, i.e. in a
# container): a kernel that cannot load the filter exits before running anything. "refuse": required, with
# every report rule refusing without a report (gVisor, which has no seccomp user notification; the worker
# sets it for that tier only). "off": no filter (the runtime run on a host, as the unit tests do).
MODE_ENV = "PENNY_SECCOMP"
MODES = ("required", "refuse", "off")
NOTIFY_TAG = b"seccomp-listener"
# Sent instead of a listener when the filter is loaded without one (mode "refuse").
NO_LISTENER_TAG = b"no-listener"
# Where Debian's python3-seccomp puts the binding. Loaded from this file, never by `import seccomp`: the
# sandbox's sys.path also holds user-installed packages, and one named `seccomp` must not replace it.
BINDING_DIR = "/usr/lib/python3/dist-packages"
# CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET
CLONE_NAMESPACE_FLAGS = (0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000,
                         0x4000_0000)


class Action(StrEnum):
    """What a matching call gets (see the module docstring)."""

    REPORT = "report"
    REFUSE = "refuse"
    ENOSYS = "enosys"


@dataclass(frozen=True)
class ArgTest:
    """One comparison on a system call argument (a 64-bit register).

    ``eq32``: (arg & mask) == value, mask 0xffffffff unless given (an int argument is its low 32 bits);
    ``lt`` / ``gt`` / ``ne``: arg < value / arg > value / arg != value on the whole 64-bit register.
    """

    index: int
    op: str
    value: int
    mask: int = U32

    def holds(self, args: Sequence[int]) -> bool:
        """Whether the comparison holds for these register values (the semantics libseccomp compiles)."""
        arg = args[self.index] & 0xFFFF_FFFF_FFFF_FFFF
        if self.op == "eq32":
            return arg & self.mask == self.value
        if self.op == "lt":
            return arg < self.value
        if self.op == "gt":
            return arg > self.value
        if self.op == "ne":
            return arg != self.value
        raise ValueError(f"unknown comparison {self.op!r}")


@dataclass(frozen=True)
class Rule:
    """A system call, the condition under which the rule applies (all tests hold; none: always), the action."""

    syscall: str
    action: Action
    when: tuple[ArgTest, ...] = ()

    def matches(self, args: Sequence[int]) -> bool:
        """Whether a call with these six register values is caught by this rule."""
        return all(test.holds(args) for test in self.when)


def _always(action: Action, *names: str) -> Iterator[Rule]:
    return (Rule(name, action) for name in names)


def _eq32(index: int, value: int) -> tuple[ArgTest, ...]:
    return (ArgTest(index, "eq32", value & U32),)


def _rules() -> tuple[Rule, ...]:
    report, refuse = Action.REPORT, Action.REFUSE
    rules: list[Rule] = [
        *_always(report, "execve", "execveat"),
        *_always(report, "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "process_madvise"),
        *_always(report, "pidfd_open", "pidfd_send_signal", "pidfd_getfd"),
        *_always(report, "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fspick", "fsconfig",
                 "move_mount", "open_tree", "mount_setattr"),
        *_always(report, "unshare", "setns"),
        *_always(report, "bpf", "userfaultfd"),
        *_always(refuse, "keyctl", "add_key", "request_key"),
        *_always(refuse, "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
                 "semtimedop", "semctl"),
        *_always(refuse, "mq_open", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
                 "mq_unlink"),
        *_always(refuse, "io_uring_setup", "io_uring_enter", "io_uring_register"),
        *_always(refuse, "perf_event_open", "personality"),
        Rule("clone3", Action.ENOSYS),
    ]
    rules += [Rule("clone", report, (ArgTest(0, "eq32", flag, flag),)) for flag in CLONE_NAMESPACE_FLAGS]
    # Signals: PID 1 is the supervisor, -1 means every process the caller may signal.
    for target in (1, -1):
        rules += [Rule("kill", report, _eq32(0, target)), Rule("rt_sigqueueinfo", report, _eq32(0, target))]
    rules += [Rule("tkill", report, _eq32(0, 1)), Rule("tgkill", report, _eq32(0, 1)),
              Rule("tgkill", report, _eq32(1, 1)), Rule("rt_tgsigqueueinfo", report, _eq32(0, 1)),
              Rule("rt_tgsigqueueinfo", report, _eq32(1, 1))]
    # Another process's limits and priorities: the runtime (PID 1) and the light parent fork the next jobs'
    # kernels, which inherit them. A pid/who of 0 is the caller itself; a 64-bit `ne` over-refuses a zero low
    # half with upper bits set, which is safe. prlimit64 may still read another's limits (new limit NULL);
    # PRIO_USER (2) and IOPRIO_WHO_USER (3) with who 0 mean every process of the caller's user.
    rules += [
        Rule("prlimit64", refuse, (ArgTest(0, "ne", 0), ArgTest(2, "ne", 0))),
        Rule("setpriority", refuse, (ArgTest(1, "ne", 0),)),
        Rule("setpriority", refuse, _eq32(0, 2)),
        Rule("ioprio_set", refuse, (ArgTest(1, "ne", 0),)),
        Rule("ioprio_set", refuse, _eq32(0, 3)),
        *(Rule(name, refuse, (ArgTest(0, "ne", 0),))
          for name in ("sched_setattr", "sched_setscheduler", "sched_setparam", "sched_setaffinity")),
    ]
    # The channel: fds are unsigned int (low 32 bits). close_range(first, last) touches [first, last]
    # after truncation; refused when first < 5 or has upper bits set, and last > 2 (over-refusing is safe).
    first_free, last_below = max(CHANNEL_FDS) + 1, min(CHANNEL_FDS) - 1
    for fd in CHANNEL_FDS:
        rules += [Rule("close", refuse, _eq32(0, fd)), Rule("dup2", report, _eq32(1, fd)),
                  Rule("dup3", report, _eq32(1, fd))]
    rules += [
        Rule("close_range", refuse, (ArgTest(0, "lt", first_free), ArgTest(1, "gt", last_below))),
        Rule("close_range", refuse, (ArgTest(0, "gt", U32), ArgTest(1, "gt", last_below))),
    ]
    return tuple(rules)


RULES: tuple[Rule, ...] = _rules()
REPORTED: frozenset[str] = frozenset(rule.syscall for rule in RULES if rule.action is Action.REPORT)


def verdict(syscall: str, args: Sequence[int] = (0, 0, 0, 0, 0, 0)) -> Action | None:
    """The action the filter takes on this call (None: allowed); the rule table read as pure data."""
    for rule in RULES:
        if rule.syscall == syscall and rule.matches(args):
            return rule.action
    return None


def mode(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """'required', 'refuse' or 'off' (see MODE_ENV); in a container the runtime is PID 1 and the filter is
    required."""
    env = os.environ if environ is None else environ
    value = env.get(MODE_ENV) or ("required" if os.getpid() == 1 else "off")
    if value not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {value!r}")
    return value


@functools.cache
def binding() -> Any:
    """libseccomp's Python binding, loaded from BINDING_DIR; ImportError when it is not installed."""
    tag = sys.implementation.cache_tag  # cpython-311: the binding is built for one Python version
    found = sorted(glob.glob(os.path.join(BINDING_DIR, f"seccomp.{tag}-*.so")))
    spec = importlib.util.spec_from_file_location("seccomp", found[0]) if found else None
    if spec is None or spec.loader is None:
        raise ImportError(f"python3-seccomp is not installed (no seccomp.{tag}-*.so in {BINDING_DIR})")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(seccomp: Any, rules: Sequence[Rule] = RULES, *, notify: bool = True) -> Any:
    """A libseccomp SyscallFilter (native architecture only; any other ABI kills the process).

    notify False (mode 'refuse', gVisor): report rules refuse with EPERM and another ABI kills the thread.
    """
    refuse = seccomp.ERRNO(errno.EPERM)
    actions = {Action.REPORT: seccomp.NOTIFY if notify else refuse, Action.REFUSE: refuse,
               Action.ENOSYS: seccomp.ERRNO(errno.ENOSYS)}
    ops = {"eq32": seccomp.MASKED_EQ, "lt": seccomp.LT, "gt": seccomp.GT, "ne": seccomp.NE}
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS if notify else seccomp.KILL)
    for rule in rules:
        args = []
        for test in rule.when:
            # libseccomp's MASKED_EQ takes (mask, value); LT/GT/NE take the value alone.
            if test.op == "eq32":
                args.append(seccomp.Arg(test.index, ops[test.op], test.mask, test.value))
            else:
                args.append(seccomp.Arg(test.index, ops[test.op], test.value))
        syscall_filter.add_rule(actions[rule.action], rule.syscall, *args)
    return syscall_filter


@functools.cache
def _built(notify: bool = True) -> Any:
    return build(binding(), notify=notify)


def prebuild() -> None:
    """Build the filter now, in the supervisor, so each forked kernel only loads its copy (about half a
    millisecond less per kernel); nothing happens where the filter is off or cannot be built (a kernel
    that needs it then fails as it would have)."""
    try:
        if mode() != "off":
            _built(mode() == "required")
    except (ImportError, ValueError, OSError):
        pass


def install(channel: socket.socket | None) -> None:
    """In the new kernel, before any user code: load the filter and hand its listener to the supervisor.

    Sends one message on ``channel``: NOTIFY_TAG with the listener fd, NO_LISTENER_TAG with a filter that
    reports nothing (mode 'refuse'), or b"off" without a filter (mode 'off'). The kernel keeps no copy of the
    listener (whoever holds it can answer the notifications). When the mode is 'required' or 'refuse' and the
    filter cannot be loaded, this raises and the kernel exits unused.
    """
    if channel is None:
        return
    try:
        current = mode()
        if current == "off":
            channel.sendall(b"off")
            return
        syscall_filter = _built(current == "required")
        syscall_filter.load()
        if current == "refuse":
            channel.sendall(NO_LISTENER_TAG)
            return
        listener = syscall_filter.get_notify_fd()
        try:
            socket.send_fds(channel, [NOTIFY_TAG], [listener])
        finally:
            os.close(listener)
    finally:
        channel.close()
