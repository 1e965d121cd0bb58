"""Candidate estimators (ONNX-convertible steps only), their hyperparameter settings, fitting and prediction."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterSampler
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils import Bunch
from sklearn.utils.class_weight import compute_sample_weight

from training.config import FEATURE_SETS, MEMBER_FAMILIES, FeatureSet, ModelFamily
from training.features import RelativeChurn

ParamValue = str | int | float | bool | None
# The pseudo-hyperparameter naming the feature set: recorded with the others so a refit rebuilds the same
# recipe. Manifests written before relative churn existed lack it, and those models saw the raw metrics.
FEATURES_PARAM = "features"
LEGACY_FEATURES: FeatureSet = "raw"
_INNER = "model"  # the step name of the family's estimator behind the relative churn step
# Strong regularisation transfers best across repositories (bench/choice.py), so the grid reaches down to 1e-3.
LOGISTIC_C: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


class Log1p(TransformerMixin, BaseEstimator):
    """log(1 + x) for skewed count metrics; a named class so `training.export` can register an ONNX converter.

    `FunctionTransformer(np.log1p)` has no skl2onnx converter.
    """

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Log1p:
        """Stateless: nothing to learn."""
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Element-wise log1p."""
        return np.log1p(np.asarray(X, dtype=np.float64))


class SoftVote(VotingClassifier):
    """Soft voting: the mean of the members' probabilities, each member fitted with its own row weights.

    `VotingClassifier.fit` hands one `sample_weight` to every member, but the logistic pipeline takes it as
    `clf__sample_weight` and gradient boosting needs balanced weights (`fit_weights`). A subclass rather than a
    new class, so nested hyperparameters (`random_forest__max_depth`), `clone` and the skl2onnx converter of
    `VotingClassifier` (registered for this class in `training.export`) all keep working.
    """

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> SoftVote:
        """Fit a clone of every member on (X, y) with its family's weights (times `sample_weight`)."""
        encoder = LabelEncoder().fit(y)
        encoded = encoder.transform(y)
        fitted = [clone(m).fit(X, encoded, **fit_weights(m, encoded, sample_weight)) for _, m in self.estimators]
        return self._adopt(fitted, encoder)

    def _adopt(self, fitted: Sequence[Any], encoder: LabelEncoder) -> SoftVote:
        """Take already fitted members (the attributes `VotingClassifier.fit` would have set)."""
        self.le_ = encoder
        self.classes_ = encoder.classes_
        self.estimators_ = list(fitted)
        self.named_estimators_ = Bunch(**{name: m for (name, _), m in zip(self.estimators, fitted, strict=True)})
        return self


def soft_vote(members: Sequence[tuple[str, Any]]) -> SoftVote:
    """An unfitted SoftVote of (name, estimator) members, equal weights."""
    return SoftVote(list(members), voting="soft", flatten_transform=False)


@dataclass(frozen=True)
class Candidate:
    """The best estimator of one family after the search, fitted on the training rows."""

    family: ModelFamily
    estimator: Any
    cv_roc_auc: float | None  # None when not cross-validated as a whole: given hyperparameters, or the ensemble
    params: dict[str, ParamValue]
    fit_seconds: float


def _space(family: ModelFamily, seed: int, features: FeatureSet) -> tuple[Any, dict[str, Any]]:
    """(estimator, search space) for one family on one feature set."""
    if family == "ensemble":
        # No space of its own: the choice tunes each member; `fixed` takes `<member>__<param>` names.
        return soft_vote([(member, _space(member, seed, features)[0]) for member in MEMBER_FAMILIES]), {}
    estimator, space = _family_space(family, seed)
    if features == "raw":
        return estimator, space
    wrapped = Pipeline([("churn", RelativeChurn()), (_INNER, estimator)])
    return wrapped, {f"{_INNER}__{k}": v for k, v in space.items()}


def _family_space(family: ModelFamily, seed: int) -> tuple[Any, dict[str, Any]]:
    """(estimator, search space) of one single family on its input columns."""
    if family == "logistic_regression":
        pipeline = Pipeline(
            [
                ("log1p", Log1p()),
                ("scale", StandardScaler()),
                ("clf", LogisticRegression(class_weight="balanced", max_iter=5000)),
            ]
        )
        return pipeline, {"clf__C": list(LOGISTIC_C)}
    if family == "random_forest":
        forest = RandomForestClassifier(class_weight="balanced_subsample", random_state=seed, n_jobs=1)
        # Fractional leaf sizes bound the tree size independently of the row count, which keeps the ONNX
        # file and the serving latency small even when training on a million commits.
        space = {
            "n_estimators": randint(80, 161),
            "max_depth": [6, 8, 10, 12, 16, None],
            "min_samples_leaf": [0.001, 0.002, 0.005, 0.01, 0.02],
            "max_features": ["sqrt", 0.3, 0.5],
        }
        return forest, space
    if family == "gradient_boosting":
        # GradientBoostingClassifier converts with skl2onnx; HistGradientBoosting does not (skl2onnx 1.20 fails
        # on nodes_missing_value_tracks_true). It has no class_weight, so balanced sample weights are passed.
        boosting = GradientBoostingClassifier(random_state=seed, n_iter_no_change=10, validation_fraction=0.15)
        space = {
            "n_estimators": randint(100, 301),
            "learning_rate": loguniform(0.01, 0.2),
            "max_depth": randint(2, 5),
            "subsample": uniform(0.6, 0.4),
            "min_samples_leaf": [5, 10, 20, 40],
        }
        return boosting, space
    raise ValueError(f"unknown model family: {family}")


