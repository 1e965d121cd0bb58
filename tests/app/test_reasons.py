from __future__ import annotations

from app.contract import FEATURES
from app.reasons import PHRASES, format_number, rule_reason


def test_rules_speak_plainly() -> None:
    assert rule_reason(FEATURES.index("exp"), 0) == "the author's first commit"
    assert rule_reason(FEATURES.index("age"), 1.5) == "files changed in the last 2 days"
    assert rule_reason(FEATURES.index("age"), 0) is None
    assert rule_reason(FEATURES.index("la"), 0) is None
    assert format_number(1250) == "1,250" and format_number(0.5) == "0.5" and format_number(12.25) == "12.2"
    assert format_number(1.2e38) == "1.2e+38" and format_number(3.4028234663852886e38) == "3.4e+38"  # not 39 digits
    assert format_number(1e15) == "1e+15" and format_number(999_999_999_999_999) == "999,999,999,999,999"


def test_every_metric_has_a_phrase_around_its_value() -> None:
    assert all("{v}" in PHRASES[name] for name in FEATURES)
