"""Mining fidelity: `commitrisk mine` on the upstream repositories vs the published datasets, row by row.

    .venv/bin/python -m bench.fidelity [--work /tmp/commitrisk-fidelity] [--names HikariCP jedis]
                                      [--mined NAME=CSV ...] [--variants] [--no-append]

For each repository: `git clone --mirror ../shared/repos/NAME.bundle` (once), `commitrisk mine` with default
options, then against `../shared/data/commits/NAME.csv`: coverage (dataset rows the mine has), per metric the
share of common rows equal (exact: |Δ| ≤ 1e-9·max(1, |x|)) and within 5 %, and the labels (`buggy` and
`is_fix_commit`): agreement, precision, recall and Cohen's κ of the mined label against the dataset's, with
both label rates. `--variants` also mines with the other label options — `--szz plain`, and the dataset's own
fix commits given as an issue tracker's list (`--fix-shas`, `--fix-rule listed`) with each `--szz` rule — and
compares their labels, and whether each label source changes a model trained on it (`bench/label_effect.py`).
`--mined NAME=CSV` compares an existing CSV instead of mining (default options only).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.label_effect import label_effect  # noqa: E402
from bench.machine import publish, table  # noqa: E402

SHARED = ROOT.parent / "shared"
SIZE = ("ns", "nd", "nf", "entropy", "la", "ld", "ha", "hd", "lt")
HISTORY = ("ndev", "age", "nuc", "exp", "rexp", "sexp")
# The independent reference implementation's exact-agreement figures (issue 15), the history targets.
REFERENCE = {
    "HikariCP": {"ndev": 76.9, "age": 97.9, "nuc": 35.5, "rexp": 38.8, "sexp": 42.9},
    "jedis": {"ndev": 28.9, "age": 83.0, "nuc": 16.9, "rexp": 76.3, "sexp": 66.3},
}


def read(path: Path) -> dict[str, dict[str, str]]:
    """Rows of a dataset-format CSV by commit SHA."""
    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["commit_hash"]: row for row in csv.DictReader(handle)}


def equal(a: float, b: float) -> bool:
    """Exact up to float formatting."""
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def near(a: float, b: float) -> bool:
    """Within 5 % of the dataset's value (both 0 counts)."""
    return abs(a - b) <= 0.05 * abs(b) + 1e-9


@dataclass(frozen=True)
class Labels:
    """Agreement of a mined boolean label with the dataset's on the common rows."""

    agreement: float
    precision: float
    recall: float
    kappa: float
    mined_rate: float
    dataset_rate: float
    baseline: float  # agreement of labelling every row false


def compare_labels(pairs: list[tuple[bool, bool]]) -> Labels:
    """(mined, dataset) pairs → agreement, precision, recall, κ and the rates."""
    n = len(pairs) or 1
    tp = sum(m and d for m, d in pairs)
    fp = sum(m and not d for m, d in pairs)
    fn = sum(d and not m for m, d in pairs)
    agree = sum(m == d for m, d in pairs) / n
    pm, pd = (tp + fp) / n, (tp + fn) / n
    chance = pm * pd + (1 - pm) * (1 - pd)
    kappa = (agree - chance) / (1 - chance) if chance < 1 else 1.0
    return Labels(agree, tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0, kappa, pm, pd, 1 - pd)


@dataclass(frozen=True)
class Fidelity:
    """One repository's comparison."""

    name: str
    dataset_rows: int
    mined_rows: int
    common: int
    exact: dict[str, float]
    within5: dict[str, float]
    buggy: Labels
    fix: Labels
    buggy_at_dump: Labels  # `buggy` from the fixes authored no later than the dataset's newest commit


def compare(name: str, mined: dict[str, dict[str, str]], dataset: dict[str, dict[str, str]]) -> Fidelity:
    """Coverage, per-metric agreement and label agreement of `mined` against `dataset`."""
    common = [sha for sha in dataset if sha in mined]
    n = len(common) or 1
    exact: dict[str, float] = {}
    within5: dict[str, float] = {}
    for metric in (*SIZE, *HISTORY):
        pairs = [(float(mined[s][metric]), float(dataset[s][metric])) for s in common]
        exact[metric] = 100 * sum(equal(a, b) for a, b in pairs) / n
        within5[metric] = 100 * sum(near(a, b) for a, b in pairs) / n
    exact["files_count"] = 100 * sum(mined[s]["files_count"] == dataset[s]["files_count"] for s in common) / n
    buggy = compare_labels([(mined[s]["buggy"] == "true", dataset[s]["buggy"] == "true") for s in common])
    fix = compare_labels([(mined[s]["is_fix_commit"] == "true", dataset[s]["is_fix_commit"] == "true") for s in common])
    # The datasets were dumped years ago: a fix authored after their newest commit could not label their rows,
    # so `buggy` is also compared as of then — the rule's fidelity without the labels that matured since.
    dump = max(int(row["author_date"]) for row in dataset.values())

    def at_dump(row: dict[str, str]) -> bool:
        return any(fix in mined and int(mined[fix]["author_date"]) <= dump for fix in row["fixed_by"].split(";"))

    then = compare_labels([(at_dump(mined[s]), dataset[s]["buggy"] == "true") for s in common])
    return Fidelity(name, len(dataset), len(mined), len(common), exact, within5, buggy, fix, then)


