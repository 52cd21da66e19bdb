"""For the browser tests (the `chromium` fixture itself is conftest.py's): where Chromium is,
a phone, and a photograph that first checks what a look would catch (every image loads,
nothing scrolls sideways).

Usage in a test module::

    from browsing import PHONE, needs_chromium, send, shot
    pytestmark = needs_chromium

    def test_x(chromium, bot):            # the `chromium` fixture is conftest.py's
        page = chromium.new_context(**PHONE).new_page()
        page.goto(...); shot(page, "name")
        page.goto(f"{bot.url}/dev"); send(page, "1")   # typed in the sandbox's chat; its answer

Screenshots go to test-artifacts/screenshots/. Needs Debian's Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ARTIFACTS
from helpers import WECHAT_UA

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium not installed at /usr/bin/chromium"
)
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "user_agent": WECHAT_UA}  # fmt: skip
SHOTS = ARTIFACTS / "screenshots"


def shot(page, name: str, full_page: bool = True) -> Path:
    """Photograph the page, after checking what a look would catch."""
    page.wait_for_load_state("load")
    broken = page.evaluate(
        "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == [], f"{name}: images that do not load: {broken}"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow} px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def send(page, text: str) -> None:
    """Type `text` in the sandbox's chat (/dev) and wait for the bot's answer to show."""
    before = page.locator(".msg.bot").count()
    page.fill("#text", text)
    page.press("#text", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.msg.bot').length > n", arg=before, timeout=10_000
    )
