"""The issue-18 figures of a serving run: medians of rounds, ratios of runs measured back to back, the targets table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

HAND_WRITTEN = "hand-written Starlette + orjson"


@dataclass
class Result:
    server: str
    workers: int
    scenario: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    baseline_rps: float
    rss_mb: float
    log_dropped: float
    server_cpu_us: float  # server CPU time per answered request
    cpu_split: str  # server / wrk CPU as shares of the machine's cores over the run
    spread: str  # wrk's connections per worker (several workers: all on one leaves the other idle)


def medians(results: list[Result]) -> list[Result]:
    """One row per (server, workers, scenario): the median of its rounds by req/s."""
    groups: dict[tuple[str, int, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.server, r.workers, r.scenario), []).append(r)
    chosen = []
    for rows in groups.values():
        ranked = sorted(rows, key=lambda r: r.rps)
        chosen.append(ranked[(len(ranked) - 1) // 2])
    return chosen


def round_ratios(
    results: list[Result],
    scenario: str,
    base: tuple[str, int, str] = (HAND_WRITTEN, 1, "/predict explain=false"),
    workers: int = 1,
    server: str = "commitrisk",
) -> list[float]:
    """`server`'s req/s of `scenario` with `workers` over the `base` run (server, workers, scenario) measured
    last before it, run by run (`results` in the order measured: `round_steps` puts the base right before; pass
    them reversed for a base measured right after)."""
    ratios = []
    latest: float | None = None
    for r in results:
        if (r.server, r.workers, r.scenario) == base:
            latest = r.rps
        elif (r.server, r.workers, r.scenario) == (server, workers, scenario) and latest:
            ratios.append(r.rps / latest)
    return ratios


def targets(rows: list[Result], results: list[Result] | None = None) -> list[str]:
    """The issue-18 table: ratios to the hand-written handler (met by the median of the per-round ratios when
    `results` holds the rounds), batch p50, 2 workers vs 1 (met / not met)."""
    find = {(r.server, r.workers, r.scenario): r for r in rows}
    hand = find.get((HAND_WRITTEN, 1, "/predict explain=false"))
    lines = ["| target | measured | met |", "|---|---|---|"]

    def row(name: str, value: str, met: bool) -> None:
        lines.append(f"| {name} | {value} | {'met' if met else 'not met'} |")

    plain = find.get(("commitrisk", 1, "/predict explain=false"))
    if hand is not None and plain is not None:
        for scenario, goal in (("/predict explain=false", 0.7), ("/predict (explained)", 0.55),
                               ("/v2/.../infer 1 row", 0.6)):  # fmt: skip
            mine = find[("commitrisk", 1, scenario)]
            ratio = mine.rps / hand.rps
            text = f"{ratio:.2f}× ({mine.rps:,.0f} / {hand.rps:,.0f} req/s)"
            rounds = round_ratios(results or [], scenario)
            if rounds:
                ratio = statistics.median(rounds)
                text += f"; per round {_per_round(rounds)}"
            row(f"`{scenario}` ≥ {goal}× hand-written", text, ratio >= goal)
        row("`/predict explain=false` p99 ≤ 10 ms",
            f"{plain.p99_ms:.2f} ms (hand-written {hand.p99_ms:.2f} ms: {plain.p99_ms / hand.p99_ms:.2f}×)",
            plain.p99_ms <= 10)  # fmt: skip
        fastapi = find.get(("minimal FastAPI", 1, "/predict explain=false"))
        if fastapi is not None:
            lines.append(f"| (minimal FastAPI / hand-written) | {fastapi.rps / hand.rps:.2f}× | - |")
    batch = find.get(("commitrisk", 1, "/predict/batch 1000"))
    if batch is not None:
        row("1,000-commit batch p50 ≤ 25 ms, log on", f"{batch.p50_ms:.1f} ms", batch.p50_ms <= 25)
    two = find.get(("commitrisk", 2, "/predict explain=false"))
    if two is not None and plain is not None:
        ratio = two.rps / plain.rps
        text = f"{ratio:.2f}× (CPU % server / wrk: {two.cpu_split} vs {plain.cpu_split})"
        rounds = round_ratios(results or [], "/predict explain=false", ("commitrisk", 1, "/predict explain=false"), 2)
        if rounds:
            ratio = statistics.median(rounds)
            text += f"; per round {_per_round(rounds)}"
        # The hand-written handler's two workers run right before its one: pair them through the reversed runs.
        hand_rounds = round_ratios((results or [])[::-1], "/predict explain=false", workers=2, server=HAND_WRITTEN)
        if hand_rounds:
            text += f"; the hand-written handler on this host: {_per_round(hand_rounds[::-1])}"
        row("2 workers ≥ 1.6× 1 worker (`explain=false`)", text, ratio >= 1.6)
    return lines


def _per_round(rounds: list[float]) -> str:
    """`a× / b× / c×, median m×` of the per-round ratios, in the order measured."""
    return f"{' / '.join(f'{x:.2f}×' for x in rounds)}, median {statistics.median(rounds):.2f}×"
