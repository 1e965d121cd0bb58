"""The retrain policy refuses contradictory or out-of-range settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from training.retrain.policy import RetrainPolicy


def test_defaults_are_valid() -> None:
    policy = RetrainPolicy()
    assert policy.window == "dynamic" and policy.level == "search" and policy.deploy == "direct"


@pytest.mark.parametrize(
    "values",
    [
        {"window_days": 30, "window_rows": 100},
        {"window": "dynamic", "candidate_days": ()},
        {"window": "sliding"},
        {"level": "everything"},
        {"deploy": "canary"},
        {"min_delta": 2.0},
        {"holdout_fraction": 0.0},
        {"drift_threshold": -0.1},
        {"unknown": 1},
    ],
)
def test_bad_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetrainPolicy(**values)
