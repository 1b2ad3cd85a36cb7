"""Running a `%%forkd` cell in sandboxes and showing what it produced as a
normal cell would: streamed stdout/stderr, rich displays, the last
expression as the cell's result, the guest's traceback on failure.

Invariant: the SDK call runs on a worker thread and the kernel's main
thread only waits, writes output and forwards the notebook's interrupt
(KeyboardInterrupt) to the sandbox; so output is always written from the
main thread (attributed to this cell) and an interrupt never tears the
HTTP stream."""

from __future__ import annotations

import html
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from IPython.display import clear_output, display, publish_display_data

from ..client import Controller, ForkdError
from ..run_result import RunResult
from . import tracebacks

POLL_S = 0.05


class GuestCellError(Exception):
    """The cell raised in the sandbox. IPython shows the guest's own
    traceback (``_render_traceback_``) and marks the cell failed."""

    def __init__(self, sandbox: str, ename: str, evalue: str, traceback: list[str]) -> None:
        super().__init__(f"{ename} in sandbox {sandbox}" + (f": {evalue}" if evalue else ""))
        self.sandbox, self.ename, self.evalue = sandbox, ename, evalue
        self.traceback_lines = traceback

    def _render_traceback_(self) -> list[str]:
        return list(self.traceback_lines) or [f"{self.ename}: {self.evalue}"]


@dataclass
class GuestValue:
    """The cell's last expression, shown as its Out[] result."""

    bundle: dict
    metadata: dict

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict, dict]:
        return self.bundle, self.metadata


@dataclass
class Outcome:
    sandbox: str
    result: RunResult | None = None
    error: ForkdError | None = None
    failure: BaseException | None = None  # anything else that ended the call
    finished: threading.Event = field(default_factory=threading.Event)


def run_cells(
    controller: Controller,
    sandboxes: list[str],
    code: str,
    stream: bool,
    checkpoint: dict | None = None,
    on_checkpoint: Callable[[dict], None] | None = None,
) -> list[Outcome]:
    """Runs ``code`` in every sandbox at once and waits for all. With
    ``stream`` (one sandbox) output is written as it arrives; otherwise
    it stays in each outcome's result. ``checkpoint``, ``on_checkpoint``:
    a checkpoint before the cell, in its run request (Controller.run_cell).

    Invariants: the main thread never waits on ``Thread.join`` (a join cut
    by KeyboardInterrupt can leave a running thread looking finished); a
    worker queues all its output before setting ``finished`` (then a
    wake-up, so the main thread never waits out a poll), so once every
    worker is finished and the queue is empty nothing is left to write, and
    a KeyboardInterrupt landing anywhere in the loop loses no completion."""
    chunks: queue.Queue = queue.Queue()  # ("stdout"|"stderr", text)
    outcomes = [Outcome(s) for s in sandboxes]

    def ask(prompt: str, password: bool) -> str | None:
        """The guest's input(): asked in the notebook from the main thread
        (the kernel's own input() talks to the frontend)."""
        reply: queue.Queue = queue.Queue()
        chunks.put(("input", (prompt, password, reply)))
        return reply.get()

    def work(outcome: Outcome) -> None:
        emit = (lambda name, text: chunks.put((name, text))) if stream else None
        live = (lambda kind, fields: chunks.put(("display", (kind, fields)))) if stream else None
        try:
            outcome.result = controller.run_cell(
                outcome.sandbox,
                code,
                on_output=emit,
                on_input=ask if stream else None,
                on_display=live,
                checkpoint=checkpoint,
                on_checkpoint=on_checkpoint,
            )
        except ForkdError as e:
            outcome.error = e
        except BaseException as e:  # noqa: BLE001 - reported to the cell, never lost
            outcome.failure = e
        finally:
            outcome.finished.set()
            chunks.put(("finished", None))  # wakes the main thread at once

    for o in outcomes:
        threading.Thread(target=work, args=(o,), daemon=True).start()
    while True:
        try:  # the end is tested inside: an interrupt may land there too
            if all(o.finished.is_set() for o in outcomes) and chunks.empty():
                break
            try:
                name, text = chunks.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if name == "finished":
                continue
            if name == "input":
                text[2].put(_ask_notebook(*text[:2]))
                continue
            if name == "display":
                show_live(*text)
                continue
            (sys.stderr if name == "stderr" else sys.stdout).write(text)
        except KeyboardInterrupt:
            _interrupt_all(controller, [o.sandbox for o in outcomes if not o.finished.is_set()])
    return outcomes


