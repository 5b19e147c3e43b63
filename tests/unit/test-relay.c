/* SPDX-License-Identifier: MIT */
/*
 * shadowmesh-relay's core, driven as the network would: datagrams from made-up addresses, a
 * clock moved by hand. The client side of the protocol (REGISTER, cookie echo, identity proof)
 * is written here again from messages.h, independently of relay-core.c, so the two have to agree
 * on every byte. Covered: the challenge round trip, wrong and expired cookies, identity proofs
 * (valid, wrong, low-order keys), who is paired with whom (shared-key, identity, networks),
 * forwarding (only the slot changes), expiry, rate and bandwidth limits, table limits, NAT
 * rebinding, address takeover, the allow list, STUN Binding and malformed input; and the
 * security properties: every reply's MAC under the client nonce, shared-key membership
 * signatures (a network id alone joins nobody), slots bound to the per-run node key (no
 * stealing by another holder of the psk), the verified-REGISTER rate bucket, and the global
 * budgets that stop STUN and CHALLENGE from amplifying toward a spoofed source. The client's
 * side in shared-key mesh: which peer each introduced node is (relay_introduction_match) and
 * which peer an initiation from a candidate or a relay slot belongs to (path_reaches).
 * Identity mode with several wanted peers (messages.h, want lists): the form and its errors,
 * pairing with each peer that wants us back in either form, the proof over the list, the
 * limit, slots kept across list changes, the client's choice of peers, and the daemon's relay
 * client over loopback against relays with and without want lists.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "candidate.h"
#include "relay-client.h"
#include "relay-core.h"
#include "stun.h"
#include "endpoints.h"
#include "tests.h"

#define T0 (UINT64_C(1000) * NSEC_PER_SEC)
#define SEC NSEC_PER_SEC

static struct relay_actions actions;

/* ---- addresses ---------------------------------------------------------------------------- */

/* The same endpoint exactly (family, address, port): what the relay sends to is what it got. */
static bool same_endpoint(const struct endpoint *a, const struct endpoint *b) {
        if (a->len != b->len || a->addr.sa.sa_family != b->addr.sa.sa_family)
                return false;
        if (a->addr.sa.sa_family == AF_INET)
                return a->addr.in.sin_port == b->addr.in.sin_port &&
                       a->addr.in.sin_addr.s_addr == b->addr.in.sin_addr.s_addr;
        return a->addr.in6.sin6_port == b->addr.in6.sin6_port &&
               memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, 16) == 0;
}

/* A wire candidate equals an endpoint (v4-mapped shows as family 4). */
static bool candidate_is(const struct relay_candidate *c, const struct endpoint *e) {
        uint8_t want[16] = {};
        uint16_t port;
        uint8_t family;

        if (e->addr.sa.sa_family == AF_INET) {
                family = 4;
                memcpy(want, &e->addr.in.sin_addr, 4);
                port = e->addr.in.sin_port;
        } else if (IN6_IS_ADDR_V4MAPPED(&e->addr.in6.sin6_addr)) {
                family = 4;
                memcpy(want, e->addr.in6.sin6_addr.s6_addr + 12, 4);
                port = e->addr.in6.sin6_port;
        } else {
                family = 6;
                memcpy(want, &e->addr.in6.sin6_addr, 16);
                port = e->addr.in6.sin6_port;
        }
        return c->family == family && c->reserved_zero == 0 && c->port_be == port &&
               memcmp(c->addr, want, 16) == 0;
}

/* ---- the client side ---------------------------------------------------------------------- */

struct node {
        const char *name;
        struct endpoint addr;
        uint8_t network_id[NETWORK_ID_LEN];
        uint8_t priv[32], node_id[32], want_peer[32];
        bool identity;
        uint8_t n_candidates;
        struct relay_candidate candidates[RELAY_MAX_CANDIDATES];
        /* From the relay. */
        uint8_t cookie[COOKIE_LEN], relay_ephemeral[32];
        uint32_t slot;
        /* Shared-key mode: the psk's membership key pair. */
        uint8_t member_pk[32], member_sk[64];
        /* The nonce of the last REGISTER sent, and of the last one the relay registered. */
        uint8_t nonce[16], reg_nonce[16];
};

/* The membership key pair of a psk: Ed25519 from seed BLAKE2b-256(key = psk, label). */
static void member_keys(struct node *n, const uint8_t psk[32]) {
        uint8_t seed[32];

        crypto_generichash(seed, sizeof(seed), (const uint8_t *) "relay-member----", 16, psk, 32);
        crypto_sign_seed_keypair(n->member_pk, n->member_sk, seed);
}

/* auth = BLAKE2b-128(key = nonce, message up to its last 16 bytes). */
static bool auth_ok(const void *msg, size_t len, const uint8_t nonce[16]) {
        uint8_t mac[16];

        crypto_generichash(mac, sizeof(mac), msg, len - 16, nonce, 16);
        return memcmp(mac, (const uint8_t *) msg + len - 16, 16) == 0;
}

static void network(uint8_t out[NETWORK_ID_LEN], uint8_t fill) {
        memset(out, fill, NETWORK_ID_LEN);
}

static void node_shared(struct node *n, const char *name, struct endpoint addr, uint8_t net) {
        memset(n, 0, sizeof(*n));
        n->name = name;
        n->addr = addr;
        network(n->network_id, net);
        /* A per-run key pair, and the psk (here: net repeated) that the network id stands for. */
        crypto_box_keypair(n->node_id, n->priv);
        {
                uint8_t psk[32];
                memset(psk, net, sizeof(psk));
                member_keys(n, psk);
        }
        /* Two candidates, as a daemon behind a NAT would report (LAN and STUN addresses). */
        n->n_candidates = 2;
        n->candidates[0].family = 4;
        n->candidates[0].port_be = htons(9001);
        n->candidates[0].addr[0] = 192;
        n->candidates[0].addr[1] = 168;
        n->candidates[0].addr[3] = (uint8_t) (name[0]);
        n->candidates[1].family = 6;
        n->candidates[1].port_be = htons(9001);
        n->candidates[1].addr[0] = 0x20;
        n->candidates[1].addr[1] = 0x01;
        n->candidates[1].addr[15] = (uint8_t) (name[0]);
}

static void node_identity(struct node *n, const char *name, struct endpoint addr, uint8_t net) {
        node_shared(n, name, addr, net);
        n->identity = true;
        crypto_box_keypair(n->node_id, n->priv);
        n->n_candidates = 1;
        memset(&n->candidates[1], 0, sizeof(n->candidates[1]));
}

static void wants(struct node *a, const struct node *b) {
        memcpy(a->want_peer, b->node_id, 32);
}

/* proof = BLAKE2b-128(key = BLAKE2b-256(LABEL_RELAY_PROOF || X25519(node priv, relay eph)),
 *                     REGISTER up to the proof field) */
static void sign(const struct node *n, struct message_relay_register *m) {
        uint8_t dh[32], key[32];
        crypto_generichash_state st;

        if (crypto_scalarmult(dh, n->priv, m->relay_ephemeral) != 0)
                abort();
        crypto_generichash_init(&st, NULL, 0, sizeof(key));
        crypto_generichash_update(&st, (const uint8_t *) "relay-proof-----", 16);
        crypto_generichash_update(&st, dh, sizeof(dh));
        crypto_generichash_final(&st, key, sizeof(key));
        crypto_generichash(m->proof, sizeof(m->proof), (const uint8_t *) m,
                           offsetof(struct message_relay_register, proof), key, sizeof(key));
}

static void build_register(struct node *n, struct message_relay_register *m, bool with_cookie) {
        memset(m, 0, sizeof(*m));
        randombytes_buf(n->nonce, sizeof(n->nonce));
        memcpy(m->client_nonce, n->nonce, sizeof(n->nonce));
        if (!n->identity)
                memcpy(m->network_key, n->member_pk, 32);
        m->header.type = MESSAGE_RELAY_REGISTER;
        memcpy(m->network_id, n->network_id, NETWORK_ID_LEN);
        memcpy(m->node_id, n->node_id, 32);
        memcpy(m->want_peer, n->want_peer, 32);
        m->n_candidates = n->n_candidates;
        memcpy(m->candidates, n->candidates, sizeof(m->candidates));
        if (with_cookie) {
                memcpy(m->cookie, n->cookie, COOKIE_LEN);
                memcpy(m->relay_ephemeral, n->relay_ephemeral, 32);
                sign(n, m);
                if (!n->identity)
                        crypto_sign_detached(m->signature, NULL, (const uint8_t *) m,
                                             offsetof(struct message_relay_register, signature),
                                             n->member_sk);
        }
}

/* Forwarded actions point into the datagram: it lives here until the next send. */
static uint8_t datagram[RELAYED_DATAGRAM_MAX_LEN + 64];

static int send_from(struct relay_core *c, const struct endpoint *src, const void *msg, size_t len,
                     uint64_t now) {
        if (len > sizeof(datagram))
                abort();
        memcpy(datagram, msg, len);
        return relay_core_receive(c, datagram, len, src, now, &actions);
}

/* Replies only ever go where something came from; nothing but CHALLENGE, PEER and STUN is
 * larger than what caused it. */
static void check_reply_sizes(size_t request_len) {
        for (size_t i = 0; i < actions.n; i++) {
                const struct relay_send *s = &actions.send[i];
                uint8_t type = s->data[0];
                if (s->forward || type == MESSAGE_RELAY_CHALLENGE || type == MESSAGE_RELAY_PEER ||
                    stun_is_message(s->data, s->len))
                        continue;
                CHECKF(s->len <= request_len, "reply of %zu bytes to %zu", s->len, request_len);
        }
}

/* Send the cookie-less REGISTER: exactly one CHALLENGE back to the node. Keeps its cookie. */
static bool challenge(struct relay_core *c, struct node *n, uint64_t now) {
        struct message_relay_register m;
        const struct message_relay_challenge *ch;
        int r;

        build_register(n, &m, false);
        r = send_from(c, &n->addr, &m, sizeof(m), now);
        if (r != MESSAGE_RELAY_REGISTER || actions.n != 1 || actions.send[0].len != sizeof(*ch) ||
            !same_endpoint(&actions.send[0].dest, &n->addr))
                return false;
        ch = (const struct message_relay_challenge *) actions.send[0].data;
        if (get_le32(ch) != MESSAGE_RELAY_CHALLENGE || !auth_ok(ch, sizeof(*ch), n->nonce))
                return false;
        memcpy(n->cookie, ch->cookie, COOKIE_LEN);
        memcpy(n->relay_ephemeral, ch->relay_ephemeral, 32);
        return true;
}

/* The REGISTER with the cookie: REGISTERED first (to the node), then the PEER messages.
 * Returns the number of actions, or -1 when no REGISTERED came back. */
static int complete(struct relay_core *c, struct node *n, uint64_t now) {
        struct message_relay_register m;
        const struct message_relay_registered *reg;

        build_register(n, &m, true);
        if (send_from(c, &n->addr, &m, sizeof(m), now) != MESSAGE_RELAY_REGISTER)
                return -1;
        check_reply_sizes(sizeof(m));
        if (actions.n < 1 || actions.send[0].len != sizeof(*reg) ||
            !same_endpoint(&actions.send[0].dest, &n->addr))
                return -1;
        reg = (const struct message_relay_registered *) actions.send[0].data;
        if (get_le32(reg) != MESSAGE_RELAY_REGISTERED || reg->slot == 0 ||
            !candidate_is(&reg->observed, &n->addr) ||
            get_le16(&reg->lifetime) != RELAY_REGISTRATION_LIFETIME || reg->reserved_zero[0] ||
            reg->reserved_zero[1] || !auth_ok(reg, sizeof(*reg), n->nonce))
                return -1;
        n->slot = get_le32(&reg->slot);
        memcpy(n->reg_nonce, n->nonce, sizeof(n->nonce));
        return (int) actions.n;
}

static int do_register(struct relay_core *c, struct node *n, uint64_t now) {
        if (!challenge(c, n, now))
                return -1;
        return complete(c, n, now);
}

/* The PEER message in the actions sent to `to` about `about`, or NULL. */
static const struct message_relay_peer *peer_msg(const struct node *to, const struct node *about) {
        for (size_t i = 0; i < actions.n; i++) {
                const struct message_relay_peer *p =
                        (const struct message_relay_peer *) actions.send[i].data;
                if (actions.send[i].len == sizeof(*p) && get_le32(p) == MESSAGE_RELAY_PEER &&
                    same_endpoint(&actions.send[i].dest, &to->addr) &&
                    memcmp(p->node_id, about->node_id, 32) == 0 &&
                    auth_ok(p, sizeof(*p), to->reg_nonce))
                        return p;
        }
        return NULL;
}

/* The PEER message says everything about `about`: slot, id, observed address, candidates. */
static bool peer_ok(const struct message_relay_peer *p, const struct node *about) {
        return p && get_le32(&p->slot) == about->slot &&
               memcmp(p->node_id, about->node_id, 32) == 0 &&
               candidate_is(&p->observed, &about->addr) && p->n_candidates == about->n_candidates &&
               memcmp(p->candidates, about->candidates, sizeof(p->candidates)) == 0 &&
               p->reserved_zero[0] == 0 && p->reserved_zero[1] == 0 && p->reserved_zero[2] == 0;
}

static size_t count_peer_msgs(void) {
        size_t n = 0;

        for (size_t i = 0; i < actions.n; i++)
                if (actions.send[i].data[0] == MESSAGE_RELAY_PEER)
                        n++;
        return n;
}

