"""The incremental state file: everything a later `mine` needs to continue exactly where this one stopped."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from training.mining.history import History
from training.mining.repository import MiningError
from training.mining.writer import CommitRow

# Bump when the layout or any metric's definition changes: an old state must not mix with new rules.
FORMAT = 6  # 3: the datasets' fix rule, tangled above 8; 4: line origins; 5: 730-day window; 6: the format line
_MAGIC = b"commitrisk-mine-state\n"
# The format on a line of its own before the pickled state, so that any version can tell a state of another format
# without unpickling it (its classes may not match this version's). Formats 1–5 pickled (format, state) instead.
_FORMAT_LINE = b"format "


@dataclass
class MiningState:
    """History state, rows mined so far and SZZ links, for one repository and one set of options."""

    refs: str  # --refs: which refs the walk starts from
    labels: bool
    listed_fixes: frozenset[str] = frozenset()
    fix_rule: str = "datasets"  # --fix-rule
    szz: str = "strict"  # --szz
    history: History = field(default_factory=History)
    rows: dict[str, CommitRow] = field(default_factory=dict)
    fixed_by: dict[str, dict[str, int]] = field(default_factory=dict)  # inducing SHA → {fix SHA: fix time}

    @property
    def options(self) -> tuple[object, ...]:
        """The options the rows and labels depend on."""
        return (self.refs, self.labels, self.listed_fixes, self.fix_rule, self.szz)

    def compatible(self, other: MiningState) -> bool:
        """True when continuing this state gives what a full mine with `other`'s options would."""
        return self.options == other.options

    def labels_of(self) -> dict[str, list[str]]:
        """fixed_by per inducing SHA, fixes ordered by (fix time, SHA): independent of walk order."""
        return {sha: [f for f, _ in sorted(fixes.items(), key=lambda kv: (kv[1], kv[0]))]
                for sha, fixes in self.fixed_by.items()}  # fmt: skip


def save_state(path: Path, state: MiningState) -> None:
    """Write the state atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open("wb") as handle:
            handle.write(_MAGIC + _FORMAT_LINE + b"%d\n" % FORMAT)
            pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)  # nothing half-written stays behind
        exc.filename = str(path)  # the error names the state file, not the temp file
        raise


def load_state(path: Path) -> MiningState:
    """Read a state file written by save_state; a foreign or outdated file is a MiningError."""
    try:
        with path.open("rb") as handle:
            if handle.read(len(_MAGIC)) != _MAGIC:
                raise MiningError(f"{path}: not a commitrisk mining state file")
            if handle.read(len(_FORMAT_LINE)) != _FORMAT_LINE:
                raise OutdatedState(f"{path}: mining state format 1-5, expected {FORMAT} (another commitrisk version)")
            version = int(handle.readline(20))
            if version != FORMAT:
                raise OutdatedState(
                    f"{path}: mining state format {version}, expected {FORMAT} (another commitrisk version)"
                )
            state = pickle.load(handle)  # our own file format, written by save_state
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError) as exc:
        raise MiningError(f"{path}: unreadable mining state ({exc})") from exc
    if not isinstance(state, MiningState):
        raise MiningError(f"{path}: not a commitrisk mining state file")
    return state


def previous_state(path: Path | None, note: Callable[[str], None]) -> MiningState | None:
    """The state saved at `path`; None when there is none, or when another commitrisk version wrote it (`note`
    hears why: the caller starts over, and a mine then replaces it)."""
    if path is None or not path.exists():
        return None
    try:
        return load_state(path)
    except OutdatedState as exc:
        note(f"{exc}; mining from scratch")
        return None


class OutdatedState(MiningError):
    """Our own state file, of another format version: safe to replace by mining from scratch (its rules changed)."""
