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
    """A cell's outputs of one kind; adjacent stream outputs of one name
    joined, as a notebook shows them (where a stream is cut into messages
    depends on timing)."""
    joined: list = []
    for o in cell.outputs:
        same_stream = joined and o.output_type == "stream" and joined[-1].output_type == "stream"
        if same_stream and joined[-1].name == o.name:
            joined[-1] = nbformat.NotebookNode({**joined[-1], "text": joined[-1].text + o.text})
        else:
            joined.append(o)
    return [o for o in joined if o.output_type == kind]


def error_of(cell):
    [err] = outputs(cell, "error")
    return err


def usage_error_line(cell) -> str:
    """The UsageError IPython printed for this cell (one stderr line)."""
    [line] = [
        line + "\n"
        for o in outputs(cell, "stream")
        if o.name == "stderr"
        for line in o.text.splitlines()
        if line.startswith("UsageError: ")
    ]
    return line


def usage_error_of(cell) -> str:
    """IPython reports a UsageError as one stderr line, without a traceback,
    and it is the cell's only output."""
    assert not outputs(cell, "error")
    [line] = [o.text for o in outputs(cell, "stream") if o.name == "stderr"]
    assert line.startswith("UsageError: ") and line.count("\n") == 1, line
    return line


def plain(lines: list[str]) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))


# The tour: one kernel walking through every sub-command, so the whole
# module spawns only a handful of sandboxes. Keys name the cells.
TOUR = [
    ("load", "%load_ext forkd_jupyter"),
    ("spawn", "sb = %forkd spawn --name tour --mem 1024\nsb"),
    (
        "stream",
        "%%forkd\nimport sys\nx = 41\nprint('out line')\nprint('err line', file=sys.stderr)\nx + 1",
    ),
    (
        "frame",
        "%%forkd\nimport pandas as pd\nfrom IPython.display import display, Markdown\n"
        "display(Markdown('**shown**'))\npd.DataFrame({'col': [1, 2, 3]})",
    ),
    (
        "plot",
        "%%forkd\nimport matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
    ),
    ("branch", "kids = %forkd branch -n 2 --tag tour-snap\nkids"),
    ("kid-state", "%%forkd {kids[0].name}\n(x, len(In), In[1].splitlines()[1])"),
    ("kid-write", "%%forkd {kids[1].name}\nx = 'changed in kid 1'"),
    ("source-x", "%%forkd\nx"),  # the source did not see the child's write
    ("each", "%%forkd --each tour,{kids[0].name},{kids[1].name}\nprint(repr(x))"),
    ("ls", "%forkd ls"),
    ("tree-text", "%forkd tree --text"),
    ("timings-text", "%forkd timings --text"),
    ("push", "z = {'k': [1, 2]}\n%forkd push z"),
    ("pushed", "%%forkd\nz['k'][1]"),
    ("pull", "%forkd pull x --as from_guest\nfrom_guest"),
    ("use", "%forkd use {kids[0].name}\n%forkd status"),
    ("kill", "%forkd kill {kids[1].name}"),
    ("rm-refused", "%forkd rm tour-snap"),  # kids[0] still runs
    ("rm-cascade", "%forkd rm tour-snap --cascade"),
    ("status", "%forkd status"),
    ("doctor", "%forkd doctor"),
    ("help", "print(get_ipython().find_line_magic('forkd').__doc__)"),  # what %forkd? shows
    ("bad-mode", "%forkd branch --mode sideways"),
    ("no-wait-full", "%forkd branch --no-wait --mode full"),
    ("unknown-name", "%forkd use no-such-sandbox"),
    ("unknown-sub", "%forkd frobnicate"),
    ("no-sub", "%forkd"),
    ("cell-bad-flag", "%%forkd --bogus\n1"),
    ("cell-unknown-name", "%%forkd no-such-sandbox\n1"),
    ("guest-raise", "%%forkd tour\n1/0"),
    ("no-current", "%%forkd\n1"),  # the cascade took the current sandbox
    ("use-tour", "%forkd use tour"),
    # nbclient's kernel takes no input: the guest's input() ends (EOFError), never hangs.
    (
        "input-eof",
        "%%forkd\ntry:\n    input('name? ')\nexcept EOFError:\n    print('no input here')",
    ),
    ("guest-class", "%%forkd\nclass OnlyInGuest:\n    pass\nonly_in_guest = OnlyInGuest()"),
    ("pull-guest-class", "%forkd pull only_in_guest"),
    ("kill-unknown", "%forkd kill no-such-sandbox"),
    ("rm-unknown", "%forkd rm no-such-snapshot"),
    ("branch-unknown", "%forkd branch no-such-sandbox"),
    ("line-bad-flag", "%forkd spawn --bogus"),
    ("unpicklable", "import threading\nlock = threading.Lock()\n%forkd push lock"),
    (
        "no-wait",
        "later = %forkd branch --no-wait -n 1 --tag later\n"
        "import time\nreturned, final = len(later), later.snapshot.wait()\n"
        "deadline = time.monotonic() + 60\n"
        "while not later.snapshot.children() and time.monotonic() < deadline:\n"
        "    time.sleep(0.1)\n"
        "[late_kid] = later.snapshot.children()\n"
        "late_kid.run('boom = True')\n"
        "print(returned, final, late_kid.run('x').result['text/plain'])",
    ),
    (
        "each-fails",
        "%%forkd --each tour,{late_kid.name}\n"
        "if globals().get('boom'):\n    raise RuntimeError('boom in the late kid')\n"
        "print('fine')",
    ),
    ("pair", "pair = %forkd spawn -n 2 --name pair --mem 256 --no-live-fork\npair"),
    ("pair-live", "%forkd branch pair-1 --mode live"),  # refused: spawned without live fork
    ("pair-full", "full = %forkd branch --mode full --tag pair-full\nfull.snapshot"),
    (
        "pair-diff",
        "d = %forkd branch pair-1 --mode diff --tag pair-diff\nprint(d.snapshot)\n"
        "%forkd rm pair-diff",
    ),
    ("pair-end", "%forkd rm pair-full\n%forkd kill pair-1 pair-2"),
    ("tree", "%forkd tree"),  # the live widget
    ("timings", "%forkd timings"),
    ("end", "%forkd rm later --cascade\n%forkd kill tour"),
]


