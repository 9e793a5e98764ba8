"""The plain edition (``notebooks/``): in sync with ``book/``, free of MyST, with the
book's code, citations and numbers, and readable in a renderer that knows no MyST.

The numbers the HTML book prints were read from a build of the book (``_build/html``) and
are written out below; when a build is there, every chapter is compared with it too.
"""
import functools
import html
import http.server
import re
import socketserver
import sys
import threading
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import plain_notebooks as pn  # noqa: E402
from chromium import in_browser_thread  # noqa: E402

PLAIN = ROOT / "notebooks"
HTML_DIR = ROOT / "_build" / "html" / "book"
MATHJAX = ROOT / "book" / "_static" / "vendor" / "mathjax" / "es5" / "tex-chtml.js"

# MyST a plain Markdown renderer would show as text (written independently of the
# script's own list).
MYST = [
    ("role", r"\{(cite|cite:[a-z]+|numref|eq|ref|doc|term|math|download|glue)[^}]*\}`"),
    ("any role", r"\{[a-z][\w:.-]*\}`[^`]+`"),
    ("directive", r"^[ \t]*(```+|~~~+|:::+)[ \t]*\{"),
    ("target", r"^\([\w:.-]+\)=[ \t]*$"),
    ("equation label", r"\$\$[ \t]*\([\w:.-]+\)[ \t]*$"),
    ("option", r"^:(name|label|class|nonumber|hidden|width|align):"),
]


@functools.lru_cache(maxsize=1)
def _book():
    return pn.load_book()


def _chapters():
    return [p.stem for p in pn.chapter_notebooks(_book())]


def _read(path):
    return nbformat.read(path, as_version=4)


def _markdown(chapter):
    return "\n\n".join(c.source for c in _read(PLAIN / f"{chapter}.ipynb").cells
                       if c.cell_type == "markdown")


def _without_code(text):
    """Markdown without fenced code blocks and code spans."""
    text = re.sub(r"^```[a-z]*\n.*?^```$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]+`", "", text)


# --------------------------------------------------------------------------- in sync


def test_notebooks_are_in_sync_with_the_chapters():
    """What the script writes now is exactly what is committed: a chapter edited
    without re-running ``python scripts/plain_notebooks.py`` fails here."""
    book = _book()
    expected = {p.name: pn.render(pn.plain_notebook(book, p))
                for p in pn.chapter_notebooks(book)}
    committed = {p.name: p.read_text(encoding="utf8") for p in PLAIN.glob("*.ipynb")}
    assert sorted(committed) == sorted(expected), "notebooks/ holds other chapters"
    stale = [name for name in expected if committed[name] != expected[name]]
    assert not stale, (f"notebooks/ is out of date for {stale}: run "
                       "python scripts/plain_notebooks.py")
    assert pn.main(["--check"]) == 0


def test_every_chapter_of_the_toc_has_a_plain_edition():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf8")
    listed = {Path(f).name for f in re.findall(r"file:\s*(\S+)", toc)
              if (ROOT / f).with_suffix(".ipynb").exists()}
    assert listed and {p.stem for p in PLAIN.glob("*.ipynb")} == listed
    assert (PLAIN / "README.md").read_text(encoding="utf8").count("generated") >= 1


def test_cells_ids_and_code_are_the_books():
    for chapter in _chapters():
        book_nb, plain_nb = _read(ROOT / "book" / f"{chapter}.ipynb"), _read(
            PLAIN / f"{chapter}.ipynb")
        assert [(c.id, c.cell_type) for c in book_nb.cells] == [
            (c.id, c.cell_type) for c in plain_nb.cells], chapter
        for b, p in zip(book_nb.cells, plain_nb.cells):
            if b.cell_type == "code":
                assert p.source == b.source, (chapter, b.id)
                assert p.outputs == [] and p.execution_count is None, (chapter, b.id)
            elif b.id == "tex-macros":
                assert p.source == b.source, chapter


