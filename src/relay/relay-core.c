/* SPDX-License-Identifier: MIT */
/*
 * shadowmesh-relay's protocol core (see relay-core.h for the decisions, messages.h for the
 * wire formats). Every path a datagram can take:
 *
 *   rate limit (per source IP) --over--> drop
 *   RELAY_REGISTER: well-formed? -> network allowed? -> cookie valid? --no--> CHALLENGE
 *                   -> identity proof valid? -> room? -> create/refresh/move the registration
 *                   -> REGISTERED to it, PEER both ways for every pair that may talk
 *   RELAY_DATA:     sender registered at its source address? -> slot registered? -> may they
 *                   talk? -> sender under its bandwidth? -> forward, slot := sender's slot
 *   STUN Binding request -> success with XOR-MAPPED-ADDRESS (420 for what we cannot honour)
 *   anything else -> drop
 *
 * Tables: registrations live in one array (allocated for the configured maximum; untouched
 * entries stay unbacked pages) and are found through four hash chains keyed with SipHash
 * under a random key, so a remote party cannot aim collisions: by source address (RELAY_DATA's
 * sender), by slot (RELAY_DATA's target), by name (network, node, wanted peer: refresh and
 * identity pairing) and, for shared-key registrations only, by network (shared-key pairing).
 */
#include <endian.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stddef.h>

#include "relay-core.h"
#include "stun.h"

_Static_assert(sizeof(LABEL_RELAY_PROOF) - 1 == 16, "proof label");
_Static_assert(COOKIE_LEN >= crypto_generichash_BYTES_MIN, "cookie length");
_Static_assert(NOISE_PUBLIC_KEY_LEN == crypto_scalarmult_BYTES, "X25519");
_Static_assert(RELAY_ACTIONS_MAX * sizeof(struct message_relay_peer) >= STUN_MAX_MESSAGE_LEN,
               "a STUN reply fits the actions' storage");

#define SECRET_LEN 32
#define PROOF_KEY_LEN 32
#define ADDR_KEY_LEN 22 /* IPv6 (IPv4 as v4-mapped) || port || scope id */
#define NAME_LEN (NETWORK_ID_LEN + 2 * NOISE_PUBLIC_KEY_LEN)
#define RATE_WAYS 8
#define SWEEP_INTERVAL_NS NSEC_PER_SEC
/* Token buckets count in units of 1/NSEC_PER_SEC of a packet (or byte): a refill of rate units
 * per nanosecond is exactly rate per second, with no division on the hot path. */
#define TOKEN_UNIT NSEC_PER_SEC
/* Whatever the bandwidth, the bucket holds at least one datagram of the largest size. */
#define BANDWIDTH_MIN_BURST 65536

enum chain {
        CHAIN_ADDR,
        CHAIN_SLOT,
        CHAIN_NAME,
        CHAIN_NET, /* shared-key registrations only */
        _CHAIN_MAX,
};

struct registration {
        bool used;
        uint32_t slot;
        /* Identity mode: the network id as sent. Shared-key mode: the group, a hash of the
         * network id and the network key, so that a network id alone (it travels in clear)
         * never joins anyone's network: only the psk's signature does. */
        uint8_t network_id[NETWORK_ID_LEN];
        uint8_t node_id[NOISE_PUBLIC_KEY_LEN];
        uint8_t want_peer[NOISE_PUBLIC_KEY_LEN]; /* zeros: shared-key mode, or a want list */
        /* Identity mode with a want list (messages.h): the keys, ascending; 0: want_peer. */
        uint8_t n_wants;
        uint8_t wants[RELAY_MAX_WANTS][NOISE_PUBLIC_KEY_LEN];
        uint8_t client_nonce[RELAY_CLIENT_NONCE_LEN]; /* of its latest REGISTER: keys PEER */
        bool shared;
        struct endpoint addr;           /* as received: the destination of replies */
        uint8_t addr_key[ADDR_KEY_LEN]; /* normalised, for comparison */
        uint8_t n_candidates;
        struct relay_candidate candidates[RELAY_MAX_CANDIDATES];
        uint64_t expires_ns;
        uint64_t bw_tokens, bw_last_ns;
        uint32_t hash[_CHAIN_MAX];
        int32_t next[_CHAIN_MAX]; /* CHAIN_SLOT's doubles as the free list's link */
};

/* A challenge generation: the cookie secret and the ephemeral key it is issued with. */
struct generation {
        bool valid;
        uint64_t birth_ns;
        uint8_t secret[SECRET_LEN];
        uint8_t eph_priv[NOISE_PUBLIC_KEY_LEN];
        uint8_t eph_pub[NOISE_PUBLIC_KEY_LEN];
};

struct rate_entry {
        bool used;
        uint8_t key[9]; /* 4: IPv4 address, 6: the IPv6 /64; then zero padded */
        uint64_t tokens, last_ns;
};

struct relay_core {
        unsigned max;
        uint64_t rate;
        uint64_t bandwidth;
        uint8_t (*allowed)[NETWORK_ID_LEN];
        size_t n_allowed;

        struct registration *regs;
        uint32_t high; /* entries [0, high) have been used at least once */
        int32_t free_head;
        size_t count, shared_count;
        int32_t *buckets[_CHAIN_MAX];
        uint32_t bucket_mask;
        uint8_t hash_key[crypto_shorthash_KEYBYTES];
        uint64_t last_sweep_ns;

        struct rate_entry *rates;
        struct rate_entry *verified_rates; /* REGISTERs that echo a valid cookie */
        uint32_t rate_mask; /* sets of RATE_WAYS entries (each table) */
        /* Global budgets for replies to sources that hold no registration. */
        uint64_t unauth_tokens, unauth_last_ns;
        uint64_t amplify_tokens, amplify_last_ns;

