"""Write the book's TeX macros into the first cell of every chapter notebook.

The macros have one source: ``mathjax3_config.tex.macros`` in ``_config.yml``, which
the HTML book reads. Jupyter front ends do not read ``_config.yml``, so every chapter
starts with a markdown cell that defines the same macros (cell id ``tex-macros``, tag
``remove-cell``: the HTML book drops it), twice:

* a YAML front matter whose ``math`` mapping jupyterlab-myst reads: it typesets every
  formula alone with KaTeX, so a ``\\def`` holds only inside its own formula, and it
  takes a notebook's macros from the front matter of the first cell only. Renderers
  without MyST would show the YAML as text; an HTML comment hides it from them, opened
  by the front matter's first key ``<!--`` and closed by the line ``<!-- -->`` after it
  (which MyST reads as an empty comment);
* one ``$\\def...$`` per macro. JupyterLab without jupyterlab-myst and Colab
  typeset with MathJax, whose definitions hold for the whole page; VS Code typesets with
  KaTeX in its global group with one shared macro table, so a definition in the first
  cell holds in the cells below it too. ``\\def`` rather than ``\\newcommand``: KaTeX refuses
  ``\\newcommand`` for a macro it already knows (``\\N``, ``\\R``) or one that an
  earlier render of the cell defined.

    python scripts/sync_macros.py           # rewrite the cells after editing _config.yml
    python scripts/sync_macros.py --check   # exit 1 if a notebook is out of date

``tests/test_jupyterlab.py`` fails when a notebook and ``_config.yml`` disagree.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CELL_ID = "tex-macros"
TAGS = ["remove-cell"]
NOTE = ("The book's TeX macros, for JupyterLab with jupyterlab-myst (this front matter) "
        "and for Jupyter, Colab and VS Code (the definitions below it); the HTML book "
        "takes them from _config.yml and drops this cell. Written by "
        "scripts/sync_macros.py from _config.yml: edit them there.")


def config_macros(config: Path = ROOT / "_config.yml") -> dict[str, tuple[str, int]]:
    """``{name: (body, number of arguments)}`` from ``_config.yml``, in its order."""
    tex = yaml.safe_load(config.read_text(encoding="utf8"))["sphinx"]["config"]
    macros = {}
    for name, value in tex["mathjax3_config"]["tex"]["macros"].items():
        body, n_args = (value, 0) if isinstance(value, str) else (value[0], int(value[1]))
        macros[name] = (body, n_args)
    return macros


def macro_cell_source(macros: dict[str, tuple[str, int]]) -> str:
    """The markdown of the macro cell: the front matter for jupyterlab-myst, hidden from
    other renderers in an HTML comment, then one ``$\\def...$`` per macro."""
    lines = ["---", "<!--: >-"]
    lines += textwrap.wrap(NOTE, width=86, initial_indent="  ", subsequent_indent="  ")
    lines.append("math:")
    for name, (body, _n_args) in macros.items():      # KaTeX counts the #1, #2 itself
        quoted = body.replace("'", "''")
        lines.append(f"  '\\{name}': '{quoted}'")
    lines += ["---", "<!-- -->", ""]
    for name, (body, n_args) in macros.items():
        params = "".join(f"#{i}" for i in range(1, n_args + 1))
        lines.append(f"$\\def\\{name}{params}{{{body}}}$")
    source = "\n".join(lines)
    assert "-->" not in source.split("<!-- -->")[0], "the front matter holds -->"
    return source


def chapter_notebooks() -> list[Path]:
    return sorted((ROOT / "book").glob("*.ipynb"))


def sync(path: Path, source: str, check: bool) -> bool:
    """Make the notebook's first cell the macro cell; True if it was (or would be) changed."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.get("id") == CELL_ID:
        changed = (first.cell_type != "markdown" or first.source != source
                   or first.metadata.get("tags") != TAGS)
        if changed and not check:
            nb.cells[0] = nbformat.v4.new_markdown_cell(source, id=CELL_ID,
                                                        metadata={"tags": list(TAGS)})
    else:
        changed = True
        if not check:
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(source, id=CELL_ID,
                                                             metadata={"tags": list(TAGS)}))
    if changed and not check:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report, change nothing")
    args = parser.parse_args(argv)
    source = macro_cell_source(config_macros())
    stale = [p for p in chapter_notebooks() if sync(p, source, args.check)]
    for path in stale:
        print(("out of date: " if args.check else "updated: ") + str(path.relative_to(ROOT)))
    if not stale:
        print("macro cells up to date")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
