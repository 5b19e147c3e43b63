/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for shadowmesh-relay's core. The input is a script of operations played
 * against a fresh core (at most 4 registrations, a rate limit, a bandwidth cap) from six
 * source addresses (IPv4 on two ports of one host, the v4-mapped form of one of them, another
 * IPv4 host, two IPv6 hosts):
 *
 *   0 RAW       src, len16, bytes              any datagram
 *   1 REGISTER  src, mode, key, want, n, 20*n  the whole exchange: REGISTER, the CHALLENGE's
 *               [, list, [32]]                 cookie echoed, the proof made with fixed keys;
 *                                              identity mode with mode bit 7: a want list
 *                                              (messages.h) of the keys in the list bitmask
 *   2 DATA      src, target, len16, bytes      RELAY_DATA to a slot the script has seen
 *   3 TIME      ms16 * 100                     the clock moves on
 *   4 EXPIRE                                   the once-a-second sweep
 *   5 STUN      src, flags                     a Binding request
 *
 * so registrations, pairs, forwarding, rebinding, takeovers, expiry and the limits are all
 * reached, not only the parsers. Beyond "no crash", each reply is checked and the harness
 * aborts when an invariant breaks:
 *   - nothing is ever sent to an address that did not send to the relay; PEER messages go
 *     only to addresses that were told REGISTERED; CHALLENGE, REGISTERED and STUN replies go
 *     only to the sender; nothing but CHALLENGE, PEER and STUN is larger than its request;
 *   - a forward is the only action, goes to the registration holding the slot it named, and
 *     differs from the input only in the slot, which is now the sender's;
 *   - the core's tables are consistent (relay_core_check_invariants), the count within its
 *     maximum, and the counters agree with what happened.
 * libsodium's random source is replaced by a seeded generator, so a run depends only on its
 * input (slots, cookies and ephemeral keys included) and crashes reproduce.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "relay-core.h"
#include "stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_T0 (UINT64_C(1000) * NSEC_PER_SEC)
#define N_SOURCES 6
#define N_KEYS 4
#define N_SLOTS 8
#define MAX_REGISTRATIONS 4

/* ---- a deterministic random source (splitmix64), reset for every input --------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void) {
        uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static const char *rng_name(void) {
        return "fuzz-splitmix64";
}

static uint32_t rng_random(void) {
        return (uint32_t) rng_next();
}

static void rng_stir(void) {
}

static void rng_buf(void *buf, size_t size) {
        uint8_t *p = buf;

        while (size > 0) {
                uint64_t v = rng_next();
                size_t n = MIN(size, sizeof(v));
                memcpy(p, &v, n);
                p += n;
                size -= n;
        }
}

static int rng_close(void) {
        return 0;
}

static struct randombytes_implementation rng = {
        .implementation_name = rng_name,
        .random = rng_random,
        .stir = rng_stir,
        .uniform = NULL, /* libsodium's own, over .random */
        .buf = rng_buf,
        .close = rng_close,
};

/* ---- fixed world ---------------------------------------------------------------------------- */

static struct endpoint sources[N_SOURCES];
static uint8_t keys_priv[N_KEYS][32], keys_pub[N_KEYS][32];
/* Shared-key membership key pairs, one per network byte (1..3; 0 is "no network"). */
static uint8_t member_pk[4][32], member_sk[4][64];
static bool initialized;

static struct endpoint make_ep(int family, const char *addr, uint16_t port) {
        struct endpoint e = {};

        if (family == AF_INET) {
                e.len = sizeof(e.addr.in);
                e.addr.in.sin_family = AF_INET;
                e.addr.in.sin_port = htons(port);
                if (inet_pton(AF_INET, addr, &e.addr.in.sin_addr) != 1)
                        abort();
        } else {
                e.len = sizeof(e.addr.in6);
                e.addr.in6.sin6_family = AF_INET6;
                e.addr.in6.sin6_port = htons(port);
                if (inet_pton(AF_INET6, addr, &e.addr.in6.sin6_addr) != 1)
                        abort();
        }
        return e;
}