        struct generation gen[2]; /* current, previous */
        struct relay_stats stats;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static bool is_zero(const uint8_t *p, size_t n) {
        return sodium_is_zero(p, n) == 1;
}

/* now >= birth + age_ns; a clock behind the birth never counts as expiry. */
static bool has_expired(uint64_t birth_ns, uint64_t age_ns, uint64_t now) {
        return now >= birth_ns && now - birth_ns >= age_ns;
}

static bool live(const struct registration *r, uint64_t now) {
        return r->used && now < r->expires_ns;
}

static uint32_t pow2_at_least(uint64_t n) {
        uint32_t p = 1;

        while (p < n)
                p <<= 1;
        return p;
}

/* Normalised address key: v4 and v4-mapped v6 alike; the scope id only for IPv6 proper. False
 * for any family but IPv4/IPv6. */
static bool make_addr_key(uint8_t out[ADDR_KEY_LEN], const struct endpoint *e) {
        memset(out, 0, ADDR_KEY_LEN);
        if (e->addr.sa.sa_family == AF_INET && e->len >= (socklen_t) sizeof(struct sockaddr_in)) {
                out[10] = out[11] = 0xff;
                memcpy(out + 12, &e->addr.in.sin_addr, 4);
                memcpy(out + 16, &e->addr.in.sin_port, 2);
                return true;
        }
        if (e->addr.sa.sa_family == AF_INET6 && e->len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                memcpy(out, &e->addr.in6.sin6_addr, 16);
                memcpy(out + 16, &e->addr.in6.sin6_port, 2);
                if (!IN6_IS_ADDR_V4MAPPED(&e->addr.in6.sin6_addr))
                        memcpy(out + 18, &e->addr.in6.sin6_scope_id, 4);
                return true;
        }
        return false;
}

static bool key_is_v4(const uint8_t key[ADDR_KEY_LEN]) {
        static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(key, mapped, 12) == 0;
}

/* The address as a wire candidate: family 4 with the IPv4 address for v4 and v4-mapped. */
static void candidate_from_key(struct relay_candidate *c, const uint8_t key[ADDR_KEY_LEN]) {
        memset(c, 0, sizeof(*c));
        if (key_is_v4(key)) {
                c->family = RELAY_CANDIDATE_IPV4;
                memcpy(c->addr, key + 12, 4);
        } else {
                c->family = RELAY_CANDIDATE_IPV6;
                memcpy(c->addr, key, 16);
        }
        memcpy(&c->port_be, key + 16, 2);
}

static uint32_t hash_bytes(const struct relay_core *c, const void *p, size_t n) {
        uint8_t out[crypto_shorthash_BYTES];

        crypto_shorthash(out, p, n, c->hash_key);
        return get_le32(out);
}

static void name_of(uint8_t out[NAME_LEN], const uint8_t *network_id, const uint8_t *node_id,
                    const uint8_t *want_peer) {
        memcpy(out, network_id, NETWORK_ID_LEN);
        memcpy(out + NETWORK_ID_LEN, node_id, NOISE_PUBLIC_KEY_LEN);
        memcpy(out + NETWORK_ID_LEN + NOISE_PUBLIC_KEY_LEN, want_peer, NOISE_PUBLIC_KEY_LEN);
}

/* ---- hash chains -------------------------------------------------------------------------- */

static uint32_t chain_hash(const struct relay_core *c, const struct registration *r,
                           enum chain which) {
        uint8_t name[NAME_LEN], slot[4];

