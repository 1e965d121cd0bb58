"""Who may read the pages: everyone while client tokens are off; with them on, the holder of a client token or
of the admin token, as the scoring routes require (app/api/tokens.py).

A browser sends no bearer token by itself, so the pages also take HTTP Basic credentials whose password is the
token (any user name): a browser that gets the 401 page asks for them once and sends them with every page.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from app.api.tokens import bearer, client_tokens, is_admin, matches
from app.errors import Forbidden, Unauthenticated
from app.settings import Settings

CHALLENGE = 'Basic realm="commitrisk pages", charset="UTF-8"'


def basic_password(request: Request) -> str | None:
    """The password of an `Authorization: Basic …` header, else None (also for a malformed one)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def require_reader(request: Request, settings: Settings) -> None:
    """With client tokens on: Unauthenticated without a token, Forbidden with one that is neither accepted one."""
    if settings.client_tokens is None and settings.client_tokens_file is None:
        return
    accepted = client_tokens(settings)
    if accepted is None:
        return
    token = bearer(request) or basic_password(request)
    if token is None:
        raise Unauthenticated("the pages need a client token: 'Authorization: Bearer <token>' or the token as password")
    if not (matches(token, accepted) or is_admin(token, settings)):
        raise Forbidden("wrong client token")