/* RELAY_DATA from `from` to slot with a recognisable inner message of inner_len bytes. */
static int send_data(struct relay_core *c, const struct endpoint *from, uint32_t slot,
                     size_t inner_len, uint8_t seed, uint64_t now, uint8_t *ret_sent) {
        uint8_t msg[RELAYED_DATAGRAM_MAX_LEN];
        size_t len = sizeof(struct message_relay_data) + inner_len;

        memset(msg, 0, 8);
        msg[0] = MESSAGE_RELAY_DATA;
        put_le32(msg + 4, slot);
        msg[8] = MESSAGE_DATA;
        msg[9] = msg[10] = msg[11] = 0;
        for (size_t i = 12; i < len; i++)
                msg[i] = (uint8_t) (i * 13 + seed);
        if (ret_sent)
                memcpy(ret_sent, msg, len);
        return send_from(c, from, msg, len, now);
}

/* The one action is `sent` forwarded to `to`, with the slot now `from_slot`, nothing else
 * changed. */
static bool forwarded_ok(const uint8_t *sent, size_t len, const struct node *to,
                         uint32_t from_slot) {
        const struct relay_send *s = &actions.send[0];

        return actions.n == 1 && s->forward && s->len == len &&
               same_endpoint(&s->dest, &to->addr) && memcmp(s->data, sent, 4) == 0 &&
               get_le32(s->data + 4) == from_slot && memcmp(s->data + 8, sent + 8, len - 8) == 0;
}

static struct relay_core *new_core(unsigned max, unsigned rate, uint64_t bandwidth) {
        struct relay_core_config cfg = {
                .max_registrations = max,
                .rate = rate,
                .bandwidth = bandwidth,
        };
        struct relay_core *c = NULL;

        if (relay_core_new(&cfg, T0, &c) < 0)
                abort();
        return c;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_config(void) {
        struct relay_core_config cfg = {.max_registrations = 0};
        uint8_t nets[1][NETWORK_ID_LEN] = {};
        struct relay_core *c = NULL;

        CHECK_EQ_INT(relay_core_new(&cfg, T0, &c), -EINVAL);
        cfg.max_registrations = RELAY_MAX_REGISTRATIONS_LIMIT + 1;
        CHECK_EQ_INT(relay_core_new(&cfg, T0, &c), -EINVAL);
        cfg.max_registrations = 4;
        cfg.rate = RELAY_RATE_MAX + 1;
        CHECK_EQ_INT(relay_core_new(&cfg, T0, &c), -EINVAL);
        cfg.rate = 0;
        cfg.n_allowed_networks = 1; /* and no array */
        CHECK_EQ_INT(relay_core_new(&cfg, T0, &c), -EINVAL);
        cfg.allowed_networks = nets;
        CHECK_EQ_INT(relay_core_new(&cfg, T0, &c), 0);
        CHECK(c != NULL);
        CHECK(relay_core_free(c) == NULL);
        CHECK(relay_core_free(NULL) == NULL);
}

static void test_challenge_round_trip(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct message_relay_register m;
        const struct message_relay_challenge *ch;
        struct node a, moved;
        uint8_t eph[32];
        struct endpoint got;
        uint8_t id[32];

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        build_register(&a, &m, false);
        CHECK_EQ_INT(send_from(c, &a.addr, &m, sizeof(m), T0), MESSAGE_RELAY_REGISTER);
        CHECK_EQ_INT(actions.n, 1);
        CHECK_EQ_INT(actions.send[0].len, sizeof(struct message_relay_challenge));
        CHECK(!actions.send[0].forward);
        CHECK(same_endpoint(&actions.send[0].dest, &a.addr));
        ch = (const struct message_relay_challenge *) actions.send[0].data;
        CHECK_EQ_INT(get_le32(ch), MESSAGE_RELAY_CHALLENGE);
        CHECK(!sodium_is_zero(ch->cookie, COOKIE_LEN));
        CHECK(!sodium_is_zero(ch->relay_ephemeral, 32));
        memcpy(eph, ch->relay_ephemeral, 32);
        CHECK_EQ_INT(relay_core_count(c), 0); /* stateless: nothing kept for a challenge */

        /* The same challenge twice: the same cookie (no state, no randomness per request). */
        memcpy(a.cookie, ch->cookie, COOKIE_LEN);
        CHECK(challenge(c, &a, T0 + SEC));
        CHECK_MEM(a.relay_ephemeral, eph, 32);

        CHECK_EQ_INT(complete(c, &a, T0 + SEC), 1); /* REGISTERED, nobody to pair with */
        CHECK(a.slot != 0);
        CHECK_EQ_INT(relay_core_count(c), 1);
        CHECK(relay_core_lookup_slot(c, a.slot, T0 + SEC, &got, id));
        CHECK(same_endpoint(&got, &a.addr));
        CHECK_MEM(id, a.node_id, 32);

        /* A cookie is bound to the address: from another port it earns a new challenge. */
        moved = a;
        moved.addr = ep4("192.0.2.1", 40002);
        build_register(&moved, &m, true);
        CHECK_EQ_INT(send_from(c, &moved.addr, &m, sizeof(m), T0 + SEC), MESSAGE_RELAY_REGISTER);
        CHECK_EQ_INT(actions.n, 1);
        CHECK_EQ_INT(actions.send[0].data[0], MESSAGE_RELAY_CHALLENGE);
        CHECK(same_endpoint(&actions.send[0].dest, &moved.addr));

        /* A v4-mapped source is the same sender as its IPv4 form (dual-stack socket). */
        moved.addr = ep6("::ffff:192.0.2.1", 40001);
        CHECK_EQ_INT(complete(c, &moved, T0 + 2 * SEC), 1);
        CHECK_EQ_INT(moved.slot, a.slot);
        CHECK_EQ_INT(relay_core_count(c), 1);
        CHECK_EQ_INT(relay_core_stats(c)->moved, 0);

        CHECK_EQ_INT(relay_core_stats(c)->challenges, 3);
        CHECK_EQ_INT(relay_core_stats(c)->registered, 2);
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

static void test_wrong_cookie(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct message_relay_register m;
        struct node a;

        node_shared(&a, "a", ep6("2001:db8::1", 40001), 1);
        CHECK(challenge(c, &a, T0));

        a.cookie[5] ^= 1;
        build_register(&a, &m, true);
        CHECK_EQ_INT(send_from(c, &a.addr, &m, sizeof(m), T0), MESSAGE_RELAY_REGISTER);
        CHECK_EQ_INT(actions.n, 1);
        CHECK_EQ_INT(actions.send[0].data[0], MESSAGE_RELAY_CHALLENGE);
        CHECK_EQ_INT(relay_core_count(c), 0);
        a.cookie[5] ^= 1;

        /* The right cookie with an ephemeral key the relay never used. */
        a.relay_ephemeral[0] ^= 0x40;
        build_register(&a, &m, true);
        CHECK_EQ_INT(send_from(c, &a.addr, &m, sizeof(m), T0), MESSAGE_RELAY_REGISTER);
        CHECK_EQ_INT(actions.send[0].data[0], MESSAGE_RELAY_CHALLENGE);
        CHECK_EQ_INT(relay_core_count(c), 0);
        a.relay_ephemeral[0] ^= 0x40;

        CHECK_EQ_INT(complete(c, &a, T0), 1);
        CHECK_EQ_INT(relay_core_count(c), 1);
        CHECK_EQ_INT(relay_core_stats(c)->challenges, 3);
        relay_core_free(c);
}

static void test_secret_rotation(void) {
        const uint64_t age = (uint64_t) RELAY_CHALLENGE_SECRET_MAX_AGE * SEC;
        struct relay_core *c = new_core(16, 0, 0);
        struct message_relay_register m;
        struct node a, b, d;
        uint8_t old_eph[32];

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep4("192.0.2.2", 40001), 1);
        node_shared(&d, "d", ep4("192.0.2.4", 40001), 1);
        CHECK(challenge(c, &a, T0));
        memcpy(old_eph, a.relay_ephemeral, 32);
        CHECK(challenge(c, &b, T0));
        CHECK(challenge(c, &d, T0));

        /* Just before the rotation: still the same generation. */
        CHECK(challenge(c, &a, T0 + age - 1));
        CHECK_MEM(a.relay_ephemeral, old_eph, 32);

        /* Rotated: new challenges carry a new key, the previous cookie still works. */
        CHECK_EQ_INT(relay_core_expire(c, T0 + age + SEC), 0);
        CHECK_EQ_INT(complete(c, &b, T0 + age + SEC), 1);
        {
                struct node fresh = a;
                CHECK(challenge(c, &fresh, T0 + age + SEC));
                CHECK(memcmp(fresh.relay_ephemeral, old_eph, 32) != 0);
        }

        /* Two periods after its birth the old generation is gone: challenge again. */
        build_register(&d, &m, true);
        CHECK_EQ_INT(send_from(c, &d.addr, &m, sizeof(m), T0 + 2 * age), MESSAGE_RELAY_REGISTER);
        CHECK_EQ_INT(actions.n, 1);
        CHECK_EQ_INT(actions.send[0].data[0], MESSAGE_RELAY_CHALLENGE);
        CHECK(memcmp(((const struct message_relay_challenge *) actions.send[0].data)
                             ->relay_ephemeral,
                     old_eph, 32) != 0);
        CHECK_EQ_INT(relay_core_count(c), 1);

        /* After a long quiet spell, neither old generation is accepted. */
        CHECK(challenge(c, &a, T0 + 2 * age));
        build_register(&a, &m, true);
        CHECK_EQ_INT(send_from(c, &a.addr, &m, sizeof(m), T0 + 10 * age), MESSAGE_RELAY_REGISTER);
        CHECK_EQ_INT(actions.send[0].data[0], MESSAGE_RELAY_CHALLENGE);
        relay_core_free(c);
}

static void test_identity_proof(void) {
        /* Low-order points of Curve25519: X25519 with any key gives all zeros. */
        static const char *const low_order[] = {
                "0000000000000000000000000000000000000000000000000000000000000000",
                "0100000000000000000000000000000000000000000000000000000000000000",
                "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
                "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
                "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        };
        struct relay_core *c = new_core(16, 0, 0);
        struct message_relay_register m;
        struct node a, b, mallory;

        node_identity(&a, "a", ep4("192.0.2.1", 40001), 0);
        node_identity(&b, "b", ep4("192.0.2.2", 40001), 0);
        wants(&a, &b);
        wants(&b, &a);

        CHECK(challenge(c, &a, T0));
        CHECK_EQ_INT(complete(c, &a, T0), 1);

        /* A wrong proof: nothing back, nothing registered. */
        CHECK(challenge(c, &b, T0));
        build_register(&b, &m, true);
        m.proof[3] ^= 0x10;
        CHECK_EQ_INT(send_from(c, &b.addr, &m, sizeof(m), T0), -EPERM);
        CHECK_EQ_INT(actions.n, 0);
        /* A proof over other bytes (a candidate changed after signing). */
        build_register(&b, &m, true);
        m.candidates[0].port_be ^= 1;
        CHECK_EQ_INT(send_from(c, &b.addr, &m, sizeof(m), T0), -EPERM);
        /* No proof at all. */
        build_register(&b, &m, true);
        memset(m.proof, 0, sizeof(m.proof));
        CHECK_EQ_INT(send_from(c, &b.addr, &m, sizeof(m), T0), -EPERM);
        /* Someone claiming b's key without it. */
        mallory = b;
        randombytes_buf(mallory.priv, sizeof(mallory.priv)); /* b's id, another private key */
        build_register(&mallory, &m, true);
        CHECK_EQ_INT(send_from(c, &mallory.addr, &m, sizeof(m), T0), -EPERM);
        CHECK_EQ_INT(relay_core_count(c), 1);
        CHECK_EQ_INT(relay_core_stats(c)->bad_proof, 4);

        /* Low-order node ids are refused before any proof could match. */
        for (size_t i = 0; i < ELEMENTSOF(low_order); i++) {
                size_t idlen;
                uint8_t *id = test_unhex(low_order[i], &idlen);
                struct node lo = b;

                memcpy(lo.node_id, id, 32);
                free(id);
                build_register(&lo, &m, false);
                memcpy(m.cookie, b.cookie, COOKIE_LEN);
                memcpy(m.relay_ephemeral, b.relay_ephemeral, 32);
                memset(m.proof, 0x5a, sizeof(m.proof));
                CHECK_EQ_INT(send_from(c, &lo.addr, &m, sizeof(m), T0), -EPERM);
                CHECK_EQ_INT(actions.n, 0);
        }
        CHECK_EQ_INT(relay_core_stats(c)->bad_proof, 4 + ELEMENTSOF(low_order));

        /* The real b. */
        CHECK_EQ_INT(complete(c, &b, T0), 3);
        CHECK(peer_ok(peer_msg(&b, &a), &a));
        CHECK(peer_ok(peer_msg(&a, &b), &b));
        CHECK_EQ_INT(relay_core_count(c), 2);

        /* Shared-key REGISTERs need the proof of their per-run key too (no reply without). */
        {
                struct node s;
                node_shared(&s, "s", ep4("192.0.2.9", 40001), 7);
                CHECK(challenge(c, &s, T0));
                build_register(&s, &m, true);
                m.proof[0] ^= 1;
                crypto_sign_detached(m.signature, NULL, (const uint8_t *) &m,
                                     offsetof(struct message_relay_register, signature),
                                     s.member_sk);
                CHECK_EQ_INT(send_from(c, &s.addr, &m, sizeof(m), T0), -EPERM);
                CHECK_EQ_INT(actions.n, 0);
        }
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

static void test_shared_pairs(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct node a, b, d;

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep6("2001:db8::2", 40002), 1);
        node_shared(&d, "d", ep6("::ffff:198.51.100.4", 40004), 1);
        b.n_candidates = 0;
        memset(b.candidates, 0, sizeof(b.candidates));

        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(count_peer_msgs(), 0);

        /* b learns of a, and a of b (a registered first: it learns now, not at its refresh). */
        CHECK_EQ_INT(do_register(c, &b, T0 + SEC), 3);
        CHECK(peer_ok(peer_msg(&b, &a), &a));
        CHECK(peer_ok(peer_msg(&a, &b), &b));
        CHECK(a.slot != b.slot);

        /* A refresh announces again, both ways; the slot stays. */
        {
                uint32_t slot = a.slot;
                CHECK_EQ_INT(complete(c, &a, T0 + 2 * SEC), 3);
                CHECK_EQ_INT(a.slot, slot);
                CHECK(peer_ok(peer_msg(&a, &b), &b));
                CHECK(peer_ok(peer_msg(&b, &a), &a));
        }

        /* A third member: it learns both, both learn it. */
        CHECK_EQ_INT(do_register(c, &d, T0 + 3 * SEC), 5);
        CHECK(peer_ok(peer_msg(&d, &a), &a));
        CHECK(peer_ok(peer_msg(&d, &b), &b));
        CHECK(peer_ok(peer_msg(&a, &d), &d));
        CHECK(peer_ok(peer_msg(&b, &d), &d));
        CHECK(peer_msg(&d, &d) == NULL);
        CHECK_EQ_INT(relay_core_stats(c)->peers_sent, 2 + 2 + 4);
        CHECK_EQ_INT(relay_core_stats(c)->registrations, 3);
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

static void test_identity_pairs(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct node a, b, e;
        uint8_t sent[256];

        node_identity(&a, "a", ep4("192.0.2.1", 40001), 0);
        node_identity(&b, "b", ep4("192.0.2.2", 40002), 0);
        node_identity(&e, "e", ep4("192.0.2.5", 40005), 0);
        wants(&a, &b);
        wants(&b, &e); /* b does not want a (yet) */
        wants(&e, &a); /* e wants a, who does not want e */

        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &b, T0), 1); /* a wants b, but b wants e: no pair */
        CHECK_EQ_INT(do_register(c, &e, T0), 1); /* e wants a, a wants b: no pair */
        CHECK_EQ_INT(relay_core_stats(c)->peers_sent, 0);
        /* Neither may send to the other through the relay. */
        CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 32, 1, T0, NULL), -ESRCH);
        CHECK_EQ_INT(send_data(c, &e.addr, a.slot, 32, 1, T0, NULL), -ESRCH);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_unpaired, 2);

        /* b now wants a: b's own registration at its address takes the new name (renamed,
         * not replaced: its slot stays). */
        wants(&b, &a);
        {
                uint32_t slot = b.slot;
                CHECK_EQ_INT(do_register(c, &b, T0 + SEC), 3);
                CHECK_EQ_INT(b.slot, slot);
        }
        CHECK(peer_ok(peer_msg(&b, &a), &a));
        CHECK(peer_ok(peer_msg(&a, &b), &b));
        CHECK(peer_msg(&e, &a) == NULL);
        CHECK_EQ_INT(relay_core_stats(c)->replaced, 0);
        CHECK_EQ_INT(relay_core_stats(c)->renamed, 1);
        CHECK_EQ_INT(relay_core_count(c), 3);

        CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 32, 2, T0 + SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &b, a.slot));
        CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 32, 3, T0 + SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &a, b.slot));
        /* e still may not reach a, nor a reach e. */
        CHECK_EQ_INT(send_data(c, &e.addr, a.slot, 32, 1, T0 + SEC, NULL), -ESRCH);
        CHECK_EQ_INT(send_data(c, &a.addr, e.slot, 32, 1, T0 + SEC, NULL), -ESRCH);
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

