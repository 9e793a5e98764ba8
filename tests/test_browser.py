"""Browser test of the built HTML book.

Serves ``_build/html`` on a local port and opens every page listed in
``_toc.yml`` in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright), once with a light and once with a dark colour scheme. For each
page it checks that

* nothing is requested from any host other than the local server (every such
  request is aborted and reported), and no local request fails;
* the browser console shows no errors and no uncaught exceptions;
* MathJax has typeset every formula (no raw TeX left in the visible text, no
  MathJax error nodes, no undefined macros);
* every image has loaded;
* every internal link points to a page that exists (HTTP 200).

It saves full-page screenshots to ``_build/screenshots/<page>-<mode>.png``.

Build the book first (``bash scripts/build_book.sh``, or ``bash scripts/test.sh``
which builds and then runs this test). Without a build the test is skipped,
except under CI (``CI`` set), where a missing build is an error.
Environment: ``LVAE_CHROMIUM`` overrides the browser executable.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import socketserver
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = ROOT / "_build" / "html"
SCREENSHOT_DIR = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("LVAE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
TIMEOUT_MS = 60_000
IN_CI = os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def _toc_pages() -> list[str]:
    """Every document of _toc.yml, in reading order, without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))
    pages: list[str] = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [re.sub(r"\.(md|ipynb|rst)$", "", p) for p in pages]


PAGES = _toc_pages()


