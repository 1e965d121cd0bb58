"""The synthetic-data spec: the committed default, deterministic JSON, strict loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from training.synthetic import spec as synthetic
from training.synthetic.fit import REFIT_COMMAND
from training.synthetic.generate import COLUMNS

PACKAGED = Path(synthetic.__file__).parent / "defaults" / synthetic.DEFAULT_SPEC


def test_committed_spec_is_small_deterministic_and_names_its_sources(tmp_path: Path) -> None:
    spec = synthetic.load_default()
    assert PACKAGED.stat().st_size < 50_000
    assert [s.name for s in spec.sources] == ["HikariCP.csv", "YCSB.csv", "guice.csv", "jedis.csv"]
    assert spec.rows == sum(s.rows for s in spec.sources) == 4759
    assert spec.refit_command == REFIT_COMMAND
    assert spec.columns == list(COLUMNS) and set(spec.quantiles) == set(COLUMNS)
    synthetic.write_spec(spec, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == PACKAGED.read_bytes()


def test_written_spec_loads_back_equal_with_number_lists_on_one_line(tmp_path: Path) -> None:
    spec = synthetic.load_default().model_copy(update={"rows": 12, "slope_decay": 0.25})
    path = tmp_path / "nested" / "folder" / "spec.json"  # parents are created
    synthetic.write_spec(spec, path)
    assert synthetic.load_spec(path) == spec
    lines = path.read_text().splitlines()
    probs = next(line for line in lines if line.lstrip().startswith('"quantile_probs"'))
    assert probs.rstrip(",").endswith("]") and probs.count(", ") == len(spec.quantile_probs) - 1


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.clear(),  # nothing at all
        lambda d: d.pop("correlation"),  # a required field missing
        lambda d: d.update(extra_field=1),  # unknown fields are refused, not ignored
        lambda d: d["buggy"].update(rate="high"),  # a wrong type deep inside
    ],
)
def test_load_spec_refuses_incomplete_unknown_and_mistyped_fields(tmp_path: Path, change: object) -> None:
    payload = json.loads(PACKAGED.read_text())
    change(payload)  # type: ignore[operator]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValidationError):
        synthetic.load_spec(path)


def test_load_spec_of_a_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        synthetic.load_spec(tmp_path / "absent.json")
