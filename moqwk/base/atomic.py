"""The one atomic writer: a file is either absent, its old self, or complete.

Every artifact and every cached fold goes through :func:`atomic_write`: the content goes to a
temporary sibling, is flushed to disk (``fsync``), and is moved into place with ``os.replace``;
then the directory entry is flushed too. A reader, a racing writer or a killed process never
sees half a file, and a machine that loses power keeps either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # some file systems do not open directories; the data itself was synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], object], *, mode: int = 0o644) -> Path:
    """Write ``path`` by calling ``write(tmp)`` on a temporary sibling, then moving it in place.

    ``write`` receives the temporary path and writes the whole content there (for example
    ``frame.to_csv``, ``np.savez``, ``Path.write_text``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        _fsync_path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_path(path.parent, directory=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


#: ``np.load`` parses each ``.npy`` header with ``ast.literal_eval``. On CPython 3.11 (before the
#: fix of python/cpython#106905) two threads inside ``ast`` at once can leave its recursion
#: counter wrong, and every later ``ast`` call in the process raises "SystemError: AST
#: constructor recursion depth mismatch". Fold builds and search workers are threads that read
#: cached ``.npz`` files, so every ``.npz`` read in moqwk goes through this lock
#: (tests/test_atomic.py checks that no module calls ``np.load`` itself).
NPZ_READ_LOCK = threading.Lock()


def read_npz(path: Path, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The arrays ``names`` (default: all) of the ``.npz`` at ``path``, read without pickle and
    under :data:`NPZ_READ_LOCK`. Raises what ``np.load`` raises."""
    import numpy as np

    with NPZ_READ_LOCK, np.load(path, allow_pickle=False) as z:
        return {n: z[n] for n in (z.files if names is None else names)}
