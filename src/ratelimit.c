/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "messages.h"
#include "ratelimit.h"

_Static_assert((RATELIMIT_TABLE_SIZE & (RATELIMIT_TABLE_SIZE - 1)) == 0, "power of two");
_Static_assert(RATELIMIT_PROBES <= RATELIMIT_TABLE_SIZE, "probes");

/* Tokens are nanoseconds of credit: a packet costs PACKET_COST, the bucket holds TOKEN_MAX. */
#define PACKET_COST (NSEC_PER_SEC / RATELIMIT_PACKETS_PER_SECOND)
#define TOKEN_MAX (PACKET_COST * RATELIMIT_BURST)
/* A bucket untouched this long is full again, which is what a new bucket is: reuse the slot. */
#define ENTRY_STALE_NS NSEC_PER_SEC
_Static_assert(TOKEN_MAX <= ENTRY_STALE_NS, "a stale bucket must be a full one");

struct source {
        uint8_t family; /* 4, 6, or 0 for anything else */
        uint8_t addr[8]; /* IPv4 address, or the IPv6 /64 */
};

struct entry {
        struct source src;
        bool used;
        uint64_t last_ns, tokens;
};

struct ratelimit {
        uint8_t hash_key[crypto_shorthash_KEYBYTES];
        struct entry table[RATELIMIT_TABLE_SIZE];
};

int ratelimit_new(struct ratelimit **ret) {
        struct ratelimit *rl = calloc(1, sizeof(*rl));

        if (!rl)
                return -ENOMEM;
        randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
        *ret = rl;
        return 0;
}

struct ratelimit *ratelimit_free(struct ratelimit *rl) {
        if (rl) {
                /* Who talked to us lately is nobody else's business. */
                sodium_memzero(rl, sizeof(*rl));
                free(rl);
        }
        return NULL;
}

static struct source source_of(const struct sockaddr *sa, socklen_t len) {
        struct source s = {};

        if (sa && sa->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
                s.family = 4;
                memcpy(s.addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        } else if (sa && sa->sa_family == AF_INET6 &&
                   len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        /* A dual-stack socket: the same host as on a v4 socket. */
                        s.family = 4;
                        memcpy(s.addr, a->s6_addr + 12, 4);
                } else {
                        s.family = 6;
                        memcpy(s.addr, a->s6_addr, 8);
                }
        }
        return s;
}

static bool stale(const struct entry *e, uint64_t now) {
        /* A clock behind last_ns (it is monotonic, so only a caller's mistake) never ages an
         * entry: no free tokens from it. */
        return !e->used || (now >= e->last_ns && now - e->last_ns >= ENTRY_STALE_NS);
}

bool ratelimit_allow(struct ratelimit *rl, const struct sockaddr *sa, socklen_t len,
                     uint64_t now) {
        struct source src = source_of(sa, len);
        uint8_t h[crypto_shorthash_BYTES];
        struct entry *e = NULL, *free_slot = NULL;
        uint64_t start;

        crypto_shorthash(h, (const uint8_t *) &src, sizeof(src), rl->hash_key);
        memcpy(&start, h, sizeof(start));
        for (unsigned i = 0; i < RATELIMIT_PROBES; i++) {
                struct entry *c = &rl->table[(start + i) & (RATELIMIT_TABLE_SIZE - 1)];
                if (c->used && memcmp(&c->src, &src, sizeof(src)) == 0) {
                        e = c;
                        break;
                }
                if (!free_slot && stale(c, now))
                        free_slot = c;
        }

        if (!e || stale(e, now)) {
                /* A new (or forgotten) source: a full bucket, minus this packet. */
                if (!e)
                        e = free_slot;
                if (!e)
                        return false; /* the table is full here: the hard cap holds */
                *e = (struct entry){ .src = src, .used = true, .last_ns = now,
                                     .tokens = TOKEN_MAX - PACKET_COST };
                return true;
        }

        if (now > e->last_ns) {
                e->tokens += now - e->last_ns;
                if (e->tokens > TOKEN_MAX)
                        e->tokens = TOKEN_MAX;
                e->last_ns = now;
        }
        if (e->tokens < PACKET_COST)
                return false;
        e->tokens -= PACKET_COST;
        return true;
}

size_t ratelimit_count(const struct ratelimit *rl, uint64_t now) {
        size_t n = 0;

        for (size_t i = 0; i < RATELIMIT_TABLE_SIZE; i++)
                n += !stale(&rl->table[i], now);
        return n;
}
