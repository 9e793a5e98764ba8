"""The chapters as a student meets them: opened and run in a real JupyterLab.

The browser test starts JupyterLab on 127.0.0.1 (a free port, a random token, its own
configuration, settings and workspace folders, ``LVAE_FAST=1``) on a temporary copy of
the chapters, and drives Debian's Chromium with Playwright. For every chapter of
``_toc.yml`` it opens the notebook in a fresh page (MathJax keeps macro definitions for
the life of a page, so one chapter's macro cell must not help the next), and

* checks that MathJax typeset every formula: no error nodes, no undefined macros (with
  JupyterLab's ``noundefined`` extension those are drawn as red text), no raw TeX;
* runs all cells in a fresh kernel and checks that every code cell ran and none ended
  in an error;
* on a chapter with a widget, moves one control (a slider, a toggle or a menu) and
  checks that the figure under it changes;
* saves screenshots to ``_build/jupyterlab/<chapter>.png`` (the top of the chapter
  after the run) and ``<chapter>-widget.png`` (the widget after the move), with a
  summary in ``_build/jupyterlab/summary.txt``;
* shuts the chapter's kernel down.

JupyterLab is stopped at the end whatever happened. Without JupyterLab or Chromium the
test is skipped, except under CI (``CI`` set), where that is an error. Environment:
``LVAE_CHROMIUM`` (the browser), ``LVAE_JUPYTERLAB_CHAPTERS`` (comma-separated chapter
names, to run a few).

The static tests below it check the sources: every chapter starts with the macro cell
that ``scripts/sync_macros.py`` writes from ``_config.yml``, DEVELOPERS.md's macro table
agrees with ``_config.yml``, and every ``ipywidgets`` import is guarded.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "_build" / "jupyterlab"
CHROMIUM = os.environ.get("LVAE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}
# The checkpoint cache as it was before conftest gave each test its own: the chapters
# then load what the notebook step of scripts/test.sh trained instead of training again.
ORIGINAL_CACHE_DIR = os.environ.get("LVAE_CACHE_DIR")
RUN_TIMEOUT_S = 600          # per chapter, for all its cells
PAGE_TIMEOUT_MS = 120_000    # JupyterLab's first load on a busy 2-core machine


def _toc_notebooks() -> list[str]:
    """The chapter notebooks of _toc.yml, in reading order (file names without extension)."""
    from test_browser import _toc_pages      # the one reader of _toc.yml in the tests
    return [Path(f).name for f in _toc_pages() if (ROOT / f"{f}.ipynb").is_file()]


CHAPTERS = _toc_notebooks()
_selected = os.environ.get("LVAE_JUPYTERLAB_CHAPTERS")
BROWSER_CHAPTERS = ([c for c in CHAPTERS if c in _selected.split(",")] if _selected
                    else CHAPTERS)
# The control to move where a chapter has several kinds (default: its first slider).
PREFERRED_CONTROL = {"06_ladder_vae": "toggle", "07_reproducing": "dropdown"}


def _load_sync_macros():
    spec = importlib.util.spec_from_file_location("sync_macros", ROOT / "scripts" / "sync_macros.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code(cell) -> str:
    """A code cell's source with IPython magics and shell escapes commented out."""
    return "\n".join(re.sub(r"^(\s*)[%!]", r"\1#", line) for line in cell.source.splitlines())


def _uses_widgets(nb) -> bool:
    imports = re.compile(r"^\s*(import ipywidgets|from ipywidgets import)", re.M)
    return any(c.cell_type == "code" and imports.search(c.source) for c in nb.cells)


# --------------------------------------------------------------------------- static checks


