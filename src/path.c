/* SPDX-License-Identifier: MIT */
#include <sodium.h>

#include "log.h"
#include "path.h"

/* Counted, and logged at most 5 times per 10 s (the control loop's sends). */
static int send_failed(const struct sender *s, const struct endpoint *to, int error) {
        static struct log_ratelimit ratelimit = LOG_RATELIMIT_INIT(10, 5);
        bool to_relay = !to->via_relay && s->relay.len && endpoint_same_address(to, &s->relay);

        atomic_fetch_add_explicit(&s->stats->tx_errors, 1, memory_order_relaxed);
        udp_log_send_error(&ratelimit, now_ns(), to_relay ? "relay" : "peer", to, error, 1);
        return -error;
}

int path_send(const struct sender *s, struct peer *p, const struct endpoint *to, const void *msg,
              size_t len) {
        struct iovec iov[2];
        struct message_relay_data hdr = {};
        uint8_t control[UDP_PKTINFO_SPACE] __attribute__((aligned(8)));
        union sockaddr_union sa;
        int fd;
        struct msghdr mh = {
                .msg_name = &sa,
                .msg_iov = iov,
                .msg_control = control,
                .msg_controllen = udp_write_pktinfo(to, control),
        };

        if (to->len == 0)
                return -EDESTADDRREQ;
        fd = udp_pick(&s->sockets, to, &sa, &mh.msg_namelen);
        if (to->via_relay) {
                put_le32(&hdr, MESSAGE_RELAY_DATA);
                put_le32(&hdr.slot, to->relay_slot);
                iov[0] = (struct iovec){ .iov_base = &hdr, .iov_len = sizeof(hdr) };
                iov[1] = (struct iovec){ .iov_base = (void *) msg, .iov_len = len };
                mh.msg_iovlen = 2;
                atomic_fetch_add_explicit(&s->stats->relay_tx_packets, 1, memory_order_relaxed);
        } else {
                iov[0] = (struct iovec){ .iov_base = (void *) msg, .iov_len = len };
                mh.msg_iovlen = 1;
        }
        if (!mh.msg_controllen)
                mh.msg_control = NULL;
        if (sendmsg(fd, &mh, MSG_DONTWAIT) >= 0)
                return 0;
        if (udp_source_gone(errno) && mh.msg_controllen) {
                /* The source address is gone: let routing choose, now and from now on. */
                if (p)
                        (void) peer_forget_source(p, to);
                mh.msg_control = NULL;
                mh.msg_controllen = 0;
                if (sendmsg(fd, &mh, MSG_DONTWAIT) >= 0)
                        return 0;
        }
        return send_failed(s, to, errno);
}

int path_send_to_peer(const struct sender *s, struct peer *p, const void *msg, size_t len) {
        struct endpoint e;
        int r;

        peer_get_endpoint(p, &e);
        r = path_send(s, p, &e, msg, len);
        if (r >= 0) {
                atomic_store_explicit(&p->last_tx_ns, now_ns(), memory_order_relaxed);
                atomic_store_explicit(&p->rx_unanswered_since_ns, 0, memory_order_relaxed);
        }
        return r;
}

int path_send_keepalive(const struct sender *s, struct peer *p) {
        struct keypair *kp = atomic_load(&p->current);
        uint8_t buf[MESSAGE_DATA_MIN_LEN];
        uint8_t empty[1];
        ssize_t n;

        if (!kp)
                return -ENOKEY;
        n = session_encrypt(kp, empty, 0, buf, sizeof(buf), now_ns());
        if (n < 0)
                return (int) n;
        return path_send_to_peer(s, p, buf, (size_t) n);
}

void path_set_candidates(struct peer *p, const struct endpoint *candidates, size_t n) {
        n = MIN(n, ELEMENTSOF(p->candidates));
        memcpy(p->candidates, candidates, n * sizeof(*candidates));
        p->n_candidates = n;
}

bool path_reaches(const struct peer *p, const struct endpoint *from) {
        if (from->via_relay)
                return p->relay_introduced && endpoint_equal(&p->via_relay, from);
        for (size_t i = 0; i < p->n_candidates; i++)
                if (endpoint_equal(&p->candidates[i], from))
                        return true;
        return false;
}

static int send_probe(const struct sender *s, struct peer *p, uint8_t type, const uint8_t nonce[8],
                      const struct endpoint *to);

