/* SPDX-License-Identifier: MIT */
/*
 * handshake.c over real messages between two devices (A and B) on loopback UDP sockets the test
 * owns, driven by hand as their control loops would be: what one sends is read from the other's
 * socket and handed to handshake_process(). No data threads run here unless a test says so.
 *
 * What it proves (issue 9):
 *  - a node refuses its own initiation sent back to it (shared-key mode), in flight and after
 *    the handshake finished: its handshake in flight, endpoint and last_timestamp stay as they
 *    were, it answers nothing, and the real peer still gets through;
 *  - under load, once mac2 proved the source, one address gets RATELIMIT_BURST handshake
 *    messages through at once and no more;
 *  - identity mode: a stranger's initiation is refused (the DH count is test-noise.c's);
 *  - key pairs retired while a data thread is inside a batch are never wiped: handshakes wait
 *    for room instead, and the retirement list never overflows;
 *  - the tx thread's "source address gone" write-back never undoes a newer endpoint.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "handshake.h"
#include "keys.h"
#include "ratelimit.h"
#include "tai64n.h"
#include "nodes.h"
#include "tests.h"

/* The next datagram on fd of message type `type` (others, e.g. keepalives, are skipped), as
 * the rx thread would queue it. False when none is there: on loopback a datagram is queued
 * before sendmsg() returns, so anything sent is already there (the poll is a safety margin). */
static bool recv_type(int fd, uint8_t type, struct queued_handshake *q) {
        uint64_t deadline = now_ns() + NSEC_PER_SEC / 10;

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                union sockaddr_union from;
                socklen_t flen = sizeof(from);
                ssize_t k;

                k = recvfrom(fd, q->data, sizeof(q->data), 0, &from.sa, &flen);
                if (k >= 4 && q->data[0] == type) {
                        memset(&q->from, 0, sizeof(q->from));
                        memcpy(&q->from.addr, &from, flen);
                        q->from.len = flen;
                        q->len = (uint16_t) k;
                        q->kind = QUEUED_MESSAGE;
                        return true;
                }
                if (k >= 0)
                        continue;
                if (now_ns() >= deadline)
                        return false;
                (void) poll(&pfd, 1, 10);
        }
}

/* Nothing at all waiting on fd (whatever a handshake_process() call sends is on the loopback
 * queue before the call returns). */