def test_every_chapter_starts_with_the_macro_cell_of_config():
    """One source for the macros: _config.yml; the notebooks carry what it generates."""
    sync = _load_sync_macros()
    macros = sync.config_macros()
    expected = sync.macro_cell_source(macros)
    assert len(macros) >= 10 and "KLD" in macros
    for name in ("x", "E", "KLD", "given"):
        assert re.search(rf"\$\\def\\{name}(#\d)*\{{", expected), name
    problems = []
    for path in sync.chapter_notebooks():
        first = nbformat.read(path, as_version=4).cells[0]
        if first.get("id") != sync.CELL_ID or first.cell_type != "markdown":
            problems.append(f"{path.name}: the first cell is not the macro cell")
        elif first.source != expected:
            problems.append(f"{path.name}: the macro cell differs from _config.yml")
        elif first.metadata.get("tags") != ["remove-cell"]:
            problems.append(f"{path.name}: the macro cell is not tagged remove-cell")
    assert not problems, "run python scripts/sync_macros.py:\n  " + "\n  ".join(problems)


def test_markdown_pages_use_no_config_only_macro():
    """intro.md and glossary.md open in JupyterLab's Markdown viewer, which knows nothing of
    _config.yml and has no macro cell: their formulas must not use the book's macros."""
    macros = _load_sync_macros().config_macros()
    used = []
    for name in ("intro.md", "glossary.md"):
        text = (ROOT / "book" / name).read_text(encoding="utf8")
        assert "$" in text                               # the pages do hold formulas
        used += [f"{name}: \\{m}" for m in macros if re.search(rf"\\{m}(?![A-Za-z])", text)]
    assert not used, "write these formulas out in full:\n  " + "\n  ".join(used)


def test_developer_table_lists_the_config_macros():
    macros = _load_sync_macros().config_macros()
    text = (ROOT / "DEVELOPERS.md").read_text(encoding="utf8")
    section = text.split("## MathJax macros", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (`.+?`) \| (`.+?`) \|", section, re.M)
    listed = {}
    for names, bodies in rows:
        for n, b in zip(re.findall(r"`\\(\w+)(?:\{[^`]*\})?`", names),
                        re.findall(r"`([^`]+)`", bodies)):
            listed[n] = b
    assert set(listed) == set(macros), (set(listed) ^ set(macros))
    for name, (body, n_args) in macros.items():
        if n_args == 0:
            assert "{" + listed[name] + "}" == body, (name, listed[name], body)


def _guarded(tree: ast.AST) -> list[int]:
    """Line numbers of ipywidgets imports not inside a ``try`` that catches ImportError."""
    bad = []

    def catches_import_error(node: ast.Try) -> bool:
        for handler in node.handlers:
            names = ast.unparse(handler.type) if handler.type else "BaseException"
            if any(n in names for n in ("ImportError", "ModuleNotFoundError", "Exception")):
                return True
        return False

    def visit(node, guarded):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""])
            if any(m.split(".")[0] == "ipywidgets" for m in modules) and not guarded:
                bad.append(node.lineno)
        if isinstance(node, ast.Try):
            inner = guarded or catches_import_error(node)
            for child in node.body:
                visit(child, inner)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return bad


def test_widget_imports_are_guarded():
    """Without ipywidgets a chapter still runs (the book's figures show the same)."""
    assert _guarded(ast.parse("import ipywidgets as w")) == [1]          # the checker works
    assert _guarded(ast.parse("try:\n import ipywidgets\nexcept ImportError:\n pass")) == []
    problems = []
    for name in CHAPTERS:
        nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and "ipywidgets" in cell.source:
                for line in _guarded(ast.parse(_code(cell))):
                    problems.append(f"{name} cell {i} line {line}")
    assert not problems, "unguarded ipywidgets imports: " + ", ".join(problems)


# --------------------------------------------------------------------------- JupyterLab