@pytest.fixture(scope="module")
def tour(daemon) -> dict:
    cells = run_notebook([code for _, code in TOUR])
    return {key: cell for (key, _), cell in zip(TOUR, cells, strict=True)}


def kid_ids(tour) -> list[str]:
    return re.findall(r"<sandbox (sb-\d+)>", text_of(tour["branch"]))


def test_spawn_returns_a_handle(tour):
    # The progress bars shown while these ran (test_magics_live.py) are gone
    # from the saved notebook: their outputs were replaced by empty ones.
    for key in ("pair", "pair-full", "rm-cascade"):
        for bar in outputs(tour[key], "display_data"):
            assert bar.data == {"text/plain": ""}, bar.data
    [result] = outputs(tour["spawn"], "execute_result")
    assert re.fullmatch(r"<sandbox sb-\d+ 'tour'>", result.data["text/plain"])
    [pair] = outputs(tour["pair"], "execute_result")
    assert re.fullmatch(
        r"\[<sandbox sb-\d+ 'pair-1'>, <sandbox sb-\d+ 'pair-2'>\]", pair.data["text/plain"]
    )


def test_cell_streams_and_shows_the_result(tour):
    cell = tour["stream"]
    streams = {o.name: o.text for o in outputs(cell, "stream")}
    assert streams == {"stdout": "out line\n", "stderr": "err line\n"}
    [result] = outputs(cell, "execute_result")
    assert result.data["text/plain"] == "42"


def test_rich_output_appears_as_in_a_normal_cell(tour):
    [markdown] = outputs(tour["frame"], "display_data")
    assert markdown.data["text/markdown"] == "**shown**"
    [frame] = outputs(tour["frame"], "execute_result")
    assert "<table" in frame.data["text/html"] and "col" in frame.data["text/html"]
    [figure] = outputs(tour["plot"], "display_data")
    assert base64.b64decode(figure.data["image/png"]).startswith(b"\x89PNG")


def test_branch_children_see_the_parents_state_and_history(tour):
    assert "snapshot snap-" in text_of(tour["branch"]) and "tour-snap" in text_of(tour["branch"])
    # x, the number of inputs (cells stream, frame, plot and this one, plus
    # IPython's empty In[0]) and the first line of the parent's first cell.
    assert text_of(tour["kid-state"]) == "(41, 5, 'x = 41')"
    assert text_of(tour["source-x"]) == "41"


