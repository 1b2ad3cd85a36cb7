"""`forkd-jupyter mcp` end to end over stdio: the official MCP client
(ClientSession) against the server as a subprocess and a real daemon with
real KVM sandboxes. Every tool, images, errors, progress and resources."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp_helpers import error_text, resource_json, stdio_session, structured

pytestmark = [pytest.mark.kvm, pytest.mark.usefixtures("daemon"), pytest.mark.timeout(300)]

TOOLS = {
    "spawn",
    "spawn_from_snapshot",
    "list_sandboxes",
    "kill",
    "interrupt",
    "run_cell",
    "compare",
    "branch",
    "snapshots",
    "delete_snapshot",
    "tree",
    "read_file",
    "write_file",
}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mcp_agent_session.py"


def run(coro):
    return asyncio.run(coro)


def test_every_tool_is_listed_with_typed_input_and_output_schemas():
    async def go():
        async with stdio_session() as mcp:
            return (await mcp.list_tools()).tools

    tools = {t.name: t for t in run(go())}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.description, tool.name
    assert tools["run_cell"].input_schema["required"] == ["code", "sandbox"]
    assert {"ok", "stdout", "error", "images"} <= set(tools["run_cell"].output_schema["properties"])
    mode = tools["branch"].input_schema["properties"]["mode"]
    assert "live" in json.dumps(mode) and "full" in json.dumps(mode)


def test_spawn_run_branch_compare_files_and_cleanup():
    async def go():
        async with stdio_session() as mcp:

            async def call(tool, **args):
                return structured(await mcp.call_tool(tool, args))

            [src] = (await call("spawn", memory_mib=256, name="mcp-src"))["sandboxes"]
            assert src["status"] == "running" and src["name"] == "mcp-src"
            cell = await call("run_cell", sandbox="mcp-src", code="x = 40\nprint('set')\nx + 2")
            assert (cell["ok"], cell["result"], cell["stdout"]) == (True, "42", "set\n")

            put = await call("write_file", sandbox=src["id"], path="/sandbox/n.txt", content="é1")
            assert put["size"] == len("é1".encode())
            got = await call("read_file", sandbox=src["id"], path="/sandbox/n.txt")
            assert (got["kind"], got["encoding"], got["content"]) == ("file", "utf-8", "é1")
            raw = base64.b64encode(b"\x00\xff\x10").decode()
            await call(
                "write_file",
                sandbox=src["id"],
                path="/sandbox/b.bin",
                content=raw,
                encoding="base64",
            )
            got = await call("read_file", sandbox=src["id"], path="/sandbox/b.bin")
            assert (got["encoding"], got["content"]) == ("base64", raw)
            listing = await call("read_file", sandbox=src["id"], path="/sandbox")
            assert {"n.txt", "b.bin"} <= {e["name"] for e in listing["entries"]}

            branch = await call("branch", sandbox=src["id"], n=3, mode="live", tag="mcp-fork")
            snap, kids = branch["snapshot"], [c["id"] for c in branch["children"]]
            assert snap["status"] == "ready" and snap["mode"] == "live" and len(kids) == 3
            assert snap["pause_ms"] is not None and snap["stall_ms"] is not None
            for i, kid in enumerate(kids):
                await call("run_cell", sandbox=kid, code=f"x = x * {i + 1}")
            compared = await call("compare", expression="x", sandboxes=[src["id"], *kids])
            assert [a["result"] for a in compared["answers"]] == ["40", "40", "80", "120"]
            assert [a["sandbox"] for a in compared["answers"]] == [src["id"], *kids]
            assert compared["distinct"] == 3
            # A child sees the source's files as they were at the branch.
            got = await call("read_file", sandbox=kids[0], path="/sandbox/n.txt")
            assert got["content"] == "é1"

            [listed] = (await call("snapshots", snapshot="mcp-fork"))["snapshots"]
            assert listed["id"] == snap["id"] and sorted(listed["children"]) == sorted(kids)
            assert snap["id"] in {s["id"] for s in (await call("snapshots"))["snapshots"]}
            [late] = (await call("spawn_from_snapshot", snapshot="mcp-fork"))["sandboxes"]
            cell = await call("run_cell", sandbox=late["id"], code="x")
            assert cell["result"] == "40"

            tree = await call("tree")
            edges = {(e["source"], e["target"], e["kind"]) for e in tree["edges"]}
            assert (src["id"], snap["id"], "branch") in edges
            assert {(snap["id"], k, "spawn") for k in [*kids, late["id"]]} <= edges

            killed = await call("kill", sandbox=kids[0])
            assert killed["status"] == "dead" and killed["exit_reason"] == "killed"
            gone = await call("kill", sandbox=kids[0], remove=True)
            assert gone["id"] == kids[0]
            ids = {s["id"] for s in (await call("list_sandboxes"))["sandboxes"]}
            assert kids[0] not in ids and src["id"] in ids

            refused = await mcp.call_tool("delete_snapshot", {"snapshot": snap["id"]})
            assert kids[1] in error_text(refused)  # names the dependents
            deleted = await call("delete_snapshot", snapshot=snap["id"], cascade=True)
            assert snap["id"] in deleted["deleted"]
            live = (await call("list_sandboxes", include_dead=False))["sandboxes"]
            assert {s["id"] for s in live} & {*kids, late["id"]} == set()
            await call("kill", sandbox=src["id"])

    run(go())


def test_a_matplotlib_cell_returns_its_figure_as_png_image_content():
    async def go():
        async with stdio_session() as mcp:
            [sb] = structured(await mcp.call_tool("spawn", {"memory_mib": 512}))["sandboxes"]
            code = (
                "import matplotlib.pyplot as plt\n"
                "fig, ax = plt.subplots()\nax.plot([1, 3, 2])\nplt.show()\n'drawn'"
            )
            result = await mcp.call_tool("run_cell", {"sandbox": sb["id"], "code": code})
            await mcp.call_tool("kill", {"sandbox": sb["id"]})
            return result

    result = run(go())
    cell = structured(result)
    assert cell["images"] == 1 and cell["result"] == "'drawn'"
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    assert base64.b64decode(images[0].data).startswith(b"\x89PNG\r\n\x1a\n")


def test_bad_input_gives_tool_errors_with_the_daemons_problem_and_the_server_goes_on():
    async def go():
        async with stdio_session() as mcp:
            [sb] = structured(await mcp.call_tool("spawn", {"memory_mib": 256}))["sandboxes"]
            sid = sb["id"]
            texts = {
                "unknown sandbox": error_text(
                    await mcp.call_tool("run_cell", {"sandbox": "sb-9999", "code": "1"})
                ),
                "unknown kill": error_text(await mcp.call_tool("kill", {"sandbox": "nope"})),
                "unknown snapshot": error_text(
                    await mcp.call_tool("snapshots", {"snapshot": "snap-9999"})
                ),
                "n out of range": error_text(await mcp.call_tool("spawn", {"n": 0})),
                "wrong type": error_text(await mcp.call_tool("branch", {"sandbox": sid, "n": "x"})),
                "missing argument": error_text(await mcp.call_tool("run_cell", {"sandbox": sid})),
                "bad mode": error_text(
                    await mcp.call_tool("branch", {"sandbox": sid, "mode": "sideways"})
                ),
                "bad base64": error_text(
                    await mcp.call_tool(
                        "write_file",
                        {
                            "sandbox": sid,
                            "path": "/sandbox/x",
                            "content": "%%",
                            "encoding": "base64",
                        },
                    )
                ),
                "missing file": error_text(
                    await mcp.call_tool("read_file", {"sandbox": sid, "path": "/sandbox/none"})
                ),
                "relative path": error_text(
                    await mcp.call_tool(
                        "write_file", {"sandbox": sid, "path": "../x", "content": "a"}
                    )
                ),
                "name taken": error_text(
                    await mcp.call_tool("spawn", {"name": sid, "memory_mib": 256})
                ),
                "compare unknown": error_text(
                    await mcp.call_tool("compare", {"expression": "1", "sandboxes": [sid, "zz"]})
                ),
            }
            try:  # a tool error, or a protocol error the SDK raises
                unknown_tool = error_text(await mcp.call_tool("no_such_tool", {}))
            except Exception as e:
                unknown_tool = str(e)
            # A guest exception is the cell's result, not a tool error.
            cell = structured(await mcp.call_tool("run_cell", {"sandbox": sid, "code": "1/0"}))
            still = structured(await mcp.call_tool("list_sandboxes", {}))
            await mcp.call_tool("kill", {"sandbox": sid})
            return texts, unknown_tool, cell, still, sid

    texts, unknown_tool, cell, still, sid = run(go())
    assert "Not found" in texts["unknown sandbox"] and "sb-9999" in texts["unknown sandbox"]
    assert "nope" in texts["unknown kill"]
    assert "snap-9999" in texts["unknown snapshot"]
    assert "greater than or equal to 1" in texts["n out of range"]
    assert "n" in texts["wrong type"] and "integer" in texts["wrong type"]
    assert "code" in texts["missing argument"]
    assert "sideways" in texts["bad mode"] or "live" in texts["bad mode"]
    assert "base64" in texts["bad base64"]
    assert "/sandbox/none" in texts["missing file"]
    assert texts["relative path"]  # the daemon's 400, as title: detail
    assert "zz" in texts["compare unknown"]
    assert texts["name taken"].startswith("Error executing tool spawn: ")
    assert "name" in texts["name taken"].split(": ", 1)[1]  # the daemon's title and detail
    assert "no_such_tool" in unknown_tool or "Unknown tool" in unknown_tool
    assert cell["ok"] is False and cell["error"]["ename"] == "ZeroDivisionError"
    assert "ZeroDivisionError" in cell["error"]["traceback"]
    assert sid in {s["id"] for s in still["sandboxes"]}


def test_a_running_cell_can_be_interrupted_and_the_sandbox_goes_on():
    async def go():
        async with stdio_session() as mcp:
            [sb] = structured(await mcp.call_tool("spawn", {"memory_mib": 256}))["sandboxes"]
            sid = sb["id"]
            await mcp.call_tool("run_cell", {"sandbox": sid, "code": "n = 0"})
            results = {}

            async def loop():
                code = "while True:\n    n += 1"
                results["cell"] = await mcp.call_tool("run_cell", {"sandbox": sid, "code": code})

            async with anyio.create_task_group() as tg:
                tg.start_soon(loop)
                await anyio.sleep(1.0)
                results["interrupt"] = await mcp.call_tool("interrupt", {"sandbox": sid})
            after = structured(await mcp.call_tool("run_cell", {"sandbox": sid, "code": "n > 0"}))
            await mcp.call_tool("kill", {"sandbox": sid})
            return results, after

    results, after = run(go())
    cell = structured(results["cell"])
    assert cell["ok"] is False and cell["error"]["ename"] == "KeyboardInterrupt"
    assert structured(results["interrupt"])["status"] == "running"
    assert after["result"] == "True"  # the state survived the interrupt


def test_long_operations_report_progress():
    async def go():
        async with stdio_session() as mcp:
            [sb] = structured(await mcp.call_tool("spawn", {"memory_mib": 512}))["sandboxes"]
            sid = sb["id"]
            await mcp.call_tool(
                "run_cell", {"sandbox": sid, "code": "data = bytearray(300 * 2**20)"}
            )
            branch_progress, cell_progress = [], []

            async def on_branch(progress, total, message):
                branch_progress.append((progress, total, message))

            async def on_cell(progress, total, message):
                cell_progress.append((progress, total, message, anyio.current_time()))

            branch = await mcp.call_tool(
                "branch", {"sandbox": sid, "mode": "full", "n": 0}, progress_callback=on_branch
            )
            code = (
                "import time\nfor i in range(3):\n    print('step', i, flush=True)\n"
                "    time.sleep(0.4)\n'end'"
            )
            cell = await mcp.call_tool(
                "run_cell", {"sandbox": sid, "code": code}, progress_callback=on_cell
            )
            ended = anyio.current_time()
            await mcp.call_tool("kill", {"sandbox": sid})
            return structured(branch), branch_progress, structured(cell), cell_progress, ended

    branch, branch_progress, cell, cell_progress, ended = run(go())
    assert branch["snapshot"]["mode"] == "full" and branch["snapshot"]["status"] == "ready"
    assert len(branch_progress) >= 2
    values = [p for p, _, _ in branch_progress]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert branch_progress[-1][0] == branch_progress[-1][1]  # the last says: done
    assert "full" in branch_progress[0][2]
    assert cell["result"] == "'end'"
    steps = [m for _, _, m, _ in cell_progress if "step" in m]
    assert len(steps) == 3 and "[stdout] step 0" in steps[0]
    # Output arrived while the cell ran, not with its result.
    first_step = next(t for _, _, m, t in cell_progress if "step 0" in m)
    assert ended - first_step > 0.5


def test_resources_list_read_and_notify_subscribers():
    updates: list[str] = []

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    async def go():
        async with stdio_session(message_handler=on_message) as mcp:
            [sb] = structured(await mcp.call_tool("spawn", {"memory_mib": 256}))["sandboxes"]
            listed = {str(r.uri) for r in (await mcp.list_resources()).resources}
            tree = resource_json(await mcp.read_resource("forkd://tree"))
            record = resource_json(await mcp.read_resource(f"forkd://sandboxes/{sb['id']}"))
            try:
                await mcp.read_resource("forkd://sandboxes/sb-9999")
                missing = "no error"
            except Exception as e:
                missing = str(e)
            await mcp.subscribe_resource("forkd://tree")
            await mcp.subscribe_resource(f"forkd://sandboxes/{sb['id']}")
            await mcp.call_tool("kill", {"sandbox": sb["id"]})
            with anyio.fail_after(20):
                while f"forkd://sandboxes/{sb['id']}" not in updates:
                    await anyio.sleep(0.05)
            after = resource_json(await mcp.read_resource(f"forkd://sandboxes/{sb['id']}"))
            return sb, listed, tree, record, missing, after

    sb, listed, tree, record, missing, after = run(go())
    assert {"forkd://tree", f"forkd://sandboxes/{sb['id']}"} <= listed
    assert sb["id"] in {n["id"] for n in tree["nodes"]}
    assert record["id"] == sb["id"] and record["status"] == "running"
    assert "sb-9999" in missing
    assert "forkd://tree" in updates
    assert after["status"] == "dead"


def test_the_agent_session_example_keeps_the_right_branch(daemon):
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count(">>> run_cell") == 6 and ">>> compare" in out
    kept = re.search(r"kept (sb-\d+) \(drop-missing\)", out)
    assert kept, out
    live = [s["id"] for s in daemon.list_sandboxes() if s["status"] == "running"]
    assert kept.group(1) in live
    assert out.count(">>> kill") == 3  # the source and the two other branches
    daemon.kill_sandbox(kept.group(1))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_session_outlives_a_daemon_restart(tmp_path, monkeypatch):
    """The server starts the user's daemon when needed, and again when a
    tool call finds it stopped; the session goes on."""
    from forkd_jupyter.client import Controller

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    monkeypatch.setenv("FORKD_JUPYTER_STATE_DIR", str(state))
    monkeypatch.setenv("FORKD_JUPYTER_SOCKET", str(state / "own.sock"))
    monkeypatch.setenv("FORKD_JUPYTER_URL", f"unix://{state / 'own.sock'}")

    async def go():
        async with stdio_session() as mcp:
            [first] = structured(await mcp.call_tool("spawn", {"memory_mib": 256}))["sandboxes"]
            with Controller(autostart=False) as own:
                pid = own.health()["pid"]
                own.shutdown_daemon()
            with anyio.fail_after(60):
                while _alive(pid):  # it stopped its sandboxes and exited
                    await anyio.sleep(0.05)
            after = structured(await mcp.call_tool("list_sandboxes", {}))
            [again] = structured(await mcp.call_tool("spawn", {"memory_mib": 256}))["sandboxes"]
            cell = structured(
                await mcp.call_tool("run_cell", {"sandbox": again["id"], "code": "7"})
            )
            with Controller(autostart=False) as own:
                new_pid = own.health()["pid"]
                own.shutdown_daemon()
            return first, pid, after, cell, new_pid

    first, pid, after, cell, new_pid = run(go())
    assert new_pid != pid
    # The restarted daemon reports the first one's sandbox as dead, with the reason.
    [old] = [s for s in after["sandboxes"] if s["id"] == first["id"]] or [None]
    assert old is None or old["status"] == "dead"
    assert cell["result"] == "7"
