"""The embedded default dataset: fitted to the shared real data, and generated rows that look like it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.contract import FEATURES
from training.cli import cli
from training.data import load
from training.synthetic import spec as synthetic

PACKAGED = Path(synthetic.__file__).parent / "defaults" / synthetic.DEFAULT_SPEC
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
    return synthetic.generate(synthetic.load_default(), 30_000, seed=3)


def test_committed_spec_is_small_deterministic_and_names_its_sources(tmp_path: Path) -> None:
    spec = synthetic.load_default()
    assert PACKAGED.stat().st_size < 50_000
    assert [s.name for s in spec.sources] == ["HikariCP.csv", "YCSB.csv", "guice.csv", "jedis.csv"]
    assert spec.rows == sum(s.rows for s in spec.sources) == 4759
    assert spec.refit_command == synthetic.REFIT_COMMAND
    synthetic.write_spec(spec, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == PACKAGED.read_bytes()


@pytest.mark.slow
def test_fit_on_the_shared_data_reproduces_the_committed_spec(shared_commits_dir: Path) -> None:
    fitted, committed = synthetic.fit([shared_commits_dir]), synthetic.load_default()
    assert fitted.sources == committed.sources, "shared data changed: run the refit command"
    assert fitted.columns == committed.columns and fitted.quantile_probs == committed.quantile_probs
    for column in fitted.columns:
        np.testing.assert_allclose(fitted.quantiles[column], committed.quantiles[column], rtol=1e-5)
    np.testing.assert_allclose(fitted.correlation, committed.correlation, atol=2e-3)
    for name in ("buggy", "is_fix"):
        new, old = getattr(fitted, name), getattr(committed, name)
        assert new.coef.keys() == old.coef.keys()
        names = sorted(new.coef)
        np.testing.assert_allclose([new.coef[f] for f in names], [old.coef[f] for f in names], atol=1e-4)
        assert new.intercept == pytest.approx(old.intercept, abs=1e-3)
    assert fitted.model_dump(exclude={"fitted_at", "quantiles", "correlation", "buggy", "is_fix"}) == (
        committed.model_dump(exclude={"fitted_at", "quantiles", "correlation", "buggy", "is_fix"})
    )


def test_generated_frame_has_the_shared_format(generated: pd.DataFrame, real: pd.DataFrame) -> None:
    assert list(generated.columns) == list(real.columns) == list(synthetic.CSV_COLUMNS)
    for column in [*NUMERIC, "author_date", "buggy", "is_fix_commit"]:
        assert generated[column].dtype == real[column].dtype, column
    assert generated["commit_hash"].str.fullmatch(r"[0-9a-f]{40}").all()
    assert (generated["commit_id"] == generated["repository_id"] + "_" + generated["commit_hash"]).all()
    assert generated["commit_id"].is_unique
    assert generated["author_date"].is_monotonic_increasing
    assert (generated[NUMERIC] >= 0).all().all()
    assert generated["bug_potential"].isna().all()
    assert (generated["buggy"] == (generated["fixed_by"] != "")).all()


def test_csv_round_trip_passes_the_loader(generated: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "synthetic.csv"
    synthetic.write_csv(generated.head(2000), path)
    assert path.read_text().splitlines()[0] == ",".join(synthetic.CSV_COLUMNS)
    dataset = load([path])
    assert len(dataset.frame) == 2000
    assert dataset.frame["buggy"].sum() == generated.head(2000)["buggy"].sum()


@pytest.mark.parametrize("rule", list(RULES))
def test_consistency_rules_of_the_real_data_hold(rule: str, real: pd.DataFrame, generated: pd.DataFrame) -> None:
    assert RULES[rule](real).all(), "the rule must hold on the real data first"
    assert RULES[rule](generated).all()


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
    spec = synthetic.load_default()
    first = synthetic.generate(spec, 500, seed=11, repositories=2, drift=0.3)
    pd.testing.assert_frame_equal(first, synthetic.generate(spec, 500, seed=11, repositories=2, drift=0.3))
    assert not first["commit_hash"].equals(synthetic.generate(spec, 500, seed=12)["commit_hash"])


def test_drift_grows_changes_and_weakens_the_signal() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    frame = synthetic.generate(synthetic.load_default(), 40_000, seed=2, drift=1.0)
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
        synthetic.generate(synthetic.load_default(), rows, seed=0, repositories=repositories, drift=drift)


def test_fit_rejects_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"holds no \.csv files"):
        synthetic.fit([tmp_path])
    broken = tmp_path / "broken.csv"
    broken.write_text("commit_id,author_date,buggy\nx_1,1,true\n")
    with pytest.raises(ValueError, match=r"broken\.csv: missing columns .*ns"):
        synthetic.fit([broken])


def test_cli_generate_writes_a_loadable_csv(tmp_path: Path) -> None:
    out = tmp_path / "gen.csv"
    result = CliRunner().invoke(cli, ["generate", "--rows", "300", "--out", str(out), "--seed", "4", "--drift", "0.5"])
    assert result.exit_code == 0, result.output
    assert len(load([out]).frame) == 300


def test_cli_rejects_bad_options_and_specs(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_drift = runner.invoke(cli, ["generate", "--rows", "10", "--out", str(tmp_path / "a.csv"), "--drift", "2"])
    assert bad_drift.exit_code == 2
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    bad_spec = runner.invoke(cli, ["generate", "--out", str(tmp_path / "b.csv"), "--spec", str(spec)])
    assert bad_spec.exit_code == 2 and "error: " in bad_spec.output
    missing = runner.invoke(cli, ["fit-synthetic", str(tmp_path / "none"), "--out", str(tmp_path / "s.json")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
