"""The non-metric columns of a synthetic commit: ids, authors, messages, fixing commits, file paths.

None of these are model features; they only need to be well-formed and consistent with the metrics
(paths agree with nf/nd/ns/files_count, `fixed_by` names a later fix commit of the same repository).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from training.synthetic.spec import SyntheticSpec

if TYPE_CHECKING:
    import pandas as pd

_FIX = ("Fix NPE in", "Fix race in", "Fix wrong result of", "Fix crash in", "Resolve bug in")
# No word of the fix-keyword rule (../shared/METRICS.md) may appear in a non-fix message.
_OTHER = ("Add support for", "Refactor", "Update", "Improve performance of", "Clean up", "Document")
_NOUNS = ("pool", "connection", "parser", "config", "injector", "cluster", "client", "binding", "cache")


def identities(spec: SyntheticSpec, frame: pd.DataFrame, repo: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Identity columns for `frame` (author_date, buggy, is_fix_commit, nf, nd, ns, files_count set)."""
    import pandas as pd

    rows = len(frame)
    repo_ids = [rng.bytes(12).hex() for _ in range(int(repo.max()) + 1)]
    blob = rng.bytes(20 * rows).hex()
    hashes = np.array([blob[i * 40 : (i + 1) * 40] for i in range(rows)], dtype=object)
    repo_id = np.array(repo_ids, dtype=object)[repo]
    authors = _authors(spec, rows, rng) + repo * spec.authors_per_repository
    fix = frame["is_fix_commit"].to_numpy(bool)
    words = np.where(fix, rng.integers(0, len(_FIX), rows), rng.integers(0, len(_OTHER), rows))
    nouns = rng.integers(0, len(_NOUNS), rows)
    messages = [f"{(_FIX if f else _OTHER)[w]} {_NOUNS[n]}" for f, w, n in zip(fix, words, nouns, strict=True)]
    return pd.DataFrame(
        {
            "commit_id": repo_id + "_" + hashes,
            "repository_id": repo_id,
            "commit_hash": hashes,
            "author_name": [f"Developer {a}" for a in authors],
            "author_email": [f"dev{a}@example.com" for a in authors],
            "commit_message": messages,
            "fixed_by": _fixed_by(frame["buggy"].to_numpy(bool), fix, repo, hashes, rng),
            "files": _files(frame),
            "bug_potential": np.full(rows, np.nan),
        },
        index=frame.index,
    )


def _authors(spec: SyntheticSpec, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Author ranks from a Zipf law whose top author has the real average share of commits."""
    from scipy.optimize import brentq

    ranks = np.arange(1, spec.authors_per_repository + 1, dtype=np.float64)

    def top_share(s: float) -> float:
        return float(1.0 / np.sum(ranks**-s))

    exponent = brentq(lambda s: top_share(s) - spec.top_author_share, 0.01, 10.0)
    weights = ranks**-exponent
    return np.asarray(rng.choice(len(ranks), size=rows, p=weights / weights.sum()), dtype=np.int64)


def _fixed_by(
    buggy: np.ndarray, fix: np.ndarray, repo: np.ndarray, hashes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For a buggy row, one of the next 30 fix commits of its repository (a fresh SHA when none)."""
    out = np.full(len(buggy), "", dtype=object)
    for r in np.unique(repo):
        fixes = np.flatnonzero(fix & (repo == r))
        for i in np.flatnonzero(buggy & (repo == r)):
            k = int(np.searchsorted(fixes, i, side="right"))
            if k < len(fixes):
                out[i] = hashes[fixes[k + int(rng.integers(0, min(30, len(fixes) - k)))]]
            else:
                out[i] = rng.bytes(20).hex()
    return out


def _files(frame: pd.DataFrame) -> np.ndarray:
    """Paths with exactly ns subsystems and nd directories over nf counted files, then non-source files."""
    counts = frame[["ns", "nd", "nf", "files_count"]].to_numpy(np.int64)
    # A path list depends only on the four counts: build each distinct combination once.
    combos, inverse = np.unique(counts, axis=0, return_inverse=True)
    texts = [
        ";".join(
            [f"mod{(j % nd) % ns}/pkg{j % nd}/Source{j}.java" for j in range(nf)]
            + [f"mod0/docs/notes{j}.md" for j in range(total - nf)]
        )
        for ns, nd, nf, total in combos.tolist()
    ]
    return np.array(texts, dtype=object)[inverse.reshape(-1)]
