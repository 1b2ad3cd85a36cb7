"""Code compiled in the sandbox: the C toolchain runs there (the compiler's
own programs, headers and the linker), and what it builds in the writable
layer runs as on Linux: a program (exec, /proc/self/exe), a shared object
(ctypes), a venv whose interpreter is a copy. The dynamic loader a program
names is looked up in the sandbox's view, never on the host."""

from __future__ import annotations

import errno
import os

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm

PROGRAM = r"""
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int twice(int x) { return 2 * x; }

int main(int argc, char **argv) {
    char exe[256] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = 0;
    /* A child that ends at once (SIGCHLD, ignored by default) while the
     * program waits for a slower one: the wait is not cut short. */
    pid_t quick = fork();
    if (quick == 0)
        _exit(0);
    pid_t slow = fork();
    if (slow == 0) {
        usleep(200000);
        _exit(5);
    }
    int status = 0;
    pid_t got = waitpid(slow, &status, 0);
    waitpid(quick, NULL, 0);
    printf("%s %d %s %d\n", argc > 1 ? argv[1] : "-", twice(21), exe,
           got == slow && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 3;
}
"""


def _compile(sandbox, *args: str) -> None:
    run_ok(
        sandbox,
        "import subprocess\n"
        f"cc = subprocess.run(['gcc', *{list(args)!r}], capture_output=True, text=True,"
        " cwd='/sandbox')",
    )
    assert value(sandbox, "[cc.returncode, cc.stderr]") == [0, ""]


def test_a_program_compiled_in_the_sandbox_runs_there(sandbox):
    run_ok(sandbox, f"open('/sandbox/prog.c', 'w').write({PROGRAM!r})")
    _compile(sandbox, "-O1", "-o", "prog", "prog.c")
    run_ok(
        sandbox,
        "import subprocess\n"
        "ran = subprocess.run(['./prog', 'hello'], capture_output=True, text=True,"
        " cwd='/sandbox')",
    )
    assert value(sandbox, "[ran.returncode, ran.stdout, ran.stderr]") == [
        3,
        "hello 42 /sandbox/prog 5\n",
        "",
    ]


def test_a_shared_object_built_in_the_sandbox_loads_there(sandbox):
    run_ok(sandbox, f"open('/tmp/lib.c', 'w').write({PROGRAM!r})")
    _compile(sandbox, "-shared", "-fPIC", "-o", "/tmp/libtwice.so", "/tmp/lib.c")
    assert value(sandbox, "__import__('ctypes').CDLL('/tmp/libtwice.so').twice(21)") == 42


def test_a_venv_whose_interpreter_is_a_copy_runs(sandbox):
    run_ok(
        sandbox,
        "import subprocess, venv\n"
        "venv.create('/tmp/copied', symlinks=False)\n"
        "import os\n"
        "is_link = os.path.islink('/tmp/copied/bin/python')\n"
        "ran = subprocess.run(['/tmp/copied/bin/python', '-c',"
        " 'import sys; print(sys.prefix, sys.executable)'], capture_output=True, text=True)",
    )
    assert value(sandbox, "is_link") is False
    assert value(sandbox, "[ran.returncode, ran.stdout]") == [
        0,
        "/tmp/copied /tmp/copied/bin/python\n",
    ]


def _host_elf_outside_the_view() -> str:
    """A host program the sandbox cannot see (the system's administration
    programs are not among its read-only roots)."""
    for d in ("/usr/sbin", "/sbin"):
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            path = os.path.join(d, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        return path
    raise AssertionError("no ELF program in /usr/sbin or /sbin on this machine")


def test_the_loader_a_program_names_is_found_in_the_view(sandbox):
    hidden = _host_elf_outside_the_view()
    run_ok(
        sandbox,
        "import os, shutil\n"
        f"open('/sandbox/prog.c', 'w').write({PROGRAM!r})\n"
        "shutil.copy('/lib64/ld-linux-x86-64.so.2', '/tmp/ld.so')\n"
        f"hidden_seen = os.path.exists({hidden!r})",
    )
    assert value(sandbox, "hidden_seen") is False
    _compile(sandbox, "-o", "own_loader", "prog.c", "-Wl,--dynamic-linker=/tmp/ld.so")
    _compile(sandbox, "-o", "host_loader", "prog.c", f"-Wl,--dynamic-linker={hidden}")
    run_ok(
        sandbox,
        "import subprocess\n"
        "own = subprocess.run(['/sandbox/own_loader', 'own'], capture_output=True, text=True)\n"
        "def errno_of(path):\n"
        "    try:\n"
        "        subprocess.run([path])\n"
        "    except OSError as e:\n"
        "        return e.errno\n"
        "host = errno_of('/sandbox/host_loader')",
    )
    # A loader in the writable layer serves; one on the host outside the
    # view does not exist for the program (ENOENT, as Linux answers an
    # exec whose interpreter is missing).
    assert value(sandbox, "[own.returncode, own.stdout.split()[0]]") == [3, "own"]
    assert value(sandbox, "host") == errno.ENOENT


def test_a_c_extension_builds_and_imports_in_the_sandbox(sandbox):
    """cffi's API mode: the interpreter's headers, the compiler and the
    linker in the guest, then the extension imported from /tmp."""
    run_ok(
        sandbox,
        "import cffi, sys\n"
        "ffi = cffi.FFI()\n"
        "ffi.cdef('int add(int, int);')\n"
        "ffi.set_source('_sandbox_add', 'int add(int a, int b) { return a + b; }')\n"
        "built = ffi.compile(tmpdir='/tmp/ext', verbose=False)\n"
        "sys.path.insert(0, '/tmp/ext')\n"
        "import _sandbox_add",
    )
    assert value(sandbox, "built.startswith('/tmp/ext/')") is True
    assert value(sandbox, "_sandbox_add.lib.add(40, 2)") == 42


PORT_IO = r"""
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static sigjmp_buf env;
static void on_segv(int s) { siglongjmp(env, 1); }

int main(void) {
    signal(SIGSEGV, on_segv);
    int faults = 0;
    /* The system-call stub's port, then another: user code may use neither. */
    if (!sigsetjmp(env, 1))
        __asm__ volatile("outb %%al, $0xd0" ::: "memory");
    else
        faults++;
    if (!sigsetjmp(env, 1))
        __asm__ volatile("outb %%al, $0x80" ::: "memory");
    else
        faults++;
    printf("%d %d\n", faults, getppid() > 0);
    return 0;
}
"""


def test_port_io_in_a_program_is_a_segfault_as_on_linux(sandbox):
    run_ok(sandbox, f"open('/sandbox/port.c', 'w').write({PORT_IO!r})")
    _compile(sandbox, "-o", "port", "port.c")
    run_ok(
        sandbox,
        "import subprocess\n"
        "ran = subprocess.run(['/sandbox/port'], capture_output=True, text=True)",
    )
    assert value(sandbox, "[ran.returncode, ran.stdout]") == [0, "2 1\n"]
