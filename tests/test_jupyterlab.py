"""The chapters as a student meets them: opened and run in a real JupyterLab.

The browser test starts JupyterLab on 127.0.0.1 (a free port, a random token, its own
configuration, settings and workspace folders, ``LVAE_FAST=1``) on a temporary copy of
the chapters, and drives Debian's Chromium with Playwright. For every chapter of
``_toc.yml`` it opens the notebook in a fresh page (MathJax keeps macro definitions for
the life of a page, so one chapter's macro cell must not help the next), and

* checks that every formula was typeset: no error nodes, no undefined macros (with
  JupyterLab's ``noundefined`` extension those are drawn as red text), no raw TeX;
  JupyterLab typesets with MathJax, jupyterlab-myst's markdown cells with KaTeX;
* checks that the markdown cells were rendered by jupyterlab-myst and show no MyST
  source: no role ("{doc}", "{cite:t}"), no target label ("(ch-iwae)=", an equation's
  "(eq-...)"), no directive shown as a code block, no directive the renderer does not
  know except myst-nb's glue (``TOLERATED_UNKNOWN``);
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

``python tests/test_jupyterlab.py [--chapters 01_elbo,05_iwae]`` opens every chapter
(without running it) once with JupyterLab's own markdown renderer and once with
jupyterlab-myst, and prints per chapter the raw MyST, the unknown directives, the
unresolved references, the citations shown as keys and the TeX errors (no assertion).

The static tests below it check the sources: every chapter starts with the macro cell
that ``scripts/sync_macros.py`` writes from ``_config.yml``, DEVELOPERS.md's macro table
agrees with ``_config.yml``, and every ``ipywidgets`` import is guarded.
"""
from __future__ import annotations

import ast
import contextlib
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
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, in_browser_thread

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "_build" / "jupyterlab"
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
        # the front matter that jupyterlab-myst reads, hidden from other renderers
        assert re.search(rf"^  '\\{name}': '", expected, re.M), name
    assert expected.startswith("---\n<!--:") and "\n---\n<!-- -->\n" in expected
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


