"""The browser side of the lab tests: one Chromium per module, a page per test.

Each module brings its own ``lab`` fixture (a JupyterLab with that module's notebooks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from labserver import ARGS, CHROMIUM, REPO

ARTIFACTS = REPO / "test-artifacts" / "lab"


@pytest.fixture(scope="module")
def browser(lab: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, lab: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        yield page
    finally:  # the whole page as the test left it, to look at when it fails
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        page.close()
