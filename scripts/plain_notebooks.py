"""Write the plain edition of the chapters: ``notebooks/<chapter>.ipynb``.

The chapters are written in MyST (citations, cross-references, numbered figures,
exercises and solutions), which the HTML book and JupyterLab with jupyterlab-myst
render. Google Colab and VS Code render CommonMark with ``$``-math only, so there every
role and directive would show as raw text. The plain edition has the same cells (the
same ids; code cells unchanged; outputs cleared; the ``tex-macros`` cell kept, since it
defines the macros for Colab and VS Code), with the markdown rewritten:

* ``{cite:t}`key``` -> "Sønderby et al. (2016)", ``{cite:p}`` and ``{cite}`` ->
  "(Sønderby et al., 2016)", several keys joined with "; " in the bibliography's order;
  the names and years are read from ``book/references.bib`` with pybtex, as
  sphinxcontrib-bibtex's author-year style forms them (one author: the last name; two:
  "A and B"; more: "A et al.");
* ``{numref}``, ``{eq}`` and ``{ref}`` -> "Figure 7.3", "(4.2)", "Exercise 1.2" or a
  section's title, numbered as the HTML book numbers them (see ``Book.number``);
  ``{doc}`` -> a link to the other notebook of the plain edition, with the title the
  HTML book shows;
* a chapter's title gets its number ("# 3. The variational autoencoder");
* figures' captions -> "**Figure N.M.** caption"; exercises -> a bold "Exercise N.M
  (Title)" line and the text; solutions -> a ``<details>`` block (a bold heading and a
  rule for solutions that span cells); admonitions -> a block quote with a bold title;
  equation labels -> ``\\tag{N.M}``; ``(label)=`` targets are dropped.

Whatever MyST is left that a plain renderer would show raw stops the script with the
chapter, the cell id and the syntax. Regenerate after editing a chapter:

    python scripts/plain_notebooks.py           # rewrite notebooks/
    python scripts/plain_notebooks.py --check   # exit 1 if notebooks/ is out of date

``tests/test_plain_notebooks.py`` fails when ``notebooks/`` and ``book/`` disagree.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from pybtex.database import parse_file
from pybtex.plugin import find_plugin

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"
MACRO_CELL = "tex-macros"
# sphinx-exercise's and Sphinx's formats for what _config.yml does not set
FORMATS = {"figure": "Figure %s", "table": "Table %s", "exercise": "Exercise %s",
           "equation": "(%s)"}

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[^}\s]+)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
ROLE = re.compile(r"\{(?P<role>[\w:.-]+)\}`(?P<text>[^`]*)`")
ROLE_OR_CODE = re.compile(ROLE.pattern + r"|(?P<ticks>`+)[\s\S]*?(?<!`)(?P=ticks)(?!`)")
TARGET = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
EQ_LABEL = re.compile(r"\$\$[ \t]*\((?P<label>[^()\s]+)\)[ \t]*$", re.M)
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)

# MyST that a plain Markdown renderer would show as text; checked after the rewrite
# (with code, math and HTML comments left out).
LEFTOVERS = {
    "role": re.compile(r"\{[\w:.-]+\}`"),
    "directive": re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*\{", re.M),
    "colon fence": re.compile(r"^\s*:{3,}", re.M),
    "target": re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M),
    "equation label": re.compile(r"\$\$[ \t]*\([^()\s]+\)"),
    "directive option": re.compile(r"^\s*:[\w-]+:(\s|$)", re.M),
    "substitution": re.compile(r"\{\{\s*[\w.]+\s*\}\}"),
    "comment": re.compile(r"^%", re.M),
    "block break": re.compile(r"^\+\+\+", re.M),
    "definition list": re.compile(r"^: ", re.M),
}


class PlainError(ValueError):
    """MyST that the plain edition cannot express; says where."""


# ---------------------------------------------------------------------------- the book


@dataclass
class Target:
    kind: str                  # figure, table, equation, exercise, section
    doc: str                   # docname, e.g. "book/03_vae"
    number: str | None = None  # "3.2", "A.1", "2"; None for a section
    title: str | None = None   # a section's heading, an exercise's title


@dataclass
class Book:
    """What the chapters refer to: titles, numbers and the bibliography."""

    docs: list[str]                                  # docnames in reading order
    chapter: dict[str, int | None]                   # docname -> chapter number
    titles: dict[str, str]                           # docname -> its title
    targets: dict[str, Target] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)
    citation_order: list[str] = field(default_factory=list)   # the bibliography's
    repository: str = ""                             # https://github.com/org/repo/blob/br
    letters: dict[str, str] = field(default_factory=dict)    # appendix docname -> letter

    def number(self, kind: str, label: str) -> str:
        """"Figure 3.2", "(4.1)" or "Exercise 1.2", as the HTML book prints it."""
        return self.formats[kind] % self.targets[label].number


def toc_documents(root: Path = ROOT) -> tuple[list[str], dict[str, int | None]]:
    """The documents of ``_toc.yml`` in reading order, and each one's chapter number.

    Numbered parts number their chapters 1, 2, ... across parts (jupyter-book's
    ``use_multitoc_numbering``); the root and unnumbered parts have none."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf8"))
    docs, chapter, n = [toc["root"]], {toc["root"]: None}, 0
    for part in toc.get("parts", []):
        for entry in part.get("chapters", []):
            if "file" not in entry or "sections" in entry:
                raise PlainError("_toc.yml: only plain 'file:' chapters are "
                                 f"supported, not {entry}")
            name = str(Path(entry["file"]).with_suffix(""))
            docs.append(name)
            if part.get("numbered"):
                n += 1
                chapter[name] = n
            else:
                chapter[name] = None
    return docs, chapter