def fit_weights(estimator: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> dict[str, np.ndarray]:
    """Fit keyword arguments carrying row weights (times balanced class weights where a family needs them)."""
    if _is_wrapped(estimator):
        inner = fit_weights(estimator.named_steps[_INNER], y, sample_weight)
        return {f"{_INNER}__{k}": v for k, v in inner.items()}
    if isinstance(estimator, GradientBoostingClassifier):
        balanced = compute_sample_weight("balanced", y)
        return {"sample_weight": balanced if sample_weight is None else balanced * sample_weight}
    if sample_weight is None:
        return {}
    # The pipeline routes `<step>__sample_weight` to its classifier; class_weight="balanced" still applies.
    key = "clf__sample_weight" if isinstance(estimator, Pipeline) else "sample_weight"
    return {key: np.asarray(sample_weight, dtype=np.float64)}


def settings(family: ModelFamily, budget: int, seed: int) -> list[dict[str, ParamValue]]:
    """The hyperparameter settings the choice tries for one single family (names without the feature set).

    Logistic regression: every C of a log-spaced grid (fits take milliseconds). The tree families: `budget`
    settings sampled from their space with `seed`, so equal seeds try equal settings.
    """
    if family not in MEMBER_FAMILIES:
        raise ValueError(f"unknown model family: {family}")
    if family == "logistic_regression":
        return [{"clf__C": c} for c in LOGISTIC_C]
    _, space = _family_space(family, seed)
    sampled = ParameterSampler(space, n_iter=budget, random_state=seed)
    return [{k: _plain(v) for k, v in sorted(params.items())} for params in sampled]


def fixed(
    family: ModelFamily,
    params: dict[str, ParamValue],
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> Candidate:
    """A candidate with given hyperparameters (no search; e.g. the champion's), fitted on (X, y).

    `params["features"]` names the feature set; without it the raw metrics (what older manifests were fitted on).
    """
    hyper = {k: v for k, v in params.items() if k != FEATURES_PARAM}
    features = params.get(FEATURES_PARAM, LEGACY_FEATURES)
    if features not in FEATURE_SETS:
        raise ValueError(f"{family}: unknown feature set {features!r}; expected one of {', '.join(FEATURE_SETS)}")
    estimator, _ = _space(family, seed, features)
    try:
        estimator.set_params(**_routed(family, hyper, features))
    except ValueError as exc:
        # scikit-learn's message goes on to print the whole (multi-line) estimator; the parameter name suffices.
        reason = str(exc).split(" for estimator ")[0].splitlines()[0]
        raise ValueError(f"{family}: hyperparameters do not fit this family: {reason}") from None
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y, **fit_weights(estimator, y, sample_weight))
    return Candidate(family, estimator, None, dict(params), time.perf_counter() - started)


def _routed(family: ModelFamily, params: dict[str, ParamValue], features: FeatureSet) -> dict[str, ParamValue]:
    """Hyperparameter names as recorded → as `set_params` needs them behind the relative churn step."""
    if features == "raw":
        return params
    if family != "ensemble":
        return {f"{_INNER}__{k}": v for k, v in params.items()}
    routed = {}
    for name, value in params.items():
        member, _, rest = name.partition("__")
        routed[f"{member}__{_INNER}__{rest}" if rest else name] = value
    return routed


def _is_wrapped(estimator: Any) -> bool:
    """A family's estimator behind the relative churn step."""
    return isinstance(estimator, Pipeline) and isinstance(estimator.steps[0][1], RelativeChurn)


def refit(candidate: Candidate, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Any:
    """A fresh estimator with the candidate's hyperparameters, fitted on (X, y) (optionally weighted rows)."""
    estimator = clone(candidate.estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y, **fit_weights(estimator, y, sample_weight))
    return estimator


def predict(estimator: ClassifierMixin, X: np.ndarray) -> np.ndarray:
    """Probability of the buggy class, float64 [N]."""
    return np.asarray(estimator.predict_proba(X)[:, 1], dtype=np.float64)


def _plain(value: Any) -> ParamValue:
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
