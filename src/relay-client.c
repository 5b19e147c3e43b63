/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sodium.h>
#include <stdio.h>

#include "candidate.h"
#include "hostport.h"
#include "keys.h"
#include "log.h"
#include "path.h"
#include "relay-client.h"
#include "resolve.h"

/* No REGISTERED this long after a REGISTER: send again (the relay may be down or restarting). */
#define RELAY_RETRY_NSEC (2 * NSEC_PER_SEC)

struct relay_client {
        struct relay_client_node node;
        char *name; /* "host:port" as configured */
        char *host;
        uint16_t port;
        struct resolve_query *resolve;
        struct endpoint addr; /* len 0 until resolved */

        uint8_t node_id[NOISE_PUBLIC_KEY_LEN];
        uint8_t want_peer[NOISE_PUBLIC_KEY_LEN];
        /* Identity mode: the peers our latest REGISTER named (want_peer, or its want list). */
        uint8_t wants[RELAY_MAX_WANTS][NOISE_PUBLIC_KEY_LEN];
        size_t n_wants;
        /* Whether the relay takes want lists (messages.h): it answered one (lists_ok), or how
         * many went unanswered in a row; after RELAY_WANTS_FALLBACK_TRIES we register for one
         * peer (a relay without lists), and probe with a list every re-registration
         * (list_probe: the last REGISTER was such a probe). */
        bool lists_ok, list_probe, fallback_logged;
        unsigned lists_unanswered;
        uint8_t network_id[NETWORK_ID_LEN];
        bool identity;
        /* Shared-key mode: node_id's per-run private key, and the psk's membership key pair
         * (messages.h: the relay holds only network_key). */
        uint8_t node_private[NOISE_PUBLIC_KEY_LEN];
        uint8_t network_key[RELAY_NETWORK_KEY_LEN];
        uint8_t member_secret[crypto_sign_SECRETKEYBYTES];

        uint8_t cookie[COOKIE_LEN];
        uint8_t relay_ephemeral[NOISE_PUBLIC_KEY_LEN];
        bool have_cookie;

        /* The client nonces of our last REGISTERs (a ring; all zero: unused), and whether a
         * CHALLENGE already answered each: replies are taken only under one of them. */
        uint8_t nonces[RELAY_CLIENT_NONCES][RELAY_CLIENT_NONCE_LEN];
        bool challenged[RELAY_CLIENT_NONCES];
        bool nonce_list[RELAY_CLIENT_NONCES]; /* sent in a REGISTER with a want list */
        unsigned next_nonce;
        struct log_ratelimit ratelimit; /* rejected control messages: per packet */

        bool registered;
        uint32_t slot;
        uint64_t last_sent_ns, last_registered_ns;
        bool refresh;
};

static void on_resolved(struct resolve_query *q, int r, int gai_error,
                        const struct endpoint *result, void *userdata) {
        struct relay_client *rc = userdata;
        char buf[ENDPOINT_STRLEN];

        rc->resolve = NULL;
        if (r < 0) {
                log_warning("cannot resolve relay '%s': %s; retrying", rc->name,
                            gai_error ? gai_strerror(gai_error) : strerror(-r));
                rc->last_sent_ns = now_ns(); /* the tick retries after RELAY_REGISTER_INTERVAL */
                return;
        }
        rc->addr = *result;
        if (rc->node.on_resolved)
                rc->node.on_resolved(rc->node.userdata, &rc->addr);
        log_debug("relay %s is %s", rc->name, endpoint_to_string(&rc->addr, buf));
        relay_client_tick(rc, now_ns());
}

