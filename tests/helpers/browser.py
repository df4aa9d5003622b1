"""Headless Chromium for the web app's tests: Debian's /usr/bin/chromium driven by Playwright
(never `playwright install`, which downloads a browser of its own)."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("XUETU_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARTIFACTS = Path(os.environ.get("XUETU_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "web"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def launch(playwright):
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) "
                           "or `apt-get install chromium chromium-driver`")
    BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
