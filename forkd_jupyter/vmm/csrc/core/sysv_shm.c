/* System V shared memory segments (sysv_shm.h).
 *
 * Invariants, under big_lock: a segment's nattch is the number of entries
 * naming it in its sandbox's processes' attach lists; a segment is freed
 * (its file put) only once it is removed and nattch is 0, or when the
 * sandbox ends. */
#define _GNU_SOURCE
#include "core/sysv_shm.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/proc.h"

struct sysv_table *sysv_table(struct sb_procs *p) {
    if (!p->sysv)
        p->sysv = calloc(1, sizeof(*p->sysv));
    return p->sysv;
}

int sysv_id(const struct sysv_table *t, const struct sysv_seg *s) {
    return (int)(s->seq * SYSV_SLOTS + (uint32_t)(s - t->seg));
}

struct sysv_seg *sysv_by_id(struct sb_procs *p, int id) {
    if (!p->sysv || id < 0)
        return NULL;
    struct sysv_seg *s = &p->sysv->seg[id % SYSV_SLOTS];
    return s->used && sysv_id(p->sysv, s) == id ? s : NULL;
}

void sysv_drop_if_gone(struct sysv_seg *s) {
    if (!s->used || !s->removed || s->nattch)
        return;
    file_put(s->file);
    memset(s, 0, sizeof(*s));
}

int sysv_attached(struct sandbox *sb, int id, gva_t at, uint64_t len) {
    if (sb->n_sysv_attached == sb->cap_sysv_attached) {
        size_t cap = sb->cap_sysv_attached ? sb->cap_sysv_attached * 2 : 4;
        struct sysv_attach *grown = realloc(sb->sysv_attached, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        sb->sysv_attached = grown;
        sb->cap_sysv_attached = cap;
    }
    sb->sysv_attached[sb->n_sysv_attached++] = (struct sysv_attach){at, len, id};
    sysv_by_id(sb->procs, id)->nattch++;
    return 0;
}

/* Drops entry i of sb's list and its count. */
static void drop_entry(struct sandbox *sb, size_t i) {
    struct sysv_seg *s = sysv_by_id(sb->procs, sb->sysv_attached[i].id);
    sb->sysv_attached[i] = sb->sysv_attached[--sb->n_sysv_attached];
    if (!s)
        return;
    s->nattch--;
    s->lpid = sb->pid;
    s->dtime = time(NULL);
    sysv_drop_if_gone(s);
}

int sysv_detach(struct sandbox *sb, gva_t at, uint64_t *len) {
    for (size_t i = 0; i < sb->n_sysv_attached; i++) {
        if (sb->sysv_attached[i].at == at) {
            *len = sb->sysv_attached[i].len;
            drop_entry(sb, i);
            return 0;
        }
    }
    return -EINVAL;
}

int sysv_forked(struct sandbox *parent, struct sandbox *child) {
    for (size_t i = 0; i < parent->n_sysv_attached; i++) {
        const struct sysv_attach *a = &parent->sysv_attached[i];
        int err = sysv_attached(child, a->id, a->at, a->len);
        if (err < 0)
            return err;
    }
    return 0;
}

void sysv_detach_all(struct sandbox *sb) {
    while (sb->n_sysv_attached)
        drop_entry(sb, sb->n_sysv_attached - 1);
    free(sb->sysv_attached);
    sb->sysv_attached = NULL;
    sb->cap_sysv_attached = 0;
}

void sysv_free(struct sb_procs *p) {
    if (!p->sysv)
        return;
    for (unsigned i = 0; i < SYSV_SLOTS; i++)
        if (p->sysv->seg[i].used)
            file_put(p->sysv->seg[i].file);
    free(p->sysv);
    p->sysv = NULL;
}
