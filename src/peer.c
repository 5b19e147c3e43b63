/* SPDX-License-Identifier: MIT */
#include <sched.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "peer.h"

int peer_new(const struct qs_markers *qs, uint32_t slot, uint64_t id, struct peer **ret) {
        struct peer *p;

        if (slot >= MESH_MAX_PEERS)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->slot = slot;
        p->id = id;
        pthread_mutex_init(&p->endpoint_lock, NULL);
        if (qs)
                p->qs = *qs;
        *ret = p;
        return 0;
}

static void keypair_free(struct keypair *kp) {
        if (kp) {
                keypair_wipe(kp);
                free(kp);
        }
}

struct peer *peer_free(struct peer *p) {
        if (!p)
                return NULL;
        /* No data thread can reach p any more (its threads are gone, or it was unpublished and
         * every thread has passed a quiescent point since: device_collect_peers), and its key
         * pairs are reached only through p: they go now, whatever the markers say this very
         * moment (a thread inside a batch of other peers' packets would keep them for ever). */
        keypair_free(atomic_exchange(&p->next, NULL));
        keypair_free(atomic_exchange(&p->current, NULL));
        keypair_free(atomic_exchange(&p->previous, NULL));
        for (size_t i = 0; i < p->n_retired; i++)
                keypair_free(p->retired[i].kp);
        p->n_retired = 0;
        noise_handshake_wipe(&p->handshake);
        cookie_maker_wipe(&p->cookie_maker);
        pthread_mutex_destroy(&p->endpoint_lock);
        free(p->address);
        free(p->name);
        free(p);
        return NULL;
}

void peer_get_endpoint(struct peer *p, struct endpoint *ret) {
        unsigned seq;

        do {
                seq = atomic_load_explicit(&p->endpoint_seq, memory_order_acquire);
                if (seq & 1) {
                        sched_yield();
                        continue;
                }
                *ret = p->endpoint;
                atomic_thread_fence(memory_order_acquire);
        } while (seq & 1 || seq != atomic_load_explicit(&p->endpoint_seq, memory_order_relaxed));
}

void peer_set_endpoint(struct peer *p, const struct endpoint *e) {
        pthread_mutex_lock(&p->endpoint_lock);
        atomic_fetch_add_explicit(&p->endpoint_seq, 1, memory_order_acq_rel);
        atomic_thread_fence(memory_order_release);
        p->endpoint = *e;
        atomic_fetch_add_explicit(&p->endpoint_seq, 1, memory_order_release);
        pthread_mutex_unlock(&p->endpoint_lock);
}

bool peer_forget_source(struct peer *p, const struct endpoint *stale) {
        bool forget;

        pthread_mutex_lock(&p->endpoint_lock);
        /* Only the endpoint the caller saw fail: if the rx thread or the control loop moved it
         * meanwhile (roaming), that newer endpoint stays as it is; should its source be gone
         * too, its own first failed send clears it. */
        forget = p->endpoint.src.family != 0 && endpoint_equal(&p->endpoint, stale) &&
                 endpoint_same_source(&p->endpoint, stale);
        if (forget) {
                atomic_fetch_add_explicit(&p->endpoint_seq, 1, memory_order_acq_rel);
                atomic_thread_fence(memory_order_release);
                p->endpoint.src.family = 0;
                atomic_fetch_add_explicit(&p->endpoint_seq, 1, memory_order_release);
        }
        pthread_mutex_unlock(&p->endpoint_lock);
        return forget;
}

/*
 * Key pair retirement: a quiescent-state scheme (a tiny RCU). Each data thread bumps its marker
 * (struct qs_marker: one per thread, every transmit and receive thread of every queue) when it
 * starts a batch (odd) and when it ends it (even); it loads the key pair
 * pointers only inside a batch, and a batch never waits (datapath.c sends after leaving it).
 * The control loop unpublishes a key pair (atomic store of the pointer), then snapshots every
 * marker. The key pair may be wiped once, for each thread, the snapshot was even (the thread
 * was between batches, so its next batch loads the new pointers) or the marker has moved since
 * (the batch that might hold the old pointer has ended).
 *
 * Memory ordering, the part C11 is strict about. The argument needs: if the thread's batch
 * loaded the old pointer, the control loop's snapshot sees that batch's odd marker. That is the
 * store-buffering shape (thread: write marker, read pointer; control loop: write pointer, read
 * marker), which acquire/release does not forbid: both loads may read the old values. So both
 * sides put a seq_cst fence between their store and their load (qs_enter in datapath.c, and
 * peer_retire_keypair() here). With the two fences, one of them is first in the single total
 * order, and the load after the second fence sees the store before the first (C11 7.17.3, the
 * single total order of seq_cst operations and fences): either the thread reads the new
 * pointer, or we read the odd marker.
 * The even marker at the end of a batch is a release increment, and our load of it is acquire
 * (seq_cst), so every use of the key pair in that batch happens before the wipe.
 */
/* Without data threads (none started, or all joined) the markers stay 0, even: nothing holds a
 * retired key pair. A joined thread left its last batch, so its marker is even too. Markers
 * past n read as 0. */
static void markers(const struct peer *p, uint64_t ret[QS_MAX_THREADS]) {
        for (unsigned i = 0; i < QS_MAX_THREADS; i++)
                ret[i] = i < p->qs.n ? atomic_load(&p->qs.m[i].v) : 0;
}

static bool quiescent_since(uint64_t snapshot, uint64_t now) {
        return (snapshot & 1) == 0 || snapshot != now;
}