def _missing(reason: str):
    if IN_CI:
        pytest.fail(reason + " (under CI this is an error)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """Lab settings for a quiet, reproducible run (no news, no update checks)."""
    news = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


class _Lab:
    def __init__(self, url: str, token: str, workdir: Path, log: Path):
        self.url, self.token, self.workdir, self.log = url, token, workdir, log

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self, notebook: str) -> None:
        for session in self.api("api/sessions"):
            if session.get("path", "").endswith(notebook):
                self.api(f"api/sessions/{session['id']}", method="DELETE")


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 on a copy of the chapters; stopped at the end."""
    if importlib.util.find_spec("jupyterlab") is None:
        _missing("jupyterlab is not installed (pip install -e '.[book]', or bash scripts/setup.sh)")
    base = tmp_path_factory.mktemp("jupyterlab")
    workdir = base / "book"
    workdir.mkdir()
    for name in CHAPTERS:
        shutil.copy2(ROOT / "book" / f"{name}.ipynb", workdir)
    for sub in ("config", "runtime", "settings", "workspaces"):
        (base / sub).mkdir()
    _write_settings(base / "settings")
    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ, LVAE_FAST="1", JUPYTER_PREFER_ENV_PATH="1",
               JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"))
    if ORIGINAL_CACHE_DIR:
        env["LVAE_CACHE_DIR"] = ORIGINAL_CACHE_DIR
    else:
        env.pop("LVAE_CACHE_DIR", None)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir}",
               "--ServerApp.allow_remote_access=False",
               "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={base / 'settings'}",
               f"--LabApp.workspaces_dir={base / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = base / "jupyterlab.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(command, cwd=workdir, env=env, stdout=log_file,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({server.returncode}):\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}api/status?token={token}", timeout=5).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not answer within 120 s:\n"
                                       + log.read_text()[-3000:]) from exc
                time.sleep(0.5)
        yield _Lab(url, token, workdir, log)
    finally:
        _stop(server)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, ARTIFACTS / "jupyterlab.log")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to JupyterLab (it shuts its kernels down), SIGKILL to its group if need be."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.pid, signal.SIGKILL)   # the kernels it started, if any are left
    except (ProcessLookupError, PermissionError):
        pass
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    """Playwright's sync API, checked here, used in a thread of its own per chapter.

    The browser test of the book keeps a sync Playwright open for the whole session in
    the main thread, and a second one cannot start in a thread that already has one; each
    thread may have its own.
    """
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found: install Debian's chromium (bash scripts/setup.sh)")
    return pytest.importorskip("playwright.sync_api")


def _in_browser_thread(sync_api, work):
    """Run ``work(context)`` with a fresh Chromium in a new thread; return its result."""
    outcome: dict = {}

    def target():
        try:
            with sync_api.sync_playwright() as pw:
                chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
                try:
                    outcome["value"] = work(chromium.new_context(viewport={"width": 1280,
                                                                           "height": 1000}))
                finally:
                    chromium.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="jupyterlab-browser", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture(scope="module")
def summary():
    rows: list[str] = []
    yield rows
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    header = f"{'chapter':<24} {'seconds':>7} {'formulas':>8} {'code cells':>10}  widget moved"
    (ARTIFACTS / "summary.txt").write_text("\n".join([header, *rows]) + "\n")


_READY_JS = """
() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  return !!(panel && panel.context && panel.context.isReady && panel.sessionContext
            && panel.sessionContext.session && panel.sessionContext.session.kernel
            && panel.sessionContext.session.kernel.status === 'idle'
            && panel.content.widgets.length > 0);
}
"""

# Math state of the rendered markdown cells. JupyterLab typesets with every MathJax TeX
# package, noerrors and noundefined included: a TeX error is an mjx-merror node, an
# undefined macro is red text whose name is in the assistive MathML.
_MATH_JS = r"""
() => {
  const md = Array.from(document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown'));
  const containers = md.flatMap(el => Array.from(el.querySelectorAll('mjx-container')));
  const errors = Array.from(document.querySelectorAll('.jp-Notebook mjx-merror'))
      .map(el => el.getAttribute('data-mjx-error') || el.textContent);
  const undefinedMacros = Array.from(document.querySelectorAll('.jp-Notebook mjx-assistive-mml mtext'))
      .filter(el => el.getAttribute('mathcolor') === 'red' || /^\\[A-Za-z]+$/.test(el.textContent.trim()))
      .map(el => el.textContent.trim());
  const red = document.querySelectorAll('.jp-Notebook mjx-container mjx-mtext[style*="red"]').length;
  const raw = md.map(el => {
      const clone = el.cloneNode(true);
      clone.querySelectorAll('mjx-container, code, pre').forEach(c => c.remove());
      return clone.textContent;
    }).join('\n');
  return {containers: containers.length, markdownCells: md.length, errors, undefinedMacros, red, raw};
}
"""

