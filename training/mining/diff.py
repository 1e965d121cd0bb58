"""One commit's diff against its first parent and the size/diffusion metrics (METRICS.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.mining.language import Classifier, directory, line_count, subsystem

if TYPE_CHECKING:
    import pygit2

_GITLINK = 0o160000  # a submodule entry: its object lives in another repository
_CACHE_LIMIT = 50_000
# Above this many added + deleted files (bulk imports, generated documentation trees) renames are paired by
# identical content only: libgit2's similarity pass loads and fingerprints every candidate blob (seconds a
# commit) and, past its limit of 200 pairs, pairs the first ones by path order anyway (docs/mining.md).
HUGE_COMMIT = 1000

# (old_start, old_lines, new_start, new_lines) of a 0-context hunk, as git numbers them: 1-based, and a hunk that
# adds lines only has old_start = the old line after which they go (0: at the top), one deleting only the like.
Hunk = tuple[int, int, int, int]
# (la, ld, ha, hd, deleted ranges) of one blob pair's whitespace-ignored 0-context patch, and the hunks of its
# plain patch when line origins are tracked (None: a binary pair, or origins not asked for).
LineStats = tuple[int, int, int, int, tuple[tuple[int, int], ...], tuple[Hunk, ...] | None]
Hunks = tuple[Hunk, ...] | None  # a plain 0-context patch's hunks; None: binary (origins cannot follow it)


class PatchCache(dict[tuple[bytes, bytes], LineStats]):
    """Line statistics by (old blob, new blob): cherry-picks, reverts and release branches repeat the same
    change (~10% of the patches of a real history), and a patch of a large file costs milliseconds."""

    def remember(self, key: tuple[bytes, bytes], stats: LineStats) -> None:
        """Store, forgetting everything first once full (bounded memory, no bookkeeping per hit)."""
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[key] = stats


def decode_path(raw: bytes) -> str:
    """Lossless text form of a git path (non-UTF-8 bytes survive as surrogates)."""
    return raw.decode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """Text safe to write as UTF-8: surrogates from non-UTF-8 bytes become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class FileChange:
    """One delta: status letter (A/M/D/R/T), paths, and its line statistics when it is a source file."""

    status: str
    path: str  # new path; the old path for a deletion
    old_path: str
    source: bool  # counted type (enry), whatever the size of the change
    la: int = 0
    ld: int = 0
    ha: int = 0
    hd: int = 0
    lines: int = 0  # line count after the change (before it for a deletion)
    deleted: tuple[tuple[int, int], ...] = ()  # (old_start, old_lines) of hunks deleting lines: SZZ input
    # Line origins (origins.py), only when asked for: the plain (whitespace-sensitive, as git blame's) patch
    # against the first parent, and a merge's against each other parent at the same path (None: not there).
    hunks: Hunks = ()
    sides: tuple[Hunks, ...] = ()

    @property
    def counted(self) -> bool:
        """A counted file: source type and a non-whitespace change."""
        return self.source and self.la + self.ld > 0


def tree_diff(repo: pygit2.Repository, commit: pygit2.Commit) -> pygit2.Diff:
    """The commit's tree against its first parent's (root: the empty tree), with METRICS.md's options (and
    exact renames only in a huge commit: HUGE_COMMIT)."""
    from pygit2.enums import DiffFind, DiffOption

    flags = DiffOption.IGNORE_WHITESPACE
    if commit.parent_ids:
        parent_tree = repo[commit.parent_ids[0]].tree
        diff = parent_tree.diff_to_tree(commit.tree, flags=flags, context_lines=0, interhunk_lines=0)
    else:
        diff = commit.tree.diff_to_tree(flags=flags, context_lines=0, interhunk_lines=0, swap=True)
    find = DiffFind.FIND_RENAMES
    if len(diff) > HUGE_COMMIT and sum(d.status_char() in "AD" for d in diff.deltas) > HUGE_COMMIT:
        find |= DiffFind.FIND_EXACT_MATCH_ONLY
    diff.find_similar(flags=find, rename_threshold=50, rename_limit=200)
    return diff


