"""Export student versions of the chapters: solutions removed, exercises kept.

    python scripts/export_student_notebooks.py [--out _build/student] [book/*.ipynb ...]

In each chapter notebook, code cells tagged ``solution`` and the markdown
``{solution}`` blocks (sphinx-exercise) are removed; cells tagged ``exercise`` stay,
marked with a line that tells the student to fill them in. Outputs are cleared.
An instructor hands out the folder this writes.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

SOLUTION_BLOCK = re.compile(r"(`{3,}|:{3,})\{solution\}.*?^\1[ \t]*$\n?", re.S | re.M)
# gated solutions (sphinx-exercise): everything from {solution-start} to the end of {solution-end},
# across cells
GATE_START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}", re.M)
GATE_END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}[^\n]*\n\1[ \t]*$\n?", re.M)
EXERCISE_MARK = "# EXERCISE: fill in this cell.\n"


def student_version(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """The notebook without its solutions, and how many solution cells or blocks were removed."""
    removed, cells, gated = 0, [], False
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if gated:   # inside a gated solution: drop until its end
            end = GATE_END.search(cell.source) if cell.cell_type == "markdown" else None
            if end is None:
                continue
            gated, cell.source = False, cell.source[end.end():]
            if not cell.source.strip():
                continue
        if "solution" in tags:
            removed += 1
            continue
        if cell.cell_type == "markdown":
            text, n = SOLUTION_BLOCK.subn("", cell.source)
            start = GATE_START.search(text)
            if start is not None:
                end = GATE_END.search(text, start.end())
                if end is None:
                    gated, text = True, text[:start.start()]
                else:
                    text = text[:start.start()] + text[end.end():]
                n += 1
            removed += n
            if n and not text.strip():
                continue
            cell.source = text
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if "exercise" in tags and not cell.source.startswith(EXERCISE_MARK):
                cell.source = EXERCISE_MARK + cell.source
        cells.append(cell)
    nb.cells = cells
    return nb, removed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=Path("_build/student"))
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(Path("book").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks found (run from the repository root)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        nb, removed = student_version(nbformat.read(path, as_version=4))
        nbformat.write(nb, args.out / path.name)
        print(f"{path} -> {args.out / path.name}: {removed} solution(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
