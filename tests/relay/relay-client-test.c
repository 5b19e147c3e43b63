/* SPDX-License-Identifier: MIT */
/*
 * The node side of the relay protocol, small and on its own (the daemon's relay client is the
 * product; this is the reference the relay is tested against), driving a running
 * shadowmesh-relay over loopback:
 *
 *   relay-client-test main HOST PORT     registrations, PEER, forwarding, isolation, STUN
 *   relay-client-test limits HOST PORT ALLOWED_NET_HEX
 *                                        the allow list and the per-source rate limit (the
 *                                        relay runs with --allow-network ALLOWED --rate 20)
 *   relay-client-test stun HOST PORT     one STUN Binding (for socket activation)
 *   relay-client-test network-id PSK_HEX print the network id of a shared key
 *   relay-client-test notify PATH        an sd_notify socket: print what arrives, one
 *                                        assignment a line, until STOPPING=1
 *
 * Every wait for something that must arrive is bounded (RECV_TIMEOUT_MS). That something did
 * NOT arrive is shown by ordering instead of waiting: the relay handles datagrams in the order
 * they reach its socket, so once a later "control" datagram has come through, anything the
 * earlier one caused would already be queued. The test modes print "expect NAME=VALUE" for
 * the counters the relay must report afterwards (the script compares them with the relay's
 * SIGUSR1 stats line), then "N passed, N failed".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "messages.h"
#include "stun.h"
#include "util.h"

#define RECV_TIMEOUT_MS 3000

static unsigned passed, failed;
static struct sockaddr_in relay_addr;

/* What the relay must have counted, from what this client did. */
static struct {
        unsigned long long packets_in, forwarded, forwarded_bytes, challenges, registered,
                peers_sent, stun, bad_proof, dropped_unpaired, dropped_unregistered,
                dropped_not_allowed, dropped_rate, registrations;
} expect;

static void check(bool ok, const char *what) {
        if (ok)
                passed++;
        else
                failed++;
        printf("%s - %s\n", ok ? "ok" : "FAIL", what);
        fflush(stdout);
}

/* ---- sockets ------------------------------------------------------------------------------ */

struct node {
        const char *name;
        int fd;
        struct sockaddr_in local;
        uint8_t network_id[NETWORK_ID_LEN];
        uint8_t priv[32], node_id[32], want_peer[32];
        bool identity;
        uint8_t n_candidates;
        struct relay_candidate candidates[RELAY_MAX_CANDIDATES];
        uint8_t cookie[COOKIE_LEN], relay_ephemeral[32];
        uint32_t slot;
        uint8_t member_pk[32], member_sk[64]; /* shared-key mode: from the psk */
        uint8_t nonce[16], reg_nonce[16];     /* of the last REGISTER sent / registered */
};

/* auth = BLAKE2b-128(key = client nonce, the reply up to its last 16 bytes). */
static bool auth_ok(const void *msg, size_t len, const uint8_t nonce[16]) {
        uint8_t mac[16];

        if (len < 16)
                return false;
        crypto_generichash(mac, sizeof(mac), msg, len - 16, nonce, 16);
        return sodium_memcmp(mac, (const uint8_t *) msg + len - 16, 16) == 0;
}

static int open_socket(const char *ip, struct sockaddr_in *ret_local) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        socklen_t len = sizeof(*ret_local);
        int fd, size = 1 << 20;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || inet_pton(AF_INET, ip, &sin.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0 ||
            getsockname(fd, (struct sockaddr *) ret_local, &len) < 0) {
                perror("socket");
                exit(2);
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        return fd;
}

static void to_relay(int fd, const void *msg, size_t len) {
        if (sendto(fd, msg, len, 0, (const struct sockaddr *) &relay_addr, sizeof(relay_addr)) !=
            (ssize_t) len) {
                perror("sendto");
                exit(2);
        }
        expect.packets_in++;
}