static void test_networks_apart(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct node a, x, ia, ib;
        uint8_t sent[256];

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&x, "x", ep4("192.0.2.24", 40001), 2);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &x, T0), 1);
        CHECK_EQ_INT(relay_core_stats(c)->peers_sent, 0);
        CHECK_EQ_INT(send_data(c, &x.addr, a.slot, 32, 1, T0, NULL), -ESRCH);
        CHECK_EQ_INT(send_data(c, &a.addr, x.slot, 32, 1, T0, NULL), -ESRCH);
        CHECK_EQ_INT(actions.n, 0);

        /* Identity nodes wanting each other but in different networks (different psks). */
        node_identity(&ia, "i", ep4("192.0.2.31", 40001), 3);
        node_identity(&ib, "j", ep4("192.0.2.32", 40001), 4);
        wants(&ia, &ib);
        wants(&ib, &ia);
        CHECK_EQ_INT(do_register(c, &ia, T0), 1);
        CHECK_EQ_INT(do_register(c, &ib, T0), 1);
        CHECK_EQ_INT(send_data(c, &ia.addr, ib.slot, 32, 1, T0, NULL), -ESRCH);

        /* An identity node and a shared-key node of the same network are not a pair either. */
        {
                struct node s;
                node_shared(&s, "s", ep4("192.0.2.33", 40001), 3);
                CHECK_EQ_INT(do_register(c, &s, T0), 1);
                CHECK_EQ_INT(send_data(c, &s.addr, ia.slot, 32, 1, T0, NULL), -ESRCH);
        }
        CHECK_EQ_INT(relay_core_stats(c)->peers_sent, 0);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_unpaired, 4);

        /* Control: a second node of a's network is paired at once. */
        {
                struct node b;
                node_shared(&b, "b", ep4("192.0.2.2", 40001), 1);
                CHECK_EQ_INT(do_register(c, &b, T0), 3);
                CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 100, 9, T0, sent), MESSAGE_RELAY_DATA);
                CHECK_EQ_INT(actions.n, 1);
        }
        relay_core_free(c);
}

static void test_forwarding(void) {
        struct relay_core *c = new_core(16, 0, 0);
        uint8_t sent[RELAYED_DATAGRAM_MAX_LEN];
        struct node a, b;
        struct endpoint stranger = ep4("203.0.113.7", 5555);

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep6("2001:db8::2", 40002), 1);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &b, T0), 3);

        /* Both ways, several sizes: the smallest, a handshake's, the largest. */
        const size_t sizes[] = {4, 148, DATAGRAM_MAX_LEN};
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                size_t len = sizeof(struct message_relay_data) + sizes[i];
                CHECK_EQ_INT(send_data(c, &a.addr, b.slot, sizes[i], (uint8_t) i, T0, sent),
                             MESSAGE_RELAY_DATA);
                CHECK(forwarded_ok(sent, len, &b, a.slot));
                CHECK_EQ_INT(send_data(c, &b.addr, a.slot, sizes[i], (uint8_t) i, T0, sent),
                             MESSAGE_RELAY_DATA);
                CHECK(forwarded_ok(sent, len, &a, b.slot));
        }
        CHECK_EQ_INT(relay_core_stats(c)->forwarded, 6);
        CHECK_EQ_INT(relay_core_stats(c)->forwarded_bytes,
                     2 * (3 * 8 + 4 + 148 + DATAGRAM_MAX_LEN));

        /* One byte too long, one too short: malformed. */
        {
                uint8_t big[RELAYED_DATAGRAM_MAX_LEN + 1] = {MESSAGE_RELAY_DATA};
                put_le32(big + 4, b.slot);
                CHECK_EQ_INT(send_from(c, &a.addr, big, sizeof(big), T0), -EBADMSG);
                CHECK_EQ_INT(send_from(c, &a.addr, big, MESSAGE_RELAY_DATA_MIN_LEN - 1, T0),
                             -EBADMSG);
        }

        /* From an address that never registered; to a slot nobody holds; to itself. */
        CHECK_EQ_INT(send_data(c, &stranger, b.slot, 32, 1, T0, NULL), -ENOENT);
        CHECK_EQ_INT(actions.n, 0);
        CHECK_EQ_INT(send_data(c, &a.addr, b.slot ^ 0x80000000u, 32, 1, T0, NULL), -ENOENT);
        CHECK_EQ_INT(send_data(c, &a.addr, 0, 32, 1, T0, NULL), -ENOENT);
        CHECK_EQ_INT(send_data(c, &a.addr, a.slot, 32, 1, T0, NULL), -ESRCH);
        /* The same address, another port: not registered. */
        {
                struct endpoint other = ep4("192.0.2.1", 40009);
                CHECK_EQ_INT(send_data(c, &other, b.slot, 32, 1, T0, NULL), -ENOENT);
        }
        CHECK_EQ_INT(relay_core_stats(c)->dropped_unregistered, 4);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_unpaired, 1);
        CHECK_EQ_INT(relay_core_stats(c)->forwarded, 6);
        relay_core_free(c);
}

static void test_expiry(void) {
        const uint64_t life = (uint64_t) RELAY_REGISTRATION_LIFETIME * SEC;
        struct relay_core *c = new_core(16, 0, 0);
        struct node a, b;

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep4("192.0.2.2", 40002), 1);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &b, T0 + 30 * SEC), 3);

        CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 32, 1, T0 + life - 1, NULL), MESSAGE_RELAY_DATA);
        /* a's lifetime is over: it is gone, from either side, sweep or not. */
        CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 32, 1, T0 + life, NULL), -ENOENT);
        CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 32, 1, T0 + life, NULL), -ENOENT);
        CHECK(!relay_core_lookup_slot(c, a.slot, T0 + life, NULL, NULL));
        CHECK_EQ_INT(relay_core_expire(c, T0 + life), 1);
        CHECK_EQ_INT(relay_core_count(c), 1);
        CHECK_EQ_INT(relay_core_stats(c)->registrations, 1);
        CHECK_EQ_INT(relay_core_stats(c)->expired, 1);

        /* b refreshes at +80 s (cookie still good): it lives until +140 s. */
        CHECK_EQ_INT(complete(c, &b, T0 + 80 * SEC), 1);
        CHECK_EQ_INT(relay_core_expire(c, T0 + 139 * SEC), 0);
        CHECK(relay_core_lookup_slot(c, b.slot, T0 + 139 * SEC, NULL, NULL));
        CHECK_EQ_INT(relay_core_expire(c, T0 + 140 * SEC), 1);
        CHECK_EQ_INT(relay_core_count(c), 0);

        /* Coming back after expiry: a new registration, with a new slot. */
        {
                uint32_t old = a.slot;
                CHECK_EQ_INT(do_register(c, &a, T0 + 150 * SEC), 1);
                CHECK(a.slot != old);
        }
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

/* STUN Binding request from src: the number of datagrams answered (0 or 1). */
/* A Binding request padded (SOFTWARE, 32 bytes) to 64 bytes: larger than any answer, so only
 * the per-source limit and the global unauthenticated budget apply, not the amplification one. */
static int padded_request(uint8_t *req, size_t max) {
        uint8_t tid[STUN_TRANSACTION_ID_LEN];
        int n;

        randombytes_buf(tid, sizeof(tid));
        n = stun_build_header(req, max, STUN_BINDING_REQUEST, tid);
        if (n >= 0)
                n = stun_add_bytes(req, (size_t) n, max, STUN_ATTR_SOFTWARE,
                                   "shadowmesh test: padding to 60 ", 32);
        if (n >= 0)
                n = stun_add_fingerprint(req, (size_t) n, max);
        if (n != 64)
                abort();
        return n;
}

static int stun_from(struct relay_core *c, const struct endpoint *src, uint64_t now) {
        uint8_t req[80];
        int n;

        n = padded_request(req, sizeof(req));
        n = send_from(c, src, req, (size_t) n, now);
        return n < 0 ? 0 : (int) actions.n;
}

static void test_rate_limit(void) {
        struct relay_core *c = new_core(16, 10, 0);
        struct endpoint a = ep4("192.0.2.1", 1000), a2 = ep4("192.0.2.1", 2000),
                        b = ep4("192.0.2.2", 1000), v6a = ep6("2001:db8:0:1::1", 1000),
                        v6b = ep6("2001:db8:0:1::2", 1000), v6c = ep6("2001:db8:0:2::1", 1000);
        int answered = 0;

        /* Burst: twice the rate. Every port of the address draws from one bucket. */
        for (int i = 0; i < 30; i++)
                answered += stun_from(c, i % 2 ? &a : &a2, T0);
        CHECK_EQ_INT(answered, 20);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_rate, 10);
        /* Another address is not affected. */
        CHECK_EQ_INT(stun_from(c, &b, T0), 1);
        /* Refill: 10 per second. */
        answered = 0;
        for (int i = 0; i < 15; i++)
                answered += stun_from(c, &a, T0 + SEC);
        CHECK_EQ_INT(answered, 10);
        answered = 0;
        for (int i = 0; i < 15; i++)
                answered += stun_from(c, &a, T0 + SEC + SEC / 2);
        CHECK_EQ_INT(answered, 5);
        /* Long idle: full burst again, never more. */
        answered = 0;
        for (int i = 0; i < 30; i++)
                answered += stun_from(c, &a, T0 + 100 * SEC);
        CHECK_EQ_INT(answered, 20);

        /* IPv6: one bucket per /64. */
        answered = 0;
        for (int i = 0; i < 30; i++)
                answered += stun_from(c, i % 2 ? &v6a : &v6b, T0);
        CHECK_EQ_INT(answered, 20);
        CHECK_EQ_INT(stun_from(c, &v6c, T0), 1);

        /* Everything counts, a REGISTER too, and a limited one gets no CHALLENGE. */
        {
                struct node n;
                struct message_relay_register m;

                node_shared(&n, "n", a, 1);
                build_register(&n, &m, false);
                CHECK_EQ_INT(send_from(c, &a, &m, sizeof(m), T0 + 100 * SEC), -ENOBUFS);
                CHECK_EQ_INT(actions.n, 0);
        }
        relay_core_free(c);

        /* Many sources at once: each gets its own bucket (the table is set-associative). */
        c = new_core(16, 1, 0);
        answered = 0;
        for (int i = 0; i < 1000; i++) {
                char addr[32];
                snprintf(addr, sizeof(addr), "10.%d.%d.1", i / 256, i % 256);
                struct endpoint e = ep4(addr, 9);
                answered += stun_from(c, &e, T0);
                answered += stun_from(c, &e, T0);
                answered += stun_from(c, &e, T0); /* the third is over the burst of 2 */
        }
        CHECK_EQ_INT(answered, 2000);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_rate, 1000);
        relay_core_free(c);
}

