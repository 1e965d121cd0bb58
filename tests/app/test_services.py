"""The services object: built once per app, the only thing on `app.state`, immutable, with the sink chain."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import Services


def test_the_app_state_holds_one_services_object(settings: Any) -> None:
    app = create_app(settings)
    assert list(app.state._state) == ["services"]  # nothing else: routes reach everything through it
    services = app.state.services
    assert isinstance(services, Services) and services.settings is settings
    assert services.registry.metrics is services.metrics  # one set of families per app
    services.monitoring.stop()
    services.registry.loader.shutdown()


def test_services_cannot_be_rebound(client: TestClient) -> None:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.sink = print  # type: ignore[misc]


def test_the_sink_chain_is_shadow_then_log_when_the_log_is_on(client: TestClient) -> None:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    assert services.sink is services.shadow
    assert services.shadow.inner == services.monitoring.log.submit  # bound to this app's log
    assert services.shadow.registry is services.registry


def test_without_the_log_the_chain_ends_at_the_shadow(settings: Any, commit: dict[str, Any]) -> None:
    with TestClient(create_app(settings.model_copy(update={"prediction_log": False}))) as client:
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        assert services.sink is services.shadow and services.shadow.inner is None
        assert client.post("/predict", json=commit).status_code == 200
        assert services.monitoring.log.pending() == 0 and services.monitoring.log.written == 0
