"""Small Sphinx extension with the book's build-time glue.

* Fast mode: ``LVAE_FAST=1`` makes every chapter run a small configuration.
  Executed notebooks are cached by jupyter-cache, keyed on the notebook's
  content only, so fast-mode and full-mode outputs get separate caches
  (``_build/.jupyter_cache`` and ``_build/.jupyter_cache_fast``), and the
  mode is a config value that invalidates the Sphinx environment when it
  changes.

* Results the chapters read: jupyter-cache keys a notebook on its code alone, so a
  chapter that loads ``results/`` (a learning curve, a shipped model) would keep showing
  the old outputs after those files change. Every build hashes ``results/`` (without the
  ``resume/`` and ``logs/`` folders of runs in progress) and, when the hash differs from
  the one the cache was built with, drops the cached outputs of the notebooks that mention
  ``results/``, so that they run again.

* Unique scripts: with Sphinx 7.4, an inline script registered after the
  builder is initialised (e.g. by sphinx-togglebutton at
  ``env-before-read-docs``) is emitted twice on every page, because the
  builder stores it once with ``filename=None`` and once with
  ``filename=''``. Repeated ``const`` declarations in such scripts are a
  SyntaxError in the browser console (this is what made sphinx-thebe log
  "THEBE_JS_URL has already been declared"), so every page gets its script
  list de-duplicated here.

* Widget scripts only where widgets are shown: myst-nb adds the widget
  manager (about 4 MB of JavaScript) to every page whose notebook saved widget
  state, even when every widget output is hidden (``remove-output``). Pages
  without a widget view get neither the state nor the scripts.

* CDN links in notebook outputs: matplotlib's JavaScript animations
  (``Animation.to_jshtml``) link Font Awesome 4 from a CDN for their buttons.
  The page body is rewritten to use the vendored copy instead (see
  ``CDN_REWRITES``; add a pattern there for any other output that links a CDN).

* Appendix numbers: Sphinx numbers the figures, equations and exercises of an
  unnumbered document 1, 2, ..., which reads like chapter 1's. The appendix's
  items are numbered A.1, A.2, ... instead (``lvae_appendix_letters`` maps a
  document to its letter), so "Exercise A.2" and "(A.3)" say where they are.

* Colab opens the plain edition: Colab shows MyST (citations, cross-references,
  exercises) as raw text, so each chapter's Colab launch button opens
  ``notebooks/<chapter>.ipynb``, written by ``scripts/plain_notebooks.py``, instead of
  ``book/<chapter>.ipynb``. sphinx-book-theme has no setting for the path of one
  launch provider; the hook rewrites the URL the theme built.

* A bounded wait for a new kernel: nbclient waits for a kernel's ``kernel_info``
  reply as long as a cell may run, and on a busy machine that reply is sometimes never
  seen (``kernel_wait.py`` says more); the wait now ends after 30 s and the notebook runs.

* Offline assets: MathJax and the widget manager are served from
  ``book/_static/vendor`` (fetched by ``scripts/fetch_vendor.sh``). A build
  without them would silently produce pages that cannot typeset math, so it
  stops with an error instead.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

VENDOR_FILES = (
    "vendor/mathjax/es5/tex-chtml.js",
    "vendor/requirejs/require.js",
    "vendor/html-manager/dist/embed-amd.js",
    "vendor/font-awesome/css/font-awesome.min.css",
    "vendor/noto-sans-sc/400.css",
)

# (pattern of a CDN URL found in notebook outputs, vendored file under _static)
CDN_REWRITES = (
    (
        re.compile(
            r"https?://(?:maxcdn|stackpath|netdna)\.bootstrapcdn\.com/font-awesome/"
            r"4\.[0-9.]+/css/font-awesome(?:\.min)?\.css"
        ),
        "vendor/font-awesome/css/font-awesome.min.css",
    ),
)


def fast_mode() -> bool:
    return os.environ.get("LVAE_FAST", "0").strip().lower() in {"1", "true", "yes"}


def _set_execution_cache(app: Sphinx, config: Config) -> None:
    base = Path(app.outdir).parent  # _build/
    name = ".jupyter_cache_fast" if fast_mode() else ".jupyter_cache"
    config.nb_execution_cache_path = str(base / name)


RESULTS_UNREAD = {"resume", "logs"}   # state of runs in progress, never read by a chapter


def _results_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "results").rglob("*")):
        rel = path.relative_to(root / "results")
        if (not path.is_file() or RESULTS_UNREAD & set(rel.parts)
                or any(part.startswith(".") for part in rel.parts)):
            continue
        digest.update(f"{rel.as_posix()}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _expire_results_readers(app: Sphinx, config: Config) -> None:
    root = Path(app.srcdir)
    cache_path = Path(config.nb_execution_cache_path)
    stamp = cache_path / "results.sha256"
    digest = _results_digest(root)
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    readers = {p.name for p in root.glob("book/*.ipynb")
               if "results/" in p.read_text(encoding="utf-8")}
    if (cache_path / "global.db").is_file() and readers:
        from jupyter_cache import get_cache

        cache = get_cache(cache_path)
        for record in cache.list_cache_records():
            if Path(record.uri).name in readers:
                cache.remove_cache(record.pk)
    cache_path.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")


def _check_vendor(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    static_dirs = [Path(app.confdir, p) for p in app.config.html_static_path]
    for rel in VENDOR_FILES:
        if not any((d / rel).is_file() for d in static_dirs):
            raise ConfigError(
                f"_static/{rel} is missing: run `bash scripts/fetch_vendor.sh` "
                "(the book serves MathJax and the widget manager itself, offline)"
            )


def _script_key(js: Any) -> tuple:
    filename = getattr(js, "filename", js) or ""
    attributes = getattr(js, "attributes", {}) or {}
    priority = getattr(js, "priority", 500)
    return (str(filename), priority, tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _dedupe_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_TYPE = "application/vnd.jupyter.widget-view+json"


def _drop_unused_widget_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    scripts = context.get("script_files")
    body = context.get("body")
    if not isinstance(scripts, list) or not isinstance(body, str) or WIDGET_VIEW_TYPE in body:
        return
    widget_js = {"_static/" + path for path in (app.config.nb_ipywidgets_js or {})}

    def is_widget_script(js: Any) -> bool:
        filename = str(getattr(js, "filename", js) or "")
        attributes = getattr(js, "attributes", {}) or {}
        return filename in widget_js or attributes.get("type") == WIDGET_STATE_TYPE

    context["script_files"] = [js for js in scripts if not is_widget_script(js)]


def _rewrite_cdn_links(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    body = context.get("body")
    pathto = context.get("pathto")
    if not isinstance(body, str) or pathto is None:
        return
    for pattern, local in CDN_REWRITES:
        if pattern.search(body):
            body = pattern.sub(pathto("_static/" + local, 1), body)
    context["body"] = body
# Each appendix's letter (the default of the config value lvae_appendix_letters); the
# plain edition (scripts/plain_notebooks.py) numbers the appendix with the same letters.
APPENDIX_LETTERS = {"book/appendix_gaussians": "A", "book/appendix_practice": "B"}


def _letter_appendix_numbers(app: Sphinx, env: Any) -> list[str]:
    """Number the figures, equations and exercises of each appendix A.1, A.2, ... in the
    order Sphinx counted them (in an unnumbered part its count runs on from one page to
    the next, so each appendix restarts at 1 under its own letter).

    Runs after Sphinx's toctree collector has assigned the numbers (``env-get-updated``,
    priority 500); idempotent, as the collector re-assigns them on every update.
    """
    letters = app.config.lvae_appendix_letters or {}
    for docname, letter in letters.items():
        for numbers in env.toc_fignumbers.get(docname, {}).values():
            counted = sorted(numbers.items(), key=lambda item: tuple(
                x for x in item[1] if isinstance(x, int)))
            for i, (key, _number) in enumerate(counted, start=1):
                numbers[key] = (letter, i)
    return []


PLAIN_EDITION = "notebooks"


def plain_edition_url(url: str, pagename: str, srcdir: Path) -> str | None:
    """The Colab URL of the chapter's plain edition, from the one the theme built for
    ``<pagename>.ipynb`` (``.../github/<org>/<repo>/blob/<branch>/book/03_vae.ipynb``
    becomes ``.../blob/<branch>/notebooks/03_vae.ipynb``); None when the chapter has no
    plain edition."""
    name = Path(pagename).name + ".ipynb"
    source = f"{pagename}.ipynb"
    if not url.endswith("/" + source):
        return None
    if not (Path(srcdir) / PLAIN_EDITION / name).exists():
        return None
    return url[: -len(source)] + f"{PLAIN_EDITION}/{name}"


def _colab_opens_plain_edition(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    """Point the page's Colab launch button at the plain edition (after the theme's
    ``add_launch_buttons``, priority 501)."""
    for group in context.get("header_buttons") or []:
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") != "Colab":
                continue
            url = plain_edition_url(button["url"], pagename, Path(app.srcdir))
            if url is None:
                LOGGER.warning(f"{pagename}: no plain edition for its Colab button "
                               f"({PLAIN_EDITION}/{Path(pagename).name}.ipynb): run "
                               "python scripts/plain_notebooks.py")
            else:
                button["url"] = url


def setup(app: Sphinx) -> dict[str, Any]:
    import kernel_wait  # book/_ext is on sys.path (_config.yml)
    kernel_wait.install()
    # A change of mode changes this value, and "env" makes Sphinx re-read
    # every document instead of reusing doctrees from the other mode.
    app.add_config_value("lvae_fast_mode", fast_mode(), "env", bool)
    app.add_config_value("lvae_appendix_letters", APPENDIX_LETTERS, "env", dict)
    app.connect("config-inited", _set_execution_cache, priority=100)
    app.connect("config-inited", _expire_results_readers, priority=110)
    app.connect("env-get-updated", _letter_appendix_numbers, priority=900)
    app.connect("builder-inited", _check_vendor)
    # Run after every extension that adds per-page scripts (myst-nb: 500).
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _drop_unused_widget_scripts, priority=910)
    app.connect("html-page-context", _rewrite_cdn_links, priority=900)
    app.connect("html-page-context", _colab_opens_plain_edition, priority=510)
    return {
        "version": "1.0",
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