static void initialize(void) {
        if (randombytes_set_implementation(&rng) != 0 || sodium_init() < 0)
                abort();
        sources[0] = make_ep(AF_INET, "192.0.2.1", 9001);
        sources[1] = make_ep(AF_INET, "192.0.2.1", 9002);
        sources[2] = make_ep(AF_INET6, "::ffff:192.0.2.1", 9001); /* = sources[0] */
        sources[3] = make_ep(AF_INET, "198.51.100.7", 40000);
        sources[4] = make_ep(AF_INET6, "2001:db8::1", 9001);
        sources[5] = make_ep(AF_INET6, "2001:db8:0:1::2", 9001);
        for (size_t i = 0; i < N_KEYS; i++) {
                uint8_t seed[] = "fuzz-relay-key-0";

                seed[sizeof(seed) - 2] = (uint8_t) ('0' + i);
                crypto_generichash(keys_priv[i], 32, seed, sizeof(seed) - 1, NULL, 0);
                crypto_scalarmult_base(keys_pub[i], keys_priv[i]);
        }
        for (size_t i = 0; i < 4; i++) {
                uint8_t seed[32];
                memset(seed, (int) i, sizeof(seed));
                crypto_sign_seed_keypair(member_pk[i], member_sk[i], seed);
        }
        initialized = true;
}

/* Normalised address (v4-mapped = v4): which source, or -1 for an address we never used. */
static int source_of(const struct endpoint *e) {
        for (int i = 0; i < N_SOURCES; i++)
                if (endpoint_same_address(e, &sources[i]))
                        return i;
        return -1;
}

/* ---- one run -------------------------------------------------------------------------------- */

struct run {
        struct relay_core *core;
        struct relay_actions actions;
        uint64_t now;
        uint64_t calls;
        bool sent_from[N_SOURCES];  /* this address has sent something */
        bool registered[N_SOURCES]; /* this address was told REGISTERED */
        uint32_t slots[N_SLOTS];    /* slots seen in REGISTERED and PEER messages */
        size_t n_slots, slot_next;
        uint8_t buf[RELAYED_DATAGRAM_MAX_LEN + 64];
        uint8_t copy[RELAYED_DATAGRAM_MAX_LEN + 64];
};

static void remember_slot(struct run *r, uint32_t slot) {
        for (size_t i = 0; i < r->n_slots; i++)
                if (r->slots[i] == slot)
                        return;
        r->slots[r->slot_next++ % N_SLOTS] = slot;
        r->n_slots = MIN(r->n_slots + 1, (size_t) N_SLOTS);
}

/* Hand one datagram to the core and check everything it asks us to send. */
static int deliver(struct run *r, int src, const uint8_t *msg, size_t len) {
        const struct relay_stats *st = relay_core_stats(r->core);
        uint64_t forwarded_before = st->forwarded;
        uint32_t target_slot = 0;
        int k, s;

        if (len > sizeof(r->buf))
                len = sizeof(r->buf);
        memcpy(r->buf, msg, len);
        memcpy(r->copy, msg, len);
        if (len >= 8)
                target_slot = get_le32(msg + 4);
        r->sent_from[src] = true;
        /* Aliases: sources 0 and 2 are one address. */
        r->sent_from[src == 2 ? 0 : src == 0 ? 2 : src] = true;

        k = relay_core_receive(r->core, r->buf, len, &sources[src], r->now, &r->actions);
        r->calls++;

        for (size_t i = 0; i < r->actions.n; i++) {
                const struct relay_send *a = &r->actions.send[i];

                s = source_of(&a->dest);
                if (s < 0 || !r->sent_from[s])
                        abort(); /* an open proxy, or an amplifier towards a third party */
                if (a->forward) {
                        struct endpoint to, from;
                        if (k != MESSAGE_RELAY_DATA || r->actions.n != 1 || a->data != r->buf ||
                            a->len != len)
                                abort();
                        if (memcmp(a->data, r->copy, 4) != 0 ||
                            memcmp(a->data + 8, r->copy + 8, len - 8) != 0)
                                abort();
                        if (!relay_core_lookup_slot(r->core, target_slot, r->now, &to, NULL) ||
                            !endpoint_same_address(&to, &a->dest))
                                abort();
                        if (!relay_core_lookup_slot(r->core, get_le32(a->data + 4), r->now, &from,
                                                    NULL) ||
                            !endpoint_same_address(&from, &sources[src]))
                                abort();
                        continue;
                }
                if (a->len >= 4 && get_le32(a->data) == MESSAGE_RELAY_PEER) {
                        if (a->len != sizeof(struct message_relay_peer) || !r->registered[s])
                                abort();
                        remember_slot(r, get_le32(a->data + 4));
                        continue;
                }
                /* Everything else answers the sender. */
                if (!endpoint_same_address(&a->dest, &sources[src]))
                        abort();
                if (a->len == sizeof(struct message_relay_challenge) &&
                    get_le32(a->data) == MESSAGE_RELAY_CHALLENGE)
                        continue;
                if (stun_is_message(a->data, a->len)) {
                        if (a->len > STUN_MAX_MESSAGE_LEN)
                                abort();
                        continue;
                }
                if (a->len != sizeof(struct message_relay_registered) ||
                    get_le32(a->data) != MESSAGE_RELAY_REGISTERED || a->len > len)
                        abort();
                r->registered[s] = true;
                r->registered[s == 2 ? 0 : s == 0 ? 2 : s] = true;
                remember_slot(r, get_le32(a->data + 4));
        }
        if (k != MESSAGE_RELAY_DATA && st->forwarded != forwarded_before)
                abort();
        if (st->packets_in != r->calls || st->registrations != relay_core_count(r->core) ||
            relay_core_count(r->core) > MAX_REGISTRATIONS || !relay_core_check_invariants(r->core))
                abort();
        return k;
}

