/* Bitmaps of pages: bit i of word i / 64 stands for page i (dirty logs,
 * diff deltas, what a live copy has copied). Header only. */
#ifndef FJ_BITMAP_H
#define FJ_BITMAP_H

#include "lib/fj.h"

static inline void fj_bit_set(uint64_t *bits, uint64_t i) { bits[i / 64] |= 1ULL << (i % 64); }
static inline bool fj_bit_test(const uint64_t *bits, uint64_t i) { return bits[i / 64] >> (i % 64) & 1; }
static inline void fj_bit_clear(uint64_t *bits, uint64_t i) { bits[i / 64] &= ~(1ULL << (i % 64)); }

/* Sets bits [p, q), a word at a time where it can. */
static inline void fj_bits_set(uint64_t *bits, uint64_t p, uint64_t q) {
    for (; p < q && p % 64; p++)
        fj_bit_set(bits, p);
    for (; p + 64 <= q; p += 64)
        bits[p / 64] = ~0ULL;
    for (; p < q; p++)
        fj_bit_set(bits, p);
}

/* Clears bits [p, q), a word at a time where it can; returns how many
 * were set. */
static inline uint64_t fj_bits_clear(uint64_t *bits, uint64_t p, uint64_t q) {
    uint64_t cleared = 0;
    for (; p < q && p % 64; p++) {
        cleared += fj_bit_test(bits, p);
        fj_bit_clear(bits, p);
    }
    for (; p + 64 <= q; p += 64) {
        cleared += (uint64_t)__builtin_popcountll(bits[p / 64]);
        bits[p / 64] = 0;
    }
    for (; p < q; p++) {
        cleared += fj_bit_test(bits, p);
        fj_bit_clear(bits, p);
    }
    return cleared;
}

/* The first bit at or after p whose value is want, n when none; whole
 * words at a time. */
static inline uint64_t fj_bits_find(const uint64_t *bits, uint64_t n, uint64_t p, bool want) {
    while (p < n) {
        uint64_t w = (want ? bits[p / 64] : ~bits[p / 64]) >> (p % 64);
        if (w)
            return FJ_MIN(p + (uint64_t)__builtin_ctzll(w), n);
        p = FJ_ALIGN_DOWN(p, 64) + 64;
    }
    return n;
}

/* The next run of set bits among the first n: its first bit at or after p (n when
 * none) and, in *end, the first clear bit after it (at most n). Walk a
 * bitmap's runs with
 *     for (uint64_t q, p = fj_bits_next_run(b, n, 0, &q); p < n; p = fj_bits_next_run(b, n, q, &q))
 */
static inline uint64_t fj_bits_next_run(const uint64_t *bits, uint64_t n, uint64_t p,
                                        uint64_t *end) {
    p = fj_bits_find(bits, n, p, true);
    *end = p < n ? fj_bits_find(bits, n, p, false) : n;
    return p;
}

#endif
