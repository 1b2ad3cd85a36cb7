"""Cells run by ``exec`` when IPython is unavailable: same frames, and the
history names an IPython user expects (``In``, ``Out``, ``_``, ``__``,
``___``, ``_N``, ``_i``, ``_ii``, ``_iii``, ``_iN``) and ``display()``.
No magics. The cell's last expression statement is its result.

Invariant: ``count`` is the number the next stored cell gets; a cell is
stored (In, count) before it runs, so a failing cell still uses a number,
as in IPython.
"""

from __future__ import annotations

import ast
import builtins
import codeop
import linecache
import sys
import types

from . import mime
from .emitter import Emitter
from .errors import from_exception
from .rehearsal import Kept, rehearse


class PlainRunner:
    ipython = False

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.count = 1
        self.compiler = codeop.Compile()  # keeps __future__ flags across cells
        module = types.ModuleType("__main__")
        module.__dict__["__builtins__"] = builtins
        # User classes and functions pickle as __main__.<name>.
        sys.modules["__main__"] = module
        self.module = module
        self.In: list[str] = [""]
        self.Out: dict[int, object] = {}
        module.__dict__.update(
            In=self.In,
            Out=self.Out,
            display=self.display,
            _="",
            __="",
            ___="",
            _i="",
            _ii="",
            _iii="",
        )

    @property
    def user_ns(self) -> dict:
        return self.module.__dict__

    def last_count(self) -> int:
        return self.count - 1

    def display(
        self, *objs: object, raw: bool = False, metadata: dict | None = None, **kwargs: object
    ) -> None:
        """Sends each object as a ``display`` frame (raw: obj is a bundle)."""
        for obj in objs:
            if raw and isinstance(obj, dict):
                data, md = obj, {}
            else:
                data, md = mime.bundle(obj)
            if metadata:
                md = {**md, **metadata}
            self.emitter.emit("display", {"data": data, "metadata": md})

    def run(self, code: str, silent: bool, store_history: bool) -> tuple[int, dict | None]:
        store = store_history and not silent
        number = self.count
        if store:
            self._store_input(number, code)
            self.count += 1
        filename = f"<cell-{number}>" if store else "<cell>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            value = self._execute(code, filename)
        except BaseException as e:  # the cell's failure, whatever it is
            return self.last_count(), from_exception(e, user_file_prefix="<cell")
        if value is not None and not silent:
            data, md = mime.bundle(value)
            if store:
                self._store_output(number, value)
            self.emitter.emit("result", {"data": data, "metadata": md, "execution_count": number})
        return self.last_count(), None

    def rehearse(self, code: str) -> dict | None:
        """Runs code as a stored cell, then forgets it (rehearsal.py)."""
        kept = Kept()
        kept.dicts(self.module.__dict__, self.Out)
        kept.lists(self.In)
        kept.attrs(self, "count")
        return rehearse(self.run, kept, code)

    def _execute(self, code: str, filename: str) -> object:
        tree = ast.parse(code, filename=filename)
        ns = self.module.__dict__
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        if tree.body:
            exec(self.compiler(tree, filename, "exec"), ns)
        if last is not None:
            return eval(self.compiler(last, filename, "eval"), ns)
        return None

    def _store_input(self, number: int, code: str) -> None:
        ns = self.module.__dict__
        self.In.append(code)
        ns.update(_iii=ns.get("_ii", ""), _ii=ns.get("_i", ""), _i=code)
        ns[f"_i{number}"] = code

    def _store_output(self, number: int, value: object) -> None:
        ns = self.module.__dict__
        self.Out[number] = value
        ns.update(___=ns.get("__", ""), __=ns.get("_", ""), _=value)
        ns[f"_{number}"] = value