int relay_client_new(const struct relay_client_node *node, const char *host, uint16_t port,
                     struct relay_client **ret) {
        struct relay_client *rc;
        int r;

        rc = calloc(1, sizeof(*rc));
        if (!rc)
                return -ENOMEM;
        rc->node = *node;
        rc->port = port;
        rc->host = strdup(host);
        if (!rc->host || !(rc->name = hostport_join(host, port))) {
                relay_client_free(rc);
                return -ENOMEM;
        }
        rc->ratelimit = (struct log_ratelimit) LOG_RATELIMIT_INIT(10, 5);
        rc->identity = node->keys->pattern == NOISE_PATTERN_IKPSK2;
        if (rc->identity) {
                memcpy(rc->node_id, node->keys->static_public, sizeof(rc->node_id));
                memcpy(rc->want_peer, node->peer_key, sizeof(rc->want_peer));
        } else {
                uint8_t seed[crypto_sign_SEEDBYTES];

                if (!node->psk) { /* shared-key mode always has one */
                        relay_client_free(rc);
                        return -EINVAL;
                }
                /* A key pair of our own for this run: node_id, proven to the relay. */
                crypto_box_keypair(rc->node_id, rc->node_private);
                /* The membership key pair, the same on every holder of the psk. */
                crypto_generichash(seed, sizeof(seed), (const uint8_t *) LABEL_RELAY_MEMBER,
                                   sizeof(LABEL_RELAY_MEMBER) - 1, node->psk, NOISE_PSK_LEN);
                crypto_sign_seed_keypair(rc->network_key, rc->member_secret, seed);
                sodium_memzero(seed, sizeof(seed));
        }
        keys_network_id(node->psk, rc->network_id);

        r = resolve_start(node->event, rc->host, rc->port, node->family, on_resolved, rc,
                          &rc->resolve);
        if (r < 0) {
                relay_client_free(rc);
                return r;
        }
        *ret = rc;
        return 0;
}

struct relay_client *relay_client_free(struct relay_client *rc) {
        if (!rc)
                return NULL;
        rc->resolve = resolve_cancel(rc->resolve);
        free(rc->host);
        free(rc->name);
        sodium_memzero(rc, sizeof(*rc));
        free(rc);
        return NULL;
}

const struct endpoint *relay_client_address(const struct relay_client *rc) {
        return rc && rc->addr.len ? &rc->addr : NULL;
}

const char *relay_client_name(const struct relay_client *rc) {
        return rc ? rc->name : "";
}

bool relay_client_registered(const struct relay_client *rc) {
        return rc && rc->registered;
}

const uint8_t *relay_client_node_id(const struct relay_client *rc) {
        return rc->node_id;
}

/* Is p reached over a direct session (the relay is not what it needs)? */
static bool direct_session(struct peer *p) {
        struct endpoint e;

        if (!atomic_load(&p->current))
                return false;
        peer_get_endpoint(p, &e);
        return e.len && !e.via_relay;
}

size_t relay_client_select_wants(struct peer *(*at)(void *userdata, size_t i), void *userdata,
                                 const uint8_t own_key[NOISE_PUBLIC_KEY_LEN],
                                 uint8_t (*out)[NOISE_PUBLIC_KEY_LEN], size_t max) {
        size_t n = 0;
        struct peer *p;

        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; n < max && (p = at(userdata, i)); i++) {
                        bool dup = false;

                        if (direct_session(p) != (pass == 1) ||
                            sodium_is_zero(p->public_key, NOISE_PUBLIC_KEY_LEN) ||
                            memcmp(p->public_key, own_key, NOISE_PUBLIC_KEY_LEN) == 0)
                                continue;
                        for (size_t j = 0; j < n && !dup; j++)
                                dup = memcmp(out[j], p->public_key, NOISE_PUBLIC_KEY_LEN) == 0;
                        if (!dup)
                                memcpy(out[n++], p->public_key, NOISE_PUBLIC_KEY_LEN);
                }
        return n;
}

static int key_cmp(const void *a, const void *b) {
        return memcmp(a, b, NOISE_PUBLIC_KEY_LEN);
}

