/* SPDX-License-Identifier: MIT */
/*
 * Handshake messages, on the control loop only.
 *
 * Initiation (type 1):  sender index, then the Noise message 1 (IKpsk2: e, es, s, ss with the
 * TAI64N timestamp as payload; NNpsk0: psk, e with the timestamp), then mac1/mac2.
 * Response (type 2):    sender and receiver index, Noise message 2 (empty payload), macs.
 * Order of checks for a received initiation: mac1 (no DH work for strangers) -> cookie when under
 * load, then the source's token bucket (ratelimit.c) -> not our own initiation in flight (same
 * ephemeral key) -> Noise decryption, with the pinned public key checked (identity mode) as soon
 * as it is decrypted, before the second DH -> not our own initiation at all (the timestamp's
 * tag) -> timestamp newer than the last one (replayed initiations) -> at most
 * INITIATIONS_PER_SECOND -> room to retire a key pair. Only then is state changed.
 *
 * Reflection. In shared-key mode (NNpsk0) both sides hold the same keys, so our own initiation,
 * sent back to us by anyone who saw it, is a valid initiation. Accepting it would wipe our
 * handshake in flight, move the endpoint to the reflector and set last_timestamp to our own
 * clock (refusing a peer whose clock is behind as a replay). A node therefore marks its own
 * initiations: tai64n.c rounds the timestamp's nanoseconds down to 2^24, and the low 23 of those
 * free bits carry MAC(own_initiation_key, the timestamp's first 9 bytes), a key drawn at random
 * per run. The tag is inside the encrypted, authenticated payload, so no one without the shared
 * key can make or remove it; the wire format and its sizes do not change, and a peer of an
 * older build just sees a timestamp (bit 23 stays clear so the nanoseconds stay < 10^9). A
 * peer's genuine initiation carries our tag by chance with probability 2^-23; it is then
 * refused once and the peer's retry (a new timestamp) gets through. The in-flight case is also
 * caught before any work: its ephemeral key is ours.
 */
#include <sodium.h>

#include "config.h"
#include "handshake.h"
#include "log.h"
#include "ratelimit.h"
#include "tai64n.h"

static struct log_ratelimit handshake_ratelimit = LOG_RATELIMIT_INIT(5, 10);

#define log_handshake_ratelimited(level, ...)                                                      \
        do {                                                                                       \
                unsigned _sup_ = 0;                                                                \
                if (log_ratelimit_below(&handshake_ratelimit, now_ns(), &_sup_)) {                 \
                        if (_sup_)                                                                 \
                                log_full_errno(level, 0, "(%u similar messages suppressed)",       \
                                               _sup_);                                             \
                        log_full_errno(level, 0, __VA_ARGS__);                                     \
                }                                                                                  \
        } while (0)

/* The nanoseconds' low bits that tai64n.c leaves zero, and the 23 of them the tag takes. */
#define OWN_TAG_OFFSET 9
#define OWN_TAG_LEN (NOISE_TIMESTAMP_LEN - OWN_TAG_OFFSET)

static void own_tag(const struct handshake_keys *k, const uint8_t ts[NOISE_TIMESTAMP_LEN],
                    uint8_t ret[OWN_TAG_LEN]) {
        uint8_t mac[crypto_generichash_BYTES_MIN];

        crypto_generichash(mac, sizeof(mac), ts, OWN_TAG_OFFSET, k->own_initiation_key,
                           sizeof(k->own_initiation_key));
        memcpy(ret, mac, OWN_TAG_LEN);
        ret[0] &= 0x7f;
}

void handshake_mark_own_timestamp(const struct handshake_keys *k, uint8_t ts[NOISE_TIMESTAMP_LEN]) {
        own_tag(k, ts, ts + OWN_TAG_OFFSET);
}

bool handshake_is_own_timestamp(const struct handshake_keys *k,
                                const uint8_t ts[NOISE_TIMESTAMP_LEN]) {
        uint8_t tag[OWN_TAG_LEN];

        own_tag(k, ts, tag);
        return sodium_memcmp(tag, ts + OWN_TAG_OFFSET, OWN_TAG_LEN) == 0;
}

/* A fresh local index: random, with the peer's table slot in its low bits (messages.h), so the
 * rx thread finds the peer of a message without a search. */
