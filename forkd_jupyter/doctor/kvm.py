"""KVM: the device, VM and vCPU creation, and whether guest user mode runs
natively (the guest is a process at CPL3; emulated CPL3 makes it unusable)."""

from __future__ import annotations

from .check import FAIL, OK, WARN, Check

KVM_API_VERSION = 12
NATIVE_LOOP_PER_SECOND = 1e8  # a CPL3 loop this fast is not being emulated

_KVM_KEYS = ("open_error", "api_version", "create_vm_error", "create_vcpu_error", "sync_regs")


def checks() -> list[Check]:
    from ..vmm.probes import probe_kvm

    k = probe_kvm()
    kvm_data = {key: k[key] for key in _KVM_KEYS}
    loop_data = {key: v for key, v in k.items() if key.startswith("user_loop")}
    if k["open_error"]:
        return [
            Check(
                "kvm",
                FAIL,
                f"cannot open /dev/kvm: {k['open_error']}",
                "enable virtualisation and load kvm_intel or kvm_amd (modprobe); "
                "give the user read-write access to /dev/kvm (the kvm group)",
                data=kvm_data,
            ),
            _guest_user_mode(k, loop_data),
        ]
    vm, vcpu = k["create_vm_error"], k["create_vcpu_error"]
    ok = k["api_version"] == KVM_API_VERSION and not vm and not vcpu
    kvm = Check.of(
        "kvm",
        ok,
        f"API version {k['api_version']}, KVM_CREATE_VM {vm or 'ok'}, "
        f"KVM_CREATE_VCPU {vcpu or 'ok'}, KVM_CAP_SYNC_REGS {k['sync_regs']}",
        f"KVM must speak API {KVM_API_VERSION} and create a VM and a vCPU: see `dmesg`, "
        "and enable nested virtualisation when this machine is itself a VM",
        data=kvm_data,
    )
    return [kvm, _guest_user_mode(k, loop_data)]


def _guest_user_mode(k: dict, data: dict) -> Check:
    if k["user_loop_error"] == "not reached":
        return Check(
            "guest_user_mode",
            FAIL,
            "not run: KVM gave no VM and vCPU to run it in",
            "fix the kvm check first",
            data=data,
        )
    if k["user_loop_error"]:
        return Check(
            "guest_user_mode",
            FAIL,
            f"the 64-bit user-mode guest loop did not run: {k['user_loop_error']}",
            "run on x86-64 with a KVM that accepts 64-bit long-mode guests",
            data=data,
        )
    rate = k["user_loop_per_second"]
    native = rate >= NATIVE_LOOP_PER_SECOND
    return Check(
        "guest_user_mode",
        OK if native else WARN,
        f"{rate:.3g} loop iterations/s at CPL3 ("
        + ("native" if native else "emulated: sandboxed code will run ~1000x slower")
        + ")",
        ""
        if native
        else "this KVM emulates guest user-mode (CPL3) code instruction by instruction: "
        "use a host with hardware virtualisation (VT-x/AMD-V) or native-mode PVM",
        required=False,
        data=data,
    )