def test_the_book_extra_brings_the_myst_renderer():
    """jupyterlab-myst renders the chapters' MyST in JupyterLab: the book extra (what
    scripts/jupyter.sh installs) and requirements.txt (scripts/setup.sh) both hold it."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf8")
    extra = re.search(r"^book = \[(.*?)\]", pyproject, re.M | re.S)
    assert extra and '"jupyterlab-myst' in extra.group(1), "pyproject.toml's book extra"
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf8").splitlines()
    assert any(r.startswith("jupyterlab-myst") for r in requirements), "requirements.txt"
    assert "jupyterlab_myst" in (ROOT / "scripts" / "jupyter.sh").read_text(encoding="utf8")


def test_the_myst_verdict():
    """What the MyST scan's findings fail on: raw MyST, markdown rendered without
    jupyterlab-myst, unknown directives other than glue; citations shown as keys and
    unresolved references are counted, not failed on."""
    clean = {"rendered": 3, "myst": 3, "raw": [],
             "unknown": ["cell 4: glue:figure (unknown directive)"],
             "unresolved": ["cell 5: fig-x"], "citations": ["cell 2: kingma2014auto"]}
    assert _myst_problems(clean, 3) == []
    assert len(_myst_problems({**clean, "raw": ["cell 2: ...{doc}..."]}, 3)) == 1
    assert len(_myst_problems({**clean, "myst": 0}, 3)) == 1
    assert len(_myst_problems({**clean, "rendered": 2, "myst": 2}, 3)) == 1
    unknown = {**clean, "unknown": ["cell 4: margin (unknown directive)"]}
    assert "margin" in _myst_problems(unknown, 3)[0]


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
    try:
        with _lab_server(base) as lab:
            yield lab
    finally:
        if (base / "jupyterlab.log").exists():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy2(base / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")


@contextlib.contextmanager
def _lab_server(base: Path, disabled_extensions: tuple[str, ...] = ()):
    """Start JupyterLab in ``base`` (a fresh folder) on a copy of the chapters, with the
    named lab extensions disabled; stop it on leaving, whatever happened."""
    workdir = base / "book"
    workdir.mkdir()
    for name in CHAPTERS:
        shutil.copy2(ROOT / "book" / f"{name}.ipynb", workdir)
    for sub in ("config", "runtime", "settings", "workspaces"):
        (base / sub).mkdir()
    _write_settings(base / "settings")
    if disabled_extensions:
        labconfig = base / "config" / "labconfig"
        labconfig.mkdir()
        (labconfig / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {name: True for name in disabled_extensions}}))
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


@pytest.fixture(scope="module")
def summary():
    rows: list[str] = []
    yield rows
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    header = (f"{'chapter':<24} {'seconds':>7} {'formulas':>8} {'code cells':>10} "
              f"{'raw MyST':>9}  widget moved")
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
# undefined macro is red text whose name is in the assistive MathML. jupyterlab-myst
# renders markdown cells itself (class "myst") and typesets with KaTeX: a formula KaTeX
# cannot typeset is shown as its source, with KaTeX's message as the title.
_MATH_JS = r"""
() => {
  const md = Array.from(document.querySelectorAll(
      '.jp-MarkdownCell .jp-RenderedMarkdown, .jp-MarkdownCell .myst'));
  const containers = md.flatMap(
      el => Array.from(el.querySelectorAll('mjx-container, .katex')));
  const errors = Array.from(document.querySelectorAll('.jp-Notebook mjx-merror'))
      .map(el => el.getAttribute('data-mjx-error') || el.textContent);
  md.forEach(el => el.querySelectorAll('[title]').forEach(e => {
    const title = e.getAttribute('title');
    if (/at position \d+|Undefined control sequence|KaTeX|ParseError/.test(title)) {
      errors.push(title);
    }
  }));
  const undefinedMacros = Array.from(document.querySelectorAll('.jp-Notebook mjx-assistive-mml mtext'))
      .filter(el => el.getAttribute('mathcolor') === 'red' || /^\\[A-Za-z]+$/.test(el.textContent.trim()))
      .map(el => el.textContent.trim());
  const red = document.querySelectorAll('.jp-Notebook mjx-container mjx-mtext[style*="red"]').length;
  const raw = md.map(el => {
      const clone = el.cloneNode(true);
      clone.querySelectorAll('mjx-container, .katex, code, pre')
           .forEach(c => c.remove());
      return clone.textContent;
    }).join('\n');
  return {containers: containers.length, markdownCells: md.length, errors, undefinedMacros, red, raw};
}
"""

# MyST that a reader should never see as source, in the rendered markdown cells. Without
# a MyST renderer, JupyterLab shows roles as text ("{doc}" before the code-formatted
# target), target labels as text ("(ch-iwae)=", "$$ ... $$ (eq-elbo)") and directives
# as code blocks whose language is "{exercise}". jupyterlab-myst renders what it knows;
# a directive it does not know becomes a closed box titled "<name> - Unknown Directive"
# with the body as source, a reference it cannot resolve shows its label, a citation its
# key (it has no bibliography), each with a warning sign and a title saying so.
_MYST_JS = r"""
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter(w => w.model.type === 'markdown');
  const role = /(?<![\w\\^_}])\{[a-z][\w:+-]*\}/g;
  const label = /(?<![\w)\]])\([A-Za-z][\w:.-]*\)=/g;
  const found = {raw: [], unknown: [], unresolved: [], citations: []};
  let rendered = 0, myst = 0, text = 0;
  cells.forEach((w, i) => {
    const out = w.node.querySelector('.myst')
             || w.node.querySelector('.jp-RenderedMarkdown');
    if (!out || !w.rendered) return;
    rendered += 1;
    if (out.classList.contains('myst')) myst += 1;
    const where = `cell ${panel.content.widgets.indexOf(w) + 1}`;
    out.querySelectorAll('pre > code[class*="language-{"]').forEach(c => {
      const name = Array.from(c.classList).find(n => n.startsWith('language-'))
                        .slice(9);
      found.raw.push(`${where}: directive ${name} shown as a code block`);
    });
    out.querySelectorAll('summary').forEach(s => {
      const m = s.textContent.match(/^(.*?)\s*-\s*Unknown (Directive|Role)/);
      if (m) found.unknown.push(`${where}: ${m[1]} (unknown ${m[2].toLowerCase()})`);
    });
    out.querySelectorAll('[title="Cross Reference Not Found"]').forEach(e =>
        found.unresolved.push(`${where}: ${e.textContent.trim()}`));
    out.querySelectorAll('[title="Citation Not Found"]').forEach(e =>
        found.citations.push(`${where}: ${e.textContent.trim()}`));
    // an equation's label, "$$ ... $$ (eq-name)", left as text after the formula
    out.querySelectorAll('mjx-container[display="true"], .katex-display').forEach(m => {
      const next = m.nextSibling;
      const hit = next && next.nodeType === Node.TEXT_NODE
                  && next.textContent.match(/^\s*\([\w:.-]+\)/);
      if (hit) {
        found.raw.push(`${where}: equation label ${hit[0].trim()} shown as text`);
      }
    });
    const clone = out.cloneNode(true);
    clone.querySelectorAll('mjx-container, .katex, code, pre, svg, script, style')
         .forEach(c => c.remove());
    // formulas KaTeX could not typeset: their source is shown; the math check counts
    clone.querySelectorAll('[title]').forEach(c => {
      if (/at position \d+|Undefined control sequence|KaTeX|ParseError/.test(c.title)) {
        c.remove();
      }
    });
    const t = clone.textContent;
    text += t.length;
    for (const re of [role, label]) {
      for (const m of t.matchAll(re)) {
        const at = m.index;
        const context = t.slice(Math.max(0, at - 30), at + m[0].length + 30);
        found.raw.push(`${where}: ...${context.replace(/\s+/g, ' ')}...`);
      }
    }
  });
  return {cells: cells.length, rendered, myst, text, ...found};
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
        problems.append(f"{len(state['errors'])} TeX errors: {state['errors'][:3]}")
        if any("Undefined control sequence" in e for e in state["errors"]):
            problems.append("jupyterlab-myst (KaTeX) knows only the macros of the first "
                            "cell's front matter (math:), not its \\def lines")
    if state["undefinedMacros"]:
        problems.append(f"undefined macros: {sorted(set(state['undefinedMacros']))}")
    elif state["red"]:
        problems.append(f"{state['red']} red MathJax text nodes (undefined macros)")
    hit = _RAW_TEX.search(state["raw"])
    if hit:
        problems.append(f"raw TeX in the text: ...{state['raw'][max(hit.start() - 40, 0):hit.end() + 40]!r}")
    return problems, state["containers"]


