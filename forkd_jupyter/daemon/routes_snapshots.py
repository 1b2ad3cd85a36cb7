"""Routes on snapshots, the tree, the timings and the event stream."""

from __future__ import annotations

import asyncio

from tornado.iostream import StreamClosedError

from . import sse
from .base import ApiError, BaseHandler

PING_INTERVAL_S = 15.0


class SnapshotsHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"snapshots": self.tree.list_snapshots()})


class SnapshotHandler(BaseHandler):
    async def get(self, key: str) -> None:
        self.send_json(self.tree.snapshot_dict(key))

    async def delete(self, key: str) -> None:
        cascade = self.query_flag("cascade")
        self.send_json({"deleted": await self.call(self.tree.delete_snapshot, key, cascade)})


class SaveSnapshotHandler(BaseHandler):
    async def post(self, key: str) -> None:
        self.send_json(await self.call(self.tree.save_snapshot, key))


class TreeHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json(self.tree.tree())


class TimingsHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"branches": self.tree.timings()})


class EventsHandler(BaseHandler):
    """One subscriber per connection. The bus calls ``deliver`` on whatever
    thread changed a record; events reach the IO loop through the queue."""

    async def get(self) -> None:
        since_arg = self.get_query_argument("since", None)
        try:
            since = None if since_arg is None else int(since_arg)
        except ValueError:
            raise ApiError(400, "since must be an integer") from None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        unsubscribe = self.tree.events.subscribe(
            lambda ev: loop.call_soon_threadsafe(queue.put_nowait, ev), since
        )
        sse.start(self)
        try:
            await sse.send(self, "hello", {"seq": self.tree.events.seq})
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), PING_INTERVAL_S)
                except asyncio.TimeoutError:
                    await sse.send(self, "ping", {"seq": self.tree.events.seq})
                    continue
                await sse.send(self, event["type"], event)
        except StreamClosedError:
            pass
        finally:
            unsubscribe()