def test_each_runs_everywhere_under_labels(tour):
    text = text_of(tour["each"])
    labels = [o.data["text/plain"] for o in outputs(tour["each"], "display_data")]
    assert labels == ["── tour ──"] + [f"── {k} ──" for k in kid_ids(tour)]
    assert text.count("41") == 2 and "'changed in kid 1'" in text


def test_each_shows_a_failure_under_its_label_and_fails_the_cell(tour):
    cell = tour["each-fails"]
    labels = [o.data["text/plain"] for o in outputs(cell, "display_data")]
    assert labels[0] == "── tour ──" and len(labels) == 2
    late_kid = labels[1].strip("─ ")
    text = text_of(cell)
    assert text.index("fine") < text.index(labels[1]) < text.index("boom in the late kid")
    assert "RuntimeError" in plain([text])
    assert usage_error_line(cell) == f"UsageError: the cell failed in {late_kid}\n"


def test_listing_tree_and_timings(tour):
    ls = text_of(tour["ls"])
    [current] = [line for line in ls.splitlines() if line.startswith("*")]
    assert "tour" in current and all(k in ls for k in kid_ids(tour))
    tree = text_of(tour["tree-text"])
    [root] = [line for line in tree.splitlines() if '"tour"' in line]
    assert re.match(r'sb-\d+ "tour" \[idle\]', root) and "tour-snap" in tree
    assert "live" in text_of(tour["timings-text"])


def test_push_and_pull(tour):
    assert text_of(tour["pushed"]) == "2"
    assert text_of(tour["pull"]) == "41"
    assert "cannot push 'lock'" in usage_error_of(tour["unpicklable"])


def test_use_kill_rm_status(tour):
    first, second = kid_ids(tour)
    assert f"current sandbox: {first}" in text_of(tour["use"])
    assert f"killed {second}" in text_of(tour["kill"])
    assert first in usage_error_of(tour["rm-refused"])
    assert "deleted" in text_of(tour["rm-cascade"]) and first in text_of(tour["rm-cascade"])
    assert "current sandbox: none" in text_of(tour["status"])  # the kid went with the cascade
    assert "no current sandbox" in usage_error_of(tour["no-current"])
    assert text_of(tour["end"]).count("deleted") == 1 and "killed" in text_of(tour["end"])


def test_branch_modes_and_no_wait(tour):
    # --no-wait returns before the image is complete, so no children yet;
    # the child asked for appears once it is, with the source's state.
    assert text_of(tour["no-wait"]) == "0 ready 41\n"
    assert "live" in usage_error_of(tour["pair-live"])
    [snap] = outputs(tour["pair-full"], "execute_result")
    assert re.fullmatch(
        r"<snapshot snap-\d+ 'pair-full' \(full, paused [0-9.]+ ms\)>", snap.data["text/plain"]
    )
    assert re.match(
        r"<snapshot snap-\d+ 'pair-diff' \(diff, paused [0-9.]+ ms\)>", text_of(tour["pair-diff"])
    )
    assert "deleted snap-" in text_of(tour["pair-end"])
    assert text_of(tour["pair-end"]).count("killed sb-") == 2


def test_doctor_and_documentation(tour):
    assert "this machine is ready" in text_of(tour["doctor"])
    help_text = text_of(tour["help"])
    for sub in SUBCOMMAND_NAMES:
        assert f"%forkd {sub}" in help_text, sub


SUBCOMMAND_NAMES = (
    "spawn",
    "use",
    "ls",
    "branch",
    "cluster",
    "kill",
    "rm",
    "tree",
    "timings",
    "pull",
    "push",
    "status",
    "doctor",
)


def test_bad_input_is_a_one_line_usage_error(tour):
    for key, needle in (
        ("bad-mode", "sideways"),
        ("no-wait-full", "--no-wait only works with a live or diff branch"),
        ("unknown-name", "no-such-sandbox"),
        ("unknown-sub", "frobnicate"),
        ("no-sub", "give a sub-command"),
        ("cell-bad-flag", "--bogus"),
        ("cell-unknown-name", "no-such-sandbox"),
        ("pull-guest-class", "cannot pull 'only_in_guest'"),
        ("kill-unknown", "no-such-sandbox"),
        ("rm-unknown", "no-such-snapshot"),
        ("branch-unknown", "no-such-sandbox"),
        ("line-bad-flag", "--bogus"),
    ):
        assert needle in usage_error_of(tour[key]), key


