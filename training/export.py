"""skl2onnx export and the parity check against scikit-learn (the only module importing skl2onnx)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.contract import FEATURES, INPUT_NAME, LABEL_OUTPUT, PROBABILITY_OUTPUT
from training import features
from training.calibration import EPS, Calibrated, Platt
from training.model import Log1p, SoftVote, predict

# Opsets every onnxruntime >= 1.14, Triton and KServe runtimes load.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


class ExportError(RuntimeError):
    """The model could not be converted, or the converted model disagrees with scikit-learn."""


@dataclass(frozen=True)
class Parity:
    """How far ONNX probabilities are from scikit-learn's on the checked rows."""

    rows: int
    max_abs_diff: float


def _register_log1p() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxLog
    from skl2onnx.common.data_types import FloatTensorType

    def shape(operator: Any) -> None:
        source = operator.inputs[0]
        operator.outputs[0].type = FloatTensorType([source.get_first_dimension(), source.get_second_dimension()])

    def convert(scope: Any, operator: Any, container: Any) -> None:
        opv = container.target_opset
        one = np.array([1.0], dtype=np.float32)
        node = OnnxLog(
            OnnxAdd(operator.inputs[0], one, op_version=opv), op_version=opv, output_names=operator.outputs[:1]
        )
        node.add_to(scope, container)

    update_registered_converter(Log1p, "CommitRiskLog1p", shape, convert)


def _register_relative_churn() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxConcat, OnnxDiv, OnnxGather, OnnxMax
    from skl2onnx.common.data_types import FloatTensorType

    def shape(operator: Any) -> None:
        source = operator.inputs[0]
        width = len(features.RATIOS) + source.get_second_dimension()
        operator.outputs[0].type = FloatTensorType([source.get_first_dimension(), width])

    def convert(scope: Any, operator: Any, container: Any) -> None:
        opv = container.target_opset
        x = operator.inputs[0]

        def column(name: str) -> Any:
            return OnnxGather(x, np.array([FEATURES.index(name)], dtype=np.int64), axis=1, op_version=opv)

        def numerator(names: tuple[str, ...]) -> Any:  # summed left to right, as `RelativeChurn.transform` does
            node = column(names[0])
            for name in names[1:]:
                node = OnnxAdd(node, column(name), op_version=opv)
            return node

        tops = [numerator(top) for top, _ in features.RATIOS]
        below = np.array([FEATURES.index(bottom) for _, bottom in features.RATIOS], dtype=np.int64)
        bottoms = OnnxGather(x, below, axis=1, op_version=opv)
        floor = np.array([features.FLOOR], dtype=np.float32)
        ratios = OnnxDiv(
            OnnxConcat(*tops, axis=1, op_version=opv), OnnxMax(bottoms, floor, op_version=opv), op_version=opv
        )
        OnnxConcat(x, ratios, axis=1, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)

    update_registered_converter(features.RelativeChurn, "CommitRiskRelativeChurn", shape, convert)


def _register_soft_vote() -> None:
    """SoftVote is a VotingClassifier with its own fit: skl2onnx's VotingClassifier converter applies as is."""
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.voting_classifier import convert_voting_classifier
    from skl2onnx.shape_calculators.voting_classifier import voting_classifier_shape_calculator

    # Declaring the `zipmap` option makes skl2onnx parse it as a classifier (label + probabilities outputs).
    options = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True], "nocl": [True, False]}
    update_registered_converter(
        SoftVote, "CommitRiskSoftVote", voting_classifier_shape_calculator, convert_voting_classifier, options=options
    )


def to_onnx(estimator: Any, n_features: int) -> bytes:
    """Serialized ONNX: float32 input `features` [N, n_features] → `label` [N], `probabilities` [N, 2]."""
    if isinstance(estimator, Calibrated):
        raw = _convert(estimator.base, n_features)
        return _fold_platt(raw, estimator.platt) if estimator.linear else _append_platt(raw, estimator.platt)
    return _convert(estimator, n_features)


def _convert(estimator: Any, n_features: int) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _register_log1p()
    _register_relative_churn()
    _register_soft_vote()
    final = estimator
    while hasattr(final, "steps"):  # the classifier sits at the end of (nested) pipelines
        final = final.steps[-1][1]
    try:
        onnx_model = convert_sklearn(
            estimator,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            options={id(final): {"zipmap": False}},
            target_opset=TARGET_OPSET,
        )
    except Exception as exc:  # skl2onnx raises many unrelated types; one message for the CLI
        raise ExportError(f"ONNX conversion failed for {type(final).__name__}: {exc}") from exc
    _drop_unused_initializers(onnx_model.graph)
    outputs = [o.name for o in onnx_model.graph.output]
    if outputs != [LABEL_OUTPUT, PROBABILITY_OUTPUT]:
        raise ExportError(f"unexpected ONNX outputs {outputs}; expected {[LABEL_OUTPUT, PROBABILITY_OUTPUT]}")
    return bytes(onnx_model.SerializeToString())


def _drop_unused_initializers(graph: Any) -> None:
    """Remove constants no node reads (the voting converter leaves one; onnxruntime warns on every load)."""
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)