def doc_path(docname: str, root: Path = ROOT) -> Path:
    for suffix in (".ipynb", ".md"):
        if (root / docname).with_suffix(suffix).exists():
            return (root / docname).with_suffix(suffix)
    raise PlainError(f"{docname}: listed in _toc.yml but neither .ipynb nor .md exists")


def markdown_cells(docname: str, root: Path = ROOT) -> list[tuple[str, str]]:
    """``(cell id, markdown)`` of a document; a .md file is one cell."""
    path = doc_path(docname, root)
    if path.suffix == ".md":
        return [("", path.read_text(encoding="utf8"))]
    nb = nbformat.read(path, as_version=4)
    return [(c.get("id", ""), c.source) for c in nb.cells
            if c.cell_type == "markdown" and c.get("id") != MACRO_CELL]


def _blocks(text: str):
    """The directives of a cell's markdown, in order (code blocks skipped): yields
    ``(name, argument, options, body, first line, last line)``."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i].strip()) if lines[i].lstrip() == lines[i] else None
        if not m:
            i += 1
            continue
        end = _closing(lines, i, m.group("fence"))
        d = DIRECTIVE.match(m.group("info").strip())
        if d:
            options, body = _options(lines[i + 1:end])
            yield d.group("name"), d.group("arg").strip(), options, body, i, end
        i = end + 1


def _closing(lines: list[str], start: int, fence: str) -> int:
    for j in range(start + 1, len(lines)):
        s = lines[j].strip()
        if s and set(s) == {fence[0]} and len(s) >= len(fence):
            return j
    raise PlainError(f"unclosed fence {fence} opened at line {start + 1}")


def _options(lines: list[str]) -> tuple[dict[str, str], str]:
    options, k = {}, 0
    while k < len(lines) and OPTION.match(lines[k]):
        m = OPTION.match(lines[k])
        options[m.group("key")] = m.group("value").strip()
        k += 1
    return options, "\n".join(lines[k:]).strip("\n")


def _collect(book: Book, docname: str, counters: dict, root: Path) -> None:
    """Titles, section targets and the numbered items of one document, in order."""
    # a chapter's items are N.1, N.2, ...; an appendix's A.1, A.2, ... (the local
    # extension restarts each appendix's count under its letter)
    secnum = (book.chapter[docname],) if book.chapter[docname] else \
        ((book.letters[docname],) if docname in book.letters else ())

    def count(kind: str, label: str | None, title: str | None = None) -> None:
        key = (kind, secnum)
        counters[key] = counters.get(key, 0) + 1
        number = ".".join(str(x) for x in (*secnum, counters[key]))
        if label:
            if label in book.targets:
                raise PlainError(f"{docname}: label {label!r} is defined twice")
            book.targets[label] = Target(kind, docname, number, title)

    for cell_id, text in markdown_cells(docname, root):
        lines = text.split("\n")
        for i, line in enumerate(lines):
            h = HEADING.match(line)
            if h and len(h.group("hashes")) == 1 and docname not in book.titles:
                book.titles[docname] = h.group("title")
            t = TARGET.match(line)
            if t:
                nxt = next((x for x in lines[i + 1:] if x.strip()), "")
                head = HEADING.match(nxt)
                if not head:
                    raise PlainError(f"{docname}, cell {cell_id}: target {line!r} is "
                                     "not followed by a heading")
                book.targets[t.group("label")] = Target(
                    "section", docname, None, head.group("title"))
        # numbered items in the order of the text: fenced directives and labelled $$
        items = []
        for name, arg, options, body, start, _end in _blocks(text):
            items.append((start, name, arg, options, body))
        for m in EQ_LABEL.finditer(text):
            items.append((text[:m.start()].count("\n"), "$$", "", {"label": m["label"]},
                          ""))
        for _line, name, arg, options, body in sorted(items, key=lambda x: x[0]):
            if name in ("figure", "glue:figure") and not body.strip():
                continue      # an uncaptioned figure has no number
            if name in ("figure", "glue:figure"):
                count("figure", options.get("name"))
            elif name in ("table", "list-table") and arg:
                count("table", options.get("name"))
            elif name in ("math", "$$") and options.get("label"):
                count("equation", options.get("label"))
            elif name == "exercise" and "nonumber" not in options:
                count("exercise", options.get("label"), arg or None)
        # equations inside directives were found by EQ_LABEL already; a directive nested
        # in another is not walked (none in the book; the leftover check would catch it)


def load_book(root: Path = ROOT) -> Book:
    docs, chapter = toc_documents(root)
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))
    book = Book(docs, chapter, {})
    book.formats = dict(FORMATS)
    sphinx = config.get("sphinx", {}).get("config", {})
    book.formats.update(sphinx.get("numfig_format", {}))
    sys.path.insert(0, str(root / "book" / "_ext"))
    try:
        from lvae_book import APPENDIX_LETTERS
    finally:
        sys.path.pop(0)
    book.letters = sphinx.get("lvae_appendix_letters", APPENDIX_LETTERS)
    counters: dict = {}
    for docname in docs:
        _collect(book, docname, counters, root)
    style = sphinx.get("bibtex_default_style", "alpha")
    for bib in config.get("bibtex_bibfiles", []):
        book.citations.update(citation_labels(root / bib))
        book.citation_order += bibliography_order(root / bib, style)
    repo = config.get("repository", {})
    book.repository = (f"{repo.get('url', '').rstrip('/')}/blob/"
                       f"{repo.get('branch', 'main')}/")
    return book


# ---------------------------------------------------------------------------- citations


def _text(rich) -> str:
    """Plain text of a pybtex rich text (LaTeX accents and braces decoded)."""
    return str(rich.render_as("text"))


def person_name(person) -> str:
    """The name an author-year citation prints: the "von" part and the last name."""
    parts = [_text(p) for p in person.rich_prelast_names + person.rich_last_names]
    return " ".join(parts)


def citation_labels(bibfile: Path) -> dict[str, tuple[str, str]]:
    """``{key: (authors, year)}``, e.g. ``("Sønderby et al.", "2016")``."""
    labels = {}
    for key, entry in parse_file(str(bibfile), bib_format="bibtex").entries.items():
        persons = entry.persons.get("author") or entry.persons.get("editor")
        if persons:
            names = [person_name(p) for p in persons]
            if len(names) == 1:
                who = names[0]
            elif len(names) == 2:
                who = f"{names[0]} and {names[1]}"
            else:
                who = f"{names[0]} et al."
        else:
            who = _text(entry.rich_fields["title"]) if "title" in entry.fields else key
        labels[key] = (who, entry.fields.get("year", "n.d."))
    return labels


def bibliography_order(bibfile: Path, style: str) -> list[str]:
    """The keys in the order of the bibliography, which pybtex's formatting style
    (``bibtex_default_style``) sorts; a role with several keys lists them in it."""
    entries = parse_file(str(bibfile), bib_format="bibtex").entries
    formatter = find_plugin("pybtex.style.formatting", style)()
    return [entry.key for entry in formatter.sort(entries.values())]


def cite(book: Book, role: str, keys: str) -> str:
    wanted = [k.strip() for k in keys.split(",")]
    for key in wanted:
        if key not in book.citations:
            raise PlainError(f"unknown citation key {key!r}")
    found = [book.citations[k] for k in book.citation_order if k in wanted]
    if role == "cite:t":
        return ", ".join(f"{who} ({year})" for who, year in found[:-1]) + (
            " and " if len(found) > 1 else "") + "{} ({})".format(*found[-1])
    return "(" + "; ".join(f"{who}, {year}" for who, year in found) + ")"


# ---------------------------------------------------------------------------- rewriting


def notebook_link(book: Book, docname: str) -> str:
    """Where a plain notebook links another document: the plain edition of a chapter
    notebook beside it, otherwise the document's source in the repository."""
    path = doc_path(docname)
    if path.suffix == ".ipynb":
        return f"{path.stem}.ipynb"
    if docname.endswith("bibliography"):
        return book.repository + "book/references.bib"
    return book.repository + path.relative_to(ROOT).as_posix()


