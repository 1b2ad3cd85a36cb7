"""Background runs over real HTTP: started at once with an id, their output
kept by the daemon (resumable with Last-Event-ID, retrievable after the
client left, buffered with a cap), cancelled or interrupted; a cell's
checkpoint taken in its own run request."""

from __future__ import annotations

import time

import pytest

from forkd_jupyter.client.sse import iter_events_with_ids

pytestmark = pytest.mark.kvm


def wait_finished(http, run_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = http.get(f"/runs/{run_id}").json()
        if run["status"] != "running":
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still running")


def test_a_run_starts_at_once_and_outlives_its_client(http, sb):
    code = "import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.3)\n'done'"
    http.get(f"/sandboxes/{sb}/runs")  # the client's response checks are loaded
    t0 = time.monotonic()
    r = http.post(f"/sandboxes/{sb}/runs", json={"code": code})
    assert r.status_code == 202 and time.monotonic() - t0 < 1.0, r.text
    run = r.json()
    assert run["status"] == "running" and run["id"].startswith("run-")
    busy = http.post(f"/sandboxes/{sb}/runs", json={"code": "1"})
    assert busy.status_code == 409 and busy.json()["type"].endswith(":sandbox-busy")
    # Read one output event, leave, come back after the last one seen.
    url = f"/runs/{run['id']}/events"
    with http.stream("GET", url) as stream:
        event, data, first_id = next(iter_events_with_ids(stream))
    assert event == "stream" and first_id == "1"
    with http.stream("GET", url, headers={"Last-Event-ID": first_id}) as stream:
        rest = list(iter_events_with_ids(stream))
    text = data["text"] + "".join(d["text"] for e, d, _ in rest if e == "stream")
    assert text.split() == ["0", "1", "2", "3"]
    assert rest[-1][0] == "result" and rest[-1][1]["result"]["text/plain"] == "'done'"
    assert [int(i) for _, _, i in rest] == list(range(2, len(rest) + 2))
    done = http.get(f"/runs/{run['id']}").json()
    assert done["status"] == "done" and done["result"]["stdout"] == "0\n1\n2\n3\n"
    assert run["id"] in {r["id"] for r in http.get(f"/sandboxes/{sb}/runs").json()["runs"]}
    with http.stream("GET", url, params={"after": 1000}) as stream:  # past the end
        assert list(iter_events_with_ids(stream)) == []


def test_a_run_can_be_cancelled(http, sb):
    run = http.post(f"/sandboxes/{sb}/runs", json={"code": "while True: pass"}).json()
    time.sleep(0.3)
    assert http.post(f"/runs/{run['id']}/cancel").status_code == 200
    done = wait_finished(http, run["id"])
    assert done["status"] == "cancelled"
    assert done["result"]["error"]["ename"] == "KeyboardInterrupt"
    assert http.post(f"/sandboxes/{sb}/run", json={"code": "2 + 2"}).json()["result"] == {
        "text/plain": "4"
    }


def test_the_output_buffer_is_capped(daemon, http, sb):
    code = "for i in range(6000):\n    print('x' * 1000, flush=True)"
    run = http.post(f"/sandboxes/{sb}/runs", json={"code": code}).json()
    done = wait_finished(http, run["id"], 120)
    assert done["status"] == "done" and done["dropped"] > 0
    with http.stream("GET", f"/runs/{run['id']}/events") as stream:
        events = list(iter_events_with_ids(stream))
    assert events[0][0] == "gap" and events[-1][0] == "result"
    kept = sum(len(d["text"]) for e, d, _ in events if e == "stream")
    assert kept <= 4 << 20


def test_the_sdk_streams_through_a_run_and_survives_a_reconnect(daemon, sb):
    seen: list[str] = []
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)\n7"
    result = daemon.run_cell(sb, code, on_output=lambda name, text: seen.append(text))
    assert "".join(seen).split() == ["0", "1", "2"] and result.result["text/plain"] == "7"
    run = daemon.list_runs(sb)[-1]
    assert run["status"] == "done"
    # A reader that leaves in the middle resumes without loss or repeats.
    code = "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.2)"
    started = daemon.start_run(sb, code)
    events = daemon.run_events(started["id"])
    first = next(events)
    events.close()
    later = list(daemon.run_events(started["id"], after=1))
    texts = first[1]["text"] + "".join(d["text"] for e, d in later if e == "stream")
    assert texts.split() == ["0", "1", "2", "3", "4"] and later[-1][0] == "result"


