"""`penny`: run code in PENNY Sandbox from a shell, follow jobs, manage sessions, check code, list packages.

Exit status: 0 success; 1 the user's code failed (status `error`, or `validate` found errors); 2 the run hit
a limit or did not finish (timeout, memory_exceeded, output_limit, policy_violation, cancelled, worker_lost);
3 the request was rejected (an API error, no connection, a bad argument; `health`: the service is unhealthy).
`run` and `jobs events` exit by how the job ended; `jobs show` and `jobs cancel` exit 0 when answered.
`--json` prints one JSON document on stdout and nothing else there; errors then are `{"error": {...}}`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

import httpx

from penny_client.client import DEFAULT_URL, SandboxClient
from penny_client.errors import ApiError, ConnectionFailed, PennyClientError
from penny_client.events import (
    DisplayEvent,
    Event,
    MetricsEvent,
    PlotEvent,
    QueuedEvent,
    ResultEvent,
    StartedEvent,
    StderrEvent,
    StdoutEvent,
    UnknownEvent,
)
from penny_client.models import ExecutionResult, JobInfo, JobStatus, SessionInfo, Variable
from penny_client.version import VERSION

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_LIMIT = 2
EXIT_REJECTED = 3
EXIT_INTERRUPTED = 130
PROGRESS_INTERVAL_S = 0.2
START_HINT = ("is the service running? Start it with `make run` in the PENNY Sandbox repository, "
              "or point --url / PENNY_URL at it")
# Characters of an event's text shown on one line of `penny jobs events`.
EVENT_LINE_CHARS = 160

_ENDINGS = {
    JobStatus.TIMEOUT: "timeout: the code ran past its time limit",
    JobStatus.MEMORY_EXCEEDED: "memory_exceeded: the code ran out of memory",
    JobStatus.OUTPUT_LIMIT: "output_limit: the code printed more than the service keeps",
    JobStatus.POLICY_VIOLATION: "policy_violation: the code was refused by the policy",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.WORKER_LOST: "worker_lost: the worker running the code died; submit it again",
}
_LIMIT_STATUSES = frozenset({JobStatus.TIMEOUT, JobStatus.MEMORY_EXCEEDED, JobStatus.OUTPUT_LIMIT,
                             JobStatus.POLICY_VIOLATION, JobStatus.CANCELLED, JobStatus.WORKER_LOST})


def exit_code(status: JobStatus) -> int:
    """The process exit status for a run that ended with `status`."""
    if status is JobStatus.SUCCESS:
        return EXIT_OK
    if status in _LIMIT_STATUSES:
        return EXIT_LIMIT
    return EXIT_USER_ERROR


class UsageError(Exception):
    """A bad command line (exit 3, like any rejected request)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_REJECTED, f"{self.prog}: error: {message}\n")


