"""docs/cli.md documents every `commitrisk` command and option with its default (read from the typer app),
and no page names a command that does not exist."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from tests.docs.markdown import DOCS, code, headings, pages, read, section, spans, table_rows
from tests.support import ROOT

PAGE = DOCS / "cli.md"
# `commitrisk <command> [<subcommand>]` as a shell would run it (not `-n commitrisk`, `commitrisk[mine]`, …).
INVOCATION = re.compile(r"(?:^|(?<=[\s;&|(`])|(?<=bin/))(?<!-n )(?<!-U )commitrisk((?: [a-z][a-z-]*){1,2})")


@dataclass(frozen=True)
class Parameter:
    """One option or argument as the docs show it: its names (`--labels`, `--no-labels`; `REPO`), its default."""

    names: tuple[str, ...]
    default: Any
    is_flag: bool


def commands(app: typer.Typer) -> dict[str, list[Parameter]]:
    """`commitrisk <path>` → its parameters, for every command that runs something (groups are not)."""
    found: dict[str, list[Parameter]] = {}

    def walk(command: Any, path: str) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, f"{path} {name}")
            return
        found[path] = [
            Parameter(
                tuple(p.opts + p.secondary_opts) if p.param_type_name == "option" else (str(p.name).upper(),),
                p.default,
                bool(getattr(p, "is_flag", False)),
            )
            for p in command.params
            if p.name != "help"
        ]

    walk(typer.main.get_command(app), "commitrisk")
    return found


def real_commands() -> dict[str, list[Parameter]]:
    """The commands of the installed `commitrisk` (importing the package registers every command)."""
    from training.cli import cli

    return commands(cli)


def row_words(cell: str) -> set[str]:
    """Option and argument names of a first table cell: `--state PATH` / `--no-state` → {--state, PATH, --no-state}."""
    return {word for value in spans(cell) for word in re.split(r"[\s/]+", value.replace("\\|", " ")) if word}


def stated_default(cell: str) -> Any:
    """The first code span of a default cell, as a number when it is one (None when the cell has no span)."""
    values = spans(cell)
    if not values:
        return None
    try:
        return float(values[0])
    except ValueError:
        return values[0]


def comparable(value: Any) -> Any:
    """A parameter default in the form the docs state it."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def mismatches(real: dict[str, list[Parameter]], text: str) -> list[str]:
    """Every way the command reference and the commands disagree (empty when they agree)."""
    titles = {title for level, title in headings(text) if level == 2 and title.startswith("commitrisk ")}
    problems = [f"{path}: no section" for path in sorted(real.keys() - titles)]
    problems += [f"{title}: a section, but no such command" for title in sorted(titles - real.keys())]
    for path in sorted(real.keys() & titles):
        rows = [row for row in table_rows(section(text, path))[1:] if len(row) >= 2]
        documented = set().union(*(row_words(row[0]) for row in rows)) if rows else set()
        names = {name for parameter in real[path] for name in parameter.names}
        for parameter in real[path]:
            row = next((r for r in rows if parameter.names[0] in row_words(r[0])), None)
            if row is None:
                problems.append(f"{path}: {parameter.names[0]} not documented")
            elif parameter.default is not None and not parameter.is_flag and not isinstance(parameter.default, bool):
                stated = stated_default(row[1])
                if stated is not None and stated != comparable(parameter.default):
                    problems.append(
                        f"{path}: {parameter.names[0]} default {stated!r}, the command has {parameter.default!r}"
                    )
        stale = {word for word in documented if word.startswith("-") and word not in names}
        problems += [f"{path}: {word} documented, but the command has no such option" for word in sorted(stale)]
    return problems


def unknown_invocations(real: dict[str, list[Parameter]], text: str) -> list[str]:
    """`commitrisk X [Y]` in the page's code where X (or X Y, for a group) is not a command."""
    groups = {path.split()[1] for path in real if len(path.split()) == 3}
    unknown: set[str] = set()
    for snippet in code(text):
        for match in INVOCATION.finditer(snippet):
            words = match.group(1).split()
            if words == words[:1] and words[0] in groups:
                continue  # the group itself: `commitrisk models`
            path = " ".join(["commitrisk", *words[: 2 if words[0] in groups else 1]])
            if path not in real:
                unknown.add(path)
    return sorted(unknown)


def test_every_command_and_option_is_documented() -> None:
    real = real_commands()
    assert {"commitrisk train", "commitrisk serve", "commitrisk models list"} <= real.keys()
    assert not mismatches(real, read(PAGE))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_name_only_real_commands(page: Path) -> None:
    assert not unknown_invocations(real_commands(), read(page))


# ---- the checkers fail on stale docs ---------------------------------------------------------------------


class Level(enum.Enum):
    fast = "fast"
    slow = "slow"


def fabricated() -> typer.Typer:
    app = typer.Typer()
    models = typer.Typer()
    app.add_typer(models, name="models")

    @app.command("train")
    def train(
        data: Path = typer.Argument(...),
        budget: int = typer.Option(12),
        level: Level = typer.Option(Level.fast),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
    ) -> None: ...

    @models.command("list")
    def models_list(json_output: bool = typer.Option(False, "--json")) -> None: ...

    @models.command("promote")
    def models_promote() -> None: ...

    return app


STALE = """# Commands

## commitrisk train

| option | default | meaning |
|---|---|---|
| `DATA` | required | files |
| `--budget N` | `8` | candidates |
| `--level fast\\|slow` | `fast` | how |
| `--seed S` | `42` | removed from the code |

## commitrisk models list

| option | default | meaning |
|---|---|---|
| `--json` | off | JSON |

## commitrisk promote

Gone: the pointer commands moved into the models group.

```bash
commitrisk train data.csv && commitrisk promote 3 && commitrisk models promote 3 && commitrisk models rollback
kubectl -n commitrisk get pods; pip install 'commitrisk[mine]'
```
"""


def test_a_stale_reference_is_reported() -> None:
    real = commands(fabricated())
    assert mismatches(real, STALE) == [
        "commitrisk models promote: no section",
        "commitrisk promote: a section, but no such command",
        "commitrisk train: --budget default 8.0, the command has 12",
        "commitrisk train: --progress not documented",
        "commitrisk train: --seed documented, but the command has no such option",
    ]
    assert unknown_invocations(real, STALE) == ["commitrisk models rollback", "commitrisk promote"]
