"""The instructor's kit: student notebooks, autograders and solutions; and grading.

    python scripts/course_kit.py build [--out course_kit] [--verify] [CHAPTER ...]
    python scripts/course_kit.py grade CHAPTER SUBMISSIONS [--kit course_kit] [--csv FILE]
                                       [--jobs N] [--timeout SECONDS] [--full]
    python scripts/course_kit.py figures [--out course_kit] [--fast] [--dpi 240] [CHAPTER ...]

``build`` writes, for every chapter of ``book/``:

* ``student/<chapter>.ipynb``: the chapter without its solutions (the export of
  ``scripts/export_student_notebooks.py``); the exercise cells and their checks stay;
* ``student-plain/<chapter>.ipynb``: the same in the plain edition's Markdown
  (``scripts/plain_notebooks.py``), for students who open it in Colab or VS Code, which
  show MyST raw; its cells and code are the student notebook's, so it is graded alike;
* ``solutions/<chapter>.ipynb``: the chapter as the book has it, outputs cleared;
* ``autograder/<chapter>/``, for a chapter with checked exercises: the otter-grader master
  notebook generated from the chapter (``<chapter>-master.ipynb``), and what ``otter assign``
  makes of it: ``<chapter>.ipynb`` (the chapter with its solutions and tests) and the
  autograder zip;
* ``exercises.csv``: every exercise, its chapter, its points and what is checked.

Each checked exercise (a cell tagged ``check`` in the chapter, labelled ``<label>-check``) is
one autograded question worth ``POINTS`` points: a visible test, the chapter's own check
cell, and a hidden test, the same check plus a property of the answer (``HIDDEN``) that the
student's notebook does not show. So a wrong answer loses the question's points, all of them.
``--verify`` grades each chapter's solutions with its autograder and fails unless they get
full marks.

``grade`` runs every notebook under SUBMISSIONS (one file per student, named after the
student, or ``<student>/<chapter>.ipynb``) with the chapter's autograder, locally (``otter
run``'s grader, without Docker or a server), and writes one CSV row per student: the points
of each question, the total and the maximum. It grades in fast mode (``LVAE_FAST=1``, the
checks hold in both modes) unless ``--full``; ``--jobs N`` grades N notebooks at once. Each
notebook is graded in a process of its own, stopped with its kernel after ``--timeout``
seconds (default 1200): a notebook that loops forever, or one otter cannot read, gets no
points, an ``error`` column saying why, and a line on the terminal, and the others are
graded as usual.

``figures`` executes the chapters (default mode, so the figures are the book's; ``--fast``
for a quick look) with ``LVAE_FIGURE_DIR`` set, so that every numbered figure is saved at
slide resolution into ``figures/<chapter>/<name>.png`` (and ``.svg``), ``<name>`` being the
label a chapter refers to it by (``lv.plotting.show``).
"""
from __future__ import annotations

import argparse
import ast
import builtins
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from export_student_notebooks import student_version  # noqa: E402

POINTS = 2          # per checked exercise: 1 for the visible test, 1 for the hidden one

# The hidden test of each question: the visible check must pass, and this property of the
# answer must hold. Names are the chapter's variables; `checks`, `math`, `np` and `torch`
# are imported.
HIDDEN = {
    "ex-elbo-1": "checks.as_number(checks.lookup(gaps, 0.5)) "
                 "< checks.as_number(checks.lookup(gaps, 2.0))",
    "ex-elbo-2": "checks.as_number(elbo_split) <= checks.as_number(log_px)",
    "ex-elbo-4": "checks.as_number(gap_found) >= 0",
    "ex-reparam-1": 'checks.as_number(variances["baseline"]) '
                    '< checks.as_number(variances["no baseline"])',
    "ex-reparam-2": 'checks.as_number(checks.lookup(cos_variances, 8.0)["pathwise"]) '
                    '> checks.as_number(checks.lookup(cos_variances, 8.0)["score"])',
    "ex-reparam-4": "checks.laplace_sampler(laplace_sample, mu=-2.0, b=3.0)",
    "ex-vae-2": "tuple(torch.as_tensor(q_optimized[0]).shape) == (100, model.latent[0])",
    "ex-vae-3": "0 <= checks.as_number(n_above) <= model.latent[0]",
    "ex-vae-5": "checks.training_loop(train_vae, data.train_x, seed=1)",
    "ex-04-2": "all(math.isfinite(checks.as_number(kl)) for kl in kls)",
    "ex-04-3": "sum(checks.lookup(counts, 1e-3)) >= sum(checks.lookup(counts, 1e-1))",
    "ex-04-4": "np.linalg.eigvalsh(np.asarray(post, dtype=float)).min() > 0",
    "ex-05-2": "checks.as_number(var_ratio) > 0",
    "ex-05-4": "checks.as_number(fractions[0]) > checks.as_number(fractions[-1])",
    "ex-06-1": "any(tuple(map(float, p)) == (1.5, 0.5, -1.0, 2.0) for p in integrals)",
    "ex-07-1": "all(checks.as_number(v) > 0 for v in nll_by_k.values())",
    "ex-ss-2": "bool(torch.isfinite(torch.as_tensor(exact_grad)).all()) "
               "and float(torch.as_tensor(exact_grad).abs().sum()) > 0",
}
IMPORTED = {"checks", "math", "np", "torch"}
CONFIG = """# ASSIGNMENT CONFIG
init_cell: false
check_all_cell: false
export_cell: false
run_tests: false
generate: true
tests:
  ok_format: false
"""
TEST = '''""" # BEGIN TEST CONFIG
points: {points}
hidden: {hidden}
""" # END TEST CONFIG
def test_{kind}({names}):
    import math
    import numpy as np
    import torch
    from lvae_core import exercise_checks as checks
    feedback = {call}
    assert feedback, str(feedback)
{prop}'''
LABEL = re.compile(r"^:label: (\S+)", re.M)