        switch (which) {
        case CHAIN_ADDR:
                return hash_bytes(c, r->addr_key, ADDR_KEY_LEN);
        case CHAIN_SLOT:
                put_le32(slot, r->slot);
                return hash_bytes(c, slot, sizeof(slot));
        case CHAIN_NAME:
                name_of(name, r->network_id, r->node_id, r->want_peer);
                return hash_bytes(c, name, NAME_LEN);
        case CHAIN_NET:
        default:
                return hash_bytes(c, r->network_id, NETWORK_ID_LEN);
        }
}

static void chain_insert(struct relay_core *c, int32_t idx, enum chain which) {
        struct registration *r = &c->regs[idx];
        uint32_t b;

        r->hash[which] = chain_hash(c, r, which);
        b = r->hash[which] & c->bucket_mask;
        r->next[which] = c->buckets[which][b];
        c->buckets[which][b] = idx;
}

static void chain_remove(struct relay_core *c, int32_t idx, enum chain which) {
        int32_t *p = &c->buckets[which][c->regs[idx].hash[which] & c->bucket_mask];

        while (*p >= 0) {
                if (*p == idx) {
                        *p = c->regs[idx].next[which];
                        c->regs[idx].next[which] = -1;
                        return;
                }
                p = &c->regs[*p].next[which];
        }
}

static int32_t find_by_addr(const struct relay_core *c, const uint8_t key[ADDR_KEY_LEN]) {
        uint32_t h = hash_bytes(c, key, ADDR_KEY_LEN);

        for (int32_t i = c->buckets[CHAIN_ADDR][h & c->bucket_mask]; i >= 0;
             i = c->regs[i].next[CHAIN_ADDR])
                if (c->regs[i].hash[CHAIN_ADDR] == h &&
                    memcmp(c->regs[i].addr_key, key, ADDR_KEY_LEN) == 0)
                        return i;
        return -1;
}

static int32_t find_by_slot(const struct relay_core *c, uint32_t slot) {
        uint8_t s[4];
        uint32_t h;

        put_le32(s, slot);
        h = hash_bytes(c, s, sizeof(s));
        for (int32_t i = c->buckets[CHAIN_SLOT][h & c->bucket_mask]; i >= 0;
             i = c->regs[i].next[CHAIN_SLOT])
                if (c->regs[i].slot == slot)
                        return i;
        return -1;
}

static int32_t find_by_name(const struct relay_core *c, const uint8_t *network_id,
                            const uint8_t *node_id, const uint8_t *want_peer) {
        uint8_t name[NAME_LEN];
        uint32_t h;

        name_of(name, network_id, node_id, want_peer);
        h = hash_bytes(c, name, NAME_LEN);
        for (int32_t i = c->buckets[CHAIN_NAME][h & c->bucket_mask]; i >= 0;
             i = c->regs[i].next[CHAIN_NAME]) {
                const struct registration *r = &c->regs[i];
                if (r->hash[CHAIN_NAME] == h &&
                    memcmp(r->network_id, network_id, NETWORK_ID_LEN) == 0 &&
                    memcmp(r->node_id, node_id, NOISE_PUBLIC_KEY_LEN) == 0 &&
                    memcmp(r->want_peer, want_peer, NOISE_PUBLIC_KEY_LEN) == 0)
                        return i;
        }
        return -1;
}

/* Live shared-key registrations of network_id, not counting skip. */
static size_t network_count(const struct relay_core *c, const uint8_t *network_id, int32_t skip,
                            uint64_t now) {
        uint32_t h = hash_bytes(c, network_id, NETWORK_ID_LEN);
        size_t n = 0;

        for (int32_t i = c->buckets[CHAIN_NET][h & c->bucket_mask]; i >= 0;
             i = c->regs[i].next[CHAIN_NET])
                if (i != skip && live(&c->regs[i], now) &&
                    memcmp(c->regs[i].network_id, network_id, NETWORK_ID_LEN) == 0)
                        n++;
        return n;
}

/* ---- registrations ------------------------------------------------------------------------ */

static void registration_remove(struct relay_core *c, int32_t idx) {
        struct registration *r = &c->regs[idx];

        chain_remove(c, idx, CHAIN_ADDR);
        chain_remove(c, idx, CHAIN_SLOT);
        chain_remove(c, idx, CHAIN_NAME);
        if (r->shared) {
                chain_remove(c, idx, CHAIN_NET);
                c->shared_count--;
        }
        sodium_memzero(r, sizeof(*r));
        for (size_t i = 0; i < _CHAIN_MAX; i++)
                r->next[i] = -1;
        r->next[CHAIN_SLOT] = c->free_head;
        c->free_head = idx;
        c->count--;
        c->stats.registrations = c->count;
}

static int32_t registration_alloc(struct relay_core *c) {
        int32_t idx;

        if (c->free_head >= 0) {
                idx = c->free_head;
                c->free_head = c->regs[idx].next[CHAIN_SLOT];
        } else if (c->high < c->max) {
                idx = (int32_t) c->high++;
        } else
                return -1;
        memset(&c->regs[idx], 0, sizeof(c->regs[idx]));
        for (size_t i = 0; i < _CHAIN_MAX; i++)
                c->regs[idx].next[i] = -1;
        return idx;
}

/* A slot is random, non-zero and unique. It is also never one whose wire bytes, read where a
 * STUN header has its magic cookie, would make a 20-byte RELAY_DATA look like STUN. */
static uint32_t new_slot(const struct relay_core *c) {
        uint8_t magic[4];

        put_be32(magic, STUN_MAGIC_COOKIE);
        for (;;) {
                uint32_t slot = randombytes_random();
                if (slot != 0 && slot != get_le32(magic) && find_by_slot(c, slot) < 0)
                        return slot;
        }
}

static int key_cmp(const void *a, const void *b) {
        return memcmp(a, b, NOISE_PUBLIC_KEY_LEN);
}

/* Does identity registration r want key: its want list (ascending: bisection, at most
 * log2(RELAY_MAX_WANTS) + 1 comparisons on the forwarding path), or else its want_peer. */
static bool reg_wants(const struct registration *r, const uint8_t *key) {
        if (r->n_wants == 0)
                return memcmp(r->want_peer, key, NOISE_PUBLIC_KEY_LEN) == 0;
        return bsearch(key, r->wants, r->n_wants, NOISE_PUBLIC_KEY_LEN, key_cmp) != NULL;
}

/* Who may reach whom (messages.h): same network and, in identity mode, each wanting the other
 * (want_peer, or the want list); in shared-key mode, any two of the network. Never a
 * registration and itself. */
static bool may_talk(const struct registration *a, const struct registration *b) {
        if (a == b || a->shared != b->shared ||
            memcmp(a->network_id, b->network_id, NETWORK_ID_LEN) != 0)
                return false;
        if (a->shared)
                return true;
        return reg_wants(a, b->node_id) && reg_wants(b, a->node_id);
}

/* ---- token buckets ------------------------------------------------------------------------ */

/* Refill at rate units/ns up to cap, then take cost if there is that much. */
static bool bucket_take(uint64_t *tokens, uint64_t *last_ns, uint64_t rate, uint64_t cap,
                        uint64_t cost, uint64_t now) {
        if (now > *last_ns) {
                uint64_t elapsed = now - *last_ns, room = cap - MIN(*tokens, cap);
                if (elapsed >= room / rate + 1)
                        *tokens = cap;
                else
                        *tokens += elapsed * rate;
                *last_ns = now;
        }
        if (*tokens < cost)
                return false;
        *tokens -= cost;
        return true;
}

static uint64_t rate_cap(const struct relay_core *c) {
        return 2 * c->rate * TOKEN_UNIT;
}

static uint64_t bandwidth_cap(const struct relay_core *c) {
        return MAX(2 * c->bandwidth, (uint64_t) BANDWIDTH_MIN_BURST) * TOKEN_UNIT;
}

/* The rate-limit key of a source: its IPv4 address, or its IPv6 /64. */
static void rate_key(uint8_t out[9], const uint8_t addr_key[ADDR_KEY_LEN]) {
        memset(out, 0, 9);
        if (key_is_v4(addr_key)) {
                out[0] = 4;
                memcpy(out + 1, addr_key + 12, 4);
        } else {
                out[0] = 6;
                memcpy(out + 1, addr_key, 8);
        }
}

/* A set of RATE_WAYS entries per hash (eight: a set overflows only when far more sources are
 * active than the table was sized for): the source's own entry, else an unused or idle one (its
 * bucket full again, so forgetting it loses nothing), else the set's first entry is shared,
 * which keeps every source of a crowded set limited rather than resetting anyone's bucket. */
static bool rate_allow(struct relay_core *c, struct rate_entry *table,
                       const uint8_t addr_key[ADDR_KEY_LEN], uint64_t now) {
        struct rate_entry *set, *e = NULL;
        uint8_t key[9];
        uint64_t cap;

        if (c->rate == 0)
                return true;
        cap = rate_cap(c);
        rate_key(key, addr_key);
        set = &table[(hash_bytes(c, key, sizeof(key)) & c->rate_mask) * RATE_WAYS];
        for (size_t i = 0; i < RATE_WAYS && !e; i++)
                if (set[i].used && memcmp(set[i].key, key, sizeof(key)) == 0)
                        e = &set[i];
        for (size_t i = 0; i < RATE_WAYS && !e; i++) {
                struct rate_entry *x = &set[i];
                uint64_t full_after = (cap - MIN(x->tokens, cap)) / c->rate + 1;
                if (!x->used || has_expired(x->last_ns, full_after, now)) {
                        e = x;
                        e->used = true;
                        memcpy(e->key, key, sizeof(key));
                        e->tokens = cap;
                        e->last_ns = now;
                }
        }
        if (!e)
                e = &set[0];
        return bucket_take(&e->tokens, &e->last_ns, c->rate, cap, TOKEN_UNIT, now);
}

/* One global token bucket of rate replies per second, burst twice that. */
static bool global_allow(uint64_t *tokens, uint64_t *last_ns, uint64_t rate, uint64_t now) {
        return bucket_take(tokens, last_ns, rate, 2 * rate * TOKEN_UNIT, TOKEN_UNIT, now);
}

/* ---- challenge generations ---------------------------------------------------------------- */

static void generation_new(struct generation *g, uint64_t now) {
        randombytes_buf(g->secret, sizeof(g->secret));
        randombytes_buf(g->eph_priv, sizeof(g->eph_priv));
        crypto_scalarmult_base(g->eph_pub, g->eph_priv);
        g->birth_ns = now;
        g->valid = true;
}

/* Rotate every RELAY_CHALLENGE_SECRET_MAX_AGE; the previous generation stays acceptable for one
 * more period, so a registration in flight at a rotation still completes. After a long quiet
 * spell both are replaced. */
static void rotate(struct relay_core *c, uint64_t now) {
        const uint64_t age = (uint64_t) RELAY_CHALLENGE_SECRET_MAX_AGE * NSEC_PER_SEC;

        if (!has_expired(c->gen[0].birth_ns, age, now))
                return;
        if (has_expired(c->gen[0].birth_ns, 2 * age, now))
                sodium_memzero(&c->gen[1], sizeof(c->gen[1]));
        else
                c->gen[1] = c->gen[0];
        generation_new(&c->gen[0], now);
}

/* The generation whose ephemeral key a REGISTER echoes, if still acceptable. */
static const struct generation *generation_for(const struct relay_core *c, const uint8_t *eph,
                                               uint64_t now) {
        const uint64_t age = (uint64_t) RELAY_CHALLENGE_SECRET_MAX_AGE * NSEC_PER_SEC;

        for (size_t i = 0; i < ELEMENTSOF(c->gen); i++)
                if (c->gen[i].valid && !has_expired(c->gen[i].birth_ns, 2 * age, now) &&
                    memcmp(c->gen[i].eph_pub, eph, NOISE_PUBLIC_KEY_LEN) == 0)
                        return &c->gen[i];
        return NULL;
}

/* cookie = MAC(secret, source address || port || relay ephemeral), MAC = BLAKE2b-128 keyed;
 * the address is 4 bytes for IPv4 (and v4-mapped), 16 for IPv6, the port as on the wire. */
static void compute_cookie(uint8_t out[COOKIE_LEN], const struct generation *g,
                           const uint8_t addr_key[ADDR_KEY_LEN]) {
        crypto_generichash_state st;

        crypto_generichash_init(&st, g->secret, SECRET_LEN, COOKIE_LEN);
        if (key_is_v4(addr_key))
                crypto_generichash_update(&st, addr_key + 12, 4);
        else
                crypto_generichash_update(&st, addr_key, 16);
        crypto_generichash_update(&st, addr_key + 16, 2);
        crypto_generichash_update(&st, g->eph_pub, NOISE_PUBLIC_KEY_LEN);
        crypto_generichash_final(&st, out, COOKIE_LEN);
        sodium_memzero(&st, sizeof(st));
}

/* auth = MAC(client nonce, reply up to auth) (messages.h): the last RELAY_AUTH_LEN bytes. */
static void put_auth(uint8_t *msg, size_t len, const uint8_t nonce[RELAY_CLIENT_NONCE_LEN]) {
        crypto_generichash(msg + len - RELAY_AUTH_LEN, RELAY_AUTH_LEN, msg, len - RELAY_AUTH_LEN,
                           nonce, RELAY_CLIENT_NONCE_LEN);
}

/* The shared-key group a registration joins: BLAKE2b-128 of the network id and network key. */
static void group_of(uint8_t out[NETWORK_ID_LEN], const struct message_relay_register *m) {
        crypto_generichash_state st;

        crypto_generichash_init(&st, NULL, 0, NETWORK_ID_LEN);
        crypto_generichash_update(&st, m->network_id, NETWORK_ID_LEN);
        crypto_generichash_update(&st, m->network_key, RELAY_NETWORK_KEY_LEN);
        crypto_generichash_final(&st, out, NETWORK_ID_LEN);
}

/* The membership signature of a shared-key REGISTER (messages.h). */
static bool signature_valid(const struct message_relay_register *m) {
        return crypto_sign_verify_detached(m->signature, (const uint8_t *) m,
                                           offsetof(struct message_relay_register, signature),
                                           m->network_key) == 0;
}

/* proof = MAC(HASH(LABEL_RELAY_PROOF || DH(relay ephemeral, node_id)), REGISTER up to proof
 * || want list), HASH = BLAKE2b-256, MAC = BLAKE2b-128 keyed. A low-order node_id (DH all
 * zeros) fails. list/list_len: the want list (messages.h), empty for a 424-byte REGISTER. */
static bool proof_valid(const struct generation *g, const struct message_relay_register *m,
                        const uint8_t *list, size_t list_len) {
        uint8_t dh[crypto_scalarmult_BYTES], key[PROOF_KEY_LEN], proof[COOKIE_LEN];
        crypto_generichash_state st;
        bool ok = false;

        if (crypto_scalarmult(dh, g->eph_priv, m->node_id) == 0) {
                crypto_generichash_init(&st, NULL, 0, PROOF_KEY_LEN);
                crypto_generichash_update(&st, (const uint8_t *) LABEL_RELAY_PROOF,
                                          sizeof(LABEL_RELAY_PROOF) - 1);
                crypto_generichash_update(&st, dh, sizeof(dh));
                crypto_generichash_final(&st, key, PROOF_KEY_LEN);
                crypto_generichash_init(&st, key, PROOF_KEY_LEN, COOKIE_LEN);
                crypto_generichash_update(&st, (const uint8_t *) m,
                                          offsetof(struct message_relay_register, proof));
                if (list_len > 0)
                        crypto_generichash_update(&st, list, list_len);
                crypto_generichash_final(&st, proof, COOKIE_LEN);
                ok = sodium_memcmp(proof, m->proof, COOKIE_LEN) == 0;
                sodium_memzero(&st, sizeof(st));
        }
        sodium_memzero(dh, sizeof(dh));
        sodium_memzero(key, sizeof(key));
        sodium_memzero(proof, sizeof(proof));
        return ok;
}

/* ---- actions ------------------------------------------------------------------------------ */

static uint8_t *action_reply(struct relay_actions *a, const struct endpoint *dest, size_t len) {
        uint8_t *p;

        if (a->n >= ELEMENTSOF(a->send) || len > sizeof(a->storage) - a->used)
                return NULL;
        p = a->storage + a->used;
        memset(p, 0, len);
        a->used += len;
        a->send[a->n++] = (struct relay_send){
                .dest = *dest,
                .data = p,
                .len = len,
        };
        a->send[a->n - 1].dest.via_relay = false;
        a->send[a->n - 1].dest.relay_slot = 0;
        return p;
}

static void send_peer(struct relay_core *c, struct relay_actions *a, const struct registration *to,
                      const struct registration *about) {
        struct message_relay_peer *m;

        m = (struct message_relay_peer *) action_reply(a, &to->addr, sizeof(*m));
        if (!m)
                return;
        m->header.type = MESSAGE_RELAY_PEER;
        put_le32(&m->slot, about->slot);
        memcpy(m->node_id, about->node_id, NOISE_PUBLIC_KEY_LEN);
        candidate_from_key(&m->observed, about->addr_key);
        m->n_candidates = about->n_candidates;
        memcpy(m->candidates, about->candidates, sizeof(m->candidates));
        put_auth((uint8_t *) m, sizeof(*m), to->client_nonce);
        c->stats.peers_sent++;
}

/* ---- REGISTER ----------------------------------------------------------------------------- */

static bool candidate_valid(const struct relay_candidate *cand) {
        if (cand->reserved_zero != 0)
                return false;
        if (cand->family == RELAY_CANDIDATE_IPV4)
                return is_zero(cand->addr + 4, sizeof(cand->addr) - 4);
        return cand->family == RELAY_CANDIDATE_IPV6;
}

static int bad_register(struct relay_register_error *why, const char *what, int candidate,
                        int want) {
        if (why)
                *why = (struct relay_register_error){
                        .what = what, .candidate = candidate, .want = want};
        return -EBADMSG;
}

int relay_register_parse(const uint8_t *buf, size_t len, struct relay_register_view *ret,
                         struct relay_register_error *ret_why) {
        const struct message_relay_register *m = (const struct message_relay_register *) buf;
        const struct relay_want_list *l = NULL;
        size_t n = 0;

