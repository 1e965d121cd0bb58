"""Bearer tokens: the admin token and the optional client tokens of the scoring routes, compared in constant time.

Client tokens (`COMMITRISK_CLIENT_TOKENS`, comma-separated, and/or `COMMITRISK_CLIENT_TOKENS_FILE`, one per line)
are off by default. The file is re-read when it changes (one `stat` per request), so a rotated secret needs no
restart; while a rewrite leaves it empty or unreadable, the last tokens read from it stay accepted.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import Forbidden, Unauthenticated
from app.settings import Settings

if TYPE_CHECKING:  # `serve` checks the tokens file before any worker starts: no web framework to import for it
    from starlette.requests import Request

_last_good: dict[Path, tuple[bytes, ...]] = {}


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def digest(token: str) -> bytes:
    """What is compared: equal-length digests, so the comparison time does not depend on a token's length."""
    return hashlib.sha256(token.encode()).digest()


def matches(token: str, accepted: Iterable[bytes]) -> bool:
    """True when `token` is one of the `accepted` digests; every digest is compared (no early exit)."""
    presented = digest(token)
    found = False
    for candidate in accepted:
        found |= secrets.compare_digest(presented, candidate)
    return found


def is_admin(token: str | None, settings: Settings) -> bool:
    """True when `token` is the configured admin token."""
    expected = settings.admin_token
    if token is None or expected is None:
        return False
    return secrets.compare_digest(token.encode(), expected.get_secret_value().encode())


def parse(text: str) -> tuple[bytes, ...]:
    """Digests of the tokens in `text`: separated by commas or newlines; blank lines and `#` comment lines skipped."""
    tokens = (
        token.strip() for line in text.splitlines() if not line.lstrip().startswith("#") for token in line.split(",")
    )
    return tuple(dict.fromkeys(digest(t) for t in tokens if t))


@lru_cache(maxsize=16)
def _read(path: Path, stamp: tuple[int, int, int]) -> tuple[bytes, ...]:
    found = parse(path.read_text(encoding="utf-8"))
    if not found:
        raise ValueError("holds no token")
    return found


def file_tokens(path: Path) -> tuple[bytes, ...]:
    """The digests of a token file; OSError/ValueError (no token in it) when it cannot serve."""
    st = os.stat(path)
    return _read(path, (st.st_ino, st.st_mtime_ns, st.st_size))


def check_file(settings: Settings) -> None:
    """ValueError naming the variable when the client tokens file is set but holds no usable token (start-up check)."""
    if settings.client_tokens_file is None:
        return
    try:
        file_tokens(settings.client_tokens_file)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"COMMITRISK_CLIENT_TOKENS_FILE: {settings.client_tokens_file}: {reason}") from None


def client_tokens(settings: Settings) -> tuple[bytes, ...] | None:
    """The digests of every accepted client token, or None when client tokens are off (the default)."""
    listed = settings.client_tokens.get_secret_value() if settings.client_tokens is not None else ""
    path = settings.client_tokens_file
    if path is None:
        return parse(listed) or None
    try:
        found = _last_good[path] = file_tokens(path)
    except (OSError, ValueError):
        found = _last_good.get(path, ())
    return parse(listed) + found


def require_client(request: Request, settings: Settings) -> None:
    """With client tokens on: 401 without a bearer token, 403 with one that is neither a client nor the admin token."""
    if settings.client_tokens is None and settings.client_tokens_file is None:
        return  # off: the scoring routes are open (the embedded default)
    accepted = client_tokens(settings)
    if accepted is None:
        return
    token = bearer(request)
    if token is None:
        raise Unauthenticated("this route needs 'Authorization: Bearer <client token>'")
    if not accepted and settings.client_tokens_file is not None:
        raise Forbidden("no client token can be accepted: COMMITRISK_CLIENT_TOKENS_FILE holds none")
    if not (matches(token, accepted) or is_admin(token, settings)):
        raise Forbidden("wrong client token")
