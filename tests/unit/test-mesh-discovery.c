/* SPDX-License-Identifier: MIT */
/*
 * mesh-discovery.c's engine on in-process devices (nodes.h), driven by hand as the control
 * loop drives it: chunks encoded with discovery.c go to mesh_discovery_input() as the rx thread
 * would hand them over, and the list is read back with mesh_discovery_build_list().
 *
 * The addresses are documentation ones (RFC 5737): the candidate filter refuses loopback, so
 * the peers cannot live there. The devices' control-loop sender has no socket (fd -1), so a
 * handshake the engine starts toward them never leaves the process.
 *
 * What it proves:
 *  - the list: our SELF entry first with our candidates, then every peer with a session whose
 *    id we know (DIRECT with its endpoint and what it said of itself, or RELAY), and no peer
 *    without a session or without a known id;
 *  - the verdicts acted on: SENDER records the sender's id and candidates; ADD puts a new peer
 *    in the table with the entry's addresses and starts a handshake to them (connecting); TRY
 *    gives a known peer the new addresses; our own entry changes nothing; a stale chunk is
 *    refused, and so is a sender naming another id as itself, unless it restarted (shared-key
 *    mode: a new epoch, a new id); an entry at a known peer's address under another id is
 *    that peer, not a new one; identity mode adds no key outside peers: and gives a listed
 *    one its addresses.
 */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "discovery.h"
#include "mesh-discovery.h"
#include "endpoints.h"
#include "nodes.h"
#include "tests.h"

static struct relay_candidate cand4(const char *addr, uint16_t port) {
        struct relay_candidate c = {.family = RELAY_CANDIDATE_IPV4, .port_be = htons(port)};

        if (inet_pton(AF_INET, addr, c.addr) != 1)
                abort();
        return c;
}

static struct peer *add_peer(struct device *d, const struct endpoint *e) {
        struct peer *p;

        CHECK_EQ_INT(device_add_peer(d, NULL, &p), 0);
        if (e)
                peer_set_endpoint(p, e);
        return p;
}

/* Encode entries as one chunk (epoch, version) and hand it to the engine as from p. */
static int input(struct device *d, struct peer *p, uint64_t epoch, uint32_t version,
                 const struct discovery_entry *entries, size_t n) {
        uint8_t plain[DISCOVERY_PLAIN_MAX_LEN];
        struct discovery_error why = {};
        ssize_t len = discovery_encode(epoch, version, entries, n, 0, plain, sizeof(plain), &why);

        CHECKF(len > 0, "encode: %s", why.what ? why.what : "");
        return mesh_discovery_input(d, p, plain, (size_t) len, now_ns());
}

static struct discovery_entry self_entry(const uint8_t id[32], struct relay_candidate c) {
        struct discovery_entry e = {.flags = DISCOVERY_ENTRY_SELF, .n_candidates = 1};

        memcpy(e.id, id, 32);
        e.candidates[0] = c;
        return e;
}

static void shared_node(struct node *n) {
        uint8_t psk[32];

        randombytes_buf(psk, sizeof(psk));
        node_new(n, false, psk, NULL, NULL);
        n->d->sender.sockets.fd = -1; /* nothing the engine sends leaves the process */
        CHECK_EQ_INT(mesh_discovery_start(n->d), 0);
}

static const struct discovery_entry *find_entry(const struct discovery_entry *list, size_t n,
                                                const uint8_t id[32]) {
        for (size_t i = 0; i < n; i++)
                if (memcmp(list[i].id, id, 32) == 0)
                        return &list[i];
        return NULL;
}

