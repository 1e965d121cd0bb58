"""Moving the serving pointers and telling the service: deploy after retraining, promote, roll back.

Several challengers may compete in shadow at once (at most MAX_CHALLENGERS; a new one evicts the oldest).
`promote` makes a version champion, or finishes a shadow deployment (a challenger becomes champion); `rollback`
undoes the newest pointer move still in effect: it drops the challenger that move put in shadow, or points the
champion back at its previous version. With a service URL the champion moves are followed by POST /reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER, MAX_CHALLENGERS
from app.errors import CommitRiskError
from app.repository import ModelRepository

DeployMode = Literal["none", "direct", "shadow"]
Pointer = Literal["champion", "challenger"]
RELOAD_TIMEOUT = 60.0
SHADOW = "shadow"  # the history action of a challenger put in shadow: the move `rollback` undoes by dropping it


class DeployError(RuntimeError):
    """A pointer could not be moved or the service refused the reload; the message says which."""


@dataclass(frozen=True)
class Deployment:
    """What one deployment step did."""

    mode: str
    champion: int | None
    challenger: int | None
    reloaded: dict[str, Any] | None
    note: str
    challengers: tuple[int, ...] = ()  # every challenger in shadow after this step

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for the audit record / CLI."""
        return {
            "mode": self.mode,
            "champion": self.champion,
            "challenger": self.challenger,
            "challengers": list(self.challengers),
            "reload": self.reloaded,
            "note": self.note,
        }


def reload_service(url: str, token: str | None) -> dict[str, Any]:
    """POST {url}/reload with the bearer token; the service's answer, or DeployError with its message."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(f"{url.rstrip('/')}/reload", headers=headers, json={}, timeout=RELOAD_TIMEOUT)
    except httpx.HTTPError as exc:
        raise DeployError(f"{url}/reload: {exc}") from None
    if response.status_code != 200:
        raise DeployError(f"{url}/reload answered {response.status_code}: {response.text[:300]}")
    answer: dict[str, Any] = response.json()
    return answer


def deploy(models_dir: Path, version: int, mode: DeployMode, url: str | None, token: str | None) -> Deployment:
    """direct: champion → version (+ reload); shadow: add version to the challengers; none: leave the pointers."""
    repository = ModelRepository(models_dir)
    try:
        if mode == "direct":
            repository.set_pointer(version, CHAMPION_POINTER, action="retrain")
            # The service also follows the pointer file on its own; the call makes the swap immediate and
            # reports a failed self-test now instead of in a log line.
            answer = reload_service(url, token) if url else None
            return Deployment("direct", version, repository.pointer(CHALLENGER_POINTER), answer, "")
        if mode == "shadow":
            listed = [v for v in repository.pointer_list(CHALLENGER_POINTER) if v != version]
            listed.append(version)
            evicted, kept = listed[:-MAX_CHALLENGERS], listed[-MAX_CHALLENGERS:]
            repository.set_pointer_list(kept, CHALLENGER_POINTER, action=SHADOW)
            note = f"the service scores {_versions(kept)} in shadow"
            if evicted:
                note += f"; {_versions(evicted)} dropped (at most {MAX_CHALLENGERS} challengers compete)"
            return Deployment("shadow", repository.pointer(), version, None, note, tuple(kept))
        return Deployment("none", repository.pointer(), None, None, f"version {version} published; pointers unchanged")
    except CommitRiskError as exc:
        raise DeployError(exc.message) from None


def promote(
    models_dir: Path,
    version: int | None = None,
    *,
    challenger: bool = False,
    url: str | None = None,
    token: str | None = None,
) -> Deployment:
    """Champion → `version`; with `challenger`, champion → the challenger (`version` when several), which leaves
    the challenger list (a shadow deployment finished)."""
    repository = ModelRepository(models_dir)
    rest: list[int] = []
    try:
        if not challenger:
            if version is None:
                raise DeployError("VERSION: name the version to promote (or --challenger for a shadow challenger)")
            repository.set_pointer(version, CHAMPION_POINTER, action="promote")
            chosen, note = version, ""
        else:
            listed = list(repository.pointer_list(CHALLENGER_POINTER))
            chosen = _pick(models_dir, listed, version, "promote")
            repository.set_pointer(chosen, CHAMPION_POINTER, action="promote-challenger")
            rest = [v for v in listed if v != chosen]
            repository.set_pointer_list(rest, CHALLENGER_POINTER, action="promoted")
            note = f"challenger {chosen} is now champion"
            if rest:
                note += f"; {_versions(rest)} still compete in shadow"
    except CommitRiskError as exc:
        raise DeployError(exc.message) from None
    answer = reload_service(url, token) if url else None
    return Deployment("promote", chosen, None, answer, note, tuple(rest))


def rollback(
    models_dir: Path,
    *,
    pointer: Pointer | None = None,
    version: int | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Deployment:
    """Undo the newest pointer move still in effect (or one on `pointer`): drop challenger `version` (default:
    the one that move added, else the newest), or move the champion back one version (+ reload)."""
    repository = ModelRepository(models_dir)
    try:
        listed = list(repository.pointer_list(CHALLENGER_POINTER))
        newest_pointer, added = _newest_move(repository, listed)
        if version is not None and pointer == "champion":
            raise DeployError(f"VERSION: the champion goes back, not to {version} (that is `models promote {version}`)")
        if version is not None and pointer is None:
            pointer = "challenger"
        if (pointer or newest_pointer) == CHALLENGER_POINTER:
            default = added if added is not None and pointer is None else (listed[-1] if listed else None)
            dropped = _pick(models_dir, listed, version if version is not None else default, "drop")
            rest = [v for v in listed if v != dropped]
            repository.set_pointer_list(rest, CHALLENGER_POINTER, action="rollback")
            note = f"shadow challenger {dropped} dropped"
            return Deployment("rollback", repository.pointer(), None, None, note, tuple(rest))
        previous = repository.rollback(CHAMPION_POINTER)
    except CommitRiskError as exc:
        raise DeployError(exc.message) from None
    answer = reload_service(url, token) if url else None
    return Deployment("rollback", previous, None, answer, "", tuple(listed))


def _newest_move(repository: ModelRepository, listed: list[int]) -> tuple[str, int | None]:
    """Which pointer the newest move still in effect changed: a challenger put in shadow (and which), else the
    champion. Other challenger rewrites (drops, promotions) are not moves to undo; they are walked past."""
    for move in reversed(repository.history()):
        if move.pointer == CHAMPION_POINTER:
            return CHAMPION_POINTER, None
        if move.pointer == CHALLENGER_POINTER and move.action == SHADOW and move.version in listed:
            return CHALLENGER_POINTER, move.version
    # No history (e.g. a directory from before it was kept): a listed challenger is the newest step.
    return (CHALLENGER_POINTER, None) if listed else (CHAMPION_POINTER, None)


def _pick(models_dir: Path, listed: list[int], version: int | None, verb: str) -> int:
    if not listed:
        raise DeployError(f"{models_dir}: no challenger pointer: nothing to {verb}")
    if version is None:
        if len(listed) > 1:
            raise DeployError(
                f"{models_dir}: {len(listed)} challengers ({_versions(listed)}): name one with --challenger N"
            )
        return listed[0]
    if version not in listed:
        raise DeployError(f"{models_dir}: version {version} is not a challenger (challengers: {_versions(listed)})")
    return version


def _versions(listed: list[int]) -> str:
    return ", ".join(str(v) for v in listed)