_RUN_STATE_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const code = panel.content.widgets.filter(w => w.model.type === 'code');
  const errors = [];
  code.forEach((w, i) => w.model.outputs.toJSON().forEach(o => {
    if (o.output_type === 'error') errors.push(`code cell ${i + 1}: ${o.ename}: ${o.evalue}`);
  }));
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {code: code.length, ran: code.filter(w => w.model.executionCount !== null).length,
          errors, status: kernel ? kernel.status : 'none'};
}
"""

_RAW_TEX = re.compile(r"\$\$|\\begin\{|\$[^$\n]{0,200}?\\[A-Za-z]+[^$\n]{0,200}?\$")


def _math_problems(page) -> tuple[list[str], int]:
    """Wait until the typeset formulas stop changing; return (problems, number of formulas)."""
    last, stable_since, deadline = -1, time.monotonic(), time.monotonic() + 60
    while True:
        state = page.evaluate(_MATH_JS)
        if state["containers"] != last:
            last, stable_since = state["containers"], time.monotonic()
        if time.monotonic() - stable_since > 2 or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    problems = []
    if state["errors"]:
        problems.append(f"MathJax errors: {state['errors'][:5]}")
    if state["undefinedMacros"]:
        problems.append(f"undefined macros: {sorted(set(state['undefinedMacros']))}")
    elif state["red"]:
        problems.append(f"{state['red']} red MathJax text nodes (undefined macros)")
    hit = _RAW_TEX.search(state["raw"])
    if hit:
        problems.append(f"raw TeX in the text: ...{state['raw'][max(hit.start() - 40, 0):hit.end() + 40]!r}")
    return problems, state["containers"]


def _scroll_to_top(page) -> None:
    page.evaluate("""async () => {
      const notebook = window.jupyterapp.shell.currentWidget.content;
      notebook.activeCellIndex = 0;
      await notebook.scrollToItem(0, 'start');
      notebook.widgets[0].node.scrollIntoView({block: 'start'});
    }""")
    page.wait_for_timeout(700)


def _move_widget(page, chapter: str):
    """Move one control of the chapter's first interactive figure; return what moved and
    the widget's box."""
    interacts = page.locator(".jp-Notebook .widget-interact")
    count = interacts.count()
    assert count, "the chapter imports ipywidgets but no interactive widget is shown"
    kinds = {"slider": ".widget-slider .noUi-handle", "toggle": ".widget-toggle-buttons",
             "dropdown": ".widget-dropdown select"}
    preferred = PREFERRED_CONTROL.get(chapter, "slider")
    box, kind = None, None
    for i in range(count):
        if interacts.nth(i).locator(kinds[preferred]).count():
            box, kind = interacts.nth(i), preferred
            break
    if box is None:
        box = interacts.first
        kind = next(k for k, sel in kinds.items() if box.locator(sel).count())
    box.evaluate("el => el.scrollIntoView({block: 'center'})")
    image = box.locator(".widget-output img").first
    image.wait_for(timeout=60_000)
    before = image.get_attribute("src")
    if kind == "slider":
        handle = box.locator(kinds["slider"]).first
        slider = box.locator(".widget-slider").first
        label = slider.locator(".widget-label").first.inner_text()
        readout = slider.locator(".widget-readout").first
        old = readout.inner_text()
        at_min = float(handle.get_attribute("aria-valuenow")) <= float(handle.get_attribute("aria-valuemin"))
        handle.focus()
        handle.press("ArrowRight" if at_min else "ArrowLeft")
        page.wait_for_function("([el, old]) => el.textContent.trim() !== old",
                               arg=[readout.element_handle(), old.strip()], timeout=30_000)
        what = f"slider {label or '(first)'}: {old} -> {readout.inner_text()}"
    elif kind == "toggle":
        buttons = box.locator(".widget-toggle-buttons button")
        target = next(buttons.nth(i) for i in range(buttons.count())
                      if "mod-active" not in (buttons.nth(i).get_attribute("class") or ""))
        what = f"toggle buttons: -> {target.inner_text()}"
        target.click()
    else:
        select = box.locator(kinds["dropdown"]).first
        options = select.locator("option").all_inner_texts()
        what = f"dropdown: {options[0]} -> {options[1]}"
        select.select_option(index=1)
    page.wait_for_function(
        "([el, before]) => { const img = el.querySelector('.widget-output img');"
        " return img && img.getAttribute('src') !== before; }",
        arg=[box.element_handle(), before], timeout=60_000)
    return what, box


