"""Writing a file so that readers see the old contents or the new ones, never a part: a temporary file in the
same folder, flushed to disk, then ``os.replace``, then the folder flushed so the rename survives a power cut.

The one place this is done: configs, learngenes, checkpoints, evaluations, the image cache, exports and files
fetched from a remote run all go through :func:`replacing` (or its two shorthands). No torch here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write; when the block ends without an error, the
    file is flushed to disk and renamed over ``path``. On any error (or Ctrl-C) the temporary file is removed and
    ``path`` keeps its old contents."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (text is UTF-8 encoded) atomically; returns ``path``."""
    path = Path(path)
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` over ``dst`` atomically; returns ``dst``."""
    dst = Path(dst)
    with replacing(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; best effort (some filesystems refuse)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