def rewrite_role(book: Book, docname: str, role: str, text: str) -> str:
    explicit = EXPLICIT.match(text)
    label = explicit.group("target") if explicit else text
    shown = explicit.group("text") if explicit else None
    if role in ("cite", "cite:p", "cite:t"):
        return cite(book, role, text)
    if role == "doc":
        target = str((Path(docname).parent / label))
        if target not in book.titles:
            raise PlainError(f"{{doc}} to {label!r}, which is not in _toc.yml")
        return f"[{shown or book.titles[target]}]({notebook_link(book, target)})"
    if role in ("numref", "eq", "ref"):
        if label not in book.targets:
            raise PlainError(f"{{{role}}} to unknown label {label!r}")
        t = book.targets[label]
        if role == "eq":
            if t.kind != "equation":
                raise PlainError(f"{{eq}} to {label!r}, which is a {t.kind}")
            return book.number("equation", label)
        if t.kind == "section":
            if role == "numref":
                raise PlainError(f"{{numref}} to section {label!r}: sections are not "
                                 "numbered in the plain edition; use {ref}")
            return shown or t.title
        if shown:
            return shown.replace("%s", t.number) if role == "numref" else shown
        return book.number(t.kind, label)
    raise PlainError(f"role {{{role}}} has no plain form")


