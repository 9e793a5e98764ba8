"""What does not fit on the built HTML book's pages, measured in Chromium, page by page.

Serves the built book (``_build/html``, or the folder given) on 127.0.0.1 on a free port
and opens every page of ``_toc.yml`` in Debian's Chromium with the browser test's page
visit (``tests/test_browser.py``: offline, MathJax typeset, images loaded, real
scrollbars), at 1280 px in the light and the dark theme and at 390 px. Solutions are
opened first (the reader clicks them open). Per page and width it counts:

* tables whose content is wider than the box that shows them (an output's box or the
  text column): the reader sees the left part and, at best, a thin scrollbar;
* other outputs (printed text, HTML, images, widgets) wider than their box;
* inline formulas that run past the right edge of their paragraph, list item or cell;
* inline formulas cut: a part of them is drawn outside every box that could show it
  (clipped, or past the window's right edge);
* whether the page itself scrolls sideways, and by how much.

It prints a table per width and theme and then every item with its section and how
many pixels are hidden. It measures; it asserts nothing (``tests/test_browser.py`` is
the test). Build the book first (``bash scripts/build_book.sh``; ``LVAE_FAST=1`` for the
fast book).

    python benchmarks/measure_overflow.py                     # _build/html
    python benchmarks/measure_overflow.py path/to/html --pages book/03_vae,book/05_iwae
    python benchmarks/measure_overflow.py --no-dark --no-details
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_browser import (  # noqa: E402 - the browser test's page visit, reused as is
    DESKTOP,
    HTML_DIR,
    PAGES,
    PHONE,
    _visit,
    served_browser,
)

# Runs after the browser test's own layout measurement (_LAYOUT_JS) in the same page.
_OVERFLOW_JS = r"""
() => {
  const TOL = 1.5;
  const article = document.querySelector('article.bd-article')
               || document.querySelector('main') || document.body;
  // Open the solutions (sphinx-togglebutton hides a dropdown admonition's body).
  article.querySelectorAll('.admonition.toggle-hidden')
         .forEach(el => el.classList.remove('toggle-hidden'));
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
    tables.push({hidden, width: Math.round(r.width), box: Math.round(boxWidth),
                 output: !!t.closest('.cell_output, .output'),
                 scrollbar: !!(box && inColumn && scrollsVisibly(box)),
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
                   width: Math.round(r.width), section: section(m),
                   text: (tex ? tex.textContent : text(m)).trim().slice(0, 50)});
    }
  }

  const page = document.documentElement;
  return {column: Math.round(col.width), tables, outputs, inline,
          pageScroll: Math.max(0, page.scrollWidth - page.clientWidth)};
}
"""

COLUMNS = ("tables wider", "outputs wider", "inline over", "inline cut",
           "page scroll px")


def _counts(extra: dict) -> dict[str, int]:
    return {"tables wider": len(extra["tables"]),
            "outputs wider": len(extra["outputs"]),
            "inline over": sum(f["over"] > 0 for f in extra["inline"]),
            "inline cut": sum(f["cut"] > 0 for f in extra["inline"]),
            "page scroll px": extra["pageScroll"]}


def _details(extra: dict) -> list[str]:
    lines = []
    for t in extra["tables"]:
        where = "output" if t["output"] else "text"
        bar = "scrollbar" if t["scrollbar"] else "no scrollbar"
        lines.append(f"table ({where}) {t['width']} px in {t['box']} px, "
                     f"{t['hidden']} px hidden, {bar}; {t['section']}: {t['text']!r}")
    for o in extra["outputs"]:
        bar = "scrollbar" if o["scrollbar"] else "no scrollbar"
        lines.append(f"{o['kind']} output: {o['hidden']} px hidden, {bar}; "
                     f"{o['section']}: {o['text']!r}")
    for f in extra["inline"]:
        what = []
        if f["over"]:
            what.append(f"{f['over']} px past its paragraph")
        if f["cut"]:
            what.append(f"{f['cut']} px cut (by {f['by']})")
        lines.append(f"inline formula ({f['width']} px), {', '.join(what)}; "
                     f"{f['section']}: {f['text']!r}")
    return lines


def measure(html_dir: Path, pages: list[str], views: list[tuple[str, int]],
            details: bool) -> None:
    results: dict[tuple[str, int], dict[str, dict]] = {}
    t0 = time.monotonic()
    with served_browser(html_dir) as (browser, base):
        for mode, width in views:
            for page_id in pages:
                problems, _, layout = _visit(browser, base, page_id, mode,
                                             width, extra_js=_OVERFLOW_JS)
                if "extra" not in layout:
                    raise RuntimeError(f"{page_id} did not load: {problems}")
                results.setdefault((mode, width), {})[page_id] = layout["extra"]

    name = max(len(p) for p in pages) + 2
    for (mode, width), per_page in results.items():
        column = next(iter(per_page.values()))["column"]
        print(f"\n{width} px, {mode} theme (text column {column} px)\n")
        print(f"{'page':<{name}}" + "".join(f"{c:>16}" for c in COLUMNS))
        totals = dict.fromkeys(COLUMNS, 0)
        for page_id, extra in per_page.items():
            counts = _counts(extra)
            totals = {k: totals[k] + counts[k] for k in COLUMNS}
            print(f"{page_id:<{name}}" + "".join(f"{counts[c]:>16}" for c in COLUMNS))
        print(f"{'total':<{name}}" + "".join(f"{totals[c]:>16}" for c in COLUMNS))
    if details:
        for (mode, width), per_page in results.items():
            print(f"\n--- {width} px, {mode} theme: every item")
            for page_id, extra in per_page.items():
                for line in _details(extra):
                    print(f"{page_id}: {line}")
    print(f"\n({time.monotonic() - t0:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=HTML_DIR,
                        help="the built HTML book (default: _build/html)")
    parser.add_argument("--pages",
                        help="comma-separated pages of _toc.yml (default: all)")
    parser.add_argument("--no-dark", action="store_true", help="skip the dark theme")
    parser.add_argument("--no-details", action="store_true",
                        help="print the tables only")
    args = parser.parse_args()
    if not (args.html_dir / "index.html").is_file():
        sys.exit(f"{args.html_dir / 'index.html'} not found: build the book first "
                 "(bash scripts/build_book.sh)")
    pages = args.pages.split(",") if args.pages else PAGES
    missing = [p for p in pages if not (args.html_dir / f"{p}.html").is_file()]
    if missing:
        print(f"not in this build, left out: {', '.join(missing)}")
        pages = [p for p in pages if p not in missing]
    views = [("light", DESKTOP)] + ([] if args.no_dark else [("dark", DESKTOP)])
    views.append(("light", PHONE))
    measure(args.html_dir, pages, views, details=not args.no_details)


if __name__ == "__main__":
    main()