static void test_bandwidth(void) {
        struct relay_core *c = new_core(16, 0, 1000); /* 1000 B/s: the burst floor is 64 KiB */
        struct node a, b;
        int passed = 0;

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep4("192.0.2.2", 40002), 1);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &b, T0), 3);

        /* 1000-byte datagrams (992 inner): 65 fit in 65536 bytes. */
        for (int i = 0; i < 70; i++)
                if (send_data(c, &a.addr, b.slot, 992, 1, T0, NULL) == MESSAGE_RELAY_DATA)
                        passed++;
        CHECK_EQ_INT(passed, 65);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_bandwidth, 5);
        /* The cap is the sender's: b still has its whole burst. */
        CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 992, 1, T0, NULL), MESSAGE_RELAY_DATA);
        /* One second later a has 1000 bytes more: one datagram, not two (536 were left). */
        CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 992, 1, T0 + SEC, NULL), MESSAGE_RELAY_DATA);
        CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 992, 1, T0 + SEC, NULL), -ENOBUFS);
        relay_core_free(c);
}

static void test_max_peers(void) {
        struct relay_core *c = new_core(3, 0, 0);
        struct message_relay_register m;
        struct node n[4];
        char name[4][2] = {"p", "q", "r", "s"};

        for (int i = 0; i < 4; i++) {
                char addr[32];
                snprintf(addr, sizeof(addr), "192.0.2.%d", 10 + i);
                node_shared(&n[i], name[i], ep4(addr, 40000), (uint8_t) (10 + i));
        }
        for (int i = 0; i < 3; i++)
                CHECK_EQ_INT(do_register(c, &n[i], T0 + (uint64_t) i * 10 * SEC), 1);
        /* Full: the fourth is challenged (52 bytes, stateless), then silently refused. */
        CHECK(challenge(c, &n[3], T0 + 30 * SEC));
        build_register(&n[3], &m, true);
        CHECK_EQ_INT(send_from(c, &n[3].addr, &m, sizeof(m), T0 + 30 * SEC), -ENOSPC);
        CHECK_EQ_INT(actions.n, 0);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_full, 1);
        /* Refreshing an existing one still works when full. */
        CHECK_EQ_INT(complete(c, &n[1], T0 + 30 * SEC), 1);
        /* Once the first has expired, there is room (the full table is swept on demand). */
        CHECK_EQ_INT(complete(c, &n[3], T0 + 60 * SEC), 1);
        CHECK_EQ_INT(relay_core_count(c), 3);
        CHECK(!relay_core_lookup_slot(c, n[0].slot, T0 + 60 * SEC, NULL, NULL));
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);

        /* Shared-key networks hold at most RELAY_MAX_NETWORK_REGISTRATIONS. */
        c = new_core(1000, 0, 0);
        for (int i = 0; i < RELAY_MAX_NETWORK_REGISTRATIONS; i++) {
                char addr[32];
                struct node x;
                snprintf(addr, sizeof(addr), "198.51.100.%d", i + 1);
                node_shared(&x, "x", ep4(addr, 9001), 5);
                CHECK_EQ_INT(do_register(c, &x, T0), 1 + 2 * i);
        }
        {
                struct node x, y;
                node_shared(&x, "x", ep4("198.51.100.200", 9001), 5);
                CHECK(challenge(c, &x, T0));
                build_register(&x, &m, true);
                CHECK_EQ_INT(send_from(c, &x.addr, &m, sizeof(m), T0), -ENOSPC);
                /* Another network still has room. */
                node_shared(&y, "y", ep4("198.51.100.201", 9001), 6);
                CHECK_EQ_INT(do_register(c, &y, T0), 1);
        }
        CHECK_EQ_INT(relay_core_count(c), RELAY_MAX_NETWORK_REGISTRATIONS + 1);
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

static void test_nat_rebinding(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct node a, b;
        uint32_t slot;
        uint8_t sent[256];
        struct endpoint old;

        node_identity(&a, "a", ep4("192.0.2.1", 40001), 0);
        node_identity(&b, "b", ep4("192.0.2.2", 40002), 0);
        wants(&a, &b);
        wants(&b, &a);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &b, T0), 3);
        slot = a.slot;

        /* a's NAT gives it a new port: challenge there, register, keep the slot. */
        old = a.addr;
        a.addr = ep4("192.0.2.1", 50123);
        CHECK_EQ_INT(do_register(c, &a, T0 + 10 * SEC), 3);
        CHECK_EQ_INT(a.slot, slot);
        CHECK_EQ_INT(relay_core_stats(c)->moved, 1);
        CHECK_EQ_INT(relay_core_count(c), 2);
        /* b is told where a is now. */
        CHECK(peer_ok(peer_msg(&b, &a), &a));
        /* b's data for a goes to the new address; the old address is nobody's. */
        CHECK_EQ_INT(send_data(c, &b.addr, slot, 32, 4, T0 + 10 * SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &a, b.slot));
        CHECK_EQ_INT(send_data(c, &old, b.slot, 32, 4, T0 + 10 * SEC, NULL), -ENOENT);
        CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 32, 4, T0 + 10 * SEC, sent), MESSAGE_RELAY_DATA);

        /* Someone else's registration from a's old address does not disturb a. */
        {
                struct node z;
                node_shared(&z, "z", old, 8);
                CHECK_EQ_INT(do_register(c, &z, T0 + 11 * SEC), 1);
                CHECK_EQ_INT(relay_core_stats(c)->replaced, 0);
                CHECK(relay_core_lookup_slot(c, slot, T0 + 11 * SEC, NULL, NULL));
        }
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

static void test_allow_list(void) {
        uint8_t nets[2][NETWORK_ID_LEN];
        struct relay_core_config cfg = {
                .max_registrations = 8,
                .allowed_networks = nets,
                .n_allowed_networks = 2,
        };
        struct relay_core *c = NULL;
        struct message_relay_register m;
        struct node a, x;

        network(nets[0], 1);
        network(nets[1], 3);
        CHECK_EQ_INT(relay_core_new(&cfg, T0, &c), 0);
        memset(nets, 0, sizeof(nets)); /* the core keeps its own copy */

        node_shared(&a, "a", ep4("192.0.2.1", 1), 3);
        node_shared(&x, "x", ep4("192.0.2.2", 1), 2);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        /* Another network: not even a challenge. */
        build_register(&x, &m, false);
        CHECK_EQ_INT(send_from(c, &x.addr, &m, sizeof(m), T0), -EACCES);
        CHECK_EQ_INT(actions.n, 0);
        CHECK_EQ_INT(relay_core_stats(c)->dropped_not_allowed, 1);
        CHECK_EQ_INT(relay_core_stats(c)->challenges, 1);
        relay_core_free(c);
}

static void test_stun(void) {
        struct relay_core *c = new_core(16, 0, 0);
        const struct endpoint srcs[] = {
                ep4("192.0.2.77", 3478),
                ep6("::ffff:192.0.2.78", 61000),
                ep6("2001:db8::99", 1234),
        };
        uint8_t req[64], tid[STUN_TRANSACTION_ID_LEN];
        struct stun_message m;
        int n;

        for (size_t i = 0; i < ELEMENTSOF(srcs); i++) {
                randombytes_buf(tid, sizeof(tid));
                n = stun_build_binding_request(req, sizeof(req), tid, 0);
                CHECK(n > 0);
                CHECK_EQ_INT(send_from(c, &srcs[i], req, (size_t) n, T0),
                             RELAY_HANDLED_STUN | 0x01);
                CHECK_EQ_INT(actions.n, 1);
                CHECK(same_endpoint(&actions.send[0].dest, &srcs[i]));
                /* Header, XOR-MAPPED-ADDRESS, FINGERPRINT: nothing else. */
                CHECK_EQ_INT(actions.send[0].len, i == 2 ? 52 : 40);
                CHECK_EQ_INT(stun_parse(actions.send[0].data, actions.send[0].len, &m), 0);
                CHECK_EQ_INT(m.type, STUN_BINDING_SUCCESS);
                CHECK_MEM(m.transaction_id, tid, sizeof(tid));
                CHECK(m.fingerprint_ok);
                CHECK(m.has_mapped);
                CHECK(!m.has_other_address);
                if (i < 2) {
                        const struct sockaddr_in *sin = (const struct sockaddr_in *) &m.mapped;
                        CHECK_EQ_INT(sin->sin_family, AF_INET);
                        CHECK_EQ_INT(ntohs(sin->sin_port), i == 0 ? 3478 : 61000);
                        CHECK_EQ_INT(ntohl(sin->sin_addr.s_addr), i == 0 ? 0xc000024d : 0xc000024e);
                } else {
                        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &m.mapped;
                        CHECK_EQ_INT(sin6->sin6_family, AF_INET6);
                        CHECK_EQ_INT(ntohs(sin6->sin6_port), 1234);
                        CHECK_MEM(&sin6->sin6_addr, &srcs[2].addr.in6.sin6_addr, 16);
                }
        }
        /* A bare 20-byte request (no FINGERPRINT) is answered as well. */
        n = stun_build_header(req, sizeof(req), STUN_BINDING_REQUEST, tid);
        CHECK_EQ_INT(n, 20);
        CHECK_EQ_INT(send_from(c, &srcs[0], req, 20, T0), RELAY_HANDLED_STUN | 0x01);

        /* CHANGE-REQUEST asking for another address or port: 420 naming it. */
        n = stun_build_binding_request(req, sizeof(req), tid, STUN_CHANGE_IP | STUN_CHANGE_PORT);
        CHECK_EQ_INT(send_from(c, &srcs[0], req, (size_t) n, T0), RELAY_HANDLED_STUN | 0x01);
        CHECK_EQ_INT(actions.n, 1);
        CHECK_EQ_INT(stun_parse(actions.send[0].data, actions.send[0].len, &m), 0);
        CHECK_EQ_INT(m.type, STUN_BINDING_ERROR);
        CHECK(m.has_error);
        CHECK_EQ_INT(m.error_code, 420);
        /* ... and a CHANGE-REQUEST with no flags is a plain request. */
        n = stun_build_header(req, sizeof(req), STUN_BINDING_REQUEST, tid);
        n = stun_add_u32(req, (size_t) n, sizeof(req), STUN_ATTR_CHANGE_REQUEST, 0);
        CHECK_EQ_INT(send_from(c, &srcs[0], req, (size_t) n, T0), RELAY_HANDLED_STUN | 0x01);
        CHECK_EQ_INT(stun_parse(actions.send[0].data, actions.send[0].len, &m), 0);
        CHECK_EQ_INT(m.type, STUN_BINDING_SUCCESS);

        /* An unknown comprehension-required attribute: 420. */
        n = stun_build_header(req, sizeof(req), STUN_BINDING_REQUEST, tid);
        n = stun_add_u32(req, (size_t) n, sizeof(req), 0x7777, 1);
        CHECK_EQ_INT(send_from(c, &srcs[0], req, (size_t) n, T0), RELAY_HANDLED_STUN | 0x01);
        CHECK_EQ_INT(stun_parse(actions.send[0].data, actions.send[0].len, &m), 0);
        CHECK_EQ_INT(m.error_code, 420);

        /* Responses, and STUN-looking garbage, get nothing. */
        n = stun_build_binding_success(req, sizeof(req), tid,
                                       (const struct sockaddr *) &srcs[0].addr, srcs[0].len, NULL,
                                       0, NULL, 0);
        CHECK(n > 0);
        CHECK_EQ_INT(send_from(c, &srcs[0], req, (size_t) n, T0), -EBADMSG);
        CHECK_EQ_INT(actions.n, 0);
        n = stun_build_binding_request(req, sizeof(req), tid, 0);
        req[n - 1] ^= 1; /* FINGERPRINT wrong */
        CHECK_EQ_INT(send_from(c, &srcs[0], req, (size_t) n, T0), -EBADMSG);
        CHECK_EQ_INT(relay_core_stats(c)->stun, 7);
        relay_core_free(c);
}