def test_a_guest_exception_fails_the_cell_with_the_guest_traceback(tour):
    err = error_of(tour["guest-raise"])
    assert err.ename == "GuestCellError" and "ZeroDivisionError" in err.evalue
    assert "ZeroDivisionError" in plain(err.traceback)
    assert "1/0" in plain(err.traceback).replace(" ", "")  # the guest's own frame


def test_tree_and_timings_show_widgets(tour):
    for key in ("tree", "timings"):
        [view] = outputs(tour[key], "execute_result")
        assert "application/vnd.jupyter.widget-view+json" in view.data


def test_run_all_stops_at_a_guest_exception(daemon):
    with pytest.raises(CellExecutionError) as e:
        run_notebook(
            [
                "%load_ext forkd_jupyter",
                "sb = %forkd spawn --mem 256",
                "%%forkd\ndef fail():\n    raise ValueError('stop here')\nfail()",
                "never = 1",
            ],
            allow_errors=False,
        )
    text = plain([str(e.value)])
    assert "ValueError: stop here" in text
    assert "raise ValueError('stop here')" in text and "fail()" in text  # the guest's frames
    assert "never = 1" not in text


def test_interrupt_button_interrupts_the_sandbox(daemon):
    cells = run_notebook(
        [
            "%load_ext forkd_jupyter",
            "sb = %forkd spawn --mem 256",
            "%%forkd\nimport time\nprint('sleeping', flush=True)\ntime.sleep(60)",
            "%%forkd\n'still serving'",
            "sb.kill()",
        ],
        timeout=15,
    )
    interrupted = cells[2]
    assert "sleeping" in text_of(interrupted)
    err = error_of(interrupted)
    assert "KeyboardInterrupt" in err.evalue and "KeyboardInterrupt" in plain(err.traceback)
    assert text_of(cells[3]) == "'still serving'"


def test_an_unreachable_daemon_and_unloading(monkeypatch):
    """A kernel pointed at an address nobody serves (TCP: never started on
    demand) gets one-line errors; `%forkd doctor` still checks the machine."""
    monkeypatch.setenv("FORKD_JUPYTER_URL", "http://127.0.0.1:9")
    cells = run_notebook(
        [
            "%load_ext forkd_jupyter",
            "%forkd ls",
            "%forkd doctor",
            "%unload_ext forkd_jupyter",
            "%forkd ls",
        ]
    )
    line = usage_error_of(cells[1])
    assert "no forkd-jupyter daemon answers at http://127.0.0.1:9" in line and "doctor" in line
    doctor = text_of(cells[2])
    assert "daemon is unreachable" in doctor and "this machine is ready" in doctor
    assert "%forkd" in usage_error_of(cells[4]) and "not found" in usage_error_of(cells[4])


def test_kvm_unavailable_points_at_doctor():
    """The daemon's kvm-unavailable problem becomes one line naming the magic."""
    from forkd_jupyter.client.errors import from_problem
    from forkd_jupyter.magics.session import usage_error

    problem = {
        "type": "urn:forkd-jupyter:problem:kvm-unavailable",
        "title": "KVM is not usable on this machine",
        "status": 503,
        "detail": "create vm: No such file or directory; run `forkd-jupyter doctor` "
        "(run `forkd-jupyter doctor`)",
    }
    assert str(usage_error(from_problem(problem))) == (
        "KVM is not usable on this machine (create vm: No such file or directory): "
        "run `%forkd doctor`"
    )


def test_the_reference_in_docs_is_generated_from_the_parsers():
    from pathlib import Path

    from forkd_jupyter.magics.reference import reference

    doc = (Path(__file__).resolve().parent.parent / "docs" / "magics.md").read_text()
    assert doc.endswith(reference()), "regenerate: python -m forkd_jupyter.magics.reference"
    for sub in SUBCOMMAND_NAMES:
        assert f"### `%forkd {sub}`" in doc, sub


def test_input_in_a_cell_ends_when_the_notebook_takes_no_input(tour):
    assert "no input here" in text_of(tour["input-eof"])