static uint32_t new_index(struct peer *p) {

        for (;;) {
                uint32_t idx = (randombytes_random() & ~(uint32_t) (MESH_MAX_PEERS - 1)) | p->slot;
                struct keypair *cur = atomic_load(&p->current), *prev = atomic_load(&p->previous),
                               *next = atomic_load(&p->next);
                if (idx == 0 || idx == p->handshake_index || (cur && cur->local_index == idx) ||
                    (prev && prev->local_index == idx) || (next && next->local_index == idx))
                        continue;
                return idx;
        }
}

/* A new initiation in p->last_initiation (the handshake state set up for its response).
 * Returns its length, or -errno. */
static int build_initiation(struct handshake_keys *k, const struct sender *s, struct peer *p,
                            uint64_t now) {
        bool identity = k->pattern == NOISE_PATTERN_IKPSK2;
        union {
                struct message_handshake_initiation ik;
                struct message_handshake_initiation_psk nn;
                uint8_t raw[sizeof(struct message_handshake_initiation)];
        } msg = {};
        size_t len = identity ? sizeof(msg.ik) : sizeof(msg.nn), n = 0;
        uint8_t ts[NOISE_TIMESTAMP_LEN];
        uint32_t idx;
        int r;

        noise_handshake_wipe(&p->handshake);
        p->handshake_state = HANDSHAKE_ZEROED;
        r = noise_handshake_init(&p->handshake, k->pattern, true, k->prologue, sizeof(k->prologue),
                                 identity ? k->static_private : NULL,
                                 identity ? p->public_key : NULL, k->psk);
        if (r < 0)
                return r;

        msg.raw[0] = MESSAGE_HANDSHAKE_INITIATION;
        idx = new_index(p);
        put_le32(msg.raw + 4, idx);
        tai64n_now(ts);
        handshake_mark_own_timestamp(k, ts);
        r = noise_handshake_write_message(&p->handshake, ts, sizeof(ts), msg.raw + 8,
                                          len - 8 - sizeof(struct message_macs), &n);
        if (r < 0 || n != len - 8 - sizeof(struct message_macs)) {
                noise_handshake_wipe(&p->handshake);
                return r < 0 ? r : -EPROTO;
        }
        cookie_add_mac_to_packet(&p->cookie_maker, msg.raw, len, now);

        p->handshake_index = idx;
        p->handshake_state = HANDSHAKE_CREATED_INITIATION;
        p->last_sent_handshake_ns = now;
        memcpy(p->last_initiation, msg.raw, len);
        p->last_initiation_len = len;
        atomic_store_explicit(&p->last_tx_ns, now, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->stats->initiations_sent, 1, memory_order_relaxed);
        return (int) len;
}

int handshake_send_initiation(struct handshake_keys *k, const struct sender *s, struct peer *p) {
        uint64_t now = now_ns();
        char buf[ENDPOINT_STRLEN];
        struct endpoint e;
        int r;

        peer_get_endpoint(p, &e);
        if (e.len == 0 && p->n_candidates == 0 && !p->relay_introduced)
                return -EDESTADDRREQ;
        r = build_initiation(k, s, p, now);
        if (r < 0)
                return r;
        /* To the endpoint and every candidate at once (and the relay when it is time). */
        path_send_initiation(s, p, p->last_initiation, p->last_initiation_len, now);
        if (e.len)
                log_debug("sent handshake initiation to %s%s", endpoint_to_string(&e, buf),
                          p->n_candidates ? " and the peer's candidates" : "");
        else
                log_debug("sent handshake initiation to the peer's %zu candidates%s",
                          p->n_candidates, p->relay_introduced ? " (and the relay, if due)" : "");
        return 0;
}

/*
 * Restart recovery, the restarted side. A node that restarted lost its keys; its peer keeps
 * sending data on them until it notices (timers.c rule 3b, ~UNANSWERED_FAST_TIMEOUT_MS when the
 * peer was chatty, else rule 3's 15 s). The restarted node can do better: data for a session it
 * does not know, from a source, means "someone had a session with a node at this address", so
 * it initiates a handshake back to that source. That is an answer to an unauthenticated packet,
 * so two limits keep it from being an amplifier or a reflector for hire: the rx thread asks for
 * it only when the source has sent at least an initiation's worth of bytes (credit.c: never
 * more bytes out than in, per source, at most once per CREDIT_INTERVAL_MS), and only while we
 * have no session at all; here, only when the state accepts the peer (not after Disconnect),
 * with a peer key to initiate to (identity mode), at most INITIATIONS_PER_SECOND in all. The
 * initiation is the normal one: only the real peer can answer it, and nothing changes here
 * until its response authenticates (consume_response then moves the endpoint).
 *
 * The same credit covers the next loss: our confirmation (the first data on the new session)
 * lost, the peer keeps sending on the old keys it still has, and we answer that, from the
 * peer's endpoint and within REKEY_TIMEOUT of our handshake, with the confirmation again (32 B,
 * once per CREDIT_INTERVAL_MS); otherwise nothing would confirm it until a keepalive is due.
 */