# --------------------------------------------------------------------------- fixtures


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _missing(reason: str):
    if IN_CI:
        pytest.fail(reason + " (under CI this is an error)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def book_url():
    """Base URL of a local HTTP server serving _build/html."""
    if not (HTML_DIR / "index.html").is_file():
        _missing(
            f"{HTML_DIR / 'index.html'} does not exist: build the book first "
            "(bash scripts/build_book.sh)"
        )
    handler = functools.partial(_QuietHandler, directory=str(HTML_DIR))
    server = _Server(("127.0.0.1", 0), handler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by Playwright."""
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found: install Debian's chromium (bash scripts/setup.sh)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


# --------------------------------------------------------------------------- page checks

# Text of the article without code, scripts and typeset math.
_VISIBLE_TEXT_JS = """
() => {
  const root = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const clone = root.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight, textarea')
       .forEach(el => el.remove());
  return clone.textContent;
}
"""

_MATH_STATE_JS = """
() => {
  const all = Array.from(document.querySelectorAll('span.math, div.math'));
  const untypeset = all.filter(el => !el.querySelector('mjx-container'));
  const errors = Array.from(document.querySelectorAll('mjx-merror'))
                      .map(el => el.getAttribute('data-mjx-error') || el.textContent);
  // With the noundefined extension an unknown macro is drawn as red text; its
  // name is in the assistive MathML, the CHTML node only carries the colour.
  let undefinedMacros = Array.from(document.querySelectorAll('mjx-assistive-mml mtext'))
      .filter(el => el.getAttribute('mathcolor') === 'red' || /^\\[A-Za-z]+$/.test(el.textContent.trim()))
      .map(el => el.textContent.trim());
  if (!undefinedMacros.length) {
    const red = document.querySelectorAll('mjx-container mjx-mtext[style*="red"]').length;
    if (red) undefinedMacros = [`${red} red mtext node(s)`];
  }
  return {
    mathNodes: all.length,
    containers: document.querySelectorAll('mjx-container').length,
    untypeset: untypeset.slice(0, 5).map(el => el.textContent.slice(0, 80)),
    errors: errors.slice(0, 5),
    undefinedMacros: undefinedMacros.slice(0, 5),
  };
}
"""

_BROKEN_IMAGES_JS = """
() => Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => img.getAttribute('src') || '(no src)')
"""

_WIDGETS_RENDERED_JS = """
() => Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
  .every(script => {
    const area = script.previousElementSibling;
    return area && area.classList.contains('widget-subarea') && area.querySelector('.jupyter-widgets');
  })
"""

_LINKS_JS = """
() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)
"""

_RAW_TEX = [
    ("$$", re.compile(r"\$\$")),
    ("\\begin{", re.compile(r"\\begin\{")),
    ("\\(", re.compile(r"\\\(")),
    ("\\[", re.compile(r"\\\[")),
    ("$...\\macro...$", re.compile(r"\$[^$\n]{0,200}?\\[A-Za-z]+[^$\n]{0,200}?\$")),
]


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in {"data", "blob", "about", "chrome", "chrome-extension"}:
        return True
    return parsed.hostname in LOCAL_HOSTS


def _screenshot_name(page_id: str, mode: str) -> Path:
    return SCREENSHOT_DIR / f"{page_id.replace('/', '__')}-{mode}.png"


def _check_links(page_url: str, hrefs: list[str], base: str) -> list[str]:
    problems = []
    seen: set[str] = set()
    for href in hrefs:
        url, _fragment = urldefrag(urljoin(page_url, href))
        if not url.startswith(base) or url in seen:
            continue  # external hyperlinks are fine; only check the book's own pages
        seen.add(url)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:  # pragma: no cover - server trouble
            problems.append(f"link {url}: {exc}")
            continue
        if status != 200:
            problems.append(f"link {url}: HTTP {status}")
    return problems


def _visit(chromium, book_url: str, page_id: str, mode: str) -> tuple[list[str], list[str]]:
    """Open one page in one colour scheme; return (problems, hrefs)."""
    problems: list[str] = []
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900},
        color_scheme=mode,
        device_scale_factor=1,
    )
    external: list[str] = []

    def route(route_obj):
        url = route_obj.request.url
        if _is_local(url):
            route_obj.continue_()
        else:
            external.append(url)
            route_obj.abort("blockedbyclient")

    context.route("**/*", route)
    page = context.new_page()
    console_errors: list[str] = []
    page.on(
        "console",
        lambda msg: console_errors.append(f"{msg.text} ({msg.location.get('url', '')})")
        if msg.type == "error"
        else None,
    )
    page.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))
    failed: list[str] = []
    page.on(
        "requestfailed",
        lambda req: failed.append(f"{req.url}: {req.failure}") if _is_local(req.url) else None,
    )
    page.on(
        "response",
        lambda resp: failed.append(f"{resp.url}: HTTP {resp.status}")
        if resp.status >= 400
        else None,
    )

    url = urljoin(book_url, page_id + ".html")
    hrefs: list[str] = []
    try:
        response = page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
        if response is None or response.status != 200:
            problems.append(f"{url}: HTTP {response.status if response else 'no response'}")

        theme = page.evaluate("document.documentElement.dataset.theme")
        if theme != mode:
            problems.append(f"theme is {theme!r}, expected {mode!r}")

        # MathJax: wait until it has started and typeset the page.
        page.wait_for_function(
            "() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)",
            timeout=TIMEOUT_MS,
        )
        page.evaluate(
            "() => window.MathJax && window.MathJax.startup ? window.MathJax.startup.promise.then(() => true) : true"
        )
        math = page.evaluate(_MATH_STATE_JS)
        if math["mathNodes"] and not math["containers"]:
            problems.append(f"{math['mathNodes']} math nodes but no mjx-container: MathJax did not run")
        if math["untypeset"]:
            problems.append(f"math left untypeset: {math['untypeset']}")
        if math["errors"]:
            problems.append(f"MathJax errors: {math['errors']}")
        if math["undefinedMacros"]:
            problems.append(f"undefined TeX macros: {math['undefinedMacros']}")
        text = page.evaluate(_VISIBLE_TEXT_JS)
        for label, pattern in _RAW_TEX:
            hit = pattern.search(text)
            if hit:
                start = max(hit.start() - 40, 0)
                problems.append(f"raw TeX {label!r} in the text: ...{text[start:hit.end() + 40]!r}...")

        # Widgets: every embedded widget view must be rendered by the widget
        # manager (it inserts a div.widget-subarea before the view's script).
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if views:
            try:
                page.wait_for_function(_WIDGETS_RENDERED_JS, timeout=TIMEOUT_MS)
            except Exception:  # noqa: BLE001 - reported as a problem below
                problems.append(f"{views} ipywidgets views on the page, not all were rendered")

        # Images: make lazy images load, then wait for all of them.
        page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
        page.wait_for_function(
            "() => Array.from(document.images).every(i => i.complete)", timeout=TIMEOUT_MS
        )
        broken = page.evaluate(_BROKEN_IMAGES_JS)
        if broken:
            problems.append(f"images that did not load: {broken}")

        hrefs = page.evaluate(_LINKS_JS)
        page.wait_for_timeout(300)  # let late console messages arrive
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(_screenshot_name(page_id, mode)), full_page=True)
    finally:
        # Take the records before closing: closing cancels requests still in flight.
        console_seen, external_seen, failed_seen = list(console_errors), list(external), list(failed)
        context.close()

    problems += [f"console error: {m}" for m in console_seen]
    problems += [f"request to a non-local host (blocked): {u}" for u in external_seen]
    problems += [f"failed request: {f}" for f in failed_seen if not any(u in f for u in external_seen)]
    return problems, hrefs


@pytest.mark.parametrize("page_id", PAGES)
def test_page_renders_offline_without_errors(chromium, book_url, page_id):
    problems: list[str] = []
    hrefs: list[str] = []
    for mode in ("light", "dark"):
        found, hrefs = _visit(chromium, book_url, page_id, mode)
        problems += [f"[{mode}] {p}" for p in found]
    problems += _check_links(urljoin(book_url, page_id + ".html"), hrefs, book_url)
    assert not problems, f"{page_id}:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- static checks

_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"'](?:https?:)?//", re.I)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
_HREF_EXTERNAL = re.compile(r"\bhref=[\"'](?:https?:)?//", re.I)
_REL = re.compile(r"\brel=[\"']([^\"']*)[\"']", re.I)
_FETCHING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon",
                  "shortcut", "apple-touch-icon", "manifest", "preconnect", "dns-prefetch"}
_CSS_EXTERNAL = re.compile(
    r"(?:@import\s+(?:url\()?\s*[\"']?|url\(\s*[\"']?)(?:https?:)?//", re.I
)


def test_built_html_loads_nothing_from_the_network():
    """No page references a script, stylesheet or font on another host."""
    if not (HTML_DIR / "index.html").is_file():
        _missing("the book is not built: run bash scripts/build_book.sh")
    problems = []
    for html_file in sorted(HTML_DIR.rglob("*.html")):
        rel = html_file.relative_to(HTML_DIR)
        if rel.parts[0] == "_static":
            continue
        text = html_file.read_text(encoding="utf8", errors="replace")
        for hit in _EXTERNAL_SCRIPT.finditer(text):
            problems.append(f"{rel}: {text[hit.start():hit.start() + 120]}")
        for tag in _LINK_TAG.findall(text):
            rels = set((_REL.search(tag).group(1) if _REL.search(tag) else "").lower().split())
            if _HREF_EXTERNAL.search(tag) and rels & _FETCHING_RELS:
                problems.append(f"{rel}: {tag[:160]}")
    for css_file in sorted((HTML_DIR / "_static").rglob("*.css")):
        text = css_file.read_text(encoding="utf8", errors="replace")
        # Drop comments: several stylesheets mention font URLs in comments.
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for hit in _CSS_EXTERNAL.finditer(text):
            problems.append(f"{css_file.relative_to(HTML_DIR)}: {text[hit.start():hit.start() + 120]}")
    assert not problems, "external assets referenced:\n  " + "\n  ".join(problems)
