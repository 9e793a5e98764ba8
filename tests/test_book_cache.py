"""The book's execution cache follows the results files the chapters read
(``book/_ext/lvae_book.py``): jupyter-cache keys a notebook on its code alone, so a chapter
that loads ``results/`` must run again when those files change, and only then."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lvae_book", ROOT / "book/_ext/lvae_book.py")
lvae_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lvae_book)


def _notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _cached(cache_path: Path) -> set:
    return {Path(r.uri).name for r in get_cache(cache_path).list_cache_records()}


def test_a_change_of_results_reruns_the_chapters_that_read_them(tmp_path):
    reader = _notebook(tmp_path / "book/06_reader.ipynb",
                       'p = "results/run/curve.json"')
    other = _notebook(tmp_path / "book/01_other.ipynb", "x = 1")
    curve = tmp_path / "results/run/curve.json"
    curve.parent.mkdir(parents=True)
    curve.write_text(json.dumps({"points": [1]}))
    cache_path = tmp_path / "_build/.jupyter_cache"
    app = SimpleNamespace(srcdir=str(tmp_path))
    config = SimpleNamespace(nb_execution_cache_path=str(cache_path))

    def cache_both():
        cache = get_cache(cache_path)
        for nb in (reader, other):
            if nb.name not in _cached(cache_path):
                cache.cache_notebook_file(nb, check_validity=False)

    cache_both()
    lvae_book._expire_results_readers(app, config)      # a cache from before the stamp
    assert _cached(cache_path) == {other.name}
    cache_both()
    lvae_book._expire_results_readers(app, config)      # nothing changed
    assert _cached(cache_path) == {reader.name, other.name}

    # the state of a run in progress is not read by any chapter
    (tmp_path / "results/run/logs").mkdir()
    (tmp_path / "results/run/logs/lane-a.log").write_text("epoch 5")
    (tmp_path / "results/run/resume").mkdir()
    (tmp_path / "results/run/resume/x.partial.pt").write_bytes(b"\0")
    lvae_book._expire_results_readers(app, config)
    assert _cached(cache_path) == {reader.name, other.name}

    curve.write_text(json.dumps({"points": [1, 2]}))   # a new learning-curve point
    lvae_book._expire_results_readers(app, config)
    assert _cached(cache_path) == {other.name}


def test_a_build_without_a_cache_starts_one_with_the_stamp(tmp_path):
    (tmp_path / "results").mkdir()
    cache_path = tmp_path / "_build/.jupyter_cache"
    lvae_book._expire_results_readers(SimpleNamespace(srcdir=str(tmp_path)),
                                      SimpleNamespace(nb_execution_cache_path=str(cache_path)))
    assert (cache_path / "results.sha256").read_text().strip() == \
        lvae_book._results_digest(tmp_path)
    assert _cached(cache_path) == set()   # and jupyter-cache opens that folder as a cache
