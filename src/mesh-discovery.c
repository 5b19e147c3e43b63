/* SPDX-License-Identifier: MIT */
/*
 * Mesh discovery's engine (mesh-discovery.h): our peer list out, the peers' lists in, merged
 * against the peer table. discovery.c is the pure codec and merge rules; this file is their
 * glue to the device: the table, the sessions, path.c's candidates and the handshake timers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "addrwatch.h"
#include "candidate.h"
#include "device.h"
#include "log.h"
#include "mesh-discovery.h"
#include "path.h"
#include "relay-client.h"
#include "session.h"
#include "timers.h"

/* What we keep per peer, by table slot; valid while peer_id is the slot's peer's id. */
struct disco_peer {
        uint64_t peer_id;
        bool id_known; /* shared-key mode: its node id, from its SELF entry (or who named it) */
        uint8_t id[NOISE_PUBLIC_KEY_LEN];
        struct discovery_sender sender; /* discovery_merge's freshness and budget */
        size_t n_self;                  /* what it said of itself: passed on in our list */
        struct relay_candidate self[DISCOVERY_MAX_CANDIDATES];
        bool want_send; /* its session just came up: our list goes out on the next tick */
        bool announced; /* "discovered peer" was logged */
};

struct mesh_discovery {
        uint8_t self_id[NOISE_PUBLIC_KEY_LEN];
        /* Our list's (epoch, version): a new epoch per run, a new version per change. */
        uint64_t epoch;
        uint32_t version;
        uint8_t list_hash[crypto_generichash_BYTES];
        uint64_t send_due_ns;      /* the coalesced send after a change; 0: none */
        uint64_t last_sent_all_ns; /* the periodic send */
        struct relay_candidate self[DISCOVERY_MAX_CANDIDATES];
        size_t n_self;
        uint64_t self_read_ns; /* when self was last read (0: never) */
        unsigned self_changes;  /* the device's address_changes when it was read */
        struct endpoint self_public; /* the STUN-reflexive address it was read with */
        struct log_ratelimit refusals;
        unsigned refused_since_log;
        struct disco_peer peers[MESH_MAX_PEERS];
        struct discovery_entry list[MESH_MAX_PEERS + 1];
        struct discovery_chunk chunk;
};

_Static_assert(MESH_MAX_PEERS + 1 <= DISCOVERY_MAX_LIST_ENTRIES, "the list holds the table");

static bool identity_mode(const struct device *d) {
        return d->keys.pattern == NOISE_PATTERN_IKPSK2;
}

/* The state of p's slot, reset when the slot holds another peer than last time. */
static struct disco_peer *state_of(struct mesh_discovery *m, const struct peer *p) {
        struct disco_peer *s = &m->peers[p->slot];

        if (s->peer_id != p->id)
                *s = (struct disco_peer){.peer_id = p->id};
        return s;
}

/* Our SELF entry's candidates: the STUN-reflexive address first, then every global address of
 * our interfaces (not the TAP: that would loop; not loopback or IPv6 link-local: meaningless
 * to anyone else) with our port. */
static size_t gather_self(const struct device *d, struct relay_candidate *out) {
        return candidates_gather(&d->public_endpoint_sa, d->tap ? d->tap->name : "", d->udp_family,
                                 d->port, out, DISCOVERY_MAX_CANDIDATES);
}

const uint8_t *mesh_discovery_self_id(const struct device *d) {
        return d->discovery ? d->discovery->self_id : NULL;
}

const uint8_t *mesh_discovery_peer_id(const struct device *d, const struct peer *p) {
        const struct disco_peer *s;

        if (identity_mode(d))
                return sodium_is_zero(p->public_key, sizeof(p->public_key)) ? NULL : p->public_key;
        if (!d->discovery)
                return NULL;
        s = &d->discovery->peers[p->slot];
        return s->peer_id == p->id && s->id_known ? s->id : NULL;
}

/* A live session (usable both ways) and its endpoint: what we can vouch for. */
static bool has_session(struct peer *p) {
        return atomic_load(&p->current) != NULL;
}

