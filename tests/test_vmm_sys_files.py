"""/sys/devices/system/cpu as a sandbox shows it (the guest's cores: the
host's online ones, as sched_getaffinity and /proc/cpuinfo say), read by
lscpu, psutil, glibc's processor count and PyTorch's cpuinfo; /proc/vmstat
beside meminfo (vmstat, psutil.swap_memory); statfs as df reads it. The
rest of /sys does not exist."""

from __future__ import annotations

import errno
import os

import pytest
from guest_helpers import ERRNO_OF, run_ok, value

pytestmark = pytest.mark.kvm

CPU = "/sys/devices/system/cpu"
TOPOLOGY = {
    "core_cpus_list", "core_id", "core_siblings_list", "die_id", "package_cpus_list",
    "physical_package_id", "thread_siblings", "thread_siblings_list",
}  # fmt: skip


def guest_cores() -> int:
    return min(max(os.sysconf("SC_NPROCESSORS_ONLN"), 1), 64)


def cores_list(n: int) -> str:
    return "0" if n == 1 else f"0-{n - 1}"


def cores_of(listed: str) -> set[int]:
    """The cores of a cpulist ("0-3,6")."""
    cores: set[int] = set()
    for part in listed.split(","):
        first, _, last = part.partition("-")
        cores |= set(range(int(first), int(last or first) + 1))
    return cores


def test_the_cpu_directory_lists_the_guest_cores(sandbox):
    n = guest_cores()
    run_ok(
        sandbox,
        ERRNO_OF + "import os, errno\n"
        f"CPU = {CPU!r}\n"
        "tree = {d: sorted(os.listdir(d)) for d in ('/', '/sys', '/sys/devices',\n"
        "        '/sys/devices/system', CPU, CPU + '/cpu0', CPU + '/cpu0/topology')}\n"
        "files = {n: open(f'{CPU}/{n}').read() for n in ('possible', 'present', 'online',\n"
        "         'offline', 'kernel_max', 'cpu0/online')}\n"
        "topology = [{n: open(f'{CPU}/cpu{c}/topology/{n}').read().strip()\n"
        "             for n in os.listdir(f'{CPU}/cpu{c}/topology')}\n"
        "            for c in range(len([d for d in os.listdir(CPU) if d[3:].isdigit()]))]\n"
        "st = os.stat(CPU + '/online')\n"
        "kinds = [oct(st.st_mode), os.access(CPU + '/online', os.R_OK),\n"
        "         os.access(CPU + '/online', os.W_OK), os.path.isdir(CPU + '/cpu0')]\n"
        "errors = [code(open, CPU + '/cpu0/online', 'w'),\n"
        "          code(os.stat, f'{CPU}/cpu{os.cpu_count()}'),\n"
        "          code(os.stat, '/sys/class'), code(open, CPU + '/nothing'),\n"
        "          code(os.mkdir, '/sys/mine')]\n"
        "counts = [os.cpu_count(), len(os.sched_getaffinity(0)),\n"
        "          sum(line.startswith('processor') for line in open('/proc/cpuinfo'))]",
    )
    tree = value(sandbox, "tree")
    assert "sys" in tree["/"] and tree["/sys"] == ["devices"]
    assert tree["/sys/devices"] == ["system"] and tree["/sys/devices/system"] == ["cpu"]
    assert set(tree[CPU]) == {f"cpu{c}" for c in range(n)} | {
        "kernel_max", "offline", "online", "possible", "present"
    }  # fmt: skip
    assert tree[CPU + "/cpu0"] == ["online", "topology"]
    assert TOPOLOGY <= set(tree[CPU + "/cpu0/topology"])
    want = cores_list(n) + "\n"
    assert value(sandbox, "files") == {
        "possible": want, "present": want, "online": want, "offline": "\n",
        "kernel_max": f"{n - 1}\n", "cpu0/online": "1\n",
    }  # fmt: skip
    topology = value(sandbox, "topology")
    assert len(topology) == n
    for core, files in enumerate(topology):
        assert core in cores_of(files["thread_siblings_list"]), files
        assert cores_of(files["thread_siblings_list"]) <= cores_of(files["package_cpus_list"])
        assert files["physical_package_id"].isdigit() and files["core_id"].isdigit()
    assert value(sandbox, "kinds") == [oct(0o100444), True, False, True]
    enoent = errno.ENOENT
    assert value(sandbox, "errors") == [errno.EROFS, enoent, enoent, enoent, errno.EROFS]
    assert value(sandbox, "counts") == [n, n, n]


def test_lscpu_and_vmstat_read_what_they_need(sandbox):
    n = guest_cores()
    run_ok(
        sandbox,
        "import subprocess\n"
        "lscpu = subprocess.run(['lscpu'], capture_output=True, text=True)\n"
        "vm = subprocess.run(['vmstat'], capture_output=True, text=True)\n"
        "vmstat = dict(line.split() for line in open('/proc/vmstat'))\n"
        "meminfo = {l.split(':')[0]: int(l.split()[1]) for l in open('/proc/meminfo')}",
    )
    lscpu = value(sandbox, "[lscpu.returncode, lscpu.stdout, lscpu.stderr]")
    assert lscpu[0] == 0 and lscpu[2] == "", lscpu
    pairs = (line.partition(":") for line in lscpu[1].splitlines())
    fields = {key.strip(): val.strip() for key, _, val in pairs}
    assert fields["CPU(s)"] == str(n)
    assert int(fields["Socket(s)"]) >= 1 and int(fields["Core(s) per socket"]) >= 1, fields
    vm = value(sandbox, "[vm.returncode, vm.stdout, vm.stderr]")
    assert vm[0] == 0 and "free" in vm[1], vm
    vmstat, meminfo = value(sandbox, "vmstat"), value(sandbox, "meminfo")
    assert {"pswpin", "pswpout", "pgpgin", "pgfault"} <= set(vmstat)
    assert abs(int(vmstat["nr_free_pages"]) * 4 - meminfo["MemFree"]) <= 64 * 1024  # same RAM
    assert int(vmstat["nr_anon_pages"]) > 0


def test_statfs_of_the_layer_and_of_read_only_files(sandbox):
    """statfs says what df and shutil.disk_usage need: the layer's limit and
    use for /tmp; for a read-only file the sizes of the host filesystem it
    is on, read-only; fstatfs the same through a descriptor."""
    run_ok(
        sandbox,
        "import os, shutil\n"
        "lib = os.path.dirname(os.__file__)\n"
        "usage = [tuple(shutil.disk_usage('/tmp')), tuple(shutil.disk_usage(lib))]\n"
        "flags = [os.statvfs(p).f_flag & os.ST_RDONLY for p in ('/tmp', lib)]\n"
        "fd = os.open(os.__file__, os.O_RDONLY)\n"
        "by_fd = os.fstatvfs(fd).f_blocks == os.statvfs(lib).f_blocks\n"
        "os.close(fd)",
    )
    (tmp_total, tmp_used, _), (lib_total, _, _) = value(sandbox, "usage")
    assert tmp_total > 0 and 0 <= tmp_used <= tmp_total
    host = os.statvfs(os.path.dirname(os.__file__))
    assert lib_total == host.f_blocks * host.f_frsize
    assert value(sandbox, "flags") == [0, os.ST_RDONLY]
    assert value(sandbox, "by_fd") is True
