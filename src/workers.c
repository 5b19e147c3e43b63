/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "workers.h"

/* How long a thread spins before it sleeps: a worker between batches (under load the next one
 * comes within microseconds), the owner on a chunk a worker is finishing. */
#define WORKER_SPINS 200
#define OWNER_SPINS 400

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#endif
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
        (void) syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word) {
        (void) syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#define CLAIM(gen, n, next) (((uint64_t) (gen) << 32) | ((uint64_t) (n) << 16) | (uint64_t) (next))
#define CLAIM_GEN(c) ((uint32_t) ((c) >> 32))
#define CLAIM_N(c) ((unsigned) (((c) >> 16) & 0xffff))
#define CLAIM_NEXT(c) ((unsigned) ((c) & 0xffff))

/* Take chunks of generation gen until none is left; returns the items done. */
static unsigned take_chunks(struct workers *w, uint32_t gen) {
        unsigned total = 0;
        uint64_t c = atomic_load_explicit(&w->claim, memory_order_acquire);

        for (;;) {
                if (CLAIM_GEN(c) != gen || CLAIM_NEXT(c) >= CLAIM_N(c))
                        return total;
                unsigned first = CLAIM_NEXT(c), n = CLAIM_N(c);
                unsigned last = first + WORKERS_CHUNK < n ? first + WORKERS_CHUNK : n;
                if (!atomic_compare_exchange_weak_explicit(&w->claim, &c,
                                                           CLAIM(gen, n, last),
                                                           memory_order_acquire,
                                                           memory_order_acquire))
                        continue; /* c holds the newer value */
                for (unsigned i = first; i < last; i++)
                        w->fn(w->ctx, i);
                total += last - first;
                /* Release: the items' results before the count the owner waits on. */
                uint32_t done = atomic_fetch_add_explicit(&w->done, last - first,
                                                          memory_order_seq_cst) +
                                (last - first);
                if (done == n && atomic_load_explicit(&w->owner_waiting, memory_order_seq_cst))
                        futex_wake(&w->done);
                c = atomic_load_explicit(&w->claim, memory_order_acquire);
        }
}

static void *worker_main(void *userdata) {
        struct workers *w = userdata;
        uint32_t seen = atomic_load_explicit(&w->gen, memory_order_acquire);

        for (;;) {
                uint32_t gen = atomic_load_explicit(&w->gen, memory_order_acquire);
                unsigned spins = 0;

                while (gen == seen && !atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
                        if (spins++ < WORKER_SPINS) {
                                cpu_relax();
                        } else {
                                /* Sleep; the owner wakes sleepers after a new generation. */
                                atomic_fetch_add_explicit(&w->sleepers, 1, memory_order_seq_cst);
                                if (atomic_load_explicit(&w->gen, memory_order_seq_cst) == seen &&
                                    !atomic_load_explicit(&w->stopping, memory_order_seq_cst))
                                        futex_wait(&w->gen, seen);
                                atomic_fetch_sub_explicit(&w->sleepers, 1, memory_order_seq_cst);
                                spins = 0;
                        }
                        gen = atomic_load_explicit(&w->gen, memory_order_acquire);
                }
                if (atomic_load_explicit(&w->stopping, memory_order_relaxed))
                        return NULL;
                seen = gen;
                unsigned n = take_chunks(w, gen);
                if (n)
                        atomic_fetch_add_explicit(&w->worker_items, n, memory_order_relaxed);
        }
}

void workers_run(struct workers *w, unsigned n) {
        if (n == 0)
                return;
        if (w->n_threads == 0 || n > WORKERS_MAX_ITEMS) {
                for (unsigned i = 0; i < n; i++)
                        w->fn(w->ctx, i);
                return;
        }
        uint32_t gen = atomic_load_explicit(&w->gen, memory_order_relaxed) + 1;

        atomic_store_explicit(&w->done, 0, memory_order_relaxed);
        /* The items (written by the caller before this call) and done = 0 before the claim
         * word that opens them. */
        atomic_store_explicit(&w->claim, CLAIM(gen, n, 0), memory_order_seq_cst);
        atomic_store_explicit(&w->gen, gen, memory_order_seq_cst);
        if (atomic_load_explicit(&w->sleepers, memory_order_seq_cst) > 0)
                futex_wake(&w->gen);

        (void) take_chunks(w, gen);

        /* Wait for the chunks the workers claimed. */
        unsigned spins = 0;
        for (;;) {
                uint32_t done = atomic_load_explicit(&w->done, memory_order_seq_cst);
                if (done == n)
                        break;
                if (spins++ < OWNER_SPINS) {
                        cpu_relax();
                        continue;
                }
                atomic_store_explicit(&w->owner_waiting, 1, memory_order_seq_cst);
                if (atomic_load_explicit(&w->done, memory_order_seq_cst) != n)
                        futex_wait(&w->done, done);
                atomic_store_explicit(&w->owner_waiting, 0, memory_order_seq_cst);
        }
}

void workers_stop(struct workers *w) {
        atomic_store_explicit(&w->stopping, true, memory_order_seq_cst);
        /* A generation step wakes sleepers; spinners see stopping. */
        atomic_fetch_add_explicit(&w->gen, 1, memory_order_seq_cst);
        futex_wake(&w->gen);
        for (unsigned i = 0; i < w->n_threads; i++)
                pthread_join(w->threads[i], NULL);
        w->n_threads = 0;
}

int workers_start(struct workers *w, unsigned n_threads, workers_fn fn, void *ctx,
                  const char *name) {
        if (n_threads < 1 || n_threads > WORKERS_MAX || !fn || strlen(name) > 14)
                return -EINVAL;
        memset(w, 0, sizeof(*w));
        w->fn = fn;
        w->ctx = ctx;
        for (unsigned i = 0; i < n_threads; i++) {
                char tname[16];
                int r = -pthread_create(&w->threads[i], NULL, worker_main, w);
                if (r < 0) {
                        workers_stop(w);
                        return r;
                }
                w->n_threads = i + 1;
                snprintf(tname, sizeof(tname), "%s%u", name, i);
                pthread_setname_np(w->threads[i], tname);
        }
        return 0;
}
