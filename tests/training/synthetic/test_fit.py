"""Fitting a spec: reproduces the committed default from the shared data, and learns from any real-format CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.contract import FEATURES
from tests.support import write_synthetic
from training.synthetic import fit as fitting
from training.synthetic.generate import COLUMNS, generate
from training.synthetic.spec import load_default


@pytest.mark.slow
def test_fit_on_the_shared_data_reproduces_the_committed_spec(shared_commits_dir: Path) -> None:
    fitted, committed = fitting.fit([shared_commits_dir]), load_default()
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


def test_fit_describes_its_input_and_generates_data_like_it(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "commits", rows=3000, seed=21, names=("left", "right"))
    real = pd.concat([pd.read_csv(f) for f in sorted(folder.glob("*.csv"))], ignore_index=True)
    spec = fitting.fit([folder])
    assert [s.name for s in spec.sources] == ["left.csv", "right.csv"] and spec.rows == 3000
    assert [s.rows for s in spec.sources] == [1500, 1500]
    assert spec.columns == list(COLUMNS) and spec.refit_command == fitting.REFIT_COMMAND
    assert spec.end_date == real["author_date"].max()
    assert spec.buggy.rate == pytest.approx(real["buggy"].mean(), abs=1e-6)
    assert spec.quantiles["la"][0] == real["la"].min() and spec.quantiles["la"][-1] == real["la"].max()
    again = generate(spec, 20_000, seed=1)
    assert again["buggy"].mean() == pytest.approx(real["buggy"].mean(), abs=0.02)
    assert again["la"].median() == pytest.approx(real["la"].median(), rel=0.2, abs=1)
    rho_real = real[["la", "nf"]].corr("spearman").iloc[0, 1]
    assert again[["la", "nf"]].corr("spearman").iloc[0, 1] == pytest.approx(rho_real, abs=0.05)


def test_fit_logit_learns_the_direction_and_reproduces_the_rate() -> None:
    rng = np.random.default_rng(0)
    rows = 4000
    frame = pd.DataFrame({name: rng.integers(0, 50, rows).astype(np.float64) for name in FEATURES})
    # Only la carries signal: buggy commits are the large ones.
    y = rng.random(rows) < 1.0 / (1.0 + np.exp(-(np.log1p(frame["la"].to_numpy()) - 3.0) * 2.0))
    sample = {name: frame[name].to_numpy() for name in FEATURES}
    model = fitting.fit_logit(frame, y, sample)
    assert max(model.coef, key=lambda f: abs(model.coef[f])) == "la" and model.coef["la"] > 0
    assert model.rate == pytest.approx(y.mean(), abs=1e-6)
    linear = np.log1p(frame[list(model.coef)].to_numpy()) @ np.array(list(model.coef.values()))
    assert model.center == pytest.approx(linear.mean(), abs=1e-5)
    assert np.mean(1.0 / (1.0 + np.exp(-(linear + model.intercept)))) == pytest.approx(y.mean(), abs=1e-4)


def test_fit_rejects_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"holds no \.csv files"):
        fitting.fit([tmp_path])
    broken = tmp_path / "broken.csv"
    broken.write_text("commit_id,author_date,buggy\nx_1,1,true\n")
    with pytest.raises(ValueError, match=r"broken\.csv: missing columns .*ns"):
        fitting.fit([broken])
    header_only = tmp_path / "only" / "header.csv"
    header_only.parent.mkdir()
    header_only.write_text(",".join(fitting.NEEDED) + "\n")
    with pytest.raises(ValueError, match=r"header\.csv: no rows"):
        fitting.fit([header_only])