/* Has every thread passed a quiescent point between the snapshot and now? */
static bool all_quiescent_since(const uint64_t snapshot[QS_MAX_THREADS],
                                const uint64_t now[QS_MAX_THREADS]) {
        for (unsigned i = 0; i < QS_MAX_THREADS; i++)
                if (!quiescent_since(snapshot[i], now[i]))
                        return false;
        return true;
}

void peer_collect_retired(struct peer *p) {
        uint64_t now[QS_MAX_THREADS];
        size_t kept = 0;

        markers(p, now);
        for (size_t i = 0; i < p->n_retired; i++) {
                struct retired_keypair *r = &p->retired[i];
                if (all_quiescent_since(r->qs, now)) {
                        keypair_wipe(r->kp);
                        free(r->kp);
                } else
                        p->retired[kept++] = *r;
        }
        p->n_retired = kept;
}

bool peer_retire_room(struct peer *p, size_t n) {
        if (p->n_retired + n + HANDSHAKE_RETIRE_RESERVE > MAX_RETIRED_KEYPAIRS)
                peer_collect_retired(p);
        return p->n_retired + n + HANDSHAKE_RETIRE_RESERVE <= MAX_RETIRED_KEYPAIRS;
}

void peer_retire_keypair(struct peer *p, struct keypair *kp) {
        static struct log_ratelimit full_ratelimit = LOG_RATELIMIT_INIT(5, 1);
        unsigned suppressed = 0;
        struct retired_keypair *r;

        if (!kp)
                return;
        atomic_store(&kp->valid, false);
        if (p->n_retired == MAX_RETIRED_KEYPAIRS)
                peer_collect_retired(p);
        if (p->n_retired == MAX_RETIRED_KEYPAIRS) {
                /* Cannot happen: handshakes retire only with room to spare
                 * (peer_retire_room), and the reserve covers dropping all three key pairs.
                 * Should it anyway, a data thread may still be sealing with kp: leave it
                 * alone (a leak) rather than wipe or free it under that thread. */
                if (log_ratelimit_below(&full_ratelimit, now_ns(), &suppressed))
                        log_error("key pair retire list full: leaving a key pair in memory");
                return;
        }
        /* The pointer was unpublished before this call (seq_cst store or exchange); the fence
         * orders it before the marker loads below. See the comment above. */
        atomic_thread_fence(memory_order_seq_cst);
        r = &p->retired[p->n_retired++];
        r->kp = kp;
        markers(p, r->qs);
}

/*
 * Peer retirement: the same argument as for key pairs, one level up. The data threads load a
 * peer pointer from the table (device.c's slots) only inside a batch and drop it at the batch's
 * end. The control loop unpublishes the slot (seq_cst store), then snapshots all the markers
 * behind a seq_cst fence (here); once each marker was even at the snapshot or has moved since,
 * no batch can still hold the pointer, and the peer (with its key pairs) may be freed.
 */
void peer_retire_start(struct peer *p, uint64_t ret_qs[QS_MAX_THREADS]) {
        atomic_thread_fence(memory_order_seq_cst);
        markers(p, ret_qs);
}

bool peer_retired(const struct peer *p, const uint64_t qs[QS_MAX_THREADS]) {
        uint64_t now[QS_MAX_THREADS];

        markers(p, now);
        return all_quiescent_since(qs, now);
}

bool peer_has_session(struct peer *p, uint32_t key_idx) {
        struct keypair *kp[] = { atomic_load(&p->current), atomic_load(&p->previous),
                                 atomic_load(&p->next) };

        for (size_t i = 0; i < ELEMENTSOF(kp); i++)
                if (kp[i] && kp[i]->local_index == key_idx)
                        return true;
        return false;
}

void peer_clear_keys(struct peer *p) {
        peer_retire_keypair(p, atomic_exchange(&p->next, NULL));
        peer_retire_keypair(p, atomic_exchange(&p->current, NULL));
        peer_retire_keypair(p, atomic_exchange(&p->previous, NULL));
        noise_handshake_wipe(&p->handshake);
        p->handshake_state = HANDSHAKE_ZEROED;
}

void peer_install_current(struct peer *p, struct keypair *kp) {
        struct keypair *old_prev = atomic_load(&p->previous), *old_cur = atomic_load(&p->current);

        atomic_store(&p->previous, old_cur);
        atomic_store(&p->current, kp);
        peer_retire_keypair(p, old_prev);
}

bool peer_confirm_next(struct peer *p) {
        struct keypair *kp;

        if (!atomic_load(&p->next))
                return false;
        if (!peer_retire_room(p, 1)) {
                /* Try again on the next wake-up or tick; data on next keeps arriving meanwhile. */
                atomic_store(&p->next_confirmed, true);
                return false;
        }
        kp = atomic_exchange(&p->next, NULL);
        if (!kp)
                return false;
        peer_install_current(p, kp);
        return true;
}

bool peer_eventv(struct peer *p, enum tunnel_event event, const char *reason, va_list ap) {
        enum tunnel_state next;
        bool changed;

        next = tunnel_state_next(p->state, event, &changed);
        if (!changed || next == p->state)
                return false;
        log_debug("peer: %s --%s--> %s", tunnel_state_to_string(p->state),
                  tunnel_event_to_string(event), tunnel_state_to_string(next));
        if (next == TUNNEL_FAILED) {
                snprintf(p->failure_reason, sizeof(p->failure_reason), "%s",
                         "the handshake did not complete");
                if (reason)
                        vsnprintf(p->failure_reason, sizeof(p->failure_reason), reason, ap);
        } else
                p->failure_reason[0] = 0;
        p->state = next;
        return true;
}

bool peer_event(struct peer *p, enum tunnel_event event, const char *reason, ...) {
        va_list ap;
        bool changed;

        va_start(ap, reason);
        changed = peer_eventv(p, event, reason, ap);
        va_end(ap);
        return changed;
}