        if (!buf || (len != sizeof(*m) && !RELAY_REGISTER_WANTS_LEN_OK(len)))
                return bad_register(ret_why, "length is neither 424 nor 428 + 32 n (1 <= n <= "
                                             "RELAY_MAX_WANTS)", -1, -1);
        if (get_le32(buf) != MESSAGE_RELAY_REGISTER)
                return bad_register(ret_why, "not a REGISTER (type or reserved header bytes)", -1,
                                    -1);
        if (!is_zero(m->reserved_zero, sizeof(m->reserved_zero)))
                return bad_register(ret_why, "reserved bytes after n_candidates are not zero", -1,
                                    -1);
        if (m->n_candidates > RELAY_MAX_CANDIDATES)
                return bad_register(ret_why, "n_candidates is over RELAY_MAX_CANDIDATES", -1, -1);
        for (size_t i = 0; i < RELAY_MAX_CANDIDATES; i++) {
                if (i < m->n_candidates && !candidate_valid(&m->candidates[i]))
                        return bad_register(ret_why, "candidate: unknown family, or a reserved "
                                                     "byte or the rest of an IPv4 address set",
                                            (int) i, -1);
                if (i >= m->n_candidates &&
                    !is_zero((const uint8_t *) &m->candidates[i], sizeof(m->candidates[i])))
                        return bad_register(ret_why, "unused candidate slot is not zero", (int) i,
                                            -1);
        }
        if (len > sizeof(*m)) {
                l = (const struct relay_want_list *) (buf + sizeof(*m));
                n = l->n_wants;
                if (len != RELAY_REGISTER_WANTS_LEN(n))
                        return bad_register(ret_why, "n_wants does not match the length", -1, -1);
                if (!is_zero(l->reserved_zero, sizeof(l->reserved_zero)))
                        return bad_register(ret_why, "want list: reserved bytes are not zero", -1,
                                            -1);
                /* Identity mode only: the list names every wanted peer. */
                if (!is_zero(m->want_peer, NOISE_PUBLIC_KEY_LEN))
                        return bad_register(ret_why, "want_peer is set beside a want list", -1,
                                            -1);
                if (!is_zero(m->network_key, RELAY_NETWORK_KEY_LEN) ||
                    !is_zero(m->signature, RELAY_SIGNATURE_LEN))
                        return bad_register(ret_why, "a want list with a network key or a "
                                                     "signature (shared-key mode has no list)",
                                            -1, -1);
                for (size_t i = 0; i < n; i++) {
                        if (is_zero(l->wants[i], NOISE_PUBLIC_KEY_LEN))
                                return bad_register(ret_why, "want list: a key is all zeros", -1,
                                                    (int) i);
                        if (memcmp(l->wants[i], m->node_id, NOISE_PUBLIC_KEY_LEN) == 0)
                                return bad_register(ret_why, "want list: names the node itself",
                                                    -1, (int) i);
                        if (i > 0 &&
                            memcmp(l->wants[i - 1], l->wants[i], NOISE_PUBLIC_KEY_LEN) >= 0)
                                return bad_register(ret_why, "want list: keys not in strictly "
                                                             "ascending order (or repeated)",
                                                    -1, (int) i);
                }
        } else if (is_zero(m->want_peer, NOISE_PUBLIC_KEY_LEN)) {
                /* Shared-key mode: a network id and a network key derived from the psk. (The
                 * node id is a per-run public key, the proof and the signature judge it.) */
                if (is_zero(m->network_id, NETWORK_ID_LEN))
                        return bad_register(ret_why, "shared-key mode: network_id is zero", -1, -1);
                if (is_zero(m->node_id, NOISE_PUBLIC_KEY_LEN))
                        return bad_register(ret_why, "shared-key mode: node_id is zero", -1, -1);
                if (is_zero(m->network_key, RELAY_NETWORK_KEY_LEN))
                        return bad_register(ret_why, "shared-key mode: network_key is zero", -1,
                                            -1);
        } else if (!is_zero(m->network_key, RELAY_NETWORK_KEY_LEN) ||
                   !is_zero(m->signature, RELAY_SIGNATURE_LEN)) {
                /* Identity mode: no network key, no signature (the proof of the static key is
                 * enough). */
                return bad_register(ret_why, "identity mode: network_key or signature is set", -1,
                                    -1);
        }
        if (ret)
                *ret = (struct relay_register_view){
                        .m = m,
                        .list = l,
                        .n_wants = n,
                        .shared = !l && is_zero(m->want_peer, NOISE_PUBLIC_KEY_LEN),
                };
        return 0;
}

static bool network_allowed(const struct relay_core *c, const uint8_t *network_id) {
        if (c->n_allowed == 0)
                return true;
        for (size_t i = 0; i < c->n_allowed; i++)
                if (memcmp(c->allowed[i], network_id, NETWORK_ID_LEN) == 0)
                        return true;
        return false;
}

static int send_challenge(struct relay_core *c, struct relay_actions *a,
                          const struct endpoint *src, const uint8_t addr_key[ADDR_KEY_LEN],
                          const uint8_t nonce[RELAY_CLIENT_NONCE_LEN], bool verified,
                          uint64_t now) {
        struct message_relay_challenge *m;

        /* A CHALLENGE answers whoever claims the source address: the global budget bounds what
         * spoofed REGISTERs from many addresses can make us send. A source that holds a
         * registration (its cookie just aged out) is answered regardless, so a flood of
         * spoofed requests cannot keep registered nodes from renewing. */
        if (!verified &&
            !global_allow(&c->unauth_tokens, &c->unauth_last_ns, RELAY_UNAUTH_REPLY_RATE, now)) {
                c->stats.dropped_unauth_budget++;
                return -ENOBUFS;
        }
        m = (struct message_relay_challenge *) action_reply(a, src, sizeof(*m));
        if (!m)
                return -ENOBUFS;
        m->header.type = MESSAGE_RELAY_CHALLENGE;
        memcpy(m->relay_ephemeral, c->gen[0].eph_pub, NOISE_PUBLIC_KEY_LEN);
        compute_cookie(m->cookie, &c->gen[0], addr_key);
        put_auth((uint8_t *) m, sizeof(*m), nonce);
        c->stats.challenges++;
        return MESSAGE_RELAY_REGISTER;
}

static void sweep_if_due(struct relay_core *c, uint64_t now) {
        if (has_expired(c->last_sweep_ns, SWEEP_INTERVAL_NS, now))
                relay_core_expire(c, now);
}

/* The generation whose cookie a REGISTER echoes correctly for its source address, or NULL. */
static const struct generation *cookie_generation(const struct relay_core *c,
                                                  const struct message_relay_register *m,
                                                  const uint8_t addr_key[ADDR_KEY_LEN],
                                                  uint64_t now) {
        const struct generation *g = generation_for(c, m->relay_ephemeral, now);
        uint8_t cookie[COOKIE_LEN];

        if (!g)
                return NULL;
        compute_cookie(cookie, g, addr_key);
        return sodium_memcmp(cookie, m->cookie, COOKIE_LEN) == 0 ? g : NULL;
}

/* Tell r and p of each other when they may talk. */
static void introduce(struct relay_core *c, struct relay_actions *a, struct registration *r,
                      int32_t p, uint64_t now) {
        if (p >= 0 && live(&c->regs[p], now) && may_talk(r, &c->regs[p])) {
                send_peer(c, a, r, &c->regs[p]);
                send_peer(c, a, &c->regs[p], r);
        }
}

static int handle_register(struct relay_core *c, const uint8_t *buf, size_t len,
                           const struct endpoint *src, const uint8_t addr_key[ADDR_KEY_LEN],
                           const struct generation *g, bool verified, uint64_t now,
                           struct relay_actions *a) {
        const struct message_relay_register *m = (const struct message_relay_register *) buf;
        static const uint8_t zero_key[NOISE_PUBLIC_KEY_LEN];
        struct relay_register_view v;
        uint8_t group[NETWORK_ID_LEN];
        const uint8_t *network;
        struct registration *r;
        int32_t idx, occupant;
        bool shared;