# --------------------------------------------------------------------------- no MyST


@pytest.mark.parametrize("chapter", _chapters())
def test_no_myst_is_left(chapter):
    book_text = "\n".join(c.source for c in _read(ROOT / "book" / f"{chapter}.ipynb").cells
                          if c.cell_type == "markdown")
    for cell in _read(PLAIN / f"{chapter}.ipynb").cells:
        if cell.cell_type != "markdown":
            continue
        text = _without_code(re.sub(r"<!--.*?-->", "", cell.source, flags=re.S))
        for kind, pattern in MYST:
            found = re.search(pattern, text, re.M)
            assert not found, f"{chapter}, cell {cell.id}: {kind} {found.group(0)!r}"
    # and the chapter had MyST to remove (the patterns can match)
    if chapter != "00_preface":
        assert any(re.search(p, _without_code(book_text), re.M) for _, p in MYST[:3])


def test_rewritten_blocks_stand_apart_from_paragraphs():
    """A directive may touch a paragraph in MyST; its plain form must not: a "---" right
    under a line of text is a heading in Markdown, a bold line would join the paragraph."""
    for chapter in _chapters():
        for cell in _read(PLAIN / f"{chapter}.ipynb").cells:
            if cell.cell_type != "markdown" or cell.id == "tex-macros":
                continue
            lines = cell.source.split("\n")
            for before, line in zip(lines, lines[1:]):
                starts = re.match(r"---$|\*\*(Figure|Exercise|Solution to) |<details>",
                                  line)
                assert not (starts and before.strip()), (chapter, cell.id, before, line)


def test_the_script_refuses_myst_it_cannot_express(tmp_path):
    """An unknown role or directive stops the script with the chapter and the cell."""
    for source, syntax in [("See {term}`ELBO`.", "{term}"),
                           ("```{margin}\nA note.\n```", "{margin}"),
                           (":::{note}\nColon fence.\n:::", "{note}"),
                           ("Term\n: a definition", "definition list")]:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(source, id="bad-cell")]
        path = tmp_path / "99_bad.ipynb"
        nbformat.write(nb, path)
        with pytest.raises(pn.PlainError) as err:
            pn.plain_notebook(_book(), path, "book/99_bad")
        assert "book/99_bad" in str(err.value) and "bad-cell" in str(err.value)
        assert syntax in str(err.value), str(err.value)


# --------------------------------------------------------------------------- citations


def test_citations_read_as_the_bib_entries_give_them():
    labels = pn.citation_labels(ROOT / "book" / "references.bib")
    # written out by hand from book/references.bib
    assert labels["sonderby2016ladder"] == ("Sønderby et al.", "2016")
    assert labels["kingma2014auto"] == ("Kingma and Welling", "2014")
    assert labels["child2021very"] == ("Child", "2021")
    assert labels["loaiza2019continuous"] == ("Loaiza-Ganem and Cunningham", "2019")
    assert labels["lecun1998gradient"] == ("LeCun et al.", "1998")
    elbo = _markdown("01_elbo")
    assert ("is a neural network (Kingma and Welling, 2014; Rezende et al., 2014); in "
            "the Ladder VAE") in elbo
    assert "a whole stack of layers $\\mathbf{z}_1, \\dots, \\mathbf{z}_L$ " \
           "(Sønderby et al., 2016)." in elbo
    assert "Cremer et al. (2018) call such a gap" in elbo     # {cite:t}
    assert "- Sønderby et al. (2016): the precision-weighted merge" in _markdown(
        "appendix_gaussians")
    # several keys in the bibliography's order, as the HTML book lists them (the
    # chapter writes uria2013rnade first)
    assert "**dequantization** (Theis et al., 2016; Uria et al., 2013)" in _markdown(
        "appendix_practice")


