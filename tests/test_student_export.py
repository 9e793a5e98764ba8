"""The student export removes every solution and keeps the exercises."""
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from export_student_notebooks import student_version  # noqa: E402


def _nb():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\n```{exercise}\n:label: ex-1\nCompute it.\n```\n\n"
                                      "```{solution} ex-1\n:class: dropdown\nThe answer is 42.\n```\n"),
        nbformat.v4.new_code_cell("x = ...", metadata={"tags": ["exercise"]}),
        nbformat.v4.new_code_cell("x = 42", metadata={"tags": ["solution"]}),
        nbformat.v4.new_markdown_cell("````{solution} ex-2\nNested:\n```python\ny = 1\n```\n````"),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1")]),
        nbformat.v4.new_markdown_cell("Before.\n```{solution-start} ex-3\n:class: dropdown\n```\nGated text."),
        nbformat.v4.new_code_cell("gated_code = 7"),
        nbformat.v4.new_markdown_cell("More gated.\n```{solution-end}\n```\nAfter."),
    ]
    return nb


def test_solutions_removed_exercises_kept():
    nb, removed = student_version(_nb())
    text = "\n".join(c.source for c in nb.cells)
    assert removed == 4
    assert "42" not in text and "Nested" not in text and "{solution}" not in text
    assert "Gated" not in text and "gated" not in text and "solution-" not in text
    assert "Before." in text and "After." in text
    assert "{exercise}" in text and "Compute it." in text
    assert "EXERCISE" in nb.cells[1].source and "x = ..." in nb.cells[1].source
    assert len(nb.cells) == 5 and nb.cells[2].outputs == []


def test_command_exports_every_chapter(tmp_path):
    chapters = sorted((ROOT / "book").glob("*.ipynb"))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "export_student_notebooks.py"),
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for chapter in chapters:
        exported = nbformat.read(tmp_path / chapter.name, as_version=4)
        for cell in exported.cells:
            assert "solution" not in cell.get("metadata", {}).get("tags", [])
            assert "{solution}" not in cell.source and "{solution-" not in cell.source