        if (relay_register_parse(buf, len, &v, NULL) < 0) {
                c->stats.dropped_invalid++;
                return -EBADMSG;
        }
        if (!network_allowed(c, m->network_id)) {
                c->stats.dropped_not_allowed++;
                return -EACCES;
        }
        if (!g)
                return send_challenge(c, a, src, addr_key, m->client_nonce, verified, now);
        /* Both modes: node_id's private key (identity: the static key; shared-key: the per-run
         * key), so nobody else can refresh or move this registration. Shared-key mode also: the
         * psk's membership signature. */
        shared = v.shared;
        if (!proof_valid(g, m, (const uint8_t *) v.list,
                         v.list ? RELAY_REGISTER_WANTS_LEN(v.n_wants) - sizeof(*m) : 0) ||
            (shared && !signature_valid(m))) {
                c->stats.bad_proof++;
                return -EPERM;
        }
        network = m->network_id;
        if (shared) {
                group_of(group, m);
                network = group;
        }

        /* Decide before changing anything: this name's registration (an expired one is gone),
         * the registration this address holds (it will be replaced), and whether there is room. */
        idx = find_by_name(c, network, m->node_id, m->want_peer);
        if (idx >= 0 && !live(&c->regs[idx], now)) {
                registration_remove(c, idx);
                c->stats.expired++;
                idx = -1;
        }
        occupant = find_by_addr(c, addr_key);
        if (occupant >= 0 && !live(&c->regs[occupant], now)) {
                registration_remove(c, occupant);
                c->stats.expired++;
                occupant = -1;
        }
        if (occupant == idx)
                occupant = -1;
        /* Identity mode: the node's own registration at this address (same network and node
         * id; its proof is ours) under its other name (it switched between want_peer and a
         * want list, or wants another peer): renamed, not replaced, so its slot stays. */
        if (idx < 0 && occupant >= 0 && !shared && !c->regs[occupant].shared &&
            memcmp(c->regs[occupant].network_id, network, NETWORK_ID_LEN) == 0 &&
            memcmp(c->regs[occupant].node_id, m->node_id, NOISE_PUBLIC_KEY_LEN) == 0) {
                idx = occupant;
                occupant = -1;
                chain_remove(c, idx, CHAIN_NAME);
                memcpy(c->regs[idx].want_peer, m->want_peer, NOISE_PUBLIC_KEY_LEN);
                chain_insert(c, idx, CHAIN_NAME);
                c->stats.renamed++;
        }
        if (idx < 0) {
                size_t freed = occupant >= 0 ? 1 : 0;

                /* Full: expired registrations may still sit in the table (the occupant, live,
                 * survives the sweep). */
                if (c->count - freed >= c->max)
                        sweep_if_due(c, now);
                if (c->count - freed >= c->max ||
                    (shared && network_count(c, network, occupant, now) >=
                                       RELAY_MAX_NETWORK_REGISTRATIONS)) {
                        c->stats.dropped_full++;
                        return -ENOSPC;
                }
        }
        if (occupant >= 0) {
                registration_remove(c, occupant);
                c->stats.replaced++;
        }

