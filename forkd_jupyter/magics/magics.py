"""The `%forkd` line magic and the `%%forkd` cell magic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..client import ForkdError
from . import attach, cell, process_commands, time_travel, tracebacks  # noqa: F401 - they register
from .session import Session, usage_error
from .subcommands import SUBCOMMANDS, run_subcommand

LINE_DOC = """Sandboxes you can fork: `%forkd SUB-COMMAND [options]`.

Sub-commands (spawn, use and branch return handles you can assign, e.g.
`kids = %forkd branch -n 3`, then `kids[0].run("x")`; pull returns the value):

"""


@magics_class
class ForkdMagics(Magics):
    def __init__(self, shell, session: Session | None = None) -> None:
        super().__init__(shell)
        self.session = session or Session()

    @line_magic
    def forkd(self, line: str) -> Any:
        return run_subcommand(self.session, self.shell, line)

    @cell_magic("forkd")
    @magic_arguments()
    @argument("name", nargs="?", help="sandbox to run in (default: the current one)")
    @argument("--each", metavar="A,B,C", help="run in each of these sandboxes at once")
    @argument(
        "--attached",
        action="store_true",
        help="how attach mode runs a cell: in the attached sandbox, after a checkpoint",
    )
    def forkd_cell(self, line: str, cell_code: str) -> Any:
        """Run this cell inside a sandbox: `%%forkd [NAME]`, or
        `%%forkd --each A,B,C` for several at once (outputs under labels).
        Output streams as produced; a guest exception fails the cell; the
        notebook's interrupt button interrupts the sandbox."""
        args = parse_argstring(self.forkd_cell, line)
        try:
            if args.attached:
                return self._run_attached(cell_code)
            if args.each:
                return self._run_each(args.each, cell_code)
            return self._run_one(args.name, cell_code)
        except ForkdError as e:
            raise usage_error(e) from None

    def _resolve(self, name: str | None) -> str:
        if name is None:
            return self.session.require_current()
        return self.session.controller.get_sandbox(name)["id"]

    def _run_attached(self, code: str) -> Any:
        att = self.session.attachment
        if att is None:
            raise UsageError("this notebook is not attached: `%forkd attach [NAME]` first")
        count = self.shell.execution_count
        controller = self.session.controller
        mark = attach.checkpoint_mark(att, count, code) if att.checkpoints else None
        try:
            return self._stream_in(
                att.sandbox, None, code, mark, lambda snap: attach.count_checkpoint(att, snap)
            )
        finally:
            att.last_cell, att.at = count, None
            if att.checkpoints:
                attach.trim_in_background(controller, att)

    def _run_one(self, name: str | None, code: str) -> Any:
        return self._stream_in(self._resolve(name), name, code)

    def _stream_in(
        self,
        sandbox: str,
        name: str | None,
        code: str,
        checkpoint: dict | None = None,
        on_checkpoint: Callable[[dict], None] | None = None,
    ) -> Any:
        [outcome] = cell.run_cells(
            self.session.controller, [sandbox], code, stream=True,
            checkpoint=checkpoint, on_checkpoint=on_checkpoint,
        )  # fmt: skip
        if outcome.error is not None:
            raise self._dead_current_hint(sandbox, name, outcome.error)
        if outcome.failure is not None:
            raise outcome.failure
        numbers = self.session.remember_cell(
            sandbox, outcome.result.execution_count, self.shell.execution_count
        )
        value = cell.show(outcome.result, streamed=True)
        if outcome.result.error is not None:
            raise cell.guest_error(sandbox, outcome.result, numbers)
        return value

    def _dead_current_hint(self, sandbox: str, name: str | None, error: ForkdError) -> Exception:
        """A cell refused because the current sandbox died (killed, the
        daemon restarted) says so and names the ways on."""
        if name is None and error.status == 409:
            try:
                record = self.session.controller.get_sandbox(sandbox)
            except ForkdError:
                record = {"status": "dead"}
            if record.get("status") == "dead":
                reason = record.get("exit_reason")
                why = f" ({reason})" if reason else ""
                return UsageError(
                    f"the current sandbox {sandbox} is dead{why}: `%forkd spawn` for a fresh "
                    "one, or `%forkd use NAME` for another"
                )
        return usage_error(error)

    def _run_each(self, names: str, code: str) -> None:
        labels = [n.strip() for n in names.split(",") if n.strip()]
        if not labels:
            raise UsageError("--each needs sandbox names separated by commas")
        sandboxes = [self._resolve(n) for n in labels]
        outcomes = cell.run_cells(self.session.controller, sandboxes, code, stream=False)
        for label, sandbox, outcome in zip(labels, sandboxes, outcomes, strict=True):
            count = outcome.result.execution_count if outcome.result is not None else None
            numbers = self.session.remember_cell(sandbox, count, self.shell.execution_count)
            cell.show_labelled(label, outcome, numbers)
        failed = [
            label
            for label, o in zip(labels, outcomes, strict=True)
            if o.result is None or o.result.error is not None
        ]
        if failed:
            raise UsageError(f"the cell failed in {', '.join(failed)}")


def _line_doc() -> str:
    parts = [LINE_DOC]
    for fn in SUBCOMMANDS.values():
        parts.append(fn.__doc__.rstrip() + "\n\n")
    return "".join(parts)


ForkdMagics.forkd.__doc__ = _line_doc()
ForkdMagics.forkd_cell.parser.prog = "%forkd"  # shown as %%forkd
ForkdMagics.forkd_cell.__doc__ = ForkdMagics.forkd_cell.parser.format_help()
