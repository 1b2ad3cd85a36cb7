"""Conformance: the same snippets run natively and inside a sandbox must
give the same results (the snippet leaves a JSON-able ``result``)."""

from __future__ import annotations

import json
import subprocess

import pytest
from guest_helpers import run_ok

from forkd_jupyter.vmm.guest_env import python_elf

pytestmark = pytest.mark.kvm

# signalfd through libc (Python has no binding): records for a signal the
# process sent itself, one a thread sent while a read blocked, and a child's
# SIGCHLD (code, pid, status), as script(1) and event loops read them.
SIGNALFD = """
import ctypes, os, select, signal, struct, threading
libc = ctypes.CDLL(None, use_errno=True)
def sfd(sigs, fd=-1, flags=0):
    mask = ctypes.c_uint64(sum(1 << (s - 1) for s in sigs))
    r = libc.signalfd(fd, ctypes.byref(mask), flags)
    if r < 0:
        raise OSError(ctypes.get_errno(), 'signalfd')
    return r
def record(fd):
    f = struct.unpack_from('IiiIIiIIIIi', os.read(fd, 128))
    return f[0], f[2], f[3], f[10]  # signo, code, pid, status
used = {signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD}
signal.pthread_sigmask(signal.SIG_BLOCK, used)
fd = sfd([signal.SIGUSR1, signal.SIGCHLD], flags=os.O_NONBLOCK | os.O_CLOEXEC)
out = [select.select([fd], [], [], 0)[0] == []]
try:
    os.read(fd, 128)
except BlockingIOError:
    out.append('EAGAIN')
try:
    os.read(fd, 100)
except OSError as e:
    out.append(e.errno)
os.kill(os.getpid(), signal.SIGUSR1)
out.append(select.select([fd], [], [], 5)[0] == [fd])
signo, code, pid, _ = record(fd)
out.append([signo, code, pid == os.getpid()])
ep = select.epoll()
ep.register(fd, select.EPOLLIN)
child = os.fork()
if child == 0:
    os._exit(3)
out.append(len(ep.poll(5)))
signo, code, pid, status = record(fd)
out.append([signo, code, pid == child, status, os.waitpid(child, 0)[1] >> 8])
blocking = sfd([signal.SIGUSR2])
threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR2)).start()
out.append(record(blocking)[0])
sfd([signal.SIGUSR1], fd=blocking)
os.kill(os.getpid(), signal.SIGUSR2)
out.append(signal.SIGUSR2 in signal.sigpending())
signal.sigwait({signal.SIGUSR2})
try:
    sfd([signal.SIGUSR1], fd=0)
except OSError as e:
    out.append(e.errno)
out.append(os.readlink(f'/proc/self/fd/{fd}'))
for f in (fd, blocking):
    os.close(f)
signal.pthread_sigmask(signal.SIG_UNBLOCK, used)
result = out
"""

# prctl's process settings, and what two of them do: a grandchild asking
# for SIGTERM at its parent's end gets it and is adopted by the child
# subreaper above (which then waits for it), not by init.
PRCTL = """
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
def prctl(op, a=0, b=0, c=0, d=0):
    return libc.prctl(op, ctypes.c_ulong(a), ctypes.c_ulong(b), ctypes.c_ulong(c), ctypes.c_ulong(d))
def get_int(op):
    v = ctypes.c_int(-1)
    prctl(op, ctypes.addressof(v))
    return v.value
out = [get_int(37), prctl(36, 1), get_int(37), get_int(2), prctl(1, signal.SIGUSR1), get_int(2)]
out += [prctl(30), prctl(29, 1000), prctl(30), prctl(29, 0), prctl(30)]
out += [prctl(39), prctl(38, 1), prctl(39), prctl(42), prctl(41, 1), prctl(42), prctl(7)]
top = os.getpid()
ready_r, ready_w = os.pipe()
told_r, told_w = os.pipe()
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        got = []
        signal.signal(signal.SIGTERM, lambda *a: got.append(1))
        inherited = get_int(2)
        prctl(1, signal.SIGTERM)
        os.write(ready_w, b'r')
        end = time.time() + 20
        while not got and time.time() < end:
            time.sleep(0.01)
        os.write(told_w, repr([inherited, len(got), os.getppid() == top]).encode())
        os._exit(7)
    os.read(ready_r, 1)
    os._exit(0)
os.waitpid(middle, 0)
out.append(eval(os.read(told_r, 100)))
adopted, status = os.wait()
out += [os.WEXITSTATUS(status), prctl(36, 0), get_int(37)]
result = out
"""