# Directives that jupyterlab-myst does not know and that a reader may see as a closed
# box: myst-nb's glue (the figure itself is the output of the code cell above it, which
# Jupyter shows; the box holds its caption).
TOLERATED_UNKNOWN = ("glue",)


def _myst_state(page, n_markdown: int) -> dict:
    """Wait until every markdown cell is rendered and the rendering stops changing (the
    MyST renderer resolves references once all cells are parsed); return the state."""
    last, stable_since, deadline = None, time.monotonic(), time.monotonic() + 90
    while True:
        state = page.evaluate(_MYST_JS)
        key = (state["rendered"], state["text"], len(state["raw"]),
               len(state["unresolved"]))
        if key != last:
            last, stable_since = key, time.monotonic()
        if state["rendered"] >= n_markdown and time.monotonic() - stable_since > 2:
            return state
        if time.monotonic() > deadline:
            state["timed_out"] = True
            return state
        page.wait_for_timeout(300)


def _myst_problems(state: dict, n_markdown: int) -> list[str]:
    """What the MyST scan forbids: raw roles, labels and directives, unknown directives
    other than TOLERATED_UNKNOWN, and markdown rendered without jupyterlab-myst."""
    problems = []
    if state["rendered"] < n_markdown:
        problems.append(f"{state['rendered']} of {n_markdown} markdown cells rendered")
    if state["rendered"] and state["myst"] < state["rendered"]:
        problems.append(f"{state['rendered'] - state['myst']} markdown cells rendered "
                        "without jupyterlab-myst (pip install -e '.[book]', or bash "
                        "scripts/setup.sh)")
    if state["raw"]:
        problems.append(f"{len(state['raw'])} raw MyST in the text: "
                        + "; ".join(state["raw"][:5]))
    unknown = [u for u in state["unknown"]
               if not u.split(": ", 1)[1].startswith(TOLERATED_UNKNOWN)]
    if unknown:
        problems.append("directives the MyST renderer does not know: "
                        + "; ".join(unknown[:5]))
    return problems


def _myst_counts(state: dict) -> dict[str, int]:
    return {name: len(state[name])
            for name in ("raw", "unknown", "unresolved", "citations")}


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
    problems = in_browser_thread(browser, lambda chromium: _check_chapter(
        chromium.new_context(viewport={"width": 1280, "height": 1000}), jupyterlab, summary,
        chapter))
    assert not problems, f"{chapter}:\n  " + "\n  ".join(problems)


