"""The Ray cluster the daemon spreads children over: join it, list its
nodes (docs/cluster.md)."""

from __future__ import annotations

import re

from .base import BaseHandler
from .validate import bad

# "auto" (the cluster this machine is part of), a GCS address host:port, or
# a Ray Client address ray://host:port. Ray's "local" (start a new cluster
# inside the daemon) is refused: a daemon joins clusters, it does not run one.
ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,5})$")


class ClusterHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json(await self.call(self.tree.cluster_info))

    async def post(self) -> None:
        body = self.json_body()
        address = body.text("address", required=True)
        body.done()
        if not ADDRESS.match(address):
            raise bad("address", 'must be "auto", host:port or ray://host:port')
        self.send_json(await self.call(self.tree.join_cluster, address))
