/* SPDX-License-Identifier: MIT */
/*
 * Every timer rule, in one place (WireGuard's, section 6 of its paper; constants in messages.h).
 * The data threads only record timestamps; the control loop evaluates these rules every
 * TIMERS_TICK_NSEC, so no timer is armed per packet.
 *
 *  1. Handshake retry: an initiation without a response is resent after REKEY_TIMEOUT plus a
 *     random jitter of up to REKEY_TIMEOUT_JITTER_MAX_MS, for at most REKEY_ATTEMPT_TIME; then
 *     we give up until something needs a session again.
 *  2. Session wanted: a frame with no usable key pair, or the initiator's key pair older than
 *     REKEY_AFTER_TIME (or REKEY_AFTER_MESSAGES) when sending, or older than REJECT_AFTER_TIME -
 *     KEEPALIVE_TIMEOUT - REKEY_TIMEOUT when receiving, starts a handshake (data threads set
 *     peer->want_handshake).
 *  3. No answer: data sent and nothing authenticated received for KEEPALIVE_TIMEOUT +
 *     REKEY_TIMEOUT starts a new handshake (the peer may have restarted and lost its keys).
 *  4. Passive keepalive: data received and nothing sent for KEEPALIVE_TIMEOUT sends an empty
 *     data message, so the sender's rule 3 does not fire on a one-way flow.
 *  5. Zeroing: no new handshake for REJECT_AFTER_TIME * 3 wipes every key pair.
 *  6. Retired key pairs are wiped once both data threads have passed a quiescent point.
 *  7. Under load (the handshake queue above UNDER_LOAD_QUEUE_LEN) lasts UNDER_LOAD_AFTER_TIME
 *     after the queue drains (device.c).
 */
#include <sodium.h>

#include "handshake.h"
#include "log.h"
#include "manager.h"
#include "path.h"
#include "relay-client.h"
#include "timers.h"

static uint64_t jitter_ns(void) {
        return (uint64_t) randombytes_uniform(REKEY_TIMEOUT_JITTER_MAX_MS) * NSEC_PER_MSEC;
}

static uint64_t retry_interval_ns;

void timers_want_handshake(struct device *d, uint64_t now) {
        struct peer *p = &d->peer;
        struct endpoint e;

        peer_get_endpoint(p, &e);
        if (e.len == 0 && p->n_candidates == 0 && !p->relay_introduced)
                return; /* nowhere to send: waiting for the peer to come to us */
        if (p->handshake_attempts_started_ns != 0)
                return; /* rule 1 is already retrying */
        if (atomic_load(&p->next) && now - p->last_handshake_ns < REKEY_TIMEOUT * NSEC_PER_SEC)
                return; /* we just answered the peer's handshake: its first packet confirms it */
        p->handshake_attempts_started_ns = now;
        p->handshake_attempts = 1;
        retry_interval_ns = REKEY_TIMEOUT * NSEC_PER_SEC + jitter_ns();
        (void) handshake_send_initiation(d);
}

void timers_tick(struct device *d, uint64_t now) {
        struct peer *p = &d->peer;
        char buf[ENDPOINT_STRLEN];
        uint64_t t;

        /* Rule 1. */
        if (p->handshake_attempts_started_ns != 0 &&
            now - p->last_sent_handshake_ns >= retry_interval_ns) {
                struct endpoint e;

                peer_get_endpoint(p, &e);
                if (now - p->handshake_attempts_started_ns >= REKEY_ATTEMPT_TIME * NSEC_PER_SEC) {
                        log_warning("no handshake response from %s after %u attempts; waiting "
                                    "for traffic to try again",
                                    endpoint_to_string(&e, buf), p->handshake_attempts);
                        p->handshake_attempts_started_ns = 0;
                        p->handshake_attempts = 0;
                        noise_handshake_wipe(&p->handshake);
                        p->handshake_state = HANDSHAKE_ZEROED;
                } else {
                        p->handshake_attempts++;
                        retry_interval_ns = REKEY_TIMEOUT * NSEC_PER_SEC + jitter_ns();
                        log_debug("no handshake response from %s, retrying (attempt %u)",
                                  endpoint_to_string(&e, buf), p->handshake_attempts);
                        (void) handshake_send_initiation(d);
                }
        }

        /* Rule 2. */
        if (atomic_exchange(&p->want_handshake, false))
                timers_want_handshake(d, now);

        /* Rule 3. */
        t = atomic_load_explicit(&p->tx_unanswered_since_ns, memory_order_relaxed);
        if (t != 0 && now - t >= (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * NSEC_PER_SEC) {
                atomic_store_explicit(&p->tx_unanswered_since_ns, 0, memory_order_relaxed);
                log_debug("no reply to data for %d s, new handshake",
                          KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
                manager_session_lost(d);
                timers_want_handshake(d, now);
        }

        /* Rule 4. */
        t = atomic_load_explicit(&p->rx_unanswered_since_ns, memory_order_relaxed);
        if (t != 0 && now - t >= KEEPALIVE_TIMEOUT * NSEC_PER_SEC)
                (void) handshake_send_keepalive(d);

        /* Rule 5. */
        if (p->last_handshake_ns != 0 &&
            now - p->last_handshake_ns >= 3 * REJECT_AFTER_TIME * NSEC_PER_SEC &&
            (atomic_load(&p->current) || atomic_load(&p->previous) || atomic_load(&p->next))) {
                log_info("no handshake for %d s: key material wiped", 3 * REJECT_AFTER_TIME);
                handshake_clear_keys(d);
                manager_session_lost(d);
        }

        /* The current key pair has expired (REJECT_AFTER_TIME) and no new one came. */
        struct keypair *cur = atomic_load(&p->current);
        if (cur && d->state == TUNNEL_CONNECTED &&
            now - cur->birth_ns >= REJECT_AFTER_TIME * NSEC_PER_SEC)
                manager_session_lost(d);

        /* NAT traversal: relay fallback, direct-path probes, NAT keepalives, registration. */
        path_tick(d, now);
        relay_client_tick(d->relay, now);

        manager_tick(d, now);

        /* Rule 6. */
        device_collect_retired(d);
        /* A confirmation put off for lack of retirement room (handshake_confirm_next). */
        if (atomic_exchange(&p->next_confirmed, false))
                handshake_confirm_next(d);
}