        if (idx < 0) {
                idx = registration_alloc(c);
                if (idx < 0) { /* cannot happen: room was checked above */
                        c->stats.dropped_full++;
                        return -ENOSPC;
                }
                r = &c->regs[idx];
                r->used = true;
                r->shared = shared;
                memcpy(r->network_id, network, NETWORK_ID_LEN);
                memcpy(r->node_id, m->node_id, NOISE_PUBLIC_KEY_LEN);
                memcpy(r->want_peer, m->want_peer, NOISE_PUBLIC_KEY_LEN);
                r->slot = new_slot(c);
                r->addr = *src;
                memcpy(r->addr_key, addr_key, ADDR_KEY_LEN);
                r->bw_tokens = bandwidth_cap(c);
                r->bw_last_ns = now;
                chain_insert(c, idx, CHAIN_ADDR);
                chain_insert(c, idx, CHAIN_SLOT);
                chain_insert(c, idx, CHAIN_NAME);
                if (shared) {
                        chain_insert(c, idx, CHAIN_NET);
                        c->shared_count++;
                }
                c->count++;
                c->stats.registrations = c->count;
        } else {
                r = &c->regs[idx];
                if (memcmp(r->addr_key, addr_key, ADDR_KEY_LEN) != 0) {
                        /* NAT rebinding: same node, new address; the slot stays. */
                        chain_remove(c, idx, CHAIN_ADDR);
                        r->addr = *src;
                        memcpy(r->addr_key, addr_key, ADDR_KEY_LEN);
                        chain_insert(c, idx, CHAIN_ADDR);
                        c->stats.moved++;
                }
        }
        r->addr.via_relay = false;
        r->addr.relay_slot = 0;
        r->n_candidates = m->n_candidates;
        memcpy(r->candidates, m->candidates, sizeof(r->candidates));
        r->n_wants = (uint8_t) v.n_wants;
        memset(r->wants, 0, sizeof(r->wants));
        if (v.list)
                memcpy(r->wants, v.list->wants, v.n_wants * NOISE_PUBLIC_KEY_LEN);
        memcpy(r->client_nonce, m->client_nonce, RELAY_CLIENT_NONCE_LEN);
        r->expires_ns = now + (uint64_t) RELAY_REGISTRATION_LIFETIME * NSEC_PER_SEC;

        struct message_relay_registered *reg =
                (struct message_relay_registered *) action_reply(a, src, sizeof(*reg));
        if (reg) {
                reg->header.type = MESSAGE_RELAY_REGISTERED;
                put_le32(&reg->slot, r->slot);
                candidate_from_key(&reg->observed, r->addr_key);
                reg->lifetime = htole16(RELAY_REGISTRATION_LIFETIME);
                put_auth((uint8_t *) reg, sizeof(*reg), r->client_nonce);
                c->stats.registered++;
        }

        /* Every pair that may talk learns of each other, on every registration, so a node learns
         * of peers that register after it. Identity mode: for each wanted key, the two
         * registrations it may hold that can want us: (network, it, us) and its want list
         * (network, it, zeros); at most 2 * RELAY_MAX_WANTS pairs. Shared-key mode: the
         * network's chain (at most RELAY_MAX_NETWORK_REGISTRATIONS). Either way the actions
         * cannot overflow (relay-core.h). */
        if (!shared) {
                size_t n = r->n_wants ? r->n_wants : 1;
                for (size_t i = 0; i < n; i++) {
                        const uint8_t *w = r->n_wants ? r->wants[i] : r->want_peer;
                        introduce(c, a, r, find_by_name(c, r->network_id, w, r->node_id), now);
                        introduce(c, a, r, find_by_name(c, r->network_id, w, zero_key), now);
                }
        } else {
                for (int32_t p = c->buckets[CHAIN_NET][r->hash[CHAIN_NET] & c->bucket_mask]; p >= 0;
                     p = c->regs[p].next[CHAIN_NET])
                        if (live(&c->regs[p], now) && may_talk(r, &c->regs[p])) {
                                send_peer(c, a, r, &c->regs[p]);
                                send_peer(c, a, &c->regs[p], r);
                        }
        }
        return MESSAGE_RELAY_REGISTER;
}

/* ---- RELAY_DATA --------------------------------------------------------------------------- */

static int handle_data(struct relay_core *c, uint8_t *buf, size_t len,
                       const uint8_t addr_key[ADDR_KEY_LEN], uint64_t now,
                       struct relay_actions *a) {
        struct registration *from, *to;
        int32_t i;

        i = find_by_addr(c, addr_key);
        if (i < 0 || !live(&c->regs[i], now)) {
                c->stats.dropped_unregistered++;
                return -ENOENT;
        }
        from = &c->regs[i];
        i = find_by_slot(c, get_le32(buf + offsetof(struct message_relay_data, slot)));
        if (i < 0 || !live(&c->regs[i], now)) {
                c->stats.dropped_unregistered++;
                return -ENOENT;
        }
        to = &c->regs[i];
        if (!may_talk(from, to)) {
                c->stats.dropped_unpaired++;
                return -ESRCH;
        }
        if (c->bandwidth > 0 && !bucket_take(&from->bw_tokens, &from->bw_last_ns, c->bandwidth,
                                             bandwidth_cap(c), (uint64_t) len * TOKEN_UNIT, now)) {
                c->stats.dropped_bandwidth++;
                return -ENOBUFS;
        }

