"""bench/serve.py's pairing: every tracked ratio compares runs measured next to each other, and connections are
counted per worker from /proc."""

from __future__ import annotations

import os
import socket

from bench.serve import HAND_WRITTEN, Result, established, round_ratios, round_steps

PLAIN = "/predict explain=false"


def _run(server: str, workers: int, scenario: str, rps: float) -> Result:
    return Result(server, workers, scenario, 16, rps, 1.0, 2.0, 0, 1.0, 1.0, 0.0, 1.0, "50 / 5", "-")


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


def test_established_counts_the_connections_each_process_holds() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            # This process holds both ends; only the server side's local port is `port`.
            assert established({os.getpid()}, port) == [3]
        finally:
            for sock in clients + accepted:
                sock.close()
