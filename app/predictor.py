"""One ONNX session plus its manifest: checks it can be trusted, scores commits, explains scores."""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from app.contract import FEATURES, ModelManifest, RiskBand
from app.errors import InvalidInput, InvalidModel
from app.explanation import LinearExplainer
from app.reasons import PHRASES, RULED, format_number, rule_reason

N_FEATURES = len(FEATURES)
# Row i+1 of an explanation block is the original row with feature i set to its training median.
_DIAGONAL = np.arange(N_FEATURES)
_INDICES = tuple(range(N_FEATURES))

# float32 inputs and float64 terms: a linear explanation must reproduce the file's probabilities this closely.
EXPLANATION_TOLERANCE = 1e-3
MAX_REASONS = 50_000  # remembered factor reasons per model version (a few MB at most): ~3 µs each to format


# The answer's value types are built on every request and never changed after: plain dataclasses, since a frozen
# one's __init__ costs ~1.4 µs more per object (object.__setattr__ per field; 4 objects per explained answer).
# Factor keeps its __dict__: orjson reads a dataclass's __dict__ directly but a slotted one attribute by attribute,
# 4.1 vs 0.9 µs to encode an explained answer's three factors (same bytes; no difference to build one).
@dataclass
class Factor:
    """How much one input raised the probability versus that input at its typical value.

    Perturbation (any model): `median` is the training median, `effect` = p − p(metric at median). Linear
    models: `contribution` is the exact share of the log-odds (coefficient × deviation on the model's scale),
    `median` the value that contributes nothing and `effect` = p − p(without this contribution).
    """

    feature: str
    value: float
    median: float
    effect: float
    reason: str
    contribution: float | None = None


@dataclass(slots=True)
class Prediction:
    """The score of one commit by one model version (serialisable as is by orjson)."""

    probability: float
    buggy: bool
    risk_band: RiskBand
    threshold: float
    model_version: int
    factors: list[Factor]


