"""docs/configuration.md holds the one settings table, and it is `app.settings.Settings`: every field as
`COMMITRISK_<NAME>` with its default, no row for a setting that does not exist, no copy elsewhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from app.settings import Settings
from tests.docs.markdown import DOCS, pages, read, section, spans, table_rows
from tests.support import ROOT

PAGE = DOCS / "configuration.md"
SETTINGS_SECTION = "Service settings"
OTHERS_SECTION = "Variables of the command line, the images and compose"
VARIABLE = re.compile(r"COMMITRISK_[A-Z0-9_]+")
NAME = re.compile(r"[A-Z][A-Z0-9_]+")


def documented(text: str) -> dict[str, str]:
    """Variable → its default cell, from the rows of the settings table (`| `COMMITRISK_X` | default | … |`)."""
    found: dict[str, str] = {}
    for row in table_rows(section(text, SETTINGS_SECTION)):
        names = spans(row[0])
        if names and NAME.fullmatch(names[0]):
            if names[0] in found:
                raise AssertionError(f"{names[0]}: two rows")
            found[names[0]] = row[1]
    return found


def parse_default(cell: str) -> Any:
    """The value a default cell states: `unset` → None, else its first code span as bool, number or text."""
    if cell.startswith("unset"):
        return None
    values = spans(cell)
    if not values:
        raise ValueError(f"default {cell!r}: neither `unset` nor a value in backticks")
    value = values[0]
    if value in ("true", "false"):
        return value == "true"
    try:
        return float(value)
    except ValueError:
        return value


def expected_default(settings: type[BaseSettings], name: str) -> Any:
    """The field's default in the form the table states it (paths and secrets as text, numbers as float)."""
    value = settings.model_fields[name].default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def mismatches(settings: type[BaseSettings], text: str) -> list[str]:
    """Every way the settings table and the settings class disagree (empty when they agree)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    rows = documented(text)
    expected = {f"{prefix}{name.upper()}": name for name in settings.model_fields}
    problems = [f"{variable}: no row in the settings table" for variable in sorted(expected.keys() - rows.keys())]
    problems += [f"{variable}: a row, but no such setting" for variable in sorted(rows.keys() - expected.keys())]
    for variable in sorted(expected.keys() & rows.keys()):
        stated, actual = parse_default(rows[variable]), expected_default(settings, expected[variable])
        if stated != actual:
            problems.append(f"{variable}: documented default {stated!r}, Settings says {actual!r}")
    return problems


def test_every_setting_has_its_row_and_default() -> None:
    assert not mismatches(Settings, read(PAGE))


@pytest.mark.parametrize("page", [p for p in pages() if p != PAGE], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_page_copies_the_settings_table(page: Path) -> None:
    variables = {f"COMMITRISK_{name.upper()}" for name in Settings.model_fields}
    copied = [row[0] for row in table_rows(read(page)) if spans(row[0]) and spans(row[0])[0] in variables]
    assert not copied, f"{page.name}: settings rows belong in docs/configuration.md only: {copied}"


def test_every_variable_of_env_example_is_documented() -> None:
    env = (ROOT / ".env.example").read_text()
    assert "docs/configuration.md" in env, ".env.example points to the settings table"
    text = read(PAGE)
    known = set(documented(text)) | set(VARIABLE.findall(section(text, OTHERS_SECTION)))
    assigned = set(re.findall(r"^(COMMITRISK_[A-Z0-9_]+)=", env, re.MULTILINE))
    assert assigned, ".env.example sets COMMITRISK_* variables"
    assert not assigned - known, f".env.example: undocumented {sorted(assigned - known)}"


# ---- the checker fails on a stale table ------------------------------------------------------------------


class Fabricated(BaseSettings):
    """A settings class the tables below get wrong in every way the checker knows."""

    model_config = {"env_prefix": "DEMO_"}

    models_dir: Path = Path("models")
    max_batch: int = 1000
    retention_days: float = 180.0
    token: SecretStr | None = None
    access_log: bool = False


def table(*rows: str) -> str:
    return f"## {SETTINGS_SECTION}\n\n| variable | default | meaning |\n|---|---|---|\n" + "".join(
        f"{row}\n" for row in rows
    )


def test_a_stale_table_is_reported() -> None:
    text = table(
        "| `DEMO_MODELS_DIR` | `models` (`/models` in the images) | where |",
        "| `DEMO_MAX_BATCH` | `500` | most commits |",
        "| `DEMO_RETENTION_DAYS` | `180` | days |",
        "| `DEMO_TOKEN` | unset | token |",
        "| `DEMO_GONE` | `1` | removed from the code |",
    )
    assert mismatches(Fabricated, text) == [
        "DEMO_ACCESS_LOG: no row in the settings table",
        "DEMO_GONE: a row, but no such setting",
        "DEMO_MAX_BATCH: documented default 500.0, Settings says 1000.0",
    ]


def test_a_complete_table_passes_and_defaults_parse() -> None:
    text = table(
        "| `DEMO_MODELS_DIR` | `models` | where |",
        "| `DEMO_MAX_BATCH` | `1000` | most commits |",
        "| `DEMO_RETENTION_DAYS` | `180` | days |",
        "| `DEMO_TOKEN` | unset | token |",
        "| `DEMO_ACCESS_LOG` | `false` | log |",
    )
    assert mismatches(Fabricated, text) == []
    with pytest.raises(ValueError, match="neither"):
        parse_default("models")
    with pytest.raises(AssertionError, match="two rows"):
        documented(table("| `DEMO_TOKEN` | unset | a |", "| `DEMO_TOKEN` | unset | b |"))
