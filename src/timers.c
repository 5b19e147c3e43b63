/* SPDX-License-Identifier: MIT */
/*
 * Every timer rule, in one place (WireGuard's, section 6 of its paper; constants in messages.h).
 * The data threads only record timestamps; the control loop evaluates these rules every
 * TIMERS_TICK_NSEC while something is under way, and once the tunnel has settled (traffic or
 * not: device.c) when the next one falls due (timers_next_due) but at least every
 * TIMERS_QUIET_TICK_NSEC, so no timer is armed per packet.
 *
 *  1. Handshake retry: an initiation without a response is resent after REKEY_TIMEOUT plus a
 *     random jitter of up to REKEY_TIMEOUT_JITTER_MAX_MS, for at most REKEY_ATTEMPT_TIME; then
 *     we give up until something needs a session again.
 *  2. Session wanted: a frame with no usable key pair, or the initiator's key pair older than
 *     REKEY_AFTER_TIME (or REKEY_AFTER_MESSAGES) when sending, or older than REJECT_AFTER_TIME -
 *     KEEPALIVE_TIMEOUT - REKEY_TIMEOUT when receiving, starts a handshake (data threads set
 *     peer->want_handshake).
 *  ("Data sent", for rules 3 and 3b, is unicast to an address learned behind the peer: a
 *  flooded copy of a broadcast or multicast frame expects no answer from this peer.)
 *  3. No answer: data sent and nothing authenticated received for KEEPALIVE_TIMEOUT +
 *     REKEY_TIMEOUT starts a new handshake (the peer may have restarted and lost its keys), and
 *     the peer is `reconnecting`.
 *  3b. Restart detection: data sent and nothing authenticated back for
 *     UNANSWERED_FAST_TIMEOUT_MS, while we kept sending data for UNANSWERED_FAST_SENDING_MS of
 *     it and the peer had sent us data (not just keepalives) within PEER_CHATTY_WINDOW_MS
 *     before our first unanswered packet, starts a new handshake at once;
 *     the state stays `connected` (rule 3 and rule 8 decide that). A peer that answered every
 *     packet of a two-way flow within milliseconds and then falls silent for 2.5 s has almost
 *     certainly lost its keys (it restarted); WireGuard waits the full 15 s of rule 3 here. It
 *     costs one initiation (148 B), never amplifies (it answers nothing), and repeats only
 *     under rule 1's timer; a one-way flow never triggers it (its receiver sends no data, only
 *     keepalives), nor a last frame that needs no answer (a multicast announcement after a
 *     ping: we did not keep sending). The restarted side helps from its end too: handshake.c,
 *     handshake_answer_unknown_session().
 *  4. Passive keepalive: data received and nothing sent for KEEPALIVE_TIMEOUT sends an empty
 *     data message, so the sender's rule 3 does not fire on a one-way flow.
 *  4b. Liveness: connected and nothing sent for LIVENESS_KEEPALIVE_INTERVAL sends an empty data
 *     message, so that an idle but alive peer keeps rule 8 from firing on the other side.
 *  5. Zeroing: no new handshake for REJECT_AFTER_TIME * 3 wipes every key pair.
 *  6. Retired key pairs are wiped once both data threads have passed a quiescent point.
 *  7. Under load (the handshake queue above UNDER_LOAD_QUEUE_LEN) lasts UNDER_LOAD_AFTER_TIME
 *     after the queue drains (device.c).
 *  8. Dead peer: `connected` only while an authenticated packet (or a completed handshake) came
 *     within KEEPALIVE_TIMEOUT + REKEY_TIMEOUT; after that the peer is `reconnecting` and a
 *     handshake starts. When rule 1 gives up, the peer is `failed` (FailureReason says why).
 *  9. After the peer's closing message, an initiator's first retry comes after
 *     CLOSE_FIRST_RETRY_MS instead of REKEY_TIMEOUT (timers_want_handshake_soon).
 */
#include <sodium.h>

#include "handshake.h"
#include "log.h"
#include "timers.h"

/* The session stopped working (no answer, keys expired). */
static unsigned session_lost(struct peer *p) {
        return peer_event(p, TUNNEL_EVENT_LOST, NULL) ? TIMERS_STATE_CHANGED : 0;
}

static uint64_t jitter_ns(void) {
        return (uint64_t) randombytes_uniform(REKEY_TIMEOUT_JITTER_MAX_MS) * NSEC_PER_MSEC;
}