def session_options(intra_op_threads: int, inter_op_threads: int) -> ort.SessionOptions:
    """Explicit threading: one worker process should not oversubscribe the cores of its neighbours."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Spinning pool threads burn a core between requests on a small machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class Predictor:
    """Immutable once built: `load` validates and self-tests, so a Predictor is always servable."""

    def __init__(self, manifest: ModelManifest, session: ort.InferenceSession) -> None:
        self.manifest = manifest
        self.version = manifest.version
        self._session = session
        # The binding's run skips the Python wrapper's per-call checks (~10 µs, measured): inputs here are
        # always the one float32 C-contiguous [N, 15] tensor, validated before they get this far.
        self._run = getattr(session, "_sess", session).run
        # One RunOptions for every call: with None the binding builds a default one per run (~5 µs of a ~20 µs
        # single-commit run, measured). Runs only read it, so concurrent threads may share it.
        self._run_options = ort.RunOptions()
        self._input = manifest.input_name
        self._outputs = [manifest.probability_output]
        self._medians = np.array([f.median for f in manifest.features], dtype=np.float32)
        self._median_list = [f.median for f in manifest.features]
        self._mins = np.array([f.min for f in manifest.features], dtype=np.float32)
        self._maxs = np.array([f.max for f in manifest.features], dtype=np.float32)
        self._ranges = (self._mins.tolist(), self._maxs.tolist())
        self.threshold = manifest.threshold
        self._bands = manifest.bands
        self._linear = None if manifest.explanation is None else LinearExplainer(manifest.explanation)
        names = [] if self._linear is None else self._linear.names
        self._terms = tuple(range(len(names)))
        # (term, metric) of the terms a rule can fire for: exp, age
        self._rule_terms = [(names.index(n), FEATURES.index(n)) for n in ("exp", "age") if n in names]
        # (term, value) → (value as shown, reason): values repeat, rounding and formatting cost.
        self._reasons: dict[tuple[int, float], tuple[float, str]] = {}

    @classmethod
    def load(
        cls, manifest: ModelManifest, model_bytes: bytes, intra_op_threads: int = 1, inter_op_threads: int = 1
    ) -> Predictor:
        """Build a predictor; InvalidModel unless features, checksum, signature and self-test all pass."""
        where = f"model version {manifest.version}"
        if manifest.feature_names != FEATURES:
            raise InvalidModel(
                f"{where}: manifest features do not match the service's feature list",
                [{"field": "features", "message": f"expected {list(FEATURES)}"}],
            )
        digest = hashlib.sha256(model_bytes).hexdigest()
        if digest != manifest.onnx_sha256:
            raise InvalidModel(f"{where}: model.onnx sha256 {digest[:12]}… does not match the manifest")
        try:
            options = session_options(intra_op_threads, inter_op_threads)
            session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types for corrupt graphs
            raise InvalidModel(f"{where}: onnxruntime cannot load model.onnx: {exc}") from None
        cls._check_signature(manifest, session)
        try:
            predictor = cls(manifest, session)
        except ValueError as exc:
            raise InvalidModel(f"{where}: manifest explanation is unusable: {exc}") from None
        predictor.self_test()
        return predictor

    @staticmethod
    def _check_signature(manifest: ModelManifest, session: ort.InferenceSession) -> None:
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        node = inputs.get(manifest.input_name)
        problems = []
        if len(inputs) != 1 or node is None or node.type != "tensor(float)":
            problems.append(f"expected one float input {manifest.input_name!r}, found {sorted(inputs)}")
        elif len(node.shape) != 2 or node.shape[1] != N_FEATURES:
            problems.append(f"input shape {node.shape} is not [N, {N_FEATURES}]")
        if manifest.probability_output not in outputs:
            problems.append(f"no output {manifest.probability_output!r} (found {sorted(outputs)})")
        if problems:
            raise InvalidModel(
                f"model version {manifest.version}: ONNX signature does not match the manifest",
                [{"field": "model.onnx", "message": p} for p in problems],
            )

    def self_test(self) -> None:
        """Score the manifest's sample rows; InvalidModel if any differs beyond the tolerance."""
        test = self.manifest.self_test
        try:
            got = self.probabilities(np.asarray(test.rows, dtype=np.float32))
        except Exception as exc:
            raise InvalidModel(f"model version {self.version}: self-test could not run: {exc}") from None
        bad = [
            {"field": f"self_test.rows.{i}", "message": f"expected {want:.6f}, got {float(p):.6f}"}
            for i, (want, p) in enumerate(zip(test.probabilities, got, strict=True))
            if not abs(want - float(p)) <= test.tolerance
        ]
        if bad:
            raise InvalidModel(f"model version {self.version}: self-test failed on {len(bad)} row(s)", bad)
        if self._linear is not None:
            # Explanations must describe this very model: its terms have to reproduce its probabilities.
            linear = self._linear.probabilities(np.asarray(test.rows, dtype=np.float32))
            worst = float(np.max(np.abs(linear - np.asarray(test.probabilities))))
            if not worst <= EXPLANATION_TOLERANCE:
                raise InvalidModel(
                    f"model version {self.version}: the manifest's linear explanation does not reproduce the "
                    f"model's probabilities (max difference {worst:.2g} > {EXPLANATION_TOLERANCE:g})"
                )

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Positive-class probability per row of a float32 [N, 15] matrix."""
        out: Any = self._run(self._outputs, {self._input: matrix}, self._run_options)[0]
        out = np.asarray(out)
        if out.ndim == 2:
            out = out[:, -1]
        return out.astype(np.float64, copy=False)

    def out_of_range(self, matrix: np.ndarray) -> dict[int, int]:
        """{feature index: rows outside the training [min, max]} for the features that have any."""
        if matrix.shape[0] == 1:  # numpy's per-call overhead dominates for a single commit
            lows, highs = self._ranges
            row = matrix[0].tolist()
            # Two C-level passes settle the usual case, every value in range (comparisons only: no float objects).
            if all(map(operator.le, lows, row)) and all(map(operator.le, row, highs)):
                return {}
            return {i: 1 for i, v in enumerate(row) if v < lows[i] or v > highs[i]}
        counts = ((matrix < self._mins) | (matrix > self._maxs)).sum(axis=0)
        return {int(i): int(counts[i]) for i in np.flatnonzero(counts)}

    def predict(self, matrix: np.ndarray, explain: bool = True, top_k: int = 3) -> list[Prediction]:
        """Score (and optionally explain) every row; explanations use one onnxruntime run for all rows."""
        return self.scores(matrix, explain, top_k)[0]

    def scores(self, matrix: np.ndarray, explain: bool = True, top_k: int = 3) -> tuple[list[Prediction], np.ndarray]:
        """`predict`, and the probabilities as the float64 array they came in (the log's column, no rebuilding)."""
        if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES:
            raise InvalidInput(f"expected a [N, {N_FEATURES}] matrix, got shape {list(matrix.shape)}")
        n = matrix.shape[0]
        if not explain or top_k == 0:
            probabilities = self.probabilities(matrix)
            return [self._prediction(p, []) for p in probabilities.tolist()], probabilities
        if self._linear is not None:
            probabilities = self.probabilities(matrix)
            return self._linear_predictions(matrix, probabilities.tolist(), top_k), probabilities
        block = np.repeat(matrix[:, None, :], N_FEATURES + 1, axis=1)
        block[:, 1 + _DIAGONAL, _DIAGONAL] = self._medians
        probs = self.probabilities(block.reshape(n * (N_FEATURES + 1), N_FEATURES)).reshape(n, -1)
        effects = (probs[:, :1] - probs[:, 1:]).tolist()
        rows = matrix.tolist()
        probabilities = probs[:, 0].copy()  # not a view: the log's queue would keep the whole block alive
        first = probabilities.tolist()
        return [self._prediction(first[r], self._factors(rows[r], effects[r], top_k)) for r in range(n)], probabilities

    def _linear_predictions(self, matrix: np.ndarray, probabilities: list[float], top_k: int) -> list[Prediction]:
        """Exact contributions of a linear model (the scores from its one onnxruntime run), numpy for the factors.
        One loop with its lookups bound once: an explained `/predict` spends more here than in onnxruntime."""
        assert self._linear is not None
        linear = self._linear
        values, shares = linear.terms_and_contribution_lists(matrix)
        names, typical, reasons, terms, exp = linear.names, linear.typical, self._reasons, self._terms, math.exp
        out = []
        for p, row, value_row in zip(probabilities, shares, values, strict=True):
            order = [i for i in sorted(terms, key=row.__getitem__, reverse=True)[:top_k] if row[i] > 0]
            for i, feature in self._rule_terms:
                if row[i] > 0 and i not in order and rule_reason(feature, value_row[i]):
                    order.append(i)
            logit = math.log(max(p, 1e-12) / max(1 - p, 1e-12))
            factors = []
            for i in order:
                value, contribution = value_row[i], row[i]
                shown, reason = reasons.get((i, value)) or self._term_reason(i, value)
                effect = p - 1.0 / (1.0 + exp(contribution - logit))
                factors.append(Factor(names[i], shown, typical[i], round(effect, 6), reason, round(contribution, 6)))
            out.append(self._prediction(p, factors))
        return out

    def _term_reason(self, i: int, value: float) -> tuple[float, str]:
        """Term `i`'s value as shown (6 decimals) and its plain-language reason (a rule first when one fires),
        remembered by the exact value: the rounding, too, costs more than the lookup."""
        assert self._linear is not None
        name, typical, shown = self._linear.names[i], self._linear.typical[i], round(value, 6)
        phrase = PHRASES.get(name, name + " {v}").format(v=format_number(shown))
        text = f"{phrase} (typical: {format_number(round(typical, 6))})"
        rule = rule_reason(FEATURES.index(name), shown) if name in FEATURES else None
        reason = f"{rule}; {text}" if rule else text
        if len(self._reasons) < MAX_REASONS:
            self._reasons[(i, value)] = (shown, reason)
        return shown, reason

    def _prediction(self, p: float, factors: list[Factor]) -> Prediction:
        return Prediction(p, p >= self.threshold, self._bands.band(p), self.threshold, self.version, factors)

    def _factors(self, row: list[float], effects: list[float], top_k: int) -> list[Factor]:
        order = [i for i in sorted(_INDICES, key=effects.__getitem__, reverse=True)[:top_k] if effects[i] > 0]
        # A fired rule is worth stating whenever the model agrees it raised the risk.
        for i in RULED:
            if i not in order and effects[i] > 0 and rule_reason(i, row[i]) is not None:
                order.append(i)
        # float32 → shortest decimal the client most likely sent (0.8, not 0.800000011920929)
        return [self._factor(i, round(row[i], 6), effects[i]) for i in order]

    def _factor(self, i: int, value: float, effect: float) -> Factor:
        median = self._median_list[i]
        name = FEATURES[i]
        text = f"{PHRASES[name].format(v=format_number(value))} (typical: {format_number(median)})"
        rule = rule_reason(i, value)
        return Factor(name, value, median, round(effect, 6), f"{rule}; {text}" if rule else text)


def feature_matrix(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """Rows of 15 numbers in FEATURES order → float32 [N, 15]."""
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), N_FEATURES)
