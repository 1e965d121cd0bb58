"""Why a logged commit got its score: the factors `/predict` answered, every metric's effect, and a score per
dimension (size, history, experience), recomputed from the logged metrics by the model version that scored it.

The log keeps the metrics, not the factors; the same version on the same float32 row gives the same factors, so
they are recomputed on view (one onnxruntime run of 19 rows). A version no longer on disk cannot explain.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.contract import FEATURES
from app.errors import CommitRiskError
from app.predictor import Factor, Predictor
from app.reasons import format_number
from app.registry import ModelRegistry

# The three dimensions of a change (Kamei et al.'s metric families; diffusion and size are one group here).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "size": ("ns", "nd", "nf", "entropy", "la", "ld", "ha", "hd", "lt"),
    "history": ("ndev", "age", "nuc"),
    "experience": ("exp", "rexp", "sexp"),
}
CACHED_VERSIONS = 4  # versions no longer served, kept loaded for the pages (a model is a few MB)


@dataclass(frozen=True, slots=True)
class Effect:
    """One metric: its value, the training median, and p(commit) − p(commit with this metric at its median)."""

    feature: str
    value: float
    median: float
    effect: float

    @property
    def reason(self) -> str:
        """The tooltip: what moving this metric to its median does."""
        return (f"{self.feature} = {format_number(self.value)} (training median {format_number(self.median)}): "
                f"{self.effect * 100:+.1f} points")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Dimension:
    """A group of metrics and p(commit) − p(commit with all of them at their medians)."""

    name: str
    score: float
    effects: list[Effect]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The factors `/predict` answered (top k) and all 15 effects grouped by dimension."""

    probability: float
    factors: list[Factor]
    dimensions: list[Dimension]


class Explainer:
    """Scores logged rows again with the version that scored them: the served ones, or a few others loaded here."""

    def __init__(self, registry: ModelRegistry, top_k: int) -> None:
        self.registry = registry
        self.top_k = top_k
        self._loaded: OrderedDict[int, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def predictor(self, version: int) -> Predictor:
        """The predictor of `version`; ModelNotFound / InvalidModel when it cannot be loaded."""
        served = self.registry.served
        if served is not None:
            for predictor in (served.champion, *served.shadows):
                if predictor.version == version:
                    return predictor
        with self._lock:
            if version in self._loaded:
                self._loaded.move_to_end(version)
                return self._loaded[version]
            predictor = self.registry.build(version)  # validated and self-tested like a served model
            self._loaded[version] = predictor
            while len(self._loaded) > CACHED_VERSIONS:
                self._loaded.popitem(last=False)
            return predictor

    def reasons(self, version: int, rows: Sequence[Sequence[float]]) -> list[list[str]] | None:
        """The top-k reasons `/predict` gave for each row, or None when the version cannot be loaded."""
        try:
            predictor = self.predictor(version)
        except CommitRiskError:
            return None
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))
        return [[f.reason for f in p.factors] for p in predictor.predict(matrix, True, self.top_k)]

    def explain(self, version: int, features: Sequence[float]) -> Explanation:
        """The factors and the effect of every metric and dimension for one logged row."""
        predictor = self.predictor(version)
        row = np.asarray(features, dtype=np.float32).reshape(1, len(FEATURES))
        factors = predictor.predict(row, True, self.top_k)[0].factors
        medians = np.array([f.median for f in predictor.manifest.features], dtype=np.float32)
        n = len(FEATURES)
        block = np.repeat(row, 1 + n + len(DIMENSIONS), axis=0)
        block[1 + np.arange(n), np.arange(n)] = medians
        for j, names in enumerate(DIMENSIONS.values()):
            columns = [FEATURES.index(name) for name in names]
            block[1 + n + j, columns] = medians[columns]
        p = predictor.probabilities(block)
        effects = {
            name: Effect(name, float(row[0, i]), float(medians[i]), float(p[0] - p[1 + i]))
            for i, name in enumerate(FEATURES)
        }
        dimensions = [
            Dimension(name, float(p[0] - p[1 + n + j]), [effects[f] for f in names])
            for j, (name, names) in enumerate(DIMENSIONS.items())
        ]
        return Explanation(float(p[0]), factors, dimensions)
