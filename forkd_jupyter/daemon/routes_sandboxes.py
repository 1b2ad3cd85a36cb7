"""Routes on sandboxes: list, spawn, get, kill, run (streamed), interrupt,
push/pull of pickled values, branch.

Invariant: every body is read and validated whole (``Body.done``) before
the controller is called, so a bad field never leaves a half-done action."""

from __future__ import annotations

import asyncio
import base64
import binascii

from tornado.iostream import StreamClosedError

from ..controller import MAX_CHILDREN, ControllerError
from ..vmm.snapshot import MODES
from . import sse
from .base import MIB, BaseHandler, problem_for
from .routes_processes import program_fields
from .validate import bad

MEMORY_RANGE = (64, 65536)


class SandboxesHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"sandboxes": self.tree.list_sandboxes()})

    async def post(self) -> None:
        body = self.json_body()
        n = body.integer("n", 1, MAX_CHILDREN, 1)
        live_fork = body.boolean("live_fork", True)
        memory = body.integer("memory_limit_mib", *MEMORY_RANGE)
        snap_id, snap_tag = body.text("snapshot_id"), body.text("snapshot_tag")
        name = body.name("name")
        python = body.checked_elsewhere("python")  # controller.environments
        preload = body.checked_elsewhere("preload")  # controller.bases.module_names
        spread = body.boolean("spread", False)
        body.done()
        if snap_id is not None and snap_tag is not None:
            raise bad("snapshot_tag", "give snapshot_id or snapshot_tag, not both")
        if name is not None and n != 1:
            raise bad("name", "a name can only be given when spawning one sandbox")
        records = await self.call(
            self.tree.spawn,
            n=n,
            live_fork=live_fork,
            memory_limit_mib=memory,
            snapshot=snap_id or snap_tag,
            name=name,
            python=python,
            preload=preload,
            spread=spread,
        )
        self.send_json({"sandboxes": records}, 201)


class SandboxHandler(BaseHandler):
    async def get(self, key: str) -> None:
        self.send_json(self.tree.sandbox(key).to_dict())

    async def delete(self, key: str) -> None:
        self.send_json(await self.call(self.tree.kill, key))


class RunHandler(BaseHandler):
    body_limit = 16 * MIB

    async def post(self, key: str) -> None:
        body = self.json_body()
        code = body.text("code", required=True)
        timeout = body.timeout()
        body.done()
        self.tree.claim_idle(key)  # 404 / 409 (dead or busy) before a stream starts
        if "text/event-stream" not in self.request.headers.get("Accept", ""):
            result = await self.call(self.tree.run, key, code, None, timeout)
            self.send_json(result.to_dict())
            return
        await self._stream(key, code, timeout)

    async def _stream(self, key: str, code: str, timeout: float | None) -> None:
        """Output events are queued from the VMM's thread and written here in
        order; the result (or the problem) is always the last event."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def on_output(name: str, text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("stream", {"name": name, "text": text}))

        def on_display(kind: str, fields: dict) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, fields))

        sse.start(self)
        task = asyncio.ensure_future(
            self.call(self.tree.run, key, code, on_output, timeout, on_display)
        )
        task.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, None))
        seq = 0
        try:
            while (item := await queue.get()) is not None:
                seq += 1
                await sse.send(self, *item, event_id=seq)
            try:
                await sse.send(self, "result", (await task).to_dict(), event_id=seq + 1)
            except ControllerError as e:
                await sse.send(self, "error", problem_for(e, e.status, ""), event_id=seq + 1)
        except StreamClosedError:
            return  # the client left; the cell still runs to its end
        self.finish()


class InterruptHandler(BaseHandler):
    async def post(self, key: str) -> None:
        self.json_body().done()
        await self.call(self.tree.interrupt, key)
        self.send_json({"interrupted": True})


class PushHandler(BaseHandler):
    body_limit = 256 * MIB

    async def post(self, key: str) -> None:
        body = self.json_body()
        name = _identifier(body.text("name", required=True))
        data = body.text("pickle", required=True)
        body.done()
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise bad("pickle", f"is not base64: {e}") from None
        await self.call(self.tree.push, key, name, raw)
        self.send_json({"name": name})


class PullHandler(BaseHandler):
    async def post(self, key: str) -> None:
        body = self.json_body()
        name = _identifier(body.text("name", required=True))
        body.done()
        raw = await self.call(self.tree.pull, key, name)
        self.send_json({"name": name, "pickle": base64.b64encode(raw).decode()})


class ProcessRunHandler(BaseHandler):
    """A program run once: {argv, env, cwd, stdin, timeout,
    max_output_bytes} in, its exit code and capped output out."""

    body_limit = 16 * MIB

    async def post(self, key: str) -> None:
        body = self.json_body()
        fields = program_fields(body)
        argv = fields.pop("argv")
        options = {
            **fields,
            "stdin": body.text("stdin", max_len=8 * MIB),
            "timeout": body.timeout(),
            "max_output_bytes": body.integer("max_output_bytes", 0, 64 * MIB, 1 * MIB),
        }
        body.done()
        self.send_json(await self.call(self.tree.exec, key, argv, **options))


def _identifier(name: str) -> str:
    if not name.isidentifier() or len(name) > 256:
        raise bad("name", f"{name[:80]!r} is not a Python identifier")
    return name


class BranchHandler(BaseHandler):
    async def post(self, key: str) -> None:
        body = self.json_body()
        mode = body.choice("mode", tuple(MODES))
        wait = body.boolean("wait", True)
        tag = body.name("tag")
        diff = body.boolean("diff", False)
        measure_diff = body.boolean("measure_diff", False)
        count = body.integer("count", 0, MAX_CHILDREN, 0)
        spread = body.boolean("spread", False)
        checkpoint = body.checkpoint()
        body.done()
        out = await self.call(
            self.tree.branch,
            key,
            mode=mode,
            wait=wait,
            tag=tag,
            diff=diff,
            measure_diff=measure_diff,
            count=count,
            spread=spread,
            checkpoint=checkpoint,
        )
        self.send_json(out, 201 if wait else 202)