size_t mesh_discovery_build_list(const struct device *d,
                                 const struct relay_candidate *self_candidates, size_t n_self,
                                 struct discovery_entry *out) {
        size_t n = 0;

        memset(&out[0], 0, sizeof(out[0]));
        memcpy(out[0].id, mesh_discovery_self_id(d), NOISE_PUBLIC_KEY_LEN);
        out[0].flags = DISCOVERY_ENTRY_SELF;
        n_self = MIN(n_self, (size_t) DISCOVERY_MAX_CANDIDATES);
        memcpy(out[0].candidates, self_candidates, n_self * sizeof(*self_candidates));
        out[0].n_candidates = (uint8_t) n_self;
        n = 1;

        for (size_t i = 0; i < device_peer_count(d); i++) {
                struct peer *p = device_peer_at(d, i);
                const uint8_t *id = mesh_discovery_peer_id(d, p);
                const struct disco_peer *s = &d->discovery->peers[p->slot];
                struct discovery_entry *e = &out[n];
                struct endpoint ep;

                if (!id || !has_session(p))
                        continue;
                peer_get_endpoint(p, &ep);
                memset(e, 0, sizeof(*e));
                memcpy(e->id, id, NOISE_PUBLIC_KEY_LEN);
                if (ep.via_relay)
                        e->flags = DISCOVERY_ENTRY_RELAY;
                else if (ep.len) {
                        e->flags = DISCOVERY_ENTRY_DIRECT;
                        candidate_from_sockaddr(&e->endpoint, &ep.addr.sa);
                }
                /* What it said of itself, unless it is the endpoint already. */
                if (s->peer_id == p->id)
                        for (size_t c = 0; c < s->n_self; c++)
                                if (memcmp(&s->self[c], &e->endpoint, sizeof(e->endpoint)) != 0 &&
                                    !candidate_in(&s->self[c], e->candidates, e->n_candidates))
                                        e->candidates[e->n_candidates++] = s->self[c];
                n++;
        }
        return n;
}

/* The peer an entry names: by node id, or (shared-key mode) a peer at one of the entry's
 * addresses. */
static struct peer *find_peer(struct device *d, const struct discovery_entry *e) {
        struct peer *by_address = NULL;

        for (size_t i = 0; i < device_peer_count(d); i++) {
                struct peer *p = device_peer_at(d, i);
                const uint8_t *id = mesh_discovery_peer_id(d, p);
                struct relay_candidate c;
                struct endpoint ep;

                if (id && memcmp(id, e->id, NOISE_PUBLIC_KEY_LEN) == 0)
                        return p;
                /* Shared-key mode: a peer at one of the entry's addresses is that node, even
                 * under another id (a node that restarted has a new one, and a third node may
                 * still name it by the old): never a second peer at one address. */
                if (identity_mode(d) || by_address)
                        continue;
                peer_get_endpoint(p, &ep);
                if (!ep.len || ep.via_relay)
                        continue;
                candidate_from_sockaddr(&c, &ep.addr.sa);
                if (memcmp(&c, &e->endpoint, sizeof(c)) == 0 ||
                    candidate_in(&c, e->candidates, e->n_candidates))
                        by_address = p;
        }
        return by_address;
}

static int lookup(void *userdata, const struct discovery_entry *e, struct discovery_known *ret) {
        struct device *d = userdata;
        struct peer *p = find_peer(d, e);
        struct endpoint ep;

        if (!p)
                return 0;
        peer_get_endpoint(p, &ep);
        *ret = (struct discovery_known){.direct = has_session(p) && ep.len && !ep.via_relay};
        if (ep.len && !ep.via_relay)
                candidate_from_sockaddr(&ret->endpoint, &ep.addr.sa);
        return 1;
}

/* Identity mode: only the keys of peers: (all in the table from the start) may join. */
static bool allowed(void *userdata, const uint8_t id[NOISE_PUBLIC_KEY_LEN]) {
        struct device *d = userdata;

        for (size_t i = 0; i < device_peer_count(d); i++)
                if (sodium_memcmp(device_peer_at(d, i)->public_key, id, NOISE_PUBLIC_KEY_LEN) == 0)
                        return true;
        return false;
}

