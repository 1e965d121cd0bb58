"""Write model versions atomically and move the champion/challenger pointers (promote, rollback)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from app.contract import (
    CHAMPION_POINTER,
    HISTORY_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    REPORT_DIR,
    ModelManifest,
    is_version_name,
    parse_pointer,
)
from app.repository import append_history, write_pointer_file

LOCK_FILE = ".publish.lock"


class PublishError(RuntimeError):
    """A version could not be published or a pointer could not be moved; nothing was changed."""


@contextlib.contextmanager
def publish_lock(models_dir: Path) -> Iterator[None]:
    """Exclusive lock over the models directory, so two trainers never take the same version number."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def versions(models_dir: Path) -> list[int]:
    """Published versions, ascending (temp and hidden directories are ignored)."""
    if not models_dir.is_dir():
        return []
    found = [int(p.name) for p in models_dir.iterdir() if p.is_dir() and is_version_name(p.name)]
    return sorted(found)


def read_pointer(models_dir: Path, name: str = CHAMPION_POINTER) -> int | None:
    """The version a pointer file names (the newest one it lists), or None when it is absent."""
    listed = read_pointer_list(models_dir, name)
    if len(listed) > 1 and name == CHAMPION_POINTER:
        raise PublishError(f"{models_dir / name}: lists {len(listed)} versions; the champion is one version")
    return listed[-1] if listed else None


def read_pointer_list(models_dir: Path, name: str) -> tuple[int, ...]:
    """Every version a pointer file lists, oldest first (the challenger pointer may hold several)."""
    path = models_dir / name
    if not path.is_file():
        return ()
    try:
        return parse_pointer(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        raise PublishError(f"{path}: pointer {exc}") from None


def write_pointer(models_dir: Path, version: int, name: str = CHAMPION_POINTER, action: str = "promote") -> None:
    """Point `name` at an existing version: temp file + fsync + rename, so readers never see a torn write."""
    write_pointer_list(models_dir, (version,), name, action)


def write_pointer_list(models_dir: Path, listed: Sequence[int], name: str, action: str) -> None:
    """Rewrite `name` to list `listed` (existing versions; empty removes the file), atomically, with history."""
    missing = [v for v in listed if v not in versions(models_dir)]
    if missing:
        raise PublishError(f"{models_dir}: version {missing[0]} does not exist")
    if listed:
        write_pointer_file(models_dir / name, listed)
    else:
        clear_pointer(models_dir, name)
    append_history(models_dir, name, listed, action)


def clear_pointer(models_dir: Path, name: str) -> None:
    """Remove an optional pointer (e.g. the challenger); absent is fine."""
    with contextlib.suppress(FileNotFoundError):
        (models_dir / name).unlink()


def rollback(models_dir: Path, name: str = CHAMPION_POINTER) -> int:
    """Move the pointer back to the version it named before the current one; return that version."""
    current = read_pointer(models_dir, name)
    history_path = models_dir / HISTORY_FILE
    lines = history_path.read_text().splitlines() if history_path.is_file() else []
    earlier = [json.loads(line)["version"] for line in lines if json.loads(line)["pointer"] == name]
    earlier = [v for v in earlier if v is not None]
    # Walk back past every entry equal to the current version to the previous distinct one.
    while earlier and earlier[-1] == current:
        earlier.pop()
    previous = next((v for v in reversed(earlier) if v in versions(models_dir)), None)
    if previous is None:
        raise PublishError(f"{models_dir}: no earlier {name} version to roll back to")
    write_pointer(models_dir, previous, name, action="rollback")
    return previous


def publish(
    models_dir: Path,
    *,
    manifest: ModelManifest,
    model_bytes: bytes,
    reference: pd.DataFrame,
    write_report: Callable[[Path, ModelManifest], None],
    promote: bool,
) -> ModelManifest:
    """Write `models/<next>/` via a temp dir + rename; the first version (or `promote`) becomes champion."""
    with publish_lock(models_dir):
        existing = versions(models_dir)
        version = (existing[-1] + 1) if existing else 1
        final = manifest.model_copy(update={"version": version})
        staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".staging-{version}-"))
        try:
            (staging / MODEL_FILE).write_bytes(model_bytes)
            reference.to_parquet(staging / REFERENCE_FILE, index=False)
            (staging / REPORT_DIR).mkdir()
            write_report(staging / REPORT_DIR, final)
            # Re-validate what is written: the reader uses exactly this schema.
            text = final.model_dump_json(indent=2)
            ModelManifest.model_validate_json(text)
            (staging / MANIFEST_FILE).write_text(text + "\n")
            os.chmod(staging, 0o755)
            os.rename(staging, models_dir / str(version))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if promote or read_pointer(models_dir) is None:
            write_pointer(models_dir, version, CHAMPION_POINTER, action="publish")
    return final