void path_set_relay(const struct sender *s, struct peer *p, const struct endpoint *via_relay) {
        struct endpoint cur;

        p->via_relay = *via_relay;
        p->relay_introduced = true;
        /* The relay restarted or the peer re-registered: its new slot is where to try, but a
         * PEER message alone never moves the data endpoint. A probe through the new slot does
         * when its authenticated reply comes back (path_on_probe_reply), as does the peer's
         * first authenticated data from there (datapath.c's roaming). */
        peer_get_endpoint(p, &cur);
        if (cur.via_relay && !endpoint_equal(&cur, via_relay)) {
                randombytes_buf(p->probe_nonce, sizeof(p->probe_nonce));
                p->relay_probe_pending = true;
                p->last_relay_probe_ns = now_ns();
                if (send_probe(s, p, MESSAGE_PATH_PROBE, p->probe_nonce, via_relay) >= 0)
                        atomic_fetch_add_explicit(&s->stats->probes_sent, 1, memory_order_relaxed);
        }
}

static bool relay_due(const struct peer *p, uint64_t now) {
        return p->relay_introduced && p->handshake_first_sent_ns != 0 &&
               now - p->handshake_first_sent_ns >= RELAY_FALLBACK_AFTER_MS * NSEC_PER_MSEC;
}

void path_send_initiation(const struct sender *s, struct peer *p, const uint8_t *msg, size_t len,
                          uint64_t now) {
        struct endpoint cur;
        bool sent_relay = false;

        if (p->handshake_first_sent_ns == 0)
                p->handshake_first_sent_ns = now;
        if (p->force_relay) {
                if (p->relay_introduced)
                        (void) path_send(s, p, &p->via_relay, msg, len);
                return;
        }
        peer_get_endpoint(p, &cur);
        if (cur.len)
                (void) path_send(s, p, &cur, msg, len);
        sent_relay = cur.via_relay;
        for (size_t i = 0; i < p->n_candidates; i++)
                if (!endpoint_equal(&p->candidates[i], &cur))
                        (void) path_send(s, p, &p->candidates[i], msg, len);
        /* Straight to the relay when there is nothing direct to try, or on a retry after the
         * fallback time. */
        if (!sent_relay && p->relay_introduced && (relay_due(p, now) || (!cur.len && !p->n_candidates)))
                (void) path_send(s, p, &p->via_relay, msg, len);
}

static int send_probe(const struct sender *s, struct peer *p, uint8_t type, const uint8_t nonce[8],
                      const struct endpoint *to) {
        struct keypair *kp = atomic_load(&p->current);
        uint8_t buf[sizeof(struct message_path_probe)];
        ssize_t n;

        if (!kp)
                return -ENOKEY;
        n = session_encrypt_control(kp, type, nonce, 8, buf, sizeof(buf), now_ns());
        if (n < 0)
                return (int) n;
        return path_send(s, p, to, buf, (size_t) n);
}

void path_on_probe(const struct sender *s, struct peer *p, const uint8_t nonce[8],
                   const struct endpoint *from) {
        /* Answer where it came from: that is the address our reply must reach. */
        (void) send_probe(s, p, MESSAGE_PATH_PROBE_REPLY, nonce, from);
}

/* The caller reports the move (path_report). */
void path_on_probe_reply(const struct sender *s, struct peer *p, const uint8_t nonce[8],
                         const struct endpoint *from) {
        struct endpoint cur;
        char buf[ENDPOINT_STRLEN];

        if (sodium_memcmp(nonce, p->probe_nonce, 8) != 0)
                return;
        peer_get_endpoint(p, &cur);
        if (!cur.via_relay)
                return; /* already direct */
        if (from->via_relay) {
                /* The peer's new relay slot answered: data follows it there. */
                if (!p->relay_probe_pending || !endpoint_equal(from, &p->via_relay) ||
                    endpoint_equal(from, &cur))
                        return;
                p->relay_probe_pending = false;
                log_debug("probe answered through the relay, slot %u", from->relay_slot);
                peer_set_endpoint(p, from);
                return;
        }
        /* Both directions work: move data to the direct path. The peer follows when our next
         * authenticated packet reaches it from there. */
        log_debug("probe answered from %s", endpoint_to_string(from, buf));
        peer_set_endpoint(p, from);
        (void) path_send_keepalive(s, p);
}