/* One datagram from the relay within the timeout: its length, or -1. */
static ssize_t receive(int fd, uint8_t *buf, size_t size, int timeout_ms) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        struct sockaddr_in from;
        socklen_t fromlen = sizeof(from);
        ssize_t n;

        if (poll(&p, 1, timeout_ms) <= 0)
                return -1;
        n = recvfrom(fd, buf, size, 0, (struct sockaddr *) &from, &fromlen);
        if (n >= 0 && (from.sin_addr.s_addr != relay_addr.sin_addr.s_addr ||
                       from.sin_port != relay_addr.sin_port)) {
                fprintf(stderr, "datagram from somewhere else than the relay\n");
                return -1;
        }
        return n;
}

/* Nothing is waiting on fd right now. */
static bool queue_empty(int fd) {
        uint8_t buf[64];

        return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/* ---- the protocol ------------------------------------------------------------------------- */

static bool candidate_is_local(const struct relay_candidate *c, const struct sockaddr_in *sin) {
        uint8_t want[16] = {};

        memcpy(want, &sin->sin_addr, 4);
        return c->family == RELAY_CANDIDATE_IPV4 && c->reserved_zero == 0 &&
               c->port_be == sin->sin_port && memcmp(c->addr, want, 16) == 0;
}

static void node_init(struct node *n, const char *name, const char *ip, bool identity,
                      const uint8_t network_id[NETWORK_ID_LEN]) {
        memset(n, 0, sizeof(*n));
        n->name = name;
        n->fd = open_socket(ip, &n->local);
        n->identity = identity;
        memcpy(n->network_id, network_id, NETWORK_ID_LEN);
        crypto_box_keypair(n->node_id, n->priv); /* X25519: static, or per run (shared-key) */
        if (!identity) {
                /* The psk stands here as the network id twice; the membership key pair is
                 * Ed25519 from seed BLAKE2b-256(key = psk, LABEL_RELAY_MEMBER). */
                uint8_t psk[32], seed[32];
                memcpy(psk, network_id, 16);
                memcpy(psk + 16, network_id, 16);
                crypto_generichash(seed, sizeof(seed), (const uint8_t *) LABEL_RELAY_MEMBER,
                                   sizeof(LABEL_RELAY_MEMBER) - 1, psk, sizeof(psk));
                crypto_sign_seed_keypair(n->member_pk, n->member_sk, seed);
        }
        /* What a daemon reports: a LAN address and a STUN-reflexive one. */
        n->n_candidates = 2;
        n->candidates[0].family = RELAY_CANDIDATE_IPV4;
        n->candidates[0].port_be = htons(9001);
        n->candidates[0].addr[0] = 192;
        n->candidates[0].addr[1] = 168;
        n->candidates[0].addr[2] = 1;
        n->candidates[0].addr[3] = (uint8_t) name[0];
        n->candidates[1].family = RELAY_CANDIDATE_IPV6;
        n->candidates[1].port_be = htons(9001);
        n->candidates[1].addr[0] = 0x20;
        n->candidates[1].addr[1] = 0x01;
        n->candidates[1].addr[2] = 0x0d;
        n->candidates[1].addr[3] = 0xb8;
        n->candidates[1].addr[15] = (uint8_t) name[0];
}

/* proof = BLAKE2b-128 keyed with BLAKE2b-256("relay-proof-----" || X25519(node private,
 * relay ephemeral)), over the REGISTER up to the proof field. */
static bool sign_register(const struct node *n, struct message_relay_register *m) {
        uint8_t dh[32], key[32];
        crypto_generichash_state st;

        if (crypto_scalarmult(dh, n->priv, m->relay_ephemeral) != 0)
                return false;
        crypto_generichash_init(&st, NULL, 0, sizeof(key));
        crypto_generichash_update(&st, (const uint8_t *) LABEL_RELAY_PROOF,
                                  sizeof(LABEL_RELAY_PROOF) - 1);
        crypto_generichash_update(&st, dh, sizeof(dh));
        crypto_generichash_final(&st, key, sizeof(key));
        crypto_generichash(m->proof, sizeof(m->proof), (const uint8_t *) m,
                           offsetof(struct message_relay_register, proof), key, sizeof(key));
        sodium_memzero(dh, sizeof(dh));
        sodium_memzero(key, sizeof(key));
        sodium_memzero(&st, sizeof(st));
        return true;
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
                if (!sign_register(n, m))
                        memset(m->proof, 0, sizeof(m->proof));
                if (!n->identity)
                        crypto_sign_detached(m->signature, NULL, (const uint8_t *) m,
                                             offsetof(struct message_relay_register, signature),
                                             n->member_sk);
        }
}