def _append_platt(model: bytes, platt: Platt) -> bytes:
    """Route the graph's probabilities through sigmoid(a · logit(p) + b), keeping the output names and shapes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    raw_label, raw_probabilities = "raw_" + LABEL_OUTPUT, "raw_" + PROBABILITY_OUTPUT
    renamed = {LABEL_OUTPUT: raw_label, PROBABILITY_OUTPUT: raw_probabilities}
    for node in graph.node:
        # Inputs too: the voting converter derives its label from the probabilities output inside the graph.
        node.input[:] = [renamed.get(i, i) for i in node.input]
        node.output[:] = [renamed.get(o, o) for o in node.output]

    def const(name: str, value: Any, dtype: Any = np.float32) -> str:
        graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    nodes = [
        helper.make_node("Slice", [raw_probabilities, const("platt_start", [1], np.int64),
                                   const("platt_end", [2], np.int64), const("platt_axis", [1], np.int64)], ["p1"]),
        helper.make_node("Clip", ["p1", const("platt_lo", EPS), const("platt_hi", 1 - EPS)], ["p1c"]),
        helper.make_node("Sub", [const("platt_one", 1.0), "p1c"], ["q1c"]),
        helper.make_node("Div", ["p1c", "q1c"], ["odds"]),
        helper.make_node("Log", ["odds"], ["logit"]),
        helper.make_node("Mul", ["logit", const("platt_a", platt.a)], ["scaled"]),
        helper.make_node("Add", ["scaled", const("platt_b", platt.b)], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["cal1"]),
        helper.make_node("Sub", ["platt_one", "cal1"], ["cal0"]),
        helper.make_node("Concat", ["cal0", "cal1"], [PROBABILITY_OUTPUT], axis=1),
        helper.make_node("ArgMax", [PROBABILITY_OUTPUT], ["argmax"], axis=1, keepdims=0),
        helper.make_node("Cast", ["argmax"], [LABEL_OUTPUT], to=TensorProto.INT64),
    ]  # fmt: skip
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def _fold_platt(model: bytes, platt: Platt) -> bytes:
    """A logistic regression's graph with the Platt map, and the standard scaler in front, folded into its linear
    classifier: sigmoid(a · (w · (x − offset) · scale + b0) + b) is one linear score, so 3 nodes are served instead
    of 16 (onnxruntime's call for one commit took about half the time) and the probabilities are exact where the
    appended map clipped them at 1e-6 from 0 and 1."""
    import onnx
    from onnx import helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    linear = [node for node in graph.node if node.op_type == "LinearClassifier"]
    attributes = {a.name: helper.get_attribute_value(a) for a in linear[0].attribute} if len(linear) == 1 else {}
    coefficients = np.asarray(attributes.get("coefficients", []), dtype=np.float64)
    intercepts = np.asarray(attributes.get("intercepts", []), dtype=np.float64)
    # skl2onnx writes a binary logistic regression as two opposite rows, each through its own sigmoid.
    if not (
        list(linear[0].output if linear else []) == [LABEL_OUTPUT, PROBABILITY_OUTPUT]
        and attributes.get("post_transform") == b"LOGISTIC"
        and list(attributes.get("classlabels_ints", [])) == [0, 1]
        and len(intercepts) == 2 and intercepts[0] == -intercepts[1]
        and np.array_equal(coefficients[: len(coefficients) // 2], -coefficients[len(coefficients) // 2 :])
    ):  # fmt: skip
        raise ExportError("cannot fold the Platt map: the graph has no binary logistic LinearClassifier output")
    weights, intercept = coefficients[len(coefficients) // 2 :], intercepts[1]
    scaler = next((node for node in graph.node if node.output[:] == linear[0].input[:1]), None)
    readers = sum(name == linear[0].input[0] for node in graph.node for name in node.input)
    if scaler is not None and scaler.op_type == "Scaler" and readers == 1:
        found = {a.name: helper.get_attribute_value(a) for a in scaler.attribute}
        offset = np.broadcast_to(np.asarray(found.get("offset", [0.0]), dtype=np.float64), weights.shape)
        scale = np.broadcast_to(np.asarray(found.get("scale", [1.0]), dtype=np.float64), weights.shape)
        intercept -= float(np.sum(weights * scale * offset))
        weights = weights * scale
        linear[0].input[0] = scaler.input[0]
        graph.node.remove(scaler)
    weights, intercept = platt.a * weights, platt.a * intercept + platt.b
    for attribute in list(linear[0].attribute):
        if attribute.name in ("coefficients", "intercepts"):
            linear[0].attribute.remove(attribute)
    linear[0].attribute.extend(
        [
            helper.make_attribute("coefficients", np.concatenate([-weights, weights]).astype(np.float32).tolist()),
            helper.make_attribute("intercepts", np.array([-intercept, intercept], dtype=np.float32).tolist()),
        ]
    )
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def onnx_probabilities(model: bytes, X: np.ndarray) -> np.ndarray:
    """Positive-class probabilities from onnxruntime for float32 rows."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    (probabilities,) = session.run([PROBABILITY_OUTPUT], {INPUT_NAME: np.ascontiguousarray(X, dtype=np.float32)})
    return np.asarray(probabilities[:, 1], dtype=np.float64)


def check_parity(model: bytes, estimator: Any, X: np.ndarray, tolerance: float) -> Parity:
    """Compare ONNX with scikit-learn on `X`; raise ExportError beyond `tolerance`."""
    if len(X) == 0:
        raise ExportError("parity check needs at least one row")
    diff = float(np.max(np.abs(onnx_probabilities(model, X) - predict(estimator, X))))
    if not diff <= tolerance:
        raise ExportError(f"ONNX parity failed: max |p_onnx - p_sklearn| = {diff:.3g} > {tolerance:g}")
    return Parity(rows=len(X), max_abs_diff=diff)
