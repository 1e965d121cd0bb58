"""`commitrisk generate` and `commitrisk fit-synthetic`: files written, the summary line, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner, Result

from training.cli import cli
from training.data import load


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_generate_writes_a_dataset_the_trainer_loads(tmp_path: Path) -> None:
    out = tmp_path / "data" / "synthetic.csv"
    result = invoke("generate", "--rows", "400", "--out", out, "--seed", "3", "--repositories", "2", "--drift", "0.3")
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(out)
    assert result.stdout == f"{out}: 400 commits, {int(frame['buggy'].sum())} buggy\n"
    assert len(frame) == 400 and frame["repository_id"].nunique() == 2
    assert len(load([out]).frame) == 400  # the shared format: `commitrisk train --data` reads it as is


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    for path, seed in ((first, "9"), (second, "9"), (other, "10")):
        assert invoke("generate", "--rows", "200", "--out", path, "--seed", seed).exit_code == 0
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()


def test_generate_refuses_bad_options_specs_and_outputs(tmp_path: Path) -> None:
    drift = invoke("generate", "--rows", "10", "--out", tmp_path / "a.csv", "--drift", "2")
    assert drift.exit_code == 2 and "--drift" in drift.stderr
    rows = invoke("generate", "--rows", "0", "--out", tmp_path / "a.csv")
    assert rows.exit_code == 2 and "--rows" in rows.stderr
    assert invoke("generate", "--rows", "10").exit_code == 2  # --out is required
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"rows": "many"}))
    bad_spec = invoke("generate", "--out", tmp_path / "b.csv", "--spec", spec)
    assert bad_spec.exit_code == 2 and bad_spec.stderr.startswith(f"error: {spec}: ")
    assert bad_spec.stderr.count("\n") == 1
    missing = invoke("generate", "--out", tmp_path / "b.csv", "--spec", tmp_path / "none.json")
    assert missing.exit_code == 2 and missing.stderr.startswith(f"error: {tmp_path / 'none.json'}: ")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    unwritable = invoke("generate", "--rows", "10", "--out", blocker / "out.csv")
    assert unwritable.exit_code == 2 and unwritable.stderr.startswith(f"error: {blocker}")  # names the culprit
    assert unwritable.stderr.count("\n") == 1
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()


def test_fit_synthetic_writes_a_spec_that_generate_uses(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    spec = tmp_path / "spec.json"
    result = invoke("fit-synthetic", synthetic_commits_dir, "--out", spec)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{spec}: fitted on 4500 commits from 3 files\n"
    assert [s["name"] for s in json.loads(spec.read_text())["sources"]] == ["alpha.csv", "beta.csv", "gamma.csv"]
    out = tmp_path / "refitted.csv"
    generated = invoke("generate", "--rows", "300", "--out", out, "--spec", spec)
    assert generated.exit_code == 0, generated.stderr
    assert len(pd.read_csv(out)) == 300


def test_fit_synthetic_refuses_missing_and_malformed_inputs(tmp_path: Path) -> None:
    missing = invoke("fit-synthetic", tmp_path / "none", "--out", tmp_path / "s.json")
    assert missing.exit_code == 2 and missing.stderr.startswith("error: ") and "none" in missing.stderr
    assert missing.stderr.count("\n") == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("commit_id,author_date\nx,1\n")
    malformed = invoke("fit-synthetic", bad, "--out", tmp_path / "s.json")
    assert malformed.exit_code == 2 and malformed.stderr.startswith("error: ") and malformed.stderr.count("\n") == 1
    assert not (tmp_path / "s.json").exists()
    assert invoke("fit-synthetic", "--out", tmp_path / "s.json").exit_code == 2  # DATA is required


def test_fit_synthetic_refuses_an_unwritable_spec(tmp_path: Path, synthetic_commits_dir: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = invoke("fit-synthetic", synthetic_commits_dir / "alpha.csv", "--out", blocker / "spec.json")
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {blocker}") and result.stderr.count("\n") == 1
