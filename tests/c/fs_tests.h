/* The test cases of test_fs_view (one function per area) and what they
 * share: the host configuration given on the command line and small host
 * helpers. Each case runs on a fresh view and fd table. */
#ifndef FS_TESTS_H
#define FS_TESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

extern const char *exe_path; /* the interpreter ELF */
extern const char **roots;   /* read-only roots as given */
extern size_t n_roots;
extern char **all_roots; /* as given and canonical */
extern size_t n_all_roots;

bool under(const char *path, const char *root);
bool in_some_root(const char *path);
bool given_root(const char *path);
bool host_is_link(const char *path);
unsigned char dt_of(mode_t m);
char *read_host(const char *path, size_t *len); /* malloc'd, or NULL */
void fill(uint8_t *buf, size_t len, unsigned seed);

/* test_fs_view.c: what is visible, and that the host stays read-only. */
void test_python_visible(void);
void test_loader_links(void);
void test_outside_invisible(void);
void test_etc_synthesized(void);
void test_dotdot_escapes(void);
void test_layer_links(void);
void test_host_read_only(void);
void test_vdirs(void);
void test_host_listing(void);
void test_synthetic_root(void);

/* test_fs_layer.c: the writable layer. */
void test_layer_files(void);
void test_layer_dirs(void);
void test_branch(void);
void test_edges(void);
void test_anon_and_copies(void);
void test_xattrs(void);

/* test_fs_fds.c: devices, pipes, descriptors, readiness, cwd, arguments. */
void test_devices(void);
void test_pipes(void);
void test_descriptors(void);
void test_select(void);
void test_cwd_and_arguments(void);

#endif