static void send_register(struct relay_client *rc, uint64_t now) {
        _Alignas(struct message_relay_register) uint8_t buf[RELAY_REGISTER_MAX_LEN] = {};
        struct message_relay_register *mp = (struct message_relay_register *) buf;
        struct relay_want_list *list = (struct relay_want_list *) (buf + sizeof(*mp));
        size_t len = sizeof(*mp), list_len = 0;
        uint8_t shared[32], key[32];
        bool use_list = false;
        unsigned slot;

        if (!rc->addr.len)
                return;
        put_le32(&mp->header, MESSAGE_RELAY_REGISTER);
        memcpy(mp->network_id, rc->network_id, sizeof(mp->network_id));
        memcpy(mp->node_id, rc->node_id, sizeof(mp->node_id));
        if (rc->identity) {
                /* The peers we want: one in want_peer (the REGISTER every relay knows), several
                 * in a want list, in ascending order (messages.h). */
                rc->n_wants = rc->node.peer_at
                                      ? relay_client_select_wants(rc->node.peer_at,
                                                                  rc->node.userdata, rc->node_id,
                                                                  rc->wants, RELAY_MAX_WANTS)
                                      : 0;
                if (rc->n_wants == 0 && !sodium_is_zero(rc->want_peer, sizeof(rc->want_peer))) {
                        memcpy(rc->wants[0], rc->want_peer, sizeof(rc->wants[0]));
                        rc->n_wants = 1;
                }
                /* A relay that never answers a want list (one built before them drops it as
                 * malformed): the one peer that needs the relay most, in the form any relay
                 * takes, as a node did before want lists. */
                use_list = rc->n_wants > 1 &&
                           (rc->lists_ok || rc->lists_unanswered < RELAY_WANTS_FALLBACK_TRIES);
                if (rc->n_wants > 1 && !use_list && !rc->fallback_logged) {
                        log_notice("relay %s answers no REGISTER with a want list (built "
                                   "before them?): registering for one peer only",
                                   rc->name);
                        rc->fallback_logged = true;
                }
                if (rc->n_wants > 1 && !rc->lists_ok && use_list)
                        rc->lists_unanswered++;
                if (!use_list && rc->n_wants > 0)
                        memcpy(mp->want_peer, rc->wants[0], sizeof(mp->want_peer));
                else if (use_list) {
                        qsort(rc->wants, rc->n_wants, sizeof(rc->wants[0]), key_cmp);
                        list->n_wants = (uint8_t) rc->n_wants;
                        memcpy(list->wants, rc->wants, rc->n_wants * sizeof(rc->wants[0]));
                        list_len = RELAY_REGISTER_WANTS_LEN(rc->n_wants) - sizeof(*mp);
                        len += list_len;
                }
        } else
                memcpy(mp->network_key, rc->network_key, sizeof(mp->network_key));
        mp->n_candidates = (uint8_t) candidates_gather(rc->node.public_endpoint, rc->node.tap_name,
                                                     rc->node.family, rc->node.port, mp->candidates,
                                                     RELAY_MAX_CANDIDATES);
        /* A fresh nonce for every REGISTER: the replies to it must carry a MAC under it. */
        slot = rc->next_nonce++ % RELAY_CLIENT_NONCES;
        randombytes_buf(rc->nonces[slot], RELAY_CLIENT_NONCE_LEN);
        rc->challenged[slot] = false;
        rc->nonce_list[slot] = use_list;
        memcpy(mp->client_nonce, rc->nonces[slot], sizeof(mp->client_nonce));
        if (rc->have_cookie) {
                memcpy(mp->cookie, rc->cookie, sizeof(mp->cookie));
                memcpy(mp->relay_ephemeral, rc->relay_ephemeral, sizeof(mp->relay_ephemeral));
                /* Prove we hold node_id's private key (messages.h): the static key in identity
                 * mode, this run's key in shared-key mode. */
                if (crypto_scalarmult(
                            shared, rc->identity ? rc->node.keys->static_private : rc->node_private,
                            rc->relay_ephemeral) == 0) {
                        crypto_generichash_state st;
                        crypto_generichash_init(&st, NULL, 0, sizeof(key));
                        crypto_generichash_update(&st, (const uint8_t *) LABEL_RELAY_PROOF,
                                                  sizeof(LABEL_RELAY_PROOF) - 1);
                        crypto_generichash_update(&st, shared, sizeof(shared));
                        crypto_generichash_final(&st, key, sizeof(key));
                        /* Over the REGISTER up to the proof and the want list (messages.h). */
                        crypto_generichash_init(&st, key, sizeof(key), sizeof(mp->proof));
                        crypto_generichash_update(&st, buf,
                                                  offsetof(struct message_relay_register, proof));
                        if (list_len)
                                crypto_generichash_update(&st, (const uint8_t *) list, list_len);
                        crypto_generichash_final(&st, mp->proof, sizeof(mp->proof));
                        sodium_memzero(&st, sizeof(st));
                }
                /* Shared-key mode: the psk's membership signature over all of it. */
                if (!rc->identity)
                        crypto_sign_detached(mp->signature, NULL, buf,
                                             offsetof(struct message_relay_register, signature),
                                             rc->member_secret);
        }
        sodium_memzero(shared, sizeof(shared));
        sodium_memzero(key, sizeof(key));
        (void) path_send(rc->node.sender, NULL, &rc->addr, buf, len);
        rc->last_sent_ns = now;
}

