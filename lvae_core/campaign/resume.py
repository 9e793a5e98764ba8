"""Carry unfinished runs from one machine to the next through the results folder.

A long run keeps its resumable state in the checkpoint cache (``<cache>/checkpoints/
<key>.partial.pt``, every ``checkpoint_every`` epochs) and its learning-curve snapshots in
``<cache>/snapshots/<out name>/<run>/``. A cache is local to one machine and may be lost;
``stash`` copies that state into ``<out>/resume/`` (git-ignored: its checkpoints are tens
of MB; keep a copy off the machine), and ``unstash`` copies it back into an empty or older
cache, so that the runs go on from where they were instead of from epoch 0.

    python -m lvae_core reproduce --out results/fashion-mnist-protocol --stash
    python -m lvae_core reproduce --out results/fashion-mnist-protocol --unstash

What is stashed: every partial checkpoint in the cache (only ``fit(...,
checkpoint_every=n)`` writes them; the chapters never do), and every snapshot whose epoch is
not yet scored in ``<out>/runs/<run>.curve.json``. When a stashed run has finished training
(the cache holds its final ``<key>.pt`` and ``fit`` has deleted the partial one), the final
checkpoint replaces the partial one in the stash and stays there until the run's result
``<out>/runs/<run>.json`` exists: the evaluation after training takes the better part of an
hour, and a machine lost during it must not cost the training. Nothing is dropped because
the cache lacks it. ``<out>/resume/MANIFEST.md`` lists what the folder holds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..checkpoints import load_file
from ..data import cache_dir
from ..results import Results
from ..runtime import atomic_write

PARTIAL = ".partial.pt"


def _cache(cache) -> Path:
    return Path(cache) if cache is not None else cache_dir()


def _epoch(path: Path) -> int:
    """The number of epochs a partial checkpoint has trained (-1 if it cannot be read)."""
    try:
        return int(load_file(path)["epoch"])
    except Exception:
        return -1


def _describe(path: Path) -> dict:
    ckpt = load_file(path)
    fit = ckpt.get("fit") or {}
    config = ckpt.get("config") or {}
    return dict(file=path.name, kind=ckpt.get("kind"), latent=list(config.get("latent", [])),
                epoch=int(ckpt["epoch"]), of=fit.get("epochs"),
                precision=fit.get("precision", "fp32"))


def _scored(out: Path, run: str) -> set:
    curve = Results(out).curve(run)
    return {p["epoch"] for p in curve["points"]} if curve else set()


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def _snapshots(root: Path) -> list:
    """``(run, path)`` of every snapshot under ``root`` (``<run>/epochNNNNN.pt``)."""
    return [(p.parent.name, p) for p in sorted(root.glob("*/epoch*.pt"))]


def _finals(folder: Path) -> list:
    """The final checkpoints in a stash: trained runs whose evaluation has not been saved."""
    return [p for p in sorted((folder / "checkpoints").glob("*.pt"))
            if not p.name.endswith(PARTIAL)]


def _run_of(final: Path, roots: list):
    """The run a final checkpoint belongs to: the run whose learning-curve snapshots have
    the same model and training settings (``None`` when no snapshot says)."""
    ckpt = load_file(final)
    for root in roots:
        for run_dir in sorted(p for p in Path(root).glob("*") if p.is_dir()):
            snap = next(iter(sorted(run_dir.glob("epoch*.pt"))), None)
            if snap is None:
                continue
            other = load_file(snap)
            if all(other.get(f) == ckpt.get(f) for f in ("kind", "config", "fit")):
                return run_dir.name
    return None


def stash(out, cache=None) -> dict:
    """Copy the cache's partial checkpoints and ``out``'s unscored snapshots into
    ``<out>/resume/``; returns what was copied and dropped (lists of file names)."""
    out, cache = Path(out), _cache(cache)
    folder = out / "resume"
    done = dict(copied=[], dropped=[], kept=[])
    for src in sorted((cache / "checkpoints").glob(f"*{PARTIAL}")):
        dst = folder / "checkpoints" / src.name
        if _epoch(src) > (_epoch(dst) if dst.is_file() else -1):
            _copy(src, dst)
            done["copied"].append(src.name)
        else:
            done["kept"].append(src.name)
    for dst in sorted((folder / "checkpoints").glob(f"*{PARTIAL}")):
        final = cache / "checkpoints" / (dst.name[:-len(PARTIAL)] + ".pt")
        if final.is_file():          # trained: the final checkpoint replaces the partial one
            _copy(final, folder / "checkpoints" / final.name)
            done["copied"].append(final.name)
            dst.unlink()
            done["dropped"].append(dst.name)
    snapshots = cache / "snapshots" / out.resolve().name
    for dst in _finals(folder):
        run = _run_of(dst, [snapshots, folder / "snapshots"])
        if run is not None and Results(out).finished(run):   # evaluated
            dst.unlink()
            done["dropped"].append(dst.name)
    for run, src in _snapshots(snapshots):
        dst = folder / "snapshots" / run / src.name
        if int(src.stem[len("epoch"):]) in _scored(out, run):
            continue
        if not dst.is_file():
            _copy(src, dst)
            done["copied"].append(f"{run}/{src.name}")
    for run, dst in _snapshots(folder / "snapshots"):
        if int(dst.stem[len("epoch"):]) in _scored(out, run):
            dst.unlink()
            done["dropped"].append(f"{run}/{dst.name}")
    _write_manifest(folder)
    return done


def unstash(out, cache=None) -> dict:
    """Copy ``<out>/resume/`` back into the cache where the cache has nothing newer (and the
    run has not finished there); returns what was restored and what was left alone."""
    out, cache = Path(out), _cache(cache)
    folder = out / "resume"
    done = dict(restored=[], kept=[])
    for src in sorted((folder / "checkpoints").glob(f"*{PARTIAL}")):
        dst = cache / "checkpoints" / src.name
        final = dst.with_name(src.name[:-len(PARTIAL)] + ".pt")
        if final.is_file() or (dst.is_file() and _epoch(dst) >= _epoch(src)):
            done["kept"].append(src.name)
            continue
        _copy(src, dst)
        done["restored"].append(src.name)
    for src in _finals(folder):
        dst = cache / "checkpoints" / src.name
        if dst.is_file():
            done["kept"].append(src.name)
            continue
        _copy(src, dst)
        done["restored"].append(src.name)
    snapshots = cache / "snapshots" / out.resolve().name
    for run, src in _snapshots(folder / "snapshots"):
        dst = snapshots / run / src.name
        if dst.is_file():
            done["kept"].append(f"{run}/{src.name}")
            continue
        _copy(src, dst)
        done["restored"].append(f"{run}/{src.name}")
    return done


def _write_manifest(folder: Path) -> None:
    rows = [_describe(p) for p in sorted((folder / "checkpoints").glob("*.pt"))]
    snaps = [f"{run}/{p.name}" for run, p in _snapshots(folder / "snapshots")]
    if not rows and not snaps:
        if folder.is_dir():
            for p in sorted(folder.rglob("*"), reverse=True):
                p.unlink() if p.is_file() else p.rmdir()
            folder.rmdir()
        return
    lines = ["# Unfinished runs", "",
             "Resumable state of runs still training, written by `python -m lvae_core "
             "reproduce --out <this folder's parent> --stash`. `--unstash` (which "
             "`scripts/full_runs.sh` runs first) copies it back into the checkpoint cache, "
             "and the runs continue from these epochs (a run whose checkpoint is final, "
             "`<key>.pt`, has finished training and goes straight to its evaluation).", "",
             "| checkpoint | model | latent | epochs done | of | precision |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{r['file']}` | {r['kind']} | {'-'.join(map(str, r['latent']))} | "
              f"{r['epoch']} | {r['of']} | {r['precision']} |" for r in rows]
    if snaps:
        lines += ["", "Learning-curve snapshots not yet scored: "
                  + ", ".join(f"`{s}`" for s in snaps) + "."]
    path = folder / "MANIFEST.md"
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
