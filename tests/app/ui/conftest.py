"""Fixtures for the web-page tests: Debian's chromium driven by playwright (no browser download here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import tool

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless chromium for the session (`/usr/bin/chromium`, installed by scripts/test.sh)."""
    executable = tool("chromium", "apt-get install chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