# Thread names (PR_SET_NAME, as pthread_setname_np for the calling thread):
# in /proc's comm, status and stat, PR_GET_NAME; a fork's child keeps the
# name, an exec takes the program's.
THREAD_NAMES = """
import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def setname(n):
    return libc.prctl(15, ctypes.c_char_p(n.encode()), 0, 0, 0)
def getname():
    b = ctypes.create_string_buffer(16)
    libc.prctl(16, b, 0, 0, 0)
    return b.value.decode()
seen = {}
def worker():
    setname('a-worker-named-past-15')
    seen['tid'], seen['own'] = threading.get_native_id(), getname()
t = threading.Thread(target=worker)
t.start()
t.join()
before = open('/proc/self/comm').read().strip()
setname('renamed')
out = [before == os.path.basename(os.path.realpath('/proc/self/exe'))[:15], seen['own'], getname()]
out += [open('/proc/self/comm').read(), open('/proc/self/status').readline(), open('/proc/self/stat').read().split(')')[0].split('(')[1]]
r, w = os.pipe()
if os.fork() == 0:
    os.write(w, getname().encode())
    os._exit(0)
out.append(os.read(r, 16).decode())
out.append(subprocess.run(['cat', '/proc/self/comm'], capture_output=True, text=True).stdout)
result = out
"""

# epoll drops an entry when its descriptor is closed: the number, reused by
# a new pipe, is not reported unless added again, and adding it is no
# EEXIST (grpc's poller and others close without EPOLL_CTL_DEL).
EPOLL_CLOSED = """
import os, select
ep = select.epoll()
r1, w1 = os.pipe()
ep.register(r1, select.EPOLLIN | select.EPOLLET)
os.write(w1, b'x')
out = [ep.poll(0) == [(r1, select.EPOLLIN)]]
os.close(r1)
os.close(w1)
out.append(ep.poll(0))
r2, w2 = os.pipe()
os.write(w2, b'y')
out += [r2 == r1, ep.poll(0)]
ep.register(r2, select.EPOLLIN)
out.append(ep.poll(0) == [(r2, select.EPOLLIN)])
keep = os.dup(r2)
os.close(r2)
r3, w3 = os.pipe()
out += [r3 == r2, ep.poll(0) == [(r2, select.EPOLLIN)]]  # the dup keeps it, as on Linux
for fd in (keep, r3, w2, w3):
    os.close(fd)
ep.close()
result = out
"""

