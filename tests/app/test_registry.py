from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.errors import InvalidModel, ModelNotFound, ModelNotReady
from app.metrics import ServiceMetrics
from app.registry import ModelRegistry
from app.repository import ModelRepository


def registry_for(models_dir: Path) -> tuple[ModelRegistry, ServiceMetrics]:
    metrics = ServiceMetrics()
    return ModelRegistry(ModelRepository(models_dir), metrics), metrics


def reloads(metrics: ServiceMetrics, result: str) -> float:
    value = metrics.registry.get_sample_value("commitrisk_model_reloads_total", {"result": result})
    return value or 0.0


def test_sync_loads_the_champion_and_follows_the_pointer(models_dir: Path) -> None:
    registry, metrics = registry_for(models_dir)
    with pytest.raises(ModelNotReady):
        registry.require()
    assert registry.sync() is True
    assert registry.require().champion.version == 1
    assert registry.sync() is False  # unchanged pointer: a stat, nothing else
    ModelRepository(models_dir).set_pointer(2)
    assert registry.sync() is True
    assert registry.require().champion.version == 2
    assert reloads(metrics, "success") == 2
    info = {"version": "2", "model_type": "logreg"}
    assert metrics.registry.get_sample_value("commitrisk_model_info", info) == 1


def test_reload_version_moves_the_pointer(models_dir: Path) -> None:
    registry, _ = registry_for(models_dir)
    registry.sync()
    registry.reload(2)
    assert (models_dir / "champion").read_text().strip() == "2"
    assert registry.require().champion.version == 2
    with pytest.raises(ModelNotFound):
        registry.reload(9)
    assert registry.require().champion.version == 2
    # The move is in the audit trail `models rollback` walks; the refused one is not.
    history = [json.loads(line) for line in (models_dir / "pointer-history.jsonl").read_text().splitlines()]
    assert [(h["pointer"], h["version"], h["action"]) for h in history] == [("champion", 2, "reload")]


def test_bad_model_keeps_the_old_one_serving(models_dir: Path) -> None:
    registry, metrics = registry_for(models_dir)
    registry.sync()
    onnx = models_dir / "2" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-100])  # truncated → sha256 mismatch
    with pytest.raises(InvalidModel):
        registry.reload(2)
    assert registry.require().champion.version == 1
    assert (models_dir / "champion").read_text().strip() == "1"  # pointer untouched on failure
    assert reloads(metrics, "failure") == 1


def test_broken_pointer_target_is_tried_once_per_change(models_dir: Path) -> None:
    registry, metrics = registry_for(models_dir)
    registry.sync()
    manifest = models_dir / "2" / "manifest.json"
    raw = json.loads(manifest.read_text())
    raw["features"] = raw["features"][::-1]  # same names, wrong order: a feature mismatch
    manifest.write_text(json.dumps(raw))
    ModelRepository(models_dir).set_pointer(2)
    assert registry.sync() is False
    assert registry.sync() is False
    assert reloads(metrics, "failure") == 1
    assert registry.require().champion.version == 1


def test_empty_directory_is_not_ready_with_a_reason(tmp_path: Path) -> None:
    registry, _ = registry_for(tmp_path)
    assert registry.sync() is False
    with pytest.raises(ModelNotReady, match="no model version is published"):
        registry.require()
    assert registry.pid == os.getpid()


def test_an_unreadable_models_directory_keeps_the_loaded_model_serving(models_dir: Path, tmp_path: Path) -> None:
    registry, _ = registry_for(models_dir)
    assert registry.sync() is True
    models_dir.rename(tmp_path / "away")
    models_dir.symlink_to(models_dir)  # ELOOP: an OSError that is not "absent", as a permission error would be
    assert registry.sync() is False and registry.sync_shadow() is False  # no exception escapes the poller
    assert registry.require().champion.version == 1
    models_dir.unlink()
    (tmp_path / "away").rename(models_dir)
    ModelRepository(models_dir).set_pointer(2)
    assert registry.sync() is True and registry.require().champion.version == 2  # recovers by itself
