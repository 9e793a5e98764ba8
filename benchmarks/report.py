"""The markdown bits both benchmark scripts print and write."""
from __future__ import annotations

import statistics
from pathlib import Path


def comparison_row(label: str, ours: list[float], other: list[float], *, ours_first: bool = True,
                   digits: int = 4) -> str:
    """``| label | median (best) | median (best) | ratio ours/other of the medians (of the bests) |
    repeats | repeats |`` in the given column order. Rates: higher is better, and on a shared
    machine noise only ever lowers them, so the best repeat is the cleanest single measurement."""
    fmt = lambda v: f"{v:.{digits}g}"
    cell = lambda v: f"{fmt(statistics.median(v))} ({fmt(max(v))})"
    first, second = (ours, other) if ours_first else (other, ours)
    return (f"| {label} | {cell(first)} | {cell(second)} | {ratio_cell(ours, other)} | "
            f"{', '.join(map(fmt, first))} | {', '.join(map(fmt, second))} |")


def ratio_cell(ours: list[float], other: list[float]) -> str:
    """``median ratio (best ratio)`` of two lists of rates."""
    return (f"{statistics.median(ours) / statistics.median(other):.2f} "
            f"({max(ours) / max(other):.2f})")


def write_report(lines: list[str], out: Path) -> None:
    """Print the table and write it to ``out``."""
    text = "\n".join(lines) + "\n"
    print(text)
    out.write_text(text)
    print(f"wrote {out}")