/* REGISTER without a cookie, CHALLENGE back. */
static bool get_challenge(struct node *n) {
        struct message_relay_register m;
        uint8_t buf[512];
        ssize_t len;

        build_register(n, &m, false);
        to_relay(n->fd, &m, sizeof(m));
        len = receive(n->fd, buf, sizeof(buf), RECV_TIMEOUT_MS);
        if (len != sizeof(struct message_relay_challenge) ||
            get_le32(buf) != MESSAGE_RELAY_CHALLENGE || !auth_ok(buf, (size_t) len, n->nonce))
                return false;
        expect.challenges++;
        memcpy(n->relay_ephemeral, buf + offsetof(struct message_relay_challenge, relay_ephemeral),
               32);
        memcpy(n->cookie, buf + offsetof(struct message_relay_challenge, cookie), COOKIE_LEN);
        return true;
}

/* REGISTER with the cookie (and proof), REGISTERED back: slot, our address, the lifetime. */
static bool complete_register(struct node *n) {
        struct message_relay_register m;
        const struct message_relay_registered *r;
        uint8_t buf[512];
        ssize_t len;

        build_register(n, &m, true);
        to_relay(n->fd, &m, sizeof(m));
        len = receive(n->fd, buf, sizeof(buf), RECV_TIMEOUT_MS);
        if (len != sizeof(*r) || get_le32(buf) != MESSAGE_RELAY_REGISTERED ||
            !auth_ok(buf, (size_t) len, n->nonce))
                return false;
        memcpy(n->reg_nonce, n->nonce, sizeof(n->nonce));
        r = (const struct message_relay_registered *) buf;
        n->slot = get_le32(&r->slot);
        expect.registered++;
        return n->slot != 0 && candidate_is_local(&r->observed, &n->local) &&
               get_le16(&r->lifetime) == RELAY_REGISTRATION_LIFETIME && r->reserved_zero[0] == 0 &&
               r->reserved_zero[1] == 0;
}

static void register_node(struct node *n) {
        char what[128];

        snprintf(what, sizeof(what), "%s: CHALLENGE answers a REGISTER without cookie", n->name);
        check(get_challenge(n), what);
        snprintf(what, sizeof(what),
                 "%s: REGISTERED (slot, observed address = our socket, "
                 "lifetime %d s)",
                 n->name, RELAY_REGISTRATION_LIFETIME);
        check(complete_register(n), what);
        expect.registrations++;
}

/* `to` receives a PEER message describing `about` exactly. */
static void check_peer(const struct node *to, const struct node *about) {
        const struct message_relay_peer *p;
        uint8_t buf[512];
        char what[160];
        ssize_t len;

        len = receive(to->fd, buf, sizeof(buf), RECV_TIMEOUT_MS);
        p = (const struct message_relay_peer *) buf;
        snprintf(what, sizeof(what),
                 "%s: PEER about %s (slot, node id, observed address, candidates)", to->name,
                 about->name);
        check(len == sizeof(*p) && get_le32(p) == MESSAGE_RELAY_PEER &&
                      auth_ok(buf, (size_t) len, to->reg_nonce) &&
                      get_le32(&p->slot) == about->slot &&
                      memcmp(p->node_id, about->node_id, 32) == 0 &&
                      candidate_is_local(&p->observed, &about->local) &&
                      p->n_candidates == about->n_candidates &&
                      memcmp(p->candidates, about->candidates, sizeof(p->candidates)) == 0,
              what);
        expect.peers_sent++;
}

