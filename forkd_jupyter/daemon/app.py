"""The tornado application: the route table of docs/rest-api.md."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import tornado.web

from ..controller import SandboxTree
from . import routes_bases as B
from . import routes_cluster as C
from . import routes_files as F
from . import routes_meta as M
from . import routes_processes as X
from . import routes_runs as R
from . import routes_sandboxes as S
from . import routes_snapshots as P
from .base import NotFoundHandler

# One thread per in-flight blocking call: a running cell holds one for its
# whole duration, so the pool must exceed the clients expected at once.
WORKERS = 128
# The server's own cap; each route's body_limit (checked first) is lower.
MAX_BODY_BYTES = F.UPLOAD_LIMIT + 1
MAX_HEADER_BYTES = 256 << 10  # a longer request target gets a 414, not a dropped connection

_ID = r"([^/]+)"
ROUTES = [
    (r"/v1/health", M.HealthHandler),
    (r"/v1/version", M.VersionHandler),
    (r"/v1/openapi.json", M.OpenApiHandler),
    (r"/v1/doctor", M.DoctorHandler),
    (r"/v1/shutdown", M.ShutdownHandler),
    (r"/v1/sandboxes", S.SandboxesHandler),
    (rf"/v1/sandboxes/{_ID}", S.SandboxHandler),
    (rf"/v1/sandboxes/{_ID}/run", S.RunHandler),
    (rf"/v1/sandboxes/{_ID}/runs", R.SandboxRunsHandler),
    (rf"/v1/runs/{_ID}", R.RunHandler),
    (rf"/v1/runs/{_ID}/events", R.RunEventsHandler),
    (rf"/v1/runs/{_ID}/interrupt", R.RunInterruptHandler),
    (rf"/v1/runs/{_ID}/cancel", R.RunCancelHandler),
    (rf"/v1/runs/{_ID}/stdin", R.RunStdinHandler),
    (rf"/v1/sandboxes/{_ID}/interrupt", S.InterruptHandler),
    (rf"/v1/sandboxes/{_ID}/push", S.PushHandler),
    (rf"/v1/sandboxes/{_ID}/pull", S.PullHandler),
    (rf"/v1/sandboxes/{_ID}/processes/run", S.ProcessRunHandler),
    (rf"/v1/sandboxes/{_ID}/processes", X.ProcessesHandler),
    (rf"/v1/sandboxes/{_ID}/processes/{_ID}", X.ProcessHandler),
    (rf"/v1/sandboxes/{_ID}/processes/{_ID}/stdin", X.ProcessStdinHandler),
    (rf"/v1/sandboxes/{_ID}/processes/{_ID}/stop", X.ProcessStopHandler),
    (rf"/v1/sandboxes/{_ID}/processes/{_ID}/kill", X.ProcessKillHandler),
    (rf"/v1/sandboxes/{_ID}/processes/{_ID}/logs", X.ProcessLogsHandler),
    (rf"/v1/sandboxes/{_ID}/terminals", X.TerminalsHandler),
    (rf"/v1/sandboxes/{_ID}/terminals/{_ID}", X.TerminalHandler),
    (rf"/v1/sandboxes/{_ID}/terminals/{_ID}/resize", X.TerminalResizeHandler),
    (rf"/v1/sandboxes/{_ID}/terminals/{_ID}/ws", X.TerminalSocketHandler),
    (rf"/v1/sandboxes/{_ID}/branch", S.BranchHandler),
    (rf"/v1/sandboxes/{_ID}/files", F.FilesHandler),
    (rf"/v1/sandboxes/{_ID}/stat", F.StatHandler),
    (rf"/v1/sandboxes/{_ID}/mkdir", F.MkdirHandler),
    (rf"/v1/sandboxes/{_ID}/move", F.MoveHandler),
    (rf"/v1/sandboxes/{_ID}/tar", F.TarHandler),
    (r"/v1/snapshots", P.SnapshotsHandler),
    (rf"/v1/snapshots/{_ID}", P.SnapshotHandler),
    (rf"/v1/snapshots/{_ID}/save", P.SaveSnapshotHandler),
    (rf"/v1/snapshots/{_ID}/fold", P.FoldSnapshotHandler),
    (r"/v1/tree", P.TreeHandler),
    (r"/v1/timings", P.TimingsHandler),
    (r"/v1/events", P.EventsHandler),
    (r"/v1/bases", B.BasesHandler),
    (rf"/v1/bases/{_ID}", B.BaseItemHandler),
    (r"/v1/cluster", C.ClusterHandler),
]


def make_app(
    tree: SandboxTree, token: str | None, request_stop: Callable[[], None]
) -> tornado.web.Application:
    return tornado.web.Application(
        ROUTES,
        default_handler_class=NotFoundHandler,
        tree=tree,
        token=token,
        request_stop=request_stop,
        executor=ThreadPoolExecutor(WORKERS, thread_name_prefix="daemon-call"),
        started=time.monotonic(),
    )
