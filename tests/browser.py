"""Headless Chromium for page tests: the system's Chromium (`make install` puts Debian's there),
driven by Playwright, which downloads no browser of its own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def chromium_path() -> str:
    found = os.environ.get("RAYTAG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(found, os.X_OK):
        pytest.fail(f"no Chromium at {found}: run `make install` (as root it installs Debian's chromium), "
                    "or set RAYTAG_CHROMIUM to a Chromium binary")
    return found


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A new headless browser (Playwright's ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        try:
            yield browser
        finally:
            browser.close()


def page_errors(page: Any) -> list[str]:
    """A list that collects the page's uncaught script errors from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