/* A node-to-node message (a fake data message) wrapped for the relay. */
static size_t make_data(uint8_t *msg, uint32_t slot, size_t inner_len, uint8_t seed) {
        memset(msg, 0, sizeof(struct message_relay_data));
        msg[0] = MESSAGE_RELAY_DATA;
        put_le32(msg + 4, slot);
        msg[8] = MESSAGE_DATA;
        msg[9] = msg[10] = msg[11] = 0;
        for (size_t i = 12; i < sizeof(struct message_relay_data) + inner_len; i++)
                msg[i] = (uint8_t) (i * 31 + seed);
        return sizeof(struct message_relay_data) + inner_len;
}

/* from -> relay -> to: the same bytes but the slot, which names the sender. */
static void check_forward(const struct node *from, const struct node *to, size_t inner_len,
                          uint8_t seed) {
        uint8_t msg[2048], got[2048];
        char what[160];
        ssize_t len;
        size_t n = make_data(msg, to->slot, inner_len, seed);

        to_relay(from->fd, msg, n);
        len = receive(to->fd, got, sizeof(got), RECV_TIMEOUT_MS);
        snprintf(what, sizeof(what),
                 "RELAY_DATA %s -> %s (%zu bytes): slot rewritten to %s's, the rest unchanged",
                 from->name, to->name, n, from->name);
        check(len == (ssize_t) n && memcmp(got, msg, 4) == 0 && get_le32(got + 4) == from->slot &&
                      memcmp(got + 8, msg + 8, n - 8) == 0,
              what);
        expect.forwarded++;
        expect.forwarded_bytes += n;
}

/* One STUN Binding from fd: the XOR-MAPPED-ADDRESS must be local. */
static bool stun_check(int fd, const struct sockaddr_in *local) {
        uint8_t req[64], resp[STUN_MAX_MESSAGE_LEN], tid[STUN_TRANSACTION_ID_LEN];
        struct stun_message m;
        const struct sockaddr_in *mapped = (const struct sockaddr_in *) &m.mapped;
        ssize_t len;
        int n;

        randombytes_buf(tid, sizeof(tid));
        n = stun_build_binding_request(req, sizeof(req), tid, 0);
        if (n < 0)
                return false;
        to_relay(fd, req, (size_t) n);
        len = receive(fd, resp, sizeof(resp), RECV_TIMEOUT_MS);
        if (len < 0 || stun_parse(resp, (size_t) len, &m) < 0)
                return false;
        expect.stun++;
        return m.type == STUN_BINDING_SUCCESS && memcmp(m.transaction_id, tid, sizeof(tid)) == 0 &&
               m.has_mapped && !m.has_other_address && mapped->sin_family == AF_INET &&
               mapped->sin_addr.s_addr == local->sin_addr.s_addr &&
               mapped->sin_port == local->sin_port;
}

static void print_expect(void) {
#define E(x) printf("expect " #x "=%llu\n", expect.x)
        E(registrations);
        E(packets_in);
        E(forwarded);
        E(forwarded_bytes);
        E(challenges);
        E(registered);
        E(peers_sent);
        E(stun);
        E(bad_proof);
        E(dropped_unpaired);
        E(dropped_unregistered);
        E(dropped_not_allowed);
        E(dropped_rate);
#undef E
}

static int summary(void) {
        print_expect();
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}

/* ---- scenarios ---------------------------------------------------------------------------- */

