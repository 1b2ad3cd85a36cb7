"""The VMM's Python modules import one another without loops: a module
never imports, even lazily inside a function, one that imports it back.
(snapshot.py sits below sandbox.py and reaches it only through the child
factory sandbox.py registers.)"""

from __future__ import annotations

import ast
from pathlib import Path

import forkd_jupyter.vmm

VMM = Path(forkd_jupyter.vmm.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Sibling modules of the vmm package that path imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "forkd_jupyter.vmm."
        ):
            found.add(node.module.split(".")[2])
    return found


def test_vmm_modules_import_without_loops():
    modules = {p.stem: p for p in VMM.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & modules.keys() - {name} for name, path in modules.items()}
    assert "sandbox" in graph["snapshot"] or "snapshot" in graph["sandbox"]  # they are related

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    loops = sorted(name for name in graph if reaches(name, name, {name}))
    assert not loops, f"modules importing each other: {loops} ({graph})"
    assert "sandbox" not in graph["snapshot"]