def rewrite_inline(book: Book, docname: str, text: str) -> str:
    """Roles and equation labels; code spans are left alone."""

    def role(m: re.Match) -> str:
        if m.group("role") is None:
            return m.group(0)                 # a code span
        return rewrite_role(book, docname, m.group("role"), m.group("text"))

    text = ROLE_OR_CODE.sub(role, text)

    def tag(m: re.Match) -> str:
        return f"\\tag{{{book.targets[m.group('label')].number}}}\n$$"

    return EQ_LABEL.sub(tag, text)


def quote(text: str) -> str:
    if "$$" in text or re.search(r"\$[^$\n]*\n[^$]*\$", text):
        raise PlainError("an admonition with display math or a formula across lines "
                         "cannot be quoted")
    return "\n".join("> " + line if line.strip() else ">" for line in text.split("\n"))


@dataclass
class State:
    gated: str | None = None      # label of a solution that spans cells


def rewrite_directive(book: Book, docname: str, state: State, name: str, arg: str,
                      options: dict[str, str], body: str) -> str:
    body = rewrite_markdown(book, docname, state, body)

    def only(*allowed: str) -> None:
        extra = set(options) - set(allowed)
        if extra:
            raise PlainError(f"{{{name}}} option(s) {sorted(extra)} have no plain form")

    if name in ("figure", "glue:figure"):
        only("name")
        if "name" not in options or not body.strip():
            raise PlainError(f"{{{name}}} without :name: or caption is not numbered")
        if name == "figure":
            raise PlainError("{figure} (an image file) has no plain form yet")
        return f"**{book.number('figure', options['name'])}.** {body}"
    if name == "math":
        only("label")
        label = options.get("label")
        tag = f"\n\\tag{{{book.targets[label].number}}}" if label else ""
        return f"$$\n{body}{tag}\n$$"
    if name == "exercise":
        only("label")
        label = options.get("label")
        if not label:
            raise PlainError("{exercise} without :label:")
        title = f" ({rewrite_inline(book, docname, arg)})" if arg else ""
        return f"**{book.number('exercise', label)}{title}**\n\n{body}"
    if name in ("solution", "solution-start"):
        only("class", "label")
        if arg not in book.targets:
            raise PlainError(f"{{{name}}} of unknown exercise {arg!r}")
        heading = "Solution to " + book.number("exercise", arg)
        if name == "solution-start":
            if body.strip():
                raise PlainError("{solution-start} with text inside the directive")
            state.gated = arg
            return f"**{heading}**"
        if options.get("class") == "dropdown":
            return f"<details>\n<summary>{heading}</summary>\n\n{body}\n\n</details>"
        return f"**{heading}**\n\n{body}"
    if name == "solution-end":
        only()
        if state.gated is None:
            raise PlainError("{solution-end} without {solution-start}")
        state.gated = None
        return "---"
    if name == "admonition":
        only()
        if not arg:
            raise PlainError("{admonition} without a title")
        return quote(f"**{rewrite_inline(book, docname, arg)}**\n\n{body}")
    raise PlainError(f"directive {{{name}}} has no plain form")