@pytest.mark.parametrize("chapter", BROWSER_CHAPTERS)
def test_chapter_runs_and_renders_in_jupyterlab(jupyterlab, browser, summary, chapter):
    problems = _in_browser_thread(browser, lambda context: _check_chapter(context, jupyterlab,
                                                                         summary, chapter))
    assert not problems, f"{chapter}:\n  " + "\n  ".join(problems)


def _check_chapter(context, jupyterlab, summary, chapter) -> list[str]:
    """Open, run and check one chapter; return the problems found."""
    nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    page = context.new_page()
    console: list[str] = []
    page.on("pageerror", lambda exc: console.append(f"uncaught: {exc}"))
    t0 = time.monotonic()
    problems: list[str] = []
    moved, formulas = "-", 0
    try:
        # A workspace of its own, reset: JupyterLab would otherwise reopen the chapters
        # of earlier tests in this page (with their kernels and their macros).
        page.goto(f"{jupyterlab.url}lab/workspaces/{chapter}/tree/{chapter}.ipynb"
                  f"?reset&token={jupyterlab.token}", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(_READY_JS, timeout=PAGE_TIMEOUT_MS)
        page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")

        found, _ = _math_problems(page)
        problems += [f"on opening: {p}" for p in found]

        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            state = page.evaluate(_RUN_STATE_JS)
            if state["errors"] or (state["ran"] == state["code"] and state["status"] == "idle"):
                break
            assert time.monotonic() < deadline, f"not done after {RUN_TIMEOUT_S} s: {state}"
            page.wait_for_timeout(1000)
        assert state["code"] == n_code, f"{state['code']} code cells shown, {n_code} in the file"
        problems += [f"cell error: {e}" for e in state["errors"]]
        if not state["errors"] and state["ran"] != n_code:
            problems.append(f"only {state['ran']} of {n_code} code cells ran")

        found, formulas = _math_problems(page)
        problems += [f"after the run: {p}" for p in found]
        if "$" in "".join(c.source for c in nb.cells[1:] if c.cell_type == "markdown"):
            assert formulas > 0, "the chapter has math but MathJax typeset nothing"

        if _uses_widgets(nb) and not state["errors"]:
            moved, box = _move_widget(page, chapter)
            page.wait_for_timeout(500)
            box.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{chapter}-widget.png"))
        _scroll_to_top(page)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{chapter}.png"))
    finally:
        page.close()
        try:
            jupyterlab.shutdown_kernels(f"{chapter}.ipynb")
        except OSError:
            pass
        seconds = time.monotonic() - t0
        summary.append(f"{chapter:<24} {seconds:7.0f} {formulas:8d} "
                       f"{n_code:10d}  {moved}")
    return problems + [f"console: {c}" for c in console]