/* ---- the operations ------------------------------------------------------------------------- */

struct input {
        const uint8_t *p;
        size_t left;
};

static uint8_t next(struct input *in) {
        if (in->left == 0)
                return 0;
        in->left--;
        return *in->p++;
}

static size_t take(struct input *in, uint8_t *out, size_t want) {
        size_t n = MIN(want, in->left);

        memcpy(out, in->p, n);
        in->p += n;
        in->left -= n;
        return n;
}

static void sign(struct message_relay_register *m, const uint8_t priv[32], size_t len) {
        uint8_t dh[32], key[32];
        crypto_generichash_state st;

        if (crypto_scalarmult(dh, priv, m->relay_ephemeral) != 0)
                return; /* a bogus ephemeral from the script: no proof */
        crypto_generichash_init(&st, NULL, 0, sizeof(key));
        crypto_generichash_update(&st, (const uint8_t *) LABEL_RELAY_PROOF, 16);
        crypto_generichash_update(&st, dh, sizeof(dh));
        crypto_generichash_final(&st, key, sizeof(key));
        /* Over the REGISTER up to the proof and the want list, if any (messages.h). */
        crypto_generichash_init(&st, key, sizeof(key), sizeof(m->proof));
        crypto_generichash_update(&st, (const uint8_t *) m,
                                  offsetof(struct message_relay_register, proof));
        if (len > sizeof(*m))
                crypto_generichash_update(&st, (const uint8_t *) m + sizeof(*m), len - sizeof(*m));
        crypto_generichash_final(&st, m->proof, sizeof(m->proof));
}

static int key_cmp(const void *a, const void *b) {
        return memcmp(a, b, 32);
}

/* The want list after the REGISTER (mode bit 7, identity mode): the keys of bits 0-3 of the
 * list byte, ascending; bit 4 adds 32 bytes from the script, bit 5 leaves the order as it
 * falls, bit 6 puts want_peer beside the list. Returns the whole length. */
static size_t add_want_list(struct input *in, uint8_t *buf) {
        struct message_relay_register *m = (struct message_relay_register *) buf;
        struct relay_want_list *l = (struct relay_want_list *) (buf + sizeof(*m));
        uint8_t bits = next(in);
        size_t n = 0;

        for (size_t i = 0; i < N_KEYS; i++)
                if (bits & (1u << i))
                        memcpy(l->wants[n++], keys_pub[i], 32);
        if (bits & 0x10)
                take(in, l->wants[n++], 32);
        if (!(bits & 0x20))
                qsort(l->wants, n, 32, key_cmp);
        if (!(bits & 0x40))
                memset(m->want_peer, 0, sizeof(m->want_peer));
        l->n_wants = (uint8_t) n;
        return RELAY_REGISTER_WANTS_LEN(n);
}

/* mode: bit 0 identity, bits 1-2 network (0: zeros), bit 3 spoil the proof (shared-key mode:
 * and sign with another network's key), bit 4 stop after the first REGISTER, bit 5 echo no
 * cookie, bit 6 no network key, bit 7 (identity mode) a want list (add_want_list). */