unsigned timers_want_handshake(struct handshake_keys *k, const struct sender *s, struct peer *p,
                               uint64_t now) {
        struct endpoint e;
        unsigned events;

        peer_get_endpoint(p, &e);
        if (e.len == 0 && p->n_candidates == 0 && !p->relay_introduced)
                return 0; /* nowhere to send: waiting for the peer to come to us */
        if (p->handshake_attempts_started_ns != 0)
                return 0; /* rule 1 is already retrying */
        if (atomic_load(&p->next) && now - p->last_handshake_ns < REKEY_TIMEOUT * NSEC_PER_SEC)
                return 0; /* we just answered the peer's handshake: its first packet confirms it */
        p->handshake_attempts_started_ns = now;
        p->handshake_attempts = 1;
        p->retry_interval_ns = REKEY_TIMEOUT * NSEC_PER_SEC + jitter_ns();
        /* failed -> reconnecting */
        events = peer_event(p, TUNNEL_EVENT_RETRY, NULL) ? TIMERS_STATE_CHANGED : 0;
        (void) handshake_send_initiation(k, s, p);
        return events;
}

unsigned timers_want_handshake_soon(struct handshake_keys *k, const struct sender *s,
                                    struct peer *p, uint64_t now, uint64_t first_retry_ns) {
        unsigned events = timers_want_handshake(k, s, p, now);

        if (p->handshake_attempts_started_ns == now && p->handshake_attempts == 1)
                p->retry_interval_ns = first_retry_ns + jitter_ns();
        return events;
}

/* Rule 3b watches the unanswered stretch that began at t (0: none): no handshake is being
 * retried, it has not fired for this stretch, and the peer had sent data within
 * PEER_CHATTY_WINDOW_MS before it. */
static bool rule_3b_armed(struct peer *p, uint64_t t) {
        uint64_t rx_data = atomic_load_explicit(&p->last_rx_data_ns, memory_order_relaxed);

        return t != 0 && p->handshake_attempts_started_ns == 0 &&
               t != p->fast_rehandshake_for_ns && rx_data != 0 && rx_data <= t &&
               t - rx_data <= (uint64_t) PEER_CHATTY_WINDOW_MS * NSEC_PER_MSEC;
}

static uint64_t earliest(uint64_t due, uint64_t since, uint64_t after_ns) {
        return since != 0 && since + after_ns < due ? since + after_ns : due;
}

