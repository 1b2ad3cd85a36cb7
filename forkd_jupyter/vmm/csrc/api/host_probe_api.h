/* Probes of the host features the VMM relies on (for `forkd-jupyter doctor`).
 * Every errno field is 0 on success, a positive errno on failure, and -1
 * when the step was not reached. */
struct fj_uffd_probe {
    int syscall_errno;     /* userfaultfd(2) gave an fd */
    int devnode_errno;     /* /dev/userfaultfd + USERFAULTFD_IOC_NEW gave an fd */
    int api_errno;         /* UFFDIO_API handshake asking for no feature */
    uint64_t features;     /* features the kernel offers (UFFD_FEATURE_* bits) */
    int wp_api_errno;      /* UFFDIO_API asking for the write-protect features offered */
    uint64_t wp_features;  /* features that second handshake negotiated */
    int wp_memfd_errno;    /* memfd_create + ftruncate + mmap(MAP_SHARED) of the probe range */
    int wp_register_errno; /* UFFDIO_REGISTER_MODE_WP of that shared memfd mapping */
    int wp_protect_errno;  /* UFFDIO_WRITEPROTECT arming that range */
    int fill_errno;        /* a user-mode-only userfaultfd filling a missing page of a
                              private memfd mapping (UFFDIO_COPY), as a child's
                              placement does (snap/snap_map.c) */
};
/* Fills out; returns 0 when some userfaultfd opened, else -errno. */
int fj_probe_uffd(struct fj_uffd_probe *out);

/* memfd_create (with MFD_HUGETLB when hugetlb is set), a 2 MiB ftruncate,
 * a shared mapping and a populating write; 0 or -errno. */
int fj_probe_memfd(int hugetlb);

struct fj_elf_probe {
    int open_errno;    /* opening and reading the file's first bytes */
    int is_elf;        /* starts with the ELF magic */
    int is_script;     /* starts with "#!" (a shim such as pyenv's) */
    int elf_class;     /* EI_CLASS: 2 for 64-bit */
    int machine;       /* e_machine: 62 for x86-64 */
    int type;          /* e_type: 2 executable, 3 shared object (PIE) */
    int interp_errno;  /* reading the program headers and PT_INTERP */
    char interp[256];  /* PT_INTERP, "" for a static binary */
    char shebang[256]; /* the "#!" line of a script, "" otherwise */
};
/* Reads the header of path (no symlink resolution beyond open's own);
 * returns 0 when the file could be read, else -errno. */
int fj_probe_elf(const char *path, struct fj_elf_probe *out);
