"""The SDK's file helpers and the CLI's session view (no service)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from penny_client import cli
from penny_client.files import OutputFile, execution_fields
from penny_client.models import Variable


def test_execution_fields_carry_stdin_files_and_globs(tmp_path: Path) -> None:
    local = tmp_path / "x.bin"
    local.write_bytes(b"\x00\xff")
    fields = execution_fields(stdin="1\n", files={"a.txt": "text", "b.bin": local}, output_files=["*.csv"])
    assert fields["stdin"] == "1\n" and fields["outputFiles"] == ["*.csv"]
    assert [(f["path"], base64.b64decode(f["content"])) for f in fields["files"]] == [
        ("a.txt", b"text"), ("b.bin", b"\x00\xff")]
    assert execution_fields() == {}


def test_an_output_file_is_saved_under_its_directory_only(tmp_path: Path) -> None:
    assert OutputFile("out/a.txt", b"a").save(tmp_path) == (tmp_path / "out" / "a.txt").resolve()
    with pytest.raises(ValueError):
        OutputFile("../escape.txt", b"x").save(tmp_path / "inner")
    assert not (tmp_path / "escape.txt").exists()


def test_session_show_indents_multi_line_reprs_and_prints_readable_times() -> None:
    lines = list(cli._variables_text({"frame": Variable(type="DataFrame", repr="   a\n0  1\n1  2")}))
    assert lines == ["  frame: DataFrame =    a\n                     0  1\n                     1  2"]
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert cli._when(now - timedelta(seconds=90), now).endswith("(1 min ago)")
    assert cli._when(now + timedelta(hours=2, minutes=5), now).endswith("(in 2 h 5 min)")
    assert cli._when(None) == "-"