void handshake_answer_unknown_session(struct handshake_keys *k, const struct sender *s,
                                      struct peer *p, const struct endpoint *from) {
        static struct log_ratelimit ratelimit = LOG_RATELIMIT_INIT(5, 2);
        uint64_t now = now_ns();
        char buf[ENDPOINT_STRLEN];
        unsigned suppressed = 0;
        int r;

        struct keypair *cur = atomic_load(&p->current);

        if (!tunnel_state_accepts_peer(p->state))
                return;
        if (cur) {
                /* We initiated this session moments ago and the peer still sends on its old
                 * one: our confirmation was lost. Say it again (an empty data message). */
                if (cur->initiator && now - cur->birth_ns < REKEY_TIMEOUT * NSEC_PER_SEC)
                        (void) path_send_keepalive(s, p);
                return;
        }
        if (k->pattern == NOISE_PATTERN_IKPSK2 &&
            sodium_is_zero(p->public_key, sizeof(p->public_key)))
                return;
        if (p->last_sent_handshake_ns &&
            now - p->last_sent_handshake_ns < NSEC_PER_SEC / INITIATIONS_PER_SECOND)
                return;
        r = build_initiation(k, s, p, now);
        if (r < 0)
                return;
        (void) path_send(s, p, from, p->last_initiation, p->last_initiation_len);
        if (log_ratelimit_below(&ratelimit, now, &suppressed))
                log_info("data for a session we do not know from %s (did we restart?): sent a "
                         "handshake initiation there%s",
                         endpoint_to_string(from, buf), suppressed ? " (more suppressed)" : "");
}

int handshake_send_close(const struct sender *s, struct peer *p) {
        struct keypair *kp = atomic_load(&p->current);
        uint8_t buf[sizeof(struct message_close)];
        ssize_t n;
        int r = 0;

        if (!kp)
                return -ENOKEY;
        for (unsigned i = 0; i < CLOSE_COPIES; i++) {
                n = session_encrypt_control(kp, MESSAGE_CLOSE, (const uint8_t *) CLOSE_MARKER,
                                            CLOSE_MARKER_LEN, buf, sizeof(buf), now_ns());
                if (n < 0)
                        return (int) n;
                r = path_send_to_peer(s, p, buf, (size_t) n);
        }
        return r;
}

/* mac1 always; mac2 when under load, answering with a cookie reply instead of doing DH work. */
static bool check_macs(struct handshake_keys *k, const struct sender *s, struct peer *p,
                       const struct queued_handshake *q, uint32_t sender_index, bool under_load,
                       uint64_t now) {
        char buf[ENDPOINT_STRLEN];
        enum cookie_mac_state st;

        st = cookie_validate_packet(&k->cookie_checker, q->data, q->len, &q->from.addr.sa,
                                    q->from.len, under_load, now);
        if (st == COOKIE_INVALID_MAC) {
                atomic_fetch_add_explicit(&s->stats->rx_bad_mac1, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING,
                                          "rejected handshake from %s: bad mac1 (the peer uses a "
                                          "different key)",
                                          endpoint_to_string(&q->from, buf));
                return false;
        }
        if (under_load && st != COOKIE_VALID_MAC_WITH_COOKIE) {
                struct message_handshake_cookie reply;
                cookie_message_create(&k->cookie_checker, &reply, q->data, q->len, sender_index,
                                      &q->from.addr.sa, q->from.len, now);
                if (path_send(s, p, &q->from, &reply, sizeof(reply)) >= 0)
                        atomic_fetch_add_explicit(&s->stats->cookies_sent, 1, memory_order_relaxed);
                return false;
        }
        /* mac2 proved the source address: now it may cost us DH work only at its own rate, so
         * one real address cannot crowd out the peer (WireGuard's ratelimiter). */
        if (under_load && k->ratelimit &&
            !ratelimit_allow(k->ratelimit, &q->from.addr.sa, q->from.len, now)) {
                atomic_fetch_add_explicit(&s->stats->rx_handshake_ratelimited, 1,
                                          memory_order_relaxed);
                log_handshake_ratelimited(LOG_NOTICE,
                                          "dropped handshake from %s: over %u per second from "
                                          "that address while under load",
                                          endpoint_to_string(&q->from, buf),
                                          (unsigned) RATELIMIT_PACKETS_PER_SECOND);
                return false;
        }
        return true;
}

