"""Fixtures the browser tests share: Debian's chromium, driven by Playwright on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, started once per test module; never a downloaded browser."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: the browser tests need Debian's chromium package"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: .ci/run installs it; never skipped in CI)")
        pytest.skip(f"{reason} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
