"""The guest's CPU features are the host's for the instructions a program
runs at CPL3: numpy in a sandbox detects what it detects on the host (its
x86-64-v3 and AVX-512 kernels were not dispatched while KVM's CPUID hid
LZCNT), and /proc/cpuinfo says the same as the guest's CPUID."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm

PROBE = (
    "import json\n"
    "from numpy._core._multiarray_umath import __cpu_features__\n"
    "flags = set()\n"
    "for line in open('/proc/cpuinfo'):\n"
    "    if line.startswith('flags'):\n"
    "        flags |= set(line.split(':', 1)[1].split())\n"
    "seen = json.dumps([sorted(k for k, v in __cpu_features__.items() if v),\n"
    "                   'abm' in flags, 'bmi2' in flags])\n"
)


def test_numpy_detects_the_hosts_features(sandbox):
    host = subprocess.run(
        [sys.executable, "-c", PROBE + "print(seen)"], capture_output=True, text=True, check=True
    )
    host_features, host_abm, host_bmi2 = json.loads(host.stdout)
    run_ok(sandbox, PROBE)
    features, abm, bmi2 = json.loads(value(sandbox, "seen"))
    assert features == host_features
    # numpy reads LZCNT from CPUID's ABM bit, the flag /proc/cpuinfo shows.
    assert ("LZCNT" in features) == abm == host_abm
    assert ("BMI2" in features) == bmi2 == host_bmi2
