/* Doctor probe of KVM: can a VM run user-mode guest code, and how fast. */
struct fj_kvm_probe {
    int open_errno;          /* 0 when /dev/kvm opened */
    int api_version;         /* KVM_GET_API_VERSION, -1 if not reached */
    int create_vm_errno;     /* 0 on success, -1 if not reached */
    int create_vcpu_errno;   /* 0 on success, -1 if not reached */
    int sync_regs;           /* KVM_CHECK_EXTENSION(KVM_CAP_SYNC_REGS) */
    int user_loop_errno;     /* 0 when the timed CPL3 guest loop ran */
    uint64_t user_loop_iters;
    double user_loop_ns;     /* wall time of the loop in ns */
};
int fj_probe_kvm(struct fj_kvm_probe *out, uint64_t loop_iters);