/* The IK responder's check of the decrypted static key, run by noise.c before the second DH:
 * only the listed peers' keys may join, and the key says which peer it is. */
struct pinned_check {
        const struct handshake_peers *peers;
        struct peer *found;
        uint8_t seen[NOISE_PUBLIC_KEY_LEN];
};

static int check_pinned_key(const uint8_t rs[NOISE_PUBLIC_KEY_LEN], void *userdata) {
        struct pinned_check *c = userdata;
        struct peer *p;

        memcpy(c->seen, rs, NOISE_PUBLIC_KEY_LEN);
        for (size_t i = 0; (p = c->peers->at(c->peers->userdata, i)); i++)
                if (!sodium_is_zero(p->public_key, sizeof(p->public_key)) &&
                    sodium_memcmp(rs, p->public_key, NOISE_PUBLIC_KEY_LEN) == 0) {
                        c->found = p;
                        return 0;
                }
        return -EKEYREJECTED;
}

/* A key pair from Split()'s keys, which are wiped here whatever happens. */
static struct keypair *new_keypair(uint8_t send_key[NOISE_SYMMETRIC_KEY_LEN],
                                   uint8_t recv_key[NOISE_SYMMETRIC_KEY_LEN], uint32_t local_index,
                                   uint32_t remote_index, bool initiator, uint64_t now) {
        struct keypair *kp = calloc(1, sizeof(*kp));

        if (kp)
                keypair_init(kp, send_key, recv_key, local_index, remote_index, initiator, now);
        else
                log_error("out of memory for a key pair");
        sodium_memzero(send_key, NOISE_SYMMETRIC_KEY_LEN);
        sodium_memzero(recv_key, NOISE_SYMMETRIC_KEY_LEN);
        return kp;
}

/* Room to retire n key pairs now (see MAX_RETIRED_KEYPAIRS); otherwise the handshake is put
 * off and counted, and the peer's retry finds room once the data threads moved on. */
static bool retire_room(const struct sender *s, struct peer *p, size_t n,
                        const struct endpoint *from) {
        char buf[ENDPOINT_STRLEN];

        if (peer_retire_room(p, n))
                return true;
        atomic_fetch_add_explicit(&s->stats->handshakes_deferred, 1, memory_order_relaxed);
        log_handshake_ratelimited(LOG_NOTICE,
                                  "put off handshake with %s: old key pairs are still in use by "
                                  "the data path (too many handshakes at once?)",
                                  endpoint_to_string(from, buf));
        return false;
}

/* The caller reports the path (path_report) and a session up. */
static void handshake_done(const struct sender *s, struct peer *p, const struct endpoint *from,
                           bool initiator) {
        char buf[ENDPOINT_STRLEN];

        p->handshake_attempts_started_ns = 0;
        p->handshake_attempts = 0;
        p->handshake_first_sent_ns = 0;
        p->last_handshake_ns = now_ns();
        p->last_handshake_realtime_us = now_realtime_us();
        atomic_fetch_add_explicit(&s->stats->handshakes, 1, memory_order_relaxed);
        endpoint_to_string(from, buf);
        log_peer_info(p->address ? p->address : buf, buf, "handshake complete with peer %s (%s)",
                      buf, initiator ? "initiator" : "responder");
}

/* Both sides initiated at once, or our own initiation came back: true when p's initiation in
 * flight decides (the message is not consumed). */
