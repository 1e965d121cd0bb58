"""Generated commits: the shared format, the real dumps' rules, realistic marginals and labels, seeds and drift."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.contract import FEATURES
from training.data import load
from training.synthetic import generate as synthetic
from training.synthetic.spec import load_default

NUMERIC = [*FEATURES, "files_count"]

# Every rule the real dumps obey without exception (checked on them below), as frame → boolean mask.
RULES: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "nf <= files_count": lambda d: d.nf <= d.files_count,
    "ns <= nd <= nf": lambda d: (d.ns <= d.nd) & (d.nd <= d.nf),
    "nf >= 1": lambda d: d.nf >= 1,
    "ha <= la, ha > 0 iff la > 0": lambda d: (d.ha <= d.la) & ((d.ha > 0) == (d.la > 0)),
    "hd <= ld, hd > 0 iff ld > 0": lambda d: (d.hd <= d.ld) & ((d.hd > 0) == (d.ld > 0)),
    "la + ld >= nf": lambda d: d.la + d.ld >= d.nf,
    "ha + hd >= nf": lambda d: d.ha + d.hd >= d.nf,
    "entropy <= log2(nf)": lambda d: d.entropy <= np.log2(d.nf) + 1e-9,
    "entropy = 0 iff nf = 1": lambda d: (d.entropy == 0) == (d.nf == 1),
    "lt >= 1": lambda d: d["lt"] >= 1,
    "ndev <= nuc, ndev > 0 iff nuc > 0": lambda d: (d.ndev <= d.nuc) & ((d.ndev > 0) == (d.nuc > 0)),
    "rexp <= nuc, rexp > 0 only if exp > 0": lambda d: (d.rexp <= d.nuc + 1e-9) & ((d.rexp == 0) | (d.exp > 0)),
    "sexp <= exp": lambda d: d.sexp <= d.exp,
}


@pytest.fixture(scope="module")
def real(shared_commits_dir: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(f) for f in sorted(shared_commits_dir.glob("*.csv"))], ignore_index=True)


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return synthetic.generate(load_default(), 30_000, seed=3)


def test_generated_frame_is_well_formed(generated: pd.DataFrame) -> None:
    assert list(generated.columns) == list(synthetic.CSV_COLUMNS) and len(generated) == 30_000
    for column in NUMERIC:
        integer = column in synthetic.INTEGER or column == "files_count"
        assert generated[column].dtype == (np.int64 if integer else np.float64), column
    assert generated["buggy"].dtype == bool and generated["is_fix_commit"].dtype == bool
    assert generated["commit_hash"].str.fullmatch(r"[0-9a-f]{40}").all()
    assert (generated["commit_id"] == generated["repository_id"] + "_" + generated["commit_hash"]).all()
    assert generated["commit_id"].is_unique
    assert generated["author_date"].is_monotonic_increasing
    assert generated["author_date"].max() == load_default().end_date
    assert (generated[NUMERIC] >= 0).all().all()
    assert generated["bug_potential"].isna().all()
    assert (generated["buggy"] == (generated["fixed_by"] != "")).all()


def test_generated_frame_has_the_header_and_types_of_the_shared_data(
    generated: pd.DataFrame, real: pd.DataFrame
) -> None:
    assert list(generated.columns) == list(real.columns)
    for column in [*NUMERIC, "author_date", "buggy", "is_fix_commit"]:
        assert generated[column].dtype == real[column].dtype, column


def test_csv_round_trip_passes_the_loader(generated: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "synthetic.csv"
    synthetic.write_csv(generated.head(2000), path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(synthetic.CSV_COLUMNS)
    assert {line.split(",")[2] for line in lines[1:]} == {"true", "false"}  # booleans as the dumps write them
    dataset = load([path])
    assert len(dataset.frame) == 2000
    assert dataset.frame["buggy"].sum() == generated.head(2000)["buggy"].sum()


@pytest.mark.parametrize("rule", list(RULES))
def test_generated_rows_obey_the_consistency_rules(rule: str, generated: pd.DataFrame) -> None:
    assert RULES[rule](generated).all()


@pytest.mark.parametrize("rule", list(RULES))
def test_the_consistency_rules_are_those_of_the_real_data(rule: str, real: pd.DataFrame) -> None:
    assert RULES[rule](real).all()


def test_draw_metrics_pins_children_when_their_parents_sit_at_the_floor() -> None:
    spec = load_default()
    quantiles = {c: np.asarray(q) for c, q in spec.quantiles.items()}
    latent = np.full((3, len(synthetic.COLUMNS)), -8.0)  # every column at its minimum
    latent[1] = 8.0  # every column at its maximum
    metrics = synthetic.draw_metrics(latent, quantiles)
    assert metrics["nf"][0] == 1 and metrics["nd"][0] == 1 and metrics["ns"][0] == 1 and metrics["entropy"][0] == 0
    assert metrics["la"][0] + metrics["ld"][0] >= 1  # one counted file changed at least one line
    assert metrics["nf"][1] == max(spec.quantiles["nf"]) and metrics["la"][1] == max(spec.quantiles["la"])
    frame = pd.DataFrame(metrics)
    for rule, holds in RULES.items():
        assert holds(frame).all(), rule


@pytest.mark.parametrize("feature", NUMERIC)
def test_marginals_match_the_real_data(feature: str, real: pd.DataFrame, generated: pd.DataFrame) -> None:
    want, got = np.sort(real[feature].to_numpy()), np.sort(generated[feature].to_numpy())
    grid = np.unique(np.concatenate([want, got]))
    ks = np.abs(np.searchsorted(want, grid, "right") / want.size - np.searchsorted(got, grid, "right") / got.size)
    # Real entropy has atoms (1.0, 0.918 … for two-file changes) that a continuous marginal smooths over.
    assert ks.max() < (0.08 if feature == "entropy" else 0.05), f"KS distance {ks.max():.3f} at {grid[ks.argmax()]}"
    # Quantiles on the log1p scale (0.15 ≈ 16% relative at large values), or within one count.
    for prob, tolerance in ((0.5, 0.15), (0.75, 0.15), (0.9, 0.2), (0.99, 0.3)):
        real_q, gen_q = np.quantile(want, prob), np.quantile(got, prob)
        close = abs(np.log1p(gen_q) - np.log1p(real_q)) < tolerance or abs(gen_q - real_q) <= 1
        assert close, f"q{prob}: real {real_q:.3g}, generated {gen_q:.3g}"


def test_rank_correlations_match_the_real_data(real: pd.DataFrame, generated: pd.DataFrame) -> None:
    want = real[NUMERIC].corr("spearman").to_numpy()
    got = generated[NUMERIC].corr("spearman").to_numpy()
    assert np.abs(got - want).max() < 0.05


def test_label_rates_match_the_real_data(real: pd.DataFrame, generated: pd.DataFrame) -> None:
    assert abs(generated["buggy"].mean() - real["buggy"].mean()) < 0.02
    assert abs(generated["is_fix_commit"].mean() - real["is_fix_commit"].mean()) < 0.02


def test_label_rates_follow_the_spec_and_messages_the_fix_flag(generated: pd.DataFrame) -> None:
    spec = load_default()
    assert generated["buggy"].mean() == pytest.approx(spec.buggy.rate, abs=0.01)
    assert generated["is_fix_commit"].mean() == pytest.approx(spec.is_fix.rate, abs=0.01)
    fix_words = re.compile(r"\b(?:fix|bug|crash|wrong|npe|resolve)\b", re.IGNORECASE)
    assert (generated["commit_message"].str.contains(fix_words) == generated["is_fix_commit"]).all()


def test_a_model_learns_a_realistic_amount(generated: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x = np.log1p(generated[list(FEATURES)].to_numpy())
    y = generated["buggy"].to_numpy()
    model = LogisticRegression(max_iter=2000).fit(x[:20_000], y[:20_000])
    auc = roc_auc_score(y[20_000:], model.predict_proba(x[20_000:])[:, 1])
    assert 0.65 < auc < 0.85


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    spec = load_default()
    first = synthetic.generate(spec, 500, seed=11, repositories=2, drift=0.3)
    pd.testing.assert_frame_equal(first, synthetic.generate(spec, 500, seed=11, repositories=2, drift=0.3))
    assert not first["commit_hash"].equals(synthetic.generate(spec, 500, seed=12)["commit_hash"])
    assert first["repository_id"].nunique() == 2


def test_drift_grows_changes_and_weakens_the_signal() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    frame = synthetic.generate(load_default(), 40_000, seed=2, drift=1.0)
    early, late = frame.iloc[:10_000], frame.iloc[-10_000:]
    assert late["la"].median() > 2 * early["la"].median()
    assert late["exp"].median() < early["exp"].median()
    model = LogisticRegression(max_iter=2000).fit(np.log1p(early[list(FEATURES)]), early["buggy"])
    half = early.iloc[5000:]
    auc_early = roc_auc_score(half["buggy"], model.predict_proba(np.log1p(half[list(FEATURES)]))[:, 1])
    auc_late = roc_auc_score(late["buggy"], model.predict_proba(np.log1p(late[list(FEATURES)]))[:, 1])
    assert auc_late < auc_early - 0.05


@pytest.mark.parametrize(("rows", "repositories", "drift"), [(0, 1, 0.0), (10, 11, 0.0), (10, 1, -0.1), (10, 1, 1.5)])
def test_generate_rejects_bad_arguments(rows: int, repositories: int, drift: float) -> None:
    with pytest.raises(ValueError):
        synthetic.generate(load_default(), rows, seed=0, repositories=repositories, drift=drift)
