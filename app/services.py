"""Everything one app serves with, built once by `create_app(settings)` and stored as `app.state.services`.

Routes reach it through `app/api/deps.py` (typed `Annotated` aliases, or `services_of(request)` on the hot
routes); nothing else lives on `app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.metrics import ServiceMetrics
from app.monitoring.monitor import Monitoring
from app.monitoring.prediction_log import Sink
from app.registry import ModelRegistry
from app.settings import Settings
from app.shadow import ShadowSink


@dataclass(frozen=True, slots=True)
class Services:
    """The settings, metrics, served models and monitoring of one app, and where answered batches go."""

    settings: Settings
    metrics: ServiceMetrics
    registry: ModelRegistry
    monitoring: Monitoring
    shadow: ShadowSink  # challengers in shadow; its `live` counts feed GET /models
    sink: Sink  # the head of the prediction sink chain: shadow scoring → prediction log (when enabled)
