"""The state file round-trips; foreign files are refused with one line, outdated ones are replaced by a re-mine."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from training.mining.repository import MiningError
from training.mining.state import FORMAT, MiningState, OutdatedState, load_state, previous_state, save_state
from training.mining.writer import CommitRow


def test_state_round_trips(tmp_path: Path) -> None:
    state = MiningState("all", labels=True, listed_fixes=frozenset({"a" * 40}))
    state.rows["b" * 40] = CommitRow("b" * 40, 5, "n", "e", "m", False, ["x.py"], {"la": 1})
    state.fixed_by["b" * 40] = {"d" * 40: 9, "c" * 40: 9, "e" * 40: 7}
    path = tmp_path / "deep" / "mine.state"
    save_state(path, state)
    loaded = load_state(path)
    assert loaded.rows == state.rows
    listed = frozenset({"a" * 40})
    assert loaded.compatible(MiningState("all", True, listed))
    assert not loaded.compatible(MiningState("HEAD", True, listed))
    assert not loaded.compatible(MiningState("all", False, listed))
    assert not loaded.compatible(MiningState("all", True, listed, fix_rule="listed"))
    assert not loaded.compatible(MiningState("all", True, listed, szz="plain"))
    # fixes ordered by (fix time, SHA), whatever order the walk found them in
    assert loaded.labels_of() == {"b" * 40: ["e" * 40, "c" * 40, "d" * 40]}
    assert list(tmp_path.joinpath("deep").iterdir()) == [path]  # no temp file left behind


def test_foreign_and_truncated_files_are_refused_an_outdated_one_is_not_reused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.write_text("hello")
    with pytest.raises(Exception, match="not a commitrisk mining state file"):
        load_state(foreign)
    truncated = tmp_path / "truncated"
    save_state(truncated, MiningState("all", labels=False))
    truncated.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(Exception, match="unreadable mining state"):
        load_state(truncated)
    outdated = tmp_path / "outdated"
    # the format line is read before the state: a state this version could not even unpickle is still outdated
    outdated.write_bytes(b"commitrisk-mine-state\nformat %d\n" % (FORMAT + 1) + b"\x80\x05not a pickle of ours")
    with pytest.raises(OutdatedState, match=f"mining state format {FORMAT + 1}, expected {FORMAT}"):
        load_state(outdated)
    legacy = tmp_path / "legacy"  # formats 1-5 pickled (format, state)
    legacy.write_bytes(b"commitrisk-mine-state\n" + pickle.dumps((5, MiningState("all", False))))
    with pytest.raises(OutdatedState, match=f"mining state format 1-5, expected {FORMAT}"):
        load_state(legacy)
    notes: list[str] = []
    assert previous_state(outdated, notes.append) is None
    assert notes == [f"{outdated}: mining state format {FORMAT + 1}, expected {FORMAT} (another commitrisk version); "
                     "mining from scratch"]  # fmt: skip
    assert previous_state(tmp_path / "absent", notes.append) is None and len(notes) == 1
    with pytest.raises(MiningError, match="not a commitrisk mining state file"):
        previous_state(foreign, notes.append)  # a foreign file is never replaced
