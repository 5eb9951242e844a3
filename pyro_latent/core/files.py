"""Writing files so that a reader never sees half of one, and a failure loses nothing saved."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "write_atomically"]


def write_atomically(path: str | os.PathLike, write) -> Path:
    """Write a file through ``write(binary_file)`` atomically: a temporary file in the same
    folder, fsync, ``os.replace``, fsync of the folder.  A reader sees the old file or the new
    one, never half of one, and a failure leaves the old file and no temporary behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
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


def atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably (:func:`write_atomically`)."""
    return write_atomically(path, lambda f: f.write(text.encode("utf-8")))