static void test_build_list(void) {
        static struct discovery_entry list[MESH_MAX_PEERS + 1];
        struct endpoint e_b = ep4("192.0.2.2", 9001), e_d = ep4("192.0.2.4", 9001),
                        relay = ep4("192.0.2.100", 7000);
        struct relay_candidate self[2] = {cand4("203.0.113.1", 9001), cand4("192.0.2.1", 9001)};
        uint8_t id_b[32], id_c[32], id_d[32];
        struct peer *b, *c, *d, *e;
        struct node n;
        size_t len;

        shared_node(&n);
        randombytes_buf(id_b, 32);
        randombytes_buf(id_c, 32);
        randombytes_buf(id_d, 32);
        b = n.d->peer;
        peer_set_endpoint(b, &e_b);
        give_session(b);
        c = add_peer(n.d, NULL); /* reached through the relay */
        relay.via_relay = true;
        relay.relay_slot = 7;
        peer_set_endpoint(c, &relay);
        give_session(c);
        d = add_peer(n.d, &e_d); /* no session: not vouched for */
        e = add_peer(n.d, NULL); /* a session, but no id learned: cannot be named */
        give_session(e);

        /* Before any peer told us its id, the list is ours alone. */
        len = mesh_discovery_build_list(n.d, self, 2, list);
        CHECK_EQ_INT(len, 1);
        CHECK_EQ_INT(list[0].flags, DISCOVERY_ENTRY_SELF);
        CHECK_MEM(list[0].id, mesh_discovery_self_id(n.d), 32);
        CHECK_EQ_INT(list[0].n_candidates, 2);
        CHECK_MEM(&list[0].candidates[0], &self[0], sizeof(self[0])); /* reflexive first */

        /* Each tells us who it is (SENDER): b with a candidate besides its endpoint. */
        struct discovery_entry se;
        se = self_entry(id_b, cand4("198.51.100.2", 9001));
        CHECK_EQ_INT(input(n.d, b, 1, 1, &se, 1), 0);
        se = self_entry(id_c, cand4("198.51.100.3", 9001));
        CHECK_EQ_INT(input(n.d, c, 2, 1, &se, 1), 0);
        se = self_entry(id_d, cand4("198.51.100.4", 9001));
        CHECK_EQ_INT(input(n.d, d, 3, 1, &se, 1), 0);
        CHECK_MEM(mesh_discovery_peer_id(n.d, b), id_b, 32);
        CHECK_MEM(mesh_discovery_peer_id(n.d, d), id_d, 32);
        CHECK(mesh_discovery_peer_id(n.d, e) == NULL);

        len = mesh_discovery_build_list(n.d, self, 2, list);
        CHECK_EQ_INT(len, 3); /* us, b, c: not d (no session), not e (no id) */
        const struct discovery_entry *eb = find_entry(list, len, id_b);
        const struct discovery_entry *ec = find_entry(list, len, id_c);
        CHECK(eb && ec && !find_entry(list, len, id_d));
        if (eb) {
                struct relay_candidate want = cand4("192.0.2.2", 9001),
                                       said = cand4("198.51.100.2", 9001);
                CHECK_EQ_INT(eb->flags, DISCOVERY_ENTRY_DIRECT);
                CHECK_MEM(&eb->endpoint, &want, sizeof(want));
                CHECK_EQ_INT(eb->n_candidates, 1);
                CHECK_MEM(&eb->candidates[0], &said, sizeof(said));
        }
        if (ec) {
                CHECK_EQ_INT(ec->flags, DISCOVERY_ENTRY_RELAY);
                CHECK_EQ_INT(ec->endpoint.family, RELAY_CANDIDATE_NONE);
        }
        /* What we build is what we send: the encoder takes it. */
        uint8_t plain[DISCOVERY_PLAIN_MAX_LEN];
        CHECK(discovery_encode(1, 1, list, len, 0, plain, sizeof(plain), NULL) > 0);

        mesh_discovery_stop(n.d);
        node_free(&n);
}

static void test_verdicts_shared(void) {
        uint8_t id_b[32], id_x[32];
        struct endpoint e_b = ep4("192.0.2.2", 9001), e_x = ep4("192.0.2.50", 9001), cur;
        struct discovery_entry entries[3];
        struct peer *b, *x = NULL;
        struct node n;
        size_t before;

        shared_node(&n);
        randombytes_buf(id_b, 32);
        randombytes_buf(id_x, 32);
        b = n.d->peer;
        peer_set_endpoint(b, &e_b);
        give_session(b);

        /* b: itself, a peer we do not know (direct at 192.0.2.50, and one more candidate),
         * and us. */
        entries[0] = self_entry(id_b, cand4("198.51.100.2", 9001));
        entries[1] = (struct discovery_entry){.flags = DISCOVERY_ENTRY_DIRECT, .n_candidates = 1};
        memcpy(entries[1].id, id_x, 32);
        entries[1].endpoint = cand4("192.0.2.50", 9001);
        entries[1].candidates[0] = cand4("198.51.100.50", 9001);
        entries[2] = (struct discovery_entry){.flags = DISCOVERY_ENTRY_DIRECT};
        memcpy(entries[2].id, mesh_discovery_self_id(n.d), 32);
        entries[2].endpoint = cand4("203.0.113.1", 9001);
        before = device_peer_count(n.d);
        CHECK_EQ_INT(input(n.d, b, 7, 1, entries, 3), 1); /* one peer added */
        CHECK_EQ_INT(device_peer_count(n.d), before + 1);
        for (size_t i = 0; i < device_peer_count(n.d); i++) {
                const uint8_t *id = mesh_discovery_peer_id(n.d, device_peer_at(n.d, i));
                if (id && memcmp(id, id_x, 32) == 0)
                        x = device_peer_at(n.d, i);
        }
        CHECK(x != NULL);
        if (x) {
                struct endpoint c2 = ep4("198.51.100.50", 9001);
                peer_get_endpoint(x, &cur);
                CHECK(endpoint_equal(&cur, &e_x));
                CHECK_EQ_INT(x->n_candidates, 2);
                CHECK(x->n_candidates == 2 && endpoint_equal(&x->candidates[0], &e_x) &&
                      endpoint_equal(&x->candidates[1], &c2));
                /* A handshake was started toward it (its initiation kept for the relay). */
                CHECK_EQ_INT(x->state, TUNNEL_CONNECTING);
                CHECK(x->handshake_state == HANDSHAKE_CREATED_INITIATION);
        }
        /* The sender's id is known now, and our own entry added nothing. */
        CHECK_MEM(mesh_discovery_peer_id(n.d, b), id_b, 32);

        /* The same version again is not stale (not older); an older one is refused. */
        CHECK_EQ_INT(input(n.d, b, 7, 1, entries, 3), 0);
        CHECK_EQ_INT(input(n.d, b, 7, 0, entries, 3), -ESTALE);
        CHECK_EQ_INT(device_peer_count(n.d), before + 1);

        /* TRY: x again, with a new address: it joins x's candidates, first. */
        entries[1].candidates[0] = cand4("198.51.100.51", 9001);
        CHECK_EQ_INT(input(n.d, b, 7, 2, entries, 2), 0);
        CHECK_EQ_INT(device_peer_count(n.d), before + 1);
        if (x) {
                struct endpoint c3 = ep4("198.51.100.51", 9001);
                bool found = false;
                for (size_t i = 0; i < x->n_candidates; i++)
                        found |= endpoint_equal(&x->candidates[i], &c3);
                CHECK(found);
        }

        /* b lying about who it is (another id as SELF): nothing is taken. */
        entries[0] = self_entry(id_x, cand4("198.51.100.2", 9001));
        CHECK_EQ_INT(input(n.d, b, 7, 3, entries, 1), -EPERM);
        CHECK_MEM(mesh_discovery_peer_id(n.d, b), id_b, 32);

        /* b restarted (a new epoch): its new per-run id is taken, not refused. */
        uint8_t id_b2[32];
        randombytes_buf(id_b2, 32);
        entries[0] = self_entry(id_b2, cand4("198.51.100.2", 9001));
        CHECK_EQ_INT(input(n.d, b, 8, 1, entries, 1), 0);
        CHECK_MEM(mesh_discovery_peer_id(n.d, b), id_b2, 32);

        /* Someone still naming x by an old id at x's address: that is x, not a new peer. */
        if (x)
                give_session(x);
        entries[1] = (struct discovery_entry){.flags = DISCOVERY_ENTRY_DIRECT};
        randombytes_buf(entries[1].id, 32);
        entries[1].endpoint = cand4("192.0.2.50", 9001);
        before = device_peer_count(n.d);
        CHECK_EQ_INT(input(n.d, b, 8, 2, entries, 2), 0);
        CHECK_EQ_INT(device_peer_count(n.d), before);

        mesh_discovery_stop(n.d);
        node_free(&n);
}