def rewrite_markdown(book: Book, docname: str, state: State, text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.append(rewrite_inline(book, docname, "\n".join(prose)))
            prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if TARGET.match(line):
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            continue
        m = FENCE.match(line) if line.lstrip() == line else None
        if not m:
            prose.append(line)
            i += 1
            continue
        flush()
        end = _closing(lines, i, m.group("fence"))
        d = DIRECTIVE.match(m.group("info").strip())
        if d:
            options, body = _options(lines[i + 1:end])
            block = rewrite_directive(book, docname, state, d.group("name"),
                                      d.group("arg").strip(), options, body)
            # a block of its own: a directive may touch a paragraph, its plain form
            # would join it (or, as "---", turn it into a heading)
            if out and out[-1].split("\n")[-1].strip():
                block = "\n" + block
            if end + 1 < len(lines) and lines[end + 1].strip():
                block += "\n"
            out.append(block)
        else:
            out.append("\n".join(lines[i:end + 1]))     # a code block, as it is
        i = end + 1
    flush()
    return "\n".join(out)


# ---------------------------------------------------------------------------- checking


def visible_text(markdown: str) -> str:
    """What a renderer shows as text: without code blocks, code spans, math and
    HTML comments."""
    text = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)
    lines, kept, i = text.split("\n"), [], 0
    while i < len(lines):
        m = FENCE.match(lines[i].strip())
        if m and m.group("fence")[0] != ":" and "{" not in m.group("info"):
            try:
                i = _closing(lines, i, m.group("fence")) + 1
                continue
            except PlainError:
                pass
        kept.append(lines[i])
        i += 1
    text = "\n".join(kept)
    text = re.sub(r"(`+)(?!`).+?(?<!`)\1(?!`)", "CODE", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", "MATH", text, flags=re.S)
    return re.sub(r"(?<!\\)\$[^$]+?(?<!\\)\$", "MATH", text, flags=re.S)


def leftovers(markdown: str) -> list[str]:
    """The kinds of MyST syntax left in a markdown cell, with their text."""
    text = visible_text(markdown)
    found = []
    for kind, pattern in LEFTOVERS.items():
        for m in pattern.finditer(text):
            line = text[text.rfind("\n", 0, m.start()) + 1:].split("\n")[0]
            found.append(f"{kind}: {line.strip()!r}")
    return found


# ---------------------------------------------------------------------------- notebooks


def chapter_notebooks(book: Book, root: Path = ROOT) -> list[Path]:
    paths = [doc_path(d, root) for d in book.docs]
    return [p for p in paths if p.suffix == ".ipynb"]


def plain_notebook(book: Book, path: Path, docname: str | None = None
                   ) -> nbformat.NotebookNode:
    """The plain edition of one chapter (``docname`` as in ``_toc.yml``, by default
    the notebook's path in the repository)."""
    nb = nbformat.read(path, as_version=4)
    plain = copy.deepcopy(nb)
    if docname is None:
        docname = path.relative_to(ROOT).with_suffix("").as_posix()
    state = State()
    number = book.chapter.get(docname)      # the HTML book shows it before the title
    titled = number is None
    for cell in plain.cells:
        where = f"{docname}, cell {cell.get('id')}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            continue
        if cell.cell_type != "markdown" or cell.get("id") == MACRO_CELL:
            continue
        try:
            cell.source = rewrite_markdown(book, docname, state, cell.source)
            if not titled and re.search(r"^# ", cell.source, re.M):
                cell.source = re.sub(r"^# ", f"# {number}. ", cell.source, count=1,
                                     flags=re.M)
                titled = True
        except PlainError as err:
            raise PlainError(f"{where}: {err}") from None
        left = leftovers(cell.source)
        if left:
            raise PlainError(f"{where}: MyST left after the rewrite: {'; '.join(left)}")
    if state.gated is not None:
        raise PlainError(f"{docname}: solution of {state.gated!r} has "
                         "no {solution-end}")
    return plain


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if notebooks/ differs from what would be written")
    args = parser.parse_args(argv)
    try:
        book = load_book()
        plain = {p.name: render(plain_notebook(book, p))
                 for p in chapter_notebooks(book)}
    except PlainError as err:
        print(f"plain_notebooks.py: {err}", file=sys.stderr)
        return 2
    stale = sorted(p.name for p in OUT.glob("*.ipynb") if p.name not in plain)
    changed = [name for name, text in plain.items()
               if not (OUT / name).exists()
               or (OUT / name).read_text(encoding="utf8") != text]
    if args.check:
        for name in changed + stale:
            print(f"notebooks/{name} is out of date: "
                  "run python scripts/plain_notebooks.py")
        return 1 if changed or stale else 0
    OUT.mkdir(exist_ok=True)
    for name in changed:
        (OUT / name).write_text(plain[name], encoding="utf8")
    for name in stale:
        (OUT / name).unlink()
    print(f"notebooks/: {len(changed)} written, {len(stale)} removed, "
          f"{len(plain) - len(changed)} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
