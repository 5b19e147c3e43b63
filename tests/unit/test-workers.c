/* SPDX-License-Identifier: MIT */
/* The fork-join pool (workers.h): every item of every batch done exactly once and its result
 * visible to the owner when workers_run returns, over many batches of every size (small ones
 * the owner finishes before a worker wakes, large ones shared), with workers that sleep between
 * batches, with one to WORKERS_MAX threads; and a clean stop. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "workers.h"

#define ITEMS 700

struct ctx {
        /* Per item: how many times it was done, and a result the owner checks. */
        _Atomic unsigned times[ITEMS];
        uint64_t result[ITEMS];
        uint64_t input[ITEMS];
        pthread_t owner;
        _Atomic unsigned on_owner, on_workers;
};

static void work(void *userdata, unsigned i) {
        struct ctx *c = userdata;
        uint64_t v = c->input[i];

        /* Some work, so that batches are shared. */
        for (unsigned k = 0; k < 200; k++)
                v = v * 6364136223846793005ULL + 1442695040888963407ULL;
        c->result[i] = v;
        atomic_fetch_add(&c->times[i], 1);
        if (pthread_equal(pthread_self(), c->owner))
                atomic_fetch_add(&c->on_owner, 1);
        else
                atomic_fetch_add(&c->on_workers, 1);
}

static uint64_t expect(uint64_t v) {
        for (unsigned k = 0; k < 200; k++)
                v = v * 6364136223846793005ULL + 1442695040888963407ULL;
        return v;
}

static void run_batches(unsigned threads, unsigned batches, bool pause_between) {
        struct ctx *c = calloc(1, sizeof(*c));
        struct workers *w = calloc(1, sizeof(*w));
        unsigned bad_times = 0, bad_result = 0;

        c->owner = pthread_self();
        CHECK_EQ_INT(workers_start(w, threads, work, c, "test-worker"), 0);
        CHECK_EQ_INT(w->n_threads, threads);
        for (unsigned b = 0; b < batches; b++) {
                unsigned n = 1 + (b * 97) % ITEMS;
                for (unsigned i = 0; i < n; i++) {
                        c->input[i] = (uint64_t) b << 32 | i;
                        atomic_store(&c->times[i], 0);
                }
                workers_run(w, n);
                for (unsigned i = 0; i < n; i++) {
                        bad_times += atomic_load(&c->times[i]) != 1;
                        bad_result += c->result[i] != expect(c->input[i]);
                }
                if (pause_between && b % 16 == 0) {
                        /* Long enough for the workers to stop spinning and sleep. */
                        struct timespec ts = { .tv_nsec = 2 * 1000 * 1000 };
                        nanosleep(&ts, NULL);
                }
        }
        CHECKF(bad_times == 0, "%u items not done exactly once (%u threads)", bad_times, threads);
        CHECKF(bad_result == 0, "%u results not seen by the owner (%u threads)", bad_result,
               threads);
        /* Every item done by someone, and the counter of the workers' share matches. */
        unsigned workers_did = atomic_load(&c->on_workers);
        CHECK_EQ_INT(atomic_load(&w->worker_items), workers_did);
        workers_stop(w);
        CHECK_EQ_INT(w->n_threads, 0);
        workers_stop(w); /* twice is fine */
        free(w);
        free(c);
}

/* Large batches with several workers: the workers take part (on 2 CPUs or more; on one CPU
 * the owner may do all, which is also correct, so this only counts). */
static void test_shared(void) {
        struct ctx *c = calloc(1, sizeof(*c));
        struct workers *w = calloc(1, sizeof(*w));
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        c->owner = pthread_self();
        CHECK_EQ_INT(workers_start(w, 1, work, c, "test-worker"), 0);
        for (unsigned b = 0; b < 2000 && atomic_load(&c->on_workers) == 0; b++)
                workers_run(w, ITEMS);
        if (cpus > 1)
                CHECKF(atomic_load(&c->on_workers) > 0, "the worker never took an item");
        workers_stop(w);
        free(w);
        free(c);
}

static void test_bad_arguments(void) {
        struct workers w;
        struct ctx c;

        CHECK_EQ_INT(workers_start(&w, 0, work, &c, "x"), -EINVAL);
        CHECK_EQ_INT(workers_start(&w, WORKERS_MAX + 1, work, &c, "x"), -EINVAL);
        CHECK_EQ_INT(workers_start(&w, 1, NULL, &c, "x"), -EINVAL);
        CHECK_EQ_INT(workers_start(&w, 1, work, &c, "a-name-too-long"), -EINVAL);
}

/* A pool without threads (never started) does the items on the owner. */
static void test_no_threads(void) {
        struct ctx *c = calloc(1, sizeof(*c));
        struct workers *w = calloc(1, sizeof(*w));

        c->owner = pthread_self();
        w->fn = work;
        w->ctx = c;
        workers_run(w, 10);
        CHECK_EQ_INT(atomic_load(&c->on_owner), 10);
        workers_stop(w);
        free(w);
        free(c);
}

int main(void) {
        test_bad_arguments();
        test_no_threads();
        test_shared();
        for (unsigned t = 1; t <= WORKERS_MAX; t *= 2)
                run_batches(t, 3000, false);
        run_batches(3, 400, true);
        return test_summary();
}