static int run_main(void) {
        static const uint8_t psk1[32] = "shadowmesh relay test network 1";
        static const uint8_t psk2[32] = "shadowmesh relay test network 2";
        uint8_t net1[NETWORK_ID_LEN], net2[NETWORK_ID_LEN], none[NETWORK_ID_LEN] = {};
        struct node s1, s2, i1, i2, x, mallory;
        uint8_t msg[256];

        keys_network_id(psk1, net1);
        keys_network_id(psk2, net2);

        /* Shared-key mode: two members of network 1. */
        node_init(&s1, "s1", "127.0.0.1", false, net1);
        node_init(&s2, "s2", "127.0.0.1", false, net1);
        register_node(&s1);
        check(queue_empty(s1.fd), "s1: alone in its network, no PEER");
        register_node(&s2);
        check_peer(&s2, &s1);
        check_peer(&s1, &s2); /* s1 registered first: it learns of s2 now */

        /* Identity mode (no psk: network id zero), each naming the other. */
        node_init(&i1, "i1", "127.0.0.1", true, none);
        node_init(&i2, "i2", "127.0.0.1", true, none);
        memcpy(i1.want_peer, i2.node_id, 32);
        memcpy(i2.want_peer, i1.node_id, 32);
        register_node(&i1);
        check(queue_empty(i1.fd), "i1: its peer is not there yet, no PEER");
        register_node(&i2);
        check_peer(&i2, &i1);
        check_peer(&i1, &i2);

        /* Someone claiming i1's key without it: a wrong proof gets no answer at all. */
        node_init(&mallory, "m", "127.0.0.1", true, none);
        memcpy(mallory.node_id, i1.node_id, 32);
        memcpy(mallory.want_peer, i2.node_id, 32);
        check(get_challenge(&mallory), "mallory: CHALLENGE (the cookie costs the relay nothing)");
        {
                struct message_relay_register m;
                build_register(&mallory, &m, true); /* signed with mallory's own key */
                to_relay(mallory.fd, &m, sizeof(m));
                expect.bad_proof++;
        }

        /* A third node in another network: registered, paired with nobody. */
        node_init(&x, "x", "127.0.0.1", false, net2);
        register_node(&x);

        /* Forwarding both ways, shared-key and identity pairs. */
        check_forward(&s1, &s2, 64, 1);
        check_forward(&s2, &s1, 148, 2);
        check_forward(&i1, &i2, 32, 3);
        check_forward(&i2, &i1, 1200 - 8, 4);

        /* What must not pass: x -> s1 and s1 -> x (networks apart), i1 -> s2 (modes apart), a
         * stranger -> s1. Then a control datagram s2 -> s1: once it arrives, anything the
         * dropped ones caused would have arrived before it. */
        {
                struct sockaddr_in local;
                int stranger = open_socket("127.0.0.1", &local);
                size_t n;

                n = make_data(msg, s1.slot, 32, 9);
                to_relay(x.fd, msg, n);
                expect.dropped_unpaired++;
                n = make_data(msg, x.slot, 32, 9);
                to_relay(s1.fd, msg, n);
                expect.dropped_unpaired++;
                n = make_data(msg, s2.slot, 32, 9);
                to_relay(i1.fd, msg, n);
                expect.dropped_unpaired++;
                n = make_data(msg, s1.slot, 32, 9);
                to_relay(stranger, msg, n);
                expect.dropped_unregistered++;
                check_forward(&s2, &s1, 40, 5);
                check(queue_empty(s1.fd), "s1: nothing from x or the stranger");
                check(queue_empty(x.fd), "x: nothing from s1, no PEER ever");
                check(queue_empty(s2.fd), "s2: nothing from i1");
                check(queue_empty(stranger), "stranger: no answer");
                close(stranger);
        }
        check(queue_empty(mallory.fd), "mallory: no REGISTERED, no PEER for a wrong proof");
        check(queue_empty(i1.fd) && queue_empty(i2.fd), "i1, i2: nothing about mallory");

        /* STUN Binding on the relay's port: our own address back. */
        {
                struct sockaddr_in local;
                int fd = open_socket("127.0.0.1", &local);
                check(stun_check(fd, &local),
                      "STUN Binding: success, XOR-MAPPED-ADDRESS = our socket, no OTHER-ADDRESS");
                close(fd);
        }
        return summary();
}