# timerfd through libc: one expiry seen by select, a periodic timer's
# count through epoll, gettime and the old value at settime, a blocking
# read of an absolute CLOCK_REALTIME deadline, and the errors.
TIMERFD = """
import ctypes, os, select, struct, time
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure):
    _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]
class ITS(ctypes.Structure):
    _fields_ = [('interval', TS), ('value', TS)]
def ts(x):
    return TS(int(x), round(x % 1 * 1e9))
def check(r, what):
    if r < 0:
        raise OSError(ctypes.get_errno(), what)
    return r
def settime(fd, value, interval=0.0, flags=0):
    old = ITS()
    check(libc.timerfd_settime(fd, flags, ctypes.byref(ITS(ts(interval), ts(value))), ctypes.byref(old)), 'settime')
    return old
def gettime(fd):
    cur = ITS()
    check(libc.timerfd_gettime(fd, ctypes.byref(cur)), 'gettime')
    return cur
def expirations(fd):
    return struct.unpack('Q', os.read(fd, 8))[0]
fd = check(libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC), 'create')
out = [os.readlink(f'/proc/self/fd/{fd}')]
try:
    os.read(fd, 8)
except BlockingIOError:
    out.append('EAGAIN')
out.append((gettime(fd).value.s, gettime(fd).value.ns))
settime(fd, 0.05)
out.append(select.select([fd], [], [], 0)[0])
start = time.monotonic()
ready = select.select([fd], [], [], 5)[0]
out += [ready == [fd], 0.03 < time.monotonic() - start < 2, expirations(fd)]
settime(fd, 0.02, 0.02)
ep = select.epoll()
ep.register(fd, select.EPOLLIN)
out.append(len(ep.poll(5)))
time.sleep(0.1)
out.append(expirations(fd) >= 4)
cur = gettime(fd)
out += [cur.interval.ns, cur.value.s == 0 and 0 < cur.value.ns <= 20000000]
out.append(settime(fd, 0).interval.ns)
try:
    os.read(fd, 8)
except BlockingIOError:
    out.append('disarmed')
blocking = check(libc.timerfd_create(time.CLOCK_REALTIME, 0), 'create')
settime(blocking, time.time() + 0.05, flags=1)
start = time.monotonic()
out += [expirations(blocking), 0.02 < time.monotonic() - start < 2]
try:
    os.read(blocking, 4)
except OSError as e:
    out.append(e.errno)
out.append(libc.timerfd_create(99, 0) == -1 and ctypes.get_errno())
for f in (fd, blocking):
    os.close(f)
result = out
"""

# System V shared memory through libc: a keyed segment written by a
# parent and a forked child (which inherits the attach and attaches again),
# the attach count through fork, exit and shmdt, IPC_RMID while attached,
# and the errors.
SYSV_SHM = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
class Perm(ctypes.Structure):
    _fields_ = [('key', ctypes.c_int)] + [(n, ctypes.c_uint) for n in ('uid', 'gid', 'cuid', 'cgid', 'mode')] + [
        ('seq', ctypes.c_ushort), ('pad', ctypes.c_ushort), ('r1', ctypes.c_ulong), ('r2', ctypes.c_ulong)]
class Ds(ctypes.Structure):
    _fields_ = [('perm', Perm), ('segsz', ctypes.c_size_t), ('atime', ctypes.c_long), ('dtime', ctypes.c_long),
                ('ctime', ctypes.c_long), ('cpid', ctypes.c_int), ('lpid', ctypes.c_int), ('nattch', ctypes.c_ulong),
                ('r4', ctypes.c_ulong), ('r5', ctypes.c_ulong)]
IPC_CREAT, IPC_EXCL, IPC_RMID, IPC_STAT = 0o1000, 0o2000, 0, 2
def stat(shmid):
    ds = Ds()
    return ds if libc.shmctl(shmid, IPC_STAT, ctypes.byref(ds)) == 0 else ctypes.get_errno()
def err(r):
    return r == -1 and errno.errorcode[ctypes.get_errno()]
key = 0x5EED0000 + os.getpid() % 4096
shmid = libc.shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0o600)
out = [shmid >= 0, err(libc.shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0o600)),
       libc.shmget(key, 100, 0) == shmid, err(libc.shmget(key, 20000, 0))]
addr = libc.shmat(shmid, None, 0)
view = (ctypes.c_char * 10000).from_address(addr)
view[0:5] = b'hello'
ds = stat(shmid)
out.append([ds.segsz, ds.nattch, ds.cpid == os.getpid(), ds.perm.mode, ds.perm.key == key])
child = os.fork()
if child == 0:
    again = (ctypes.c_char * 10000).from_address(libc.shmat(shmid, None, 0))
    again[5:11] = b' world'
    os._exit(stat(shmid).nattch)
