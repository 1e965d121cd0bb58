"""Local copies of remote repositories for fleet mining: a bare clone in a cache directory, fetched on later runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from training.mining.repository import MiningError

# Every branch and tag, pruned: a deleted branch or moved tag disappears here as on the remote, and the miner's
# state forgets what no ref reaches any more. Pull-request refs (refs/pull/*) are not history: not fetched.
_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
# scp-like `user@host:path` besides scheme URLs (https://, ssh://, git://, file://).
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/\s]+@[^/\s]+:")


class MirrorError(MiningError):
    """A clone or fetch failed: maybe for a moment (network, remote down), so worth retrying, unlike bad input."""


def is_url(source: str) -> bool:
    """True when `source` names a remote (scheme URL or scp-like `user@host:path`), not a local path."""
    return _URL.match(source) is not None


def _git(args: list[str], what: str, timeout: float) -> None:
    # No prompt for credentials: a repository that needs them fails with git's message instead of hanging.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise MiningError("git: not found on PATH (fleet mining clones and fetches with the git command)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MirrorError(f"{what}: git took more than {timeout:g} s") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise MirrorError(f"{what}: {lines[-1] if lines else f'git exited with {done.returncode}'}")


def local_copy(url: str, cache: Path, name: str, timeout: float = 3600.0) -> Path:
    """The bare clone of `url` at `cache/<name>.git`: cloned on first use, fetched (and pruned) afterwards.

    A clone goes to a temporary directory renamed into place once complete, so a killed clone is no repository.
    """
    target = cache / f"{name}.git"
    if target.is_dir():
        _git(["-C", str(target), "fetch", "--quiet", "--prune", "--no-write-fetch-head", "--", url, *_REFSPECS],
             f"{url}: fetch", timeout)  # fmt: skip
        return target
    cache.mkdir(parents=True, exist_ok=True)
    temp = cache / f".{name}.git.{os.getpid()}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        _git(["clone", "--bare", "--quiet", "--", url, str(temp)], f"{url}: clone", timeout)
        temp.rename(target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target
