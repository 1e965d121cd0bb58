"""Model versions and pointers on disk (`models/<N>/`, `models/champion`); never opens ONNX."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from app.contract import (
    CHALLENGER_POINTER,
    CHAMPION_POINTER,
    HISTORY_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    ModelManifest,
    is_version_name,
    parse_pointer,
)
from app.errors import InvalidModel, InvalidVersion, ModelNotFound

POINTERS = (CHAMPION_POINTER, CHALLENGER_POINTER)


@dataclass(frozen=True, slots=True)
class PointerStamp:
    """Identity of a pointer file's current content: changes whenever it is rewritten (os.replace)."""

    inode: int
    mtime_ns: int
    size: int


def parse_version(name: str | int) -> int:
    """A version number from user input; InvalidVersion for anything that is not a positive integer."""
    text = str(name)
    if isinstance(name, bool) or not is_version_name(text):
        raise InvalidVersion(
            f"invalid model version {text[:40]!r}: expected a positive integer",
            [{"field": "version", "message": "expected a positive integer such as 3"}],
        )
    return int(text)


def write_pointer_file(path: Path, versions: Sequence[int]) -> None:
    """Write a pointer file listing `versions`, one per line: temp file + fsync + rename, never a torn read."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(f"{v}\n" for v in versions))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_history(root: Path, name: str, listed: Sequence[int], action: str) -> None:
    """Record one pointer move as one line appended to `pointer-history.jsonl`."""
    entry: dict[str, object] = {
        "time": time.time(), "pointer": name, "version": listed[-1] if listed else None, "action": action
    }  # fmt: skip
    if len(listed) > 1:
        entry["versions"] = list(listed)
    with open(root / HISTORY_FILE, "a", encoding="utf-8") as history:
        history.write(json.dumps(entry) + "\n")


class ModelRepository:
    """Read-mostly view of one models directory; the only writer here is `set_pointer` (atomic)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def versions(self) -> list[int]:
        """Published versions (directories named by a positive integer holding a manifest), ascending."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(
            int(e.name)
            for e in entries
            if is_version_name(e.name) and e.is_dir() and (Path(e.path) / MANIFEST_FILE).is_file()
        )

    def version_dir(self, version: int | str) -> Path:
        """Directory of an existing version; InvalidVersion for bad names, ModelNotFound if absent."""
        number = parse_version(version)
        path = self.root / str(number)
        if not (path / MANIFEST_FILE).is_file():
            raise ModelNotFound(f"model version {number} does not exist in {self.root}")
        return path

    def manifest(self, version: int | str) -> ModelManifest:
        """The validated manifest of a version; InvalidModel if it does not match the contract."""
        path = self.version_dir(version) / MANIFEST_FILE
        try:
            return ModelManifest.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
                for err in exc.errors(include_url=False)
            ]
            raise InvalidModel(f"model version {version}: invalid {MANIFEST_FILE}", details) from None
        except OSError as exc:
            raise InvalidModel(f"model version {version}: cannot read {MANIFEST_FILE}: {exc}") from None

    def model_path(self, version: int | str) -> Path:
        """Path of a version's ONNX file (existence is checked by whoever loads it)."""
        return self.version_dir(version) / MODEL_FILE

    def pointer(self, name: str = CHAMPION_POINTER) -> int | None:
        """Version a pointer file names, or None when the pointer does not exist."""
        listed = self.pointer_list(name)
        if len(listed) > 1 and name == CHAMPION_POINTER:
            raise InvalidModel(f"pointer {name!r} lists {len(listed)} versions; the champion is one version")
        return listed[-1] if listed else None

    def pointer_list(self, name: str) -> tuple[int, ...]:
        """Every version a pointer file lists, oldest first (the challenger pointer may hold several)."""
        try:
            text = (self.root / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return ()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidModel(f"cannot read pointer {name!r}: {exc}") from None
        try:
            listed = parse_pointer(text)
        except ValueError as exc:
            raise InvalidModel(f"pointer {name!r} {exc}") from None
        if not listed and name == CHAMPION_POINTER:
            raise InvalidModel(f"pointer {name!r} is empty, not a version number")
        return listed

    def pointer_stamp(self, name: str = CHAMPION_POINTER) -> PointerStamp | None:
        """Cheap change detector for a pointer (one stat call); None when absent."""
        try:
            st = os.stat(self.root / name)
        except FileNotFoundError:
            return None
        return PointerStamp(st.st_ino, st.st_mtime_ns, st.st_size)

    def set_pointer(self, version: int, name: str = CHAMPION_POINTER, action: str = "reload") -> None:
        """Point `name` at an existing version atomically (temp file, then os.replace) and record the move."""
        if name not in POINTERS:
            raise ValueError(f"unknown pointer {name!r}")
        self.version_dir(version)
        write_pointer_file(self.root / name, (version,))
        append_history(self.root, name, (version,), action)

    def target(self) -> int | None:
        """The version to serve: the champion pointer, else the latest published version, else None."""
        champion = self.pointer(CHAMPION_POINTER)
        if champion is not None:
            return champion
        versions = self.versions()
        return versions[-1] if versions else None
