/* Host-side access to a sandbox's writable layer (the guest's /tmp and
 * /sandbox), for file transfer. Paths are absolute guest paths and must lie
 * in the layer: anything else is -EACCES (host paths are never touched).
 * Symlinks inside the layer are not followed by these calls (-ELOOP when a
 * component is one). Safe to call from any thread while the guest runs. */
struct fj_dirent {
    char name[256];
    uint32_t mode;     /* S_IFMT | permissions */
    uint64_t size;
    int64_t mtime_ns;
};

/* Reads up to len bytes at off; returns the count, 0 at end of file. */
int64_t fj_layer_read(fj_sandbox *sb, const char *path, void *buf, uint64_t len, uint64_t off);
/* Creates or truncates (off == 0 and truncate) and writes; returns bytes written. */
int64_t fj_layer_write(fj_sandbox *sb, const char *path, const void *buf, uint64_t len, uint64_t off,
                       int truncate, uint32_t mode);
int fj_layer_stat(fj_sandbox *sb, const char *path, struct fj_dirent *out);
int fj_layer_mkdir(fj_sandbox *sb, const char *path, uint32_t mode);
/* Lists from index start; returns how many entries were filled (0 at the end). */
int fj_layer_list(fj_sandbox *sb, const char *path, uint64_t start, struct fj_dirent *out, int max);
int fj_layer_remove(fj_sandbox *sb, const char *path);
