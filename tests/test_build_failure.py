"""A failed build names the chapter and the cell and says what to do
(scripts/explain_build_failure.py), on the logs of two real failed jupyter-book builds:
a cell past the per-cell time limit, and a cell that raises."""
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import explain_build_failure as explain  # noqa: E402

DATA = Path(__file__).parent / "data"


def _chapter(root: Path, last_cell: str) -> None:
    """The notebook the logged builds executed: a title, a section, two code cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A slow chapter\n\n## Training"),
                nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(last_cell)]
    (root / "book").mkdir()
    nbformat.write(nb, root / "book" / "03_slow.ipynb")


@pytest.mark.parametrize("log, source, why", [
    ("build_timeout.log", "import time\nfor seed in range(3):\n    time.sleep(2)",
     "CellTimeoutError: the cell ran past the build's per-cell limit of 3 s"),
    ("build_error.log", "import math\nvalue = math.sqrt(-1)",
     "the cell raised ValueError (math domain error)"),
])
def test_the_message_names_chapter_cell_and_remedies(tmp_path, log, source, why):
    _chapter(tmp_path, source)
    message = explain.explain((DATA / log).read_text(), root=tmp_path)
    assert "chapter 03_slow (A slow chapter) failed at code cell 2" in message
    assert f'("{source.splitlines()[0]}")' in message
    assert 'in the section "Training"' in message
    assert why in message
    for remedy in ("run the same command again", "LVAE_FAST=1 bash scripts/build_book.sh",
                   "close or pause them"):
        assert remedy in message


def test_a_log_without_a_failed_notebook_gets_no_message():
    assert explain.explain("WARNING: undefined label: 'fig-x'\nbuild finished with problems") \
        is None
