"""Warm bases (controller.bases): list them, remove one."""

from __future__ import annotations

from .base import BaseHandler


class BasesHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"bases": self.tree.bases.list()})


class BaseItemHandler(BaseHandler):
    async def delete(self, key: str) -> None:
        self.send_json(await self.call(self.tree.bases.remove, key))
