"""The instructor's kit: grading the solutions gives full marks, an untouched student
notebook zero on every question, and one wrong answer costs exactly that question's points;
a notebook that never finishes is stopped, kernel and all, and gets none.

Chapter 2 is the quickest to execute; the kit and the four gradings take about 70 s."""
import ast
import csv
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import course_kit  # noqa: E402

CHAPTER = "02_reparameterization"
QUESTIONS = ["ex-reparam-1", "ex-reparam-2", "ex-reparam-4"]
WRONG = "ex-reparam-4"
GAUSSIAN_SAMPLER = ("\ndef laplace_sample(u, mu, b):   # a Gaussian, not a Laplace\n"
                    "    return mu + b * torch.special.ndtri(u)\n")

pytest.importorskip("otter")


def test_every_checked_exercise_has_a_hidden_test_and_a_question():
    for path in sorted((ROOT / "book").glob("0[1-8]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        labels = [q["label"] for q in course_kit.questions(nb)]
        assert set(labels) <= set(course_kit.HIDDEN), path.name
        master = course_kit.master_notebook(nb)
        begins = [c.source for c in master.cells if c.cell_type == "raw"
                  and c.source.startswith("# BEGIN QUESTION")]
        assert len(begins) == len(labels), path.name
        # the chapter itself is untouched by building its master
        assert [q["label"] for q in course_kit.questions(nb)] == labels
    assert len(course_kit.HIDDEN) == 17


def test_grading_full_zero_one_wrong_and_one_that_never_ends(tmp_path):
    kit, subs = tmp_path / "kit", tmp_path / "submissions"
    assert course_kit.build(kit, [CHAPTER], verify=False) == 0
    assert {p.name for p in (kit / "student").iterdir()} == {f"{CHAPTER}.ipynb"}
    # the plain-Markdown copy for Colab and VS Code: the student notebook's cells and code,
    # no MyST left, no solution
    import plain_notebooks
    student = nbformat.read(kit / "student" / f"{CHAPTER}.ipynb", as_version=4)
    plain = nbformat.read(kit / "student-plain" / f"{CHAPTER}.ipynb", as_version=4)
    assert [(c.id, c.cell_type) for c in plain.cells] == \
        [(c.id, c.cell_type) for c in student.cells]
    assert [c.source for c in plain.cells if c.cell_type == "code"] == \
        [c.source for c in student.cells if c.cell_type == "code"]
    text = "\n".join(c.source for c in plain.cells if c.cell_type == "markdown")
    assert "{exercise}" in "\n".join(c.source for c in student.cells)
    assert not plain_notebooks.leftovers(text) and "**Exercise 2.1" in text
    assert "Solution" not in text
    subs.mkdir()
    solutions = nbformat.read(kit / "solutions" / f"{CHAPTER}.ipynb", as_version=4)
    nbformat.write(solutions, subs / "alice.ipynb")                      # every answer right
    (subs / "bob").mkdir()                                              # the untouched copy
    (subs / "bob" / f"{CHAPTER}.ipynb").write_bytes(
        (kit / "student" / f"{CHAPTER}.ipynb").read_bytes())
    q = next(q for q in course_kit.questions(solutions) if q["label"] == WRONG)
    solutions.cells[q["solution"]].source += GAUSSIAN_SAMPLER               # one wrong answer
    nbformat.write(solutions, subs / "carol.ipynb")
    pid_file = tmp_path / "kernel.pid"                   # every answer right, then a loop
    endless = nbformat.read(kit / "solutions" / f"{CHAPTER}.ipynb", as_version=4)
    endless.cells.append(nbformat.v4.new_code_cell(
        f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\nwhile True:\n"
        "    pass"))
    nbformat.write(endless, subs / "adam.ipynb")

    out = tmp_path / "grades.csv"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "course_kit.py"), "grade",
                           CHAPTER, str(subs), "--kit", str(kit), "--csv", str(out),
                           "--jobs", "2", "--timeout", "60"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"adam", "alice", "bob", "carol"}
    assert float(rows["adam"]["total"]) == 0
    assert rows["adam"]["error"] == "TimeoutError: not finished within 60 s"
    assert "adam: not graded (TimeoutError" in done.stderr
    assert all(rows[s]["error"] == "" for s in ("alice", "bob", "carol"))
    kernel = int(pid_file.read_text())               # the looping kernel was stopped too
    assert not psutil.pid_exists(kernel) or \
        psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE
    points = course_kit.POINTS
    for question in QUESTIONS:
        assert float(rows["alice"][question]) == points
        assert float(rows["bob"][question]) == 0
        assert float(rows["carol"][question]) == (0 if question == WRONG else points)
    assert float(rows["alice"]["total"]) == float(rows["alice"]["possible"]) == 3 * points
    assert float(rows["bob"]["total"]) == 0
    assert float(rows["carol"]["total"]) == 2 * points


GUIDE = ROOT / "book" / "instructors_guide.md"
READING = re.compile(r"(?:Reading time(?: for this preface)?:|\*\*Time:\*\*) (about \d+ minutes)")
RUNNING = re.compile(r"\*\*Running time:\*\* (about [\d.]+ \w+) cold on a 2-core laptop CPU "
                     r"\((about [\d.]+ \w+) while another program keeps both cores busy\); "
                     r"(about [\d.]+ \w+) with `LVAE_FAST=1`")


def _opening(chapter: str) -> str:
    nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    text = next(c.source for c in nb.cells if c.cell_type == "markdown"
                and re.search(r"^# ", c.source, re.M))
    return " ".join(text.split())


def test_the_guide_states_the_times_the_chapters_state():
    rows = re.findall(r"^\| \{doc\}`(\w+)` \| (.*) \|$", GUIDE.read_text(), re.M)
    timed = [(c, [x.strip() for x in cells.split("|")]) for c, cells in rows
             if "about" in cells]
    assert len(timed) == len(list((ROOT / "book").glob("*.ipynb")))   # every chapter
    for chapter, cells in timed:
        opening = _opening(chapter)
        stated = READING.findall(opening)[:1] + list(next(iter(RUNNING.findall(opening)), ()))
        assert [c for c in cells if c] == stated, chapter


def test_the_guide_lists_every_exercise_with_its_points():
    table = dict(re.findall(r"^\| \{numref\}`(ex-[\w-]+)` \| .* \| (\w+) \|$",
                            GUIDE.read_text(), re.M))
    for path in sorted((ROOT / "book").glob("0[1-8]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        checked = {q["label"] for q in course_kit.questions(nb)}
        for row in course_kit.exercise_rows(path.stem, nb):
            label = row["exercise"]
            assert table.get(label) == (str(course_kit.POINTS) if label in checked
                                        else "hand"), label


def test_each_exercise_cell_starts_its_answer_as_not_attempted():
    """The exercise cell sets the checked names to `...`, so that the check cell of an
    untouched notebook says "not attempted" instead of raising a NameError."""
    for path in sorted((ROOT / "book").glob("0[1-8]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for q in course_kit.questions(nb):
            exercise = nb.cells[q["exercise"]].source
            args = ast.parse(q["call"]).body[0].value.args
            answers = [a.id for a in args[:2 if q["label"] == "ex-04-2" else 1]]
            line = f"{', '.join(answers)} = {', '.join(['...'] * len(answers))}"
            assert line in exercise, (path.name, q["label"], line)
