"""The one owner of `models/`: published versions, the champion/challenger pointers, their history, publishing.

A version is a directory named by a positive integer that holds a manifest; nothing else counts, for the
service and the trainer alike. Every write is atomic (temp + rename) so readers never see a torn pointer or a
partial version. Never opens ONNX. Raises `app.errors` domain errors; callers word them for their audience.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.contract import (
    CHALLENGER_POINTER,
    CHAMPION_POINTER,
    HISTORY_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    ModelManifest,
    is_version_name,
)
from app.errors import InvalidModel, InvalidVersion, ModelNotFound, RepositoryError
from app.locks import file_lock
from app.pointers import PointerStamp, read_pointer, stamp, write_pointer

POINTERS = (CHAMPION_POINTER, CHALLENGER_POINTER)
MAX_VERSION = 10**9  # version names have at most 9 digits (app.contract)
LOCK_FILE = ".publish.lock"
STAGING_PREFIX = ".staging-"

T = TypeVar("T")


class PointerMove(BaseModel):
    """One line of `pointer-history.jsonl`: which pointer moved, to which versions, and why."""

    time: float
    pointer: str
    version: int | None  # the newest listed version; None when the pointer was cleared
    action: str
    versions: list[int] | None = None  # written only when the pointer lists several


def parse_version(name: str | int) -> int:
    """A version number from user input; InvalidVersion for anything that is not a positive integer."""
    if isinstance(name, int) and not isinstance(name, bool):
        text = str(name) if 0 < name < MAX_VERSION else "out of range"  # str() of a 5,000-digit int raises
    else:
        text = name if isinstance(name, str) else repr(name)
    if not is_version_name(text):
        raise InvalidVersion(
            f"invalid model version {text[:40]!r}: expected a positive integer",
            [{"field": "version", "message": "expected a positive integer such as 3"}],
        )
    return int(text)


class ModelRepository:
    """One models directory: read versions and pointers, move pointers (recorded), publish new versions."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def versions(self) -> list[int]:
        """Published versions (directories named by a positive integer holding a manifest), ascending."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RepositoryError(f"{self.root}: cannot list the models directory: {exc.strerror or exc}") from None
        return sorted(int(e.name) for e in entries if is_version_name(e.name) and _holds_manifest(e))

    def version_dir(self, version: int | str) -> Path:
        """Directory of an existing version; InvalidVersion for bad names, ModelNotFound if absent."""
        number = parse_version(version)
        path = self.root / str(number)
        try:
            present = (path / MANIFEST_FILE).is_file()
        except OSError as exc:  # is_file() answers False only for "not there"; a permission error is raised
            raise RepositoryError(f"{path}: cannot read version {number}: {exc.strerror or exc}") from None
        if not present:
            raise ModelNotFound(f"{self.root}: version {number} does not exist")
        return path

    def manifest(self, version: int | str) -> ModelManifest:
        """The validated manifest of a version; InvalidModel if it does not match the contract."""
        return _read_manifest(self.version_dir(version) / MANIFEST_FILE)

    def model_path(self, version: int | str) -> Path:
        """Path of a version's ONNX file (existence is checked by whoever loads it)."""
        return self.version_dir(version) / MODEL_FILE

    def pointer(self, name: str = CHAMPION_POINTER) -> int | None:
        """Version a pointer file names (the newest it lists), or None when the pointer does not exist."""
        listed = self.pointer_list(name)
        if len(listed) > 1 and name == CHAMPION_POINTER:
            raise InvalidModel(f"{self.root / name}: lists {len(listed)} versions; the champion is one version")
        return listed[-1] if listed else None

    def pointer_list(self, name: str) -> tuple[int, ...]:
        """Every version a pointer file lists, oldest first (the challenger pointer may hold several)."""
        path = self.root / name
        listed = read_pointer(path)
        if listed is None:
            return ()
        if not listed and name == CHAMPION_POINTER:
            raise InvalidModel(f"{path}: pointer is empty, not a version number")
        return listed

    def pointer_stamp(self, name: str = CHAMPION_POINTER) -> PointerStamp | None:
        """Cheap change detector for a pointer (one stat call); None when absent."""
        return stamp(self.root / name)

    def set_pointer(self, version: int, name: str = CHAMPION_POINTER, action: str = "reload") -> None:
        """Point `name` at an existing version atomically (temp file, then os.replace) and record the move."""
        self.set_pointer_list((version,), name, action)

    def set_pointer_list(self, versions: Sequence[int], name: str, action: str) -> None:
        """Make `name` list `versions` (each published; empty removes the file), atomically, and record it."""
        if name not in POINTERS:
            raise ValueError(f"unknown pointer {name!r}")
        if name == CHAMPION_POINTER and len(versions) != 1:
            raise ValueError(f"the champion is one version, not {len(versions)}")
        for version in versions:
            self.version_dir(version)
        path = self.root / name
        try:
            if versions:
                write_pointer(path, versions)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise RepositoryError(f"{path}: cannot move the pointer: {exc.strerror or exc}") from None
        try:
            self._record(name, versions, action)
        except OSError as exc:
            raise RepositoryError(f"{self.root / HISTORY_FILE}: pointer moved, not recorded: {exc}") from None

    def clear_pointer(self, name: str, action: str = "clear") -> None:
        """Remove an optional pointer (the challenger); absent is fine. The move is recorded."""
        self.set_pointer_list((), name, action)

    def target(self) -> int | None:
        """The version to serve: the champion pointer, else the latest published version, else None."""
        champion = self.pointer(CHAMPION_POINTER)
        if champion is not None:
            return champion
        versions = self.versions()
        return versions[-1] if versions else None

    def history(self, name: str | None = None) -> list[PointerMove]:
        """Recorded moves of pointer `name` (every pointer when None), oldest first; InvalidModel if unreadable."""
        path = self.root / HISTORY_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except UnicodeDecodeError as exc:
            raise InvalidModel(f"{path}: cannot read the pointer history: {exc}") from None
        except OSError as exc:
            raise RepositoryError(f"{path}: cannot read the pointer history: {exc.strerror or exc}") from None
        moves = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                move = PointerMove.model_validate_json(line)
            except ValidationError:
                raise InvalidModel(f"{path}: line {number} is not a pointer move") from None
            if name is None or move.pointer == name:
                moves.append(move)
        return moves

    def rollback(self, name: str = CHAMPION_POINTER) -> int:
        """Move `name` back to the version it named before the current one (walking the history); return it."""
        current = self.pointer(name)
        published = set(self.versions())
        # Newest first: the latest version the pointer named that differs from the current one and still exists.
        earlier = (move.version for move in reversed(self.history(name)))
        previous = next((v for v in earlier if v is not None and v != current and v in published), None)
        if previous is None:
            raise ModelNotFound(f"{self.root / HISTORY_FILE}: no earlier {name} version to roll back to")
        self.set_pointer(previous, name, action="rollback")
        return previous

    def _record(self, name: str, listed: Sequence[int], action: str) -> None:
        entry: dict[str, object] = {
            "time": time.time(), "pointer": name, "version": listed[-1] if listed else None, "action": action
        }  # fmt: skip
        if len(listed) > 1:
            entry["versions"] = list(listed)
        with open(self.root / HISTORY_FILE, "a", encoding="utf-8") as history:
            history.write(json.dumps(entry) + "\n")

    @contextlib.contextmanager
    def publish_lock(self) -> Iterator[None]:
        """Exclusive lock over publishing in this directory (waits), so two publishers never share a number."""
        with contextlib.ExitStack() as stack:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                stack.enter_context(file_lock(self.root / LOCK_FILE))
            except OSError as exc:
                raise RepositoryError(f"{self.root}: cannot lock for publishing: {exc.strerror or exc}") from None
            yield

    def publish(self, build: Callable[[Path, int], T], promote: bool = False) -> T:
        """Publish the next version: `build(directory, number)` fills a hidden staging directory, renamed into
        place once complete; with `promote`, or while there is no champion, the new version becomes champion."""
        with self.publish_lock():
            champion = None if promote else self.pointer(CHAMPION_POINTER)  # a broken pointer stops us before writing
            number = self._next_number()
            try:
                staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f"{STAGING_PREFIX}{number}-"))
            except OSError as exc:
                raise RepositoryError(f"{self.root}: cannot stage version {number}: {exc.strerror or exc}") from None
            try:
                result = build(staging, number)
                _check_staged(staging, number)
                os.chmod(staging, 0o755)  # mkdtemp makes it private; a version is read by the service's user
                os.rename(staging, self.root / str(number))
            except BaseException as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise RepositoryError(f"{self.root / str(number)}: not published: {exc}") from None
                raise
            if champion is None:
                self.set_pointer(number, CHAMPION_POINTER, action="publish")
        return result

    def _next_number(self) -> int:
        entries = list(os.scandir(self.root))
        # Under the lock no other publisher is staging: what is left was abandoned by one that was killed.
        for entry in entries:
            if entry.name.startswith(STAGING_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)
        # Every numbered entry takes its number, published or not: renaming onto a leftover `7/` would fail or,
        # when it is empty, silently replace it.
        return max((int(e.name) for e in entries if is_version_name(e.name)), default=0) + 1


def _read_manifest(path: Path) -> ModelManifest:
    try:
        return ModelManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise InvalidModel(f"{path}: invalid manifest (see details)", details) from None
    except FileNotFoundError:
        raise InvalidModel(f"{path}: cannot read the manifest: it does not exist") from None
    except OSError as exc:  # permissions, I/O: the storage's fault, not the version's
        raise RepositoryError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from None


def _check_staged(staging: Path, number: int) -> None:
    """A staged version is complete: a valid manifest numbered `number` and a model file."""
    manifest = _read_manifest(staging / MANIFEST_FILE)
    if manifest.version != number:
        raise InvalidModel(f"{staging / MANIFEST_FILE}: version {manifest.version}, expected {number}")
    if not (staging / MODEL_FILE).is_file():
        raise InvalidModel(f"{staging}: no {MODEL_FILE}")


def _holds_manifest(entry: os.DirEntry[str]) -> bool:
    """A numbered directory holding a manifest; one whose contents cannot be checked counts (loading it says why)."""
    try:
        return entry.is_dir() and (Path(entry.path) / MANIFEST_FILE).is_file()
    except OSError:
        return True