def test_latex_in_names_is_decoded(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{a, author = {Maal{\\o}e, Lars and S{\\o}nderby, Casper}, year = {2016},"
        " title = {T}}\n"
        "@article{b, author = {van den Oord, A{\\\"a}ron and Li, Mu and Ng, A}, "
        "year = {2017}, title = {T}}\n"
        "@book{c, editor = {Bishop, Christopher M.}, title = {T}}\n", encoding="utf8")
    labels = pn.citation_labels(bib)
    assert labels == {"a": ("Maaløe and Sønderby", "2016"),
                      "b": ("van den Oord et al.", "2017"),
                      "c": ("Bishop", "n.d.")}


# --------------------------------------------------------------------------- numbers

# Read from the HTML book (_build/html/book/*.html, a build of 7 December 2026): the
# figures, exercises and equation numbers of each page in order. Chapter 1 has all
# three; each appendix counts from 1 under its letter (the local extension renumbers
# them: in an unnumbered part Sphinx's own count runs on from page to page).
HAND_CHECKED = {
    "01_elbo": (["1.1", "1.2"], ["1.1", "1.2", "1.3", "1.4"],
                ["1.1", "1.2", "1.3", "1.4", "1.5"]),
    "03_vae": ([f"3.{i}" for i in range(1, 10)], [f"3.{i}" for i in range(1, 6)],
               [f"3.{i}" for i in range(1, 6)]),
    "08_semisupervised": (["8.1", "8.2", "8.3"], [f"8.{i}" for i in range(1, 5)],
                          [f"8.{i}" for i in range(1, 8)]),
    "appendix_gaussians": (["A.1"], ["A.1", "A.2"], ["A.1", "A.2"]),
    "appendix_practice": (["B.1", "B.2"], ["B.1", "B.2"], ["B.1"]),
}


def _plain_numbers(chapter):
    md = _markdown(chapter)
    return (re.findall(r"^\*\*Figure ([0-9A-Z.]+)\.\*\*", md, re.M),
            re.findall(r"^\*\*Exercise ([0-9A-Z.]+)[ *]", md, re.M),
            re.findall(r"\\tag\{([0-9A-Z.]+)\}", md))


def _html_numbers(page):
    return ([x.strip() for x in re.findall(
                r'<span class="caption-number">Figure ([^<]*)</span>', page)],
            [x.strip() for x in re.findall(
                r'<span class="caption-number">Exercise ([^<]*)</span>', page)],
            re.findall(r'<span class="eqno">\(([^)<]*)\)', page))


def test_numbers_are_the_html_books():
    for chapter, numbers in HAND_CHECKED.items():
        assert _plain_numbers(chapter) == numbers, chapter
    elbo = _markdown("01_elbo")
    assert "small enough that (1.1) has a closed form" in elbo
    assert "{numref}" not in elbo and "Figure 1.1 draws it" in elbo
    assert "the subject of Exercise 1.1." in elbo
    assert "**Exercise 3.2 (The amortization gap)**" in _markdown("03_vae")
    ladder = _markdown("06_ladder_vae")
    assert "Figure 7.3" in ladder and "Exercise 4.1" in ladder
    assert "After full-length training" in ladder   # a {ref} to a section: its title


def test_numbers_and_references_match_a_built_book():
    """Every page against ``_build/html`` when the book has been built (the test
    script builds it before the tests); without a build, the chapters of
    ``HAND_CHECKED`` against the numbers read from one."""
    pages = sorted(HTML_DIR.glob("*.html")) if HTML_DIR.is_dir() else []
    chapters = [c for c in _chapters() if (HTML_DIR / f"{c}.html").exists()]
    if not pages:
        chapters = list(HAND_CHECKED)
    for chapter in chapters:
        if not pages:
            assert _plain_numbers(chapter) == HAND_CHECKED[chapter]
            continue
        page = (HTML_DIR / f"{chapter}.html").read_text(encoding="utf8")
        assert _plain_numbers(chapter) == _html_numbers(page), chapter
        md = _markdown(chapter)
        refs = re.findall(r'<span class="std std-(?:ref|numref)">(.*?)</span></a>', page)
        refs += re.findall(r'href="[^"]*#equation-[^"]*">(\([^)]*\))</a>', page)
        for ref in refs:
            text = html.unescape(re.sub(r"<[^>]+>", "", ref))
            assert text in md, f"{chapter}: {text!r} is not in the plain edition"
        flat = re.sub(r"\s+", " ", md)
        for cited in re.findall(r'<span class="bibtex-citation"[^>]*>(.*?)</span>', page,
                                re.S):
            text = html.unescape(re.sub(r"<[^>]+>", "", cited))
            if text.startswith("["):    # [Kingma and Welling, 2014, Rezende et al., 2014]
                parts = text[1:-1].split(", ")
                text = "(" + "; ".join(", ".join(parts[i:i + 2])
                                       for i in range(0, len(parts), 2)) + ")"
            else:                       # Cremer et al. [2018]
                text = re.sub(r" \[(\w+)\]", r" (\1)", text)
            assert text in flat, f"{chapter}: citation {text!r} is not in the plain edition"


def test_links_between_chapters():
    vae = _markdown("03_vae")
    assert "[Latent variables, Jensen's inequality and the ELBO](01_elbo.ipynb)" in vae
    for chapter in _chapters():
        for target in re.findall(r"\]\(([^)#]+\.ipynb)\)", _markdown(chapter)):
            assert (PLAIN / target).exists(), (chapter, target)


# --------------------------------------------------------------------------- rendering


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def _rendered_html(chapter, directory):
    """The chapter's markdown as nbconvert's default HTML template renders it (no
    MyST), with MathJax served from the vendored copy. The template configures
    MathJax 2; the same settings are given to MathJax 3 here."""
    from nbconvert import HTMLExporter

    nb = _read(PLAIN / f"{chapter}.ipynb")
    nb.cells = [c for c in nb.cells if c.cell_type == "markdown"]
    exporter = HTMLExporter(mathjax_url="mathjax/es5/tex-chtml.js")
    body, _ = exporter.from_notebook_node(nb)
    config = ("<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', "
              "'\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']], "
              "processEscapes: true, processEnvironments: true}};</script>")
    body = body.replace("<head>", "<head>" + config, 1)
    (directory / "mathjax").symlink_to(MATHJAX.parents[1], target_is_directory=True)
    (directory / "page.html").write_text(body, encoding="utf8")


def test_a_plain_notebook_renders_without_myst_in_a_browser(tmp_path):
    """Chapter 1 converted by nbconvert (Markdown + MathJax, no MyST) and opened in
    Chromium: no raw roles or directives, no MathJax errors, solutions typeset
    inside their <details>."""
    assert MATHJAX.exists(), f"{MATHJAX} is missing: run bash scripts/fetch_vendor.sh"
    sync_api = pytest.importorskip("playwright.sync_api")
    _rendered_html("01_elbo", tmp_path)
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    def read(browser):
        page = browser.new_page()
        outside = []
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"),
                   lambda route: (outside.append(route.request.url), route.abort()))
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/page.html")
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
            " && document.querySelectorAll('mjx-container').length > 0",
            timeout=20000)
        page.evaluate("() => MathJax.startup.promise")
        page.evaluate("() => document.querySelectorAll('details')"
                      ".forEach(d => d.open = true)")
        state = page.evaluate("""() => {
            const text = document.body.innerText;
            const details = Array.from(document.querySelectorAll('details'));
            return {
              text,
              errors: Array.from(document.querySelectorAll('mjx-merror'))
                           .map(e => e.getAttribute('data-mjx-error')),
              formulas: document.querySelectorAll('mjx-container').length,
              tags: document.querySelectorAll('mjx-labels').length,
              red: document.querySelectorAll(
                  'mjx-container mjx-mtext[style*="red"]').length,
              details: details.length,
              inDetails: details.map(
                  d => d.querySelectorAll('mjx-container').length),
            };
        }""")
        return dict(state, outside=outside)

    try:
        state = in_browser_thread(sync_api, read)
    finally:
        server.shutdown()
        server.server_close()
    text = state["text"]
    for raw in ("{cite", "{numref", "{eq}", "{doc}", "{ref}", "```", "{exercise",
                "{solution", ":label:", ")=", "$$", "\\begin{"):
        assert raw not in text, f"raw {raw!r} is visible"
    assert not state["errors"], state["errors"]
    assert state["red"] == 0, "undefined macros (red text)"
    assert state["tags"] == 5, "the five numbered equations carry their \\tag"
    assert state["formulas"] > 100
    assert state["details"] == 4 and all(n > 0 for n in state["inDetails"]), state
    assert "Figure 1.2." in text and "Exercise 1.4" in text and "(1.5)" in text
    assert "Rezende et al., 2014" in text
    # the formulas above were typeset by the local MathJax (the template's require.js
    # is the one request that leaves 127.0.0.1, and it was refused)
    assert not [url for url in state["outside"] if "mathjax" in url.lower()], state["outside"]


