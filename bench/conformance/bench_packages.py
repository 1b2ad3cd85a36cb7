"""Test suites of installed packages (numpy, pandas, networkx...),
natively and in a sandbox, with the same interpreter.

Each target is a pytest path (a package's tests directory or file). It runs
natively, then in a fresh sandbox as a subprocess of the guest's Python
(pytest's own process tree, temporary directories and plugins, in the
sandbox), each writing a JUnit report. Per target: tests passed natively,
passed in the sandbox, and every test that passed natively but not in the
sandbox with its message. Writes PACKAGES.md beside this file (the targets
run this time; a target's section is replaced when it is run again). Run by
hand:

    python bench/conformance/bench_packages.py [--python PATH] [--timeout S] TARGET ...

A TARGET may be a path or PACKAGE:SUBDIR (numpy:_core/tests), resolved in
the interpreter's site-packages.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from forkd_jupyter import python_env
from forkd_jupyter.vmm import Sandbox

HERE = Path(__file__).parent
REPORT = HERE / "PACKAGES.md"
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir=/tmp", "-o", "addopts="]


def outcomes(junit: str) -> dict[str, tuple[str, str]]:
    """test id -> (ok | failed | skipped, message)."""
    found = {}
    for case in ET.fromstring(junit).iter("testcase"):
        kinds = {child.tag: child for child in case}
        bad = kinds.get("failure") or kinds.get("error")
        status = "failed" if bad is not None else "skipped" if "skipped" in kinds else "ok"
        message = "" if bad is None else (bad.get("message") or "").splitlines()[0][:200]
        found[f"{case.get('classname', '')}::{case.get('name')}"] = (status, message)
    return found


def resolve(env: python_env.PythonEnv, target: str) -> str:
    if ":" not in target:
        return target
    package, sub = target.split(":", 1)
    code = f"import {package}, os; print(os.path.dirname({package}.__file__))"
    where = subprocess.run([env.executable, "-c", code], capture_output=True, text=True, check=True)
    return str(Path(where.stdout.strip()) / sub)


def run_native(env: python_env.PythonEnv, path: str, timeout: float) -> tuple[dict, float]:
    report = Path("/var/tmp/forkd-bench-native.xml")
    start = time.monotonic()
    subprocess.run(
        [env.executable, *PYTEST, f"--junitxml={report}", path],
        capture_output=True, cwd="/tmp", timeout=timeout,
    )  # fmt: skip
    return outcomes(report.read_text()), time.monotonic() - start


def run_guest(env: python_env.PythonEnv, path: str, timeout: float) -> tuple[dict, float]:
    sb = Sandbox.spawn(memory_mib=4096, layer_mib=3072, python=env)  # suites keep tmp_path dirs
    try:
        sb.push("suite_argv", [env.executable, *PYTEST, "--junitxml=/tmp/suite.xml", path])
        start = time.monotonic()
        result = sb.run(
            "import subprocess\n"
            "subprocess.run(suite_argv, capture_output=True, cwd='/tmp')\n"
            "suite_junit = open('/tmp/suite.xml').read()",
            timeout=timeout,
        )
        took = time.monotonic() - start
        if result.error is not None:
            raise RuntimeError(f"{result.error.ename}: {result.error.evalue}")
        return outcomes(sb.pull("suite_junit")), took
    finally:
        sb.close()


def section(target: str, native: dict, guest: dict, times: tuple[float, float]) -> str:
    ok_native = [t for t, (s, _) in native.items() if s == "ok"]
    ok_guest = sum(1 for s, _ in guest.values() if s == "ok")
    lost = [t for t in ok_native if guest.get(t, ("missing", ""))[0] != "ok"]
    lines = [
        f"## `{target}`",
        "",
        f"{len(ok_native)} passed natively ({times[0]:.0f} s), {ok_guest} in the sandbox "
        f"({times[1]:.0f} s), of {len(native)} collected natively; "
        f"passed natively but not in the sandbox: {len(lost)}.",
        "",
    ]
    for t in lost:
        status, message = guest.get(t, ("missing", ""))
        lines.append(f"- `{t}`: {status} {message}".rstrip())
    return "\n".join(lines).rstrip() + "\n"


def write_report(sections: dict[str, str], header: str) -> None:
    old = REPORT.read_text() if REPORT.exists() else ""
    kept = {m.group(1): m.group(0) for m in re.finditer(r"(?ms)^## `([^`]+)`.*?(?=^## |\Z)", old)}
    kept |= sections
    REPORT.write_text(header + "\n" + "\n".join(kept[k].rstrip() + "\n" for k in sorted(kept)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="+")
    ap.add_argument("--python", default=None, help="interpreter (default: this one)")
    ap.add_argument("--timeout", type=float, default=3000)
    args = ap.parse_args()
    env = python_env.describe(args.python) if args.python else python_env.current()
    sections = {}
    for target in args.targets:
        path = resolve(env, target)
        native, t_native = run_native(env, path, args.timeout)
        guest, t_guest = run_guest(env, path, args.timeout)
        sections[target] = section(target, native, guest, (t_native, t_guest))
        print(sections[target], flush=True)
    header = (
        "# Package test suites: native against sandbox\n\n"
        f"Produced by `bench/conformance/bench_packages.py` with {env.executable} "
        f"(Python {env.version}), on {time.strftime('%Y-%m-%d')}. Each target runs natively, "
        "then in a fresh 4 GiB sandbox (a 3 GiB writable layer) as a subprocess of the "
        "guest's Python; tests are compared by id.\n"
    )
    write_report(sections, header)


if __name__ == "__main__":
    main()
