/* SPDX-License-Identifier: MIT */
/*
 * The peer table's life cycle (device.c): joiners (peers that joined by themselves: a
 * shared-key newcomer, one discovery or the relay told us of) expire after
 * PEER_EXPIRE_AFTER_TIME seconds without anything authenticated from them, unless they have a
 * session, are connected, or were given an address by Connect; configured peers never do, and
 * the table's last peer stays.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "nodes.h"
#include "tests.h"

static bool in_table(const struct device *d, const struct peer *p) {
        for (size_t i = 0; i < device_peer_count(d); i++)
                if (device_peer_at(d, i) == p)
                        return true;
        return false;
}

static void test_joiners_expire(void) {
        const uint64_t after = (uint64_t) PEER_EXPIRE_AFTER_TIME * NSEC_PER_SEC;
        struct peer *configured, *quiet, *failed, *connected_to, *with_session, *heard;
        uint8_t psk[32] = { 7 };
        struct node a;
        uint64_t t0;

        node_new(&a, false, psk, NULL, NULL);
        configured = a.d->peer;
        CHECK_EQ_INT(device_add_joiner(a.d, &quiet), 0);
        CHECK_EQ_INT(device_add_joiner(a.d, &failed), 0);
        CHECK_EQ_INT(device_add_joiner(a.d, &connected_to), 0);
        CHECK_EQ_INT(device_add_joiner(a.d, &with_session), 0);
        CHECK_EQ_INT(device_add_joiner(a.d, &heard), 0);
        CHECK(quiet->joined && !configured->joined);
        CHECK_EQ_INT(quiet->state, TUNNEL_WAITING);
        t0 = heard->added_ns;
        failed->state = TUNNEL_FAILED;
        connected_to->address = strdup("192.0.2.7:9001"); /* Connect gave it an address */
        give_session(with_session);
        /* heard from 100 s after it joined */
        atomic_store(&heard->last_rx_ns, t0 + 100 * NSEC_PER_SEC);
        CHECK_EQ_INT(device_peer_count(a.d), 6);

        /* A packet stamped after the caller read its clock is not 300 s old. */
        CHECK_EQ_INT(device_expire_peers(a.d, t0 + 50 * NSEC_PER_SEC), 0);
        /* Not yet. */
        CHECK_EQ_INT(device_expire_peers(a.d, t0 + after - NSEC_PER_SEC), 0);
        CHECK_EQ_INT(device_peer_count(a.d), 6);

        /* The quiet and the failed joiners go; the others stay. */
        CHECK_EQ_INT(device_expire_peers(a.d, t0 + after + NSEC_PER_SEC), 2);
        CHECK(!in_table(a.d, quiet) && !in_table(a.d, failed));
        CHECK(in_table(a.d, configured) && in_table(a.d, connected_to) &&
              in_table(a.d, with_session) && in_table(a.d, heard));
        CHECK_EQ_INT(a.d->n_dying, 2);
        device_collect_peers(a.d); /* no data threads: freed at once */
        CHECK_EQ_INT(a.d->n_dying, 0);

        /* The one heard from goes PEER_EXPIRE_AFTER_TIME after it was last heard; the
         * configured peer, the one Connect named and the one with a session never do. */
        CHECK_EQ_INT(device_expire_peers(a.d, t0 + 100 * NSEC_PER_SEC + after - NSEC_PER_SEC), 0);
        CHECK_EQ_INT(device_expire_peers(a.d, t0 + 100 * NSEC_PER_SEC + after + NSEC_PER_SEC), 1);
        CHECK(!in_table(a.d, heard));
        CHECK_EQ_INT(device_expire_peers(a.d, t0 + 100 * after), 0);
        CHECK_EQ_INT(device_peer_count(a.d), 3);
        CHECK(a.d->peer == configured);
        device_collect_peers(a.d);
        node_free(&a);
}

/* The table's last peer stays, joiner or not (device_remove_peer keeps d->peer). */
static void test_last_peer_stays(void) {
        uint8_t psk[32] = { 8 };
        struct peer *j;
        struct node a;

        node_new(&a, false, psk, NULL, NULL);
        CHECK_EQ_INT(device_add_joiner(a.d, &j), 0);
        /* The configured one goes (as Peer.Disconnect would): only the joiner is left. */
        device_remove_peer(a.d, a.d->peer);
        device_collect_peers(a.d);
        CHECK_EQ_INT(device_peer_count(a.d), 1);
        CHECK(a.d->peer == j);
        CHECK_EQ_INT(device_expire_peers(a.d, j->added_ns + 10ULL * PEER_EXPIRE_AFTER_TIME *
                                                                   NSEC_PER_SEC),
                     0);
        CHECK_EQ_INT(device_peer_count(a.d), 1);
        node_free(&a);
}

/* A removed peer is freed once every data thread moved on since (peer_retired); a thread may be
 * inside a batch of other peers' packets at that very moment. Its key pairs, reachable only
 * through the peer, must go with it (they were left in its retire list and leaked: the ASan
 * build's leak check catches that). */
static void test_free_while_a_thread_is_busy(void) {
        struct qs_marker busy[2] = { { .v = 8 }, { .v = 5 } }; /* the second inside a batch */
        uint8_t psk[32] = { 9 };
        struct peer *p;
        struct node a;

        node_new(&a, false, psk, NULL, NULL);
        CHECK_EQ_INT(device_add_joiner(a.d, &p), 0);
        p->qs = (struct qs_markers){ .m = busy, .n = 2 };
        give_session(p);
        give_session(p); /* the first becomes previous */
        CHECK(atomic_load(&p->current) && atomic_load(&p->previous));
        device_remove_peer(a.d, p);
        busy[0].v += 2;
        busy[1].v += 2; /* both moved on (retired); the second, at 7, is inside another batch */
        CHECK(peer_retired(p, a.d->dying[0].qs));
        device_collect_peers(a.d); /* frees p while that batch runs */
        CHECK_EQ_INT(a.d->n_dying, 0);
        node_free(&a);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_joiners_expire();
        test_last_peer_stays();
        test_free_while_a_thread_is_busy();
        return test_summary();
}
