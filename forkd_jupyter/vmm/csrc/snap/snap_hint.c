/* Working-set hints (snap_hint.h). */
#define _GNU_SOURCE
#include "snap/snap_hint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm/kvm_vm.h"
#include "lib/bitmap.h"
#include "lib/fj.h"
#include "lib/pagemap.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif


struct ws_hint *hint_new(void)
{
    struct ws_hint *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    atomic_init(&h->refs, 1);
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

struct ws_hint *hint_get(struct ws_hint *h)
{
    if (h)
        atomic_fetch_add(&h->refs, 1);
    return h;
}

void hint_put(struct ws_hint *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) > 1)
        return;
    free(h->written);
    free(h->read);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

struct range_list {
    struct hint_range *v;
    size_t n, cap;
    uint64_t pages, max_pages;
};

/* Adds [start, end) up to the list's page budget; -ENOMEM. */
static int add_range(struct range_list *l, uint64_t start, uint64_t end)
{
    uint64_t room = (l->max_pages - l->pages) * FJ_PAGE_SIZE;
    if (end - start > room)
        end = start + room;
    if (end <= start)
        return 0;
    if (l->n && l->v[l->n - 1].end == start) {
        l->v[l->n - 1].end = end;
    } else {
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            struct hint_range *v = realloc(l->v, cap * sizeof(*v));
            if (!v)
                return -ENOMEM;
            l->v = v;
            l->cap = cap;
        }
        l->v[l->n++] = (struct hint_range){start, end};
    }
    l->pages += (end - start) / FJ_PAGE_SIZE;
    return 0;
}

/* Adds the pages of the copied range [start, end) (bytes) that the child
 * wrote itself, those set in written_by_child (NULL: all of them). */
static int add_written(struct range_list *l, const uint64_t *written_by_child, uint64_t start,
                       uint64_t end)
{
    if (!written_by_child)
        return add_range(l, start, end);
    uint64_t n = end / FJ_PAGE_SIZE, q;
    for (uint64_t p = fj_bits_next_run(written_by_child, n, start / FJ_PAGE_SIZE, &q); p < n;
         p = fj_bits_next_run(written_by_child, n, q, &q)) {
        int err = add_range(l, p * FJ_PAGE_SIZE, q * FJ_PAGE_SIZE);
        if (err < 0)
            return err;
    }
    return 0;
}

int hint_learn(struct ws_hint *h, struct kvm_vm *vm)
{
    if (!h || !vm->ram_private)
        return 0;
    /* A page the last hint copied but this child never wrote stays out:
     * otherwise every hint would carry all of its predecessors' pages. */
    uint64_t *wrote = malloc(kvm_vm_bitmap_bytes(vm));
    if (wrote && kvm_vm_peek_dirty(vm, wrote) < 0) {
        free(wrote);
        wrote = NULL;
    }
    int fd = fj_pagemap_fd(); /* without PAGEMAP_SCAN no hint is kept */
    if (fd < 0) {
        free(wrote);
        return fd;
    }
    struct range_list written = {.max_pages = HINT_MAX_WRITTEN};
    struct range_list read = {.max_pages = HINT_MAX_READ};
    struct page_region regions[256];
    uint64_t base = (uint64_t)(uintptr_t)vm->ram, end = base + vm->ram_bytes;
    int err = 0;
    for (uint64_t at = base; at < end && err == 0;) {
        struct pm_scan_arg arg = {
            .size = sizeof(arg),
            .start = at,
            .end = end,
            .vec = (uint64_t)(uintptr_t)regions,
            .vec_len = sizeof(regions) / sizeof(regions[0]),
            .category_mask = PAGE_IS_PRESENT,
            .return_mask = PAGE_IS_PRESENT | PAGE_IS_FILE | PAGE_IS_PFNZERO,
        };
        int n = ioctl(fd, PAGEMAP_SCAN, &arg);
        if (n < 0) {
            err = -errno;
            break;
        }
        for (int i = 0; i < n && err == 0; i++) {
            struct page_region *r = &regions[i];
            if (r->categories & PAGE_IS_PFNZERO)
                continue; /* the shared zero page: nothing to gain */
            if (r->categories & PAGE_IS_FILE)
                err = add_range(&read, r->start - base, r->end - base);
            else
                err = add_written(&written, wrote, r->start - base, r->end - base);
        }
        if (arg.walk_end <= at)
            break;
        at = arg.walk_end;
    }
    free(wrote);
    if (err < 0) {
        free(written.v);
        free(read.v);
        return err;
    }
    pthread_mutex_lock(&h->lock);
    free(h->written);
    free(h->read);
    h->written = written.v;
    h->n_written = written.n;
    h->read = read.v;
    h->n_read = read.n;
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static void populate(struct kvm_vm *vm, const struct hint_range *v, size_t n, int advice)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].end <= vm->ram_bytes) /* a failure only leaves the page to a later fault */
            madvise(vm->ram + v[i].start, v[i].end - v[i].start, advice);
}

void hint_prefault(struct ws_hint *h, struct kvm_vm *vm)
{
    if (!h || !vm->ram_private)
        return;
    pthread_mutex_lock(&h->lock);
    populate(vm, h->written, h->n_written, MADV_POPULATE_WRITE);
    populate(vm, h->read, h->n_read, MADV_POPULATE_READ);
    pthread_mutex_unlock(&h->lock);
}
