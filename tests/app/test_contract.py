"""The manifest schema: valid manifests round-trip, invalid ones are refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.contract import FEATURES, MANIFEST_FILE, ModelManifest, RiskBands, is_version_name, parse_pointer


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("1", True),
        ("42", True),
        ("0", False),
        ("01", False),
        ("../x", False),
        ("1/..", False),
        ("", False),
        ("champion", False),
        ("1e3", False),
    ],
)
def test_version_names(name: str, ok: bool) -> None:
    assert is_version_name(name) is ok


def test_pointer_files_list_versions_one_per_line() -> None:
    assert parse_pointer("3\n") == (3,)
    assert parse_pointer(" 2 \n\n5\n") == (2, 5)
    assert parse_pointer("") == ()
    with pytest.raises(ValueError, match=r"'\.\./x'"):
        parse_pointer("2\n../x\n")


def test_bands() -> None:
    bands = RiskBands(medium=0.2, high=0.5, rule="test")
    assert [bands.band(p) for p in (0.0, 0.19, 0.2, 0.49, 0.5, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    with pytest.raises(ValidationError, match="must not exceed"):
        RiskBands(medium=0.6, high=0.5, rule="bad")


def test_published_manifest_round_trips(trained_models: Path) -> None:
    raw = (trained_models / "1" / MANIFEST_FILE).read_text()
    manifest = ModelManifest.model_validate_json(raw)
    assert manifest.feature_names == FEATURES
    assert ModelManifest.model_validate_json(manifest.model_dump_json()) == manifest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(onnx_sha256="xyz"), "onnx_sha256"),
        (lambda m: m.update(threshold=1.5), "threshold"),
        (lambda m: m["features"].append(m["features"][0]), "unique"),
        (lambda m: m["self_test"]["rows"][0].pop(), "self_test rows must have 15"),
        (lambda m: m.update(surprise=1), "surprise"),
        (lambda m: m.update(schema_version=2), "schema_version"),
    ],
)
def test_invalid_manifests_are_refused(trained_models: Path, change: object, message: str) -> None:
    payload = json.loads((trained_models / "1" / MANIFEST_FILE).read_text())
    change(payload)  # type: ignore[operator]
    with pytest.raises(ValidationError, match=message):
        ModelManifest.model_validate(payload)


def test_manifests_without_per_repository_evidence_or_explanations_still_load(trained_models: Path) -> None:
    raw = json.loads((trained_models / "1" / MANIFEST_FILE).read_text())
    assert raw["protocol"]["forward"]["folds"] and raw["explanation"]["terms"]
    # What versions written before the protocol choice hold: no evidence, no terms, validation-scored candidates.
    for key in ("protocol", "explanation"):
        raw.pop(key)
    raw["candidates"] = [{"name": "ensemble", "validation_roc_auc": 0.7, "cv_roc_auc": None, "params": {},
                          "fit_seconds": 1.0}]  # fmt: skip
    old = ModelManifest.model_validate(raw)
    assert old.protocol is None and old.explanation is None and old.candidates[0].verdict is None
