"""The system's programs run in a sandbox when their names are links into
a package's own tree (pidof -> /sbin/killall5 on Debian; java ->
/usr/lib/jvm/...; npm -> /usr/lib/node_modules), with the data beside a
package's /usr/lib tree and Perl's modules: the trees are in the view, and
what they add is only the system's own files."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.python_env import link_chain, path_under
from forkd_jupyter.vmm import Sandbox, guest_env
from forkd_jupyter.vmm.program_trees import PRIVATE_ETC, PROGRAM_DIRS

pytestmark = pytest.mark.kvm


def linked_programs() -> list[tuple[str, str]]:
    """(link, target) of every program name that leads out of the default
    roots to a program root owns (each program directory once: /bin is
    /usr/bin on a merged-/usr system)."""
    default = [*SYSTEM_AND_ENV, *map(os.path.realpath, SYSTEM_AND_ENV)]
    found, scanned = [], set()
    for directory in PROGRAM_DIRS:
        if not os.path.isdir(directory) or os.path.realpath(directory) in scanned:
            continue
        scanned.add(os.path.realpath(directory))
        for name in sorted(os.listdir(directory)):
            link = os.path.join(directory, name)
            target = os.path.realpath(link)
            if not os.path.islink(link) or not os.path.isfile(target):
                continue
            if path_under(target, default):
                continue
            st = os.stat(target)
            if os.access(target, os.X_OK) and st.st_uid == 0 and not st.st_mode & 0o022:
                found.append((link, target))
    return found


SYSTEM_AND_ENV = [
    *guest_env.current().read_only_roots(),
    *(p for p in guest_env.SYSTEM_ROOTS if os.path.exists(p)),
]


def test_what_the_trees_add_is_the_systems_own():
    added = [r for r in guest_env.read_only_roots() if r not in SYSTEM_AND_ENV]
    assert shutil.which("pidof") and os.path.islink(shutil.which("pidof"))  # Debian's essential
    assert added, "the links of this machine's programs add nothing"
    for root in added:
        st = os.stat(root)
        assert st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), root
        if root.startswith("/etc/"):
            assert os.path.isdir(root) and root.split("/")[2] not in PRIVATE_ETC, root
    roots = guest_env.read_only_roots()
    for link, _ in linked_programs():
        opened = link_chain(link)[-1]  # the guest follows the link's own text
        assert path_under(opened, roots), f"{link} -> {opened} is not in the view"


def test_linked_programs_run_in_a_sandbox():
    programs = linked_programs()
    assert any(link.endswith("/pidof") for link, _ in programs)
    # 1 GiB: JAVA_TOOL_OPTIONS keeps the JVM's reservations inside it.
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        links = [link for link, _ in programs]
        run_ok(
            sb,
            "import os, shutil, subprocess\n"
            f"links = {links!r}\n"
            "seen = [os.path.isfile(os.path.realpath(p)) and os.access(p, 1) for p in links]\n"
            "pidof = [subprocess.run(['pidof', 'python3.11', 'python3', 'python']).returncode,\n"
            "         subprocess.run(['pidof', 'no-such-program']).returncode]\n"
            "java = shutil.which('java') and subprocess.run(['java', '-version'],\n"
            "    capture_output=True, text=True).stderr\n"
            "perl = subprocess.run(['perl', '-MJSON::PP', '-e',\n"
            "    'print JSON::PP->new->encode([1])'], capture_output=True, text=True).stdout",
        )
        assert value(sb, "seen") == [True] * len(programs)
        # pidof (killall5) reads /proc: the agent is found, an unknown name is not.
        assert value(sb, "pidof") == [0, 1]
        if shutil.which("java"):  # a JVM, its jvm.cfg and java.security linked from /etc
            assert "OpenJDK" in value(sb, "java")
        if os.path.isdir("/usr/share/perl"):  # Perl's modules beyond perl-base
            assert value(sb, "perl") == "[1]"
        for tree in ("/usr/lib/postgresql", "/usr/share/postgresql"):
            if os.path.isdir(tree) and os.path.exists("/usr/bin/psql"):  # data beside binaries
                assert value(sb, f"os.path.isdir({tree!r})"), tree
    finally:
        sb.close()


POSTGRES = r"""
import subprocess
def sh(cmd):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=240)
    return r.returncode, r.stdout + r.stderr
steps = [sh('initdb -D /tmp/pgdata -A trust -U sandbox'),
         sh("pg_ctl -D /tmp/pgdata -o '-k /tmp -c listen_addresses=' -l /tmp/pg.log -w start"),
         sh("psql -h /tmp -U sandbox -d postgres -At -c "
            "'create table t(x int); insert into t select generate_series(1, 1000); "
            "select sum(x) from t'"),
         sh('pg_ctl -D /tmp/pgdata -w stop')]
"""


def test_a_postgresql_server_runs_in_a_sandbox():
    """PostgreSQL, where the machine has it: its binaries' and data's trees,
    Perl for psql's wrapper, System V shared memory and fork for its
    backends, unix sockets between them."""
    if not shutil.which("initdb") or not shutil.which("psql"):
        assert not os.path.isdir("/usr/lib/postgresql")  # then PostgreSQL is not installed
        return
    sb = Sandbox.spawn(memory_mib=2048)
    try:
        run_ok(sb, POSTGRES, timeout=600)
        steps = value(sb, "steps")
        assert [rc for rc, _ in steps] == [0, 0, 0, 0], steps
        assert steps[2][1].split() == ["CREATE", "TABLE", "INSERT", "0", "1000", "500500"]
    finally:
        sb.close()