static bool initiation_crossed(const struct sender *s, struct peer *p,
                               const struct queued_handshake *q) {
        char buf[ENDPOINT_STRLEN];

        if (p->handshake_state != HANDSHAKE_CREATED_INITIATION)
                return false;
        /* Both sides initiated at once (typical after the relay introduced them): the smaller
         * ephemeral key wins on both sides alike, so exactly one handshake completes. Equal
         * keys (our own initiation) were refused before. */
        if (memcmp(p->handshake.e_pub, q->data + 8, NOISE_PUBLIC_KEY_LEN) < 0) {
                /* Theirs reached us from q->from, so ours can reach them there (their NAT
                 * just opened for us): resend it at once rather than waiting for a retry,
                 * which would otherwise have to go through the relay. */
                log_debug("simultaneous initiation from %s: ours wins, resending it there",
                          endpoint_to_string(&q->from, buf));
                if (p->last_initiation_len)
                        (void) path_send(s, p, &q->from, p->last_initiation,
                                         p->last_initiation_len);
                return true;
        }
        return false;
}

static bool refused_disconnected(const struct sender *s, struct peer *p,
                                 const struct queued_handshake *q) {
        char buf[ENDPOINT_STRLEN];

        if (tunnel_state_accepts_peer(p->state))
                return false;
        atomic_fetch_add_explicit(&s->stats->rx_handshake_dropped, 1, memory_order_relaxed);
        log_handshake_ratelimited(LOG_NOTICE,
                                  "ignored handshake from %s: disconnected through the API "
                                  "(Connect accepts the peer again)",
                                  endpoint_to_string(&q->from, buf));
        return true;
}

/* The peer of an initiation. Identity mode: the listed peer whose key it carries (known only
 * once decrypted, see check_pinned_key). Shared-key mode: the peer at its source endpoint;
 * else, once it authenticated, one that waits with no endpoint, else a new one (any node with
 * the key may join) up to MESH_MAX_PEERS: at the cap it is refused and counted. */
static struct peer *peer_by_endpoint(const struct handshake_peers *peers,
                                     const struct endpoint *from) {
        struct peer *p;

        for (size_t i = 0; (p = peers->at(peers->userdata, i)); i++) {
                struct endpoint e;
                peer_get_endpoint(p, &e);
                if (e.len && endpoint_equal(&e, from))
                        return p;
        }
        /* relaymesh: else one the relay introduced, reached there (path.c). */
        for (size_t i = 0; (p = peers->at(peers->userdata, i)); i++)
                if (path_reaches(p, from))
                        return p;
        return NULL;
}

/* Same host, whatever the ports. */
static bool same_host(const struct endpoint *a, const struct endpoint *b) {
        struct endpoint x = *a;
        in_port_t port = b->addr.sa.sa_family == AF_INET ? b->addr.in.sin_port
                                                         : b->addr.in6.sin6_port;

        if (x.addr.sa.sa_family == AF_INET)
                x.addr.in.sin_port = port;
        else
                x.addr.in6.sin6_port = port;
        return endpoint_same_address(&x, b);
}

static struct peer *peer_for_newcomer(const struct sender *s, const struct handshake_peers *peers,
                                      const struct queued_handshake *q) {
        char buf[ENDPOINT_STRLEN];
        struct peer *p, *waiting = NULL;

        for (size_t i = 0; (p = peers->at(peers->userdata, i)); i++) {
                struct endpoint e;
                if (p->address || p->relay_introduced)
                        continue;
                peer_get_endpoint(p, &e);
                /* A peer we waited for, back from the same host on another port (it
                 * restarted): the same peer. */
                if (e.len && !e.via_relay && !q->from.via_relay && same_host(&e, &q->from))
                        return p;
                if (!waiting && !e.len && !atomic_load(&p->current) && !atomic_load(&p->next))
                        waiting = p;
        }
        /* A peer the relay introduced, through the relay (its slot there), */
        for (size_t i = 0; q->from.via_relay && (p = peers->at(peers->userdata, i)); i++)
                if (p->relay_introduced && p->via_relay.relay_slot == q->from.relay_slot)
                        return p;
        /* or straight from one of its candidates' hosts
         * (a symmetric NAT picks a new port for us: a peer-reflexive address). */
        for (size_t i = 0; !q->from.via_relay && (p = peers->at(peers->userdata, i)); i++)
                for (size_t j = 0; j < p->n_candidates; j++)
                        if (same_host(&p->candidates[j], &q->from))
                                return p;
        if (waiting)
                return waiting;
        p = peers->add ? peers->add(peers->userdata) : NULL;
        if (!p) {
                atomic_fetch_add_explicit(&s->stats->peers_refused_full, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING,
                                          "refused handshake from %s: the peer table is full "
                                          "(%u peers)",
                                          endpoint_to_string(&q->from, buf),
                                          (unsigned) MESH_MAX_PEERS);
        }
        return p;
}