def test_input_in_a_cell_is_answered_through_the_api(http, sb):
    code = "name = input('who? ')\nprint('hi', name)\nlen(name)"
    run = http.post(f"/sandboxes/{sb}/runs", json={"code": code}).json()
    with http.stream("GET", f"/runs/{run['id']}/events") as stream:
        events = iter_events_with_ids(stream)
        asked = next(d for e, d, _ in events if e == "input_request")
        assert asked == {"prompt": "who? ", "password": False}
        assert http.get(f"/runs/{run['id']}").json()["waiting_input"] is True
        assert http.post(f"/runs/{run['id']}/stdin", json={"value": "ada"}).status_code == 200
        rest = list(events)
    assert rest[-1][0] == "result" and rest[-1][1]["result"]["text/plain"] == "3"
    assert "hi ada" in rest[-1][1]["stdout"]
    again = http.post(f"/runs/{run['id']}/stdin", json={"value": "late"})
    assert again.status_code == 409 and again.json()["type"].endswith(":run-not-waiting")


def test_input_through_the_sdk_and_end_of_input_without_an_answer(daemon, sb):
    asked = []

    def answer(prompt, password):
        asked.append((prompt, password))
        return "secret" if password else "7"

    code = "import getpass\nx = int(input('n: ')) * 6\np = getpass.getpass()\n(x, p)"
    result = daemon.run_cell(sb, code, on_input=answer)
    assert asked == [("n: ", False), ("Password: ", True)]
    assert result.result["text/plain"] == "(42, 'secret')"
    # No answerer: input() ends at once with EOFError, in both kinds of run.
    eof = daemon.run_cell(sb, "input('never answered')")
    assert eof.error is not None and eof.error.ename == "EOFError"
    eof = daemon.run_cell(sb, "input()", on_output=lambda name, text: None)
    assert eof.error is not None and eof.error.ename == "EOFError"
    # Code that set sys.stdin itself reads it, as in plain Python.
    own = daemon.run_cell(
        sb,
        "import io, sys\nsaved, sys.stdin = sys.stdin, io.StringIO('from the code\\n')\n"
        "try:\n    got = input()\nfinally:\n    sys.stdin = saved\ngot",
        on_input=answer,
    )
    assert own.result["text/plain"] == "'from the code'" and len(asked) == 2


# A cell's checkpoint taken in its own run request (``checkpoint``), as attach
# mode takes one before every cell.


def snapshot_ids(http) -> set[str]:
    return {s["id"] for s in http.get("/snapshots").json()["snapshots"]}


def test_the_checkpoint_comes_with_the_run_and_holds_the_state_before_it(http, daemon, sb):
    http.post(f"/sandboxes/{sb}/run", json={"code": "x = 1"})
    mark = {"cell": 7, "line": "x = 2", "after": 6}
    r = http.post(f"/sandboxes/{sb}/runs", json={"code": "x = 2\nx", "checkpoint": mark})
    assert r.status_code == 202, r.text
    run = r.json()
    snap = run["checkpoint"]
    assert snap["mode"] == "diff" and snap["status"] == "ready" and snap["checkpoint"] == mark
    assert snap["source_id"] == sb and snap["id"] in snapshot_ids(http)
    done = wait_finished(http, run["id"])
    assert done["result"]["result"]["text/plain"] == "2" and done["checkpoint"]["id"] == snap["id"]
    [child] = daemon.spawn_sandboxes(snapshot_id=snap["id"])
    try:
        assert daemon.run_cell(child["id"], "x").result["text/plain"] == "1"
    finally:
        daemon.kill_sandbox(child["id"])
    plain = http.post(f"/sandboxes/{sb}/runs", json={"code": "3"}).json()
    assert plain["checkpoint"] is None
    wait_finished(http, plain["id"])


def test_a_busy_sandbox_gets_no_checkpoint_and_a_bad_mark_is_a_400(http, sb):
    long = http.post(f"/sandboxes/{sb}/runs", json={"code": "import time\ntime.sleep(1.5)"})
    assert long.status_code == 202
    before = snapshot_ids(http)
    mark = {"cell": 8, "line": "1", "after": 7}
    busy = http.post(f"/sandboxes/{sb}/runs", json={"code": "1", "checkpoint": mark})
    assert busy.status_code == 409 and busy.json()["type"].endswith(":sandbox-busy")
    assert snapshot_ids(http) == before
    wait_finished(http, long.json()["id"])
    bad = http.post(f"/sandboxes/{sb}/runs", json={"code": "1", "checkpoint": {"cell": "x"}})
    assert bad.status_code == 400 and "checkpoint" in bad.text
    assert snapshot_ids(http) == before


def test_the_sdk_hands_the_checkpoint_over_before_any_output(daemon, sb):
    seen: list[tuple[str, object]] = []
    mark = {"cell": 9, "line": "print('hi')", "after": 8}
    result = daemon.run_cell(
        sb,
        "print('hi')",
        on_output=lambda name, text: seen.append(("output", text)),
        checkpoint=mark,
        on_checkpoint=lambda snap: seen.append(("checkpoint", snap["checkpoint"])),
    )
    assert result.stdout == "hi\n"
    assert seen[0] == ("checkpoint", mark)
    assert "".join(str(text) for kind, text in seen if kind == "output") == "hi\n"