def _ask_notebook(prompt: str, password: bool) -> str | None:
    """The notebook's answer, or None (end of input) when it has none."""
    import getpass

    sys.stdout.flush()
    try:
        return getpass.getpass(prompt) if password else input(prompt)
    except (EOFError, RuntimeError, OSError):  # a frontend that takes no input
        return None


def _interrupt_all(controller: Controller, sandboxes: list[str]) -> None:
    """Forwards the notebook's interrupt. Every press is forwarded: a guest
    drops an interrupt that lands between requests, so a second press must
    still reach it. The guests end their cells with KeyboardInterrupt."""
    for sandbox in sandboxes:
        try:
            controller.interrupt(sandbox)
        except (ForkdError, KeyboardInterrupt):
            pass


def show_live(kind: str, fields: dict) -> None:
    """One display or clear_output of a running cell, in the notebook as the
    guest made it (a guest display id names the same display here, so an
    update_display replaces it in place)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if kind == "clear_output":
        clear_output(wait=bool(fields.get("wait")))
        return
    extra = {"update": True} if fields.get("update") else {}
    publish_display_data(
        fields.get("data") or {},
        fields.get("metadata") or {},
        transient=fields.get("transient") or None,
        **extra,
    )


def show(result: RunResult, streamed: bool) -> GuestValue | None:
    """Writes what the run produced (stdout/stderr and the displays, unless
    they were already shown as they came) and returns the cell's value, if
    any."""
    if not streamed:
        if result.stdout:
            sys.stdout.write(result.stdout)
        if result.stderr:
            sys.stderr.write(result.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if not streamed:
        for bundle, metadata in zip(result.displays, _metadata(result), strict=True):
            publish_display_data(bundle, metadata)
    if result.result is None:
        return None
    return GuestValue(result.result, result.result_metadata or {})


def _metadata(result: RunResult) -> list[dict]:
    md = list(result.display_metadata)
    return md + [{}] * (len(result.displays) - len(md))


def guest_error(sandbox: str, result: RunResult, numbers: dict[int, int]) -> GuestCellError:
    """The cell's failure as the notebook shows it: one line for what a
    sandbox cannot do yet, else the guest's traceback (tracebacks.py);
    ``numbers``: the sandbox's cell counts -> the notebook's."""
    e = result.error
    return GuestCellError(sandbox, e.ename, e.evalue, error_lines(result, numbers))


def error_lines(result: RunResult, numbers: dict[int, int]) -> list[str]:
    e = result.error
    lines = tracebacks.rewrite(list(e.traceback), numbers)
    one_line = tracebacks.unsupported(e, lines)
    return lines if one_line is None else [one_line]


def show_labelled(label: str, outcome: Outcome, numbers: dict[int, int]) -> None:
    """One sandbox's part of a ``--each`` cell, under its label."""
    publish_display_data(
        {
            "text/plain": f"── {label} ──",
            "text/html": f"<div class='forkd-label'><b>── {html.escape(label)} ──</b></div>",
        }
    )
    if outcome.result is None:  # the call itself failed: the daemon's word, or the exception
        sys.stderr.write(f"{outcome.error.detail if outcome.error else outcome.failure!r}\n")
        return
    value = show(outcome.result, streamed=False)
    if value is not None:
        display(value)
    if outcome.result.error is not None:
        sys.stderr.write("\n".join(error_lines(outcome.result, numbers)) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
