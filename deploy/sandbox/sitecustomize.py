"""Start-up hook of the sandbox image (installed as /opt/penny/sitecustomize.py).

The image ships matplotlib's font cache prebuilt in ``MPLCONFIGDIR`` (/opt/penny/mplconfig), but
the container's root file system is read-only at run time, and matplotlib refuses a config/cache
directory it cannot write: it warns on stderr and rebuilds the font cache in a fresh temporary
directory on every import (slow). So when ``MPLCONFIGDIR`` is not writable, this hook copies its
few small files once into a private directory under ``$TMPDIR`` (default /tmp, a tmpfs in the
sandbox) and points ``MPLCONFIGDIR`` there. It costs well under a millisecond, imports nothing
beyond ``os``, and never raises: on any problem it leaves the environment as it was.
"""

from __future__ import annotations

import os
import stat
from collections.abc import MutableMapping

SOURCE_VARIABLE = "PENNY_MPLCONFIG_SOURCE"


def redirect_mplconfig(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Copy a read-only MPLCONFIGDIR to a writable one; return the new path, or None if unchanged."""
    src = environ.get(SOURCE_VARIABLE) or environ.get("MPLCONFIGDIR")
    if not src or not os.path.isdir(src) or os.access(src, os.W_OK):
        return None
    environ[SOURCE_VARIABLE] = src  # the runtime calls this again after it wiped /tmp
    uid = os.getuid()
    dst = os.path.join(environ.get("TMPDIR") or "/tmp", f".penny-mplconfig-{uid}")
    try:
        os.mkdir(dst, 0o700)
    except FileExistsError:
        st = os.lstat(dst)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            return None
    for name in os.listdir(src):
        source, target = os.path.join(src, name), os.path.join(dst, name)
        if not os.path.isfile(source) or os.path.exists(target):
            continue
        partial = f"{target}.{os.getpid()}.part"
        with open(source, "rb") as fin, open(partial, "wb") as fout:
            fout.write(fin.read())
        os.replace(partial, target)
    environ["MPLCONFIGDIR"] = dst
    return dst


try:
    redirect_mplconfig()
except OSError:
    pass