def file_changes(
    repo: pygit2.Repository,
    commit: pygit2.Commit,
    classifier: Classifier,
    patches: bool = True,
    cache: PatchCache | None = None,
    origins: bool = False,
) -> list[FileChange]:
    """Every delta of the commit, with line statistics computed only for source files (and not at all with
    `patches=False`: a merge is no row, its history needs only which counted-type paths it touched); with
    `origins`, also each source file's plain hunks (FileChange.hunks, .sides). A cache serves one `origins` value."""
    from pygit2.enums import DiffOption

    diff = tree_diff(repo, commit)
    others = [repo[p].tree for p in commit.parent_ids[1:]] if origins else []
    changes: list[FileChange] = []
    for index, delta in enumerate(diff.deltas):
        status = delta.status_char()
        old_path = decode_path(delta.old_file.raw_path)
        side = delta.old_file if status == "D" else delta.new_file
        path = decode_path(side.raw_path)
        if side.mode == _GITLINK:
            changes.append(FileChange(status, path, old_path, False))
            continue
        if classifier.excluded(printable(path)):  # decided by the path: the blob need not be read
            changes.append(FileChange(status, path, old_path, False))
            continue
        blob = repo[side.id]
        data: bytes = blob.data  # type: ignore[attr-defined]
        if not classifier.is_source(printable(path), data):
            changes.append(FileChange(status, path, old_path, False))
            continue
        key = (delta.old_file.id.raw, delta.new_file.id.raw)
        stats = cache.get(key) if cache is not None else None
        # Both versions are blobs (a submodule replaced by a file is a deletion and an addition): their patches
        # come from the blobs read here, where a tree diff's patch would read them again — and only when the
        # pair's patches are not cached already and are asked for.
        fresh = stats is None and status not in "AD" and (patches or origins)
        old = repo[delta.old_file.id] if fresh else None
        if not patches:
            hunks: Hunks = ()
            sides: tuple[Hunks, ...] = ()
            if origins and status != "D":
                # A merge of an unchanged base often repeats a branch commit's blob pair: its cached hunks serve.
                hunks = stats[5] if stats is not None else plain_hunks(old, blob)
                sides = tuple(_side_hunks(repo, tree, side.raw_path, blob) for tree in others)
            changes.append(FileChange(status, path, old_path, True, hunks=hunks, sides=sides))
            continue
        if stats is None:
            plain = plain_hunks(old, blob) if origins and status != "D" else ()
            if old is None:
                patch = diff[index]
                assert patch is not None
            else:  # the tree diff's options (METRICS.md)
                patch = old.diff(blob, DiffOption.IGNORE_WHITESPACE, context_lines=0, interhunk_lines=0)  # type: ignore[attr-defined]
            stats = (*_line_stats(patch), plain)
            if cache is not None:
                cache.remember(key, stats)
        la, ld, ha, hd, deleted, plain = stats
        lines = line_count(data) if la + ld else 0
        changes.append(FileChange(status, path, old_path, True, la, ld, ha, hd, lines, deleted, plain))
    return changes


def plain_hunks(old: pygit2.Object | None, new: pygit2.Object) -> Hunks:
    """The hunks taking blob `old` (None: an addition) to blob `new`, as git blame's diff finds them:
    whitespace counts, 0 context lines, the indent heuristic; None for a binary pair."""
    if old is None:  # git's count: an empty file has no line (language.line_count, lt's, counts it as one)
        data: bytes = new.data  # type: ignore[attr-defined]
        lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        return ((0, 0, 1, lines),) if lines else ()
    if old.id == new.id:
        return ()
    from pygit2.enums import DiffOption

    patch = old.diff(new, DiffOption.INDENT_HEURISTIC, context_lines=0, interhunk_lines=0)  # type: ignore[attr-defined]
    if patch.delta.is_binary:
        return None
    return tuple((h.old_start, h.old_lines, h.new_start, h.new_lines) for h in patch.hunks)


def _side_hunks(repo: pygit2.Repository, tree: pygit2.Tree, raw_path: bytes, new: pygit2.Object) -> Hunks:
    """A merge's hunks from another parent's version of the same path; None where that parent has no such file."""
    try:
        entry = tree[decode_path(raw_path)]
    except (KeyError, UnicodeError):  # not there (or a non-UTF-8 path pygit2 cannot look up: origins unknown)
        return None
    if entry.type_str != "blob":
        return None
    return plain_hunks(repo[entry.id], new)


def _line_stats(patch: pygit2.Patch) -> tuple[int, int, int, int, tuple[tuple[int, int], ...]]:
    """Added/deleted lines and hunks of one 0-context patch (a hunk's old/new line counts are exactly its
    deleted/added lines)."""
    la = ld = ha = hd = 0
    deleted: list[tuple[int, int]] = []
    for hunk in patch.hunks:
        if hunk.new_lines:
            ha += 1
            la += hunk.new_lines
        if hunk.old_lines:
            hd += 1
            ld += hunk.old_lines
            deleted.append((hunk.old_start, hunk.old_lines))
    return la, ld, ha, hd, tuple(deleted)


def size_metrics(changes: list[FileChange]) -> dict[str, float]:
    """ns, nd, nf, entropy, la, ld, ha, hd, lt over the counted files."""
    counted = [c for c in changes if c.counted]
    nf = len(counted)
    la = sum(c.la for c in counted)
    ld = sum(c.ld for c in counted)
    churn = la + ld
    entropy = 0.0
    if nf > 1:
        for c in counted:
            p = (c.la + c.ld) / churn
            entropy -= p * math.log2(p)
    return {
        "ns": len({subsystem(c.path) for c in counted}),
        "nd": len({directory(c.path) for c in counted}),
        "nf": nf,
        "entropy": entropy,
        "la": la,
        "ld": ld,
        "ha": sum(c.ha for c in counted),
        "hd": sum(c.hd for c in counted),
        "lt": sum(c.lines for c in counted) / nf if nf else 0.0,
    }
