/* Spawning a fresh sandbox and destroying one: the entry points that put
 * together a VM (kvm/), the filesystem view (fs/), the standard streams
 * (file/) and the program (core/). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <string.h>

#include "core/proc.h"
#include "file/file_stdio.h"
#include "fs/fs_view.h"
#include "snap/snap_fork.h"
#include "api/vmm_api.h"


static uint32_t next_pid(void)
{
    static _Atomic uint32_t counter = 100;
    return atomic_fetch_add(&counter, 1);
}

static int install_stdio(struct sandbox *sb)
{
    struct file *files[4] = {file_stdio_stdin(), file_stdio_out(SB_CH_STDOUT), file_stdio_out(SB_CH_STDERR),
                             file_stdio_ctl(sb->ctl_host_fd)};
    int err = 0;
    for (int fd = 0; fd < 4; fd++) {
        if (!files[fd]) {
            err = -ENOMEM;
            continue;
        }
        int r = fdt_install_at(&sb->fdt, files[fd], fd, false);
        if (r < 0) {
            file_put(files[fd]);
            err = r;
        }
    }
    return err;
}

int fj_sandbox_create(const struct fj_spawn_config *cfg, fj_sandbox **out)
{
    *out = NULL;
    if (!cfg->exe_path || !cfg->argv || !cfg->envp || !cfg->argv[0])
        return -EINVAL;
    if (strlen(cfg->exe_path) >= sizeof(((struct sandbox *)0)->exe_path))
        return -ENAMETOOLONG;
    int err = 0;
    struct sandbox *sb = sandbox_alloc(cfg->ctl_fd, &err);
    if (!sb)
        return err;
    if ((err = sb_procs_new(sb, next_pid())) < 0)
        goto fail;
    snap_fork_attach(sb);
    strcpy(sb->exe_path, cfg->exe_path);
    if ((err = fdt_init(&sb->fdt)) < 0)
        goto fail;
    struct fs_view_config vc = {
        .ro_roots = cfg->ro_roots,
        .n_ro_roots = cfg->n_ro_roots,
        .agent_host_dir = cfg->agent_host_dir,
        .exe_path = cfg->exe_path,
        .layer_bytes_limit = cfg->layer_bytes_limit,
        .cwd = cfg->cwd ? cfg->cwd : "/sandbox",
    };
    if (!(sb->view = fs_view_new(&vc))) {
        err = -ENOMEM;
        goto fail;
    }
    if ((err = kvm_vm_create(&sb->vm, FJ_ALIGN_UP(cfg->mem_bytes, FJ_HUGE_SIZE), -1)) < 0)
        goto fail;
    if ((err = install_stdio(sb)) < 0)
        goto fail;
    if ((err = sandbox_load_program(sb, cfg->exe_path, cfg->argv, cfg->envp)) < 0)
        goto fail;
    *out = sb;
    return 0;
fail:
    sandbox_free(sb);
    return err;
}

void fj_sandbox_destroy(fj_sandbox *sb)
{
    if (sb)
        sandbox_free(sb);
}
