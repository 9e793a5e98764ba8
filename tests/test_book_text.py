"""Static checks of the chapters' text and code (no build needed).

* Cross-references are roles: a number typed into the prose ("Exercise 2", "eq. (4)",
  "Figure 3") goes stale as soon as an exercise, equation or figure is added, and the
  book numbers them per chapter (3.1, 3.2, ...). Use ``{numref}`label```, ``{eq}`label```
  or ``{ref}`label``` instead; references into a cited paper ("Table 1 of
  {cite:t}`...`") are fine.
* Every figure a chapter glues (``lv.plotting.show(fig, "fig-...")``) is shown by a
  ``{glue:figure}`` directive with a ``:name:`` and a caption, and the prose refers to it
  with ``{numref}``; every ``{numref}`fig-...``` names a figure of the book.
* Code lines of the chapters fit the book's code column: at most 88 characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))
PAGES = CHAPTERS + sorted(BOOK.glob("*.md"))
MAX_CODE_LINE = 88

# "Exercise 2", "exercises 3", "Equation (4)", "eq. 4", "Eqs. (4)", "Figure 3.2", "Fig. 3",
# "Table 1", also as the explicit title of a role: {ref}`Exercise 2 <ex-vae-2>`.
TYPED_NUMBER = re.compile(
    r"(?<![\w-])(?:exercises?|equations?|eqs?\.|figures?|figs?\.|tables?)\s*\(?\d+",
    re.IGNORECASE,
)
# A reference into a cited paper: a citation role or "the paper's" close by.
CITED = re.compile(r"\{cite(?::[pt])?\}|paper's|their equations", re.IGNORECASE)


def _markdown(path: Path) -> list[tuple[str, str]]:
    """(cell id, text) of every markdown cell (or the whole file for .md pages)."""
    if path.suffix == ".md":
        return [("-", path.read_text(encoding="utf8"))]
    cells = json.loads(path.read_text(encoding="utf8"))["cells"]
    return [(c.get("id", "?"), "".join(c["source"])) for c in cells
            if c["cell_type"] == "markdown"]


def _code(path: Path) -> list[tuple[str, str]]:
    cells = json.loads(path.read_text(encoding="utf8"))["cells"]
    return [(c.get("id", "?"), "".join(c["source"])) for c in cells
            if c["cell_type"] == "code"]


def _prose(text: str) -> str:
    """Markdown without code blocks, inline code and math (numbers there are not
    references); the role syntax stays, so that a typed role title is still seen."""
    text = re.sub(r"^```(?!\{).*?^```", " ", text, flags=re.S | re.M)   # code fences
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)                 # display math
    text = re.sub(r"\$[^$\n]+\$", " ", text)                             # inline math
    text = re.sub(r"(?<!\})`[^`\n]+`", " ", text)                        # inline code
    return text


def typed_numbers(text: str) -> list[str]:
    """The typed exercise/equation/figure/table numbers of one markdown text."""
    prose = _prose(text)
    hits = []
    for match in TYPED_NUMBER.finditer(prose):
        window = prose[max(0, match.start() - 150):match.end() + 80]
        if CITED.search(window):
            continue
        hits.append(prose[max(0, match.start() - 30):match.end() + 20].replace("\n", " "))
    return hits


def test_the_typed_number_check_finds_what_it_should():
    # The oracle: texts whose answer is known.
    assert typed_numbers("as shown in Exercise 2, the bound") != []
    assert typed_numbers("you will measure it in {ref}`Exercise 2 <ex-vae-2>`.") != []
    assert typed_numbers("see exercise Exercise 13") != []
    assert typed_numbers("from eq. (4) and Figure 3.2") != []
    assert typed_numbers("you will measure it in {numref}`ex-vae-2`.") == []
    assert typed_numbers("the IWAE paper's Table 1 {cite:p}`burda2016importance`") == []
    assert typed_numbers("(equations 17 and 18 of {cite:t}`sonderby2016ladder`)") == []
    assert typed_numbers("$\\mathrm{Table}\\ 3$ and `figure 2` in code") == []


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_typed_reference_numbers(path):
    found = [f"{cid}: ...{hit}..." for cid, text in _markdown(path) for hit in typed_numbers(text)]
    assert not found, (
        f"{path.name}: numbers typed into the prose; use {{numref}}, {{eq}} or {{ref}}:\n  "
        + "\n  ".join(found)
    )


GLUED = re.compile(r"""lv\.plotting\.show\([^)]*?,\s*["']([\w-]+)["']\)""")
GLUE_FIGURE = re.compile(r"^```\{glue:figure\}\s+([\w-]+)\s*\n(.*?)^```", re.S | re.M)
NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?([\w-]+)>?`")


def _figures(path: Path) -> tuple[set, dict, set]:
    glued = {key for _, src in _code(path) for key in GLUED.findall(src)}
    directives = {}
    numrefs = set()
    for _, text in _markdown(path):
        for key, body in GLUE_FIGURE.findall(text):
            directives[key] = body
        numrefs |= set(NUMREF.findall(text))
    return glued, directives, numrefs


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_glued_figures_are_numbered_captioned_and_referenced(path):
    glued, directives, numrefs = _figures(path)
    problems = []
    for key in sorted(glued - directives.keys()):
        problems.append(f"figure {key!r} is glued but no {{glue:figure}} shows it")
    for key in sorted(directives.keys() - glued):
        problems.append(f"{{glue:figure}} {key!r} has no lv.plotting.show(fig, {key!r})")
    for key, body in directives.items():
        name = re.search(r"^:name:\s*([\w-]+)", body, re.M)
        caption = re.sub(r"^:\w+:.*$", "", body, flags=re.M).strip()
        if not name:
            problems.append(f"{{glue:figure}} {key!r} has no :name: (so no number)")
        elif name.group(1) not in numrefs:
            problems.append(f"figure {name.group(1)!r} is never referred to with {{numref}}")
        if len(caption) < 20:
            problems.append(f"{{glue:figure}} {key!r} has no caption")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_every_figure_reference_names_a_figure():
    names = set()
    refs = {}
    for path in CHAPTERS:
        for _, text in _markdown(path):
            for _, body in GLUE_FIGURE.findall(text):
                found = re.search(r"^:name:\s*([\w-]+)", body, re.M)
                if found:
                    names.add(found.group(1))
            for ref in NUMREF.findall(text):
                if ref.startswith("fig-"):
                    refs.setdefault(ref, path.name)
    missing = {ref: page for ref, page in refs.items() if ref not in names}
    assert not missing, f"{{numref}} to figures that do not exist: {missing}"
    assert names, "no numbered figure found: the check itself is broken"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_code_lines_fit_the_column(path):
    long = [f"{cid}: {len(line)} characters: {line[:60]}..."
            for cid, src in _code(path) for line in src.splitlines()
            if len(line) > MAX_CODE_LINE]
    assert not long, f"{path.name}: code lines over {MAX_CODE_LINE} characters:\n  " + \
        "\n  ".join(long)
