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
* inline formulas that ``book/_static/lvae-layout.js`` set on a line of their own because
  they are wider than a line (they scroll there);
* whether the page itself scrolls sideways, and by how much.

It prints a table per width and theme and then every item with its section and how
many pixels are hidden. It measures; it asserts nothing (``tests/test_browser.py``, whose
measurement ``_OVERFLOW_JS`` this is, is the test). Build the book first
(``bash scripts/build_book.sh``; ``LVAE_FAST=1`` for the fast book).

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
    _OVERFLOW_JS,
    _visit,
    served_browser,
)

COLUMNS = ("tables wider", "outputs wider", "inline over", "inline cut",
           "inline scrolls", "page scroll px")


def _counts(extra: dict) -> dict[str, int]:
    return {"tables wider": len(extra["tables"]),
            "outputs wider": len(extra["outputs"]),
            "inline over": sum(f["over"] > 0 for f in extra["inline"]),
            "inline cut": sum(f["cut"] > 0 for f in extra["inline"]),
            "inline scrolls": sum(f["scrolls"] for f in extra["inline"]),
            "page scroll px": extra["pageScroll"]}


def _details(extra: dict) -> list[str]:
    lines = []
    for t in extra["tables"]:
        where = "output" if t["output"] else "text"
        bar = "scrollbar" if t["scrollbar"] else "no scrollbar"
        bar += ", fades" if t["cue"] else ""
        lines.append(f"table ({where}) {t['width']} px in {t['box']} px, "
                     f"{t['hidden']} px hidden, {bar}; {t['section']}: {t['text']!r}")
    for o in extra["outputs"]:
        bar = "scrollbar" if o["scrollbar"] else "no scrollbar"
        lines.append(f"{o['kind']} output: {o['hidden']} px hidden, {bar}; "
                     f"{o['section']}: {o['text']!r}")
    for f in extra["inline"]:
        what = ["on a line of its own, scrolls"] if f["scrolls"] else []
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
