"""Deployment after retraining: move a pointer (direct → champion, shadow → challengers) and tell the service.

Several challengers may compete in shadow at once (at most MAX_CHALLENGERS; a new one evicts the oldest).
`commitrisk promote` finishes a shadow deployment (a challenger becomes champion), `commitrisk rollback` undoes
the last step (drops a shadow challenger, or points the champion back at its previous version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER, MAX_CHALLENGERS
from training import publish

DeployMode = Literal["none", "direct", "shadow"]
RELOAD_TIMEOUT = 60.0


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


def deploy(models_dir: Any, version: int, mode: DeployMode, url: str | None, token: str | None) -> Deployment:
    """direct: champion → version (+ reload); shadow: add version to the challengers; none: leave the pointers."""
    try:
        if mode == "direct":
            publish.write_pointer(models_dir, version, CHAMPION_POINTER, action="retrain")
            # The service also follows the pointer file on its own; the call makes the swap immediate and
            # reports a failed self-test now instead of in a log line.
            answer = reload_service(url, token) if url else None
            return Deployment("direct", version, publish.read_pointer(models_dir, CHALLENGER_POINTER), answer, "")
        if mode == "shadow":
            listed = [v for v in publish.read_pointer_list(models_dir, CHALLENGER_POINTER) if v != version]
            listed.append(version)
            evicted, kept = listed[:-MAX_CHALLENGERS], listed[-MAX_CHALLENGERS:]
            publish.write_pointer_list(models_dir, kept, CHALLENGER_POINTER, action="shadow")
            champion = publish.read_pointer(models_dir)
            note = f"the service scores {_versions(kept)} in shadow"
            if evicted:
                note += f"; {_versions(evicted)} dropped (at most {MAX_CHALLENGERS} challengers compete)"
            return Deployment("shadow", champion, version, None, note, tuple(kept))
    except publish.PublishError as exc:
        raise DeployError(str(exc)) from None
    champion = publish.read_pointer(models_dir)
    return Deployment("none", champion, None, None, f"version {version} published; pointers unchanged")


def promote(models_dir: Any, url: str | None, token: str | None, version: int | None = None) -> Deployment:
    """Finish a shadow deployment: champion → the challenger (`version` when several), which leaves the list."""
    try:
        listed = list(publish.read_pointer_list(models_dir, CHALLENGER_POINTER))
        chosen = _pick(models_dir, listed, version, "promote")
        publish.write_pointer(models_dir, chosen, CHAMPION_POINTER, action="promote-challenger")
        rest = [v for v in listed if v != chosen]
        publish.write_pointer_list(models_dir, rest, CHALLENGER_POINTER, action="promoted")
    except publish.PublishError as exc:
        raise DeployError(str(exc)) from None
    answer = reload_service(url, token) if url else None
    note = f"challenger {chosen} is now champion"
    if rest:
        note += f"; {_versions(rest)} still compete in shadow"
    return Deployment("promote", chosen, None, answer, note, tuple(rest))


def rollback(models_dir: Any, url: str | None, token: str | None, version: int | None = None) -> Deployment:
    """Undo: drop challenger `version` (default: the newest) if any, else move the champion back one version."""
    try:
        listed = list(publish.read_pointer_list(models_dir, CHALLENGER_POINTER))
        if listed or version is not None:
            dropped = _pick(models_dir, listed, version if version is not None else listed[-1], "drop")
            rest = [v for v in listed if v != dropped]
            publish.write_pointer_list(models_dir, rest, CHALLENGER_POINTER, action="rollback")
            champion = publish.read_pointer(models_dir)
            return Deployment("rollback", champion, None, None, f"shadow challenger {dropped} dropped", tuple(rest))
        previous = publish.rollback(models_dir)
    except publish.PublishError as exc:
        raise DeployError(str(exc)) from None
    answer = reload_service(url, token) if url else None
    return Deployment("rollback", previous, None, answer, f"champion rolled back to {previous}")


def _pick(models_dir: Any, listed: list[int], version: int | None, verb: str) -> int:
    if not listed:
        raise DeployError(f"{models_dir}: no challenger pointer: nothing to {verb}")
    if version is None:
        if len(listed) > 1:
            raise DeployError(
                f"{models_dir}: {len(listed)} challengers ({_versions(listed)}): name one with --challenger"
            )
        return listed[0]
    if version not in listed:
        raise DeployError(f"{models_dir}: version {version} is not a challenger (challengers: {_versions(listed)})")
    return version


def _versions(listed: list[int]) -> str:
    return ", ".join(str(v) for v in listed)