def _names(*sources: str) -> list[str]:
    """The free variable names the expressions read (the chapter's variables they need)."""
    names = []
    for source in sources:
        tree = ast.parse(source)
        bound = {n.id for n in ast.walk(tree)
                 if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                    and node.id not in IMPORTED | bound | set(dir(builtins))
                    and node.id not in names):
                names.append(node.id)
    return names


def _check_call(cell) -> str:
    """The check cell's call, without its comment and import lines."""
    return "\n".join(line for line in cell.source.splitlines()
                     if line.strip() and not line.startswith(("#", "from ", "import ")))


def questions(nb) -> list[dict]:
    """Each checked exercise of a chapter: label, exercise, solution and check cell indices."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            label = cell.id.removesuffix("-check")
            tagged = lambda tag: max(j for j in range(i)
                                     if tag in nb.cells[j].metadata.get("tags", []))
            found.append({"label": label, "exercise": tagged("exercise"),
                          "solution": tagged("solution"), "check": i,
                          "call": _check_call(cell)})
    return found


def master_notebook(nb) -> nbformat.NotebookNode:
    """The otter-grader master notebook of a chapter: each checked exercise becomes a
    question whose solution is the chapter's solution and whose tests are its check."""
    nb = copy.deepcopy(nb)
    qs = {q["exercise"]: q for q in questions(nb)}
    moved = {q["solution"] for q in qs.values()}
    raw = nbformat.v4.new_raw_cell
    cells = [raw(CONFIG)]
    for i, cell in enumerate(nb.cells):
        if i in moved:
            continue
        q = qs.get(i)
        if q is None:
            cells.append(cell)
            continue
        label, call = q["label"], q["call"]
        if label not in HIDDEN:
            raise SystemExit(f"{label}: no hidden test in HIDDEN (scripts/course_kit.py)")
        solution = nb.cells[q["solution"]].source
        tests = [nbformat.v4.new_code_cell(TEST.format(
            points=1, hidden=str(hidden).lower(), kind="hidden" if hidden else "visible",
            names=", ".join(_names(call, HIDDEN[label])), call=call, label=label,
            prop=f'    assert {HIDDEN[label]}, "{label}: the answer lacks a property a right '
                 'answer has"\n' if hidden else "")) for hidden in (False, True)]
        cells += [raw(f"# BEGIN QUESTION\nname: {label}\npoints: {POINTS}"),
                  nbformat.v4.new_markdown_cell(f"**Exercise {label}** ({POINTS} points)"),
                  raw("# BEGIN SOLUTION"),
                  nbformat.v4.new_code_cell(f"{cell.source}\n# BEGIN SOLUTION\n{solution}\n"
                                            "# END SOLUTION", metadata=cell.metadata),
                  raw("# END SOLUTION"), raw("# BEGIN TESTS"), *tests, raw("# END TESTS"),
                  raw("# END QUESTION")]
    return _cleared(nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata))


