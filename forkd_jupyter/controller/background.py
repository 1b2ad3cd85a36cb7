"""Starting, reading and cancelling background runs (controller/runs.py),
as methods of the SandboxTree (which provides ``claim_for_run``,
``execute``, ``interrupt``, ``runs`` and the id counters)."""

from __future__ import annotations

import threading

from .. import vmm
from . import errors as E
from .runs import Run


class BackgroundRuns:
    def start_run(
        self, key: str, code: str, timeout: float | None = None, checkpoint: dict | None = None
    ) -> Run:
        """Starts a cell in the background; its output and result are kept
        in the returned run (controller/runs.py) whoever listens. With
        ``checkpoint`` (a cell's mark, records.py) a notebook checkpoint, a
        diff of the sandbox, is taken first, once the sandbox is claimed for
        the cell: a cell refused (busy, dead) gets none, and a checkpoint
        refused (the daemon's limits) leaves the cell unrun and the sandbox
        idle. Its record is the run's ``checkpoint``. One request instead of
        a branch and then a run: the notebook pays one round trip a cell.
        When the cell ends, the next checkpoint is taken ahead (ahead.py):
        the next checkpointed cell finds it made."""
        rec, vm = self.claim_for_run(key, code, keep_prepared=checkpoint is not None)
        taken = None
        if checkpoint is not None:
            try:
                taken = self.adopt_prepared(rec, checkpoint)
                if taken is None:
                    taken = self.branch(rec.id, mode="diff", checkpoint=checkpoint)["snapshot"]
            except BaseException:
                with self._lock:
                    rec.busy = False
                self._changed(rec, "updated")
                raise
        with self._lock:
            run = Run(self._new_id("run", "run"), rec.id, checkpoint=taken)
        self.runs.add(run)

        def body() -> None:
            def out(name: str, text: str) -> None:
                run.add("stream", {"name": name, "text": text})

            def ask(prompt: str, password: bool) -> None:
                run.waiting_input = True
                run.add("input_request", {"prompt": prompt, "password": password})

            def show(kind: str, fields: dict) -> None:  # display / clear_output, live
                run.add(kind, fields)

            ahead = checkpoint is not None
            try:
                result = self.execute(rec, vm, code, out, timeout, ask, show, prepare=ahead)
                run.finish("cancelled" if run.cancel_requested else "done", result.to_dict(), None)
            except E.ControllerError as e:
                status = "cancelled" if run.cancel_requested else "failed"
                run.finish(status, None, e.problem())
            finally:
                if ahead:  # once the result is out
                    self.prepare_checkpoint(rec, vm)

        threading.Thread(target=body, name=run.id, daemon=True).start()
        return run

    def run_record(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise E.NotFound(f"no run {run_id!r}")
        return run

    def run_input(self, run_id: str, value: str | None) -> Run:
        """Answers the run's waiting ``input()`` (None: end of input)."""
        run = self.run_record(run_id)
        with self._lock:
            if run.finished or not run.waiting_input:
                raise E.RunNotWaiting(f"run {run.id} is not waiting for input", id=run.id)
            run.waiting_input = False
            _, vm = self.running(run.sandbox_id)
        try:
            vm.send_input(value)
        except vmm.SandboxError as e:
            raise E.SandboxDead(f"sandbox {run.sandbox_id}: {e}", id=run.sandbox_id) from None
        return run

    def cancel_run(self, run_id: str) -> Run:
        """Interrupts the run's cell; it ends ``cancelled``."""
        run = self.run_record(run_id)
        if not run.finished:
            run.cancel_requested = True
            run.waiting_input = False  # the interrupt ends an input() wait too
            try:
                self.interrupt(run.sandbox_id)
            except E.SandboxDead:
                pass
        return run
