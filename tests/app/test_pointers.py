from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.errors import InvalidModel, RepositoryError
from app.pointers import read_pointer, stamp, write_pointer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o644)])
def test_a_pointer_is_readable_by_everyone_and_writable_per_umask(tmp_path: Path, umask: int, expected: int) -> None:
    previous = os.umask(umask)
    try:
        write_pointer(tmp_path / "champion", [3])
    finally:
        os.umask(previous)
    assert mode(tmp_path / "champion") == expected  # never mkstemp's 0600
    assert read_pointer(tmp_path / "champion") == (3,)
    assert [p.name for p in tmp_path.iterdir()] == ["champion"]  # no temp file left behind


def test_reading_distinguishes_absent_garbage_and_storage_failures(tmp_path: Path) -> None:
    assert read_pointer(tmp_path / "champion") is None and stamp(tmp_path / "champion") is None
    (tmp_path / "challenger").write_text("1\n2\n")
    assert read_pointer(tmp_path / "challenger") == (1, 2)
    (tmp_path / "champion").write_bytes(b"\xff\n")
    with pytest.raises(InvalidModel, match="cannot read pointer"):
        read_pointer(tmp_path / "champion")
    (tmp_path / "champion").write_text("1\nlatest\n")
    with pytest.raises(InvalidModel, match="pointer holds 'latest'"):
        read_pointer(tmp_path / "champion")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # an OSError that is not "absent" (ELOOP), even for root
    with pytest.raises(RepositoryError, match="cannot read pointer"):
        read_pointer(tmp_path / "loop")
    with pytest.raises(RepositoryError, match="cannot read pointer"):
        stamp(tmp_path / "loop")


def test_a_rewrite_changes_the_stamp(tmp_path: Path) -> None:
    write_pointer(tmp_path / "champion", [1])
    before = stamp(tmp_path / "champion")
    write_pointer(tmp_path / "champion", [1])
    assert before is not None and stamp(tmp_path / "champion") != before  # a new inode every time