uint64_t timers_next_due(struct peer *p) {
        uint64_t due = UINT64_MAX, t;

        /* Rule 3. */
        due = earliest(due, atomic_load_explicit(&p->tx_unanswered_since_ns, memory_order_relaxed),
                       (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * NSEC_PER_SEC);
        /* Rule 3b (whether we kept sending is seen when it falls due: until then, a short
         * tick after the other). */
        t = atomic_load_explicit(&p->tx_unanswered_since_ns, memory_order_relaxed);
        if (rule_3b_armed(p, t))
                due = earliest(due, t, (uint64_t) UNANSWERED_FAST_TIMEOUT_MS * NSEC_PER_MSEC);
        /* Rule 4. */
        due = earliest(due, atomic_load_explicit(&p->rx_unanswered_since_ns, memory_order_relaxed),
                       KEEPALIVE_TIMEOUT * NSEC_PER_SEC);
        if (p->state != TUNNEL_CONNECTED)
                return due;
        /* Rule 4b. */
        due = earliest(due, atomic_load_explicit(&p->last_tx_ns, memory_order_relaxed),
                       LIVENESS_KEEPALIVE_INTERVAL * NSEC_PER_SEC);
        /* Rule 8. */
        t = atomic_load_explicit(&p->last_rx_ns, memory_order_relaxed);
        return earliest(due, MAX(t, p->last_handshake_ns),
                        (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * NSEC_PER_SEC);
}

unsigned timers_tick(struct handshake_keys *k, const struct sender *s, struct peer *p,
                     uint64_t now) {
        char buf[ENDPOINT_STRLEN];
        unsigned events = 0;
        uint64_t t;

        /* Rule 1. */
        if (p->handshake_attempts_started_ns != 0 &&
            now - p->last_sent_handshake_ns >= p->retry_interval_ns) {
                struct endpoint e;

                peer_get_endpoint(p, &e);
                if (now - p->handshake_attempts_started_ns >= REKEY_ATTEMPT_TIME * NSEC_PER_SEC) {
                        unsigned attempts = p->handshake_attempts;
                        enum tunnel_state before = p->state;

                        endpoint_to_string(&e, buf);
                        log_warning("no handshake response from %s after %u attempts; waiting "
                                    "for traffic to try again",
                                    buf, attempts);
                        p->handshake_attempts_started_ns = 0;
                        p->handshake_attempts = 0;
                        noise_handshake_wipe(&p->handshake);
                        p->handshake_state = HANDSHAKE_ZEROED;
                        if (peer_event(p, TUNNEL_EVENT_GAVE_UP,
                                       "no handshake response from %s after %u attempts in %d s",
                                       buf, attempts, REKEY_ATTEMPT_TIME))
                                events |= TIMERS_STATE_CHANGED;
                        /* A failed session carries nothing: drop it, so that traffic finds
                         * no key pair and asks for a handshake at once (rule 2). */
                        if (before != TUNNEL_FAILED && p->state == TUNNEL_FAILED)
                                peer_clear_keys(p);
                } else {
                        p->handshake_attempts++;
                        p->retry_interval_ns = REKEY_TIMEOUT * NSEC_PER_SEC + jitter_ns();
                        log_debug("no handshake response from %s, retrying (attempt %u)",
                                  endpoint_to_string(&e, buf), p->handshake_attempts);
                        (void) handshake_send_initiation(k, s, p);
                }
        }

        /* Rule 2. */
        if (atomic_exchange(&p->want_handshake, false))
                events |= timers_want_handshake(k, s, p, now);

        /* Rule 3. */
        t = atomic_load_explicit(&p->tx_unanswered_since_ns, memory_order_relaxed);
        if (t != 0 && now - t >= (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * NSEC_PER_SEC) {
                atomic_store_explicit(&p->tx_unanswered_since_ns, 0, memory_order_relaxed);
                log_debug("no reply to data for %d s, new handshake",
                          KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
                events |= session_lost(p);
                events |= timers_want_handshake(k, s, p, now);
        }

        /* Rule 3b. */
        t = atomic_load_explicit(&p->tx_unanswered_since_ns, memory_order_relaxed);
        if (rule_3b_armed(p, t) &&
            now - t >= (uint64_t) UNANSWERED_FAST_TIMEOUT_MS * NSEC_PER_MSEC) {
                uint64_t tx_data = atomic_load_explicit(&p->last_tx_data_ns, memory_order_relaxed);

                if (tx_data >= t + (uint64_t) UNANSWERED_FAST_SENDING_MS * NSEC_PER_MSEC) {
                        p->fast_rehandshake_for_ns = t; /* once per unanswered stretch */
                        log_debug("data unanswered for %d ms by a peer that was answering: "
                                  "new handshake (did it restart?)",
                                  UNANSWERED_FAST_TIMEOUT_MS);
                        events |= timers_want_handshake(k, s, p, now);
                }
        }

        /* Rule 4. */
        t = atomic_load_explicit(&p->rx_unanswered_since_ns, memory_order_relaxed);
        if (t != 0 && now - t >= KEEPALIVE_TIMEOUT * NSEC_PER_SEC)
                (void) path_send_keepalive(s, p);

        /* Rule 4b. */
        t = atomic_load_explicit(&p->last_tx_ns, memory_order_relaxed);
        if (p->state == TUNNEL_CONNECTED && now - t >= LIVENESS_KEEPALIVE_INTERVAL * NSEC_PER_SEC)
                (void) path_send_keepalive(s, p);

        /* Rule 8. */
        t = atomic_load_explicit(&p->last_rx_ns, memory_order_relaxed);
        if (t < p->last_handshake_ns)
                t = p->last_handshake_ns;
        if (p->state == TUNNEL_CONNECTED &&
            now - t >= (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * NSEC_PER_SEC) {
                log_info("nothing authenticated from the peer for %d s: reconnecting",
                         KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
                events |= session_lost(p);
                events |= timers_want_handshake(k, s, p, now);
        }

        /* Rule 5. */
        if (p->last_handshake_ns != 0 &&
            now - p->last_handshake_ns >= 3 * REJECT_AFTER_TIME * NSEC_PER_SEC &&
            (atomic_load(&p->current) || atomic_load(&p->previous) || atomic_load(&p->next))) {
                log_info("no handshake for %d s: key material wiped", 3 * REJECT_AFTER_TIME);
                peer_clear_keys(p);
                events |= session_lost(p);
        }

        /* The current key pair has expired (REJECT_AFTER_TIME) and no new one came. */
        struct keypair *cur = atomic_load(&p->current);
        if (cur && p->state == TUNNEL_CONNECTED &&
            now - cur->birth_ns >= REJECT_AFTER_TIME * NSEC_PER_SEC)
                events |= session_lost(p);

        /* Rule 6. */
        peer_collect_retired(p);
        /* A confirmation put off for lack of retirement room (peer_confirm_next). */
        if (atomic_exchange(&p->next_confirmed, false) && peer_confirm_next(p))
                events |= TIMERS_SESSION_UP;
        return events;
}
