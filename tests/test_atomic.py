"""The one atomic writer: a file is either absent, its old self, or complete."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from moqwk.base import artifacts
from moqwk.base.atomic import atomic_write, atomic_write_bytes, atomic_write_text


def half_then_raise(exc: BaseException):
    def write(tmp: Path) -> None:
        tmp.write_text('{"half": ', encoding="utf-8")  # a partial file exists at the temp path
        raise exc

    return write


@pytest.mark.parametrize("exc", [OSError("disk full"), ValueError("not serialisable"),
                                 KeyboardInterrupt()], ids=["OSError", "ValueError", "Ctrl-C"])
def test_a_write_that_raises_leaves_the_old_file_and_no_temporary(tmp_path: Path,
                                                                  exc: BaseException):
    path = tmp_path / "artifacts" / "result.json"
    atomic_write_text(path, '{"old": true}\n')
    with pytest.raises(type(exc)):
        atomic_write(path, half_then_raise(exc))
    assert path.read_text(encoding="utf-8") == '{"old": true}\n'
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_a_first_write_that_raises_leaves_nothing(tmp_path: Path):
    path = tmp_path / "new" / "result.json"
    with pytest.raises(OSError):
        atomic_write(path, half_then_raise(OSError("disk full")))
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_write_replaces_the_content_and_sets_the_mode(tmp_path: Path):
    path = tmp_path / "a" / "b" / "f.txt"
    atomic_write_text(path, "one")
    assert atomic_write_text(path, "two ünïcode") == path
    assert path.read_text(encoding="utf-8") == "two ünïcode"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    atomic_write(path, lambda p: p.write_text("x"), mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]


def test_artifacts_write_through_it(tmp_path: Path):
    """A result JSON cannot hold is refused, and the earlier file is kept whole."""
    path = tmp_path / "progress.json"
    artifacts.write_json(path, {"complete": 3})
    with pytest.raises(TypeError):
        artifacts.write_json(path, {"complete": object()})
    assert json.loads(path.read_text()) == {"complete": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.json"]


def test_every_npz_read_goes_through_the_lock():
    """np.load parses .npy headers with ast, which two threads must not do at once on CPython
    3.11 (python/cpython#106905: it then breaks every later ast call in the process). Fold
    builds and search workers read .npz files from threads, so moqwk reads them only through
    moqwk.base.atomic.read_npz, under one lock."""
    import ast as _ast

    from moqwk.base.atomic import NPZ_READ_LOCK

    root = Path(__file__).resolve().parents[1] / "moqwk"
    calls = []
    for f in root.rglob("*.py"):
        for node in _ast.walk(_ast.parse(f.read_text(encoding="utf-8"))):
            if (isinstance(node, _ast.Call) and isinstance(node.func, _ast.Attribute)
                    and node.func.attr == "load" and isinstance(node.func.value, _ast.Name)
                    and node.func.value.id in ("np", "numpy") and f.name != "atomic.py"):
                calls.append(f"{f.relative_to(root)}:{node.lineno}")
    assert calls == []
    assert not NPZ_READ_LOCK.locked()


def test_read_npz_reads_the_named_arrays(tmp_path: Path):
    import numpy as np

    from moqwk.base.atomic import read_npz

    path = tmp_path / "a.npz"
    np.savez(path, x=np.arange(3), y=np.ones(2))
    both = read_npz(path)
    assert set(both) == {"x", "y"} and both["x"].tolist() == [0, 1, 2]
    assert set(read_npz(path, ["y"])) == {"y"}