def _cleared(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def exercise_rows(chapter: str, nb) -> list[dict]:
    checked = {q["label"]: q["call"] for q in questions(nb)}
    rows = []
    for cell in nb.cells:
        if cell.cell_type != "markdown" or "{exercise}" not in cell.source:
            continue
        for label in LABEL.findall(cell.source):
            if not label.startswith("ex-"):
                continue
            rows.append({"chapter": chapter, "exercise": label,
                         "points": POINTS if label in checked else 0,
                         "visible test": " ".join(checked.get(label, (
                             "by hand: a proof, a plot or an argument" if checked
                             else "no automatic check in this chapter")).split()),
                         "hidden test": HIDDEN.get(label, "") if label in checked else ""})
    return rows


def autograder_zip(kit: Path, chapter: str) -> Path:
    zips = sorted((kit / "autograder" / chapter).glob("*-autograder_*.zip"))
    if not zips:
        raise SystemExit(f"no autograder for {chapter} in {kit}/autograder: run "
                         "`bash scripts/course_kit.sh` first")
    return zips[-1]


def build(out: Path, chapters: list[str], verify: bool) -> int:
    book = ROOT / "book"
    paths = [book / f"{c}.ipynb" for c in chapters] if chapters else sorted(book.glob("*.ipynb"))
    import plain_notebooks
    plain_book = plain_notebooks.load_book(ROOT)
    for sub in ("student", "student-plain", "solutions", "autograder"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    rows = []
    for path in paths:
        chapter, nb = path.stem, nbformat.read(path, as_version=4)
        nbformat.write(_cleared(nbformat.read(path, as_version=4)), out / "solutions" / path.name)
        student, _ = student_version(nbformat.read(path, as_version=4))
        nbformat.write(student, out / "student" / path.name)
        nbformat.write(plain_notebooks.plain_notebook(
            plain_book, out / "student" / path.name, f"book/{chapter}"),
            out / "student-plain" / path.name)
        rows += exercise_rows(chapter, nb)
        if not questions(nb):
            print(f"{chapter}: student and solutions (no checked exercises)")
            continue
        target = out / "autograder" / chapter
        work = out / "autograder" / f".{chapter}"
        work.mkdir()
        master = work / f"{chapter}.ipynb"
        nbformat.write(master_notebook(nb), master)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "otter", "assign", "--no-run-tests",
                               "--no-pdfs", str(master), str(work / "dist")],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"otter assign failed on {chapter}")
        shutil.move(str(work / "dist" / "autograder"), target)
        shutil.move(str(master), target / f"{chapter}-master.ipynb")
        shutil.rmtree(work)
        print(f"{chapter}: {len(questions(nb))} autograded questions "
              f"({time.perf_counter() - t:.0f} s)")
        if verify:
            result = grade_one(str(out / "solutions" / path.name), str(autograder_zip(out,
                                                                                       chapter)))
            if result["total"] != result["possible"]:
                raise SystemExit(f"{chapter}: the solutions get {result['total']} of "
                                 f"{result['possible']} points: {result}")
            print(f"{chapter}: the solutions get full marks ({result['possible']:g})")
    with open(out / "exercises.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    graded = sum(r["points"] > 0 for r in rows)
    print(f"{len(rows)} exercises, {graded} autograded: {out}/exercises.csv; kit in {out}/")
    return 0


def grade_one(submission: str, ag_zip: str) -> dict:
    """Points per question of one notebook, with the total and the maximum."""
    import io
    from contextlib import redirect_stderr

    from otter.api import grade_submission
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import kernel_wait   # the book build's bounded wait for a new kernel's first reply
    kernel_wait.install()
    with redirect_stderr(io.StringIO()):
        results = grade_submission(submission, ag_zip, quiet=True)
    scores = {name: r.score for name, r in results.results.items()}
    return {**scores, "total": results.total, "possible": results.possible}


def _kill_tree(pid: int) -> None:
    """Kill a process and every process it started, children first."""
    import psutil
    try:
        parent = psutil.Process(pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)


def grade_in_process(submission: Path, ag_zip: Path, timeout: float) -> dict:
    """``grade_one`` in a new process, killed with its kernel after ``timeout`` seconds;
    raises TimeoutError then, RuntimeError when grading failed."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "grade-one", str(submission),
           str(ag_zip)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)        # the grader and the kernel it started (a session apart)
        proc.communicate()
        raise TimeoutError(f"not finished within {timeout:g} s") from None
    if proc.returncode != 0:
        last = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
        raise RuntimeError(last)
    return json.loads(out.strip().splitlines()[-1])


def _grade_env(full: bool, jobs: int) -> None:
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    if not full:
        os.environ["LVAE_FAST"] = "1"
    if jobs > 1:   # one thread per notebook: N notebooks share the cores
        os.environ.setdefault("LVAE_THREADS", "1")
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def submissions_of(folder: Path, chapter: str) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(folder).with_suffix("")
        student = rel.parent.as_posix() if rel.name == chapter and rel.parent.parts else \
            rel.as_posix()
        found[student] = path
    return found


def grade(chapter: str, folder: Path, kit: Path, out: Path | None, full: bool,
          jobs: int, timeout: float = 1200) -> int:
    _grade_env(full, jobs)
    ag_zip = autograder_zip(kit, chapter)
    subs = submissions_of(folder, chapter)
    if not subs:
        raise SystemExit(f"no .ipynb files under {folder}")
    out = out or Path(f"grades-{chapter}.csv")
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {s: pool.submit(grade_in_process, p, ag_zip, timeout)
                   for s, p in subs.items()}
        rows = []
        for student, future in futures.items():
            try:
                rows.append({"student": student, **future.result()})
            except Exception as err:   # unreadable, failed or too slow: no points
                print(f"{student}: not graded ({type(err).__name__}: {err})", file=sys.stderr)
                rows.append({"student": student, "total": 0, "possible": None,
                             "error": f"{type(err).__name__}: {err}"})
    fields = ["student"] + sorted({k for r in rows for k in r} - {"student", "total",
                                                                   "possible", "error"})
    if any("error" in r for r in rows):
        fields += ["total", "possible", "error"]
        rows = [{"error": "", **r} for r in rows]
    else:
        fields += ["total", "possible"]
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval=0)
        writer.writeheader()
        writer.writerows(rows)
    print(f"graded {len(rows)} notebooks of {chapter} in {time.perf_counter() - t:.0f} s: {out}")
    return 0


def figures(out: Path, chapters: list[str], fast: bool, dpi: float) -> int:
    import nbformat
    from nbclient import NotebookClient
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import kernel_wait   # the book build's bounded wait for a new kernel's first reply
    kernel_wait.install()
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    os.environ["LVAE_FIGURE_DPI"] = str(dpi)
    if fast:
        os.environ["LVAE_FAST"] = "1"
    names = chapters or [p.stem for p in sorted((ROOT / "book").glob("*.ipynb"))]
    for name in names:
        folder = out / "figures" / name
        os.environ["LVAE_FIGURE_DIR"] = str(folder)
        t = time.perf_counter()
        nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "book")}}).execute()
        saved = sorted(folder.glob("*.png")) if folder.is_dir() else []
        print(f"{name}: {len(saved)} figures in {folder} ({time.perf_counter() - t:.0f} s)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the kit")
    b.add_argument("chapters", nargs="*", help="chapter names, e.g. 01_elbo (default: all)")
    b.add_argument("--out", type=Path, default=ROOT / "course_kit")
    b.add_argument("--verify", action="store_true",
                   help="grade each chapter's solutions: they must get full marks")
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks into a CSV")
    g.add_argument("chapter", help="e.g. 01_elbo")
    g.add_argument("submissions", type=Path)
    g.add_argument("--kit", type=Path, default=ROOT / "course_kit")
    g.add_argument("--csv", type=Path, default=None, help="default: grades-CHAPTER.csv")
    g.add_argument("--full", action="store_true", help="run the notebooks in full mode")
    g.add_argument("--jobs", type=int, default=1, help="notebooks graded at once")
    g.add_argument("--timeout", type=float, default=1200,
                   help="seconds a notebook may take before it is stopped (no points)")
    one = sub.add_parser("grade-one")      # used by grade: one notebook, JSON on stdout
    one.add_argument("submission")
    one.add_argument("ag_zip")
    f = sub.add_parser("figures", help="the chapters' figures at slide resolution")
    f.add_argument("chapters", nargs="*", help="chapter names (default: all)")
    f.add_argument("--out", type=Path, default=ROOT / "course_kit")
    f.add_argument("--fast", action="store_true", help="run the chapters in fast mode")
    f.add_argument("--dpi", type=float, default=240)
    args = parser.parse_args(argv)
    if args.command == "grade-one":
        print(json.dumps(grade_one(args.submission, args.ag_zip)))
        return 0
    if args.command == "figures":
        return figures(args.out, args.chapters, args.fast, args.dpi)
    if args.command == "build":
        if args.verify:
            _grade_env(False, 1)
        return build(args.out, args.chapters, args.verify)
    if args.jobs < 1 or args.timeout <= 0:
        parser.error("--jobs and --timeout must be positive")
    return grade(args.chapter, args.submissions, args.kit, args.csv, args.full, args.jobs,
                 args.timeout)


if __name__ == "__main__":
    sys.exit(main())
