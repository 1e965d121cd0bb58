"""Pointer files of a models directory (`champion`, `challenger`): read one, stamp it, replace it atomically.

Only `app/repository.py` uses these; it owns what the pointers mean and records their moves. A pointer file is
readable by everyone, like every version directory: written with mkstemp's 0600, a promotion made by another
user (e.g. an operator's `commitrisk models promote` as root on the service's volume) would be invisible to the
service. Its write bits follow the umask (0644 or 0664).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.contract import parse_pointer
from app.errors import InvalidModel, RepositoryError


@dataclass(frozen=True, slots=True)
class PointerStamp:
    """Identity of a pointer file's current content: changes whenever it is rewritten (os.replace)."""

    inode: int
    mtime_ns: int
    size: int


def read_pointer(path: Path) -> tuple[int, ...] | None:
    """The versions a pointer file lists, oldest first; None when it does not exist.

    InvalidModel when its content is not a pointer; RepositoryError when the storage refuses it (permissions, I/O).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise InvalidModel(f"{path}: cannot read pointer: {exc}") from None
    except OSError as exc:
        raise RepositoryError(f"{path}: cannot read pointer: {exc.strerror or exc}") from None
    try:
        return parse_pointer(text)
    except ValueError as exc:
        raise InvalidModel(f"{path}: pointer {exc}") from None


def stamp(path: Path) -> PointerStamp | None:
    """Cheap change detector (one stat call); None when absent, RepositoryError when the storage refuses it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RepositoryError(f"{path}: cannot read pointer: {exc.strerror or exc}") from None
    return PointerStamp(st.st_ino, st.st_mtime_ns, st.st_size)


def write_pointer(path: Path, versions: Sequence[int]) -> None:
    """Make `path` list `versions`: temp file + fsync + rename, so a reader sees the old or the new file, never a
    mix; readable by everyone. OSError when the directory refuses it."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies: 0644 or 0664 (or 0600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), (os.fstat(fh.fileno()).st_mode & 0o777) | 0o444)  # …and never below 0444
            fh.write("".join(f"{v}\n" for v in versions))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
