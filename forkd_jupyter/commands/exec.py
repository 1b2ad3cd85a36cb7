"""`exec`: a program run once in a sandbox, as `docker exec` runs one.

Its stdout and stderr are printed when it ends (each kept up to
--max-output bytes), and the command exits with the program's exit code
(128 + N when signal N killed it, 124 when --timeout did). --json prints
the whole result instead."""

from __future__ import annotations

import argparse
import sys

from .common import CommandError, add_json_flag, connect, print_json, register

TIMED_OUT = 124


def _exec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sandbox", metavar="SANDBOX", help="id or name")
    parser.add_argument("argv", nargs="*", metavar="CMD",
                        help="the program and its arguments, after --")  # fmt: skip
    parser.add_argument("--cwd", metavar="DIR", help="working directory in the sandbox")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="NAME=VALUE",
                        help="add to the program's environment (repeatable)")  # fmt: skip
    parser.add_argument("--stdin", action="store_true",
                        help="send this command's standard input to the program")  # fmt: skip
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="kill the program (its process group) after this long")  # fmt: skip
    parser.add_argument("--max-output", type=int, metavar="BYTES",
                        help="keep at most this much of each output (default 1 MiB)")  # fmt: skip
    add_json_flag(parser)


def _environment(pairs: list[str]) -> dict[str, str] | None:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CommandError(f"--env wants NAME=VALUE, not {pair!r}")
        env[name] = value
    return env or None


def _exec(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        args.parser.error("give the program to run after --")
    result = connect().run_process(
        args.sandbox,
        argv,
        env=_environment(args.env),
        cwd=args.cwd,
        stdin=sys.stdin.read() if args.stdin else None,
        timeout=args.timeout,
        max_output_bytes=args.max_output,
    )
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(result["stdout"])
        sys.stdout.flush()
        sys.stderr.write(result["stderr"])
        for stream in ("stdout", "stderr"):
            if result[f"{stream}_truncated"]:
                print(f"forkd-jupyter: the program's {stream} was cut", file=sys.stderr)
    if result["timed_out"]:
        return TIMED_OUT
    code = result["exit_code"]
    return 128 - code if code < 0 else code


register("exec", "run a program once in a sandbox (exit code, output)", _exec_args, _exec)