static void test_verdicts_identity(void) {
        uint8_t s_priv[32], b_pub[32], b_priv[32], c_pub[32], c_priv[32], stranger[32];
        struct endpoint e_b = ep4("192.0.2.2", 9001), e_c = ep4("192.0.2.3", 9001), cur;
        struct discovery_entry entries[3];
        struct peer *b, *c;
        struct node n;

        randombytes_buf(s_priv, 32);
        randombytes_buf(b_priv, 32);
        randombytes_buf(c_priv, 32);
        randombytes_buf(stranger, 32);
        CHECK_EQ_INT(noise_public_from_private(b_pub, b_priv), 0);
        CHECK_EQ_INT(noise_public_from_private(c_pub, c_priv), 0);
        node_new(&n, true, NULL, s_priv, b_pub);
        n.d->sender.sockets.fd = -1;
        CHECK_EQ_INT(mesh_discovery_start(n.d), 0);
        CHECK_MEM(mesh_discovery_self_id(n.d), n.d->keys.static_public, 32);
        b = n.d->peer;
        peer_set_endpoint(b, &e_b);
        give_session(b);
        /* c is in peers: without an address, as device_new adds it. */
        c = add_peer(n.d, NULL);
        memcpy(c->public_key, c_pub, 32);
        cookie_maker_init(&c->cookie_maker, c->public_key);

        entries[0] = self_entry(b_pub, cand4("198.51.100.2", 9001));
        entries[1] = (struct discovery_entry){.flags = DISCOVERY_ENTRY_DIRECT};
        memcpy(entries[1].id, c_pub, 32);
        entries[1].endpoint = cand4("192.0.2.3", 9001);
        entries[2] = (struct discovery_entry){.flags = DISCOVERY_ENTRY_DIRECT};
        memcpy(entries[2].id, stranger, 32);
        entries[2].endpoint = cand4("192.0.2.66", 9001);
        CHECK_EQ_INT(input(n.d, b, 1, 1, entries, 3), 0); /* nobody added */
        CHECK_EQ_INT(device_peer_count(n.d), 2);          /* the stranger is not in peers: */
        peer_get_endpoint(c, &cur);
        CHECK(endpoint_equal(&cur, &e_c)); /* c got the address b vouched for */
        CHECK_EQ_INT(c->state, TUNNEL_CONNECTING);

        /* A SELF entry with another key than b's session proved: refused. */
        entries[0] = self_entry(c_pub, cand4("198.51.100.2", 9001));
        CHECK_EQ_INT(input(n.d, b, 1, 2, entries, 1), -EPERM);

        mesh_discovery_stop(n.d);
        node_free(&n);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_build_list();
        test_verdicts_shared();
        test_verdicts_identity();
        return test_summary();
}