static void op_register(struct run *r, struct input *in) {
        int src = next(in) % N_SOURCES;
        uint8_t mode = next(in), key = next(in) % N_KEYS, want = next(in) % N_KEYS;
        uint8_t n = next(in) % (RELAY_MAX_CANDIDATES + 2);
        _Alignas(struct message_relay_register) uint8_t buf[RELAY_REGISTER_MAX_LEN] = {};
        struct message_relay_register *mp = (struct message_relay_register *) buf;
        size_t len = sizeof(*mp);
        int k;

        mp->header.type = MESSAGE_RELAY_REGISTER;
        memset(mp->network_id, (mode >> 1) & 3, sizeof(mp->network_id));
        memcpy(mp->node_id, keys_pub[key], 32);
        if (mode & 1)
                memcpy(mp->want_peer, keys_pub[want], 32);
        else if (!(mode & 0x40))
                memcpy(mp->network_key, member_pk[(mode >> 1) & 3], 32);
        take(in, mp->client_nonce, sizeof(mp->client_nonce));
        mp->n_candidates = n;
        for (uint8_t i = 0; i < n && i < RELAY_MAX_CANDIDATES; i++)
                take(in, (uint8_t *) &mp->candidates[i], sizeof(mp->candidates[i]));
        if ((mode & 0x81) == 0x81)
                len = add_want_list(in, buf);

        k = deliver(r, src, buf, len);
        if (mode & 0x10 || k != MESSAGE_RELAY_REGISTER || r->actions.n != 1 ||
            get_le32(r->actions.send[0].data) != MESSAGE_RELAY_CHALLENGE)
                return;
        if (!(mode & 0x20)) {
                const struct message_relay_challenge *ch =
                        (const struct message_relay_challenge *) r->actions.send[0].data;
                memcpy(mp->cookie, ch->cookie, COOKIE_LEN);
                memcpy(mp->relay_ephemeral, ch->relay_ephemeral, 32);
        }
        sign(mp, keys_priv[key], len);
        if (mode & 8)
                mp->proof[0] ^= 1;
        if (!(mode & 1))
                crypto_sign_detached(mp->signature, NULL, buf,
                                     offsetof(struct message_relay_register, signature),
                                     member_sk[(((mode >> 1) & 3) + (mode & 8 ? 1 : 0)) & 3]);
        k = deliver(r, src, buf, len);
        /* A correct exchange from a fresh cookie is refused only for a reason it can name. */
        if (!(mode & 0x28) && k != MESSAGE_RELAY_REGISTER && k != -ENOBUFS && k != -ENOSPC &&
            k != -EBADMSG)
                abort();
}

static void op_data(struct run *r, struct input *in) {
        uint8_t msg[RELAYED_DATAGRAM_MAX_LEN];
        int src = next(in) % N_SOURCES;
        uint8_t target = next(in);
        size_t len = next(in);
        uint32_t slot;

        len |= (size_t) next(in) << 8;
        if (target < 0x80 && r->n_slots > 0) {
                slot = r->slots[target % r->n_slots];
        } else {
                uint8_t b[4] = {};
                take(in, b, 4);
                slot = get_le32(b);
        }
        len = MIN(len, sizeof(msg) - sizeof(struct message_relay_data));
        memset(msg, 0, sizeof(struct message_relay_data));
        msg[0] = MESSAGE_RELAY_DATA;
        put_le32(msg + 4, slot);
        len = sizeof(struct message_relay_data) +
              take(in, msg + sizeof(struct message_relay_data), len);
        deliver(r, src, msg, len);
}

static void op_stun(struct run *r, struct input *in) {
        uint8_t req[64], tid[STUN_TRANSACTION_ID_LEN] = {};
        int src = next(in) % N_SOURCES, n;
        uint8_t flags = next(in);

        take(in, tid, sizeof(tid));
        n = stun_build_binding_request(req, sizeof(req), tid, flags & 6);
        if (n > 0)
                deliver(r, src, req, (size_t) n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct run run;
        struct relay_core_config cfg = {
                .max_registrations = MAX_REGISTRATIONS,
                .rate = 50,
                .bandwidth = 100000,
        };
        struct input in = {data, size};
        struct run *r = &run;

        if (!initialized)
                initialize();
        rng_state = 0x5348414430574d45; /* every run sees the same random numbers */

        memset(r, 0, sizeof(*r));
        r->now = FUZZ_T0;
        if (relay_core_new(&cfg, r->now, &r->core) < 0)
                abort();

        for (unsigned ops = 0; in.left > 0 && ops < 256; ops++)
                switch (next(&in) % 6) {
                case 0: {
                        uint8_t msg[RELAYED_DATAGRAM_MAX_LEN + 16];
                        int src = next(&in) % N_SOURCES;
                        size_t len = next(&in);

                        len |= (size_t) next(&in) << 8;
                        len = take(&in, msg, MIN(len, sizeof(msg)));
                        deliver(r, src, msg, len);
                        break;
                }
                case 1:
                        op_register(r, &in);
                        break;
                case 2:
                        op_data(r, &in);
                        break;
                case 3: {
                        uint64_t ms = next(&in);
                        ms |= (uint64_t) next(&in) << 8;
                        r->now += ms * 100 * NSEC_PER_MSEC;
                        break;
                }
                case 4:
                        relay_core_expire(r->core, r->now);
                        if (!relay_core_check_invariants(r->core) ||
                            relay_core_stats(r->core)->registrations != relay_core_count(r->core))
                                abort();
                        break;
                case 5:
                        op_stun(r, &in);
                        break;
                }

        r->core = relay_core_free(r->core);
        return 0;
}
