"""An agent-style session with `forkd-jupyter mcp`, through the official MCP
client over stdio: spawn a sandbox, load data, branch it three ways, try a
different fix in each child, compare, keep the best and kill the rest (the source too).

    python examples/mcp_agent_session.py

It prints each tool call and its answer, as a transcript (docs/mcp.md)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

# The server reaches the same daemon as this script (FORKD_JUPYTER_URL...).
SERVER = StdioServerParameters(
    command=sys.executable, args=["-m", "forkd_jupyter", "mcp"], env=dict(os.environ)
)

LOAD = """\
import random
random.seed(7)
rows = [{"id": i, "price": random.choice([9.5, 12.0, None, 3.25, None])} for i in range(10_000)]
def mean_price(rows):
    prices = [r["price"] for r in rows]
    return sum(prices) / len(prices)   # the bug: None prices
len(rows)"""

FIXES = {
    "drop-missing": "def mean_price(rows):\n"
    "    prices = [r['price'] for r in rows if r['price'] is not None]\n"
    "    return sum(prices) / len(prices)",
    "missing-as-zero": "def mean_price(rows):\n"
    "    prices = [r['price'] or 0.0 for r in rows]\n"
    "    return sum(prices) / len(prices)",
    "median": "def mean_price(rows):\n"
    "    import statistics\n"
    "    return statistics.median(r['price'] for r in rows if r['price'] is not None)",
}


def show(tool: str, args: dict, result) -> dict:
    shown = {k: (v if len(str(v)) < 60 else str(v)[:57] + "...") for k, v in args.items()}
    print(f">>> {tool}({json.dumps(shown)})")
    data = result.structured_content or {}
    text = result.content[0].text if result.content else ""
    print("    " + (text if result.is_error else json.dumps(_brief(tool, data))))
    return data


def _brief(tool: str, data: dict) -> dict:
    if tool in ("spawn", "spawn_from_snapshot"):
        return {"sandboxes": [s["id"] for s in data["sandboxes"]]}
    if tool == "branch":
        snap = data["snapshot"]
        return {
            "snapshot": snap["id"],
            "mode": snap["mode"],
            "pause_ms": round(snap["pause_ms"], 3),
            "children": [c["id"] for c in data["children"]],
        }
    if tool == "run_cell":
        return {k: data[k] for k in ("ok", "result", "stdout") if data.get(k) not in (None, "")} | (
            {"error": data["error"]["ename"]} if data.get("error") else {}
        )
    if tool == "compare":
        return {a["sandbox"]: a["result"] for a in data["answers"]}
    if tool == "kill":
        return {"id": data["id"], "status": data["status"]}
    return data


async def main() -> dict:
    async with stdio_client(SERVER) as (read, write), ClientSession(read, write) as mcp:
        await mcp.initialize()

        async def call(tool: str, **args) -> dict:
            return show(tool, args, await mcp.call_tool(tool, args))

        [source] = (await call("spawn", memory_mib=512))["sandboxes"]
        await call("run_cell", sandbox=source["id"], code=LOAD)
        await call("run_cell", sandbox=source["id"], code="mean_price(rows)")
        branch = await call("branch", sandbox=source["id"], n=len(FIXES), mode="live")
        children = [c["id"] for c in branch["children"]]
        for child, fix in zip(children, FIXES.values(), strict=True):
            await call("run_cell", sandbox=child, code=fix)
        answers = await call("compare", expression="round(mean_price(rows), 3)", sandboxes=children)
        # Keep the branch whose answer is the mean of the known prices.
        known = {a["sandbox"]: a["result"] for a in answers["answers"]}
        expected = await call(
            "run_cell",
            sandbox=source["id"],
            code="ps = [r['price'] for r in rows if r['price'] is not None]\n"
            "round(sum(ps) / len(ps), 3)",
        )
        keep = next(sb for sb, value in known.items() if value == expected["result"])
        for other in [source["id"], *children]:
            if other != keep:
                await call("kill", sandbox=other)
        print(f"kept {keep} ({dict(zip(children, FIXES, strict=True))[keep]})")
        return {"source": source["id"], "children": children, "kept": keep}


if __name__ == "__main__":
    asyncio.run(main())
