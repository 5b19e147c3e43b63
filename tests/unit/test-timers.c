/* SPDX-License-Identifier: MIT */
/* timers_next_due (timers.h): when the rules counted from a peer's last packets fall due, which
 * the quiet tick (device.c) sleeps until: rule 3 (data unanswered, KEEPALIVE_TIMEOUT +
 * REKEY_TIMEOUT), rule 4 (data received, nothing sent, KEEPALIVE_TIMEOUT), and while connected
 * rule 4b (nothing sent, LIVENESS_KEEPALIVE_INTERVAL) and rule 8 (nothing authenticated since
 * the last packet or handshake, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT); the earliest one wins. */
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

        free(p);
        return test_summary();
}