out.append(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
out += [view[0:11], stat(shmid).nattch, libc.shmdt(addr), stat(shmid).nattch]
out += [libc.shmctl(shmid, IPC_RMID, None), err(libc.shmget(key, 100, 0)), err(libc.shmdt(addr))]
first, second = libc.shmget(0, 4096, 0o600), libc.shmget(0, 4096, 0o600)
kept = libc.shmat(first, None, 0)
libc.shmctl(first, IPC_RMID, None)
ctypes.c_char.from_address(kept).value = b'z'
out += [first != second, ctypes.c_char.from_address(kept).value, bool(stat(first).perm.mode & 0o1000)]
libc.shmdt(kept)
out += [stat(first) == errno.EINVAL, err(libc.shmat(first, None, 0) or -1), libc.shmctl(second, IPC_RMID, None)]
result = [x.decode() if isinstance(x, bytes) else x for x in out]
"""

SNIPPETS = {
    "proc_dirs_are_the_process_owners": "import os\nme = os.getuid()\nresult = [os.stat(p).st_uid == me for p in ('/proc/self', f'/proc/{os.getpid()}', '/proc/self/fd', '/proc/self/task')] + [os.stat('/proc').st_uid]",
    "sysv_shared_memory": SYSV_SHM,
    "timerfd": TIMERFD,
    "epoll_closed_descriptors": EPOLL_CLOSED,
    "thread_names": THREAD_NAMES,
    "prctl_settings": PRCTL,
    "signalfd": SIGNALFD,
    "script_in_a_pty": "import subprocess\nr = subprocess.run(['script', '-qc', 'echo in-pty; tty -s; echo $?', '/dev/null'], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)\nresult = [r.returncode, r.stdout.split()]",
    "arithmetic": "result = [2**100 % 97, 7 / 3, divmod(-7, 2), round(2.675, 2)]",
    "floats_and_math": "import math\nresult = [math.sqrt(2), math.lgamma(10.5), math.fsum([0.1] * 10), float('nan') != float('nan')]",
    "unicode": "result = ['straße'.upper(), 'ǅ'.lower(), len('👩‍👩‍👧'), sorted(['b', 'A', 'a'])]",
    "hash_and_compress": "import hashlib, zlib, base64\nd = bytes(range(256)) * 300\nresult = [hashlib.md5(d).hexdigest(), zlib.crc32(zlib.compress(d, 9)), base64.b64encode(d[:30]).decode()]",
    "struct_and_array": "import struct, array\nresult = [struct.unpack('<dIh', struct.pack('<dIh', 1.5, 7, -2)), array.array('i', range(5)).tolist()]",
    "decimal_fraction": "from decimal import Decimal, getcontext\nfrom fractions import Fraction\ngetcontext().prec = 40\nresult = [str(Decimal(1) / Decimal(7)), str(Fraction(3, 4) + Fraction(1, 6))]",
    "datetime": "import datetime\nresult = [datetime.date(2000, 1, 1).isoweekday(), str(datetime.datetime(2020, 2, 29, 12) + datetime.timedelta(days=365))]",
    "regex": "import re\nresult = re.findall(r'(\\w+)@(\\w+)\\.com', 'a@b.com, cc@dd.com')",
    "json_roundtrip": "import json\nresult = json.loads(json.dumps({'a': [1, 2.5, None, True], 'b': 'ü'}))",
    "collections": "import collections, itertools\nresult = [collections.Counter('mississippi').most_common(2), list(itertools.permutations('abc', 2))[:3]]",
    "numpy_numerics": "import numpy as np\nrng = np.random.default_rng(42)\nm = rng.standard_normal((50, 50))\nresult = [round(float(np.linalg.norm(m)), 9), np.sort(rng.integers(0, 100, 10)).tolist(), round(float(np.fft.fft(np.arange(8.0))[1].real), 9)]",
    "files_roundtrip": "import os, tempfile\nd = tempfile.mkdtemp()\np = os.path.join(d, 'f')\nopen(p, 'w').write('abc' * 1000)\nst = os.stat(p)\nos.truncate(p, 10)\nresult = [st.st_size, os.path.getsize(p), open(p).read(), sorted(os.listdir(d))]",
    "links_and_replace": "import os, tempfile\nd = tempfile.mkdtemp()\na, b, c = (os.path.join(d, x) for x in 'abc')\nopen(a, 'w').write('x')\nos.link(a, b)\nos.symlink('a', c)\nn = os.stat(a).st_nlink\nos.replace(b, os.path.join(d, 'e'))\nresult = [n, os.readlink(c), os.path.islink(c), open(c).read(), sorted(os.listdir(d)), os.path.exists(b)]",
    "sqlite_memory": "import sqlite3\nc = sqlite3.connect(':memory:')\nc.execute('create table t(x)')\nc.executemany('insert into t values (?)', [(i,) for i in range(100)])\nresult = c.execute('select sum(x), avg(x) from t').fetchone()",
    "pickle_protocols": "import pickle\nresult = [len(pickle.dumps(list(range(100)), p)) for p in range(6)]",
    "socketpair_stream": "import socket, errno\na, b = socket.socketpair()\na.sendall(b'x' * 5000)\ngot = b''\nwhile len(got) < 5000:\n    got += b.recv(1000)\nb.setblocking(False)\ntry:\n    b.recv(1)\n    e = None\nexcept BlockingIOError as ex:\n    e = ex.errno == errno.EAGAIN\na.shutdown(socket.SHUT_WR)\nresult = [len(got), e, b.recv(10).decode(), a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE), a.family == socket.AF_UNIX, b.send(b'back', socket.MSG_DONTWAIT), a.recv(10, socket.MSG_PEEK).decode(), a.recv(10).decode()]",
    "socketpair_closed_peer": "import socket\na, b = socket.socketpair()\nb.close()\ntry:\n    a.send(b'x', socket.MSG_NOSIGNAL)\n    r = 'sent'\nexcept BrokenPipeError:\n    r = 'EPIPE'\nresult = [r, a.recv(5).decode()]",
    "sendmsg_recvmsg": "import socket\na, b = socket.socketpair()\nn = a.sendmsg([b'ab', b'', b'cde'])\ndata, anc, flags, addr = b.recvmsg(10)\nresult = [n, data.decode(), anc, flags]",
    "epoll_and_eventfd": "import os, select\nr, w = os.pipe()\nep = select.epoll()\nep.register(r, select.EPOLLIN)\nep.register(w, select.EPOLLOUT)\nfirst = sorted(ep.poll(0))\nos.write(w, b'z')\nsecond = sorted(ep.poll(0))\nep.modify(w, select.EPOLLIN)\nep.unregister(r)\nthird = ep.poll(0)\nefd = os.eventfd(2, os.EFD_NONBLOCK | os.EFD_SEMAPHORE)\nvals = [os.eventfd_read(efd), os.eventfd_read(efd)]\ntry:\n    os.eventfd_read(efd)\n    last = 'read'\nexcept BlockingIOError:\n    last = 'EAGAIN'\nresult = [[(fd == w, ev) for fd, ev in first], [(fd == w, ev) for fd, ev in second], third, vals, last]",
    "selectors_default": "import selectors, socket\ns = selectors.DefaultSelector()\na, b = socket.socketpair()\ns.register(b, selectors.EVENT_READ, 'b')\nbefore = s.select(0)\na.send(b'!')\nafter = [(k.data, ev) for k, ev in s.select(1)]\nresult = [type(s).__name__, before, after]",
    "asyncio_run": "import asyncio\nasync def work(i):\n    await asyncio.sleep(0.01 * i)\n    return i * i\nasync def main():\n    q = asyncio.Queue()\n    await q.put('item')\n    got = await asyncio.wait_for(q.get(), 1)\n    return [got] + list(await asyncio.gather(*(work(i) for i in range(4))))\nresult = asyncio.run(main())",
    "errors": "errs = []\nfor f in (lambda: 1 / 0, lambda: [][1], lambda: {}['k'], lambda: int('x'), lambda: open('/nonexistent/x')):\n    try:\n        f()\n    except Exception as e:\n        errs.append(type(e).__name__)\nresult = errs",
}


def run_native(code: str):
    wrapper = code + "\nimport json, sys\nsys.stdout.write(json.dumps(result))"
    out = subprocess.run(
        [python_elf(), "-c", wrapper], capture_output=True, text=True, check=True, cwd="/tmp"
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet_matches_native(sandbox, name):
    code = SNIPPETS[name]
    native = run_native(code)
    run_ok(sandbox, code + "\nimport json as _json\n_conformance = _json.dumps(result)")
    guest = json.loads(sandbox.pull("_conformance"))
    assert guest == native