static struct peer *consume_initiation(struct handshake_keys *k, const struct sender *s,
                                       const struct handshake_peers *peers,
                                       const struct queued_handshake *q, bool under_load) {
        bool identity = k->pattern == NOISE_PATTERN_IKPSK2;
        size_t expected = identity ? sizeof(struct message_handshake_initiation)
                                   : sizeof(struct message_handshake_initiation_psk);
        struct noise_handshake hs;
        struct message_handshake_response resp = {};
        uint8_t ts[NOISE_TIMESTAMP_LEN], send_key[NOISE_SYMMETRIC_KEY_LEN],
                recv_key[NOISE_SYMMETRIC_KEY_LEN];
        uint32_t sender = get_le32(q->data + 4), idx;
        uint64_t now = now_ns();
        char buf[ENDPOINT_STRLEN];
        struct keypair *kp;
        struct pinned_check pinned = { .peers = peers };
        struct peer *p = NULL;
        size_t tslen = 0, n = 0;
        int r;

        if (q->len != expected) {
                /* The other length is the other mode's initiation. */
                atomic_fetch_add_explicit(&s->stats->rx_malformed, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING,
                                          "rejected handshake from %s: the peer runs %s mode, we "
                                          "run %s mode",
                                          endpoint_to_string(&q->from, buf),
                                          identity ? "shared-key" : "identity",
                                          identity ? "identity" : "shared-key");
                return NULL;
        }
        if (!check_macs(k, s, NULL, q, sender, under_load, now))
                return NULL;
        /* Our own initiation in flight, sent back: same ephemeral key. Refused before any work
         * and before the tie-break (which must never see equal keys). */
        for (size_t i = 0; (p = peers->at(peers->userdata, i)); i++)
                if (p->handshake_state == HANDSHAKE_CREATED_INITIATION &&
                    sodium_memcmp(p->handshake.e_pub, q->data + 8, NOISE_PUBLIC_KEY_LEN) == 0) {
                        atomic_fetch_add_explicit(&s->stats->rx_reflected, 1, memory_order_relaxed);
                        log_handshake_ratelimited(LOG_WARNING,
                                                  "refused handshake from %s: our own initiation "
                                                  "sent back to us",
                                                  endpoint_to_string(&q->from, buf));
                        return NULL;
                }
        /* Shared-key mode knows the peer by its endpoint before any work. */
        if (!identity) {
                p = peer_by_endpoint(peers, &q->from);
                if (p && (initiation_crossed(s, p, q) || refused_disconnected(s, p, q)))
                        return NULL;
        }

        r = noise_handshake_init(&hs, k->pattern, false, k->prologue, sizeof(k->prologue),
                                 identity ? k->static_private : NULL, NULL, k->psk);
        if (r >= 0 && identity)
                noise_handshake_set_remote_static_check(&hs, check_pinned_key, &pinned);
        if (r >= 0)
                r = noise_handshake_read_message(&hs, q->data + 8,
                                                 q->len - 8 - sizeof(struct message_macs), ts,
                                                 sizeof(ts), &tslen);
        if (r == -EKEYREJECTED) {
                char key[45];
                config_format_key(pinned.seen, key);
                noise_handshake_wipe(&hs);
                atomic_fetch_add_explicit(&s->stats->rx_handshake_failed, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING,
                                          "rejected handshake from %s: unknown public key %s "
                                          "(not in peers:)",
                                          endpoint_to_string(&q->from, buf), key);
                return NULL;
        }
        if (r < 0 || tslen != sizeof(ts)) {
                noise_handshake_wipe(&hs);
                atomic_fetch_add_explicit(&s->stats->rx_handshake_failed, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING, "rejected handshake from %s: %s",
                                          endpoint_to_string(&q->from, buf),
                                          r == -EINVAL ? "invalid ephemeral key"
                                                       : "decryption failed (different key?)");
                return NULL;
        }
        /* Any of our own initiations, in flight or long finished: the tag only we can make. */
        if (handshake_is_own_timestamp(k, ts)) {
                noise_handshake_wipe(&hs);
                atomic_fetch_add_explicit(&s->stats->rx_reflected, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING,
                                          "refused handshake from %s: one of our own initiations "
                                          "sent back to us",
                                          endpoint_to_string(&q->from, buf));
                return NULL;
        }
        /* Which peer it is, now that it authenticated. */
        if (identity) {
                p = pinned.found;
                if (initiation_crossed(s, p, q) || refused_disconnected(s, p, q)) {
                        noise_handshake_wipe(&hs);
                        return NULL;
                }
        } else if (!p) {
                p = peer_for_newcomer(s, peers, q);
                if (!p || refused_disconnected(s, p, q)) {
                        noise_handshake_wipe(&hs);
                        return NULL;
                }
        }
        if (!tai64n_after(ts, p->last_timestamp)) {
                noise_handshake_wipe(&hs);
                atomic_fetch_add_explicit(&s->stats->rx_replayed, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING,
                                          "rejected handshake from %s: replayed initiation "
                                          "(timestamp not newer than the last one)",
                                          endpoint_to_string(&q->from, buf));
                return NULL;
        }
        if (p->last_initiation_consumed_ns &&
            now - p->last_initiation_consumed_ns < NSEC_PER_SEC / INITIATIONS_PER_SECOND) {
                noise_handshake_wipe(&hs);
                atomic_fetch_add_explicit(&s->stats->rx_handshake_dropped, 1, memory_order_relaxed);
                return NULL;
        }
        if (!retire_room(s, p, 1, &q->from)) {
                noise_handshake_wipe(&hs);
                return NULL;
        }
        memcpy(p->last_timestamp, ts, sizeof(ts));
        p->last_initiation_consumed_ns = now;

        /* Our own initiation, if any, is superseded by the peer's (as in WireGuard). */
        noise_handshake_wipe(&p->handshake);
        p->handshake_state = HANDSHAKE_ZEROED;

        resp.header.type = MESSAGE_HANDSHAKE_RESPONSE;
        idx = new_index(p);
        put_le32(&resp.sender_index, idx);
        put_le32(&resp.receiver_index, sender);
        r = noise_handshake_write_message(&hs, NULL, 0, resp.unencrypted_ephemeral,
                                          sizeof(resp.unencrypted_ephemeral) +
                                                  sizeof(resp.encrypted_nothing),
                                          &n);
        if (r >= 0)
                r = noise_handshake_split(&hs, send_key, recv_key);
        noise_handshake_wipe(&hs);
        if (r < 0) {
                log_handshake_ratelimited(LOG_WARNING, "handshake response to %s failed: %s",
                                          endpoint_to_string(&q->from, buf), strerror(-r));
                return NULL;
        }
        cookie_add_mac_to_packet(&p->cookie_maker, (uint8_t *) &resp, sizeof(resp), now);

        kp = new_keypair(send_key, recv_key, idx, sender, false, now);
        if (!kp)
                return NULL;

        /* The responder may not send on the new key pair until the initiator has used it: it
         * waits in "next" until data arrives on it (handshake_confirm_next). */
        peer_retire_keypair(p, atomic_exchange(&p->next, kp));
        peer_set_endpoint(p, &q->from);

        r = path_send(s, p, &q->from, &resp, sizeof(resp));
        if (r < 0)
                log_debug_errno(r, "sending handshake response to %s: %m",
                                endpoint_to_string(&q->from, buf));
        handshake_done(s, p, &q->from, false);
        return p;
}