void relay_client_tick(struct relay_client *rc, uint64_t now) {
        if (!rc || !rc->addr.len)
                return;
        if (rc->refresh ||
            (!rc->registered && now - rc->last_sent_ns >= RELAY_RETRY_NSEC) ||
            (rc->list_probe && now - rc->last_sent_ns >= RELAY_RETRY_NSEC) ||
            (rc->registered && now - rc->last_sent_ns >= RELAY_REGISTER_INTERVAL * NSEC_PER_SEC)) {
                bool probe = false;

                /* Registered for one peer because the relay took no want list: ask again
                 * with one once per interval (it may have been upgraded or replaced); if that
                 * goes unanswered too, the one-peer form follows after RELAY_RETRY_NSEC. */
                if (rc->registered && !rc->lists_ok && !rc->list_probe &&
                    rc->lists_unanswered >= RELAY_WANTS_FALLBACK_TRIES) {
                        rc->lists_unanswered = RELAY_WANTS_FALLBACK_TRIES - 1;
                        probe = true;
                }
                rc->refresh = false;
                rc->list_probe = probe;
                send_register(rc, now);
        }
        /* No REGISTERED for a lifetime: the relay lost us (restart, or we moved). */
        if (rc->registered &&
            now - rc->last_registered_ns >= RELAY_REGISTRATION_LIFETIME * NSEC_PER_SEC) {
                log_warning("relay %s stopped answering; registering again", rc->name);
                rc->registered = false;
                rc->have_cookie = false;
                /* Perhaps another relay now: find out again whether it takes want lists. */
                rc->lists_ok = rc->list_probe = rc->fallback_logged = false;
                rc->lists_unanswered = 0;
        }
}

void relay_client_set_want(struct relay_client *rc, const uint8_t key[32]) {
        if (!rc || !rc->identity)
                return;
        memcpy(rc->want_peer, key, sizeof(rc->want_peer));
        rc->refresh = true;
}

bool relay_client_settled(const struct relay_client *rc) {
        return !rc || !rc->addr.len || (rc->registered && !rc->refresh && !rc->list_probe);
}

void relay_client_refresh(struct relay_client *rc) {
        if (rc)
                rc->refresh = true;
}

static void note_rejected(struct relay_client *rc, const char *what, const struct endpoint *from) {
        char buf[ENDPOINT_STRLEN];
        unsigned suppressed;

        if (log_ratelimit_below(&rc->ratelimit, now_ns(), &suppressed))
                log_notice("relay %s: ignoring %s from %s%s", rc->name, what,
                           endpoint_to_string(from, buf),
                           suppressed ? " (and more, not logged)" : "");
}