static bool nothing_sent(int fd) {
        uint8_t buf[256];
        return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void drain(int fd) {
        uint8_t buf[2048];
        while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
                ;
}

static uint64_t stat(struct node *n, _Atomic uint64_t *s) {
        (void) n;
        return atomic_load(s);
}
#define STAT(n, field) stat(n, &(n)->d->dp.stats.field)

static bool endpoint_is(struct node *n, const struct endpoint *e) {
        struct endpoint cur;
        peer_get_endpoint(n->d->peer, &cur);
        return endpoint_equal(&cur, e);
}

static const uint8_t zero_ts[NOISE_TIMESTAMP_LEN];

/* A handshake, A initiating; A's initiation in *ret_init. False when B sent no response. */
static bool handshake(struct node *a, struct node *b, struct queued_handshake *ret_init) {
        struct queued_handshake q;

        CHECK_EQ_INT(handshake_send_initiation(&a->d->keys, &a->d->sender, a->d->peer), 0);
        CHECK(recv_type(b->d->sockets.fd, MESSAGE_HANDSHAKE_INITIATION, ret_init));
        handshake_process(&b->d->keys, &b->d->sender, b->d->peer, ret_init, false);
        if (!recv_type(a->d->sockets.fd, MESSAGE_HANDSHAKE_RESPONSE, &q))
                return false;
        handshake_process(&a->d->keys, &a->d->sender, a->d->peer, &q, false);
        return true;
}

static void test_reflection(void) {
        struct node a, b, x;
        uint8_t psk[32], e_pub[32], ts_b[NOISE_TIMESTAMP_LEN];
        struct queued_handshake init, q;
        struct keypair *cur;
        uint32_t idx;
        int xfd;

        randombytes_buf(psk, sizeof(psk));
        node_new(&a, false, psk, NULL, NULL);
        node_new(&b, false, psk, NULL, NULL);
        xfd = bind_loopback(&x.addr); /* the reflector */
        peer_set_endpoint(a.d->peer, &b.addr);

        /* In flight: A's initiation comes back (from the reflector's address). */
        CHECK_EQ_INT(handshake_send_initiation(&a.d->keys, &a.d->sender, a.d->peer), 0);
        CHECK(recv_type(b.d->sockets.fd, MESSAGE_HANDSHAKE_INITIATION, &init));
        memcpy(e_pub, &a.d->peer->handshake.e_pub, 32);
        idx = a.d->peer->handshake_index;
        q = init;
        q.from = x.addr;
        handshake_process(&a.d->keys, &a.d->sender, a.d->peer, &q, false);
        CHECK_EQ_INT(STAT(&a, rx_reflected), 1);
        CHECK_EQ_INT(a.d->peer->handshake_state, HANDSHAKE_CREATED_INITIATION);
        CHECK_MEM(&a.d->peer->handshake.e_pub, e_pub, 32);
        CHECK_EQ_INT(a.d->peer->handshake_index, idx);
        CHECK(endpoint_is(&a, &b.addr));
        CHECK_MEM(a.d->peer->last_timestamp, zero_ts, sizeof(zero_ts));
        CHECK(atomic_load(&a.d->peer->next) == NULL);
        CHECK(nothing_sent(xfd));
        /* The same from the real peer's address, or the reflector as A's peer: no difference. */
        q.from = b.addr;
        handshake_process(&a.d->keys, &a.d->sender, a.d->peer, &q, false);
        CHECK_EQ_INT(STAT(&a, rx_reflected), 2);
        CHECK(atomic_load(&a.d->peer->next) == NULL);
        CHECK(nothing_sent(b.d->sockets.fd));

        /* The handshake in flight still completes with the real peer. */
        handshake_process(&b.d->keys, &b.d->sender, b.d->peer, &init, false);
        CHECK(recv_type(a.d->sockets.fd, MESSAGE_HANDSHAKE_RESPONSE, &q));
        handshake_process(&a.d->keys, &a.d->sender, a.d->peer, &q, false);
        cur = atomic_load(&a.d->peer->current);
        CHECK(cur != NULL);
        CHECK_EQ_INT(STAT(&a, handshakes), 1);

        /* Finished: the same initiation, sent back later, changes nothing either. */
        q = init;
        q.from = x.addr;
        handshake_process(&a.d->keys, &a.d->sender, a.d->peer, &q, false);
        CHECK_EQ_INT(STAT(&a, rx_reflected), 3);
        CHECK(atomic_load(&a.d->peer->current) == cur);
        CHECK(atomic_load(&a.d->peer->next) == NULL);
        CHECK(endpoint_is(&a, &b.addr));
        CHECK_MEM(a.d->peer->last_timestamp, zero_ts, sizeof(zero_ts));
        CHECK(nothing_sent(xfd));
        CHECK_EQ_INT(STAT(&a, handshakes), 1);

        /* The peer's own initiation is still accepted (the tunnel is not kept down), and sets
         * last_timestamp to the peer's timestamp. */
        drain(a.d->sockets.fd);
        CHECK_EQ_INT(handshake_send_initiation(&b.d->keys, &b.d->sender, b.d->peer), 0);
        CHECK(recv_type(a.d->sockets.fd, MESSAGE_HANDSHAKE_INITIATION, &q));
        handshake_process(&a.d->keys, &a.d->sender, a.d->peer, &q, false);
        CHECK(atomic_load(&a.d->peer->next) != NULL);
        CHECK(recv_type(b.d->sockets.fd, MESSAGE_HANDSHAKE_RESPONSE, &q));
        CHECK(memcmp(a.d->peer->last_timestamp, zero_ts, sizeof(zero_ts)) != 0);
        memcpy(ts_b, a.d->peer->last_timestamp, sizeof(ts_b));
        CHECK(!handshake_is_own_timestamp(&a.d->keys, ts_b));
        CHECK(handshake_is_own_timestamp(&b.d->keys, ts_b));
        CHECK_EQ_INT(STAT(&a, rx_reflected), 3);

        /* And an old initiation of A's, sent back now, still changes nothing. */
        q = init;
        q.from = x.addr;
        handshake_process(&a.d->keys, &a.d->sender, a.d->peer, &q, false);
        CHECK_EQ_INT(STAT(&a, rx_reflected), 4);
        CHECK_MEM(a.d->peer->last_timestamp, ts_b, sizeof(ts_b));
        CHECK(endpoint_is(&a, &b.addr));

        close(xfd);
        node_free(&a);
        node_free(&b);
}

/* The tag: bit 23 of the nanoseconds stays clear (a valid TAI64N), timestamps keep their
 * order, and another run's key does not recognise it. */
static void test_own_tag(void) {
        struct node a, b;
        uint8_t psk[32] = { 1 }, ts[NOISE_TIMESTAMP_LEN] = {}, later[NOISE_TIMESTAMP_LEN];
        unsigned foreign = 0;

        node_new(&a, false, psk, NULL, NULL);
        node_new(&b, false, psk, NULL, NULL);
        for (unsigned i = 0; i < 1000; i++) {
                struct timespec t = { .tv_sec = 1700000000 + i, .tv_nsec = 999999999 - i };
                tai64n_from_timespec(ts, &t);
                /* The tag takes bits tai64n.c leaves zero, and only those. */
                uint32_t before = get_be32(ts + 8);
                CHECK_EQ_INT(before & 0xffffff, 0);
                handshake_mark_own_timestamp(&a.d->keys, ts);
                CHECK_EQ_INT(get_be32(ts + 8) & ~UINT32_C(0x7fffff), before);
                CHECK(get_be32(ts + 8) < 1000000000u);
                CHECK(handshake_is_own_timestamp(&a.d->keys, ts));
                foreign += handshake_is_own_timestamp(&b.d->keys, ts);
                t.tv_nsec = 0;
                t.tv_sec++;
                tai64n_from_timespec(later, &t);
                CHECK(tai64n_after(later, ts));
        }
        CHECK_EQ_INT(foreign, 0);
        node_free(&a);
        node_free(&b);
}

/* Under load: mac2 first (a cookie reply), then RATELIMIT_BURST per source address. */
static void test_ratelimit_after_mac2(void) {
        struct node a, b;
        uint8_t psk[32];
        struct queued_handshake q;

        randombytes_buf(psk, sizeof(psk));
        node_new(&a, false, psk, NULL, NULL);
        node_new(&b, false, psk, NULL, NULL);
        peer_set_endpoint(a.d->peer, &b.addr);

        CHECK_EQ_INT(handshake_send_initiation(&a.d->keys, &a.d->sender, a.d->peer), 0);
        CHECK(recv_type(b.d->sockets.fd, MESSAGE_HANDSHAKE_INITIATION, &q));
        handshake_process(&b.d->keys, &b.d->sender, b.d->peer, &q, true);
        CHECK_EQ_INT(STAT(&b, cookies_sent), 1);
        CHECK_EQ_INT(STAT(&b, rx_handshake_ratelimited), 0);
        CHECK(recv_type(a.d->sockets.fd, MESSAGE_HANDSHAKE_COOKIE, &q));
        handshake_process(&a.d->keys, &a.d->sender, a.d->peer, &q, false);

        /* With the cookie, A's initiation carries mac2; sent ten times at once. */
        CHECK_EQ_INT(handshake_send_initiation(&a.d->keys, &a.d->sender, a.d->peer), 0);
        CHECK(recv_type(b.d->sockets.fd, MESSAGE_HANDSHAKE_INITIATION, &q));
        for (unsigned i = 0; i < 10; i++)
                handshake_process(&b.d->keys, &b.d->sender, b.d->peer, &q, true);
        CHECK_EQ_INT(STAT(&b, cookies_sent), 1);
        CHECK_EQ_INT(STAT(&b, handshakes), 1);
        /* The first was taken; the rest of the burst reached the replay check; then no more
         * (a few ms pass in this loop, so allow one refill). */
        CHECKF(STAT(&b, rx_handshake_ratelimited) >= 10 - RATELIMIT_BURST - 1,
               "%llu rate-limited", (unsigned long long) STAT(&b, rx_handshake_ratelimited));
        CHECK_EQ_INT(STAT(&b, rx_replayed) + STAT(&b, rx_handshake_ratelimited) +
                             STAT(&b, rx_handshake_dropped),
                     9);
        /* Not under load: no limit (the replay check is what stops these). */
        uint64_t limited = STAT(&b, rx_handshake_ratelimited);
        for (unsigned i = 0; i < 10; i++)
                handshake_process(&b.d->keys, &b.d->sender, b.d->peer, &q, false);
        CHECK_EQ_INT(STAT(&b, rx_handshake_ratelimited), limited);
        node_free(&a);
        node_free(&b);
}

/* Identity mode: an initiation from a key that is not pinned is refused and changes nothing;
 * the pinned key still gets through. */
static void test_identity_stranger(void) {
        uint8_t sa[32], pa[32], sb[32], pb[32], sc[32], pc[32];
        struct node a, b, c;
        struct queued_handshake q;

        noise_generate_keypair(sa, pa);
        noise_generate_keypair(sb, pb);
        noise_generate_keypair(sc, pc);
        node_new(&a, true, NULL, sa, pb);
        node_new(&b, true, NULL, sb, pa);
        node_new(&c, true, NULL, sc, pb); /* knows B's public key, is not pinned by B */
        peer_set_endpoint(c.d->peer, &b.addr);
        peer_set_endpoint(a.d->peer, &b.addr);

        CHECK_EQ_INT(handshake_send_initiation(&c.d->keys, &c.d->sender, c.d->peer), 0);
        CHECK(recv_type(b.d->sockets.fd, MESSAGE_HANDSHAKE_INITIATION, &q));
        handshake_process(&b.d->keys, &b.d->sender, b.d->peer, &q, false);
        CHECK_EQ_INT(STAT(&b, rx_handshake_failed), 1);
        CHECK_EQ_INT(STAT(&b, handshakes), 0);
        CHECK(atomic_load(&b.d->peer->next) == NULL);
        CHECK_MEM(b.d->peer->last_timestamp, zero_ts, sizeof(zero_ts));
        CHECK(nothing_sent(c.d->sockets.fd));

        CHECK(handshake(&a, &b, &q));
        CHECK_EQ_INT(STAT(&a, handshakes), 1);
        CHECK_EQ_INT(STAT(&b, handshakes), 1);
        node_free(&a);
        node_free(&b);
        node_free(&c);
}

static bool keypair_is_wiped(const struct keypair *kp) {
        static const uint8_t zero[NOISE_SYMMETRIC_KEY_LEN];
        return memcmp(kp->send_key, zero, sizeof(zero)) == 0 &&
               memcmp(kp->recv_key, zero, sizeof(zero)) == 0;
}

static bool in_retired(const struct device *d, const struct keypair *kp) {
        for (size_t i = 0; i < d->peer->n_retired; i++)
                if (d->peer->retired[i].kp == kp)
                        return true;
        return false;
}

/* B's tx thread "sits inside one batch" (its marker odd and not moving) while A keeps
 * rekeying: every key pair B lets go of must stay in the retirement list, unwiped; handshakes
 * wait for room (counted) rather than overflow it; once the thread moves on, all is collected
 * and handshakes go through again. */
static void test_retirement_room(void) {
        struct node a, b;
        uint8_t psk[32];
        struct queued_handshake init;
        unsigned live_lost = 0, deferred = 0;

        randombytes_buf(psk, sizeof(psk));
        node_new(&a, false, psk, NULL, NULL);
        node_new(&b, false, psk, NULL, NULL);
        peer_set_endpoint(a.d->peer, &b.addr);
        atomic_store(&b.d->dp.qs[DATAPATH_QS_TX(0)].v, 1);

        for (unsigned i = 0; i < 3 * MAX_RETIRED_KEYPAIRS; i++) {
                struct keypair *before[3] = { atomic_load(&b.d->peer->current),
                                              atomic_load(&b.d->peer->previous),
                                              atomic_load(&b.d->peer->next) };
                /* Neither the per-peer initiation rate nor the timestamp granularity is under
                 * test here: let every initiation be a fresh one. */
                b.d->peer->last_initiation_consumed_ns = 0;
                memset(b.d->peer->last_timestamp, 0, sizeof(b.d->peer->last_timestamp));
                drain(a.d->sockets.fd);
                drain(b.d->sockets.fd);
                if (handshake(&a, &b, &init))
                        peer_confirm_next(b.d->peer); /* as if the keepalive came on next */
                else
                        deferred++;
                CHECK(b.d->peer->n_retired <= MAX_RETIRED_KEYPAIRS);
                for (unsigned k = 0; k < 3; k++) {
                        struct keypair *kp = before[k];
                        if (!kp || kp == atomic_load(&b.d->peer->current) ||
                            kp == atomic_load(&b.d->peer->previous) ||
                            kp == atomic_load(&b.d->peer->next))
                                continue;
                        if (!in_retired(b.d, kp) || keypair_is_wiped(kp))
                                live_lost++;
                }
        }
        CHECK_EQ_INT(live_lost, 0);
        CHECK(deferred > 0);
        CHECK_EQ_INT(STAT(&b, handshakes_deferred), deferred);
        CHECK(b.d->peer->n_retired <= MAX_RETIRED_KEYPAIRS - HANDSHAKE_RETIRE_RESERVE);
        for (size_t i = 0; i < b.d->peer->n_retired; i++)
                CHECK(!keypair_is_wiped(b.d->peer->retired[i].kp));
        /* Dropping everything still fits (the reserve). */
        peer_clear_keys(b.d->peer);
        CHECK(b.d->peer->n_retired <= MAX_RETIRED_KEYPAIRS);
        for (size_t i = 0; i < b.d->peer->n_retired; i++)
                CHECK(!keypair_is_wiped(b.d->peer->retired[i].kp));

        /* The thread leaves its batch: everything is collected, handshakes work again. */
        atomic_store(&b.d->dp.qs[DATAPATH_QS_TX(0)].v, 2);
        peer_collect_retired(b.d->peer);
        CHECK_EQ_INT(b.d->peer->n_retired, 0);
        uint64_t done = STAT(&b, handshakes);
        b.d->peer->last_initiation_consumed_ns = 0;
        memset(b.d->peer->last_timestamp, 0, sizeof(b.d->peer->last_timestamp));
        drain(a.d->sockets.fd);
        drain(b.d->sockets.fd);
        CHECK(handshake(&a, &b, &init));
        CHECK_EQ_INT(STAT(&b, handshakes), done + 1);
        node_free(&a);
        node_free(&b);
}

/* The tx thread's write-back after "source address gone" applies only to the endpoint it read;
 * a newer one (roaming, meanwhile) stays as it is. */
static void test_forget_source(void) {
        struct peer p = {};
        struct endpoint old = {}, roamed = {}, cur;

        pthread_mutex_init(&p.endpoint_lock, NULL);
        old.len = roamed.len = sizeof(struct sockaddr_in);
        old.addr.in = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(1),
                                            .sin_addr.s_addr = htonl(0x7f000001) };
        roamed.addr.in = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(2),
                                               .sin_addr.s_addr = htonl(0x7f000001) };
        old.src.family = roamed.src.family = AF_INET;
        old.src.in.s_addr = roamed.src.in.s_addr = htonl(0x7f000002);

        peer_set_endpoint(&p, &roamed);
        peer_forget_source(&p, &old);
        peer_get_endpoint(&p, &cur);
        CHECK(endpoint_equal(&cur, &roamed) && cur.src.family == AF_INET);

        peer_forget_source(&p, &roamed);
        peer_get_endpoint(&p, &cur);
        CHECK(endpoint_equal(&cur, &roamed) && cur.src.family == 0);
        pthread_mutex_destroy(&p.endpoint_lock);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_own_tag();
        test_reflection();
        test_ratelimit_after_mac2();
        test_identity_stranger();
        test_retirement_room();
        test_forget_source();
        return test_summary();
}
