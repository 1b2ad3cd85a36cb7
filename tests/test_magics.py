"""`%forkd` and `%%forkd` in real notebooks, run by nbclient in a real
kernel that reaches the test daemon (the kernel inherits its environment)."""

from __future__ import annotations

import base64
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = pytest.mark.kvm


def run_notebook(cells: list[str], timeout: int = 120, allow_errors: bool = True):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        interrupt_on_timeout=True,
    )
    client.execute()
    return nb.cells


def text_of(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}\n" + "\n".join(out.traceback))
    return "".join(parts)


def outputs(cell, kind: str) -> list:
    return [o for o in cell.outputs if o.output_type == kind]


def error_of(cell):
    [err] = outputs(cell, "error")
    return err


def usage_error_of(cell) -> str:
    """IPython reports a UsageError as one stderr line, without a traceback."""
    assert not outputs(cell, "error")
    [line] = [o.text for o in outputs(cell, "stream") if o.name == "stderr"]
    assert line.startswith("UsageError: ") and line.count("\n") == 1, line
    return line


def plain(lines: list[str]) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))


@pytest.fixture(scope="module")
def tour(daemon):
    """One notebook walking through every sub-command."""
    cells = run_notebook(
        [
            "%load_ext forkd_jupyter",  # 0
            "sb = %forkd spawn --name tour --mem 1024\nsb",  # 1
            "%%forkd\nimport sys\nx = 41\nprint('out line')\nprint('err line', file=sys.stderr)\n"
            "x + 1",  # 2
            "%%forkd\nimport pandas as pd\nfrom IPython.display import display, Markdown\n"
            "display(Markdown('**shown**'))\npd.DataFrame({'col': [1, 2, 3]})",  # 3
            "%%forkd\nimport matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
            "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",  # 4
            "kids = %forkd branch -n 2 --tag tour-snap\nkids",  # 5
            "%%forkd {kids[0].name}\n(x, len(In), In[1].splitlines()[1])",  # 6
            "%%forkd {kids[1].name}\nx = 'changed in kid 1'",  # 7
            "%%forkd\nx",  # 8  the source did not see the child's write
            "%%forkd --each tour,{kids[0].name},{kids[1].name}\nprint(repr(x))",  # 9
            "%forkd ls",  # 10
            "%forkd tree --text",  # 11
            "%forkd timings --text",  # 12
            "z = {'k': [1, 2]}\n%forkd push z",  # 13
            "%%forkd\nz['k'][1]",  # 14
            "%forkd pull x --as from_guest\nfrom_guest",  # 15
            "%forkd use {kids[0].name}\n%forkd status",  # 16
            "%forkd kill {kids[1].name}",  # 17
            "%forkd rm tour-snap",  # 18: refused, kids[0] still runs
            "%forkd rm tour-snap --cascade",  # 19
            "%forkd status",  # 20
            "%forkd doctor",  # 21
            "print(get_ipython().find_line_magic('forkd').__doc__)",  # 22: what %forkd? shows
            "%forkd branch --mode sideways",  # 23
            "%forkd use no-such-sandbox",  # 24
            "%forkd frobnicate",  # 25
            "%%forkd tour\n1/0",  # 26
            "%forkd kill tour",  # 27
            "%forkd tree",  # 28: the live widget
            "%forkd timings",  # 29
        ]
    )
    return cells


def kid_ids(tour) -> list[str]:
    return re.findall(r"<sandbox (sb-\d+)>", text_of(tour[5]))


def test_spawn_returns_a_handle(tour):
    [result] = outputs(tour[1], "execute_result")
    assert re.fullmatch(r"<sandbox sb-\d+ 'tour'>", result.data["text/plain"])


def test_cell_streams_and_shows_the_result(tour):
    cell = tour[2]
    streams = {o.name: o.text for o in outputs(cell, "stream")}
    assert streams == {"stdout": "out line\n", "stderr": "err line\n"}
    [result] = outputs(cell, "execute_result")
    assert result.data["text/plain"] == "42"


def test_rich_output_appears_as_in_a_normal_cell(tour):
    [markdown] = outputs(tour[3], "display_data")
    assert markdown.data["text/markdown"] == "**shown**"
    [frame] = outputs(tour[3], "execute_result")
    assert "<table" in frame.data["text/html"] and "col" in frame.data["text/html"]
    [figure] = outputs(tour[4], "display_data")
    assert base64.b64decode(figure.data["image/png"]).startswith(b"\x89PNG")


