"""Reading files a run did not necessarily write itself: size-limited, regular files only, JSON that cannot crash
the reader, and the checksums that tell a damaged file from a good one.

Everything here raises ``ValueError`` with a one-line message on bad input, never ``RecursionError``,
``MemoryError`` or a hang: a learngene symlinked to ``/dev/zero``, a FIFO, a manifest of 100,000 ``[`` or a
checkpoint whose tensor data was overwritten are all refused, not followed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

#: The largest JSON manifest read (learngene, baseline, evaluation): they are a few kB.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: The largest weights file read (a learngene or a baseline network; a VGG11 at width 8 is about 2 GB).
MAX_WEIGHTS_BYTES = 8 * 1024 * 1024 * 1024
#: The largest checkpoint read.
MAX_CHECKPOINT_BYTES = 32 * 1024 * 1024 * 1024


def loads_json(data: str | bytes, what: str = "JSON") -> Any:
    """``json.loads`` that raises ValueError (one line) for anything it cannot decode: broken text, bytes that are
    not UTF-8, and nesting too deep for the decoder (the stdlib raises RecursionError, orjson its own error)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} is not valid JSON ({str(err).splitlines()[0][:120]})") from None


def read_limited(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes (symlinks are followed, but a device,
    FIFO or socket at the end is refused before anything is read); raises ValueError otherwise."""
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the checks below refuse it
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise ValueError(f"cannot read {what} {p}: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{p}: {what} is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{p}: {what} is {_size(st.st_size)}, more than the {_size(limit)} allowed")
        os.set_blocking(fd, True)
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as err:
        raise ValueError(f"cannot read {what} {p}: {err.strerror or err}") from None
    finally:
        os.close(fd)


def read_json_file(path: str | Path, what: str = "manifest", limit: int = MAX_MANIFEST_BYTES) -> Any:
    """A JSON file read with :func:`read_limited` and decoded with :func:`loads_json`."""
    data = read_limited(path, limit, what)
    return loads_json(data, f"{path}: {what}")


def check_file(path: str | Path, limit: int, what: str = "file") -> int:
    """The size of ``path`` when it is a regular file of at most ``limit`` bytes; raises ValueError otherwise
    (for readers that hand the path to a library, which would read whatever it points to)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as err:
        raise ValueError(f"cannot read {what} {p}: {err.strerror or err}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{p}: {what} is not a regular file")
    if st.st_size > limit:
        raise ValueError(f"{p}: {what} is {_size(st.st_size)}, more than the {_size(limit)} allowed")
    return st.st_size


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


# ---------------------------------------------------------------------------------------------------------------
# safetensors blobs with a checksum


def split_safetensors(blob: bytes, what: str = "safetensors file") -> tuple[dict[str, Any], bytes]:
    """The JSON header and the tensor data of a safetensors blob; raises ValueError when the framing is broken."""
    if len(blob) < 8:
        raise ValueError(f"{what} is truncated")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8 or n > 100 * 1024 * 1024:
        raise ValueError(f"{what} has a damaged header (length {n})")
    header = loads_json(blob[8:8 + n], f"{what} header")
    if not isinstance(header, dict):
        raise ValueError(f"{what} has a damaged header")
    return header, blob[8 + n:]


def data_checksum(parts: list[str], data: bytes) -> str:
    """SHA-256 over some text fields (each length-prefixed, so no two splits collide) and the tensor data."""
    h = hashlib.sha256()
    for text in parts:
        raw = text.encode()
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    h.update(data)
    return h.hexdigest()


def all_finite(tensors: Any) -> bool:
    """Whether every floating-point tensor (a dict's values or an iterable) holds only finite numbers."""
    import torch

    values = tensors.values() if isinstance(tensors, dict) else tensors
    for t in values:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return False
    return True


def finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
