/* Doctor probes of the host kernel features the VMM relies on. */
struct fj_uffd_probe {
    int syscall_errno;      /* userfaultfd(2); 0 when it gave an fd */
    int devnode_errno;      /* /dev/userfaultfd + USERFAULTFD_IOC_NEW; 0 when it gave an fd */
    int api_errno;          /* UFFDIO_API handshake */
    uint64_t features;      /* features the kernel offers */
    int wp_register_errno;  /* UFFDIO_REGISTER (write-protect) of a shared memfd mapping */
    int wp_protect_errno;   /* UFFDIO_WRITEPROTECT on that range */
};
int fj_probe_uffd(struct fj_uffd_probe *out);
/* memfd_create (with MFD_HUGETLB when hugetlb is set) plus a 2 MiB
 * ftruncate and a write; 0 or -errno. */
int fj_probe_memfd(int hugetlb);
