"""The C core's folders form layers: a file calls only functions defined in
its own folder or in a lower one, and no two files call each other, directly
or around a loop. Checked on the real call graph: every source is compiled on
its own and its undefined symbols are matched with the files defining them
(nm), so a call hidden behind a stray declaration counts too."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from forkd_jupyter.vmm import _build

CSRC = _build.CSRC


def _rank(folder: str) -> int:
    return _build.LAYERS.index(folder)


@pytest.fixture(scope="module")
def call_graph(tmp_path_factory) -> dict[str, dict[str, set[str]]]:
    """file -> {file it calls -> the symbols called}, files relative to csrc/."""
    gcc, nm = shutil.which("gcc"), shutil.which("nm")
    assert gcc and nm, "gcc and nm (binutils) are needed"
    out = tmp_path_factory.mktemp("objs")
    sources = sorted(CSRC.rglob("*.c"))
    include = sysconfig.get_paths()["include"]

    def compile_one(src: Path) -> tuple[str, str]:
        rel = str(src.relative_to(CSRC))
        obj = out / (rel.replace("/", "__") + ".o")
        cmd = [gcc, "-std=gnu11", "-O0", "-c", f"-I{CSRC}", f"-I{include}", str(src)]
        subprocess.run([*cmd, "-o", str(obj)], check=True, capture_output=True, timeout=120)
        listing = subprocess.run([nm, str(obj)], check=True, capture_output=True, text=True)
        return rel, listing.stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        symbols = dict(pool.map(compile_one, sources))
    defined: dict[str, str] = {}
    undefined: dict[str, set[str]] = defaultdict(set)
    for rel, listing in symbols.items():
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                undefined[rel].add(parts[1])
            elif len(parts) == 3 and parts[1] in "TDBR":
                defined[parts[2]] = rel
    graph: dict[str, dict[str, set[str]]] = {rel: defaultdict(set) for rel in symbols}
    for rel, names in undefined.items():
        for name in names:
            callee = defined.get(name)
            if callee and callee != rel:
                graph[rel][callee].add(name)
    return graph


def test_every_source_sits_in_a_known_folder(call_graph):
    known = set(_build.LAYERS) | set(_build.SIDE_LAYERS)
    stray = [rel for rel in call_graph if rel.split("/")[0] not in known or rel.count("/") != 1]
    assert not stray, f"sources outside the subsystem folders: {stray}"
    for folder in known:
        readme = CSRC / folder / "README.md"
        assert readme.is_file() and "May call" in readme.read_text(), readme


def test_no_folder_calls_a_higher_one(call_graph):
    upward = []
    for caller, callees in call_graph.items():
        low = caller.split("/")[0]
        for callee, names in callees.items():
            high = callee.split("/")[0]
            if low in _build.SIDE_LAYERS:
                ok = high == low or high in _build.SIDE_LAYERS[low]
            elif high in _build.SIDE_LAYERS:
                ok = False
            else:
                ok = _rank(high) <= _rank(low)
            if not ok:
                upward.append(f"{caller} -> {callee} ({', '.join(sorted(names))})")
    assert not upward, "calls into a higher layer:\n" + "\n".join(sorted(upward))


def test_no_two_files_call_each_other(call_graph):
    # Tarjan's strongly connected components: any component of more than one
    # file is a loop of calls.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in call_graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in call_graph:
        if v not in index:
            visit(v)
    assert not loops, f"files calling each other: {loops}"


def test_no_source_file_is_overgrown():
    # Files stay readable: one concern each, about 600 lines at most.
    long = {
        str(p.relative_to(CSRC)): n
        for p in CSRC.rglob("*.[ch]")
        if (n := len(p.read_text().splitlines())) > 620
    }
    assert not long, f"files over ~600 lines: {long}"
