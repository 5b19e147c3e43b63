/* SPDX-License-Identifier: MIT */
/* timers_next_due (timers.h): when the rules counted from a peer's last packets fall due, which
 * the quiet tick (device.c) sleeps until: rule 3 (data unanswered, KEEPALIVE_TIMEOUT +
 * REKEY_TIMEOUT), rule 4 (data received, nothing sent, KEEPALIVE_TIMEOUT), and while connected
 * rule 4b (nothing sent, LIVENESS_KEEPALIVE_INTERVAL) and rule 8 (nothing authenticated since
 * the last packet or handshake, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT); the earliest one wins. The
 * quiet tick also runs while settled traffic flows, so rule 3b (restart detection,
 * UNANSWERED_FAST_TIMEOUT_MS) counts too, when the peer had sent data within
 * PEER_CHATTY_WINDOW_MS before the first unanswered packet, no handshake is being retried and
 * it has not fired for this stretch. */
#include <stdlib.h>

#include "tests.h"
#include "timers.h"

#define S(x) ((uint64_t) (x) * NSEC_PER_SEC)

int main(void) {
        struct peer *p = calloc(1, sizeof(*p));

        if (!p)
                return 1;
        p->state = TUNNEL_WAITING;
        CHECK(timers_next_due(p) == UINT64_MAX); /* nothing running */

        atomic_store(&p->rx_unanswered_since_ns, S(100));
        CHECK_EQ_INT(timers_next_due(p), S(100 + KEEPALIVE_TIMEOUT));
        atomic_store(&p->tx_unanswered_since_ns, S(93));
        CHECK_EQ_INT(timers_next_due(p), S(93 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT));

        /* Not connected: no liveness keepalive, no dead-peer rule, whatever the timestamps. */
        atomic_store(&p->last_tx_ns, S(90));
        atomic_store(&p->last_rx_ns, S(70));
        CHECK_EQ_INT(timers_next_due(p), S(93 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT));

        p->state = TUNNEL_CONNECTED;
        /* Rule 8 counts from the later of the last packet and the last handshake. */
        p->last_handshake_ns = S(60);
        CHECK_EQ_INT(timers_next_due(p), S(70 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT));
        p->last_handshake_ns = S(80);
        CHECK_EQ_INT(timers_next_due(p), S(90 + LIVENESS_KEEPALIVE_INTERVAL)); /* rule 4b */
        atomic_store(&p->last_tx_ns, S(99));
        CHECK_EQ_INT(timers_next_due(p), S(80 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT)); /* rule 8 */

        /* Rule 3b: a peer that was answering (data 1 s before our first unanswered packet).
         * Its last packet at 92 s moves rule 8 past 3b's time; without data from it, the rules
         * above decide (later). */
        const uint64_t fast = (uint64_t) UNANSWERED_FAST_TIMEOUT_MS * NSEC_PER_MSEC;
        atomic_store(&p->last_rx_ns, S(92));
        const uint64_t later = timers_next_due(p);
        CHECK(later > S(93) + fast);
        atomic_store(&p->last_rx_data_ns, S(92));
        CHECK_EQ_INT(timers_next_due(p), S(93) + fast);
        /* ... not when it had been silent longer than PEER_CHATTY_WINDOW_MS before it, */
        atomic_store(&p->last_rx_data_ns,
                     S(93) - (uint64_t) PEER_CHATTY_WINDOW_MS * NSEC_PER_MSEC - 1);
        CHECK_EQ_INT(timers_next_due(p), later);
        /* ... nor when its data came after (it answered: the stretch is another one), */
        atomic_store(&p->last_rx_data_ns, S(94));
        CHECK_EQ_INT(timers_next_due(p), later);
        /* ... nor once it fired for this stretch, nor while rule 1 retries a handshake. */
        atomic_store(&p->last_rx_data_ns, S(92));
        p->fast_rehandshake_for_ns = S(93);
        CHECK_EQ_INT(timers_next_due(p), later);
        p->fast_rehandshake_for_ns = 0;
        p->handshake_attempts_started_ns = S(95);
        CHECK_EQ_INT(timers_next_due(p), later);
        p->handshake_attempts_started_ns = 0;
        CHECK_EQ_INT(timers_next_due(p), S(93) + fast);

        free(p);
        return test_summary();
}