/* true: the session is up (initiator side). */
static bool consume_response(struct handshake_keys *k, const struct sender *s, struct peer *p,
                             const struct queued_handshake *q, bool under_load) {
        struct noise_handshake hs;
        uint8_t send_key[NOISE_SYMMETRIC_KEY_LEN], recv_key[NOISE_SYMMETRIC_KEY_LEN];
        uint32_t sender = get_le32(q->data + 4), receiver = get_le32(q->data + 8);
        uint64_t now = now_ns();
        char buf[ENDPOINT_STRLEN];
        struct keypair *kp;
        size_t plen = 0;
        int r;

        if (p->handshake_state != HANDSHAKE_CREATED_INITIATION || receiver != p->handshake_index) {
                atomic_fetch_add_explicit(&s->stats->rx_unknown_index, 1, memory_order_relaxed);
                return false;
        }
        if (!check_macs(k, s, p, q, sender, under_load, now))
                return false;
        /* It retires next and previous; refused before the copy is read so that a retry of the
         * same response (the peer resends its initiation, we our response) can still land. */
        if (!retire_room(s, p, 2, &q->from))
                return false;

        /* Work on a copy: a forged response must not destroy the handshake in flight. */
        hs = p->handshake;
        r = noise_handshake_read_message(&hs, q->data + 12,
                                         q->len - 12 - sizeof(struct message_macs), NULL, 0, &plen);
        if (r >= 0)
                r = noise_handshake_split(&hs, send_key, recv_key);
        noise_handshake_wipe(&hs);
        if (r < 0) {
                atomic_fetch_add_explicit(&s->stats->rx_handshake_failed, 1, memory_order_relaxed);
                log_handshake_ratelimited(LOG_WARNING,
                                          "rejected handshake response from %s: decryption "
                                          "failed (the peer uses a different key)",
                                          endpoint_to_string(&q->from, buf));
                return false;
        }

        kp = new_keypair(send_key, recv_key, receiver, sender, true, now);
        if (!kp)
                return false;

        noise_handshake_wipe(&p->handshake);
        p->handshake_state = HANDSHAKE_ZEROED;
        peer_retire_keypair(p, atomic_exchange(&p->next, NULL));
        peer_install_current(p, kp);
        peer_set_endpoint(p, &q->from);
        handshake_done(s, p, &q->from, true);

        /* Let the responder confirm its key pair at once, even with no data to send. */
        (void) path_send_keepalive(s, p);
        return true;
}

