"""bench/ratios.py: each ratio divides a run by the base run measured right next to it."""

from __future__ import annotations

from bench.ratios import HAND_WRITTEN, Result, round_ratios

PLAIN = "/predict explain=false"


def _run(server: str, workers: int, scenario: str, rps: float) -> Result:
    return Result(server, workers, scenario, 16, rps, 1.0, 2.0, 0, 1.0, 1.0, 0.0, 1.0, "50 / 5", "-")


def test_a_ratio_divides_by_the_base_run_measured_last_before_it() -> None:
    results = [
        _run(HAND_WRITTEN, 1, PLAIN, 100.0),
        _run("commitrisk", 1, PLAIN, 70.0),
        _run("commitrisk", 2, PLAIN, 112.0),
        _run(HAND_WRITTEN, 1, PLAIN, 50.0),  # the host slowed down: the next pair is judged on its own
        _run("commitrisk", 1, PLAIN, 40.0),
        _run("commitrisk", 2, PLAIN, 60.0),
    ]
    assert round_ratios(results, PLAIN) == [0.7, 0.8]
    assert round_ratios(results, PLAIN, ("commitrisk", 1, PLAIN), workers=2) == [1.6, 1.5]


def test_a_base_measured_right_after_pairs_through_the_reversed_runs() -> None:
    results = [
        _run(HAND_WRITTEN, 2, PLAIN, 170.0),
        _run(HAND_WRITTEN, 1, PLAIN, 100.0),
        _run("commitrisk", 1, PLAIN, 70.0),
        _run(HAND_WRITTEN, 2, PLAIN, 90.0),
        _run(HAND_WRITTEN, 1, PLAIN, 50.0),
    ]
    assert round_ratios(results[::-1], PLAIN, workers=2, server=HAND_WRITTEN) == [1.8, 1.7]
    assert round_ratios(results, PLAIN) == [0.7]


def test_a_run_without_a_base_before_it_gives_no_ratio() -> None:
    results = [_run("commitrisk", 1, PLAIN, 70.0), _run(HAND_WRITTEN, 1, PLAIN, 100.0)]
    assert round_ratios(results, PLAIN) == []
