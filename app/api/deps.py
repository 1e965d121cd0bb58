"""Dependencies declared once as `Annotated` aliases over the one `Services` (app.state.services, built by
create_app); the hot routes (DirectRoute) call `services_of(request)` instead of solving dependencies."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.api import tokens

# Body parsing lives in app/api/body.py; these names are re-exported for the routes that import them from here.
from app.api.body import parse_json as parse_json
from app.api.body import read_json as read_json
from app.api.body import read_optional_json as read_optional_json
from app.api.body import validate as validate
from app.api.errors import EMPTY
from app.errors import Forbidden, InvalidInput, Unauthenticated
from app.metrics import ServiceMetrics
from app.monitoring.monitor import Monitoring
from app.registry import ModelRegistry
from app.services import Services
from app.settings import Settings

_TRUE = frozenset({"1", "true", "on", "yes", "t", "y"})
_FALSE = frozenset({"0", "false", "off", "no", "f", "n"})
MODELS_LABEL = "<models>"  # what clients without the admin token see instead of the absolute models path


class DirectRoute(APIRoute):
    """Hot routes: FastAPI documents them, but the endpoint is called with the bare Request.

    FastAPI's per-request dependency solving costs more than scoring one commit; these endpoints read
    their own body and query (`read_json`, `query_flag`) and declare both via `openapi_extra`.
    """

    def get_route_handler(self) -> Any:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request)
            return response

        return handler


def query_flag(request: Request, name: str, default: bool) -> bool:
    """A boolean query parameter (true/false/1/0/yes/no/on/off); InvalidInput for anything else."""
    if not request.scope["query_string"]:
        return default
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(
        f"query parameter {name!r} must be a boolean", [{"field": name, "message": "expected true or false"}]
    )


def flag_parameter(name: str, default: bool, description: str) -> dict[str, Any]:
    """OpenAPI description of a `query_flag` parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "boolean", "default": default},
    }


def services_of(request: Request) -> Services:
    """The services of the app serving this request."""
    services: Services = request.app.state.services
    return services


def get_settings(request: Request) -> Settings:
    """The settings this app was built with."""
    return services_of(request).settings


def get_registry(request: Request) -> ModelRegistry:
    """This process's model registry."""
    return services_of(request).registry


def get_metrics(request: Request) -> ServiceMetrics:
    """This app's Prometheus metrics."""
    return services_of(request).metrics


def get_monitoring(request: Request) -> Monitoring:
    """This process's monitoring (store, prediction log, job schedule)."""
    return services_of(request).monitoring


def require_admin(request: Request) -> None:
    """Bearer-token check for admin routes: 401 without a token, 403 with a wrong one (or none configured)."""
    token = tokens.bearer(request)
    if token is None:
        raise Unauthenticated("this route needs 'Authorization: Bearer <admin token>'")
    settings = get_settings(request)
    if settings.admin_token is None:
        raise Forbidden("admin routes are disabled: COMMITRISK_ADMIN_TOKEN is not set")
    if not tokens.is_admin(token, settings):
        raise Forbidden("wrong admin token")


def hidden_paths(request: Request) -> Mapping[str, str]:
    """Strings this client must not see in an answer: the absolute models path, unless it sent the admin token."""
    settings = get_settings(request)
    if tokens.is_admin(tokens.bearer(request), settings):
        return EMPTY
    return _models_paths(settings.models_dir)


@functools.lru_cache(maxsize=8)
def _models_paths(root: Path) -> Mapping[str, str]:
    # Messages name files under the root as given and as resolved (the service resolves --models at start).
    paths = {str(root.resolve()): MODELS_LABEL}
    if root.is_absolute():
        paths[str(root)] = MODELS_LABEL
    return types.MappingProxyType(dict(sorted(paths.items(), key=lambda item: -len(item[0]))))


def redactor(request: Request) -> Callable[[str], str]:
    """`text → text` with the strings `hidden_paths` names replaced by their labels."""
    hidden = hidden_paths(request)

    def redact(text: str) -> str:
        for secret, label in hidden.items():
            text = text.replace(secret, label)
        return text

    return redact


ServicesDep = Annotated[Services, Depends(services_of)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
MonitoringDep = Annotated[Monitoring, Depends(get_monitoring)]
AdminDep = Annotated[None, Depends(require_admin)]
