"""Every chapter executed cold, timed, beside the running time its text states.

Each chapter runs in a fresh kernel (the book's ``python3`` kernel in ``.venv``) with a fresh,
empty checkpoint cache (``LVAE_CACHE_DIR``; ``--shared-cache``: one cache for the whole run,
in reading order, as a build from a fresh clone has it), in default mode unless ``--fast``,
with the settings the build uses (``LVAE_THREADS=auto``). ``--busy N`` keeps N CPU-bound
processes running beside it the whole time (another program on a student's laptop).

Printed, as a markdown table (also written to ``--out``): the chapter, the measured seconds,
the time the chapter's opening states ("Running time: about N minutes ..."), its
longest cell and that cell's first line.

    python benchmarks/time_chapters.py                       # about 10 minutes on 2 cores
    python benchmarks/time_chapters.py --busy 2              # beside a two-process busy loop
    python benchmarks/time_chapters.py --chapters 03_vae,05_iwae
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "while True: pass"
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a": 1}
#: "Running time: about 2.5 minutes (about 5 with another program keeping both cores busy)"
_STATED = re.compile(r"Running time:\**\s*(?:about|under|at most)\s+([\d.]+|\w+)\s+"
                     r"(minutes?|seconds?)(?:[^()]*\((?:about|under|at most)\s+([\d.]+)"
                     r"(?:\s+(minutes?|seconds?))?\s+(?:with|while) another program)?")


def chapters() -> list[str]:
    toc = (ROOT / "_toc.yml").read_text()
    return [m for m in re.findall(r"file:\s*book/(\S+)", toc)
            if (ROOT / "book" / f"{m}.ipynb").is_file()]


def stated_seconds(name: str) -> tuple[float | None, float | None]:
    """The quiet and busy running times (seconds) the chapter's opening states, or None."""
    import nbformat
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    text = " ".join(c.source for c in nb.cells[:4] if c.cell_type == "markdown")
    m = _STATED.search(" ".join(text.split()))
    if not m:
        return None, None
    value = float(_WORDS.get(m.group(1), m.group(1)) if m.group(1) in _WORDS
                  else m.group(1))
    unit = 60 if m.group(2).startswith("minute") else 1
    busy = None
    if m.group(3):
        busy = float(m.group(3)) * (60 if (m.group(4) or m.group(2)).startswith("minute")
                                    else 1)
    return value * unit, busy


def run_chapter(name: str, cache: Path, fast: bool, timeout: int) -> dict:
    import nbformat
    from nbclient import NotebookClient
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import kernel_wait            # the build's bounded wait for a new kernel's first reply
    kernel_wait.install()
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    os.environ["LVAE_CACHE_DIR"] = str(cache)
    os.environ["LVAE_FAST"] = "1" if fast else "0"
    os.environ.setdefault("LVAE_THREADS", "auto")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(ROOT / "book")}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    cells = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            first_line = next((line for line in cell.source.splitlines()
                               if line.strip() and not line.startswith("#")), "")
            cells.append(((end - start).total_seconds(), index, first_line))
    longest = max(cells) if cells else (0.0, None, "")
    return dict(chapter=name, seconds=seconds, longest=longest[0], longest_cell=longest[2],
                cells=sorted(cells, reverse=True)[:8])


def _fmt(seconds):
    return "" if seconds is None else f"{seconds:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chapters", default=None, help="comma-separated notebook names")
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--shared-cache", action="store_true")
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--out", default=None)
    parser.add_argument("--table-from", default=None, metavar="JSON",
                        help="print the table of an earlier run (its --out with .json), with "
                             "the times the chapters state now")
    args = parser.parse_args()
    if args.table_from:
        saved = json.loads(Path(args.table_from).read_text())
        for row in saved["rows"]:
            row["stated"], row["stated_busy"] = stated_seconds(row["chapter"])
        print(table(saved["rows"], saved["settings"]))
        return
    names = args.chapters.split(",") if args.chapters else chapters()
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="lvae-times-") as tmp:
            for name in names:
                cache = Path(tmp) / ("shared" if args.shared_cache else name)
                row = run_chapter(name, cache, args.fast, args.timeout)
                row["stated"], row["stated_busy"] = stated_seconds(name)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    mode = "fast (LVAE_FAST=1)" if args.fast else "default"
    settings = (f"{mode} mode, "
                f"{'one fresh cache for the run' if args.shared_cache else 'a fresh cache each'}"
                f", {os.cpu_count()} CPUs, {args.busy} CPU-bound processes beside them")
    text = table(rows, settings)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        Path(args.out).with_suffix(".json").write_text(
            json.dumps(dict(settings=settings, rows=rows), indent=1))


def table(rows: list, settings: str) -> str:
    lines = [f"Chapters executed cold ({settings}).", "",
             "| chapter | measured s | stated s (quiet) | stated s (busy) | longest cell s | "
             "longest cell |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['chapter']} | {r['seconds']:.0f} | {_fmt(r['stated'])} | "
                     f"{_fmt(r['stated_busy'])} | {r['longest']:.0f} | "
                     f"`{r['longest_cell'][:48]}` |")
    lines.append(f"| all | {sum(r['seconds'] for r in rows):.0f} | | | "
                 f"{max(r['longest'] for r in rows):.0f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
