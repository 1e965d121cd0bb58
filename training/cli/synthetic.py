"""Synthetic-data commands: generate (a seeded commit dataset) and fit-synthetic (refit the embedded spec)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.root import cli, fail


@cli.command("generate")
def generate_command(
    rows: Annotated[int, typer.Option(min=1, help="number of commits to generate")] = 6000,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (shared dataset format)")] = ...,  # type: ignore[assignment]
    seed: Annotated[int, typer.Option(help="same seed, same rows")] = 42,
    repositories: Annotated[int, typer.Option(min=1, help="repositories the rows are spread over")] = 1,
    drift: Annotated[float, typer.Option(min=0.0, max=1.0, help="0 none … 1 strong by the end")] = 0.0,
    spec: Annotated[Path | None, typer.Option(help="spec JSON (default: the embedded one)")] = None,
) -> None:
    """Write a synthetic commit dataset fitted to real JIT data (no external data needed)."""
    from pydantic import ValidationError

    from training.synthetic.generate import generate, write_csv
    from training.synthetic.spec import load_default, load_spec

    try:
        fitted = load_spec(spec) if spec else load_default()
        frame = generate(fitted, rows, seed, repositories=repositories, drift=drift)
    except (OSError, ValidationError, ValueError) as exc:
        fail(f"{spec or 'embedded spec'}: {str(exc).splitlines()[0]}")
    try:
        write_csv(frame, out)
    except OSError as exc:
        fail(f"{exc.filename or out}: {exc.strerror or exc}")
    print(f"{out}: {len(frame)} commits, {int(frame['buggy'].sum())} buggy")


DEFAULT_SPEC_PATH = Path("training/synthetic/defaults/jit_synthetic.json")


@cli.command("fit-synthetic")
def fit_synthetic_command(
    data: Annotated[list[Path], typer.Argument(help="real commit CSV files or folders")],
    out: Annotated[Path, typer.Option("--out", help="spec JSON to write")] = DEFAULT_SPEC_PATH,
) -> None:
    """Refit the synthetic-data spec (marginals, copula, label model, time axis) to real commits."""
    from training.synthetic.fit import fit
    from training.synthetic.spec import write_spec

    try:
        fitted = fit(data)
    except (OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    try:
        write_spec(fitted, out)
    except OSError as exc:
        fail(f"{exc.filename or out}: {exc.strerror or exc}")
    print(f"{out}: fitted on {fitted.rows} commits from {len(fitted.sources)} files")
