"""Opening the directory a directory entry names, never what a symbolic link there points to.

O_DIRECTORY | O_NOFOLLOW is enough on Linux: a symlink fails with ENOTDIR or ELOOP. gVisor (runsc
0.0~20221219) follows the link anyway when O_DIRECTORY is given. So after the open the entry itself is looked
at (fstatat without following) and must be a directory with the very device and inode that was opened: a
symlink there, or one swapped in or out between the two calls, fails with ELOOP as Linux would have failed.
"""

from __future__ import annotations

import errno
import os
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_directory(name: str, dir_fd: int | None = None, flags: int = DIR_FLAGS) -> int:
    """os.open(name, flags | O_DIRECTORY | O_NOFOLLOW, dir_fd=dir_fd), checked to be the entry itself."""
    fd = os.open(name, flags | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        entry = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        opened = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISDIR(entry.st_mode) or (entry.st_dev, entry.st_ino) != (opened.st_dev, opened.st_ino):
        os.close(fd)
        raise OSError(errno.ELOOP, "a symbolic link, not a directory", name)
    return fd