def variants(name: str, work: Path) -> dict[str, list[str]]:
    """Label options to compare: the default, METRICS.md's keywords and plain SZZ, and the dataset's own fixes as a
    tracker list."""
    fixes = work / f"{name}-dataset-fixes.txt"
    dataset = read(SHARED / "data" / "commits" / f"{name}.csv")
    fixes.write_text("".join(f"{sha}\n" for sha, row in dataset.items() if row["is_fix_commit"] == "true"))
    listed = ["--fix-shas", str(fixes), "--fix-rule", "listed"]
    return {
        "default (`--fix-rule datasets --szz strict`)": [],
        "`--szz plain`": ["--szz", "plain"],
        "`--fix-rule keywords` (METRICS.md's fixes)": ["--fix-rule", "keywords"],
        "`--fix-rule keywords --szz plain` (METRICS.md as written)": ["--fix-rule", "keywords", "--szz", "plain"],
        "dataset fixes as `--fix-shas`, `--fix-rule listed --szz plain`": [*listed, "--szz", "plain"],
        "dataset fixes as `--fix-shas`, `--fix-rule listed --szz strict`": [*listed, "--szz", "strict"],
    }


def mine(name: str, work: Path, extra: list[str], tag: str = "") -> tuple[Path, float]:
    """Clone the bundle (once) and mine it with `commitrisk mine`; the CSV and the wall seconds."""
    repo = work / f"{name}.git"
    if not repo.exists():
        bundle = SHARED / "repos" / f"{name}.bundle"
        subprocess.run(["git", "clone", "-q", "--mirror", str(bundle), str(repo)], check=True)
    out = work / f"{name}{tag}.csv"
    began = time.perf_counter()
    command = [sys.executable, "-m", "training", "mine", str(repo), "--out", str(out), "--no-state",
               "--no-progress", "--repository-id", name, *extra]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)
    return out, time.perf_counter() - began


def report(results: list[Fidelity], labels: list[tuple[str, Fidelity]]) -> str:
    """The Markdown tables: coverage and metrics (default options), then labels (every variant)."""
    header = ["metric", *(f"{r.name} exact %" for r in results), *(f"{r.name} ±5 %" for r in results)]
    rows: list[list[object]] = []
    for metric in (*SIZE, *HISTORY, "files_count"):
        cells: list[object] = [f"`{metric}`"]
        for r in results:
            figure = f"{r.exact[metric]:.1f}"
            reference = REFERENCE.get(r.name, {}).get(metric)
            cells.append(f"{figure} (ref. {reference})" if reference is not None else figure)
        cells += [f"{r.within5[metric]:.1f}" if metric != "files_count" else "" for r in results]
        rows.append(cells)
    coverage: list[list[object]] = [
        ["coverage", *(f"{100 * r.common / r.dataset_rows:.2f} % ({r.common:,} of {r.dataset_rows:,})"
                       for r in results)],
        ["mined rows", *(f"{r.mined_rows:,}" for r in results)],
    ]  # fmt: skip
    lines = [table(["", *(r.name for r in results)], coverage), "", table(header, rows), ""]
    label_rows: list[list[object]] = []
    for variant, r in labels:
        for label, lab in (("buggy", r.buggy), ("buggy, as of the dump", r.buggy_at_dump), ("is_fix_commit", r.fix)):
            label_rows.append([
                r.name, variant, f"`{label}`", f"{100 * lab.agreement:.1f}", f"{100 * lab.baseline:.1f}",
                f"{lab.precision:.2f}", f"{lab.recall:.2f}", f"**{lab.kappa:.2f}**",
                f"{100 * lab.mined_rate:.1f} / {100 * lab.dataset_rate:.1f}",
                f"{lab.mined_rate / lab.dataset_rate:.2f}" if lab.dataset_rate else "",
            ])  # fmt: skip
    lines.append(table(["repository", "options", "label", "agreement %", "all-false %", "precision", "recall", "κ",
                        "rate % mined / dataset", "rate ratio"], label_rows))  # fmt: skip
    lines.append("\nMined with `commitrisk mine` on `git clone --mirror` of `../shared/repos/NAME.bundle`; compared on "
                 "the rows both have. Exact: |Δ| ≤ 1e-9·max(1, |x|); ref.: the independent reference implementation's "
                 "exact share (issue 15); all-false: the agreement of labelling every row clean; as of the dump: "
                 "only fixes authored no later than the dataset's newest commit label (later ones could not label "
                 "its rows).")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/commitrisk-fidelity"))
    parser.add_argument("--names", nargs="+", default=["HikariCP", "jedis"])
    parser.add_argument("--mined", nargs="*", default=[], help="NAME=CSV: compare this CSV instead of mining")
    parser.add_argument("--variants", action="store_true", help="also compare the other label options")
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args()
    given = dict(item.split("=", 1) for item in args.mined)
    args.work.mkdir(parents=True, exist_ok=True)
    results: list[Fidelity] = []
    labels: list[tuple[str, Fidelity]] = []
    seconds: list[str] = []
    mined: dict[str, dict[str, Path]] = {}  # variant → repository → its CSV
    for name in args.names:
        dataset = read(SHARED / "data" / "commits" / f"{name}.csv")
        options = variants(name, args.work) if args.variants and name not in given else {"default": []}
        for index, (variant, extra) in enumerate(options.items()):
            if name in given:
                out = Path(given[name])
            else:
                out, wall = mine(name, args.work, extra, tag=f"-{index}" if index else "")
                if index == 0:
                    seconds.append(f"{name} {wall:.1f} s")
            mined.setdefault(variant, {})[name] = out
            fidelity = compare(name, read(out), dataset)
            if index == 0:
                results.append(fidelity)
            labels.append((variant, fidelity))
    body = report(results, labels)
    if seconds:
        body += f" Mining wall time (metrics + labels, default options): {', '.join(seconds)}."
    body += f" 1-min load average at the end: {os.getloadavg()[0]:.2f}."
    if args.variants:
        body += "\n\n" + label_effect({"the datasets' own labels": None, **mined}, args.names, SHARED)
    publish("Mining fidelity (`bench/fidelity.py`)", body, args.no_append)


if __name__ == "__main__":
    main()
