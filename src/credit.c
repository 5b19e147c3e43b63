/* SPDX-License-Identifier: MIT */
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "credit.h"
#include "messages.h"

#define IDLE_NS ((uint64_t) CREDIT_IDLE_SEC * NSEC_PER_SEC)
#define INTERVAL_NS ((uint64_t) CREDIT_INTERVAL_MS * NSEC_PER_MSEC)
/* No source holds more than this: a long stream of stale data buys a few answers, not a store
 * of credit to spend later in a burst. */
#define CREDIT_MAX (4 * sizeof(struct message_handshake_initiation))

struct source {
        uint8_t family; /* 4 or 6 */
        uint8_t zero;
        uint16_t port;
        uint8_t addr[16];
};

struct entry {
        struct source src;
        bool used, granted;
        uint64_t last_ns, last_grant_ns, credit;
};

struct credit {
        uint8_t hash_key[crypto_shorthash_KEYBYTES];
        struct entry table[CREDIT_TABLE_SIZE];
};

int credit_new(struct credit **ret) {
        struct credit *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        randombytes_buf(c->hash_key, sizeof(c->hash_key));
        *ret = c;
        return 0;
}

struct credit *credit_free(struct credit *c) {
        if (c) {
                sodium_memzero(c, sizeof(*c));
                free(c);
        }
        return NULL;
}

static bool source_of(const struct sockaddr *sa, socklen_t len, struct source *ret) {
        struct source s = {};

        if (sa && sa->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                s.family = 4;
                s.port = in->sin_port;
                memcpy(s.addr, &in->sin_addr, 4);
        } else if (sa && sa->sa_family == AF_INET6 &&
                   len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                s.family = 6;
                s.port = in6->sin6_port;
                memcpy(s.addr, &in6->sin6_addr, 16);
        } else
                return false;
        *ret = s;
        return true;
}

static bool idle(const struct entry *e, uint64_t now) {
        return !e->used || (now >= e->last_ns && now - e->last_ns >= IDLE_NS);
}

bool credit_earn(struct credit *c, const struct sockaddr *sa, socklen_t len, size_t bytes,
                 size_t cost, uint64_t now) {
        uint8_t h[crypto_shorthash_BYTES];
        struct entry *e = NULL, *free_slot = NULL;
        struct source src;
        uint64_t start;

        if (!source_of(sa, len, &src))
                return false;
        crypto_shorthash(h, (const uint8_t *) &src, sizeof(src), c->hash_key);
        memcpy(&start, h, sizeof(start));
        for (unsigned i = 0; i < CREDIT_PROBES; i++) {
                struct entry *x = &c->table[(start + i) & (CREDIT_TABLE_SIZE - 1)];
                if (x->used && memcmp(&x->src, &src, sizeof(src)) == 0) {
                        e = x;
                        break;
                }
                if (!free_slot && idle(x, now))
                        free_slot = x;
        }
        if (!e || idle(e, now)) {
                if (!e)
                        e = free_slot;
                if (!e)
                        return false; /* no room: the hard cap holds, nothing is earned */
                *e = (struct entry){ .src = src, .used = true };
        }
        e->last_ns = now;
        e->credit += bytes;
        if (e->credit > CREDIT_MAX)
                e->credit = CREDIT_MAX;
        if (e->credit < cost || (e->granted && now - e->last_grant_ns < INTERVAL_NS))
                return false;
        e->credit -= cost;
        e->granted = true;
        e->last_grant_ns = now;
        return true;
}
