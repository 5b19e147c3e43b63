/* SPDX-License-Identifier: MIT */
/*
 * A small fork-join pool: the owner thread hands out a batch of n items, and it and the pool's
 * threads each take chunks of WORKERS_CHUNK items (an atomic claim, no lock) and call the
 * pool's function on every item of the chunk once. workers_run returns when every item is
 * done, so what the function wrote is the owner's again, and whatever the owner holds (a
 * quiescent-state batch, buffers) stays valid for the workers throughout.
 *
 * The owner never waits for a worker to wake: it starts on the items at once, and a worker
 * that is slow to wake finds them all taken and goes back to sleep. It waits only for chunks a
 * worker already claimed (spinning briefly, then on a futex). Workers sleep on a futex between
 * batches, after a short spin.
 *
 * One owner per pool: workers_run is not reentrant and must be called from one thread at a
 * time. No allocation, lock or system call per item; at most one futex wake per batch (when a
 * worker sleeps) and one futex wait (when a claimed chunk is still running).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum {
        WORKERS_MAX = 8,       /* threads in one pool */
        WORKERS_CHUNK = 4,     /* items claimed at once */
        WORKERS_MAX_ITEMS = 0xffff, /* per batch (the claim word holds n in 16 bits) */
};

/* Called for item i of a batch, from the owner or a worker. */
typedef void (*workers_fn)(void *ctx, unsigned i);

struct workers {
        workers_fn fn;
        void *ctx;
        unsigned n_threads;
        pthread_t threads[WORKERS_MAX];
        /* The batch: generation (high 32 bits), its size (16 bits), the next unclaimed item
         * (low 16 bits). A claim is a compare-and-swap that fails once the generation moved. */
        uint8_t pad0[64];
        _Atomic uint64_t claim;
        /* Futex words: the generation workers sleep on, the items done the owner waits on
         * (each on a cache line of its own: padding, so the struct needs no alignment). */
        uint8_t pad1[64];
        _Atomic uint32_t gen;
        _Atomic uint32_t sleepers;
        _Atomic bool stopping;
        uint8_t pad2[64];
        _Atomic uint32_t done;
        _Atomic uint32_t owner_waiting;
        /* Items done by the workers (not the owner), for the counters. */
        _Atomic uint64_t worker_items;
        uint8_t pad3[64];
};

/* Start n_threads (1..WORKERS_MAX) threads named "<name>N" (name: at most 14 characters) that
 * call fn(ctx, i). The caller's signal mask is inherited: block signals around this call if
 * the threads must not take them. -errno; on failure nothing is left running. */
int workers_start(struct workers *w, unsigned n_threads, workers_fn fn, void *ctx,
                  const char *name);
/* Do items 0..n-1 (n <= WORKERS_MAX_ITEMS), on the owner and the workers; returns when all are
 * done. */
void workers_run(struct workers *w, unsigned n);
/* Stop and join the threads (a pool never started, or stopped already, is fine). */
void workers_stop(struct workers *w);