/* How the log names a peer: its configured name or address, else its endpoint, else its id. */
static const char *peer_label(struct device *d, struct peer *p, char buf[static 64]) {
        const uint8_t *id = mesh_discovery_peer_id(d, p);
        struct endpoint ep;

        if (p->name)
                return p->name;
        if (p->address)
                return p->address;
        peer_get_endpoint(p, &ep);
        if (ep.len)
                return endpoint_to_string(&ep, buf);
        if (id) {
                sodium_bin2base64(buf, 64, id, NOISE_PUBLIC_KEY_LEN,
                                  sodium_base64_VARIANT_ORIGINAL);
                return buf;
        }
        return "(unknown)";
}

_printf_(3, 4) static void log_refusal(struct mesh_discovery *m, uint64_t now,
                                       const char *fmt, ...) {
        char text[512];
        unsigned suppressed;
        va_list ap;

        m->refused_since_log++;
        if (!log_ratelimit_below(&m->refusals, now, &suppressed))
                return;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        if (suppressed)
                log_warning("%s (%u more refusals not logged)", text, suppressed);
        else
                log_warning("%s", text);
}

/* Our own addresses (the SELF entry's) are never a peer's: a node that names us under an id
 * we no longer use (we restarted) would otherwise make us handshake with ourselves. */
static size_t drop_own_addresses(const struct mesh_discovery *m, const struct discovery_action *a,
                                 struct relay_candidate out[static 1 + DISCOVERY_MAX_CANDIDATES]) {
        size_t n = 0;

        for (size_t i = 0; i < a->n_try; i++)
                if (!candidate_in(&a->try[i], m->self, m->n_self))
                        out[n++] = a->try[i];
        return n;
}

/* Add the addresses to p's candidates (a new one first: it is news), and point a peer without
 * an endpoint at the first. */
static void give_addresses(struct device *d, struct peer *p, const struct relay_candidate *try,
                           size_t n_try) {
        struct endpoint list[ELEMENTSOF(p->candidates)] = {}, ep;
        size_t n = 0;

        for (size_t i = 0; i < n_try && n < ELEMENTSOF(list); i++) {
                struct endpoint e;
                bool dup = false;

                if (!endpoint_from_candidate(&try[i], d->udp_family, &e))
                        continue;
                for (size_t j = 0; j < n && !dup; j++)
                        dup = endpoint_equal(&list[j], &e);
                if (!dup)
                        list[n++] = e;
        }
        for (size_t i = 0; i < p->n_candidates && n < ELEMENTSOF(list); i++) {
                bool dup = false;

                for (size_t j = 0; j < n && !dup; j++)
                        dup = endpoint_equal(&list[j], &p->candidates[i]);
                if (!dup)
                        list[n++] = p->candidates[i];
        }
        path_set_candidates(p, list, n);
        peer_get_endpoint(p, &ep);
        if (!ep.len && n > 0)
                peer_set_endpoint(p, &list[0]);
}

/* Someone to talk to and no session: start one (handshake.c breaks the tie when both do). */
static void connect_peer(struct device *d, struct peer *p, uint64_t now) {
        unsigned events = 0;

        if (has_session(p) || !tunnel_state_accepts_peer(p->state))
                return;
        if (peer_event(p, TUNNEL_EVENT_CONNECT, NULL))
                events |= TIMERS_STATE_CHANGED;
        events |= timers_want_handshake(&d->keys, &d->sender, p, now);
        if ((events & TIMERS_STATE_CHANGED) && d->events.peer_changed)
                d->events.peer_changed(d, p);
}

/* "address:port, ..." for a log line; "(no address)" for none. */
#define CANDIDATES_STRLEN ((1 + DISCOVERY_MAX_CANDIDATES) * (ENDPOINT_STRLEN + 2))
static const char *candidates_text(const struct device *d, const struct relay_candidate *c,
                                   size_t n, char text[static CANDIDATES_STRLEN]) {
        char buf[ENDPOINT_STRLEN];
        size_t off = 0;

        text[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                struct endpoint e;
                if (endpoint_from_candidate(&c[i], d->udp_family, &e))
                        off += (size_t) snprintf(text + off, CANDIDATES_STRLEN - off, "%s%s",
                                                 off ? ", " : "", endpoint_to_string(&e, buf));
        }
        return off ? text : "(no address)";
}

