"""Build a model version's contents (model, manifest, drift reference, report) and publish it via the repository.

Numbering, the staging directory, the atomic rename and the champion pointer are `app.repository`'s job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from app.contract import MANIFEST_FILE, MODEL_FILE, REFERENCE_FILE, REPORT_DIR, ModelManifest
from app.errors import CommitRiskError
from app.repository import ModelRepository


class PublishError(RuntimeError):
    """A version could not be published; nothing was changed (the message names the file)."""


def write_version(
    directory: Path,
    manifest: ModelManifest,
    model_bytes: bytes,
    reference: pd.DataFrame,
    write_report: Callable[[Path, ModelManifest], None],
) -> None:
    """Fill an empty version directory; the manifest comes last, so a version without one is incomplete."""
    (directory / MODEL_FILE).write_bytes(model_bytes)
    reference.to_parquet(directory / REFERENCE_FILE, index=False)
    (directory / REPORT_DIR).mkdir()
    write_report(directory / REPORT_DIR, manifest)
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")


def publish(
    models_dir: Path,
    *,
    manifest: ModelManifest,
    model_bytes: bytes,
    reference: pd.DataFrame,
    write_report: Callable[[Path, ModelManifest], None],
    promote: bool,
) -> ModelManifest:
    """Publish `models/<next>/` (its number set in the manifest); the first version (or `promote`) is champion."""

    def build(directory: Path, version: int) -> ModelManifest:
        final = manifest.model_copy(update={"version": version})
        write_version(directory, final, model_bytes, reference, write_report)
        return final

    try:
        return ModelRepository(models_dir).publish(build, promote=promote)
    except CommitRiskError as exc:
        raise PublishError(exc.message) from None


def is_champion(models_dir: Path, version: int) -> bool:
    """Whether the champion pointer names `version`; PublishError when the pointer cannot be read."""
    try:
        return ModelRepository(models_dir).pointer() == version
    except CommitRiskError as exc:
        raise PublishError(exc.message) from None
