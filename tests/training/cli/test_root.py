"""The root command: the one failure line, notes on stderr, exit codes, and the command names others run."""

from __future__ import annotations

import pytest
import typer
from pydantic import BaseModel, Field, ValidationError, model_validator
from typer.main import get_command
from typer.testing import CliRunner

from training.cli import cli
from training.cli.root import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_RISKY, fail, fail_options, note

# Commands that images, compose, Kubernetes manifests, benchmarks, CI and the docs run by name: renaming
# one breaks them, so a rename must show up here first.
COMMANDS = [
    ["mine"], ["train"], ["evaluate"], ["generate"], ["fit-synthetic"], ["serve"], ["start"], ["monitor"],
    ["score"], ["replay"], ["feedback", "import"], ["retrain"], ["models", "list"],
]  # fmt: skip


def test_fail_prints_one_error_line_on_stderr_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught:
        fail("data/x.csv: missing column 'la'")
    assert caught.value.exit_code == EXIT_BAD_INPUT == 2
    assert capsys.readouterr() == ("", "error: data/x.csv: missing column 'la'\n")


def test_fail_carries_another_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught:
        fail("refused, nothing published: test ROC AUC 0.55 < 0.6", EXIT_REFUSED)
    assert caught.value.exit_code == 3
    assert capsys.readouterr().err == "error: refused, nothing published: test ROC AUC 0.55 < 0.6\n"
    assert len({EXIT_RISKY, EXIT_BAD_INPUT, EXIT_REFUSED}) == 3  # each exit code means one thing


class Options(BaseModel):
    budget: int = Field(1, ge=1)
    families: list[str] = []
    first: int = 0
    last: int = 0

    @model_validator(mode="after")
    def _order(self) -> Options:
        if self.first > self.last:
            raise ValueError("first comes after last")
        return self


@pytest.mark.parametrize(
    ("values", "line"),
    [({"budget": 0}, "error: option budget: Input should be greater than or equal to 1\n"),
     ({"families": [1]}, "error: option families.0: Input should be a valid string\n"),
     ({"first": 2}, "error: options: first comes after last\n")],
)  # fmt: skip
def test_invalid_options_name_their_field_on_one_line(
    values: dict[str, object], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValidationError) as invalid:
        Options.model_validate(values)
    with pytest.raises(typer.Exit) as caught:
        fail_options(invalid.value)
    assert caught.value.exit_code == 2
    assert capsys.readouterr().err == line


def test_a_note_is_one_line_on_stderr_and_leaves_stdout_alone(capsys: pytest.CaptureFixture[str]) -> None:
    note("walked 3 new commits")
    assert capsys.readouterr() == ("", "walked 3 new commits\n")


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_every_command_others_run_exists(words: list[str]) -> None:
    result = CliRunner().invoke(cli, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_the_root_lists_its_commands_in_data_flow_order() -> None:
    names = list(get_command(cli).commands)  # type: ignore[attr-defined]
    assert {words[0] for words in COMMANDS} <= set(names)
    flow = [names.index(name) for name in ("mine", "train", "serve", "score", "retrain")]
    assert flow == sorted(flow)


def test_an_unknown_command_or_option_is_a_usage_error_exit_2() -> None:
    unknown = CliRunner().invoke(cli, ["nosuch"])
    assert unknown.exit_code == 2 and "nosuch" in unknown.stderr
    option = CliRunner().invoke(cli, ["train", "--no-such-option"])
    assert option.exit_code == 2 and "--no-such-option" in option.stderr


def test_no_arguments_shows_the_help() -> None:
    result = CliRunner().invoke(cli, [])
    assert "Just-in-time defect prediction" in result.output