static void test_malformed(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct endpoint src = ep4("192.0.2.1", 1), unix_src = {.len = sizeof(sa_family_t)};
        struct message_relay_register m;
        struct node a;
        uint8_t buf[512] = {};
        uint64_t invalid = 0;

        node_shared(&a, "a", src, 1);
        CHECK(challenge(c, &a, T0));
        /* Messages a node never sends to the relay. */
        const uint8_t types[] = {0,
                                 1,
                                 2,
                                 3,
                                 4,
                                 MESSAGE_RELAY_CHALLENGE,
                                 MESSAGE_RELAY_REGISTERED,
                                 MESSAGE_RELAY_PEER,
                                 10,
                                 11,
                                 12,
                                 255};
        const size_t sizes[] = {0, 148, 92, 64, 32, 68, 48, 240, 40, 40, 40, 40};
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                buf[0] = types[i];
                CHECK_EQ_INT(send_from(c, &src, buf, sizes[i], T0), -EBADMSG);
                CHECK_EQ_INT(actions.n, 0);
                invalid++;
        }
        /* A REGISTER one byte short or long, or with a reserved byte set. */
        build_register(&a, &m, true);
        CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m) - 1, T0), -EBADMSG);
        memcpy(buf, &m, sizeof(m));
        CHECK_EQ_INT(send_from(c, &src, buf, sizeof(m) + 1, T0), -EBADMSG);
        m.header.reserved_zero[1] = 1;
        CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
        invalid += 3;
        /* Bad candidates: too many, an unknown family, junk after the count, junk in a v4. */
        build_register(&a, &m, true);
        m.n_candidates = RELAY_MAX_CANDIDATES + 1;
        CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
        build_register(&a, &m, true);
        m.candidates[0].family = 5;
        CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
        build_register(&a, &m, true);
        m.candidates[5].port_be = 1;
        CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
        build_register(&a, &m, true);
        m.candidates[0].addr[9] = 1;
        CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
        build_register(&a, &m, true);
        m.reserved_zero[2] = 1;
        CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
        invalid += 5;
        /* Shared-key mode needs a network id and a node id. */
        {
                struct node z = a;
                memset(z.network_id, 0, sizeof(z.network_id));
                build_register(&z, &m, false);
                CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
                z = a;
                memset(z.node_id, 0, sizeof(z.node_id));
                build_register(&z, &m, false);
                CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
                /* ... and a network key; identity mode has neither key nor signature. */
                build_register(&a, &m, false);
                memset(m.network_key, 0, sizeof(m.network_key));
                CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
                build_register(&a, &m, false);
                memset(m.want_peer, 7, sizeof(m.want_peer));
                CHECK_EQ_INT(send_from(c, &src, &m, sizeof(m), T0), -EBADMSG);
                invalid += 4;
        }
        /* Not an IP source; no buffer. */
        unix_src.addr.sa.sa_family = AF_UNIX;
        build_register(&a, &m, true);
        CHECK_EQ_INT(send_from(c, &unix_src, &m, sizeof(m), T0), -EBADMSG);
        CHECK_EQ_INT(relay_core_receive(c, NULL, 10, &src, T0, &actions), -EBADMSG);
        invalid += 2;
        CHECK_EQ_INT(relay_core_stats(c)->dropped_invalid, invalid);
        CHECK_EQ_INT(relay_core_count(c), 0);
        /* And the well-formed one still works. */
        CHECK_EQ_INT(complete(c, &a, T0), 1);
        relay_core_free(c);
}

/* Many registrations, moves, takeovers and expiries at random: the tables stay consistent. */
static void test_churn(void) {
        struct relay_core *c = new_core(64, 0, 0);
        static struct node nodes[200];
        uint64_t now = T0;

        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                char addr[32];
                snprintf(addr, sizeof(addr), "10.0.%zu.%zu", i / 50, i % 50);
                node_shared(&nodes[i], "c", ep4(addr, 1000), (uint8_t) (1 + i % 7));
        }
        for (int round = 0; round < 2000; round++) {
                struct node *n = &nodes[randombytes_uniform(ELEMENTSOF(nodes))];
                switch (randombytes_uniform(5)) {
                case 0: /* rebinding */
                        n->addr.addr.in.sin_port = htons(1000 + randombytes_uniform(3));
                        break;
                case 1: /* a NAT hands another node's mapping to this one */
                        n->addr = nodes[randombytes_uniform(ELEMENTSOF(nodes))].addr;
                        break;
                case 2:
                        now += randombytes_uniform(5) * SEC;
                        break;
                default:
                        break;
                }
                (void) do_register(c, n, now);
                if (round % 100 == 0)
                        relay_core_expire(c, now);
                if (!relay_core_check_invariants(c)) {
                        CHECKF(false, "invariants broken at round %d", round);
                        break;
                }
        }
        CHECK(relay_core_count(c) <= 64);
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

/* ---- security ----------------------------------------------------------------------------- */

/* Every reply carries a MAC under the nonce of the REGISTER it answers (PEER: the addressee's
 * latest): it checks under that nonce and under no other. */
static void test_reply_auth(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct node a, b;
        uint8_t other[16];

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep4("192.0.2.2", 40002), 1);
        randombytes_buf(other, sizeof(other));
        CHECK(challenge(c, &a, T0)); /* checks the CHALLENGE's MAC under a.nonce */
        CHECK(!auth_ok(actions.send[0].data, actions.send[0].len, other));
        CHECK(actions.send[0].len < sizeof(struct message_relay_register));
        CHECK_EQ_INT(complete(c, &a, T0), 1); /* REGISTERED under the new nonce */
        CHECK(!auth_ok(actions.send[0].data, actions.send[0].len, other));
        CHECK_EQ_INT(do_register(c, &b, T0), 3);
        /* PEER to a is under a's registered nonce, PEER to b under b's; never crossed. */
        CHECK(peer_ok(peer_msg(&a, &b), &b));
        CHECK(peer_ok(peer_msg(&b, &a), &a));
        for (size_t i = 1; i < actions.n; i++) {
                const struct relay_send *x = &actions.send[i];
                const struct node *to = same_endpoint(&x->dest, &a.addr) ? &a : &b;
                const struct node *not_to = to == &a ? &b : &a;
                CHECK(auth_ok(x->data, x->len, to->reg_nonce));
                CHECK(!auth_ok(x->data, x->len, not_to->reg_nonce));
        }
        relay_core_free(c);
}

/* Shared-key mode: membership is the psk's signature. Knowing the network id (it travels in
 * clear) without the psk joins nobody: such a node is never paired with the members, learns
 * nothing of them, cannot send them data and does not count toward their network's cap. */
static void test_shared_membership(void) {
        struct relay_core *c = new_core(256, 0, 0);
        struct node a, b, x;
        struct message_relay_register m;
        uint8_t sent[64], wrong_psk[32];

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep4("192.0.2.2", 40002), 1);
        node_shared(&x, "x", ep4("203.0.113.66", 40003), 1);
        memset(wrong_psk, 0xee, sizeof(wrong_psk));
        member_keys(&x, wrong_psk); /* same network id, another psk */
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &b, T0), 3);

        /* Claiming the members' network key without its secret: no signature, no entry. */
        CHECK(challenge(c, &x, T0));
        build_register(&x, &m, true);
        memcpy(m.network_key, a.member_pk, 32);
        sign(&x, &m); /* a valid proof of x's node key: only the signature is wrong */
        crypto_sign_detached(m.signature, NULL, (const uint8_t *) &m,
                             offsetof(struct message_relay_register, signature), x.member_sk);
        CHECK_EQ_INT(send_from(c, &x.addr, &m, sizeof(m), T0), -EPERM);
        CHECK_EQ_INT(actions.n, 0);
        /* A signature over another message (replayed from a) does not fit this one. */
        build_register(&a, &m, true);
        {
                uint8_t sig[64];
                memcpy(sig, m.signature, sizeof(sig));
                build_register(&x, &m, true);
                memcpy(m.network_key, a.member_pk, 32);
                sign(&x, &m);
                memcpy(m.signature, sig, sizeof(sig));
        }
        CHECK_EQ_INT(send_from(c, &x.addr, &m, sizeof(m), T0), -EPERM);
        CHECK_EQ_INT(relay_core_stats(c)->bad_proof, 2);

        /* With its own key x registers, alone: no PEER about a or b, none to them. */
        CHECK_EQ_INT(complete(c, &x, T0), 1);
        CHECK(!peer_msg(&x, &a) && !peer_msg(&a, &x));
        CHECK_EQ_INT(send_data(c, &x.addr, a.slot, 32, 1, T0, sent), -ESRCH);
        CHECK_EQ_INT(send_data(c, &a.addr, x.slot, 32, 1, T0, sent), -ESRCH);
        /* Filling "the network" from outside does not fill the members' group. */
        for (int i = 0; i < RELAY_MAX_NETWORK_REGISTRATIONS + 5; i++) {
                char addr[32];
                struct node y;
                snprintf(addr, sizeof(addr), "198.51.100.%d", i + 1);
                node_shared(&y, "y", ep4(addr, 9), 1);
                member_keys(&y, wrong_psk);
                do_register(c, &y, T0);
        }
        {
                struct node d;
                node_shared(&d, "d", ep4("192.0.2.4", 40004), 1);
                CHECK_EQ_INT(do_register(c, &d, T0), 5); /* REGISTERED + 2 PEER each for a, b */
        }
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

/* A slot belongs to the per-run key of the node that made it: another holder of the psk (or
 * anyone) re-registering that node id from elsewhere cannot move it, with or without a proof. */
static void test_slot_stealing(void) {
        struct relay_core *c = new_core(16, 0, 0);
        struct node a, b, m;
        struct message_relay_register r;
        struct endpoint where;
        uint8_t sent[64];

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        node_shared(&b, "b", ep4("192.0.2.2", 40002), 1);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        CHECK_EQ_INT(do_register(c, &b, T0), 3);

        /* mallory holds the psk (same membership key) and takes a's node id, from its own
         * address, with a proof made with its own key. */
        node_shared(&m, "m", ep4("203.0.113.9", 40009), 1);
        memcpy(m.node_id, a.node_id, 32);
        CHECK(challenge(c, &m, T0 + SEC));
        CHECK_EQ_INT(complete(c, &m, T0 + SEC), -1);
        CHECK_EQ_INT(relay_core_stats(c)->bad_proof, 1);
        /* ... or with no proof at all. */
        build_register(&m, &r, true);
        memset(r.proof, 0, sizeof(r.proof));
        crypto_sign_detached(r.signature, NULL, (const uint8_t *) &r,
                             offsetof(struct message_relay_register, signature), m.member_sk);
        CHECK_EQ_INT(send_from(c, &m.addr, &r, sizeof(r), T0 + SEC), -EPERM);
        CHECK_EQ_INT(relay_core_stats(c)->moved, 0);
        /* a's slot is still a's, at a's address, and b's data still reaches a. */
        CHECK(relay_core_lookup_slot(c, a.slot, T0 + SEC, &where, NULL));
        CHECK(same_endpoint(&where, &a.addr));
        CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 32, 2, T0 + SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &a, b.slot));
        /* The real a moving (NAT rebinding) keeps working. */
        a.addr = ep4("192.0.2.1", 50001);
        CHECK_EQ_INT(do_register(c, &a, T0 + 2 * SEC), 3);
        CHECK_EQ_INT(relay_core_stats(c)->moved, 1);
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

/* Datagrams spoofed with a node's source address use up that address's ordinary bucket; the
 * node's own REGISTERs, which echo a valid cookie, draw from another one and still get in. */
static void test_verified_bucket(void) {
        struct relay_core *c = new_core(16, 10, 0);
        struct node a;
        struct message_relay_register m;
        int dropped = 0;

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        for (int i = 0; i < 100; i++) {
                build_register(&a, &m, false); /* what a spoofer can send: no cookie */
                if (send_from(c, &a.addr, &m, sizeof(m), T0 + SEC) == -ENOBUFS)
                        dropped++;
        }
        CHECK(dropped >= 70);
        CHECK_EQ_INT(complete(c, &a, T0 + SEC), 1);
        /* The verified bucket is a bucket too: a flood of valid ones is limited. */
        dropped = 0;
        for (int i = 0; i < 40; i++) {
                build_register(&a, &m, true);
                if (send_from(c, &a.addr, &m, sizeof(m), T0 + 2 * SEC) == -ENOBUFS)
                        dropped++;
        }
        CHECK(dropped >= 10);
        relay_core_free(c);
}

/* What a spoofed flood makes the relay send toward the victim, in bytes per byte sent: STUN
 * requests of 28 bytes (answers of 40) and cookie-less REGISTERs (answers of 68), each from a
 * different address so no per-source limit helps. Measured over one second of the relay's
 * clock; a registered source is still answered. */
