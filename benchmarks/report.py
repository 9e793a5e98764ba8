"""The markdown bits both benchmark scripts print and write."""
from __future__ import annotations

import statistics
from pathlib import Path


def comparison_row(label: str, ours: list[float], other: list[float], *, ours_first: bool = True,
                   digits: int = 4) -> str:
    """``| label | median | median | ratio ours/other | repeats | repeats |`` in the given column order."""
    fmt = lambda v: f"{v:.{digits}g}"
    mo, mt = statistics.median(ours), statistics.median(other)
    first, second = (ours, other) if ours_first else (other, ours)
    return (f"| {label} | {fmt(statistics.median(first))} | {fmt(statistics.median(second))} | "
            f"{mo / mt:.2f} | {', '.join(map(fmt, first))} | {', '.join(map(fmt, second))} |")


def write_report(lines: list[str], out: Path) -> None:
    """Print the table and write it to ``out``."""
    text = "\n".join(lines) + "\n"
    print(text)
    out.write_text(text)
    print(f"wrote {out}")
