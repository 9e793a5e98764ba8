"""Read a failed book build's log and say which chapter and cell failed, and what to do.

    python scripts/explain_build_failure.py _build/build.log

Called by ``scripts/build_book.sh`` when ``jupyter-book build`` fails. Prints nothing (and
exits 1) if the log shows no failed notebook: the failure is then a Sphinx warning, listed
in the log itself.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FAILED = re.compile(r"(book/[\w.-]+)\.ipynb\S*:?\s*WARNING: Executing notebook failed: (\w+)")
_RAISED = re.compile(r"ExecutionError: \S*?(book/[\w.-]+)\.ipynb")
_ERROR = re.compile(r"\b(CellTimeoutError|CellExecutionError|DeadKernelError|"
                    r"[A-Z]\w*Error)\b")
_TIMEOUT = re.compile(r"after (\d+) seconds")
_ADVICE = {
    "CellTimeoutError": "the cell ran past the build's per-cell limit of {limit} s, which "
                        "guards against hangs; on a quiet 2-core machine it takes far less",
    "DeadKernelError": "the notebook's Python process died (often: out of memory)",
}


def _cells(chapter: str, root: Path) -> list[dict]:
    path = root / f"{chapter}.ipynb"
    return json.loads(path.read_text())["cells"] if path.is_file() else []


def _title(cells) -> str:
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _locate(cells, log: str) -> tuple[int | None, str, str]:
    """(number of the code cell, 1-based, its first line, the section it is in) of the
    failed cell, found by the source that the log quotes."""
    section, number = "", 0
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            heads = [line.lstrip("#").strip() for line in text.splitlines()
                     if line.startswith("#")]
            section = heads[-1] if heads else section
            continue
        if cell["cell_type"] != "code":
            continue
        number += 1
        lines = [line for line in text.splitlines() if line.strip()]
        probe = [line.strip() for line in lines if not line.lstrip().startswith("#")][:2]
        if probe and all(p in log for p in probe):
            return number, lines[0].strip(), section
    return None, "", ""


def explain(log: str, root: Path = ROOT) -> str | None:
    """The message for a build log, or None when no notebook failed in it; ``root``: the
    folder the chapters' ``book/...`` paths are relative to."""
    m = _FAILED.search(log) or _RAISED.search(log)
    if not m:
        return None
    chapter = m.group(1)
    error = m.group(2) if m.re is _FAILED else None
    tail = log[m.start():]
    if error is None:
        found = _ERROR.search(tail)
        error = found.group(1) if found else "an error"
    limit = _TIMEOUT.search(tail)
    cells = _cells(chapter, Path(root))
    number, first, section = _locate(cells, tail)
    where = f"code cell {number} (\"{first[:60]}\")" if number else "one of its cells"
    if section:
        where += f", in the section \"{section}\""
    raised = re.search(r"^(\w+(?:Error|Exception)): (.+)$", tail, re.M) \
        if error == "CellExecutionError" else None
    reason = _ADVICE.get(error, "the cell raised {raised}; the traceback above says where")
    reason = reason.format(limit=limit.group(1) if limit else "?",
                           raised=f"{raised.group(1)} ({raised.group(2).strip()})" if raised
                           else error)
    name = Path(chapter).name
    title = _title(cells)
    return "\n".join([
        "",
        f"[build] The book was not built: chapter {name}"
        + (f" ({title})" if title else "") + f" failed at {where}.",
        f"[build] Why: {error}: {reason}.",
        "[build] What to do:",
        "[build]   - run the same command again: chapters that finished are cached and not",
        "[build]     executed again, and models trained so far are loaded from the cache;",
        "[build]   - if other programs keep the CPU busy (see `top`), close or pause them",
        "[build]     for the build; the chapters' stated times assume a quiet machine;",
        "[build]   - or build the small, fast book: LVAE_FAST=1 bash scripts/build_book.sh;",
        f"[build]   - or open {chapter}.ipynb in Jupyter and run it there, to see the cell.",
        f"[build] The traceback: _build/html/reports/{chapter}.err.log (if written) and the "
        "log above.",
    ])


def main() -> int:
    text = Path(sys.argv[1]).read_text(errors="replace")
    message = explain(text)
    if message is None:
        return 1
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