static void test_amplification(void) {
        struct relay_core *c = new_core(16, 0, 0);
        uint8_t req[64], tid[STUN_TRANSACTION_ID_LEN];
        uint64_t in = 0, out = 0;
        struct node a, n;
        struct message_relay_register m;
        int len;

        node_shared(&a, "a", ep4("192.0.2.1", 40001), 1);
        CHECK_EQ_INT(do_register(c, &a, T0), 1);
        for (int i = 0; i < 20000; i++) {
                char addr[32];
                snprintf(addr, sizeof(addr), "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
                struct endpoint e = ep4(addr, 9);
                randombytes_buf(tid, sizeof(tid));
                len = stun_build_binding_request(req, sizeof(req), tid, 0);
                CHECK(len == 28);
                send_from(c, &e, req, (size_t) len, T0 + (uint64_t) i * (SEC / 20000));
                in += (uint64_t) len;
                for (size_t k = 0; k < actions.n; k++)
                        out += actions.send[k].len;
        }
        printf("# STUN, 20000 spoofed 28-byte requests in 1 s: %llu bytes in, %llu out, "
               "ratio %.4f (unbounded it would be %.2f)\n",
               (unsigned long long) in, (unsigned long long) out, (double) out / (double) in,
               40.0 / 28.0);
        CHECK(out <= (uint64_t) 3 * RELAY_AMPLIFY_REPLY_RATE * 52);
        CHECK(out < in / 10);
        /* The registered node's own STUN still gets its answer (it proved its address). */
        randombytes_buf(tid, sizeof(tid));
        len = stun_build_binding_request(req, sizeof(req), tid, 0);
        CHECK(send_from(c, &a.addr, req, (size_t) len, T0 + SEC) > 0 && actions.n == 1);

        /* CHALLENGE: never larger than the REGISTER, and globally bounded. */
        in = out = 0;
        node_shared(&n, "n", ep4("10.0.0.1", 9), 1);
        for (int i = 0; i < 20000; i++) {
                char addr[32];
                snprintf(addr, sizeof(addr), "10.%d.%d.%d", 100 + i / 65536, (i / 256) % 256,
                         i % 256);
                n.addr = ep4(addr, 9);
                build_register(&n, &m, false);
                send_from(c, &n.addr, &m, sizeof(m), T0 + 2 * SEC);
                in += sizeof(m);
                for (size_t k = 0; k < actions.n; k++)
                        out += actions.send[k].len;
        }
        printf("# CHALLENGE, 20000 spoofed REGISTERs at once: %llu bytes in, %llu out, ratio "
               "%.4f\n", (unsigned long long) in, (unsigned long long) out,
               (double) out / (double) in);
        CHECK(out <= (uint64_t) 2 * RELAY_UNAUTH_REPLY_RATE * sizeof(struct message_relay_challenge));
        CHECK(relay_core_stats(c)->dropped_unauth_budget > 0);
        /* The budget is spent, yet the registered node still gets its CHALLENGE (its cookie
         * aged out) and renews. */
        CHECK(challenge(c, &a, T0 + 2 * SEC));
        CHECK_EQ_INT(complete(c, &a, T0 + 2 * SEC), 1);
        relay_core_free(c);
}

/* The node's filter on the candidates a PEER names (relay-client.c). */
static struct relay_candidate cand(uint8_t family, const char *addr, uint16_t port) {
        struct relay_candidate c = {.family = family, .port_be = htons(port)};

        if (inet_pton(family == 4 ? AF_INET : AF_INET6, addr, c.addr) != 1)
                abort();
        return c;
}

static void test_candidate_filter(void) {
        static const struct {
                uint8_t family;
                const char *addr;
                bool ok;
        } v[] = {
                {4, "192.0.2.1", true},      {4, "10.1.2.3", true},       {4, "198.18.0.10", true},
                {4, "127.0.0.1", false},     {4, "127.255.0.9", false},   {4, "0.0.0.0", false},
                {4, "0.1.2.3", false},       {4, "224.0.0.1", false},     {4, "239.255.255.250", false},
                {4, "255.255.255.255", false}, {4, "240.0.0.1", false},   {4, "169.254.1.1", false},
                {6, "2001:db8::1", true},    {6, "fd00::5", true},        {6, "::", false},
                {6, "::1", false},           {6, "ff02::1", false},       {6, "fe80::1", false},
                {6, "febf::1", false},       {6, "::ffff:127.0.0.1", false},
                {6, "::ffff:224.0.0.5", false}, {6, "::ffff:192.0.2.7", true},
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                struct relay_candidate c = cand(v[i].family, v[i].addr, 9001);
                CHECKF(relay_candidate_acceptable(&c) == v[i].ok, "%s", v[i].addr);
        }
        {
                struct relay_candidate c = cand(4, "192.0.2.1", 0);
                CHECK(!relay_candidate_acceptable(&c)); /* port 0 */
                c = cand(4, "192.0.2.1", 9001);
                c.family = 5;
                CHECK(!relay_candidate_acceptable(&c));
        }
}

/* ---- the client: which peer an introduction is (relay_introduction_match) ------------------ */

struct table {
        struct peer *p[4];
        size_t n;
};

static struct peer *table_at(void *userdata, size_t i) {
        struct table *t = userdata;
        return i < t->n ? t->p[i] : NULL;
}

static struct relay_introduction intro_of(uint8_t id_byte, const char *addr, uint32_t slot) {
        struct relay_introduction in = { .n_candidates = 1 };

        memset(in.node_id, id_byte, sizeof(in.node_id));
        in.candidates[0] = ep4(addr, 9001);
        in.via_relay = ep4("198.18.0.10", 9545);
        in.via_relay.via_relay = true;
        in.via_relay.relay_slot = slot;
        return in;
}

static void test_introduction_match(void) {
        struct relay_introduction b = intro_of(0xb, "192.0.2.2", 22);
        struct relay_introduction c = intro_of(0xc, "192.0.2.3", 33);
        struct sender s = {}; /* path_set_relay sends nothing: no endpoint on the relay yet */
        struct stats st = {};
        struct table t = {};

        s.sockets = (struct udp_sockets){ -1, -EBADF };
        s.stats = &st;
        for (size_t i = 0; i < 3; i++)
                CHECK(peer_new(NULL, (uint32_t) i, i + 1, &t.p[i]) >= 0);
        t.n = 1;

        /* Shared-key mode. The waiting peer (`peer: address: ""`) takes the first node. */
        CHECK(relay_introduction_match(&b, false, table_at, &t) == t.p[0]);
        relay_introduction_apply(&s, t.p[0], &b);
        CHECK(t.p[0]->relay_introduced);
        CHECK_EQ_INT(t.p[0]->via_relay.relay_slot, 22);
        CHECK_EQ_INT(t.p[0]->n_candidates, 1);
        /* Another node: no peer is it (the caller adds one); the first stays b's. */
        CHECK(relay_introduction_match(&c, false, table_at, &t) == NULL);
        t.n = 2;
        CHECK(relay_introduction_match(&c, false, table_at, &t) == t.p[1]);
        relay_introduction_apply(&s, t.p[1], &c);
        /* Introduced again (every re-registration): the same peers, by node id. */
        CHECK(relay_introduction_match(&b, false, table_at, &t) == t.p[0]);
        CHECK(relay_introduction_match(&c, false, table_at, &t) == t.p[1]);
        /* A new slot for the same node id still finds it. */
        c.via_relay.relay_slot = 34;
        CHECK(relay_introduction_match(&c, false, table_at, &t) == t.p[1]);

        /* b restarted: a new node id, but we reach it directly at one of its candidates. */
        {
                struct endpoint e = ep4("192.0.2.2", 9001);
                struct relay_introduction b2 = intro_of(0xbb, "192.0.2.2", 23);
                peer_set_endpoint(t.p[0], &e);
                CHECK(relay_introduction_match(&b2, false, table_at, &t) == t.p[0]);
                /* Reached through the relay only: the address proves nothing; a new peer. */
                e = t.p[0]->via_relay;
                peer_set_endpoint(t.p[0], &e);
                CHECK(relay_introduction_match(&b2, false, table_at, &t) == NULL);
        }
        /* A peer with a configured address is never the waiting one. */
        t.n = 3;
        t.p[2]->address = strdup("192.0.2.9:9001");
        {
                struct relay_introduction d = intro_of(0xd, "192.0.2.4", 44);
                CHECK(relay_introduction_match(&d, false, table_at, &t) == NULL);
        }

        /* Identity mode: only by public key; a node id no peer has is not ours. */
        memset(t.p[2]->public_key, 0xc, sizeof(t.p[2]->public_key));
        CHECK(relay_introduction_match(&c, true, table_at, &t) == t.p[2]);
        {
                struct relay_introduction d = intro_of(0xd, "192.0.2.4", 44);
                CHECK(relay_introduction_match(&d, true, table_at, &t) == NULL);
        }

        /* path_reaches: an initiation from a candidate, or from the relay under the peer's
         * slot, is that peer's; another slot or address is not. */
        {
                struct endpoint from = ep4("192.0.2.3", 9001), other = ep4("192.0.2.3", 9002);
                struct endpoint relayed = t.p[1]->via_relay;
                CHECK(path_reaches(t.p[1], &from));
                CHECK(!path_reaches(t.p[1], &other));
                CHECK(!path_reaches(t.p[0], &from));
                CHECK(path_reaches(t.p[1], &relayed));
                relayed.relay_slot++;
                CHECK(!path_reaches(t.p[1], &relayed));
                relayed = from;
                relayed.via_relay = true; /* the relay's wrapping of a candidate's address */
                relayed.relay_slot = t.p[1]->via_relay.relay_slot;
                CHECK(!path_reaches(t.p[1], &relayed));
        }
        for (size_t i = 0; i < 3; i++)
                peer_free(t.p[i]);
}

/* ---- several wanted peers (identity mode, messages.h "several wanted peers") ------------- */

/* A REGISTER with a want list, written from messages.h: the node's fields as build_register's,
 * want_peer zero, then n_wants | 0[3] | keys, and the proof over the REGISTER up to the proof
 * and the list. The keys go as given (the caller sorts them, or not, to test the relay).
 * Returns the length. */
static size_t build_register_wants(struct node *n, const uint8_t (*keys)[32], size_t n_keys,
                                   uint8_t *buf, bool with_cookie) {
        struct message_relay_register *m = (struct message_relay_register *) buf;
        size_t len = 424 + 4 + 32 * n_keys;

        memset(n->want_peer, 0, sizeof(n->want_peer));
        build_register(n, m, false);
        memset(buf + 424, 0, 4 + 32 * n_keys);
        buf[424] = (uint8_t) n_keys;
        memcpy(buf + 428, keys, 32 * n_keys);
        if (with_cookie) {
                uint8_t dh[32], key[32];
                crypto_generichash_state st;

                memcpy(m->cookie, n->cookie, COOKIE_LEN);
                memcpy(m->relay_ephemeral, n->relay_ephemeral, 32);
                if (crypto_scalarmult(dh, n->priv, m->relay_ephemeral) != 0)
                        abort();
                crypto_generichash_init(&st, NULL, 0, sizeof(key));
                crypto_generichash_update(&st, (const uint8_t *) "relay-proof-----", 16);
                crypto_generichash_update(&st, dh, sizeof(dh));
                crypto_generichash_final(&st, key, sizeof(key));
                crypto_generichash_init(&st, key, sizeof(key), 16);
                crypto_generichash_update(&st, buf, offsetof(struct message_relay_register, proof));
                crypto_generichash_update(&st, buf + 424, len - 424);
                crypto_generichash_final(&st, m->proof, 16);
        }
        return len;
}

static int key_order(const void *a, const void *b) {
        return memcmp(a, b, 32);
}

/* keys := the node ids of the nodes, ascending. */
static size_t wanted_ids(uint8_t (*keys)[32], struct node *const *nodes, size_t n) {
        for (size_t i = 0; i < n; i++)
                memcpy(keys[i], nodes[i]->node_id, 32);
        qsort(keys, n, 32, key_order);
        return n;
}

/* The whole exchange with a want list: CHALLENGE, then the REGISTER with the cookie and proof.
 * Returns the number of actions (REGISTERED first), or -1 / the core's error. */
static int register_wants(struct relay_core *c, struct node *n, struct node *const *wanted,
                          size_t n_wanted, uint64_t now) {
        static uint8_t buf[RELAY_REGISTER_MAX_LEN];
        uint8_t keys[RELAY_MAX_WANTS][32];
        const struct message_relay_registered *reg;
        const struct message_relay_challenge *ch;
        size_t len;
        int r;

        wanted_ids(keys, wanted, n_wanted);
        len = build_register_wants(n, keys, n_wanted, buf, false);
        r = send_from(c, &n->addr, buf, len, now);
        if (r != MESSAGE_RELAY_REGISTER || actions.n != 1 ||
            actions.send[0].len != sizeof(*ch))
                return r < 0 ? r : -1;
        ch = (const struct message_relay_challenge *) actions.send[0].data;
        if (get_le32(ch) != MESSAGE_RELAY_CHALLENGE || !auth_ok(ch, sizeof(*ch), n->nonce))
                return -1;
        memcpy(n->cookie, ch->cookie, COOKIE_LEN);
        memcpy(n->relay_ephemeral, ch->relay_ephemeral, 32);
        len = build_register_wants(n, keys, n_wanted, buf, true);
        r = send_from(c, &n->addr, buf, len, now);
        if (r != MESSAGE_RELAY_REGISTER)
                return r < 0 ? r : -1;
        check_reply_sizes(len + 240 * 2 * 2 * RELAY_MAX_WANTS); /* PEERs are checked apart */
        reg = (const struct message_relay_registered *) actions.send[0].data;
        if (actions.n < 1 || actions.send[0].len != sizeof(*reg) ||
            get_le32(reg) != MESSAGE_RELAY_REGISTERED || !auth_ok(reg, sizeof(*reg), n->nonce) ||
            !same_endpoint(&actions.send[0].dest, &n->addr))
                return -1;
        n->slot = get_le32(&reg->slot);
        memcpy(n->reg_nonce, n->nonce, sizeof(n->nonce));
        return (int) actions.n;
}

/* The codec: the lengths the classifier takes, and every malformed form named. */
static void test_want_list_codec(void) {
        static uint8_t buf[RELAY_REGISTER_MAX_LEN + 64];
        uint8_t keys[RELAY_MAX_WANTS + 1][32];
        struct relay_register_view v;
        struct relay_register_error why;
        struct node a;
        size_t len;

        node_identity(&a, "a", ep4("192.0.2.1", 40001), 0);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                memset(keys[i], (int) (0x10 + i), 32);

        /* Lengths: 424 (the old one), 428 + 32 n for 1 <= n <= 24, nothing else. */
        CHECK_EQ_INT(RELAY_REGISTER_WANTS_LEN(1), 460);
        CHECK_EQ_INT(RELAY_REGISTER_MAX_LEN, 1196);
        for (size_t n = 0; n <= RELAY_MAX_WANTS + 1; n++) {
                len = build_register_wants(&a, keys, n, buf, false);
                CHECKF(message_classify(buf, len) ==
                               (n >= 1 && n <= RELAY_MAX_WANTS ? MESSAGE_RELAY_REGISTER
                                                               : MESSAGE_INVALID),
                       "n_wants %zu", n);
                CHECKF(message_classify(buf, len + 1) == MESSAGE_INVALID, "n_wants %zu + 1", n);
                CHECKF(message_classify(buf, len - 1) == MESSAGE_INVALID, "n_wants %zu - 1", n);
        }
        len = build_register_wants(&a, keys, 3, buf, false);
        CHECK_EQ_INT(relay_register_parse(buf, len, &v, &why), 0);
        CHECK(v.list == (const void *) (buf + 424) && v.n_wants == 3 && !v.shared);
        len = build_register_wants(&a, keys, RELAY_MAX_WANTS, buf, false);
        CHECK_EQ_INT(relay_register_parse(buf, len, &v, &why), 0);
        CHECK_EQ_INT(v.n_wants, RELAY_MAX_WANTS);
        /* The old forms still parse: identity (want_peer) and shared-key. */
        {
                struct message_relay_register m;
                struct node s;
                wants(&a, &a);
                build_register(&a, &m, false);
                CHECK_EQ_INT(relay_register_parse((const uint8_t *) &m, sizeof(m), &v, &why), 0);
                CHECK(!v.list && !v.shared && v.n_wants == 0);
                node_shared(&s, "s", ep4("192.0.2.9", 1), 1);
                build_register(&s, &m, false);
                CHECK_EQ_INT(relay_register_parse((const uint8_t *) &m, sizeof(m), &v, &why), 0);
                CHECK(!v.list && v.shared);
        }

        /* Malformed, each with its reason and place. */
        struct {
                const char *name;
                size_t n;
                void (*spoil)(uint8_t *buf, struct node *a);
                const char *what;
                int want;
        } cases[] = {
                {"count", 3, NULL, "n_wants does not match the length", -1},
                {"reserved", 3, NULL, "want list: reserved bytes are not zero", -1},
                {"want_peer", 3, NULL, "want_peer is set beside a want list", -1},
                {"network key", 3, NULL, "a want list with a network key or a signature "
                                         "(shared-key mode has no list)", -1},
                {"signature", 3, NULL, "a want list with a network key or a signature "
                                       "(shared-key mode has no list)", -1},
                {"zero key", 3, NULL, "want list: a key is all zeros", 0},
                {"own key", 3, NULL, "want list: names the node itself", 1},
                {"order", 3, NULL, "want list: keys not in strictly ascending order (or repeated)",
                 2},
                {"repeated", 3, NULL,
                 "want list: keys not in strictly ascending order (or repeated)", 1},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct message_relay_register *m = (struct message_relay_register *) buf;
                len = build_register_wants(&a, keys, cases[i].n, buf, false);
                switch (i) {
                case 0: buf[424] = 4; break;
                case 1: buf[426] = 1; break;
                case 2: m->want_peer[31] = 1; break;
                case 3: m->network_key[0] = 1; break;
                case 4: m->signature[63] = 1; break;
                case 5: memset(buf + 428, 0, 32); break;
                case 6: memcpy(buf + 428 + 32, a.node_id, 32); break;
                case 7: memcpy(buf + 428 + 64, keys[0], 32); break;
                case 8: memcpy(buf + 428 + 32, keys[0], 32); break;
                }
                why = (struct relay_register_error){};
                CHECKF(relay_register_parse(buf, len, NULL, &why) == -EBADMSG, "%s", cases[i].name);
                CHECKF(why.what && strcmp(why.what, cases[i].what) == 0, "%s: got '%s'",
                       cases[i].name, why.what ? why.what : "(none)");
                CHECKF(why.want == cases[i].want, "%s: want %d", cases[i].name, why.want);
        }
        /* A bad candidate is named with its index; a wrong length with neither. */
        len = build_register_wants(&a, keys, 2, buf, false);
        ((struct message_relay_register *) buf)->candidates[0].family = 5;
        CHECK_EQ_INT(relay_register_parse(buf, len, NULL, &why), -EBADMSG);
        CHECK(why.candidate == 0 && why.want == -1 && strstr(why.what, "candidate"));
        CHECK_EQ_INT(relay_register_parse(buf, 428, NULL, &why), -EBADMSG);
        CHECK(strstr(why.what, "length") != NULL);
        CHECK_EQ_INT(relay_register_parse(NULL, 424, NULL, &why), -EBADMSG);

        /* And the core drops them unanswered, counted as invalid. */
        {
                struct relay_core *c = new_core(16, 0, 0);
                len = build_register_wants(&a, keys, 3, buf, false);
                memcpy(buf + 428 + 64, keys[0], 32);
                CHECK_EQ_INT(send_from(c, &a.addr, buf, len, T0), -EBADMSG);
                CHECK_EQ_INT(actions.n, 0);
                CHECK_EQ_INT(send_from(c, &a.addr, buf, 428, T0), -EBADMSG);
                CHECK_EQ_INT(relay_core_stats(c)->dropped_invalid, 2);
                relay_core_free(c);
        }
}

/* A node pairs with each wanted peer that wants it too, whichever form the peer registers with;
 * relayed data of each pair reaches the right peer, and no one else's. */
static void test_want_list_pairs(void) {
        struct relay_core *c = new_core(64, 0, 0);
        struct node a, b, cc, d, e;
        uint8_t sent[256];

        node_identity(&a, "a", ep4("192.0.2.1", 40001), 0);
        node_identity(&b, "b", ep4("192.0.2.2", 40002), 0);
        node_identity(&cc, "c", ep6("2001:db8::3", 40003), 0);
        node_identity(&d, "d", ep4("192.0.2.4", 40004), 0);
        node_identity(&e, "e", ep4("192.0.2.5", 40005), 0);

        /* b: an old client, one want_peer (a). c: a list (a, b). d: a list without a (b, e). */
        wants(&b, &a);
        CHECK_EQ_INT(do_register(c, &b, T0), 1);
        CHECK_EQ_INT(register_wants(c, &cc, (struct node *const[]){&a, &b}, 2, T0), 1);
        CHECK_EQ_INT(register_wants(c, &d, (struct node *const[]){&b, &e}, 2, T0), 1);
        CHECK_EQ_INT(relay_core_stats(c)->peers_sent, 0);

        /* a wants b, c and d: paired with b (old form) and c (list), not d (d does not want a):
         * REGISTERED and two PEER messages per pair. */
        CHECK_EQ_INT(register_wants(c, &a, (struct node *const[]){&b, &cc, &d}, 3, T0 + SEC), 5);
        CHECK(peer_ok(peer_msg(&a, &b), &b));
        CHECK(peer_ok(peer_msg(&b, &a), &a));
        CHECK(peer_ok(peer_msg(&a, &cc), &cc));
        CHECK(peer_ok(peer_msg(&cc, &a), &a));
        CHECK(peer_msg(&a, &d) == NULL && peer_msg(&d, &a) == NULL);

        /* Each pair's relayed data reaches its peer, with the sender's slot. */
        CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 32, 1, T0 + SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &b, a.slot));
        CHECK_EQ_INT(send_data(c, &a.addr, cc.slot, 32, 2, T0 + SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &cc, a.slot));
        CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 32, 3, T0 + SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &a, b.slot));
        CHECK_EQ_INT(send_data(c, &cc.addr, a.slot, 32, 4, T0 + SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &a, cc.slot));
        /* Not paired: a and d (d does not want a), c and b (b wants only a), c and d. */
        CHECK_EQ_INT(send_data(c, &a.addr, d.slot, 32, 1, T0 + SEC, NULL), -ESRCH);
        CHECK_EQ_INT(send_data(c, &d.addr, a.slot, 32, 1, T0 + SEC, NULL), -ESRCH);
        CHECK_EQ_INT(send_data(c, &cc.addr, b.slot, 32, 1, T0 + SEC, NULL), -ESRCH);
        CHECK_EQ_INT(send_data(c, &b.addr, cc.slot, 32, 1, T0 + SEC, NULL), -ESRCH);
        CHECK_EQ_INT(send_data(c, &cc.addr, d.slot, 32, 1, T0 + SEC, NULL), -ESRCH);

        /* d now wants a too: d's re-registration pairs it with a (both learn). */
        CHECK_EQ_INT(register_wants(c, &d, (struct node *const[]){&a, &b, &e}, 3, T0 + 2 * SEC),
                     3);
        CHECK(peer_ok(peer_msg(&d, &a), &a));
        CHECK(peer_ok(peer_msg(&a, &d), &d));
        CHECK_EQ_INT(send_data(c, &d.addr, a.slot, 32, 5, T0 + 2 * SEC, sent), MESSAGE_RELAY_DATA);
        CHECK(forwarded_ok(sent, 40, &a, d.slot));

        /* A changed list keeps the name (network, node, zeros) and the slot; a dropped want
         * ends that pair (a no longer wants b: b cannot reach a, nor a reach b). */
        {
                uint32_t slot = a.slot;
                CHECK_EQ_INT(register_wants(c, &a, (struct node *const[]){&cc, &d}, 2,
                                            T0 + 3 * SEC),
                             5);
                CHECK_EQ_INT(a.slot, slot);
                CHECK_EQ_INT(send_data(c, &b.addr, a.slot, 32, 1, T0 + 3 * SEC, NULL), -ESRCH);
                CHECK_EQ_INT(send_data(c, &a.addr, b.slot, 32, 1, T0 + 3 * SEC, NULL), -ESRCH);
                CHECK_EQ_INT(send_data(c, &a.addr, cc.slot, 32, 1, T0 + 3 * SEC, sent),
                             MESSAGE_RELAY_DATA);
        }

        /* The old form again from a (one want_peer, c): its own registration is renamed, the
         * slot stays, and it is paired with c only. */
        {
                uint32_t slot = a.slot;
                uint64_t renamed = relay_core_stats(c)->renamed;
                wants(&a, &cc);
                CHECK_EQ_INT(do_register(c, &a, T0 + 4 * SEC), 3);
                CHECK_EQ_INT(a.slot, slot);
                CHECK_EQ_INT(relay_core_stats(c)->renamed, renamed + 1);
                CHECK(peer_ok(peer_msg(&a, &cc), &cc));
                CHECK_EQ_INT(send_data(c, &d.addr, a.slot, 32, 1, T0 + 4 * SEC, NULL), -ESRCH);
                CHECK_EQ_INT(send_data(c, &cc.addr, a.slot, 32, 1, T0 + 4 * SEC, sent),
                             MESSAGE_RELAY_DATA);
                /* ... and back to a list: renamed again, same slot. */
                CHECK_EQ_INT(register_wants(c, &a, (struct node *const[]){&b, &cc, &d}, 3,
                                            T0 + 5 * SEC),
                             7);
                CHECK_EQ_INT(a.slot, slot);
                CHECK_EQ_INT(relay_core_stats(c)->renamed, renamed + 2);
        }
        CHECK_EQ_INT(relay_core_count(c), 4);
        CHECK_EQ_INT(relay_core_stats(c)->replaced, 0);
        CHECK(relay_core_check_invariants(c));

        /* Another network's node with the same keys is nobody's pair. */
        {
                struct node x = cc;
                network(x.network_id, 9);
                x.addr = ep4("192.0.2.99", 1);
                CHECK_EQ_INT(register_wants(c, &x, (struct node *const[]){&a, &b}, 2, T0 + 5 * SEC),
                             1);
                CHECK_EQ_INT(send_data(c, &x.addr, a.slot, 32, 1, T0 + 5 * SEC, NULL), -ESRCH);
        }
        relay_core_free(c);
}