        /* The one field the relay rewrites: destination slot becomes the source's. */
        put_le32(buf + offsetof(struct message_relay_data, slot), from->slot);
        a->send[a->n++] = (struct relay_send){
                .dest = to->addr,
                .data = buf,
                .len = len,
                .forward = true,
        };
        c->stats.forwarded++;
        c->stats.forwarded_bytes += len;
        return MESSAGE_RELAY_DATA;
}

/* ---- STUN --------------------------------------------------------------------------------- */

/* A 420 error naming the attribute we cannot honour (RFC 8489 section 14.9: UNKNOWN-ATTRIBUTES). */
static int stun_unknown_attribute(uint8_t *out, size_t max, const uint8_t *tid, uint16_t attr) {
        static const char reason[] = "Unknown Attribute";
        uint8_t ec[4 + sizeof(reason) - 1] = {0, 0, 4, 20};
        uint8_t attr_be[2];
        int n;

        memcpy(ec + 4, reason, sizeof(reason) - 1);
        put_be16(attr_be, attr);
        n = stun_build_header(out, max, STUN_BINDING_ERROR, tid);
        if (n >= 0)
                n = stun_add_bytes(out, (size_t) n, max, STUN_ATTR_ERROR_CODE, ec, sizeof(ec));
        if (n >= 0)
                n = stun_add_bytes(out, (size_t) n, max, STUN_ATTR_UNKNOWN_ATTRIBUTES, attr_be,
                                   sizeof(attr_be));
        if (n >= 0)
                n = stun_add_fingerprint(out, (size_t) n, max);
        return n;
}

/* XOR-MAPPED-ADDRESS and FINGERPRINT only (stun_build_binding_success also adds SOFTWARE): 40
 * bytes for IPv4, 52 for IPv6, so a relay answering strangers amplifies as little as it can. */
static int stun_binding_success(uint8_t *out, size_t max, const uint8_t *tid,
                                const struct sockaddr *mapped, socklen_t mapped_len) {
        int n;

        n = stun_build_header(out, max, STUN_BINDING_SUCCESS, tid);
        if (n >= 0)
                n = stun_add_address(out, (size_t) n, max, STUN_ATTR_XOR_MAPPED_ADDRESS, tid,
                                     mapped, mapped_len);
        if (n >= 0)
                n = stun_add_fingerprint(out, (size_t) n, max);
        return n;
}

/* STUN answers a source address nobody verified. A source that holds a registration echoed a
 * cookie there, so it gets its answer; any other is under the global budget for unauthenticated
 * replies and, when the answer is larger than the request (a 20-byte request gets 40 or 52
 * bytes), under the smaller global budget of amplifying replies: a spoofed flood reflects at
 * most RELAY_AMPLIFY_REPLY_RATE answers a second from this relay, whatever it sends. */
static int handle_stun(struct relay_core *c, const uint8_t *buf, size_t len,
                       const struct endpoint *src, const uint8_t addr_key[ADDR_KEY_LEN],
                       bool verified, uint64_t now, struct relay_actions *a) {
        struct stun_message m;
        union sockaddr_union mapped = {};
        socklen_t mapped_len;
        uint8_t *out;
        int n;

        if (stun_parse(buf, len, &m) < 0 || m.type != STUN_BINDING_REQUEST) {
                c->stats.dropped_invalid++;
                return -EBADMSG;
        }
        /* The source as the client knows it: IPv4 for v4 and v4-mapped. */
        if (key_is_v4(addr_key)) {
                mapped.in.sin_family = AF_INET;
                memcpy(&mapped.in.sin_addr, addr_key + 12, 4);
                memcpy(&mapped.in.sin_port, addr_key + 16, 2);
                mapped_len = sizeof(mapped.in);
        } else {
                mapped.in6 = src->addr.in6;
                mapped_len = sizeof(mapped.in6);
        }

        out = action_reply(a, src, STUN_MAX_MESSAGE_LEN);
        if (!out)
                return -ENOBUFS;
        if (m.unknown_required)
                n = stun_unknown_attribute(out, STUN_MAX_MESSAGE_LEN, m.transaction_id,
                                           m.unknown_required);
        else if (m.has_change_request &&
                 (m.change_flags & (STUN_CHANGE_IP | STUN_CHANGE_PORT)) != 0)
                /* No RFC 5780 here: one address, one port (and no OTHER-ADDRESS offered). */
                n = stun_unknown_attribute(out, STUN_MAX_MESSAGE_LEN, m.transaction_id,
                                           STUN_ATTR_CHANGE_REQUEST);
        else
                n = stun_binding_success(out, STUN_MAX_MESSAGE_LEN, m.transaction_id, &mapped.sa,
                                         mapped_len);
        if (n < 0) {
                a->n--;
                a->used -= STUN_MAX_MESSAGE_LEN;
                c->stats.dropped_invalid++;
                return n;
        }
        if (!verified &&
            (((size_t) n > len && !global_allow(&c->amplify_tokens, &c->amplify_last_ns,
                                                RELAY_AMPLIFY_REPLY_RATE, now)) ||
             !global_allow(&c->unauth_tokens, &c->unauth_last_ns, RELAY_UNAUTH_REPLY_RATE, now))) {
                a->n--;
                a->used -= STUN_MAX_MESSAGE_LEN;
                c->stats.dropped_unauth_budget++;
                return -ENOBUFS;
        }
        a->send[a->n - 1].len = (size_t) n;
        a->used -= STUN_MAX_MESSAGE_LEN - (size_t) n;
        c->stats.stun++;
        return RELAY_HANDLED_STUN | (m.type & 0xff);
}

/* ---- entry points ------------------------------------------------------------------------- */

int relay_core_receive(struct relay_core *c, uint8_t *buf, size_t len, const struct endpoint *src,
                       uint64_t now, struct relay_actions *ret) {
        uint8_t addr_key[ADDR_KEY_LEN];

        ret->n = 0;
        ret->used = 0;
        c->stats.packets_in++;
        rotate(c, now);
        if (!buf || !src || !make_addr_key(addr_key, src)) {
                c->stats.dropped_invalid++;
                return -EBADMSG;
        }
        /* The per-source packet rate guards what costs work or answers (registrations, STUN,
         * strangers). Tunnel traffic of a registered node is not counted against it: a single
         * TCP flow through the relay needs tens of thousands of datagrams a second, and that
         * traffic is bounded by the per-registration bandwidth limit (--relay-rate) instead. */
        enum message_type type = message_classify(buf, len);
        int32_t holder = find_by_addr(c, addr_key);
        bool registered = holder >= 0 && live(&c->regs[holder], now);
        const struct generation *g = NULL;

        /* A REGISTER that echoes a valid cookie comes from its source address for real: it is
         * charged to a bucket of its own, so that datagrams spoofed with a node's address use
         * up the ordinary bucket of that address, never the node's registrations. */
        if (type == MESSAGE_RELAY_REGISTER)
                g = cookie_generation(c, (const struct message_relay_register *) buf, addr_key, now);
        if (!(type == MESSAGE_RELAY_DATA && holder >= 0) &&
            !rate_allow(c, g ? c->verified_rates : c->rates, addr_key, now)) {
                c->stats.dropped_rate++;
                return -ENOBUFS;
        }

        switch (type) {
        case MESSAGE_RELAY_REGISTER:
                return handle_register(c, buf, len, src, addr_key, g, registered, now, ret);
        case MESSAGE_RELAY_DATA:
                return handle_data(c, buf, len, addr_key, now, ret);
        case MESSAGE_INVALID:
                if (stun_is_message(buf, len))
                        return handle_stun(c, buf, len, src, addr_key, registered, now, ret);
                break;
        default:
                /* Well-formed, but nothing a node sends to the relay. */
                break;
        }
        c->stats.dropped_invalid++;
        return -EBADMSG;
}

unsigned relay_core_expire(struct relay_core *c, uint64_t now) {
        unsigned n = 0;

        rotate(c, now);
        c->last_sweep_ns = now;
        for (uint32_t i = 0; i < c->high; i++)
                if (c->regs[i].used && !live(&c->regs[i], now)) {
                        registration_remove(c, (int32_t) i);
                        n++;
                }
        c->stats.expired += n;
        return n;
}

int relay_core_new(const struct relay_core_config *config, uint64_t now, struct relay_core **ret) {
        _cleanup_(relay_core_freep) struct relay_core *c = NULL;
        uint32_t nb, nrate;

        if (!config || config->max_registrations == 0 ||
            config->max_registrations > RELAY_MAX_REGISTRATIONS_LIMIT ||
            config->rate > RELAY_RATE_MAX || config->bandwidth > RELAY_BANDWIDTH_MAX ||
            config->n_allowed_networks > RELAY_MAX_ALLOWED_NETWORKS ||
            (config->n_allowed_networks > 0 && !config->allowed_networks))
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->max = config->max_registrations;
        c->rate = config->rate;
        c->bandwidth = config->bandwidth;
        c->free_head = -1;
        c->last_sweep_ns = now;
        if (config->n_allowed_networks > 0) {
                c->allowed = calloc(config->n_allowed_networks, NETWORK_ID_LEN);
                if (!c->allowed)
                        return -ENOMEM;
                memcpy(c->allowed, config->allowed_networks,
                       config->n_allowed_networks * NETWORK_ID_LEN);
                c->n_allowed = config->n_allowed_networks;
        }

        /* calloc: entries never used stay untouched (and unbacked) however large max is. */
        c->regs = calloc(c->max, sizeof(*c->regs));
        if (!c->regs)
                return -ENOMEM;
        nb = pow2_at_least(2 * (uint64_t) c->max);
        c->bucket_mask = nb - 1;
        for (size_t i = 0; i < _CHAIN_MAX; i++) {
                c->buckets[i] = malloc(nb * sizeof(int32_t));
                if (!c->buckets[i])
                        return -ENOMEM;
                memset(c->buckets[i], 0xff, nb * sizeof(int32_t)); /* all -1 */
        }
        /* Room for four active sources per registration, and never fewer than 4096 sets. */
        nrate = pow2_at_least(MAX((uint64_t) 4096, 4 * (uint64_t) c->max / RATE_WAYS));
        c->rate_mask = nrate - 1;
        c->rates = calloc((size_t) nrate * RATE_WAYS, sizeof(*c->rates));
        c->verified_rates = calloc((size_t) nrate * RATE_WAYS, sizeof(*c->verified_rates));
        if (!c->rates || !c->verified_rates)
                return -ENOMEM;
        c->unauth_tokens = 2 * (uint64_t) RELAY_UNAUTH_REPLY_RATE * TOKEN_UNIT;
        c->amplify_tokens = 2 * (uint64_t) RELAY_AMPLIFY_REPLY_RATE * TOKEN_UNIT;
        c->unauth_last_ns = c->amplify_last_ns = now;
        randombytes_buf(c->hash_key, sizeof(c->hash_key));
        generation_new(&c->gen[0], now);

        *ret = TAKE_PTR(c);
        return 0;
}

struct relay_core *relay_core_free(struct relay_core *c) {
        if (!c)
                return NULL;
        if (c->regs) {
                for (uint32_t i = 0; i < c->high; i++)
                        sodium_memzero(&c->regs[i], sizeof(c->regs[i]));
                free(c->regs);
        }
        for (size_t i = 0; i < _CHAIN_MAX; i++)
                free(c->buckets[i]);
        free(c->rates);
        free(c->verified_rates);
        free(c->allowed);
        sodium_memzero(c->gen, sizeof(c->gen));
        sodium_memzero(c->hash_key, sizeof(c->hash_key));
        free(c);
        return NULL;
}

const struct relay_stats *relay_core_stats(const struct relay_core *c) {
        return &c->stats;
}

size_t relay_core_count(const struct relay_core *c) {
        return c->count;
}

bool relay_core_lookup_slot(const struct relay_core *c, uint32_t slot, uint64_t now,
                            struct endpoint *ret_addr, uint8_t ret_node_id[NOISE_PUBLIC_KEY_LEN]) {
        int32_t i = slot ? find_by_slot(c, slot) : -1;

