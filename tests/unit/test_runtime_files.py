"""The runtime's file requests, stdin and restart, run as a subprocess on the host (no container)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox_runtime import decoding, protocol
from tests.unit.test_runtime import Runtime, text

LIMITS = protocol.Limits()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Runtime]:
    (tmp_path / "ws").mkdir()
    (tmp_path / "tmp").mkdir()
    rt = Runtime(tmp_path / "ws", tmp_path / "tmp", mode="session")
    yield rt
    rt.close()


def ask(rt: Runtime, message: dict[str, Any]) -> protocol.FileReply:
    rt.send({"id": "f-1", **message})
    line = rt.proc.stdout.readline()  # type: ignore[union-attr]
    reply = decoding.decode_event(line, LIMITS)  # what the worker would accept
    assert isinstance(reply, protocol.FileReply) and reply.id == "f-1"
    return reply


def write(rt: Runtime, path: str, data: bytes, *, limit: int = 10**9) -> protocol.FileReply:
    reply = protocol.FileReply(id="f-1")
    for offset in range(0, max(len(data), 1), protocol.FILE_CHUNK_BYTES):
        chunk = data[offset:offset + protocol.FILE_CHUNK_BYTES]
        reply = ask(rt, {"op": "file_write", "path": path, "offset": offset, "size": len(data), "limit_bytes": limit,
                         "data": base64.b64encode(chunk).decode()})
        if reply.error:
            return reply
    return reply


def read(rt: Runtime, path: str) -> bytes:
    data, offset = b"", 0
    while True:
        reply = ask(rt, {"op": "file_read", "path": path, "offset": offset, "length": protocol.FILE_CHUNK_BYTES})
        assert reply.error is None, reply
        chunk = base64.b64decode(reply.data)
        data += chunk
        offset += len(chunk)
        if not chunk or offset >= reply.size:
            return data


def test_files_round_trip_through_the_runtime_and_the_code_sees_them(session: Runtime, tmp_path: Path) -> None:
    blob = os.urandom(3 * protocol.FILE_CHUNK_BYTES + 5)
    assert write(session, "data/in.bin", blob).size == len(blob)
    assert (tmp_path / "ws" / "data" / "in.bin").read_bytes() == blob
    assert read(session, "data/in.bin") == blob
    done, _ = session.run(f"len(open({str(tmp_path / 'ws' / 'data' / 'in.bin')!r}, 'rb').read())")
    assert done["result"]["repr"] == str(len(blob))
    listing = ask(session, {"op": "file_list", "path": ""})
    assert [(e["name"], e["type"]) for e in listing.entries] == [("data", "directory")]
    listing = ask(session, {"op": "file_list", "path": "data"})
    assert listing.entries[0]["name"] == "in.bin" and listing.entries[0]["size"] == len(blob)
    assert ask(session, {"op": "file_delete", "path": "data/in.bin"}).error is None
    assert not (tmp_path / "ws" / "data" / "in.bin").exists()
    assert ask(session, {"op": "file_read", "path": "data/in.bin", "offset": 0, "length": 10}).error == "not_found"


@pytest.mark.parametrize("path", ["../outside", "a/../../outside", "/etc/passwd", "a\0b"])
def test_paths_that_leave_the_workspace_are_refused(session: Runtime, tmp_path: Path, path: str) -> None:
    reply = write(session, path, b"x")
    assert reply.error == "invalid_path"
    assert not (tmp_path / "outside").exists()
    assert ask(session, {"op": "file_read", "path": path, "offset": 0, "length": 10}).error == "invalid_path"


def test_links_fifos_and_directories_are_refused_and_nothing_is_read_or_written(session: Runtime,
                                                                                tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("top secret")
    ws = tmp_path / "ws"
    session.run(f"import os\nos.symlink({str(secret)!r}, {str(ws / 'link')!r})\n"
                f"os.symlink({str(tmp_path)!r}, {str(ws / 'dirlink')!r})\n"
                f"os.mkfifo({str(ws / 'fifo')!r})\nos.mkdir({str(ws / 'dir')!r})")
    for path in ("link", "dirlink/secret", "fifo", "dir"):
        reply = ask(session, {"op": "file_read", "path": path, "offset": 0, "length": 100})
        assert reply.error == "invalid_path" and reply.data == "", (path, reply)
        assert write(session, path, b"overwritten").error == "invalid_path"
    assert secret.read_text() == "top secret"
    assert ask(session, {"op": "file_delete", "path": "link"}).error == "invalid_path"
    assert ask(session, {"op": "file_list", "path": "dirlink"}).error == "invalid_path"
    assert (ws / "link").is_symlink() and (ws / "fifo").exists()
    types = {e["name"]: e["type"] for e in ask(session, {"op": "file_list", "path": ""}).entries}
    assert types == {"link": "symlink", "dirlink": "symlink", "fifo": "other", "dir": "directory"}


def test_a_write_past_the_total_storage_is_refused(session: Runtime, tmp_path: Path) -> None:
    assert write(session, "a", b"x" * 600, limit=1000).error is None
    reply = write(session, "b", b"y" * 500, limit=1000)
    assert reply.error == "too_large" and not (tmp_path / "ws" / "b").exists()
    assert write(session, "a", b"z" * 900, limit=1000).error is None  # a replaced file does not count


def test_stdin_feeds_input_and_ends_with_eof(session: Runtime) -> None:
    code = ("lines = []\nwhile True:\n    try:\n        lines.append(input('> '))\n"
            "    except EOFError:\n        break\nimport sys\nprint(lines, repr(sys.stdin.read()))")
    session.send({"op": "exec", "code": code, "timeout_ms": 5000, "output_limit_bytes": 10_000, "stdin": "a\nb\n"})
    events = []
    while (event := session._read())["ev"] != "done":
        events.append(event)
    assert event["status"] == "success"
    assert text(events, "stdout") == "> > > ['a', 'b'] ''\n"
    done, _ = session.run("input()")
    assert done["error"]["type"] == "EOFError"


def test_restart_clears_the_variables_and_keeps_the_files(session: Runtime, tmp_path: Path) -> None:
    session.run(f"x = 1\nopen({str(tmp_path / 'ws' / 'kept')!r}, 'w').write('still')")
    session.send({"op": "restart", "id": "r-1"})
    done = session._read()
    assert done["ev"] == "done" and done["id"] == "r-1" and done["status"] == "success"
    after, _ = session.run(f"('x' in globals(), open({str(tmp_path / 'ws' / 'kept')!r}).read())")
    assert after["result"]["repr"] == "(False, 'still')"


def test_restart_revives_a_lost_session(session: Runtime) -> None:
    done, _ = session.run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                          timeout_ms=300)
    assert done["state"] == "lost"
    session.send({"op": "restart", "id": "r-2"})
    assert session._read()["status"] == "success"
    assert session.run("1 + 1")[0]["result"]["repr"] == "2"


def test_the_worker_refuses_file_replies_out_of_bounds() -> None:
    big = base64.b64encode(b"x" * (protocol.FILE_CHUNK_BYTES + 3)).decode()
    with pytest.raises(protocol.ProtocolError):
        decoding.decode_event(f'{{"ev":"file","id":"a","data":"{big}"}}'.encode(), LIMITS)
    entry = '{"name":"a","type":"file","size":1,"mtime":1}'
    many = ",".join([entry] * (protocol.MAX_DIR_ENTRIES + 1))
    with pytest.raises(protocol.ProtocolError):
        decoding.decode_event(f'{{"ev":"file","id":"a","entries":[{many}]}}'.encode(), LIMITS)
    with pytest.raises(protocol.ProtocolError):
        decoding.decode_event(b'{"ev":"file","id":"a","error":"whatever"}', LIMITS)


def test_a_held_stateless_request_keeps_its_files_until_release(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "tmp").mkdir()
    rt = Runtime(tmp_path / "ws", tmp_path / "tmp")
    try:
        assert write(rt, "in/data.csv", b"a,b\n1,2\n").error is None  # an input file, before the code
        rt.send({"op": "exec", "code": f"import os\nos.chdir({str(tmp_path / 'ws')!r})\n"
                 "os.makedirs('out/deep', exist_ok=True)\n"
                 "open('out/deep/r.csv', 'w').write(open('in/data.csv').read())\nopen('x.txt', 'w').write('x')\n"
                 "os.symlink('/etc/passwd', 'out/link.csv')",
                 "timeout_ms": 5000, "output_limit_bytes": 1000, "hold": True})
        while (event := rt._read())["ev"] != "done":
            pass
        assert event["status"] == "success", event
        found = ask(rt, {"op": "file_find", "patterns": ["*.csv", "out/**"]})
        assert [e["name"] for e in found.entries] == ["out/deep/r.csv"]  # not the link, nothing under in/
        assert read(rt, "out/deep/r.csv") == b"a,b\n1,2\n"
        rt.send({"op": "release"})
        assert rt._read() == {"ev": "reset", "ok": True, "survivors": []}
        assert list((tmp_path / "ws").iterdir()) == []
    finally:
        rt.close()


def test_what_was_printed_before_a_display_is_relayed_before_it(session: Runtime) -> None:
    for _ in range(20):
        session.send({"op": "exec", "code": "print('before', flush=True)\ndisplay({'a': 1})",
                      "timeout_ms": 5000, "output_limit_bytes": 1000})
        kinds = []
        while (event := session._read())["ev"] != "done":
            kinds.append(event["ev"])
        assert kinds == ["stdout", "display"]


def test_what_was_printed_after_a_display_is_relayed_after_it(session: Runtime) -> None:
    # Both pipes hold data when the supervisor wakes up: the display's output position orders them.
    for _ in range(20):
        session.send({"op": "exec", "code": "print('start')\ndisplay({'a': 1})\nprint('end')\nprint('more')",
                      "timeout_ms": 5000, "output_limit_bytes": 1000})
        seen = []
        while (event := session._read())["ev"] != "done":
            seen.append(event["ev"] if event["ev"] != "stdout" else event["text"])
        assert "".join(s if s.endswith("\n") else f"<{s}>" for s in seen) == "start\n<display>end\nmore\n"


def test_output_globs_match_a_name_at_a_time() -> None:
    from sandbox_runtime.files import _Glob

    assert _Glob("*.csv").match("a.csv") and not _Glob("*.csv").match("out/a.csv")
    assert _Glob("out/**").match("out/x/y.png") and not _Glob("out/**").match("other/y.png")
    assert _Glob("**/*.png").match("a.png") and _Glob("**/*.png").match("a/b/c.png")
    assert _Glob("a/?.txt").match("a/b.txt") and not _Glob("a/?.txt").match("a/bc.txt")
    # Many `**` against a deep path: memoised per (pattern, name) position, never exponential.
    deep = "/".join(["d"] * 200) + "/y"
    assert not _Glob("**/**/**/**/**/**/**/**/zz").match(deep)
    assert _Glob("**/**/**/**/**/**/**/**/y").match(deep)
