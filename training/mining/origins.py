"""Line origins: which commit last changed each line of every source file, carried along the walk (SZZ's blame).

`git blame` answers the same question one file of one fix at a time by walking the history backwards from the
fix; the walk already visits every commit forwards, so each commit's diff moves the origins on for the price of
a few array slices, and a fix reads its deleted lines' origins from its parent's state. Merges pass each line
to the first parent in which it is unchanged, as git blame does; renames carry the old path's origins. Origins
are commit indexes of History; a line whose origin is unknown (its file was not tracked then) is UNKNOWN.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence

from training.mining.diff import FileChange, Hunk

UNKNOWN = -1
_PENDING = -2  # a merge's line not yet passed to any parent
EMPTY = array("i")
Origins = dict[str, array]  # path → one commit index per line


def carry(old: array, hunks: Sequence[Hunk], own: int) -> array:
    """The new version's origins: unchanged lines keep theirs from `old`, the hunks' new lines are `own`'s."""
    new = array("i")
    at = 0  # the next old line (0-based) not yet copied
    for old_start, old_lines, new_start, new_lines in hunks:
        end = old_start if old_lines == 0 else old_start - 1
        new.extend(old[at:end])
        # The new side's numbering is authoritative: an `old` shorter than the file (its origins were not
        # tracked from the start) is padded with UNKNOWN rather than shifting every later line.
        target = new_start if new_lines == 0 else new_start - 1
        if len(new) < target:
            new.extend(array("i", [UNKNOWN]) * (target - len(new)))
        elif len(new) > target:
            del new[target:]
        new.extend(array("i", [own]) * new_lines)
        at = end + old_lines
    new.extend(old[at:])
    return new


def added(lines: int, own: int) -> array:
    """Origins of a file this commit adds with `lines` lines."""
    return array("i", [own]) * lines


def combine(first: array, hunks: Sequence[Hunk], sides: Iterable[tuple[array, Sequence[Hunk]]], own: int) -> array:
    """A merge's origins for one file: each line from the first parent in which it is unchanged (`first` with the
    first parent's hunks, then each other parent's origins and hunks), else the merge's own (git blame's order)."""
    new = carry(first, hunks, _PENDING)
    holes = [(start - 1, start - 1 + count) for _, _, start, count in hunks if count]  # [begin, end) of new lines
    for old, side_hunks in sides:
        if not holes:
            break
        candidate = carry(old, side_hunks, _PENDING)
        left = []
        for begin, end in holes:
            taken = candidate[begin:end]
            if len(taken) == end - begin and _PENDING not in taken:
                new[begin:end] = taken  # the usual case: the side parent has the whole range (one slice)
                continue
            for i in range(begin, end):
                origin = candidate[i] if i < len(candidate) else _PENDING
                if origin == _PENDING:
                    left.append((i, i + 1))
                else:
                    new[i] = origin
        holes = left
    for begin, end in holes:
        new[begin:end] = array("i", [own]) * (end - begin)
    return new


def advance(parents: Sequence[Mapping[str, array]], changes: list[FileChange], own: int) -> Origins:
    """Every source file's origins after commit `own`, from its parents' (first parent first) and its changes
    against the first parent (FileChange.hunks; a merge's also carry each other parent's, FileChange.sides)."""
    lines: Origins = dict(parents[0]) if parents else {}
    for ch in changes:
        old = lines.pop(ch.old_path, EMPTY)
        if ch.path != ch.old_path:
            lines.pop(ch.path, None)
        if ch.status == "D" or not ch.source or ch.hunks is None:
            continue  # deleted, not a source file, or a binary version: nothing (more) to track
        if ch.status == "A":
            old = EMPTY
        if len(parents) > 1:
            sides = [(side.get(ch.path, EMPTY), hunks) for side, hunks in zip(parents[1:], ch.sides, strict=False)
                     if hunks is not None]  # fmt: skip
            lines[ch.path] = combine(old, ch.hunks, sides, own)
        else:
            lines[ch.path] = carry(old, ch.hunks, own) if ch.hunks else old
    return lines


def blamed(lines: Mapping[str, array], deleted: Iterable[tuple[str, Sequence[tuple[int, int]]]]) -> set[int]:
    """The origins (commit indexes) of the deleted lines: per old path, (start, count) ranges, 1-based."""
    found: set[int] = set()
    for path, ranges in deleted:
        origins = lines.get(path, EMPTY)
        for start, count in ranges:
            found.update(origins[start - 1 : start - 1 + count])
    found.discard(UNKNOWN)
    return found
