"""The Python environment a sandbox runs: the notebook kernel's interpreter
exactly as the kernel sees it (a venv's ``bin/python``, a conda env's, a
pyenv or distro interpreter), with its ``sys.prefix``, site-packages, user
site and ``PYTHONPATH`` package directories.

An environment is described by the interpreter itself: in-process for the
caller's own (:func:`current`), or by running it (:func:`describe`), which is
what the daemon does with the interpreter path a client sends, so the paths a
guest may read come from the interpreter, never from a request body.
docs/filesystem.md says what a guest may read for each layout.
"""

from __future__ import annotations

import glob
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass

# Paths the sandbox owns: an environment inside them would be hidden by the
# guest's own writable layer.
GUEST_OWNED = ("/tmp", "/sandbox", "/opt/forkd")
MIN_VERSION = (3, 10)
DESCRIBE_TIMEOUT_S = 30


class PythonEnvError(ValueError):
    """An interpreter that cannot be a sandbox's environment, with the reason."""


def _self_description() -> dict:
    """Runs inside the interpreter being described (any CPython >= 3.10):
    what it would put on sys.path, and where it lives. Standalone: it is
    also sent as source to other interpreters."""
    import os
    import site
    import sys
    import sysconfig

    def is_site_dir(path):
        return os.path.basename(os.path.normpath(path)) in ("site-packages", "dist-packages")

    user_site = None
    # Run isolated (-I, by describe), the interpreter says what a kernel
    # started normally would add: its user site, when the directory exists.
    if site.ENABLE_USER_SITE or sys.flags.isolated:
        candidate = site.getusersitepackages()
        if os.path.isdir(candidate):
            user_site = candidate
    package_dirs = []
    for entry in list(sys.path) + list(site.getsitepackages()):
        if entry and is_site_dir(entry) and os.path.isdir(entry):
            package_dirs.append(os.path.abspath(entry))
    pythonpath = [
        os.path.abspath(p)
        for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if p and os.path.isdir(p)
    ]
    paths = sysconfig.get_paths()
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    shared = sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname
    return {
        "libpython": os.path.join(libdir, soname) if shared else None,
        "stdlib_dirs": sorted({paths["stdlib"], paths["platstdlib"]}),
        "include_dirs": sorted(
            {p for p in (paths.get("include"), paths.get("platinclude")) if p and os.path.isdir(p)}
        ),
        "executable": os.path.abspath(sys.executable),
        "elf": os.path.realpath(sys.executable),
        "version": ".".join(str(n) for n in sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "exec_prefix": sys.exec_prefix,
        "base_exec_prefix": sys.base_exec_prefix,
        "libdir": sysconfig.get_config_var("LIBDIR"),
        "package_dirs": package_dirs,
        "user_base": site.getuserbase() if user_site else None,
        "user_site": user_site,
        "pythonpath": pythonpath,
    }


@dataclass(frozen=True)
class PythonEnv:
    executable: str  # sys.executable as the kernel sees it: the guest's argv[0]
    elf: str  # the real ELF behind it, which the VMM loads
    version: str
    prefix: str
    base_prefix: str
    exec_prefix: str
    base_exec_prefix: str
    libdir: str | None  # sysconfig's LIBDIR
    libpython: str | None  # the shared libpython the ELF loads, if it is a shared build
    stdlib_dirs: tuple[str, ...]  # the standard library, pure and platform (lib-dynload)
    package_dirs: tuple[str, ...]  # site-packages and dist-packages on sys.path
    user_base: str | None  # PYTHONUSERBASE for the guest when the user site is in use
    user_site: str | None
    pythonpath: tuple[str, ...]  # PYTHONPATH entries that are package directories
    include_dirs: tuple[str, ...] = ()  # its C headers (Python.h), to build extensions

    @classmethod
    def from_description(cls, data: dict) -> PythonEnv:
        if data.get("implementation") != "cpython":
            raise PythonEnvError(f"{data.get('executable')} is not CPython")
        version = tuple(int(x) for x in str(data["version"]).split(".")[:2])
        if version < MIN_VERSION:
            raise PythonEnvError(
                f"{data['executable']} is Python {data['version']}; sandboxes need "
                f"{'.'.join(map(str, MIN_VERSION))} or newer"
            )
        env = cls(
            executable=data["executable"],
            elf=data["elf"],
            version=data["version"],
            prefix=data["prefix"],
            base_prefix=data["base_prefix"],
            exec_prefix=data["exec_prefix"],
            base_exec_prefix=data["base_exec_prefix"],
            libdir=data.get("libdir") or None,
            libpython=data.get("libpython") or None,
            stdlib_dirs=tuple(data.get("stdlib_dirs") or ()),
            package_dirs=tuple(data.get("package_dirs") or ()),
            user_base=data.get("user_base"),
            user_site=data.get("user_site"),
            pythonpath=tuple(p for p in data.get("pythonpath") or () if _package_dir_ok(p)),
            include_dirs=tuple(data.get("include_dirs") or ()),
        )
        env._check()
        return env

    def _check(self) -> None:
        with open(self.elf, "rb") as f:
            if f.read(4) != b"\x7fELF":
                raise PythonEnvError(f"{self.executable} is not an ELF executable (a shim?)")
        for path in (self.executable, self.elf, self.prefix, self.base_prefix):
            if path_under(path, GUEST_OWNED):
                raise PythonEnvError(
                    f"the Python environment at {path} lies under "
                    f"{next(r for r in GUEST_OWNED if path_under(path, (r,)))}, which a sandbox "
                    "keeps as its own: create the environment elsewhere"
                )

    def read_only_roots(self) -> list[str]:
        """Host paths the guest may read: exactly what running the
        interpreter as the kernel runs it and importing its packages needs,
        never a whole prefix (a distro Python's is /usr): the ELF and the
        name the kernel starts it by (a venv's bin/python) with every link
        on the way from it to the ELF, the directory of programs beside it
        (pip, jupyter, the environment's scripts), a venv's pyvenv.cfg, the standard library (with
        lib-dynload), libpython of a shared build, and the package
        directories, and its C headers (building an extension in the
        sandbox). System libraries, programs and the C toolchain are added
        by the VMM."""
        roots = [self.elf, *link_chain(self.executable), *self.scripts_dirs]
        pyvenv_cfg = os.path.join(self.prefix, "pyvenv.cfg")
        if self.prefix != self.base_prefix and os.path.isfile(pyvenv_cfg):
            roots.append(pyvenv_cfg)
        roots += self.stdlib_dirs
        if self.libpython:
            roots.append(self.libpython)
        roots += self.package_dirs
        if self.user_site:
            roots.append(self.user_site)
        roots += self.pythonpath
        roots += self.include_dirs
        unique: list[str] = []
        for root in map(os.path.abspath, roots):
            if root not in unique and not path_under(root, GUEST_OWNED) and os.path.lexists(root):
                unique.append(root)
        return unique

    @property
    def scripts_dir(self) -> str:
        """The directory of the environment's programs (bin/ of a venv)."""
        return os.path.dirname(os.path.abspath(self.executable))

    @property
    def scripts_dirs(self) -> list[str]:
        """Where the environment's programs are, in PATH order: its own
        directory, then, for a venv that sees its base's site-packages
        (--system-site-packages), the base's bin/, where the programs of
        those packages are (meson, pytest, jupyter of the base)."""
        dirs = [self.scripts_dir]
        base_bin = os.path.join(self.base_prefix, "bin")
        sees_base = any(path_under(d, (self.base_prefix,)) for d in self.package_dirs)
        if self.prefix != self.base_prefix and sees_base and os.path.isdir(base_bin):
            dirs.append(base_bin)
        return dirs

    def guest_variables(self) -> dict[str, str]:
        """Environment variables that give the guest the same sys.path."""
        variables = {}
        if self.pythonpath:
            variables["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        if self.user_base:
            variables["PYTHONUSERBASE"] = self.user_base
        else:
            variables["PYTHONNOUSERSITE"] = "1"
        return variables

    def to_json(self) -> dict:
        return asdict(self)


def link_chain(path: str, limit: int = 40) -> list[str]:
    """path and every symbolic link met on the way to what it names, one
    hop at a time: a venv's bin/python may name pyenv's bin/python, itself a
    link to bin/python3.11, and the guest resolves each hop in its view."""
    chain = [os.path.abspath(path)]
    while os.path.islink(chain[-1]) and len(chain) < limit:
        target = os.readlink(chain[-1])
        chain.append(os.path.normpath(os.path.join(os.path.dirname(chain[-1]), target)))
    return chain


def path_under(path: str, roots: Iterable[str]) -> bool:
    """Whether path is one of roots or lies below one."""
    path = os.path.abspath(path)
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _package_dir_ok(path: str) -> bool:
    """A PYTHONPATH entry is made readable unless it is too broad to be a
    package directory: "/", the home directory or one of its ancestors."""
    path = os.path.abspath(path)
    home = os.path.abspath(os.path.expanduser("~"))
    return path != "/" and not (home == path or home.startswith(path.rstrip("/") + "/"))


def current() -> PythonEnv:
    """The environment of the interpreter running this code."""
    return PythonEnv.from_description(_self_description())


def _looks_like_cpython(executable: str) -> None:
    """Only a CPython interpreter is ever run to describe itself: an ELF
    named python[X[.Y]] next to a standard library (the landmark CPython's
    own start-up looks for). Anything else is refused unrun."""
    real = os.path.realpath(executable)
    try:
        with open(real, "rb") as f:
            magic = f.read(4)
    except OSError:
        magic = b""
    if magic != b"\x7fELF":
        raise PythonEnvError(f"{executable} is not a usable Python: not an ELF interpreter")
    if not re.fullmatch(r"python(\d+(\.\d+)?)?", os.path.basename(real)):
        raise PythonEnvError(f"{executable} is not a usable Python: not named python")
    lib = os.path.join(os.path.dirname(os.path.dirname(real)), "lib")
    if not glob.glob(os.path.join(glob.escape(lib), "python3*", "os.py")):
        raise PythonEnvError(f"{executable} is not a usable Python: no standard library beside it")


def describe(executable: str, pythonpath: list[str] | None = None) -> PythonEnv:
    """The environment of another interpreter, as that interpreter reports it
    (started isolated, -I, so nothing but the interpreter itself decides what
    runs), with ``pythonpath`` as the PYTHONPATH package directories a kernel
    of it would add. Raises PythonEnvError with the reason."""
    if not isinstance(executable, str) or not os.path.isabs(executable):
        raise PythonEnvError("python must be an absolute path to an interpreter")
    if not os.access(executable, os.X_OK) or os.path.isdir(executable):
        raise PythonEnvError(f"{executable} is not an executable file")
    _looks_like_cpython(executable)
    source = inspect.getsource(_self_description)
    code = f"{source}\nimport json\nprint(json.dumps(_self_description()))\n"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    try:
        out = subprocess.run(
            [executable, "-I", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=DESCRIBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PythonEnvError(f"{executable} could not be run: {e}") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PythonEnvError(f"{executable} is not a usable Python: {tail[0]}")
    try:
        data = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError, AttributeError):
        raise PythonEnvError(f"{executable} did not describe itself") from None
    if not isinstance(data, dict):
        raise PythonEnvError(f"{executable} did not describe itself")
    data["pythonpath"] = [os.path.abspath(p) for p in pythonpath or () if os.path.isdir(p)]
    return PythonEnv.from_description(data)


def client_request() -> dict:
    """What a client sends to spawn a sandbox of its own environment: its
    interpreter and PYTHONPATH (the daemon describes the interpreter itself)."""
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"executable": os.path.abspath(sys.executable), "pythonpath": pythonpath}