def _check_chapter(context, jupyterlab, summary, chapter) -> list[str]:
    """Open, run and check one chapter; return the problems found."""
    nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    n_markdown = sum(c.cell_type == "markdown" for c in nb.cells)
    page = context.new_page()
    console: list[str] = []
    page.on("pageerror", lambda exc: console.append(f"uncaught: {exc}"))
    t0 = time.monotonic()
    problems: list[str] = []
    moved, formulas, raw_myst = "-", 0, -1
    try:
        # A workspace of its own, reset: JupyterLab would otherwise reopen the chapters
        # of earlier tests in this page (with their kernels and their macros).
        page.goto(f"{jupyterlab.url}lab/workspaces/{chapter}/tree/{chapter}.ipynb"
                  f"?reset&token={jupyterlab.token}", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(_READY_JS, timeout=PAGE_TIMEOUT_MS)
        page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")

        found, _ = _math_problems(page)
        problems += [f"on opening: {p}" for p in found]
        myst = _myst_state(page, n_markdown)
        problems += _myst_problems(myst, n_markdown)
        raw_myst = len(myst["raw"])

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
            assert formulas > 0, "the chapter has math but nothing was typeset"

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
                       f"{n_code:10d} {raw_myst:9d}  {moved}")
    return problems + [f"console: {c}" for c in console]


# --------------------------------------------------------------------------- counts

_OPENED_JS = """
() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(panel && panel.context && panel.context.isReady && panel.content
            && panel.content.widgets.length > 0);
}
"""


def _scan(chapters: list[str], disabled: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Open each chapter (without running it) in JupyterLab with the named extensions
    disabled; return the MyST counts and math errors of each."""
    import tempfile

    from playwright.sync_api import sync_playwright

    rows = {}
    with tempfile.TemporaryDirectory(prefix="lvae-myst-") as tmp, \
            _lab_server(Path(tmp), disabled) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            for chapter in chapters:
                nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
                n_markdown = sum(c.cell_type == "markdown" for c in nb.cells)
                page = context.new_page()
                try:
                    page.goto(f"{lab.url}lab/workspaces/{chapter}/tree/{chapter}.ipynb"
                              f"?reset&token={lab.token}", timeout=PAGE_TIMEOUT_MS)
                    page.wait_for_function(_OPENED_JS, timeout=PAGE_TIMEOUT_MS)
                    state = _myst_state(page, n_markdown)
                    _math_problems(page)                 # waits for the typesetting
                    math = page.evaluate(_MATH_JS)
                finally:
                    page.close()
                    try:
                        lab.shutdown_kernels(f"{chapter}.ipynb")
                    except OSError:
                        pass
                rows[chapter] = {**_myst_counts(state), "formulas": math["containers"],
                                 "math errors": len(math["errors"])}
        finally:
            browser.close()
    return rows


def _count_row(name: str, values: list[int]) -> str:
    widths = (10, 10, 8, 10, 9, 11, 6)
    return f"{name:<24} " + " ".join(f"{v:{w}d}" for v, w in zip(values, widths))


def _print_myst_counts(chapters: list[str]) -> None:
    """Print, per chapter, what a reader sees of the MyST source with JupyterLab's own
    markdown renderer and with jupyterlab-myst (no assertion)."""
    t0 = time.monotonic()
    plain = _scan(chapters, ("jupyterlab-myst",))
    myst = _scan(chapters, ())
    print("raw MyST: roles, target labels and directive source in the rendered text.\n"
          "With jupyterlab-myst also: unknown directives (closed boxes), references it "
          "cannot resolve\n(their label shown), citations (their key shown), formulas "
          "KaTeX cannot typeset.\n")
    header = (f"{'chapter':<24} {'raw, plain':>10} {'raw, myst':>10} {'unknown':>8} "
              f"{'unresolved':>10} {'citations':>9} {'math errors':>11} {'plain':>6}")
    print(header)
    totals = [0] * 7
    for chapter in chapters:
        a, b = plain[chapter], myst[chapter]
        values = [a["raw"], b["raw"], b["unknown"], b["unresolved"], b["citations"],
                  b["math errors"], a["math errors"]]
        totals = [x + y for x, y in zip(totals, values)]
        print(_count_row(chapter, values))
    print(_count_row("total", totals))
    print(f"\n({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=_print_myst_counts.__doc__)
    parser.add_argument("--chapters",
                        help="comma-separated chapter names (default: all)")
    args = parser.parse_args()
    _print_myst_counts(args.chapters.split(",") if args.chapters else CHAPTERS)
