"""The browser the browser tests use: Debian's Chromium, headless, driven by Playwright.

``CHROMIUM`` is its executable (``LVAE_CHROMIUM`` overrides it) and ``CHROMIUM_ARGS`` the
flags it runs with (no sandbox, no GPU, no network of its own). ``in_browser_thread`` runs
a piece of browser work in a thread of its own: the browser test of the book keeps a sync
Playwright open in pytest's main thread for the whole session, and Playwright allows one
sync instance per thread.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

CHROMIUM = os.environ.get("LVAE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]


def in_browser_thread(sync_api, work: Callable[[Any], Any]) -> Any:
    """Launch Chromium with ``sync_api`` (``playwright.sync_api``) in a new thread, return
    ``work(browser)``, and close the browser; an exception in ``work`` is raised here."""
    outcome: dict = {}

    def target():
        try:
            with sync_api.sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
                try:
                    outcome["value"] = work(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="browser", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