def _variable(text: str) -> tuple[str, Any]:
    name, equals, raw = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON, got {text!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the value of {name} is not JSON: {raw!r} (quote strings: "
                                         f"{name}='\"text\"')") from None


_SPECIFIER_START = ("<", ">", "=", "!", "~")


def split_packages(text: str) -> list[str]:
    """`numpy,pandas>=2,<3` -> ["numpy", "pandas>=2,<3"]: commas separate packages, except inside a specifier."""
    packages: list[str] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if packages and part.startswith(_SPECIFIER_START):
            packages[-1] += "," + part
        else:
            packages.append(part)
    return packages


def build_parser() -> argparse.ArgumentParser:
    """The `penny` command line."""
    common = _Parser(add_help=False)
    common.add_argument("--url", default=os.environ.get("PENNY_URL") or DEFAULT_URL,
                        help="the service (default: $PENNY_URL or %(default)s)")
    common.add_argument("--api-key", default=os.environ.get("PENNY_API_KEY"),
                        help="API key (default: $PENNY_API_KEY)")
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")

    parser = _Parser(prog="penny", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"penny {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run a file (or - for stdin), streaming its output")
    run.add_argument("file", metavar="FILE", help="Python file, or - to read stdin")
    run.add_argument("--session", metavar="ID", help="run in this session")
    run.add_argument("--timeout", type=int, metavar="MS", help="timeout in milliseconds")
    run.add_argument("--var", type=_variable, action="append", default=[], metavar="NAME=JSON",
                     help="a variable set before the run (repeatable)")
    run.add_argument("--plots", type=Path, metavar="DIR", help="save the plots into DIR")
    run.add_argument("--svg", action="store_true", help="plots as SVG instead of PNG")
    run.add_argument("--packages", type=split_packages, action="extend", default=[], metavar="PKG[,PKG...]",
                     help="install allowlisted packages for this run, e.g. tabulate,pandas>=2 (repeatable)")
    run.add_argument("--strict", action="store_true", default=None,
                     help="refuse the code if the policy check finds errors, instead of running it")
    run.add_argument("--stdin", type=Path, metavar="FILE", help="what input() reads (a file)")
    run.add_argument("--file", dest="input_files", type=_file_pair, action="append", default=[],
                     metavar="LOCAL:REMOTE",
                     help="upload LOCAL to /workspace/REMOTE before the run (repeatable)")
    run.add_argument("--output-file", action="append", default=[], metavar="GLOB",
                     help="bring back /workspace files matching GLOB, e.g. '*.csv' or 'out/**' (repeatable)")
    run.add_argument("--output-dir", type=Path, default=Path("."), metavar="DIR",
                     help="where the output files are saved (default: the current directory)")
    run.set_defaults(handler=_run)

    jobs = commands.add_parser("jobs", help="show, follow or cancel a job by its id")
    job_actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    job_show = job_actions.add_parser("show", parents=[common], help="a job's status and, once ended, its result")
    job_show.add_argument("job_id", metavar="ID")
    job_show.set_defaults(handler=_job_show)
    job_cancel = job_actions.add_parser("cancel", parents=[common], help="cancel a queued or running job")
    job_cancel.add_argument("job_id", metavar="ID")
    job_cancel.set_defaults(handler=_job_cancel)
    job_events = job_actions.add_parser("events", parents=[common],
                                        help="a job's events, one a line, until its result")
    job_events.add_argument("job_id", metavar="ID")
    job_events.add_argument("--after", metavar="EVENT_ID", help="only the events after this one (Last-Event-ID)")
    job_events.set_defaults(handler=_job_events)

    session = commands.add_parser("session", help="create, list, show or delete sessions")
    actions = session.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser("new", parents=[common], help="create a session; prints its id")
    new.add_argument("--var", type=_variable, action="append", default=[], metavar="NAME=JSON")
    new.set_defaults(handler=_session_new)
    actions.add_parser("list", parents=[common], help="your sessions").set_defaults(handler=_session_list)
    show = actions.add_parser("show", parents=[common], help="a session's state and variables")
    show.add_argument("session_id", metavar="ID")
    show.set_defaults(handler=_session_show)
    upload = actions.add_parser("upload", parents=[common], help="upload a file into a session's /workspace")
    upload.add_argument("session_id", metavar="ID")
    upload.add_argument("local", type=Path, metavar="LOCAL")
    upload.add_argument("remote", nargs="?", metavar="REMOTE", help="path under /workspace (default: LOCAL's name)")
    upload.set_defaults(handler=_session_upload)
    download = actions.add_parser("download", parents=[common], help="download a file of a session's /workspace")
    download.add_argument("session_id", metavar="ID")
    download.add_argument("remote", metavar="REMOTE")
    download.add_argument("local", nargs="?", type=Path, metavar="LOCAL", help="default: REMOTE's name, here")
    download.set_defaults(handler=_session_download)
    listing = actions.add_parser("ls", parents=[common], help="list a directory of a session's /workspace")
    listing.add_argument("session_id", metavar="ID")
    listing.add_argument("path", nargs="?", default="", metavar="PATH")
    listing.set_defaults(handler=_session_ls)
    remove = actions.add_parser("rm", parents=[common], help="delete a session")
    remove.add_argument("session_id", metavar="ID")
    remove.set_defaults(handler=_session_rm)

    validate = commands.add_parser("validate", parents=[common], help="check code against the policy, run nothing")
    validate.add_argument("file", metavar="FILE", help="Python file, or - to read stdin")
    validate.add_argument("--strict", action="store_true", default=None, help="apply the strict policy")
    validate.set_defaults(handler=_validate)

    packages = commands.add_parser("packages", parents=[common], help="the packages the sandbox offers")
    packages.add_argument("--search", help="only names or descriptions containing this")
    packages.add_argument("--category", help="only this category")
    packages.set_defaults(handler=_packages)

    commands.add_parser("health", parents=[common], help="the service's health").set_defaults(handler=_health)
    return parser


class Console:
    """Where a command writes: stdout and stderr, plus, on a terminal, a progress line on stderr.

    The progress line (`queued` -> `running on host, 1.2 s`) is redrawn by a thread; output clears it first
    and it is drawn only at the start of a line, so it never mixes into the code's own output.
    """

    def __init__(self, stdout: TextIO, stderr: TextIO, *, as_json: bool, progress: bool) -> None:
        self.stdout, self.stderr, self.as_json = stdout, stderr, as_json
        self._progress = progress
        self._lock = threading.Lock()
        self._state = ""
        self._since = time.monotonic()
        self._drawn = False
        self._at_line_start = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def document(self, data: Any) -> None:
        """The one JSON document of --json."""
        self.stdout.write(json.dumps(data, indent=None, default=str) + "\n")
        self.stdout.flush()

    def write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            self._clear()
            stream.write(text)
            stream.flush()
            if text:
                self._at_line_start = text.endswith("\n")
            self._draw()

    def ensure_line_start(self, stream: TextIO) -> None:
        """End an unfinished output line before printing ours."""
        if not self._at_line_start:
            self.write(stream, "\n")

    def status(self, state: str) -> None:
        """Show `state` on the progress line, with the time since this call."""
        if not self._progress:
            return
        with self._lock:
            self._state, self._since = state, time.monotonic()
            self._draw()
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="penny-progress", daemon=True)
            self._thread.start()

    def stop_progress(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._clear()

    def _tick(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL_S):
            with self._lock:
                self._draw()

    def _draw(self) -> None:
        if not self._progress or not self._state or not self._at_line_start or self._stop.is_set():
            return
        elapsed_s = time.monotonic() - self._since
        self.stderr.write(f"\r\x1b[2K\x1b[2m{self._state}, {elapsed_s:.1f} s\x1b[0m")
        self.stderr.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.stderr.write("\r\x1b[2K")
            self.stderr.flush()
            self._drawn = False


def _read_source(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _save_plots(result: ExecutionResult, directory: Path, console: Console) -> list[str]:
    paths = []
    for index, plot in enumerate(result.plots, start=1):
        path = plot.save(directory / f"{result.job_id}-{index}.{plot.extension}")
        paths.append(str(path))
        if not console.as_json:
            console.write(console.stderr, f"penny: plot saved to {path}\n")
    return paths


def _file_pair(text: str) -> tuple[Path, str]:
    local, sep, remote = text.partition(":")
    if not local:
        raise argparse.ArgumentTypeError(f"expected LOCAL:REMOTE, got {text!r}")
    return Path(local), (remote if sep and remote else Path(local).name)


def _run_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The stdin, files and output globs of `penny run`, read from the local files."""
    try:
        stdin = args.stdin.read_text() if args.stdin else None
        files = {remote: local.read_bytes() for local, remote in args.input_files}
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
    return {"stdin": stdin, "files": files or None, "output_files": args.output_file or None}


def _run(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    code = _read_source(args.file)
    events = client.execute_stream(code, timeout_ms=args.timeout, variables=dict(args.var),
                                   session_id=args.session, packages=args.packages or None, strict=args.strict,
                                   plot_formats=["svg"] if args.svg else None, **_run_inputs(args))
    try:
        with events:
            for event in events:
                if isinstance(event, QueuedEvent):
                    console.status("queued")
                elif isinstance(event, StartedEvent):
                    console.status(f"running on {event.worker}" if event.worker else "running")
                elif console.as_json:
                    continue
                elif isinstance(event, StdoutEvent):
                    console.write(console.stdout, event.text)
                elif isinstance(event, StderrEvent):
                    console.write(console.stderr, event.text)
                elif isinstance(event, DisplayEvent):  # as a notebook's text view shows display(obj)
                    console.ensure_line_start(console.stdout)
                    console.write(console.stdout, event.display.repr + "\n")
    except KeyboardInterrupt:
        console.stop_progress()
        if events.job_id is not None:
            with contextlib.suppress(PennyClientError):
                client.cancel_job(events.job_id)
            console.write(console.stderr, f"\npenny: interrupted; job {events.job_id} cancelled\n")
        return EXIT_INTERRUPTED
    finally:
        console.stop_progress()
    result = events.result
    assert result is not None  # the stream ends with its result, or raises
    plots = _save_plots(result, args.plots, console) if args.plots else []
    saved = []
    for output in result.files:
        saved.append(str(output.save(args.output_dir)))
        if not console.as_json:
            console.write(console.stderr, f"penny: {output.path} saved to {saved[-1]}\n")
    if console.as_json:
        console.document({**result.to_api(), **({"savedPlots": plots} if args.plots else {}),
                          **({"savedFiles": saved} if saved else {})})
        return exit_code(result.status)
    _print_ending(result, console)
    if result.plots and not args.plots:
        count = len(result.plots)
        console.write(console.stderr, f"penny: {count} plot{'s' if count > 1 else ''} produced, not saved "
                                      f"(--plots DIR saves them)\n")
    return exit_code(result.status)


def _print_ending(result: ExecutionResult, console: Console) -> None:
    """What a run prints after its streamed output: the value or the traceback, then the service's remarks."""
    if result.result is not None:
        console.ensure_line_start(console.stdout)
        console.write(console.stdout, result.result.repr + "\n")
    if result.error is not None:
        console.ensure_line_start(console.stderr)
        console.write(console.stderr, result.error.format() + "\n")
    if result.packages is not None:
        for installed in result.packages.installed:
            console.write(console.stderr, f"penny: installed {installed.name} {installed.version or ''}".rstrip()
                          + "\n")
        for failed in result.packages.failed:
            console.write(console.stderr, f"penny: package {failed.name} not installed: {failed.reason}\n")
    for note in result.notes:
        console.write(console.stderr, f"penny: note: {note}\n")
    if result.truncated:
        console.write(console.stderr, "penny: output truncated (over the service's output limit)\n")
    if result.status is not JobStatus.SUCCESS and result.status is not JobStatus.ERROR:
        console.write(console.stderr, f"penny: {_ENDINGS.get(result.status, result.status.value)}\n")


def _job_text(info: JobInfo) -> str:
    lines = [f"{info.job_id}  {info.status.value}  {info.worker or '-'}"]
    result = info.result
    if result is None:
        return "\n".join(lines)
    metrics = result.metrics
    lines.append(f"  queued {metrics.queued_ms} ms, ran {metrics.duration_ms} ms, cpu {metrics.cpu_ms} ms, "
                 f"peak memory {metrics.peak_memory_bytes} bytes")
    if result.session_id:
        lines.append(f"  session: {result.session_id} ({result.session_state or '?'})")
    if result.result is not None:
        lines.append(f"  value: {result.result.type} = {result.result.repr}")
    if result.error is not None:
        lines.append(f"  error: {result.error.type}: {result.error.message}")
    if result.plots or result.displays:
        lines.append(f"  plots: {len(result.plots)}, displays: {len(result.displays)}")
    lines.extend(f"  note: {note}" for note in result.notes)
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            lines.append(f"{name}:")
            lines.extend(f"  {line}" for line in text.splitlines())
    return "\n".join(lines)


def _job_show(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    info = client.job_info(args.job_id)
    if console.as_json:
        console.document({"jobId": info.job_id, "status": info.status.value, "worker": info.worker,
                          **({"result": info.result.to_api()} if info.result is not None else {})})
    else:
        console.write(console.stdout, _job_text(info) + "\n")
    return EXIT_OK


def _job_cancel(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    status = client.cancel_job(args.job_id)
    if console.as_json:
        console.document({"jobId": args.job_id, "status": status})
    else:
        console.write(console.stdout, f"{args.job_id}  {status}\n")
    return EXIT_OK


def _clip(text: str) -> str:
    return text if len(text) <= EVENT_LINE_CHARS else text[:EVENT_LINE_CHARS - 1] + "…"


def event_line(event: Event) -> str:
    """One line of `penny jobs events`: the event's id, its name and what it says."""
    if isinstance(event, QueuedEvent):
        detail = ""
    elif isinstance(event, StartedEvent):
        detail = event.worker or ""
    elif isinstance(event, StdoutEvent | StderrEvent):
        detail = json.dumps(event.text)
    elif isinstance(event, PlotEvent):
        size = f" {event.plot.width}x{event.plot.height}" if event.plot.width and event.plot.height else ""
        detail = event.plot.format + size
    elif isinstance(event, DisplayEvent):
        detail = f"{event.display.type}: {event.display.repr}"
    elif isinstance(event, MetricsEvent):
        detail = (f"elapsed {event.elapsed_ms} ms, cpu {event.cpu_percent} %, memory {event.memory_bytes} bytes, "
                  f"disk {event.disk_bytes} bytes")
    elif isinstance(event, ResultEvent):
        error = event.result.error
        detail = event.result.status.value + (f" ({error.type}: {error.message})" if error else "")
    elif isinstance(event, UnknownEvent):
        detail = json.dumps(event.data, default=str)
    else:  # pragma: no cover - every event class is handled above
        detail = ""
    return _clip(f"{event.id}  {event.type}  {detail}".rstrip().replace("\n", " "))


def _job_events(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    collected: list[dict[str, Any]] = []
    with client.job_events(args.job_id, last_event_id=args.after) as events:
        for event in events:
            if console.as_json:
                collected.append({"id": event.id, "event": event.type, "data": event.raw})
            else:
                console.write(console.stdout, event_line(event) + "\n")
        result = events.result
    if console.as_json:
        console.document({"jobId": args.job_id, "events": collected})
    assert result is not None  # the stream ends with its result, or raises
    return exit_code(result.status)


def _variables_text(variables: Mapping[str, Variable]) -> Iterator[str]:
    for name, info in variables.items():
        head = f"  {name}: {info.type} = "
        # A multi-line repr (a DataFrame, an array) lines up under its first line.
        yield head + info.repr.replace("\n", "\n" + " " * len(head))


def _when(moment: datetime | None, now: datetime | None = None) -> str:
    """A timestamp as people read it: local time to the second, and how long ago or from now."""
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    seconds = int((moment - now).total_seconds())
    span = abs(seconds)
    amount = (f"{span} s" if span < 60 else f"{span // 60} min" if span < 3600 else
              f"{span // 3600} h {span % 3600 // 60} min" if span < 86400 else f"{span // 86400} d")
    relative = "now" if span < 1 else (f"in {amount}" if seconds > 0 else f"{amount} ago")
    return f"{moment.astimezone().strftime('%Y-%m-%d %H:%M:%S')} ({relative})"


def _session_text(info: SessionInfo) -> str:
    lines = [f"{info.session_id}  {info.status.value if info.status else '?'}",
             f"  worker: {info.worker}", f"  created: {_when(info.created_at)}",
             f"  last used: {_when(info.last_used_at)}",
             f"  expires: {_when(info.expires_at)}", f"  executions: {info.execution_count}"]
    if info.packages:
        lines.append(f"  packages: {', '.join(info.packages)}")
    if info.variables:
        lines.append("variables:")
        lines.extend(_variables_text(info.variables))
    return "\n".join(lines)


def _session_new(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    session = client.session(variables=dict(args.var))
    if console.as_json:
        console.document(session.created.to_api())
    else:
        console.write(console.stdout, session.id + "\n")
    return EXIT_OK


def _session_list(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    sessions = client.sessions()
    if console.as_json:
        console.document({"sessions": [info.to_api() for info in sessions]})
        return EXIT_OK
    for info in sessions:
        status = info.status.value if info.status else "?"
        console.write(console.stdout, f"{info.session_id}  {status:<8} {info.worker or '-':<16} "
                                      f"{info.execution_count:>5} runs  last used {info.last_used_at}\n")
    return EXIT_OK


def _session_show(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    info = client.session_info(args.session_id)
    if console.as_json:
        console.document(info.to_api())
    else:
        console.write(console.stdout, _session_text(info) + "\n")
    return EXIT_OK


def _session_upload(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    try:
        data = args.local.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.local}: {exc.strerror or exc}") from None
    remote = args.remote or args.local.name
    size = client.attach_session(args.session_id).files.upload(remote, data)
    if console.as_json:
        console.document({"path": remote, "size": size})
    else:
        console.write(console.stdout, f"{remote}: {size} bytes uploaded\n")
    return EXIT_OK


def _session_download(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    local = args.local or Path(args.remote.rstrip("/").rsplit("/", 1)[-1])
    data = client.attach_session(args.session_id).files.download(args.remote, local)
    if console.as_json:
        console.document({"path": args.remote, "size": len(data), "savedTo": str(local)})
    else:
        console.write(console.stdout, f"{args.remote}: {len(data)} bytes saved to {local}\n")
    return EXIT_OK


def _session_ls(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    entries = client.attach_session(args.session_id).files.list(args.path)
    if console.as_json:
        console.document({"path": args.path, "entries": [
            {"name": e.name, "type": e.type, "size": e.size, "modified": e.modified.isoformat()} for e in entries]})
        return EXIT_OK
    for entry in entries:
        name = entry.name + ("/" if entry.type == "directory" else "")
        console.write(console.stdout, f"{entry.size:>12}  {entry.modified.astimezone():%Y-%m-%d %H:%M}  {name}\n")
    return EXIT_OK


def _session_rm(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    client.delete_session(args.session_id)
    if console.as_json:
        console.document({"sessionId": args.session_id, "deleted": True})
    return EXIT_OK


def _validate(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    report = client.validate(_read_source(args.file), strict=args.strict, include_warnings=True)
    if console.as_json:
        console.document(report.to_api())
    else:
        name = "<stdin>" if args.file == "-" else args.file
        for kind, issues in (("error", report.errors), ("warning", report.warnings)):
            for issue in issues:
                console.write(console.stdout, f"{name}:{issue.line}:{issue.col}: {kind} {issue.rule}: "
                                              f"{issue.message}\n")
        if report.valid:
            console.write(console.stdout, f"{name}: valid\n")
    return EXIT_OK if report.valid else EXIT_USER_ERROR


def _packages(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    packages = client.packages(search=args.search, category=args.category)
    if console.as_json:
        console.document({"packages": [package.to_api() for package in packages]})
        return EXIT_OK
    for package in packages:
        console.write(console.stdout, f"{package.name:<24} {package.version or '':<12} {package.category or '':<16} "
                                      f"{package.description or ''}\n")
    return EXIT_OK


def _health(client: SandboxClient, args: argparse.Namespace, console: Console) -> int:
    health = client.health()
    if console.as_json:
        console.document(health.to_api())
    else:
        version = f", version {health.version} (API {health.api_version})" if health.version else ""
        console.write(console.stdout, f"{health.status}  uptime {health.uptime_s} s, {len(health.workers)} "
                                      f"worker(s), queue {health.queue_depth}{version}\n")
    return EXIT_OK if health.ok else EXIT_REJECTED


def _report_error(exc: PennyClientError | UsageError, console: Console, *, url: str) -> None:
    if isinstance(exc, ApiError):
        envelope = {"code": exc.code, "message": exc.message, "details": exc.details, "httpStatus": exc.http_status}
        text = f"penny: {exc.code} ({exc.http_status}): {exc.message}" + _details_text(exc.details)
    elif isinstance(exc, ConnectionFailed) and isinstance(exc.__cause__, httpx.ConnectError):
        message = f"cannot connect to {url} ({exc.__cause__})"
        envelope = {"code": "connection_failed", "message": message, "details": {"url": url, "hint": START_HINT}}
        text = f"penny: {message}\n  {START_HINT}"
    else:
        code = "connection_failed" if isinstance(exc, ConnectionFailed) else "usage"
        envelope = {"code": code, "message": str(exc), "details": {}}
        text = f"penny: {exc}"
    if console.as_json:
        console.document({"error": envelope})
    else:
        console.write(console.stderr, text + "\n")


def _details_text(details: Mapping[str, Any]) -> str:
    """The parts of an error's details a person needs: fields at fault, refused packages, policy findings."""
    lines: list[str] = []
    fields = details.get("fields")
    if isinstance(fields, dict):
        lines.extend(f"  {name}: {'; '.join(map(str, problems)) if isinstance(problems, list) else problems}"
                     for name, problems in fields.items())
    for package in details.get("packages") or ():
        if isinstance(package, dict):
            lines.append(f"  {package.get('name')}: {package.get('reason')}")
    for finding in details.get("errors") or ():
        if isinstance(finding, dict):
            lines.append(f"  line {finding.get('line')}, col {finding.get('col')}: {finding.get('rule')}: "
                         f"{finding.get('message')}")
    return "".join("\n" + line for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `penny` command line; the exit status."""
    args = build_parser().parse_args(argv)
    console = Console(sys.stdout, sys.stderr, as_json=args.json, progress=sys.stderr.isatty())
    handler: Callable[[SandboxClient, argparse.Namespace, Console], int] = args.handler
    try:
        with SandboxClient(args.url, args.api_key) as client:
            return handler(client, args, console)
    except (PennyClientError, UsageError) as exc:
        console.stop_progress()
        _report_error(exc, console, url=args.url)
        return EXIT_REJECTED
    except KeyboardInterrupt:  # before a job existed (a run's own interrupt cancels its job and returns)
        console.stop_progress()
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
