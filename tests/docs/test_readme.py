"""The README stays a five-minute read: short, the two commands exactly as CI and a fresh clone run them,
and a link to every reference page."""

from __future__ import annotations

import re
import shlex
import tomllib

from tests.docs.markdown import DOCS, FENCE, README, links, read
from tests.support import ROOT

MAX_LINES = 200
MAIN_JOB = "python3 -m venv .venv && .venv/bin/pip install -e '.[train,monitor,mine]' && .venv/bin/commitrisk start"
TEST_JOB = "bash scripts/test.sh"


def command_lines(text: str) -> list[str]:
    """Every line of the page's fenced code blocks, stripped."""
    return [line.strip() for block in FENCE.findall(text) for line in block.splitlines()[1:-1]]


def extras(command: str) -> set[str]:
    """The extras a `pip install -e '.[a,b]'` command installs."""
    found = re.search(r"\.\[([\w,]+)\]", command)
    return set(found.group(1).split(",")) if found else set()


def test_readme_is_short() -> None:
    lines = len(read(README).splitlines())
    assert lines <= MAX_LINES, f"README.md has {lines} lines (at most {MAX_LINES}): move reference to docs/"


def test_the_two_commands_are_there_verbatim() -> None:
    commands = command_lines(read(README))
    assert MAIN_JOB in commands
    assert TEST_JOB in commands


def test_ci_runs_exactly_the_test_command() -> None:
    run = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert f"exec {TEST_JOB}" in run
    script = (ROOT / "scripts" / "test.sh").read_text()
    installs = [line for line in script.splitlines() if "pip install" in line and " -e " in line]
    assert installs, "scripts/test.sh installs the project"
    # The test job installs at least what the main job installs, so both see the same product.
    assert extras(MAIN_JOB) <= extras(installs[-1])


def test_the_main_job_is_true_on_a_fresh_clone() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras(MAIN_JOB) <= set(project["optional-dependencies"]), "the README installs an extra that is gone"
    assert project["scripts"]["commitrisk"] == "training.cli:main"
    import typer.main

    from training.cli import cli  # importing the package registers every command

    words = shlex.split(MAIN_JOB.rsplit("&&", 1)[1])
    assert words[0] == ".venv/bin/commitrisk"
    assert words[1] in getattr(typer.main.get_command(cli), "commands", {}), f"no command `commitrisk {words[1]}`"


def test_readme_links_every_reference_page() -> None:
    linked = {target.split("#", 1)[0] for target in links(read(README))}
    pages = {str(path.relative_to(ROOT)) for path in sorted(DOCS.rglob("*.md"))}
    assert pages <= linked, f"README.md links no {sorted(pages - linked)}"
    assert "BENCHMARKS.md" in linked


def test_extras_parsing() -> None:
    assert extras("pip install -e '.[train,monitor]'") == {"train", "monitor"}
    assert extras("pip install .") == set()
    assert command_lines("text\n```bash\n  bash x.sh  \n```\nmore `inline`\n") == ["bash x.sh"]