/* The proof covers the want list; the limits: RELAY_MAX_WANTS pairs answered at once. */
static void test_want_list_proof_and_limits(void) {
        struct relay_core *c = new_core(64, 0, 0);
        static uint8_t buf[RELAY_REGISTER_MAX_LEN];
        static struct node peers[RELAY_MAX_WANTS];
        struct node *wanted[RELAY_MAX_WANTS];
        uint8_t keys[RELAY_MAX_WANTS][32];
        struct node a, b, cc;
        size_t len;

        node_identity(&a, "a", ep4("192.0.2.1", 40001), 0);
        node_identity(&b, "b", ep4("192.0.2.2", 40002), 0);
        node_identity(&cc, "c", ep4("192.0.2.3", 40003), 0);
        wants(&b, &a);
        wants(&cc, &a);
        CHECK_EQ_INT(do_register(c, &b, T0), 1);
        CHECK_EQ_INT(do_register(c, &cc, T0), 1);

        /* A list changed after the proof was made (b's key replaced by c's): refused with
         * nothing sent, as a wrong proof. (The cookie from an old-form REGISTER: the cookie
         * binds the address only.) */
        wants(&a, &b);
        CHECK(challenge(c, &a, T0));
        wanted_ids(keys, (struct node *const[]){&b}, 1);
        len = build_register_wants(&a, keys, 1, buf, true);
        memcpy(buf + 428, cc.node_id, 32);
        CHECK_EQ_INT(send_from(c, &a.addr, buf, len, T0), -EPERM);
        CHECK_EQ_INT(actions.n, 0);
        CHECK_EQ_INT(relay_core_stats(c)->bad_proof, 1);
        /* So is a list cut short (the proof of a longer one). */
        wanted_ids(keys, (struct node *const[]){&b, &cc}, 2);
        len = build_register_wants(&a, keys, 2, buf, true);
        buf[424] = 1;
        CHECK_EQ_INT(send_from(c, &a.addr, buf, len - 32, T0), -EPERM);
        CHECK_EQ_INT(relay_core_count(c), 2);
        /* The right proof of the same list: paired with both. */
        len = build_register_wants(&a, keys, 2, buf, true);
        CHECK_EQ_INT(send_from(c, &a.addr, buf, len, T0), MESSAGE_RELAY_REGISTER);
        CHECK_EQ_INT(actions.n, 5);

        /* RELAY_MAX_WANTS peers, each wanting a: one REGISTER answered with REGISTERED and 48
         * PEER messages (the actions hold them all). */
        for (size_t i = 0; i < RELAY_MAX_WANTS; i++) {
                char addr[32];
                snprintf(addr, sizeof(addr), "198.51.100.%zu", i + 1);
                node_identity(&peers[i], "p", ep4(addr, 9001), 0);
                wants(&peers[i], &a);
                CHECK_EQ_INT(do_register(c, &peers[i], T0), 1); /* a does not want it yet */
                wanted[i] = &peers[i];
        }
        CHECK_EQ_INT(register_wants(c, &a, wanted, RELAY_MAX_WANTS, T0 + SEC),
                     1 + 2 * RELAY_MAX_WANTS);
        for (size_t i = 0; i < RELAY_MAX_WANTS; i++) {
                CHECK(peer_ok(peer_msg(&a, &peers[i]), &peers[i]));
                CHECK(peer_ok(peer_msg(&peers[i], &a), &a));
        }
        CHECK(relay_core_check_invariants(c));
        relay_core_free(c);
}

