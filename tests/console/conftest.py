"""The web console in a real browser: Debian's Chromium driven by Playwright against a real
`nimbus serve`. Every page fails its test on a console error, an uncaught exception or a
Content-Security-Policy violation; screenshots go to test-results/console/ (NIMBUS_TEST_OUTPUT)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.server import REPO, NimbusProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Playwright's own browser download cannot work offline; these flags keep Chromium from
# reaching out (updates, sync, safe browsing lists) and run it headless as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Under load (2 cores, several suites at once) a page can take seconds to settle: assertions
# wait up to 15 s, actions 20 s; each test's own timeout (test_console.py) bounds the whole.
expect.set_options(timeout=15_000)

OUTPUT = Path(os.environ.get("NIMBUS_TEST_OUTPUT", REPO / "test-results")) / "console"

# Installed in the page before any of its scripts run: a CSP violation becomes a console
# error, which the page's console listener records (pushed, never pulled: asking a page that
# hangs for its record would hang the test's teardown too).
_CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture(scope="session")
def console_server(tmp_path_factory) -> Iterator[NimbusProcess]:
    if not (REPO / "console" / "static" / "index.html").is_file():
        pytest.fail("the console is not built: run scripts/console.sh (make install does)")
    proc = NimbusProcess(tmp_path_factory.mktemp("console") / "data")
    proc.start()
    yield proc
    proc.stop()


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is started, and any later test that calls asyncio.run/anyio.run (the MCP
# tests) would fail with "Already running asyncio in this thread".
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class ConsolePage:
    """A browser tab on the console that remembers everything the page complained about."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """A console error this test expects (e.g. the 401 of a wrong key)."""
        self.allowed.append(re.compile(pattern))

    def open(self, fragment: str = "") -> Page:
        self.page.goto(f"{self.url}/{fragment}")
        return self.page

    def login(self, key: str) -> None:
        self.open()
        self.page.get_by_label("API key", exact=True).fill(key)
        self.page.get_by_role("button", name="Open console").click()

    def shot(self, name: str) -> Path:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def complaints(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console(console_server, browser, request) -> Iterator[ConsolePage]:
    size = getattr(request, "param", {"width": 1280, "height": 800})
    context = browser.new_context(viewport=size)
    context.add_init_script(_CSP_WATCH)
    page = context.new_page()
    page.set_default_timeout(20_000)
    cp = ConsolePage(page, console_server.url)
    page.on("console", lambda m: m.type == "error" and cp.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: cp.errors.append(f"uncaught: {e}"))
    yield cp
    complaints = cp.complaints()
    context.close()
    assert complaints == [], f"the page reported errors: {complaints}"


@pytest.fixture
def signed_in(console, console_server) -> ConsolePage:
    console.login(console_server.api_key)
    console.page.get_by_role("heading", name="Functions").wait_for()
    return console