static void on_peer(struct relay_client *rc, const struct message_relay_peer *m,
                    const struct endpoint *from) {
        int family = rc->node.family;
        struct relay_introduction intro = { .via_relay = rc->addr };
        struct endpoint *list = intro.candidates;
        size_t n = 0, refused = 0;

        /* Identity mode: the relay pairs only mutual wants; ignore anyone else. */
        if (rc->identity) {
                bool wanted = false;
                for (size_t i = 0; i < rc->n_wants && !wanted; i++)
                        wanted = sodium_memcmp(m->node_id, rc->wants[i], 32) == 0;
                if (!wanted)
                        return;
        }
        if (!rc->identity && sodium_is_zero(m->node_id, sizeof(m->node_id)))
                return; /* no node to tell apart from the others */
        memcpy(intro.node_id, m->node_id, sizeof(intro.node_id));
        if (!relay_candidate_acceptable(&m->observed))
                refused++;
        else if (endpoint_from_candidate(&m->observed, family, &list[n]))
                n++;
        for (size_t i = 0; i < MIN(m->n_candidates, (uint8_t) RELAY_MAX_CANDIDATES); i++) {
                struct endpoint e;
                bool dup = false;
                if (!relay_candidate_acceptable(&m->candidates[i])) {
                        refused++;
                        continue;
                }
                if (!endpoint_from_candidate(&m->candidates[i], family, &e))
                        continue;
                for (size_t j = 0; j < n; j++)
                        dup = dup || endpoint_equal(&list[j], &e);
                if (!dup)
                        list[n++] = e;
        }
        if (refused)
                note_rejected(rc, "loopback, multicast, broadcast or link-local candidates",
                              from);
        intro.n_candidates = n;
        intro.via_relay.via_relay = true;
        intro.via_relay.relay_slot = get_le32(&m->slot);
        if (rc->node.on_peer)
                rc->node.on_peer(rc->node.userdata, &intro);
}

/* Is p reached directly (not through the relay) at one of the introduced candidates? */
static bool reached_at_candidate(struct peer *p, const struct relay_introduction *intro) {
        struct endpoint e;

        peer_get_endpoint(p, &e);
        if (!e.len || e.via_relay)
                return false;
        for (size_t i = 0; i < intro->n_candidates; i++)
                if (endpoint_equal(&e, &intro->candidates[i]))
                        return true;
        return false;
}

struct peer *relay_introduction_match(const struct relay_introduction *intro, bool identity,
                                      struct peer *(*at)(void *userdata, size_t i),
                                      void *userdata) {
        struct peer *p;

        if (identity) {
                for (size_t i = 0; (p = at(userdata, i)); i++)
                        if (sodium_memcmp(p->public_key, intro->node_id, NOISE_PUBLIC_KEY_LEN) == 0)
                                return p;
                return NULL;
        }
        /* A node id is this run's key of that node: the surest sign. */
        for (size_t i = 0; (p = at(userdata, i)); i++)
                if (sodium_memcmp(p->relay_node_id, intro->node_id, NOISE_PUBLIC_KEY_LEN) == 0)
                        return p;
        /* Known by its address: configured, or a node that restarted (a new node id) where we
         * reach it directly. */
        for (size_t i = 0; (p = at(userdata, i)); i++)
                if (reached_at_candidate(p, intro))
                        return p;
        /* The waiting peer of `peer: address: ""`, still unclaimed. */
        for (size_t i = 0; (p = at(userdata, i)); i++) {
                struct endpoint e;
                peer_get_endpoint(p, &e);
                if (!p->address && !e.len && !p->relay_introduced &&
                    sodium_is_zero(p->relay_node_id, sizeof(p->relay_node_id)) &&
                    !atomic_load(&p->current) && !atomic_load(&p->next))
                        return p;
        }
        return NULL;
}

