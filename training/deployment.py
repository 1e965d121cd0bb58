"""Deployment after retraining: move a pointer (direct → champion, shadow → challenger) and tell the service.

`commitrisk promote` finishes a shadow deployment (the challenger becomes champion), `commitrisk rollback`
undoes the last step (drops the shadow, or points the champion back at its previous version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER
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

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for the audit record / CLI."""
        return {
            "mode": self.mode,
            "champion": self.champion,
            "challenger": self.challenger,
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
    """direct: champion → version (+ reload); shadow: challenger → version; none: leave the pointers."""
    try:
        if mode == "direct":
            publish.write_pointer(models_dir, version, CHAMPION_POINTER, action="retrain")
            # The service also follows the pointer file on its own; the call makes the swap immediate and
            # reports a failed self-test now instead of in a log line.
            answer = reload_service(url, token) if url else None
            return Deployment("direct", version, publish.read_pointer(models_dir, CHALLENGER_POINTER), answer, "")
        if mode == "shadow":
            publish.write_pointer(models_dir, version, CHALLENGER_POINTER, action="shadow")
            champion = publish.read_pointer(models_dir)
            return Deployment("shadow", champion, version, None, "the service scores it in shadow")
    except publish.PublishError as exc:
        raise DeployError(str(exc)) from None
    champion = publish.read_pointer(models_dir)
    return Deployment("none", champion, None, None, f"version {version} published; pointers unchanged")


def promote(models_dir: Any, url: str | None, token: str | None) -> Deployment:
    """Finish a shadow deployment: champion → challenger, challenger cleared, service reloaded."""
    try:
        challenger = publish.read_pointer(models_dir, CHALLENGER_POINTER)
        if challenger is None:
            raise DeployError(f"{models_dir}: no challenger pointer: nothing to promote")
        publish.write_pointer(models_dir, challenger, CHAMPION_POINTER, action="promote-challenger")
        publish.clear_pointer(models_dir, CHALLENGER_POINTER)
    except publish.PublishError as exc:
        raise DeployError(str(exc)) from None
    answer = reload_service(url, token) if url else None
    return Deployment("promote", challenger, None, answer, f"challenger {challenger} is now champion")


def rollback(models_dir: Any, url: str | None, token: str | None) -> Deployment:
    """Undo: drop the shadow challenger if there is one, else move the champion back one version."""
    try:
        challenger = publish.read_pointer(models_dir, CHALLENGER_POINTER)
        if challenger is not None:
            publish.clear_pointer(models_dir, CHALLENGER_POINTER)
            champion = publish.read_pointer(models_dir)
            return Deployment("rollback", champion, None, None, f"shadow challenger {challenger} dropped")
        previous = publish.rollback(models_dir)
    except publish.PublishError as exc:
        raise DeployError(str(exc)) from None
    answer = reload_service(url, token) if url else None
    return Deployment("rollback", previous, None, answer, f"champion rolled back to {previous}")
