"""The example notebooks run top to bottom in a real kernel against the test
daemon, and show what their text says they show."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# The kernels reach the test daemon (daemon fixture), never the user's.
pytestmark = [pytest.mark.kvm, pytest.mark.usefixtures("daemon")]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def execute(name: str, nb=None) -> list:
    nb = nb or nbformat.read(EXAMPLES / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()  # raises CellExecutionError on any failing cell
    return [c for c in nb.cells if c.cell_type == "code"]


def text(cell) -> str:
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif "data" in o:
            out.append(o.data.get("text/plain", ""))
    return "".join(out)


def test_quickstart():
    cells = execute("01-quickstart.ipynb")
    assert "inside the sandbox: 3." in text(cells[2])
    assert [text(cells[i]) for i in (4, 5, 6)] == ["100", "-1", "0"]
    assert "first-branch" in text(cells[7])
    assert "application/vnd.jupyter.widget-view+json" in cells[8].outputs[0].data


def test_exploratory_branching():
    cells = execute("02-exploratory-branching.ipynb")
    assert "loaded 3,000,000 points" in text(cells[1])
    each = text(cells[3])
    rmse = {int(d): float(r) for d, r in re.findall(r"degree (\d): rmse ([0-9.]+)", each)}
    assert set(rmse) == {1, 3, 7} and rmse[7] < rmse[3] < rmse[1]
    assert "degree 7" in text(cells[4])


def test_pause_timings():
    cells = execute("03-pause-timings.ipynb")
    summary = text(cells[2])
    for mode in ("live", "diff", "full"):
        assert re.search(rf"{mode}\s+p50\s+[0-9.]+ ms", summary), summary
    [png] = [o for o in cells[3].outputs if "image/png" in o.get("data", {})]
    assert base64.b64decode(png.data["image/png"]).startswith(b"\x89PNG")
    assert text(cells[5]) == "'dead'"


def test_files_and_isolation():
    cells = execute("04-files-and-isolation.ipynb")
    assert "/sandbox/up/notes/a.txt" in text(cells[1])
    assert "x,y" in text(cells[2]) and "['a.txt', 'b.txt']" in text(cells[2])
    assert "computed inside" in text(cells[4]) and "notes/b.txt" in text(cells[4])
    attempts = [line for line in text(cells[5]).splitlines() if ": " in line]
    assert len(attempts) == 5 and all(": refused (" in line for line in attempts), attempts
    # A program it starts runs inside: the sandbox's user and files.
    assert text(cells[5]).splitlines()[5:7] == ["sandbox", "data"], text(cells[5])
    assert "refused:" in text(cells[6])


def test_the_readme_tour_runs_as_written():
    readme = (EXAMPLES.parent / "README.md").read_text()
    tour = readme[readme.index("## A one-minute tour") : readme.index("The JupyterLab sidebar")]
    sources = re.findall(r"```python\n(.*?)```", tour, re.S)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources])
    cells = execute("README.md", nb)
    assert re.fullmatch(r"<sandbox sb-\d+ 'main'>", text(cells[0])), text(cells[0])
    each = text(cells[3])
    assert each.count("── sb-") == 3, each
    for widget in (cells[4], cells[5]):
        assert "application/vnd.jupyter.widget-view+json" in widget.outputs[0].data