/* The client's choice of wanted peers: the table's keys but its own and zeros, no key twice,
 * first the peers without a direct session, at most max. */
static struct peer *six_at(void *userdata, size_t i) {
        return i < 6 ? ((struct peer **) userdata)[i] : NULL;
}

static void test_select_wants(void) {
        static struct keypair *const fake = (struct keypair *) (uintptr_t) 0x1000;
        struct endpoint direct = ep4("192.0.2.7", 9001), relayed = ep4("198.18.0.10", 9545);
        uint8_t own[32], out[RELAY_MAX_WANTS][32];
        struct peer *p[6];
        size_t n;

        memset(own, 0xee, sizeof(own));
        for (size_t i = 0; i < ELEMENTSOF(p); i++) {
                CHECK(peer_new(NULL, (uint32_t) i, i + 1, &p[i]) >= 0);
                memset(p[i]->public_key, (int) (0xa0 + i), 32);
        }
        memset(p[1]->public_key, 0, 32);    /* no key yet (Connect without public_key) */
        memset(p[3]->public_key, 0xee, 32); /* our own: never wanted */
        memcpy(p[5]->public_key, p[4]->public_key, 32); /* the same key twice */
        /* p0: a direct session; p2: a session on the relay; p4: no session. */
        atomic_store(&p[0]->current, fake);
        peer_set_endpoint(p[0], &direct);
        atomic_store(&p[2]->current, fake);
        relayed.via_relay = true;
        relayed.relay_slot = 7;
        peer_set_endpoint(p[2], &relayed);

        n = relay_client_select_wants(six_at, p, own, out, RELAY_MAX_WANTS);
        CHECK_EQ_INT(n, 3);
        CHECK(n == 3 && out[0][0] == 0xa2 && out[1][0] == 0xa4 && out[2][0] == 0xa0);
        /* At the cap, the peers that need the relay win. */
        n = relay_client_select_wants(six_at, p, own, out, 2);
        CHECK(n == 2 && out[0][0] == 0xa2 && out[1][0] == 0xa4);
        CHECK_EQ_INT(relay_client_select_wants(six_at, p, own, out, 0), 0);
        /* Without sessions: table order. */
        atomic_store(&p[0]->current, NULL);
        atomic_store(&p[2]->current, NULL);
        n = relay_client_select_wants(six_at, p, own, out, RELAY_MAX_WANTS);
        CHECK(n == 3 && out[0][0] == 0xa0 && out[1][0] == 0xa2 && out[2][0] == 0xa4);
        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                peer_free(p[i]);
}

/* ---- the daemon's relay client against the relay core, over loopback ---------------------- */

/* A relay client (relay-client.c, as the daemon runs it) with three peers in identity mode,
 * talking over two loopback sockets to this test, which plays the relay: each datagram the
 * client sends goes through relay_core_receive(), and the answers back to the client, as the rx
 * thread hands them over. old_relay: drop what a relay built before want lists drops (any
 * REGISTER but the 424-byte one). */
struct client_run {
        struct table t; /* first: table_at() reads it */
        sd_event *event;
        struct relay_core *core;
        struct relay_client *rc;
        int relay_fd, node_fd;
        struct endpoint relay_addr;
        bool old_relay;
        size_t introduced;
        uint8_t introduced_id[4][32];
};

static void on_client_peer(void *userdata, const struct relay_introduction *intro) {
        struct client_run *r = userdata;

        if (r->introduced < ELEMENTSOF(r->introduced_id))
                memcpy(r->introduced_id[r->introduced], intro->node_id, 32);
        r->introduced++;
}

/* The next datagram the client sent to the relay (its length; 0: none within a second). */
static size_t client_sent(struct client_run *r, uint8_t *buf, size_t max, struct endpoint *from) {
        struct pollfd pfd = {.fd = r->relay_fd, .events = POLLIN};
        socklen_t alen = sizeof(from->addr);
        ssize_t n;

        if (poll(&pfd, 1, 1000) != 1)
                return 0;
        n = recvfrom(r->relay_fd, buf, max, 0, &from->addr.sa, &alen);
        from->len = alen;
        return n > 0 ? (size_t) n : 0;
}

/* Relay the client's next datagram: returns its length (0: none), and *ret_answers how many
 * messages the relay gave back to it. */
static size_t relay_one(struct client_run *r, uint64_t now, size_t *ret_answers) {
        static uint8_t buf[RELAYED_DATAGRAM_MAX_LEN];
        struct endpoint from = {};
        size_t len = client_sent(r, buf, sizeof(buf), &from), answers = 0;

        if (len > 0 && !(r->old_relay && len != sizeof(struct message_relay_register)) &&
            relay_core_receive(r->core, buf, len, &from, now, &actions) >= 0)
                for (size_t i = 0; i < actions.n; i++) {
                        struct queued_handshake q = {.from = r->relay_addr};

                        if (!endpoint_same_address(&actions.send[i].dest, &from))
                                continue;
                        q.len = (uint16_t) actions.send[i].len;
                        memcpy(q.data, actions.send[i].data, actions.send[i].len);
                        relay_client_input(r->rc, &q);
                        answers++;
                }
        if (ret_answers)
                *ret_answers = answers;
        return len;
}

/* A UDP socket on 127.0.0.1, an ephemeral port: its address in *ret. */
static int loopback_socket(struct endpoint *ret) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sin);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0 ||
            getsockname(fd, (struct sockaddr *) &sin, &len) < 0)
                abort();
        *ret = (struct endpoint){.len = sizeof(sin)};
        memcpy(&ret->addr.in, &sin, sizeof(sin));
        return fd;
}

/* r->t is the peer table already: the first REGISTER goes out once the relay's name resolves. */
static void client_run_start(struct client_run *r, struct handshake_keys *keys,
                             struct sender *sender, bool old_relay) {
        static const uint8_t zero[32];
        static struct endpoint no_public;
        struct endpoint node_addr;

        r->old_relay = old_relay;
        r->core = new_core(16, 0, 0);
        CHECK(sd_event_new(&r->event) >= 0);
        r->relay_fd = loopback_socket(&r->relay_addr);
        r->node_fd = loopback_socket(&node_addr);
        sender->sockets = (struct udp_sockets){ r->node_fd, -EBADF };
        const struct relay_client_node node = {
                .event = r->event,
                .family = AF_INET,
                .port = 9001,
                .tap_name = "",
                .keys = keys,
                .peer_key = zero,
                .peer_at = table_at,
                .public_endpoint = &no_public,
                .sender = sender,
                .on_peer = on_client_peer,
                .userdata = r,
        };
        CHECK_EQ_INT(relay_client_new(&node, "127.0.0.1", ntohs(r->relay_addr.addr.in.sin_port),
                                      &r->rc),
                     0);
        /* Resolution runs on a worker thread; its answer (and the first REGISTER) comes back
         * through the event loop. */
        for (int i = 0; i < 100 && !relay_client_address(r->rc); i++)
                (void) sd_event_run(r->event, 50 * 1000);
        CHECK(relay_client_address(r->rc) != NULL);
}

static void client_run_stop(struct client_run *r) {
        r->rc = relay_client_free(r->rc);
        r->core = relay_core_free(r->core);
        r->event = sd_event_unref(r->event);
        close(r->relay_fd);
        close(r->node_fd);
}

/* Our table: b, c and our own entry (never wanted). */
static void client_table(struct client_run *r, const struct node *b, const struct node *c,
                         const struct handshake_keys *keys, uint64_t first_id) {
        memset(r, 0, sizeof(*r));
        for (size_t i = 0; i < 3; i++)
                CHECK(peer_new(NULL, (uint32_t) i, first_id + i, &r->t.p[i]) >= 0);
        r->t.n = 3;
        memcpy(r->t.p[0]->public_key, b->node_id, 32);
        memcpy(r->t.p[1]->public_key, c->node_id, 32);
        memcpy(r->t.p[2]->public_key, keys->static_public, 32);
}

static void test_client_want_list(void) {
        struct handshake_keys keys = {.pattern = NOISE_PATTERN_IKPSK2};
        const size_t list_len = RELAY_REGISTER_WANTS_LEN(2), old_len = 424;
        struct stats st = {};
        struct sender sender = {.stats = &st};
        struct node b, c, self = {};
        struct client_run r;
        size_t answers = 0;
        /* The client's clock: it stamps some events with now_ns() itself. */
        uint64_t t = now_ns();

        randombytes_buf(keys.static_private, 32);
        crypto_scalarmult_base(keys.static_public, keys.static_private);
        memcpy(self.node_id, keys.static_public, 32);
        node_identity(&b, "b", ep4("192.0.2.2", 40002), 0);
        node_identity(&c, "c", ep4("192.0.2.3", 40003), 0);
        wants(&b, &self);

        /* A relay with want lists: our REGISTER names b and c; b registered for us in the old
         * form, c with a list: we are introduced to both. */
        client_table(&r, &b, &c, &keys, 1);
        client_run_start(&r, &keys, &sender, false);
        CHECK_EQ_INT(do_register(r.core, &b, t), 1);
        CHECK_EQ_INT(register_wants(r.core, &c, (struct node *const[]){&b, &self}, 2, t), 1);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len); /* -> CHALLENGE */
        CHECK_EQ_INT(answers, 1);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len); /* -> REGISTERED, 2 PEERs */
        CHECK_EQ_INT(answers, 3);
        CHECK(relay_client_registered(r.rc));
        CHECK_EQ_INT(r.introduced, 2);
        CHECK_EQ_INT(relay_core_stats(r.core)->peers_sent, 4);
        /* Re-registration keeps the list. */
        t += (uint64_t) RELAY_REGISTER_INTERVAL * SEC + SEC;
        relay_client_tick(r.rc, t);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len);
        CHECK_EQ_INT(answers, 3);
        client_run_stop(&r);
        for (size_t i = 0; i < 3; i++)
                peer_free(r.t.p[i]);

        /* A relay built before want lists: two list REGISTERs unanswered, then the old form
         * for the first peer that needs the relay (b), which registers; at the next interval
         * one list again (unanswered), and the old form RELAY_RETRY later. */
        client_table(&r, &b, &c, &keys, 10);
        client_run_start(&r, &keys, &sender, true);
        t = now_ns();
        CHECK_EQ_INT(do_register(r.core, &b, t), 1);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len); /* the first, from resolution */
        CHECK_EQ_INT(answers, 0);
        t += 2 * SEC + 1;
        relay_client_tick(r.rc, t);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len);
        CHECK_EQ_INT(answers, 0);
        CHECK(!relay_client_registered(r.rc));
        t += 2 * SEC + 1;
        relay_client_tick(r.rc, t);
        CHECK_EQ_INT(relay_one(&r, t, &answers), old_len);
        CHECK_EQ_INT(answers, 1); /* CHALLENGE */
        CHECK_EQ_INT(relay_one(&r, t, &answers), old_len);
        CHECK_EQ_INT(answers, 2); /* REGISTERED, and PEER about b */
        CHECK(relay_client_registered(r.rc));
        CHECK(r.introduced == 1 && memcmp(r.introduced_id[0], b.node_id, 32) == 0);
        /* The probe: a list, unanswered; then the old form again, which renews. */
        t += (uint64_t) RELAY_REGISTER_INTERVAL * SEC + SEC;
        relay_client_tick(r.rc, t);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len);
        CHECK_EQ_INT(answers, 0);
        relay_client_tick(r.rc, t + SEC); /* not yet */
        CHECK_EQ_INT(relay_one(&r, t, NULL), 0);
        t += 2 * SEC + 1;
        relay_client_tick(r.rc, t);
        CHECK_EQ_INT(relay_one(&r, t, &answers), old_len);
        CHECK_EQ_INT(answers, 2);
        /* The relay is upgraded (it takes lists now): the next probe is answered, the
         * registration, renamed, keeps its slot, and the list form stays from then on. */
        r.old_relay = false;
        t += (uint64_t) RELAY_REGISTER_INTERVAL * SEC + SEC;
        relay_client_tick(r.rc, t);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len);
        CHECK(answers >= 1);
        CHECK_EQ_INT(relay_core_stats(r.core)->renamed, 1);
        CHECK_EQ_INT(relay_core_count(r.core), 2);
        relay_client_refresh(r.rc);
        relay_client_tick(r.rc, t);
        CHECK_EQ_INT(relay_one(&r, t, &answers), list_len);
        CHECK_EQ_INT(answers, 2); /* REGISTERED, PEER about b (c is not registered) */
        client_run_stop(&r);
        for (size_t i = 0; i < 3; i++)
                peer_free(r.t.p[i]);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_config();
        test_challenge_round_trip();
        test_wrong_cookie();
        test_secret_rotation();
        test_identity_proof();
        test_shared_pairs();
        test_identity_pairs();
        test_networks_apart();
        test_forwarding();
        test_expiry();
        test_rate_limit();
        test_bandwidth();
        test_max_peers();
        test_nat_rebinding();
        test_allow_list();
        test_stun();
        test_malformed();
        test_churn();
        test_reply_auth();
        test_shared_membership();
        test_slot_stealing();
        test_verified_bucket();
        test_amplification();
        test_candidate_filter();
        test_introduction_match();
        test_want_list_codec();
        test_want_list_pairs();
        test_want_list_proof_and_limits();
        test_select_wants();
        test_client_want_list();
        return test_summary();
}