void relay_introduction_apply(const struct sender *s, struct peer *p,
                              const struct relay_introduction *intro) {
        memcpy(p->relay_node_id, intro->node_id, sizeof(p->relay_node_id));
        path_set_candidates(p, intro->candidates, intro->n_candidates);
        path_set_relay(s, p, &intro->via_relay);
}

/* The nonce (index) of ours under which msg's trailing auth MAC is right, or -1. */
static int auth_nonce(const struct relay_client *rc, const uint8_t *msg, size_t len) {
        uint8_t mac[RELAY_AUTH_LEN];
        int found = -1;

        for (unsigned i = 0; i < RELAY_CLIENT_NONCES; i++) {
                if (sodium_is_zero(rc->nonces[i], RELAY_CLIENT_NONCE_LEN))
                        continue;
                crypto_generichash(mac, sizeof(mac), msg, len - RELAY_AUTH_LEN, rc->nonces[i],
                                   RELAY_CLIENT_NONCE_LEN);
                if (sodium_memcmp(mac, msg + len - RELAY_AUTH_LEN, RELAY_AUTH_LEN) == 0)
                        found = (int) i;
        }
        return found;
}

void relay_client_input(struct relay_client *rc, const struct queued_handshake *q) {
        char buf[ENDPOINT_STRLEN];
        enum message_type type;
        int k;

        if (!rc || !rc->addr.len || q->from.via_relay ||
            !endpoint_same_address(&q->from, &rc->addr))
                return; /* relay control only from the relay */

        /* The source address proves nothing (it can be spoofed): the MAC under the nonce of one
         * of our REGISTERs does (messages.h). */
        type = message_classify(q->data, q->len);
        if (type != MESSAGE_RELAY_CHALLENGE && type != MESSAGE_RELAY_REGISTERED &&
            type != MESSAGE_RELAY_PEER)
                return;
        k = auth_nonce(rc, q->data, q->len);
        if (k < 0)
                return note_rejected(rc, "an unauthenticated control message", &q->from);
        /* An answer to a REGISTER with a want list: this relay takes them. */
        if (rc->nonce_list[k] && !rc->lists_ok) {
                if (rc->fallback_logged)
                        log_info("relay %s takes want lists now", rc->name);
                rc->lists_ok = true;
                rc->lists_unanswered = 0;
                rc->fallback_logged = false;
                rc->list_probe = false;
        }

        switch (type) {
        case MESSAGE_RELAY_CHALLENGE: {
                const struct message_relay_challenge *m = (const void *) q->data;
                /* One CHALLENGE per REGISTER: a replayed one must not make us send again. */
                if (rc->challenged[k])
                        return note_rejected(rc, "a second CHALLENGE for one REGISTER", &q->from);
                rc->challenged[k] = true;
                memcpy(rc->cookie, m->cookie, sizeof(rc->cookie));
                memcpy(rc->relay_ephemeral, m->relay_ephemeral, sizeof(rc->relay_ephemeral));
                rc->have_cookie = true;
                send_register(rc, now_ns());
                break;
        }
        case MESSAGE_RELAY_REGISTERED: {
                const struct message_relay_registered *m = (const void *) q->data;
                struct endpoint seen = {};
                bool first = !rc->registered || rc->slot != get_le32(&m->slot);

                endpoint_from_candidate(&m->observed, rc->node.family, &seen);
                rc->registered = true;
                rc->slot = get_le32(&m->slot);
                rc->last_registered_ns = now_ns();
                if (first)
                        log_info("registered with relay %s (slot %u, seen as %s)", rc->name,
                                 rc->slot, endpoint_to_string(&seen, buf));
                break;
        }
        case MESSAGE_RELAY_PEER:
                on_peer(rc, (const void *) q->data, &q->from);
                break;
        default:
                break;
        }
}