ERRORS = [
    "%load_ext forkd_jupyter",
    "sb = %forkd spawn --mem 256 --name errs",
    "%%forkd\n!echo bang $((6*7))",
    "%%forkd\n%%bash\necho from bash; id -un",
    "%%forkd\nimport subprocess\nsubprocess.run(['true']).returncode",
    "%%forkd\nprint('next cell clean')",
    "%%forkd\ndef f():\n    return 1/0\nf()",
    "%%forkd --each errs\nx = !echo each\nx",
    "empty = %forkd branch --tag errs-snap\nempty",
    "from forkd_jupyter.magics import current_session\n"
    "current_session().controller.kill_sandbox(sb.id)",  # dies behind the magics' back
    "%%forkd\n1",
    "%forkd ls",
    "%forkd ls --all",
    "%forkd ls --clear-dead",
    "%forkd rm errs-snap",
    "other = %forkd spawn --mem 256 --name errs-2",
    "%%forkd\ndef g():\n    return 1/0",
    "%%forkd\nx = 1\ng()",
    "%forkd kill errs-2",
]


def test_shell_cells_run_and_errors_keep_the_notebooks_numbers(daemon):
    cells = run_notebook(ERRORS)
    # Shell escapes, script magics and subprocesses run in the sandbox.
    assert [(o.name, o.text) for o in outputs(cells[2], "stream")] == [("stdout", "bang 42\n")]
    assert [(o.name, o.text) for o in outputs(cells[3], "stream")] == [
        ("stdout", "from bash\nsandbox\n")
    ]
    assert text_of(cells[4]) == "0"
    # Nothing of those cells leaks into the next one.
    assert [(o.name, o.text) for o in outputs(cells[5], "stream")] == [
        ("stdout", "next cell clean\n")
    ]
    # The notebook's cell number (execution counts start at 1) and its lines
    # (the cell's first line is %%forkd): f() is line 4 of cell [7].
    tb = plain(error_of(cells[6]).traceback)
    assert "Cell In[7], line 4" in tb and "Cell In[7], line 3, in f()" in tb, tb
    assert "----> 4 f()" in tb and "forkd_agent" not in tb
    assert not outputs(cells[7], "error") and "each" in str(outputs(cells[7], "stream")) + text_of(
        cells[7]
    )
    assert re.fullmatch(
        r"<snapshot snap-\d+ 'errs-snap' \((live|full|diff), paused [0-9.]+ ms\)>, no children.*",
        text_of(cells[8]),
    )
    line = usage_error_of(cells[10])
    assert "is dead (killed)" in line and "%forkd spawn" in line and "%forkd use" in line
    listed = text_of(cells[11]).split("\n\n")[0]  # the sandboxes' table, not the snapshots'
    assert " errs " not in listed and re.search(r"\(\d+ dead not shown", listed)
    assert "dead (killed)" in text_of(cells[12]) and " errs " in text_of(cells[12])
    assert text_of(cells[13]).startswith("cleared ")
    assert "dead not shown" not in text_of(cells[13])
    # A frame of an earlier %%forkd cell is named by that cell's number too.
    tb = plain(error_of(cells[17]).traceback)
    assert "Cell In[18], line 3" in tb and "Cell In[17], line 3, in g()" in tb, tb


def test_agent_frames_never_reach_the_notebook():
    from forkd_jupyter.magics.tracebacks import rewrite

    guest = [
        "Traceback (most recent call last):",
        '  File "/opt/forkd/forkd_agent/server.py", line 12, in handle',
        "    run(code)",
        "Cell In[3], line 2",
        "      1 x = 1",
        "----> 2 g()",
        "",
        "File /opt/forkd/forkd_agent/ipython_runner.py:40, in run()",
        "---> 40     exec(code)",
        "",
        "File /usr/lib/python3.11/json/__init__.py:346, in loads(s)",
        "--> 346     return _default_decoder.decode(s)",
        "",
        "ValueError: bad",
    ]
    out = "\n".join(rewrite(guest, {3: 9}))
    assert "forkd_agent" not in out and "run(code)" not in out and "exec(code)" not in out
    assert "Cell In[9], line 3" in out and "----> 3 g()" in out and "      2 x = 1" in out
    assert "json/__init__.py:346" in out and out.endswith("ValueError: bad")