static void consume_cookie(const struct sender *s, struct peer *p,
                           const struct queued_handshake *q) {
        uint32_t receiver = get_le32(q->data + 4);
        int r;

        if (p->handshake_state != HANDSHAKE_CREATED_INITIATION || receiver != p->handshake_index) {
                atomic_fetch_add_explicit(&s->stats->rx_unknown_index, 1, memory_order_relaxed);
                return;
        }
        r = cookie_message_consume(&p->cookie_maker,
                                   (const struct message_handshake_cookie *) q->data, now_ns());
        if (r < 0) {
                atomic_fetch_add_explicit(&s->stats->rx_handshake_failed, 1, memory_order_relaxed);
                log_debug_errno(r, "ignored cookie reply: %m");
                return;
        }
        log_debug("peer is under load: got a cookie, the next initiation carries mac2");
}

/* The peer whose handshake in flight has local index receiver (the slot in its low bits
 * would find it too; the table is small enough to check each peer's own index). */
static struct peer *peer_by_handshake_index(const struct handshake_peers *peers,
                                            uint32_t receiver) {
        struct peer *p;

        for (size_t i = 0; (p = peers->at(peers->userdata, i)); i++)
                if (p->slot == MESH_SLOT_OF_INDEX(receiver) &&
                    p->handshake_state == HANDSHAKE_CREATED_INITIATION &&
                    p->handshake_index == receiver)
                        return p;
        return NULL;
}

bool handshake_process_peers(struct handshake_keys *k, const struct sender *s,
                             const struct handshake_peers *peers,
                             const struct queued_handshake *q, bool under_load,
                             struct peer **ret_peer) {
        struct peer *p = NULL;
        bool up = false;

        switch (message_classify(q->data, q->len)) {
        case MESSAGE_HANDSHAKE_INITIATION:
                p = consume_initiation(k, s, peers, q, under_load);
                break;
        case MESSAGE_HANDSHAKE_RESPONSE:
                p = peer_by_handshake_index(peers, get_le32(q->data + 8));
                if (!p) {
                        atomic_fetch_add_explicit(&s->stats->rx_unknown_index, 1,
                                                  memory_order_relaxed);
                        break;
                }
                up = consume_response(k, s, p, q, under_load);
                break;
        case MESSAGE_HANDSHAKE_COOKIE:
                p = peer_by_handshake_index(peers, get_le32(q->data + 4));
                if (!p) {
                        atomic_fetch_add_explicit(&s->stats->rx_unknown_index, 1,
                                                  memory_order_relaxed);
                        break;
                }
                consume_cookie(s, p, q);
                p = NULL;
                break;
        default:
                atomic_fetch_add_explicit(&s->stats->rx_malformed, 1, memory_order_relaxed);
                break;
        }
        if (ret_peer)
                *ret_peer = p;
        return up;
}

static struct peer *single_at(void *userdata, size_t i) {
        return i == 0 ? userdata : NULL;
}

bool handshake_process(struct handshake_keys *k, const struct sender *s, struct peer *p,
                       const struct queued_handshake *q, bool under_load) {
        const struct handshake_peers one = { .at = single_at, .userdata = p };

        return handshake_process_peers(k, s, &one, q, under_load, NULL);
}
