"""The synthetic-data spec: what `generate` needs to draw commits like the real ones, stored as JSON package data.

`training.synthetic.fit` fits it to real commit CSVs; the committed default lives in
`training/synthetic/defaults/jit_synthetic.json` (refit with `commitrisk fit-synthetic`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from app.contract import DataFile

DEFAULT_SPEC = "jit_synthetic.json"


class Logit(BaseModel):
    """P(y) = sigmoid(intercept + center + slope · (Σ coef[f] · log1p(f) − center)), slope 1 without drift.

    The intercept is re-centred so generated rows reproduce the real `rate`; drift flattens the slope
    around `center` (the mean linear term), which weakens the signal without moving the base rate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    intercept: float
    coef: dict[str, float]
    center: float
    rate: float


class SyntheticSpec(BaseModel):
    """Everything `generate` needs; fitted by `fit`, stored as package data."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    format_version: int = 1
    fitted_at: str
    refit_command: str
    sources: list[DataFile]  # the real CSVs fitted on (name, sha256 of the raw bytes, rows)
    rows: int
    quantile_probs: list[float]
    columns: list[str]
    quantiles: dict[str, list[float]]
    correlation: list[list[float]]
    buggy: Logit
    is_fix: Logit
    gap_seconds_quantiles: list[float]
    end_date: int
    max_span_days: float
    authors_per_repository: int
    top_author_share: float
    drift_shift: dict[str, float]
    slope_decay: float


def load_default() -> SyntheticSpec:
    """The spec shipped with the package (fitted on ../shared/data/commits)."""
    from importlib.resources import files

    return load_spec(Path(str(files("training.synthetic") / "defaults" / DEFAULT_SPEC)))


def load_spec(path: Path) -> SyntheticSpec:
    """Read a spec JSON written by `write_spec`."""
    return SyntheticSpec.model_validate_json(path.read_bytes())


def write_spec(spec: SyntheticSpec, path: Path) -> None:
    """Write a spec as deterministic JSON (sorted keys, number lists on one line)."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, indent=1)
    text = re.sub(r"\[[\d\s,.eE+-]*\]", lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
