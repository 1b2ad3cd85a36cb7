"""The `forkd-jupyter` subcommands that talk to the daemon, one module per
group. Each module registers its subcommands with ``cli.add_command`` when
imported; ``forkd_jupyter.cli`` imports them. They use only the SDK
(``forkd_jupyter.client``), never the VMM."""

import importlib

# In the order `forkd-jupyter --help` lists them.
COMMAND_MODULES = (
    "demo",
    "sandboxes",
    "run",
    "exec",
    "processes",
    "terminal",
    "snapshots",
    "tree",
    "bases",
    "cluster",
    "bench",
    "daemon_control",
    "mcp",
)

for _module in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_module}")