static void announce(struct device *d, struct peer *p, struct peer *from,
                     const struct discovery_action *a) {
        struct disco_peer *s = state_of(d->discovery, p);
        char text[CANDIDATES_STRLEN], l1[64], l2[64];

        if (s->announced)
                return;
        s->announced = true;
        log_info("discovered peer %s through %s: trying %s", peer_label(d, p, l1),
                 peer_label(d, from, l2), candidates_text(d, a->try, a->n_try, text));
}

static int act_add(struct device *d, struct peer *from, const struct discovery_action *a,
                   uint64_t now) {
        struct mesh_discovery *m = d->discovery;
        struct disco_peer *s;
        struct peer *p;
        int r;

        struct relay_candidate try[1 + DISCOVERY_MAX_CANDIDATES];
        size_t n_try = drop_own_addresses(m, a, try);

        if (n_try == 0)
                return 0; /* introduced through the relay only: the relay client's business */
        r = device_add_joiner(d, &p);
        if (r < 0) {
                char l[64];
                log_refusal(m, now, "cannot add a peer %s told us of: %s", peer_label(d, from, l),
                            r == -ENOSPC ? "the peer table is full (MESH_MAX_PEERS)"
                                         : strerror(-r));
                return r;
        }
        s = state_of(m, p);
        if (identity_mode(d)) {
                memcpy(p->public_key, a->entry->id, sizeof(p->public_key));
                cookie_maker_init(&p->cookie_maker, p->public_key);
        } else {
                /* Named by a third party: its own SELF entry must agree (discovery_merge). */
                memcpy(s->id, a->entry->id, sizeof(s->id));
                s->id_known = true;
        }
        give_addresses(d, p, try, n_try);
        announce(d, p, from, a);
        connect_peer(d, p, now);
        return 1;
}

static void act_try(struct device *d, struct peer *from, const struct discovery_action *a,
                    uint64_t now) {
        struct relay_candidate try[1 + DISCOVERY_MAX_CANDIDATES];
        size_t n_try = drop_own_addresses(d->discovery, a, try);
        struct peer *p = find_peer(d, a->entry);

        if (!p || p == from || n_try == 0)
                return;
        if (!identity_mode(d) && !mesh_discovery_peer_id(d, p)) {
                /* Found by address: now we know its id too. */
                struct disco_peer *s = state_of(d->discovery, p);
                memcpy(s->id, a->entry->id, sizeof(s->id));
                s->id_known = true;
        }
        give_addresses(d, p, try, n_try);
        if (!has_session(p))
                announce(d, p, from, a);
        connect_peer(d, p, now);
}

