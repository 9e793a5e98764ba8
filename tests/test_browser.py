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
* every internal link points to a page that exists (HTTP 200);
* Chinese characters are covered by the book's own font (Noto Sans SC, vendored), and
  drawn with it (an ideograph one em wide, not an empty box);

and, at a desktop width (1280 px) and a phone width (390 px), that the page
fits its text column (measured with the browser's layout, see ``_LAYOUT_JS``):

* no display equation is wider than the column: at 1280 px every one fits, at
  390 px one that cannot fit scrolls with a visible scrollbar (none is cut);
  no equation number overlaps its formula;
* no printed output (``pre``) is wider than its box at 1280 px; at 390 px one
  may scroll visibly, never be cut; code cells fit at 1280 px;
* no figure is shown below 60 % of its natural width, or cut;
* no table (in an output or in the text) runs the text of neighbouring cells together,
  or is cut;
* no raw ``$`` is left in the text.
* at 1280 px no table, output or inline formula is wider than its box (``_OVERFLOW_JS``,
  measured with the solutions open), and no inline formula needs a line of its own;
  at 390 px a wider table scrolls with a scrollbar and a fading edge, an inline formula
  wider than the line scrolls on a line of its own (``book/_static/lvae-layout.js``), none
  is cut; at neither width does the page scroll sideways.

It saves full-page screenshots to ``_build/screenshots/<page>-<mode>.png``
(``light``, ``dark`` at 1280 px, ``phone`` at 390 px; solutions open in ``light`` and
``phone``).

``python tests/test_browser.py [HTML_DIR]`` prints the layout counts (cut
equations, cut outputs, small figures, ...) of every page at both widths
without failing, to compare two builds.

Build the book first (``bash scripts/build_book.sh``, or ``bash scripts/test.sh``
which builds and then runs this test). Without a build the test is skipped,
except under CI (``CI`` set), where a missing build is an error.
Environment: ``LVAE_CHROMIUM`` overrides the browser executable.
"""

from __future__ import annotations

import contextlib
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
from chromium import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("LVAE_HTML_DIR") or ROOT / "_build" / "html")
SCREENSHOT_DIR = ROOT / "_build" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
TIMEOUT_MS = 60_000
DESKTOP, PHONE = 1280, 390   # viewport widths in CSS pixels
MIN_FIGURE_RATIO = 0.6       # a figure is shown at least at 60 % of its natural width
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

    def handle_error(self, request, client_address):
        # A page closed while a file was still being sent is not an error of the book.
        import sys
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


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
        # Playwright hides scrollbars in headless mode; the layout checks need
        # them drawn, as a desktop browser does, to tell "scrolls" from "cut".
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            ignore_default_args=["--hide-scrollbars"],
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

_LAYOUT_JS = r"""
() => {
  const article = document.querySelector('article.bd-article')
               || document.querySelector('main') || document.body;
  const col = article.getBoundingClientRect();
  const style = el => getComputedStyle(el);
  const text = el => (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
  const TOL = 1.5;
  // The nearest element from el up to the article that scrolls horizontally.
  const scroller = el => {
    for (let e = el; e && e !== article.parentElement; e = e.parentElement) {
      const o = style(e).overflowX;
      if (o === 'auto' || o === 'scroll') return e;
    }
    return null;
  };
  // A horizontal scrollbar that takes room (so it is drawn) on an element that
  // has more content than it shows.
  const scrollsVisibly = e => {
    const s = style(e);
    const borders = (parseFloat(s.borderTopWidth) || 0) + (parseFloat(s.borderBottomWidth) || 0);
    return e.scrollWidth > e.clientWidth + TOL && s.scrollbarWidth !== 'none'
        && e.offsetHeight - e.clientHeight - borders >= 3;
  };
  // 'fits', 'scrolls' (visibly, inside the column) or 'cut', for a box whose
  // content rectangle is `r`, inside the scrolling element `s` (or none).
  const fit = (r, s) => {
    if (s) {
      const sr = s.getBoundingClientRect();
      const inColumn = sr.left >= col.left - TOL && sr.right <= col.right + TOL;
      if (s.scrollWidth <= s.clientWidth + TOL && inColumn
          && r.left >= sr.left - TOL - s.scrollLeft) return 'fits';
      // Content left of the scroller's start cannot be scrolled to.
      const leftOk = r.left >= sr.left - s.scrollLeft - TOL;
      return inColumn && leftOk && scrollsVisibly(s) ? 'scrolls' : 'cut';
    }
    return r.left >= col.left - TOL && r.right <= col.right + TOL ? 'fits' : 'cut';
  };
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1
                         && a.top < b.bottom - 1 && b.top < a.bottom - 1;

  const equations = [];
  for (const c of article.querySelectorAll('mjx-container[display="true"]')) {
    const m = c.querySelector(':scope > mjx-math') || c;
    const r = m.getBoundingClientRect();
    if (!r.width) continue;
    const state = fit(r, scroller(c));
    // Sphinx's equation number (span.eqno) or MathJax's own tag (mjx-labels).
    const box = c.closest('div.math') || c;
    let numberOverlaps = false;
    // What of the formula is drawn: its parts, clipped by the box it scrolls in.
    const s = scroller(c);
    const view = s ? s.getBoundingClientRect() : null;
    const clip = r => !view ? r : {left: Math.max(r.left, view.left), right: Math.min(r.right, view.right),
                                   top: Math.max(r.top, view.top), bottom: Math.min(r.bottom, view.bottom)};
    for (const n of box.querySelectorAll('span.eqno, mjx-labels mjx-mtd')) {
      const nr = n.getBoundingClientRect();
      if (!nr.width) continue;
      for (const part of m.querySelectorAll('mjx-mtd, mjx-mrow, mjx-mo, mjx-mi, mjx-mn')) {
        if (part.closest('mjx-labels')) continue;
        if (overlap(nr, clip(part.getBoundingClientRect()))) { numberOverlaps = true; break; }
      }
    }
    equations.push({state, numberOverlaps, width: Math.round(r.width),
                    text: (c.querySelector('mjx-assistive-mml') || c).textContent.trim().slice(0, 60)});
  }

  const outputs = [];
  for (const pre of article.querySelectorAll('div.cell_output pre, div.output pre')) {
    if (!pre.getBoundingClientRect().width) continue;
    const s = scroller(pre);
    let state;
    if (pre.scrollWidth <= pre.clientWidth + TOL) {
      state = fit(pre.getBoundingClientRect(), s === pre ? null : s);
    } else {
      state = (s === pre || (s && s.contains(pre))) && scrollsVisibly(s) ? 'scrolls' : 'cut';
    }
    const lines = pre.textContent.split('\n');
    outputs.push({state, longest: Math.max(...lines.map(l => l.length)),
                  width: pre.scrollWidth, box: pre.clientWidth, text: text(pre)});
  }

  const code = [];
  for (const pre of article.querySelectorAll('div.cell_input pre')) {
    if (!pre.getBoundingClientRect().width) continue;
    const lines = pre.textContent.split('\n');
    code.push({wider: pre.scrollWidth > pre.clientWidth + TOL,
               longest: Math.max(...lines.map(l => l.length)), text: text(pre)});
  }

  const figures = [];
  for (const img of article.querySelectorAll('img')) {
    if (!img.naturalWidth || img.closest('.sd-card, .headerlink')) continue;
    const shown = img.getBoundingClientRect().width;
    if (!shown) continue;  // inside a closed dropdown
    // Intrinsic width in CSS pixels: a PNG drawn at twice the density says so
    // with a width (attribute or style) of half its pixel width.
    const attr = parseFloat(img.getAttribute('width') || img.style.width || '0');
    const density = attr && img.naturalWidth >= 1.9 * attr ? 2 : 1;
    const natural = img.naturalWidth / density;
    figures.push({ratio: shown / natural, shown: Math.round(shown), natural: Math.round(natural),
                  src: (img.getAttribute('src') || '').split('/').pop().slice(0, 50),
                  cut: fit(img.getBoundingClientRect(), scroller(img)) === 'cut'});
  }

  // Tables: the text of neighbouring cells must not touch (a column squeezed
  // below its numbers' width runs them together), and a table must fit or scroll:
  // the tables of printed output and those of the text (the glossary, notation).
  const tables = [];
  // MathJax's hidden copy of each formula for screen readers (mjx-assistive-mml) has
  // text rectangles of its own that are not drawn: measure without it.
  const hide = document.createElement('style');
  hide.textContent = 'mjx-assistive-mml { display: none !important; }';
  document.head.appendChild(hide);
  for (const t of article.querySelectorAll('table')) {
    if (!t.getBoundingClientRect().width) continue;  // inside a closed dropdown
    let crowded = 0, sample = '';
    for (const row of t.rows) {
      let prev = null;  // the text box of the previous cell on the same line
      for (const cell of row.cells) {
        const range = document.createRange();
        range.selectNodeContents(cell);
        const rects = Array.from(range.getClientRects()).filter(r => r.width > 0);
        if (!rects.length) { prev = null; continue; }
        const box = {left: Math.min(...rects.map(r => r.left)),
                     right: Math.max(...rects.map(r => r.right)),
                     top: Math.min(...rects.map(r => r.top)),
                     bottom: Math.max(...rects.map(r => r.bottom))};
        // lines of text: the rectangles of the cell's text nodes alone (those of the
        // range include element boxes, e.g. of a paragraph, with tops of their own)
        const textTops = new Set();
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
          const part = document.createRange();
          part.selectNodeContents(walker.currentNode);
          for (const r of part.getClientRects()) if (r.width > 0) textTops.add(Math.round(r.top));
        }
        const lines = textTops.size;
        const cr = cell.getBoundingClientRect();
        // Text wider than its cell, a number broken over lines, or the text of two
        // cells side by side (a narrow screen may stack them) closer than 6 px.
        const sideBySide = prev !== null && box.top < prev.bottom && prev.top < box.bottom;
        if (box.right > cr.right + TOL
            || (lines > 1 && /^[-+0-9.,%\s]+$/.test(cell.textContent.trim()))
            || (sideBySide && box.left - prev.right < 6)) {
          crowded += 1;
          if (!sample) sample = text(row);
        }
        prev = box;
      }
    }
    const state = fit(t.getBoundingClientRect(), scroller(t));
    tables.push({crowded, state, sample});
  }
  hide.remove();

  // Raw dollars: a '$' left in the text outside code and typeset math.
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight, textarea, .math')
       .forEach(el => el.remove());
  const prose = clone.textContent;
  const dollars = [];
  let i = prose.indexOf('$');
  while (i >= 0 && dollars.length < 5) {
    dollars.push(prose.slice(Math.max(0, i - 40), i + 40).replace(/\s+/g, ' '));
    i = prose.indexOf('$', i + 1);
  }
  return {column: Math.round(col.width), equations, outputs, code, figures, tables, dollars};
}
"""


# What does not fit its box, beyond _LAYOUT_JS: run after it in the same page (it opens the
# solutions, so the page is not the same afterwards). Per page: tables wider than the box that
# shows them, other outputs wider than theirs, inline formulas that run past their paragraph or
# are cut (drawn outside every box that could show them), and how far the page itself scrolls
# sideways. Used by the layout rules below and by benchmarks/measure_overflow.py.
_OVERFLOW_JS = r"""
async () => {
  const TOL = 1.5;
  const article = document.querySelector('article.bd-article')
               || document.querySelector('main') || document.body;
  // Open the solutions (sphinx-togglebutton hides a dropdown admonition's body).
  article.querySelectorAll('.admonition.toggle-hidden')
         .forEach(el => el.classList.remove('toggle-hidden'));
  // Two frames: the page's resize observers (lvae-layout.js) see the opened boxes.
  for (let i = 0; i < 2; i++) await new Promise(done => requestAnimationFrame(done));
  const col = article.getBoundingClientRect();
  const text = el => {
    const c = el.cloneNode(true);
    c.querySelectorAll('script, style, button, mjx-assistive-mml')
     .forEach(x => x.remove());
    return c.textContent.replace(/\s+/g, ' ').trim().slice(0, 60);
  };
  const style = el => getComputedStyle(el);
  // The heading of the section an element is in ("3.9.1. Warm-up").
  const section = el => {
    for (let s = el.closest('section'); s; s = s.parentElement.closest('section')) {
      const h = s.querySelector(':scope > h1, :scope > h2, :scope > h3');
      if (h) {
        return h.textContent.replace(/[#¶]/g, '').replace(/\s+/g, ' ').trim()
                        .slice(0, 48);
      }
    }
    return '';
  };
  // The nearest ancestor that clips its content sideways (hidden, clip, auto, scroll).
  const clipper = el => {
    for (let e = el.parentElement; e && e !== document.documentElement;
         e = e.parentElement) {
      if (style(e).overflowX !== 'visible') return e;
    }
    return null;
  };
  // The part of the window that an element's ancestors let it draw in, sideways, and
  // the ancestor that ends it on the right ("div.admonition, overflow hidden").
  const visibleSpan = el => {
    let left = 0, right = document.documentElement.clientWidth, by = 'the window';
    for (let e = el.parentElement; e && e !== document.documentElement;
         e = e.parentElement) {
      const s = style(e);
      if (s.overflowX === 'visible') continue;
      const l = e.getBoundingClientRect().left + (parseFloat(s.borderLeftWidth) || 0);
      left = Math.max(left, l);
      if (l + e.clientWidth < right) {
        right = l + e.clientWidth;
        const cls = (e.className && typeof e.className === 'string')
                    ? '.' + e.className.trim().split(/\s+/)[0] : '';
        by = `${e.tagName.toLowerCase()}${cls}, overflow ${s.overflowX}`;
      }
    }
    return {left, right, by};
  };
  const scrollsVisibly = e => {
    const s = style(e);
    const borders = (parseFloat(s.borderTopWidth) || 0)
                  + (parseFloat(s.borderBottomWidth) || 0);
    return (s.overflowX === 'auto' || s.overflowX === 'scroll')
        && s.scrollbarWidth !== 'none'
        && e.offsetHeight - e.clientHeight - borders >= 3;
  };

  // Tables, in outputs and in the text: the table against the box it is drawn in.
  const tables = [];
  for (const t of article.querySelectorAll('table')) {
    const r = t.getBoundingClientRect();
    if (!r.width) continue;                       // inside a closed box
    const box = clipper(t);
    const inColumn = box && box.getBoundingClientRect().width <= col.width + TOL;
    const boxLeft = inColumn ? box.getBoundingClientRect().left - box.scrollLeft
                             : col.left;
    const boxWidth = inColumn ? box.clientWidth : col.width;
    const hidden = Math.round(Math.max(0, r.left + r.width - (boxLeft + boxWidth)));
    if (hidden <= TOL) continue;
    const head = t.querySelector('thead') || t.rows[0];
    // A cue beside the scrollbar: the box fades out where more is hidden (lvae.css).
    const mask = box ? (style(box).maskImage || style(box).webkitMaskImage || 'none')
                     : 'none';
    tables.push({hidden, width: Math.round(r.width), box: Math.round(boxWidth),
                 output: !!t.closest('.cell_output, .output'),
                 scrollbar: !!(box && inColumn && scrollsVisibly(box)),
                 cue: mask !== 'none',
                 section: section(t), text: head ? text(head) : text(t)});
  }

  // Other outputs: every output area without a table, measured by its widest part.
  const outputs = [];
  for (const o of article.querySelectorAll('div.cell_output > *')) {
    const r = o.getBoundingClientRect();
    if (!r.width || o.querySelector('table')) continue;
    let hidden = 0, scrollbar = false, kind = 'html';
    if (o.querySelector('pre')) kind = 'text';
    else if (o.querySelector('.widget-subarea, .jupyter-widgets')) kind = 'widget';
    else if (o.querySelector('img, svg')) kind = 'image';
    for (const e of [o, ...o.querySelectorAll('*')]) {
      const s = style(e);
      if (s.overflowX !== 'visible' && e.scrollWidth > e.clientWidth + TOL) {
        hidden = Math.max(hidden, e.scrollWidth - e.clientWidth);
        scrollbar = scrollbar || scrollsVisibly(e);
      }
      const er = e.getBoundingClientRect();
      if (er.width) hidden = Math.max(hidden, er.right - col.right);
    }
    hidden = Math.round(hidden);
    if (hidden > TOL) {
      outputs.push({hidden, kind, scrollbar, section: section(o), text: text(o)});
    }
  }

  // Inline formulas (display equations are the browser test's), outside tables and
  // outputs: against the block they sit in, and against what their ancestors show.
  const inline = [];
  for (const m of article.querySelectorAll('mjx-container:not([display="true"])')) {
    if (m.closest('table, .cell_output, mjx-container mjx-container')) continue;
    const r = m.getBoundingClientRect();
    if (!r.width) continue;
    let block = m.parentElement;
    while (block && block !== article && /^inline/.test(style(block).display)) {
      block = block.parentElement;
    }
    const b = block.getBoundingClientRect();
    const right = b.right - (parseFloat(style(block).paddingRight) || 0);
    const over = Math.round(r.right - right);
    const span = visibleSpan(m);
    const cut = Math.round(Math.max(r.right - span.right, span.left - r.left, 0));
    if (over > TOL || cut > TOL) {
      const tex = m.querySelector('mjx-assistive-mml');
      inline.push({over: Math.max(over, 0), cut: cut > TOL ? cut : 0, by: span.by,
                   scrolls: false,
                   width: Math.round(r.width), section: section(m),
                   text: (tex ? tex.textContent : text(m)).trim().slice(0, 50)});
    }
  }

  // Formulas wider than their line that lvae-layout.js set on a line of their own, where
  // they scroll: fine on a phone, not at a desktop width.
  for (const m of article.querySelectorAll('mjx-container.lvae-wide-math')) {
    if (m.closest('table, .cell_output') || !m.getBoundingClientRect().width) continue;
    const tex = m.querySelector('mjx-assistive-mml');
    inline.push({over: 0, cut: 0, by: '', scrolls: true,
                 width: Math.round(m.querySelector('mjx-math').getBoundingClientRect().width),
                 section: section(m),
                 text: (tex ? tex.textContent : text(m)).trim().slice(0, 50)});
  }

  const page = document.documentElement;
  return {column: Math.round(col.width), tables, outputs, inline,
          pageScroll: Math.max(0, page.scrollWidth - page.clientWidth)};
}
"""


# Chinese (CJK) characters in the text must be covered by the book's own font, so that
# they render on a machine without a CJK font: ask for the faces of "Noto Sans SC"
# that the page's characters need, then check that loaded faces cover every one.
_CJK_JS = r"""
async () => {
  const root = document.querySelector('article.bd-article') || document.body;
  const chars = Array.from(new Set(root.innerText.match(/[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]/g) || []));
  if (!chars.length) return {chars: 0, faces: 0, missing: []};
  const faces = await document.fonts.load('16px "Noto Sans SC"', chars.join(''));
  const ranges = [];
  for (const face of faces) {
    if (face.status !== 'loaded') continue;
    for (const part of face.unicodeRange.split(',')) {
      const m = part.trim().match(/^U\+([0-9a-f?]+)(?:-([0-9a-f]+))?$/i);
      if (!m) continue;
      const lo = parseInt(m[1].replace(/\?/g, '0'), 16);
      const hi = m[2] ? parseInt(m[2], 16) : parseInt(m[1].replace(/\?/g, 'f'), 16);
      ranges.push([lo, hi]);
    }
  }
  const missing = chars.filter(c => !ranges.some(([lo, hi]) => c.codePointAt(0) >= lo && c.codePointAt(0) <= hi));
  // Drawn, not only covered: an ideograph of Noto Sans SC is one em wide, the empty box a
  // browser draws for a character that no loaded font has is narrower. Measured once the
  // page's fonts have loaded and the page has set its text again (lvae-layout.js).
  await document.fonts.ready;
  await new Promise(done => setTimeout(done, 200));
  const boxes = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement || node.parentElement.closest('mjx-assistive-mml, script, style')) continue;
    const em = parseFloat(getComputedStyle(node.parentElement).fontSize);
    for (const m of node.data.matchAll(/[\u4e00-\u9fff]/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + 1);
      const width = range.getBoundingClientRect().width;
      if (width && Math.abs(width - em) > 0.5) {
        boxes.push(`${m[0]} in ${JSON.stringify(node.data.trim().slice(0, 20))}`);
      }
    }
  }
  return {chars: chars.length, faces: faces.length, missing: missing.slice(0, 10),
          boxes: boxes.slice(0, 10)};
}
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


def _visit(
    chromium, book_url: str, page_id: str, mode: str, width: int = DESKTOP, shot: str = "",
    extra_js: str = "",
) -> tuple[list[str], list[str], dict]:
    """Open one page in one colour scheme at one viewport width; return
    (problems, hrefs, layout measurements). ``extra_js``, a function evaluated in the
    page after the layout was measured, adds its result as ``layout["extra"]``."""
    problems: list[str] = []
    layout: dict = {}
    context = chromium.new_context(
        viewport={"width": width, "height": 900},
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

        cjk = page.evaluate(_CJK_JS)
        if cjk["missing"] or (cjk["chars"] and not cjk["faces"]):
            problems.append(f"{cjk['chars']} Chinese characters, not covered by the book's "
                            f"font (Noto Sans SC): {cjk['missing']}")
        if cjk.get("boxes"):
            problems.append(f"Chinese characters drawn as empty boxes (narrower than one em, "
                            f"not from Noto Sans SC): {cjk['boxes']}")

        hrefs = page.evaluate(_LINKS_JS)
        layout = page.evaluate(_LAYOUT_JS)
        if extra_js:
            layout["extra"] = page.evaluate(extra_js)
        page.wait_for_timeout(300)  # let late console messages arrive
        if shot:
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(_screenshot_name(page_id, shot)), full_page=True)
    finally:
        # Take the records before closing: closing cancels requests still in flight.
        console_seen, external_seen, failed_seen = list(console_errors), list(external), list(failed)
        context.close()

    problems += [f"console error: {m}" for m in console_seen]
    problems += [f"request to a non-local host (blocked): {u}" for u in external_seen]
    problems += [f"failed request: {f}" for f in failed_seen if not any(u in f for u in external_seen)]
    return problems, hrefs, layout


def _layout_counts(layout: dict) -> dict[str, int]:
    """The layout defects of one page at one width, counted."""
    eqs, outs, figs = layout["equations"], layout["outputs"], layout["figures"]
    return {
        "equations cut": sum(e["state"] == "cut" for e in eqs),
        "equations scrolling": sum(e["state"] == "scrolls" for e in eqs),
        "numbers overlapping": sum(e["numberOverlaps"] for e in eqs),
        "outputs cut": sum(o["state"] == "cut" for o in outs),
        "outputs scrolling": sum(o["state"] == "scrolls" for o in outs),
        "code cells wider": sum(c["wider"] for c in layout["code"]),
        "small figures": sum(f["ratio"] < MIN_FIGURE_RATIO or f["cut"] for f in figs),
        "crowded tables": sum(t["crowded"] > 0 or t["state"] == "cut" for t in layout["tables"]),
        "raw $": len(layout["dollars"]),
    }


def _layout_problems(layout: dict, width: int) -> list[str]:
    """What the layout rules forbid at this width (see the module docstring)."""
    desktop = width >= DESKTOP
    problems = []
    for e in layout["equations"]:
        if e["state"] == "cut" or (desktop and e["state"] == "scrolls"):
            how = "cut off" if e["state"] == "cut" else "scrolls"
            problems.append(f"display equation {how} ({e['width']} px in a "
                            f"{layout['column']} px column): {e['text']!r}")
        if e["numberOverlaps"]:
            problems.append(f"equation number overlaps its formula: {e['text']!r}")
    for o in layout["outputs"]:
        if o["state"] == "cut" or (desktop and o["state"] == "scrolls"):
            problems.append(f"output wider than its box ({o['width']} > {o['box']} px, "
                            f"longest line {o['longest']} characters, {o['state']}): "
                            f"{o['text']!r}")
    if desktop:
        for c in layout["code"]:
            if c["wider"]:
                problems.append(f"code cell wider than its box (longest line "
                                f"{c['longest']} characters): {c['text']!r}")
    for f in layout["figures"]:
        if f["ratio"] < MIN_FIGURE_RATIO or f["cut"]:
            problems.append(f"figure {f['src']} shown at {f['shown']} of {f['natural']} px "
                            f"({100 * f['ratio']:.0f} %){', cut' if f['cut'] else ''}")
    for t in layout["tables"]:
        if t["crowded"] or t["state"] == "cut":
            problems.append(f"table with {t['crowded']} crowded cells ({t['state']}): "
                            f"{t['sample']!r}")
    problems += [f"raw '$' in the text: ...{d!r}..." for d in layout["dollars"]]
    if "extra" in layout:
        problems += _overflow_problems(layout["extra"], desktop)
    return problems


def _overflow_problems(extra: dict, desktop: bool) -> list[str]:
    """What ``_OVERFLOW_JS`` found that the rules forbid: at a desktop width every table,
    output and inline formula fits its box (no formula scrolls on a line of its own); at
    any width no inline formula is cut, a table wider than its box scrolls with a
    scrollbar and a fading edge, and the page itself does not scroll sideways."""
    problems = []
    for t in extra["tables"]:
        if desktop or not (t["scrollbar"] and t["cue"]):
            how = ("scrolls" if t["scrollbar"] else "cut") + (", fades" if t["cue"] else "")
            problems.append(f"table wider than its box ({t['width']} px in {t['box']} px, "
                            f"{t['hidden']} px hidden, {how}) in {t['section']!r}: "
                            f"{t['text']!r}")
    if desktop:
        for o in extra["outputs"]:
            problems.append(f"{o['kind']} output wider than its box ({o['hidden']} px "
                            f"hidden) in {o['section']!r}: {o['text']!r}")
    for f in extra["inline"]:
        if f["cut"] or (desktop and (f["over"] or f["scrolls"])):
            how = (f"{f['cut']} px cut by {f['by']}" if f["cut"] else
                   "scrolls on a line of its own" if f["scrolls"] else
                   f"{f['over']} px past its paragraph")
            problems.append(f"inline formula ({f['width']} px) {how} in {f['section']!r}: "
                            f"{f['text']!r}")
    if extra["pageScroll"]:
        problems.append(f"the page scrolls sideways by {extra['pageScroll']} px")
    return problems


@pytest.mark.parametrize("page_id", PAGES)
def test_page_renders_offline_without_errors(chromium, book_url, page_id):
    problems: list[str] = []
    hrefs: list[str] = []
    for mode, width, shot in (("light", DESKTOP, "light"), ("dark", DESKTOP, "dark"),
                              ("light", PHONE, "phone")):
        found, hrefs, layout = _visit(chromium, book_url, page_id, mode, width, shot,
                                      extra_js=_OVERFLOW_JS if mode == "light" else "")
        if mode == "light":  # the layout does not depend on the colour scheme
            found += _layout_problems(layout, width)
        problems += [f"[{mode} {width}px] {p}" for p in found]
    problems += _check_links(urljoin(book_url, page_id + ".html"), hrefs, book_url)
    assert not problems, f"{page_id}:\n  " + "\n  ".join(problems)


def test_the_layout_checks_flag_planted_defects(chromium):
    """The layout measurements find each defect they exist for, and only those, in a page
    made for it: a cut output, a figure shown small, a number overflowing its cell, cells
    run together, a number broken over lines and a raw dollar; beside them, an output and a
    table that are fine (a number in a padded paragraph, as Sphinx writes table cells)."""
    page = chromium.new_page(viewport={"width": 800, "height": 600})
    svg = ("data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' "
           "width='400' height='40'/>")
    try:
        page.set_content(f"""<html><body><main style="width: 600px">
          <div class="cell_output"><pre style="overflow: hidden">{"x" * 300}</pre></div>
          <div class="cell_output"><pre>short line</pre></div>
          <img width="400" src="{svg}" style="width: 100px">
          <table><tr><td style="width: 1ch; max-width: 1ch">123.45</td>
                     <td style="padding: 0">ab</td><td style="padding: 0">cd</td></tr></table>
          <table><tr><td style="width: 2ch">1 234 567</td></tr></table>
          <table><tr><td style="width: 10ch">words in a paragraph, over several lines</td>
                     <td style="padding: 0 8px; vertical-align: middle">
                       <p style="margin: 0; padding-top: 12px">12</p></td></tr></table>
          <p>costs $5</p></main></body></html>""")
        layout = page.evaluate(_LAYOUT_JS)
    finally:
        page.close()
    assert [o["state"] for o in layout["outputs"]] == ["cut", "fits"]
    assert [round(f["ratio"], 2) for f in layout["figures"]] == [0.25]
    assert [t["crowded"] for t in layout["tables"]] == [3, 1, 0]
    assert len(layout["dollars"]) == 1


def test_the_overflow_checks_flag_planted_defects(chromium):
    """``_OVERFLOW_JS`` and the rules on it, in a page made for them, with the book's
    ``lvae-layout.js`` and ``lvae.css``: a table wider than its output box scrolls and fades
    (fine on a phone, not at a desktop width), a table that fits is not counted, nor one that
    fits once its row labels break between words, a figure wider than the text keeps its
    natural width in a box that scrolls, printed text
    wider than its box is, an inline formula wider than its line gets a line of its own and
    scrolls, one pushed out of a clipped paragraph is cut, and the page scrolls sideways."""
    static = ROOT / "book" / "_static"
    page = chromium.new_page(viewport={"width": 800, "height": 600})
    svg = ("data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' "
           "width='700' height='40'/>")
    wide_math = '<mjx-container><mjx-math style="display: inline-block; width: {}px">' \
                "</mjx-math></mjx-container>"
    try:
        page.set_content(f"""<html><head><style>img {{ max-width: 100%; }}</style></head>
          <body><div class="bd-content"><article class="bd-article" style="width: 600px">
          <section><h2>Planted</h2>
          <div class="cell_output"><div class="output text_html">
            <table><tr>{"<td>12345.678</td>" * 40}</tr></table></div></div>
          <div class="cell_output"><div class="output text_html">
            <table><tr><td>1.5</td><td>2.5</td></tr></table></div></div>
          <div class="cell_output"><div class="output text_html"><table><tbody><tr>
            <th>{"a row label of several words " * 4}</th><td>1.5</td></tr></tbody>
            </table></div></div>
          <figure><img src="{svg}"></figure>
          <div class="cell_output"><div class="output text_plain">
            <pre style="overflow-x: auto">{"y" * 300}</pre></div></div>
          <p>before {wide_math.format(900)} after</p>
          <p style="white-space: nowrap; overflow: hidden; width: 300px">{"word " * 80}
            {wide_math.format(40)}</p>
          <div style="width: 1000px">wider than the window</div>
          </section></article></div></body></html>""")
        page.add_style_tag(path=str(static / "lvae.css"))
        page.add_script_tag(path=str(static / "lvae-layout.js"))
        page.wait_for_timeout(100)
        layout = page.evaluate(_LAYOUT_JS)
        extra = page.evaluate(_OVERFLOW_JS)
    finally:
        page.close()
    # The figure keeps its natural width (wider than the text) and scrolls in its box.
    assert [(round(f["ratio"], 2), f["cut"]) for f in layout["figures"]] == [(1.0, False)]
    # The long row labels break between words, the table fits; the numbers do not fit.
    assert [(t["scrollbar"], t["cue"]) for t in extra["tables"]] == [(True, True)]
    assert [o["kind"] for o in extra["outputs"]] == ["text"]
    assert [(f["scrolls"], f["cut"] > 0) for f in extra["inline"]] == [(False, True),
                                                                       (True, False)]
    assert extra["pageScroll"] > 100
    desktop, phone = _overflow_problems(extra, True), _overflow_problems(extra, False)
    assert [p.split(" ")[0] for p in desktop] == ["table", "text", "inline", "inline", "the"]
    assert [p.split(" ")[0] for p in phone] == ["inline", "the"]


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


# --------------------------------------------------------------------------- counts


@contextlib.contextmanager
def served_browser(html_dir: Path):
    """The built book served on 127.0.0.1 at a free port, and chromium:
    ``(browser, base URL)``; both are stopped on exit."""
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = _Server(("127.0.0.1", 0), handler)                 # port 0: a free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True,
                                         ignore_default_args=["--hide-scrollbars"])
            try:
                yield browser, f"http://127.0.0.1:{server.server_address[1]}/"
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _print_counts(html_dir: Path) -> None:
    """Print the layout counts of every page at both widths (no assertion)."""
    totals: dict[tuple[int, str], int] = {}
    with served_browser(html_dir) as (browser, base):
        for width in (DESKTOP, PHONE):
            print(f"\n{width} px")
            for page_id in PAGES:
                _, _, layout = _visit(browser, base, page_id, "light", width)
                counts = _layout_counts(layout)
                for key, value in counts.items():
                    totals[(width, key)] = totals.get((width, key), 0) + value
                shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                print(f"  {page_id:<28} {shown or '-'}")
    keys = list(_layout_counts({"equations": [], "outputs": [], "figures": [], "code": [],
                                "tables": [], "dollars": []}))
    print(f"\n{'total':<22}{DESKTOP:>8}{PHONE:>8}")
    for key in keys:
        print(f"{key:<22}{totals.get((DESKTOP, key), 0):>8}{totals.get((PHONE, key), 0):>8}")


if __name__ == "__main__":
    import sys

    _print_counts(Path(sys.argv[1]) if len(sys.argv) > 1 else HTML_DIR)
