/* Names of file mappings (mm.h: mm_name_set, mm_name_at): what
 * /proc/self/maps shows beside each range. Kept in memory with the address
 * space (and in-memory snapshots), not in saved snapshots. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "core/mm.h"

struct mm_name {
    gva_t start, end;
    char *path;
};

struct mm_names {
    struct mm_name *v;
    size_t n, cap;
};

void mm_names_free(struct mm_names *names)
{
    if (!names)
        return;
    for (size_t i = 0; i < names->n; i++)
        free(names->v[i].path);
    free(names->v);
    free(names);
}

struct mm_names *mm_names_copy(const struct mm_names *src)
{
    if (!src)
        return NULL;
    struct mm_names *dst = calloc(1, sizeof(*dst));
    if (!dst || !(dst->v = calloc(src->n ? src->n : 1, sizeof(*dst->v)))) {
        free(dst);
        return NULL; /* names are a courtesy: a copy without them still works */
    }
    dst->cap = src->n ? src->n : 1;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[dst->n] = src->v[i];
        if ((dst->v[dst->n].path = strdup(src->v[i].path)))
            dst->n++;
    }
    return dst;
}

void mm_names_forget(struct mm *mm, gva_t start, gva_t end)
{
    struct mm_names *names = mm->names;
    if (!names)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < names->n; i++) {
        struct mm_name *m = &names->v[i];
        if (m->start < end && start < m->end) {
            free(m->path);
            continue;
        }
        names->v[kept++] = *m;
    }
    names->n = kept;
}

void mm_name_set(struct mm *mm, gva_t start, uint64_t len, const char *path)
{
    if (!path || !*path || !len)
        return;
    if (!mm->names && !(mm->names = calloc(1, sizeof(*mm->names))))
        return;
    struct mm_names *names = mm->names;
    mm_names_forget(mm, start, start + len);
    if (names->n == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 32;
        struct mm_name *v = realloc(names->v, cap * sizeof(*v));
        if (!v)
            return;
        names->v = v;
        names->cap = cap;
    }
    char *copy = strdup(path);
    if (copy)
        names->v[names->n++] = (struct mm_name){start, start + len, copy};
}

const char *mm_name_at(const struct mm *mm, gva_t addr)
{
    if (!mm->names)
        return NULL;
    for (size_t i = 0; i < mm->names->n; i++)
        if (mm->names->v[i].start <= addr && addr < mm->names->v[i].end)
            return mm->names->v[i].path;
    return NULL;
}