def test_branch_children_see_the_parents_state_and_history(tour):
    assert "snapshot snap-" in text_of(tour[5]) and "tour-snap" in text_of(tour[5])
    # x, the number of inputs (cells 2, 3, 4 and this one, plus IPython's
    # empty In[0]) and the first line of the parent's first %%forkd cell.
    assert text_of(tour[6]) == "(41, 5, 'x = 41')"
    assert text_of(tour[8]) == "41"


def test_each_runs_everywhere_under_labels(tour):
    text = text_of(tour[9])
    labels = [o.data["text/plain"] for o in outputs(tour[9], "display_data")]
    assert labels == ["── tour ──"] + [f"── {k} ──" for k in kid_ids(tour)]
    assert text.count("41") == 2 and "'changed in kid 1'" in text


def test_listing_tree_and_timings(tour):
    ls = text_of(tour[10])
    [current] = [line for line in ls.splitlines() if line.startswith("*")]
    assert "tour" in current and all(k in ls for k in kid_ids(tour))
    tree = text_of(tour[11])
    [root] = [line for line in tree.splitlines() if '"tour"' in line]
    assert re.match(r'sb-\d+ "tour" \[running\]', root) and "tour-snap" in tree
    assert "live" in text_of(tour[12])


def test_push_and_pull(tour):
    assert text_of(tour[14]) == "2"
    assert text_of(tour[15]) == "41"


def test_use_kill_rm_status(tour):
    first, second = kid_ids(tour)
    assert f"current sandbox: {first}" in text_of(tour[16])
    assert f"killed {second}" in text_of(tour[17])
    assert first in usage_error_of(tour[18])
    assert "deleted" in text_of(tour[19]) and first in text_of(tour[19])
    assert "current sandbox: none" in text_of(tour[20])  # the first kid went with the cascade


def test_doctor_and_documentation(tour):
    assert "this machine is ready" in text_of(tour[21])
    help_text = text_of(tour[22])
    for sub in (
        "spawn",
        "use",
        "ls",
        "branch",
        "kill",
        "rm",
        "tree",
        "timings",
        "pull",
        "push",
        "status",
        "doctor",
    ):
        assert f"%forkd {sub}" in help_text, sub


def test_bad_input_is_a_one_line_usage_error(tour):
    for index, needle in ((23, "sideways"), (24, "no-such-sandbox"), (25, "frobnicate")):
        assert needle in usage_error_of(tour[index])


def test_a_guest_exception_fails_the_cell_with_the_guest_traceback(tour):
    err = error_of(tour[26])
    assert err.ename == "GuestCellError" and "ZeroDivisionError" in err.evalue
    assert "ZeroDivisionError" in plain(err.traceback)
    assert "1/0" in plain(err.traceback).replace(" ", "")  # the guest's own frame


def test_run_all_stops_at_a_guest_exception(daemon):
    with pytest.raises(CellExecutionError) as e:
        run_notebook(
            [
                "%load_ext forkd_jupyter",
                "sb = %forkd spawn --mem 256",
                "%%forkd\nraise ValueError('stop here')",
                "never = 1",
            ],
            allow_errors=False,
        )
    assert "ValueError" in str(e.value) and "stop here" in str(e.value)


def test_interrupt_button_interrupts_the_sandbox(daemon):
    cells = run_notebook(
        [
            "%load_ext forkd_jupyter",
            "sb = %forkd spawn --mem 256",
            "%%forkd\nimport time\nprint('sleeping', flush=True)\ntime.sleep(120)",
            "%%forkd\n'still serving'",
            "sb.kill()",
        ],
        timeout=20,
    )
    interrupted = cells[2]
    assert "sleeping" in text_of(interrupted)
    err = error_of(interrupted)
    assert "KeyboardInterrupt" in err.evalue
    assert text_of(cells[3]) == "'still serving'"


def test_the_reference_in_docs_is_generated_from_the_parsers():
    from pathlib import Path

    from forkd_jupyter.magics.reference import reference

    doc = (Path(__file__).resolve().parent.parent / "docs" / "magics.md").read_text()
    assert doc.endswith(reference()), "regenerate: python -m forkd_jupyter.magics.reference"


def test_tree_and_timings_show_widgets(tour):
    for cell in (tour[28], tour[29]):
        [view] = outputs(cell, "execute_result")
        assert "application/vnd.jupyter.widget-view+json" in view.data