int mesh_discovery_input(struct device *d, struct peer *p, const uint8_t *plain, size_t len,
                         uint64_t now) {
        struct mesh_discovery *m = d->discovery;
        struct discovery_action actions[DISCOVERY_MAX_ENTRIES];
        struct discovery_error why = {};
        struct disco_peer *s;
        struct discovery_context ctx;
        size_t n = 0;
        int r, added = 0;
        char l[64];

        if (!m)
                return -ENOTCONN;
        s = state_of(m, p);
        r = discovery_decode(plain, len, &m->chunk, &why);
        if (r < 0) {
                log_refusal(m, now, "refused a discovery list from %s: %s (entry %d, address %d)",
                            peer_label(d, p, l), why.what, why.entry, why.address);
                return r;
        }
        /* Shared-key mode: a sender that restarted (a new epoch) has a new node id too. */
        if (!identity_mode(d) && s->sender.seen && s->sender.epoch != m->chunk.epoch)
                s->id_known = false;
        ctx = (struct discovery_context){
                .self_id = m->self_id,
                .sender_id = mesh_discovery_peer_id(d, p),
                .allowed = identity_mode(d) ? allowed : NULL,
                .lookup = lookup,
                .userdata = d,
        };
        r = discovery_merge(&ctx, &s->sender, &m->chunk, now, actions, &n);
        if (r == -ESTALE) {
                log_debug("stale discovery list from %s ignored", peer_label(d, p, l));
                return r;
        }
        if (r < 0) {
                log_refusal(m, now, "refused a discovery list from %s: %s", peer_label(d, p, l),
                            r == -EPERM ? "it names another node as itself" : strerror(-r));
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                const struct discovery_action *a = &actions[i];

                switch (a->verdict) {
                case DISCOVERY_SENDER:
                        if (!identity_mode(d)) {
                                memcpy(s->id, a->entry->id, sizeof(s->id));
                                s->id_known = true;
                        }
                        s->n_self = MIN(a->n_try, (size_t) DISCOVERY_MAX_CANDIDATES);
                        memcpy(s->self, a->try, s->n_self * sizeof(*s->self));
                        break;
                case DISCOVERY_ADD:
                        if (act_add(d, p, a, now) > 0)
                                added++;
                        break;
                case DISCOVERY_TRY:
                        act_try(d, p, a, now);
                        break;
                case DISCOVERY_IGNORED_NOT_ALLOWED:
                case DISCOVERY_IGNORED_OVER_LIMIT:
                        log_refusal(m, now, "discovery list from %s: entry %zu %s", peer_label(d, p, l),
                                    i, a->verdict == DISCOVERY_IGNORED_NOT_ALLOWED
                                               ? "names a key not in peers:"
                                               : "is over its budget of new peers");
                        break;
                default:
                        break;
                }
        }
        return added;
}

static void on_discovery(struct device *d, struct peer *p, const uint8_t *plain, size_t len,
                         const struct endpoint *from) {
        (void) from;
        (void) mesh_discovery_input(d, p, plain, len, now_ns());
}

/* Our list, all its chunks, sealed on p's current session. */
static void send_list(struct device *d, struct peer *p, size_t n, uint64_t now) {
        struct mesh_discovery *m = d->discovery;
        uint8_t plain[DISCOVERY_PLAIN_MAX_LEN], out[DISCOVERY_MESSAGE_MAX_LEN];
        struct keypair *kp = atomic_load(&p->current);
        struct discovery_error why = {};

        if (!kp)
                return;
        for (size_t i = 0; i < discovery_chunk_count(n); i++) {
                ssize_t len = discovery_encode(m->epoch, m->version, m->list, n, i, plain,
                                               sizeof(plain), &why);
                ssize_t sealed;

                if (len < 0) {
                        log_debug("cannot encode our discovery list: %s (entry %d)",
                                  why.what ? why.what : strerror((int) -len), why.entry);
                        return;
                }
                sealed = session_encrypt_control(kp, MESSAGE_DISCOVERY, plain, (size_t) len, out,
                                                 sizeof(out), now);
                if (sealed < 0)
                        return;
                (void) path_send_to_peer(&d->sender, p, out, (size_t) sealed);
        }
}

/* Our SELF entry, read again only when it may have changed: the host's addresses changed
 * (addrwatch.c tells the device, address_changes), the STUN-reflexive address changed, or
 * DISCOVERY_ADDRESSES_REFRESH_MS passed (DISCOVERY_ADDRESSES_POLL_MS when nothing watches the
 * addresses). Reading them costs two rtnetlink dumps (getifaddrs), once a second on an idle
 * daemon when it was done on a timer alone. */
