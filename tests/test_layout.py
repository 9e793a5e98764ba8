"""The package's layers, read from its source: the mathematics below the campaign, no
import cycle (counting imports inside functions), and bounds that depend on tensors alone."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lvae_core"
#: What the book teaches, from the densities to the bounds: none of it may reach campaign
#: code, checkpoint files or results folders.
MATHEMATICS = ("distributions", "blocks", "generative", "inference", "configs", "models",
               "bounds")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The ``lvae_core`` modules ``path`` imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lvae_core")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("lvae_core"):
                continue
            for alias in node.names:       # "from . import x" may name a module
                sub = f"{target}.{alias.name}"
                found.add(sub if _is_module(sub) else target)
    found.discard(name)
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_module_imports_itself_back():
    g = graph()
    # the package's __init__ files re-export their modules: they sit on top, not in cycles
    edges = {m: {t for t in targets if g.get(t) is not None and not t.endswith("lvae_core")
                 and t != "lvae_core.campaign"}
             for m, targets in g.items() if m not in ("lvae_core", "lvae_core.campaign")}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == [], cycles


def test_the_bounds_depend_on_tensors_alone():
    assert imports(PACKAGE / "bounds.py") == set()


def test_the_mathematics_reaches_no_campaign_or_file_code():
    g = graph()
    banned = ("lvae_core.campaign", "lvae_core.checkpoints", "lvae_core.results",
              "lvae_core.train", "lvae_core.data")
    for name in MATHEMATICS:
        seen, todo = set(), [f"lvae_core.{name}"]
        while todo:                    # everything it imports, directly or not
            for nxt in g.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert not [m for m in seen if m.startswith(banned)], (name, sorted(seen))


def test_the_chapters_find_no_files_themselves():
    """Results are read through ``lvae_core.results``: no chapter looks for the repository's
    root or parses a results file."""
    import json
    for path in sorted((PACKAGE.parent / "book").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "code")
        for pattern in ("_toc.yml", "json.load", "np.load(", ".read_text(", "/ \"runs\""):
            assert pattern not in code, (path.name, pattern)
