"""open_directory: the directory an entry names, never a symlink's target (even where O_NOFOLLOW is ignored)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from sandbox_runtime import nofollow


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "inside").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    return tmp_path


def _open_in(tree: Path, name: str) -> int:
    parent = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return nofollow.open_directory(name, parent)
    finally:
        os.close(parent)


def test_a_directory_opens(tree: Path) -> None:
    fd = _open_in(tree, "real")
    try:
        assert os.listdir(fd) == ["inside"]
    finally:
        os.close(fd)


def test_a_symlink_to_a_directory_is_refused(tree: Path) -> None:
    with pytest.raises(OSError) as raised:
        _open_in(tree, "link")
    assert raised.value.errno in (errno.ELOOP, errno.ENOTDIR)  # Linux refuses it at the open already


def test_a_symlink_is_refused_where_the_kernel_follows_it_despite_o_nofollow(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def follows(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        return real_open(path, flags & ~os.O_NOFOLLOW, mode, dir_fd=dir_fd)  # as gVisor does with O_DIRECTORY

    monkeypatch.setattr(nofollow.os, "open", follows)
    with pytest.raises(OSError) as raised:
        _open_in(tree, "link")
    assert raised.value.errno == errno.ELOOP
