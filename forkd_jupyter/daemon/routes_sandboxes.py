"""Routes on sandboxes: list, spawn, get, kill, run (streamed), interrupt,
push/pull of pickled values, branch."""

from __future__ import annotations

import asyncio
import base64
import binascii

from tornado.iostream import StreamClosedError

from ..controller import ControllerError
from . import sse
from .base import ApiError, BaseHandler, problem_for


class SandboxesHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"sandboxes": self.tree.list_sandboxes()})

    async def post(self) -> None:
        body = self.body_json()
        snapshot = self.field(body, "snapshot_id", str) or self.field(body, "snapshot_tag", str)
        records = await self.call(
            self.tree.spawn,
            n=self.field(body, "n", int, 1),
            live_fork=self.field(body, "live_fork", bool, True),
            memory_limit_mib=self.field(body, "memory_limit_mib", int),
            snapshot=snapshot,
            name=self.field(body, "name", str),
            python=body.get("python"),  # checked by the controller (environments.resolve)
            preload=body.get("preload"),  # checked by the controller
        )
        self.send_json({"sandboxes": records}, 201)


class SandboxHandler(BaseHandler):
    async def get(self, key: str) -> None:
        self.send_json(self.tree.sandbox(key).to_dict())

    async def delete(self, key: str) -> None:
        self.send_json(await self.call(self.tree.kill, key))


class RunHandler(BaseHandler):
    async def post(self, key: str) -> None:
        body = self.body_json()
        code = self.field(body, "code", str)
        if code is None:
            raise ApiError(400, "code is required")
        timeout = self.field(body, "timeout", (int, float))
        self.tree.running(key)  # 404/409 before a stream starts
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

        sse.start(self)
        task = asyncio.ensure_future(self.call(self.tree.run, key, code, on_output, timeout))
        task.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, None))
        try:
            while (item := await queue.get()) is not None:
                await sse.send(self, *item)
            try:
                await sse.send(self, "result", (await task).to_dict())
            except ControllerError as e:
                await sse.send(self, "error", problem_for(e, e.status, ""))
        except StreamClosedError:
            return  # the client left; the cell still runs to its end
        self.finish()


class InterruptHandler(BaseHandler):
    async def post(self, key: str) -> None:
        await self.call(self.tree.interrupt, key)
        self.send_json({"interrupted": True})


class PushHandler(BaseHandler):
    async def post(self, key: str) -> None:
        body = self.body_json()
        name = self.field(body, "name", str)
        data = self.field(body, "pickle", str)
        if name is None or data is None:
            raise ApiError(400, "name and pickle are required")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ApiError(400, f"pickle is not base64: {e}") from None
        await self.call(self.tree.push, key, name, raw)
        self.send_json({"name": name})


class PullHandler(BaseHandler):
    async def post(self, key: str) -> None:
        name = self.field(self.body_json(), "name", str)
        if name is None:
            raise ApiError(400, "name is required")
        raw = await self.call(self.tree.pull, key, name)
        self.send_json({"name": name, "pickle": base64.b64encode(raw).decode()})


class BranchHandler(BaseHandler):
    async def post(self, key: str) -> None:
        body = self.body_json()
        wait = self.field(body, "wait", bool, True)
        out = await self.call(
            self.tree.branch,
            key,
            mode=self.field(body, "mode", str),
            wait=wait,
            tag=self.field(body, "tag", str),
            diff=self.field(body, "diff", bool, False),
            measure_diff=self.field(body, "measure_diff", bool, False),
            count=self.field(body, "count", int, 0),
        )
        self.send_json(out, 201 if wait else 202)