static int run_limits(const char *allowed_hex) {
        uint8_t allowed[NETWORK_ID_LEN], other[NETWORK_ID_LEN];
        struct node a, b;
        struct sockaddr_in c_local;
        struct timespec t0, t1;
        unsigned answered = 0;
        double elapsed;
        int c_fd;

        if (hex_decode(allowed_hex, allowed, sizeof(allowed)) < 0) {
                fprintf(stderr, "not a network id: %s\n", allowed_hex);
                return 2;
        }
        memcpy(other, allowed, sizeof(other));
        other[0] ^= 0xff;

        /* Allow list: b's network is not on it, a's is. b's REGISTER goes first, so once a has
         * its CHALLENGE, b would have had one too. */
        node_init(&b, "b", "127.0.0.1", false, other);
        node_init(&a, "a", "127.0.0.1", false, allowed);
        {
                struct message_relay_register m;
                build_register(&b, &m, false);
                to_relay(b.fd, &m, sizeof(m));
                expect.dropped_not_allowed++;
        }
        check(get_challenge(&a), "allowed network: CHALLENGE");
        check(queue_empty(b.fd), "network not on the allow list: no CHALLENGE");

        /* Rate: 100 STUN requests at once from 127.0.0.2 (its own bucket: 20/s, burst 40), then
         * a control request from 127.0.0.1. */
        c_fd = open_socket("127.0.0.2", &c_local);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 100; i++) {
                uint8_t req[64], tid[STUN_TRANSACTION_ID_LEN];
                int n;

                randombytes_buf(tid, sizeof(tid));
                n = stun_build_binding_request(req, sizeof(req), tid, 0);
                to_relay(c_fd, req, (size_t) n);
        }
        check(stun_check(a.fd, &a.local), "control STUN request from another address answered");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        for (;;) {
                uint8_t resp[STUN_MAX_MESSAGE_LEN];
                if (recv(c_fd, resp, sizeof(resp), MSG_DONTWAIT) < 0)
                        break;
                answered++;
        }
        elapsed = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("# %u of 100 answered in %.3f s\n", answered, elapsed);
        check(answered >= 40 && answered <= 40 + (unsigned) (20 * elapsed) + 1,
              "rate limit: the burst (40) plus 20/s answered, the rest dropped");
        expect.stun += answered;
        expect.dropped_rate += 100 - answered;
        close(c_fd);
        return summary();
}

static int run_stun(void) {
        struct sockaddr_in local;
        int fd = open_socket("127.0.0.1", &local);

        check(stun_check(fd, &local), "STUN Binding answered with our address");
        close(fd);
        return summary();
}

/* An sd_notify receiver: prints each assignment of each datagram on a line of its own. */
static int run_notify(const char *path) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        char buf[4096];
        int fd;

        if (strlen(path) >= sizeof(sun.sun_path)) {
                fprintf(stderr, "path too long\n");
                return 2;
        }
        strcpy(sun.sun_path, path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
                perror(path);
                return 2;
        }
        printf("bound\n");
        fflush(stdout);
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (poll(&p, 1, 120 * 1000) <= 0)
                        return 1; /* the test gave up on us long ago */
                n = recv(fd, buf, sizeof(buf) - 1, 0);
                if (n < 0)
                        return 1;
                buf[n] = 0;
                printf("%s\n", buf);
                fflush(stdout);
                if (strstr(buf, "STOPPING=1"))
                        return 0;
        }
}

static void usage(void) {
        fprintf(stderr, "usage: relay-client-test main|limits|stun HOST PORT [NET_HEX]\n"
                        "       relay-client-test network-id PSK_HEX\n"
                        "       relay-client-test notify PATH\n");
        exit(2);
}

int main(int argc, char **argv) {
        if (sodium_init() < 0)
                return 2;
        if (argc == 3 && strcmp(argv[1], "notify") == 0)
                return run_notify(argv[2]);
        if (argc == 3 && strcmp(argv[1], "network-id") == 0) {
                uint8_t psk[NOISE_PSK_LEN], id[NETWORK_ID_LEN];
                char hex[2 * NETWORK_ID_LEN + 1];

                if (hex_decode(argv[2], psk, sizeof(psk)) < 0)
                        usage();
                keys_network_id(psk, id);
                hex_encode(id, sizeof(id), hex);
                puts(hex);
                return 0;
        }
        if (argc < 4)
                usage();
        relay_addr.sin_family = AF_INET;
        relay_addr.sin_port = htons((uint16_t) atoi(argv[3]));
        if (inet_pton(AF_INET, argv[2], &relay_addr.sin_addr) != 1)
                usage();
        if (strcmp(argv[1], "main") == 0 && argc == 4)
                return run_main();
        if (strcmp(argv[1], "limits") == 0 && argc == 5)
                return run_limits(argv[4]);
        if (strcmp(argv[1], "stun") == 0 && argc == 4)
                return run_stun();
        usage();
        return 2;
}
