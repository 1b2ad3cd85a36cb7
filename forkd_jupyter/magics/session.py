"""One kernel's view of the daemon: its SDK connection (made on first use)
and its *current* sandbox, where `%%forkd` cells run by default.

Invariant: ``current`` is a sandbox id or None; every change goes through
``set_current``, which also tells the JupyterLab panel (best effort, in the
background: a missing server never slows a cell)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from IPython.core.error import UsageError

from ..client import Controller, DaemonUnavailable, ForkdError

Listener = Callable[[str | None], None]


class Session:
    def __init__(self, controller: Controller | None = None) -> None:
        self._controller = controller
        self.current: str | None = None
        self.attachment = None  # attach.Attachment while cells run in a sandbox
        self._listeners: list[Listener] = []
        # sandbox -> its count of each `%%forkd` cell -> the notebook's number
        self._cell_numbers: dict[str, dict[int, int]] = {}

    @property
    def controller(self) -> Controller:
        if self._controller is None:
            try:
                self._controller = Controller()
            except DaemonUnavailable as e:
                raise usage_error(e) from None
            except ValueError as e:
                raise UsageError(str(e)) from None
        return self._controller

    def set_attachment(self, attachment) -> None:
        """Attach mode starts (an ``attach.Attachment``) or ends (None);
        the listeners hear it as a change of the current sandbox."""
        self.attachment = attachment
        for listener in list(self._listeners):
            listener(self.current)

    def on_current_change(self, listener: Listener) -> None:
        """Widgets register here to highlight the current sandbox (and to
        follow attach mode, see set_attachment)."""
        self._listeners.append(listener)

    def remove_current_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def set_current(self, sandbox_id: str | None) -> None:
        self.current = sandbox_id
        for listener in list(self._listeners):
            listener(sandbox_id)
        threading.Thread(target=_tell_lab, args=(sandbox_id,), daemon=True).start()

    def remember_cell(self, sandbox: str, guest: int | None, notebook: int) -> dict[int, int]:
        """Notes that the sandbox's cell ``guest`` was the notebook's cell
        ``notebook``; returns every such pair known for the sandbox (its
        tracebacks name the notebook's cells)."""
        numbers = self._cell_numbers.setdefault(sandbox, {})
        if guest is not None:
            numbers[guest] = notebook
        return numbers

    def require_current(self) -> str:
        if self.current is None:
            raise UsageError("no current sandbox: `%forkd spawn` or `%forkd use NAME` first")
        return self.current

    def close(self) -> None:
        if self._controller is not None:
            self._controller.close()
            self._controller = None


def _tell_lab(sandbox_id: str | None) -> None:
    try:
        from ..labext.report import report_current_sandbox
    except ImportError:
        return
    report_current_sandbox(sandbox_id)


# The daemon's own hints name the CLI; in a notebook the magic is the way.
_CLI_DOCTOR_HINT = re.compile(r"[;,]? *\(?run `forkd-jupyter doctor`\)?")


def usage_error(error: ForkdError) -> UsageError:
    """One line for the user, from the daemon's problem document."""
    first_line = next(iter((error.detail or error.title).splitlines()), "daemon error")
    if error.type.endswith(":kvm-unavailable"):
        cause = _CLI_DOCTOR_HINT.sub("", first_line).strip()
        return UsageError(f"KVM is not usable on this machine ({cause}): run `%forkd doctor`")
    if isinstance(error, DaemonUnavailable):
        return UsageError(f"{first_line} (see `%forkd doctor`)")
    return UsageError(first_line)
