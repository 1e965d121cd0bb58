"""The predictors this process serves: build + self-test a version, then swap one reference.

Requests read `registry.served` once and use that snapshot to the end, so a reload never changes the
model under a request in flight. A shadow/challenger predictor is one more field of `Served` built by the
same `build` and followed through its own pointer; routes keep answering with `served.champion`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER, MAX_CHALLENGERS
from app.errors import CommitRiskError, InvalidModel, ModelNotFound, ModelNotReady, RepositoryError
from app.metrics import ServiceMetrics
from app.pointers import PointerStamp
from app.predictor import Predictor
from app.repository import ModelRepository

log = logging.getLogger("commitrisk.registry")


@dataclass(frozen=True, slots=True)
class Served:
    """One consistent snapshot of what this process answers with."""

    champion: Predictor
    loaded_at: float
    shadows: tuple[Predictor, ...] = ()  # scored after the champion (app/shadow.py); they never answer


class ModelRegistry:
    """Owns the served snapshot; `reload` and `sync` are the only ways it changes."""

    def __init__(
        self,
        repository: ModelRepository,
        metrics: ServiceMetrics,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        max_shadows: int = MAX_CHALLENGERS,
    ) -> None:
        self.repository = repository
        self.metrics = metrics
        self.max_shadows = max_shadows
        self._threads = (intra_op_threads, inter_op_threads)
        self.served: Served | None = None
        self.reason = "no model loaded yet"
        self._lock = threading.Lock()
        # Loads run on this one thread (callers await `loader.submit(...)`): they are serialised, stay off
        # the event loop, and allocate from one malloc arena, so RSS plateaus over many reloads (measured).
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="commitrisk-model-loader")
        self._seen_stamp: PointerStamp | None = None
        self._failed: tuple[int, PointerStamp | None] | None = None
        self._shadow_seen: tuple[PointerStamp | None, int | None] | None = None
        self._last_failure: str | None = None  # warnings said once per cause, not once per poll
        self._shadow_failure: str | None = None

    @property
    def pid(self) -> int:
        """The process this registry lives in (each uvicorn worker has its own)."""
        return os.getpid()

    def require(self) -> Served:
        """The served snapshot; ModelNotReady (with the reason) when nothing is loaded."""
        served = self.served
        if served is None:
            raise ModelNotReady(f"no model is being served: {self.reason}")
        return served

    def build(self, version: int) -> Predictor:
        """A validated, self-tested predictor for a version on disk (nothing is swapped)."""
        manifest = self.repository.manifest(version)
        if manifest.version != version:
            raise InvalidModel(f"model version {version}: manifest says version {manifest.version}")
        try:
            model_bytes = self.repository.model_path(version).read_bytes()
        except FileNotFoundError as exc:
            raise InvalidModel(f"model version {version}: cannot read model.onnx: {exc}") from None
        except OSError as exc:  # permissions, I/O: the storage's fault, not the version's
            raise RepositoryError(f"model version {version}: cannot read model.onnx: {exc.strerror or exc}") from None
        return Predictor.load(manifest, model_bytes, *self._threads)

    def reload(self, version: int | None = None) -> Predictor:
        """Load `version` (and point the champion at it) or the current target; swap only on success."""
        with self._lock:
            started = time.perf_counter()
            try:
                target = self.repository.target() if version is None else version
                if target is None:
                    raise ModelNotFound(f"no model version is published in {self.repository.root}")
                predictor = self.build(target)
                if version is not None:
                    self.repository.set_pointer(version, CHAMPION_POINTER)
            except CommitRiskError as exc:
                self.metrics.observe_reload("failure", time.perf_counter() - started)
                if self.served is None:
                    self.reason = exc.message
                raise
            self._swap(predictor)
            self.metrics.observe_reload("success", time.perf_counter() - started)
            return predictor

    def sync(self) -> bool:
        """Converge to the pointers (cheap stats when unchanged); True when a new champion was swapped in."""
        swapped = self._sync_champion()
        self.sync_shadow()  # after the champion: the shadows depend on which version it is
        return swapped

    def _sync_champion(self) -> bool:
        try:
            stamp = self.repository.pointer_stamp()
        except CommitRiskError as exc:  # an unreadable models directory: keep serving what is loaded
            self._note_failure(exc, None, None)
            return False
        if stamp is not None and stamp == self._seen_stamp and self.served is not None:
            return False
        try:
            target = self.repository.target()
        except CommitRiskError as exc:
            self._note_failure(exc, None, stamp)
            return False
        self._seen_stamp = stamp
        served = self.served
        if target is None:
            if served is None:
                self.reason = f"no model version is published in {self.repository.root}"
            return False
        if (served is not None and served.champion.version == target) or self._failed == (target, stamp):
            return False
        try:
            self.reload()
        except CommitRiskError as exc:
            self._note_failure(exc, target, stamp)
            return False
        return True

    def _note_failure(self, exc: CommitRiskError, target: int | None, stamp: PointerStamp | None) -> None:
        # Remember the failure so a broken pointer is retried only once it changes, not every second.
        if target is not None:
            self._failed = (target, stamp)
        self._seen_stamp = stamp
        if exc.message != self._last_failure:  # an unreadable directory fails every poll: say it once
            log.warning("model sync failed: %s %s", exc.message, exc.details)
        self._last_failure = exc.message

    def _swap(self, predictor: Predictor) -> None:
        previous = self.served
        self.served = Served(predictor, time.time(), previous.shadows if previous else ())
        self._failed = None
        self._last_failure = None
        self.reason = ""
        self.metrics.model_swapped(previous.champion if previous else None, predictor)
        log.info("serving model version %s (pid %s)", predictor.version, os.getpid())

    # --- shadow (challenger) loading: follows the `challenger` pointer like `sync` follows the champion ---

    def sync_shadow(self) -> bool:
        """Load (build + self-test) the listed challengers as shadows, or drop them; True when the set changed."""
        served = self.served
        if served is None:
            return False
        try:
            stamp = self.repository.pointer_stamp(CHALLENGER_POINTER)
        except CommitRiskError as exc:  # fails every poll while the directory is unreadable: say it once
            if exc.message != self._shadow_failure:
                log.warning("challenger pointer unreadable (the champion keeps serving): %s", exc.message)
            self._shadow_failure = exc.message
            return False
        self._shadow_failure = None
        seen = (stamp, served.champion.version)
        if seen == self._shadow_seen:
            return False  # pointer and champion unchanged since the last look (a cheap stat)
        self._shadow_seen = seen
        try:
            listed = self.repository.pointer_list(CHALLENGER_POINTER)
        except CommitRiskError as exc:
            log.warning("challenger pointer unreadable (the champion keeps serving): %s", exc.message)
            return False
        # The newest `max_shadows`, without duplicates; a challenger equal to the champion would shadow itself.
        candidates = [v for v in dict.fromkeys(listed) if v != served.champion.version]
        wanted = candidates[-self.max_shadows :] if self.max_shadows else []
        if wanted == [p.version for p in served.shadows]:
            return False
        loaded = {p.version: p for p in served.shadows}
        shadows = []
        for version in wanted:
            try:
                shadows.append(loaded.get(version) or self.build(version))
            except CommitRiskError as exc:  # one broken challenger must not take the others down
                log.warning("shadow %s not loaded (the champion serves on): %s %s", version, exc.message, exc.details)
        with self._lock:
            if self.served is None or tuple(shadows) == self.served.shadows:
                return False
            self.served = replace(self.served, shadows=tuple(shadows))
        log.info("shadow models: %s", [p.version for p in shadows] or "none")
        return True
