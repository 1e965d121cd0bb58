"""bench/serve.py's round order: every tracked ratio's runs are measured next to each other."""

from __future__ import annotations

from bench.ratios import HAND_WRITTEN
from bench.serve import round_steps

PLAIN = "/predict explain=false"


def test_each_ratio_scenario_follows_a_hand_written_run_and_two_workers_follow_one() -> None:
    steps = round_steps([1, 2])
    for scenario in (PLAIN, "/predict (explained)", "/v2/.../infer 1 row"):
        at = steps.index(("commitrisk", 1, scenario))
        assert steps[at - 1] == (HAND_WRITTEN, 1, PLAIN)
    assert steps[steps.index(("commitrisk", 2, PLAIN)) - 1] == ("commitrisk", 1, PLAIN)
    measured = {(server, workers, scenario) for server, workers, scenario in steps}
    assert {scenario for server, workers, scenario in measured if (server, workers) == ("commitrisk", 2)} == {
        scenario for server, workers, scenario in measured if (server, workers) == ("commitrisk", 1)
    }


def test_the_hand_written_handler_scales_right_before_its_one_worker_run() -> None:
    steps = round_steps([1, 2])
    assert steps[steps.index((HAND_WRITTEN, 2, PLAIN)) + 1] == (HAND_WRITTEN, 1, PLAIN)
    assert [step for step in steps if step[:2] == (HAND_WRITTEN, 2)] == [(HAND_WRITTEN, 2, PLAIN)]


def test_one_worker_only_runs_no_two_worker_step() -> None:
    assert all(workers == 1 for _, workers, _ in round_steps([1]))