const char *path_name(struct peer *p) {
        struct endpoint e;

        /* Only a path that carries authenticated traffic now: not while reconnecting (it may
         * be dead), nor once retries gave up. */
        if (p->state != TUNNEL_CONNECTED)
                return "none";
        peer_get_endpoint(p, &e);
        if (!e.len)
                return "none";
        return e.via_relay ? "relay" : "direct";
}

bool path_report(const struct sender *s, struct peer *p) {
        char buf[ENDPOINT_STRLEN];
        struct endpoint e;
        bool was_relay;

        if (!atomic_load(&p->current))
                return false; /* no session: there is no path to speak of yet */
        peer_get_endpoint(p, &e);
        if (endpoint_equal(&e, &p->reported_endpoint))
                return false;
        was_relay = p->reported_endpoint.len && p->reported_endpoint.via_relay;
        if (p->reported_endpoint.len && e.len && was_relay != e.via_relay)
                atomic_fetch_add_explicit(&s->stats->path_switches, 1, memory_order_relaxed);
        p->reported_endpoint = e;
        if (e.len) {
                struct endpoint addr = e;
                addr.via_relay = false; /* "relay via <the relay's address>", not "relay relay" */
                endpoint_to_string(&addr, buf);
                log_peer_info(p->address ? p->address : buf, buf, "path to peer: %s via %s%s",
                              e.via_relay ? "relay" : "direct", buf,
                              was_relay && !e.via_relay ? " (was relay)" : "");
        }
        return true;
}

void path_tick(const struct sender *s, struct peer *p, uint64_t now, bool nat_keepalive) {
        struct keypair *cur = atomic_load(&p->current);
        struct endpoint e;

        /* Relay fallback inside a handshake attempt: resend the initiation through the relay. */
        if (p->handshake_state == HANDSHAKE_CREATED_INITIATION && p->relay_introduced &&
            relay_due(p, now) && p->last_sent_handshake_ns < p->handshake_first_sent_ns +
                                                                  RELAY_FALLBACK_AFTER_MS * NSEC_PER_MSEC &&
            p->last_initiation_len > 0) {
                log_debug("no direct answer after %d ms, trying the relay",
                          RELAY_FALLBACK_AFTER_MS);
                (void) path_send(s, p, &p->via_relay, p->last_initiation, p->last_initiation_len);
                p->last_sent_handshake_ns = now;
        }

        peer_get_endpoint(p, &e);
        /* Data already followed the peer to its new slot, or went direct: nothing to confirm. */
        if (p->relay_probe_pending && (!e.via_relay || endpoint_equal(&e, &p->via_relay)))
                p->relay_probe_pending = false;
        /* Upgrade: probe every direct candidate while on the relay (a new nonce, unless one
         * is out to an unconfirmed relay slot). */
        if (cur && e.via_relay && p->n_candidates > 0 && !p->force_relay &&
            now - p->last_probe_ns >= PATH_PROBE_INTERVAL * NSEC_PER_SEC) {
                p->last_probe_ns = now;
                if (!p->relay_probe_pending)
                        randombytes_buf(p->probe_nonce, sizeof(p->probe_nonce));
                for (size_t i = 0; i < p->n_candidates; i++)
                        if (send_probe(s, p, MESSAGE_PATH_PROBE, p->probe_nonce,
                                       &p->candidates[i]) >= 0)
                                atomic_fetch_add_explicit(&s->stats->probes_sent, 1,
                                                          memory_order_relaxed);
        }
        /* A new relay slot of the peer not yet confirmed: probe it again with the same nonce. */
        if (cur && e.via_relay && p->relay_probe_pending && !endpoint_equal(&e, &p->via_relay) &&
            now - p->last_relay_probe_ns >= PATH_PROBE_INTERVAL * NSEC_PER_SEC) {
                p->last_relay_probe_ns = now;
                if (send_probe(s, p, MESSAGE_PATH_PROBE, p->probe_nonce, &p->via_relay) >= 0)
                        atomic_fetch_add_explicit(&s->stats->probes_sent, 1, memory_order_relaxed);
        }

        /* NAT keepalive: an idle session still sends something every NAT_KEEPALIVE_INTERVAL. */
        if (cur && nat_keepalive &&
            now - atomic_load_explicit(&p->last_tx_ns, memory_order_relaxed) >=
                    NAT_KEEPALIVE_INTERVAL * NSEC_PER_SEC)
                (void) path_send_keepalive(s, p);
}
