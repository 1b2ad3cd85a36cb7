"""Guest agent entry point, started in the sandbox as
``python3.11 -u /opt/forkd/agent.py``.

It serves control requests on fd 3 (docs/agent-protocol.md) until the host
asks it to shut down or closes the channel. Its modules are the
``forkd_agent`` package beside this file; this directory is the import root
(the host package is not importable in the guest)."""

import os
import sys
import time

_STARTED = time.perf_counter()
_AGENT_DIR = os.path.dirname(os.path.abspath(__file__))
if sys.path[:1] != [_AGENT_DIR]:  # e.g. under python -P
    sys.path.insert(0, _AGENT_DIR)

from forkd_agent.main import main  # noqa: E402  (the start time is taken first)

if __name__ == "__main__":
    sys.exit(main(started=_STARTED, agent_dir=_AGENT_DIR))
