"""Cells run by an IPython ``InteractiveShell`` whose display machinery
sends frames.

Constraints of the guest honoured here (IPython 8.x):

* no thread: the HistoryManager is disabled (its SQLite saving thread is
  never created; In/Out/_N history lives in memory as usual) and no
  subprocess is started at init or per cell;
* fast start: the completer (which imports jedi) is built only if
  something asks for ``shell.Completer``;
* the profile directory lives under /tmp (``IPYTHONDIR`` overrides), so
  nothing is written to the user's working directory.
"""

from __future__ import annotations

import os
import sys

from . import lazy_ipython
from .emitter import Emitter
from .errors import error_dict, exception_only, safe_str
from .rehearsal import Kept, rehearse

lazy_ipython.register()

from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.error import UsageError  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets import Type  # noqa: E402
from traitlets.config import Config  # noqa: E402

DEFAULT_IPYTHON_DIR = "/tmp/forkd-ipython"


class FramePublisher(DisplayPublisher):
    """display(), figures and rich output -> ``display`` frames."""

    emitter: Emitter | None = None

    def publish(
        self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs
    ) -> None:
        if self.emitter is None:
            return super().publish(data, metadata, source, transient=transient, update=update)
        fields = {"data": data, "metadata": metadata or {}}
        if transient:
            fields["transient"] = transient
        if update:
            fields["update"] = True
        self.emitter.emit("display", fields)

    def clear_output(self, wait=False) -> None:
        if self.emitter is None:
            return super().clear_output(wait)
        self.emitter.emit("clear_output", {"wait": bool(wait)})


class FrameDisplayHook(DisplayHook):
    """The value of a cell's last expression -> one ``result`` frame."""

    emitter: Emitter | None = None

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict, md_dict=None) -> None:
        if self.emitter is None:
            return super().write_format_data(format_dict, md_dict)
        self.emitter.emit(
            "result",
            {"data": format_dict, "metadata": md_dict or {}, "execution_count": self.prompt_count},
        )

    def finish_displayhook(self) -> None:
        pass


class AgentShell(InteractiveShell):
    displayhook_class = Type(FrameDisplayHook)
    display_pub_class = Type(FramePublisher)

    def init_completer(self) -> None:
        pass  # built lazily, see __getattr__

    def __getattr__(self, name: str):
        if name == "Completer":
            InteractiveShell.init_completer(self)
            return self.__dict__["Completer"]
        raise AttributeError(name)

    def system(self, cmd: str) -> None:
        """``!cmd``, ``%pip``, ``%conda``: run by the shell in this sandbox,
        writing straight to the process's stdout and stderr, which stream
        into the cell as they come. IPython's default pipes them through a
        pseudo-terminal; a sandbox has none."""
        self.system_raw(cmd)

    def enable_gui(self, gui=None) -> None:
        """Only inline figures exist here: there is no GUI event loop."""
        if gui not in (None, "inline"):
            raise UsageError(f"GUI event loop {gui!r} is not available; use %matplotlib inline")

    def _showtraceback(self, etype, evalue, stb) -> None:
        # IPython shows a cell's own failure from run_code, run_cell_async
        # or run_ast_nodes (a statement that fails to compile, an interrupt
        # landing between two statements), directly or through its show*
        # helpers; that one goes into the done frame. Any other call (%tb,
        # library code) is ordinary output, printed as IPython prints it.
        failures = self.__dict__.get("cell_failures")
        if _first_caller_past_show() in _FAILURE_REPORTERS and failures is not None:
            failures.append((evalue, error_dict(etype.__name__, safe_str(evalue), stb)))
        else:
            super()._showtraceback(etype, evalue, stb)


def _code(fn) -> object:
    return getattr(fn, "__wrapped__", fn).__code__


_FAILURE_REPORTERS = frozenset(
    _code(f)
    for f in (
        InteractiveShell.run_code,
        InteractiveShell.run_cell_async,
        InteractiveShell.run_ast_nodes,
    )
)
_SHOW_HELPERS = frozenset(
    _code(f)
    for f in (
        InteractiveShell.showtraceback,
        InteractiveShell.showsyntaxerror,
        InteractiveShell.showindentationerror,
    )
)


def _first_caller_past_show():
    """The code of the first frame above _showtraceback's caller chain that
    is not one of IPython's show* helpers."""
    frame = sys._getframe(2)  # past this function and _showtraceback
    while frame is not None and frame.f_code in _SHOW_HELPERS:
        frame = frame.f_back
    return frame.f_code if frame is not None else None


class IPythonRunner:
    ipython = True

    def __init__(self, emitter: Emitter) -> None:
        config = Config()
        config.HistoryManager.enabled = False
        config.HistoryManager.hist_file = ":memory:"
        ipython_dir = os.environ.get("IPYTHONDIR") or DEFAULT_IPYTHON_DIR
        # instance() makes this the singleton that get_ipython() returns.
        self.shell = AgentShell.instance(config=config, ipython_dir=ipython_dir)
        # (exception, error object) pairs IPython reported as the running
        # cell's failure; emptied at the start and end of every cell.
        self.shell.cell_failures = []
        self.shell.display_pub.emitter = emitter
        self.shell.displayhook.emitter = emitter

    @property
    def user_ns(self) -> dict:
        return self.shell.user_ns

    def last_count(self) -> int:
        """The number of the last cell stored in history (0 before any)."""
        return self.shell.execution_count - 1

    def run(self, code: str, silent: bool, store_history: bool) -> tuple[int, dict | None]:
        shell = self.shell
        shell.cell_failures.clear()
        try:
            result = shell.run_cell(code, store_history=store_history and not silent, silent=silent)
        finally:
            shell.exit_now = False  # exit()/quit() must not stop the agent
        error = None
        if not result.success:
            exc = result.error_before_exec or result.error_in_exec
            reported = [err for value, err in shell.cell_failures if value is exc]
            error = reported[-1] if reported else _fallback_error(exc)
        shell.cell_failures.clear()
        return self.last_count(), error

    def rehearse(self, code: str) -> dict | None:
        """Runs code as a stored cell, then forgets it (rehearsal.py): the
        execution count, In, Out, the _ and _i names, the display hook's
        and the history's own records are as before."""
        shell = self.shell
        hm = shell.history_manager
        kept = Kept()
        kept.dicts(
            shell.user_ns, shell.user_ns_hidden, hm.output_hist, hm.output_hist_reprs,
            shell.compile._filename_map,
        )  # fmt: skip
        kept.lists(hm.input_hist_parsed, hm.input_hist_raw, hm.db_input_cache, hm.db_output_cache)
        kept.attrs(hm, "_i00", "_i", "_ii", "_iii")
        kept.attrs(shell.displayhook, "_", "__", "___")
        kept.attrs(shell, "execution_count", "last_execution_result", "last_execution_succeeded")
        flagged = hm.save_flag.is_set()
        try:
            return rehearse(self.run, kept, code)
        finally:
            if not flagged:
                hm.save_flag.clear()


def _fallback_error(exc: BaseException | None) -> dict:
    """A failure IPython reported without a traceback (a UsageError, which
    it printed to stderr as one line): the exception alone, as IPython shows it."""
    if exc is None:
        return error_dict("Error", "the cell failed", [])
    return exception_only(exc)