# --------------------------------------------------------------------------- Colab


def _launch_buttons(pagename):
    """The header buttons of a chapter page as sphinx-book-theme builds them from
    _config.yml (through jupyter-book's translation of it), then the local extension's
    hook, as the build calls them."""
    from types import SimpleNamespace

    from jupyter_book.config import get_final_config
    from sphinx_book_theme.header_buttons.launch import add_launch_buttons

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import lvae_book
    finally:
        sys.path.pop(0)
    config, _ = get_final_config(user_yaml=ROOT / "_config.yml", sourcedir=ROOT,
                                 cli_config={"latex_individualpages": False})
    options = config["html_theme_options"]
    org, repo = options["repository_url"].split("github.com/")[1].split("/")[:2]
    app = SimpleNamespace(
        config={"html_theme_options": options}, srcdir=str(ROOT),
        env=SimpleNamespace(doc2path=lambda name: str(ROOT / f"{name}.ipynb"),
                            metadata={pagename: {"kernelspec": {"name": "python3"}}}))
    context = {"pagename": pagename, "header_buttons": [],
               "sourcename": f"{pagename}.ipynb", "page_source_suffix": ".ipynb",
               "github_url": "https://github.com", "github_user": org,
               "github_repo": repo}
    add_launch_buttons(app, pagename, "page.html", context, None)
    lvae_book._colab_opens_plain_edition(app, pagename, "page.html", context, None)
    (group,) = [g for g in context["header_buttons"] if g["label"] == "launch-buttons"]
    return {b["text"]: b["url"] for b in group["buttons"]}


def test_the_colab_button_opens_the_plain_edition():
    urls = _launch_buttons("book/05_iwae")
    assert urls["Colab"] == ("https://colab.research.google.com/github/lvae-book/"
                             "lvae-book/blob/main/notebooks/05_iwae.ipynb")
    assert urls["Binder"].endswith("urlpath=tree/book/05_iwae.ipynb")   # only Colab changes
    assert (PLAIN / "05_iwae.ipynb").exists()


def test_the_built_pages_colab_buttons_open_the_plain_edition():
    """In a built book (when there is one; the test script builds it first) every
    chapter page's Colab link opens its plain edition; without a build, the URL the
    build would write for every chapter."""
    for chapter in _chapters():
        page = HTML_DIR / f"{chapter}.html"
        if page.exists():
            links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"',
                               page.read_text(encoding="utf8"))
        else:
            links = [_launch_buttons(f"book/{chapter}")["Colab"]]
        assert links and all(link.endswith(f"/blob/main/notebooks/{chapter}.ipynb")
                             for link in links), (chapter, links)