        if (i < 0 || !live(&c->regs[i], now))
                return false;
        if (ret_addr)
                *ret_addr = c->regs[i].addr;
        if (ret_node_id)
                memcpy(ret_node_id, c->regs[i].node_id, NOISE_PUBLIC_KEY_LEN);
        return true;
}

/* Each used entry is reachable once through each of its chains at the bucket of its stored
 * hash (and that hash is right); chain lengths add up to the counts; slots, addresses and names
 * are unique; the free list holds exactly the unused entries below high. */
bool relay_core_check_invariants(const struct relay_core *c) {
        size_t used = 0, shared = 0, free_n = 0;

        for (uint32_t i = 0; i < c->high; i++) {
                const struct registration *r = &c->regs[i];

                if (!r->used)
                        continue;
                used++;
                if (r->shared) {
                        shared++;
                        if (!is_zero(r->want_peer, NOISE_PUBLIC_KEY_LEN))
                                return false;
                } else if (is_zero(r->want_peer, NOISE_PUBLIC_KEY_LEN) == (r->n_wants == 0))
                        return false; /* identity: want_peer, or else a want list */
                if (r->n_wants > RELAY_MAX_WANTS || (r->shared && r->n_wants))
                        return false;
                for (size_t k = 1; k < r->n_wants; k++)
                        if (memcmp(r->wants[k - 1], r->wants[k], NOISE_PUBLIC_KEY_LEN) >= 0)
                                return false;
                if (r->slot == 0 || r->n_candidates > RELAY_MAX_CANDIDATES)
                        return false;
                for (size_t k = 0; k < _CHAIN_MAX; k++) {
                        size_t seen = 0;

                        if (k == CHAIN_NET && !r->shared)
                                continue;
                        if (r->hash[k] != chain_hash(c, r, (enum chain) k))
                                return false;
                        for (int32_t j = c->buckets[k][r->hash[k] & c->bucket_mask]; j >= 0;
                             j = c->regs[j].next[k]) {
                                if ((uint32_t) j >= c->high || !c->regs[j].used)
                                        return false;
                                if ((uint32_t) j == i)
                                        seen++;
                                if (seen > 1)
                                        return false;
                        }
                        if (seen != 1)
                                return false;
                }
                if (find_by_slot(c, r->slot) != (int32_t) i ||
                    find_by_addr(c, r->addr_key) != (int32_t) i ||
                    find_by_name(c, r->network_id, r->node_id, r->want_peer) != (int32_t) i)
                        return false;
        }
        for (int32_t j = c->free_head; j >= 0; j = c->regs[j].next[CHAIN_SLOT]) {
                if ((uint32_t) j >= c->high || c->regs[j].used || free_n > c->high)
                        return false;
                free_n++;
        }
        return used == c->count && shared == c->shared_count && used + free_n == c->high &&
               c->count <= c->max && c->stats.registrations == c->count;
}