static void refresh_self(struct device *d, struct mesh_discovery *m, uint64_t now) {
        uint64_t every_ms = addrwatch_watching(d->addrwatch) ? DISCOVERY_ADDRESSES_REFRESH_MS
                                                             : DISCOVERY_ADDRESSES_POLL_MS;
        struct relay_candidate self[DISCOVERY_MAX_CANDIDATES];
        char text[CANDIDATES_STRLEN];
        size_t n;

        if (m->self_read_ns && m->self_changes == d->address_changes &&
            endpoint_equal(&m->self_public, &d->public_endpoint_sa) &&
            now - m->self_read_ns < every_ms * NSEC_PER_MSEC)
                return;
        n = gather_self(d, self);
        if (m->self_read_ns && (n != m->n_self || memcmp(self, m->self, n * sizeof(*self)) != 0))
                log_info("mesh discovery: our addresses are now %s",
                         candidates_text(d, self, n, text));
        memcpy(m->self, self, n * sizeof(*self));
        m->n_self = n;
        m->self_read_ns = now;
        m->self_changes = d->address_changes;
        m->self_public = d->public_endpoint_sa;
}

void mesh_discovery_tick(struct device *d, uint64_t now) {
        struct mesh_discovery *m = d->discovery;
        uint8_t hash[crypto_generichash_BYTES];
        bool all;
        size_t n;

        if (!m)
                return;
        refresh_self(d, m, now);
        if (!m->last_sent_all_ns)
                m->last_sent_all_ns = now;
        n = mesh_discovery_build_list(d, m->self, m->n_self, m->list);
        crypto_generichash(hash, sizeof(hash), (const uint8_t *) m->list, n * sizeof(m->list[0]),
                           NULL, 0);
        if (memcmp(hash, m->list_hash, sizeof(hash)) != 0) {
                memcpy(m->list_hash, hash, sizeof(hash));
                m->version++;
                if (!m->send_due_ns)
                        m->send_due_ns = now + (uint64_t) DISCOVERY_COALESCE_MS * NSEC_PER_MSEC;
        }
        all = (m->send_due_ns && now >= m->send_due_ns) ||
              now - m->last_sent_all_ns >= (uint64_t) DISCOVERY_RESEND_INTERVAL_MS * NSEC_PER_MSEC;
        for (size_t i = 0; i < device_peer_count(d); i++) {
                struct peer *p = device_peer_at(d, i);
                struct disco_peer *s = state_of(m, p);

                if ((all || s->want_send) && has_session(p)) {
                        send_list(d, p, n, now);
                        s->want_send = false;
                }
        }
        if (all) {
                m->send_due_ns = 0;
                m->last_sent_all_ns = now;
        }
}

bool mesh_discovery_pending(const struct device *d) {
        const struct mesh_discovery *m = d->discovery;

        if (!m)
                return false;
        /* A changed list goes out DISCOVERY_COALESCE_MS after the tick that sees it; so do our
         * own addresses, once the tick has read them again. */
        if (m->send_due_ns || m->self_changes != d->address_changes ||
            !endpoint_equal(&m->self_public, &d->public_endpoint_sa))
                return true;
        for (size_t i = 0; i < device_peer_count(d); i++) {
                const struct peer *p = device_peer_at(d, i);
                const struct disco_peer *s = &m->peers[p->slot];
                if (s->peer_id == p->id && s->want_send)
                        return true;
        }
        return false;
}

void mesh_discovery_session_up(struct device *d, struct peer *p) {
        if (d->discovery)
                state_of(d->discovery, p)->want_send = true;
}

int mesh_discovery_start(struct device *d) {
        struct mesh_discovery *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        if (identity_mode(d))
                memcpy(m->self_id, d->keys.static_public, sizeof(m->self_id));
        else if (d->relay)
                memcpy(m->self_id, relay_client_node_id(d->relay), sizeof(m->self_id));
        else
                /* No relay to register with: a random id for this run serves the same purpose
                 * (a name that only this run of this node uses). */
                randombytes_buf(m->self_id, sizeof(m->self_id));
        randombytes_buf(&m->epoch, sizeof(m->epoch));
        m->refusals = (struct log_ratelimit) LOG_RATELIMIT_INIT(
                DISCOVERY_REFUSAL_LOG_INTERVAL_MS / 1000, 1);
        d->discovery = m;
        d->events.discovery = on_discovery;
        return 0;
}

void mesh_discovery_stop(struct device *d) {
        if (!d->discovery)
                return;
        d->events.discovery = NULL;
        free(d->discovery);
        d->discovery = NULL;
}
