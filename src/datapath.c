/* SPDX-License-Identifier: MIT */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include "credit.h"
#include "datapath.h"
#include "log.h"
#include "ratelimit.h"
#include "stun.h"

/* Quiescent-state markers (the argument is in device.c, above device_collect_retired): odd while
 * a thread holds key pair pointers loaded in this batch, even otherwise. A batch never waits:
 * no poll(), no socket back-pressure, inside it.
 *
 * Enter: the increment must be ordered before this batch's loads of the key pair pointers, a
 * store->load order that only a seq_cst fence gives in C11 (the control loop has the matching
 * fence between unpublishing a pointer and reading the markers). */
static inline void qs_enter(_Atomic uint64_t *qs) {
        atomic_fetch_add_explicit(qs, 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
}
/* Leave: every use of the batch's key pairs happens before the increment (release), and the
 * control loop reads the marker before it wipes (acquire). */
static inline void qs_leave(_Atomic uint64_t *qs) {
        atomic_fetch_add_explicit(qs, 1, memory_order_release);
}

static inline void stat_add(_Atomic uint64_t *s, uint64_t v) {
        if (v)
                atomic_fetch_add_explicit(s, v, memory_order_relaxed);
}

static void request_handshake(struct device *d) {
        if (!atomic_exchange(&d->peer.want_handshake, true))
                device_wake(d);
}

/* Wait until fd is writable or the device stops; false when stopping. */
static bool wait_writable(struct device *d, int fd) {
        struct pollfd pfd[2] = { { .fd = fd, .events = POLLOUT }, { .fd = d->stop_fd, .events = POLLIN } };

        for (unsigned i = 0; i < 100; i++) {
                int r = poll(pfd, 2, 100);
                if (r < 0 && errno != EINTR)
                        return false;
                if (pfd[1].revents)
                        return false;
                if (pfd[0].revents & POLLOUT)
                        return true;
        }
        return false;
}

struct tx_buffers {
        uint8_t frame[FRAME_MAX_LEN];
        uint8_t control[UDP_PKTINFO_SPACE] __attribute__((aligned(8)));
        /* Each message is sealed after room for a RELAY_DATA header, which is filled in when
         * the peer is reached through the relay; otherwise the send starts past it. */
        uint8_t out[DATAPATH_BATCH][RELAYED_DATAGRAM_MAX_LEN];
        struct iovec iov[DATAPATH_BATCH];
        struct mmsghdr msgs[DATAPATH_BATCH];
};

static void *tx_main(void *userdata) {
        struct device *d = userdata;
        struct peer *p = &d->peer;
        struct tx_buffers *b = calloc(1, sizeof(*b));
        struct pollfd pfd[2] = { { .fd = d->tap->fd, .events = POLLIN },
                                 { .fd = d->stop_fd, .events = POLLIN } };

        if (!b) {
                log_error("tx thread: out of memory");
                return NULL;
        }
        for (;;) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[1].revents)
                        break;

                qs_enter(&d->tx_qs);
                uint64_t now = now_ns(), bytes = 0, dropped = 0, errors = 0;
                struct keypair *kp = atomic_load_explicit(&p->current, memory_order_acquire);
                struct endpoint ep;
                unsigned n = 0;
                bool usable;

                peer_get_endpoint(p, &ep);
                usable = kp && atomic_load_explicit(&kp->valid, memory_order_relaxed) && ep.len > 0;
                size_t controllen = udp_write_pktinfo(&ep, b->control);

                while (n < DATAPATH_BATCH) {
                        ssize_t k = read(d->tap->fd, b->frame, sizeof(b->frame));
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno != EAGAIN)
                                        errors++;
                                break;
                        }
                        if (!usable) {
                                dropped++;
                                continue;
                        }
                        const size_t hdr = sizeof(struct message_relay_data);
                        ssize_t m = session_encrypt(kp, b->frame, (size_t) k, b->out[n] + hdr,
                                                    sizeof(b->out[n]) - hdr, now);
                        if (m < 0) {
                                usable = false; /* expired or out of counters: rekey */
                                dropped++;
                                continue;
                        }
                        if (ep.via_relay) {
                                put_le32(b->out[n], MESSAGE_RELAY_DATA);
                                put_le32(b->out[n] + 4, ep.relay_slot);
                                b->iov[n] = (struct iovec){ .iov_base = b->out[n],
                                                            .iov_len = (size_t) m + hdr };
                        } else
                                b->iov[n] = (struct iovec){ .iov_base = b->out[n] + hdr,
                                                            .iov_len = (size_t) m };
                        b->msgs[n].msg_hdr = (struct msghdr){
                                .msg_name = &ep.addr,
                                .msg_namelen = ep.len,
                                .msg_iov = &b->iov[n],
                                .msg_iovlen = 1,
                                .msg_control = controllen ? b->control : NULL,
                                .msg_controllen = controllen,
                        };
                        bytes += (uint64_t) k;
                        n++;
                }

                /* Last use of kp in this batch; then leave it, so that waiting for the socket
                 * below (up to 10 s) never keeps a retired key pair from being wiped. The
                 * datagrams are sealed, and ep is our own copy. */
                bool rekey = !dropped && kp && kp->initiator &&
                             (now - kp->birth_ns >= REKEY_AFTER_TIME * NSEC_PER_SEC ||
                              atomic_load_explicit(&kp->send_counter, memory_order_relaxed) >=
                                      REKEY_AFTER_MESSAGES);
                kp = NULL;
                qs_leave(&d->tx_qs);

                unsigned sent = 0;
                while (sent < n) {
                        int r = sendmmsg(d->udp_fd, b->msgs + sent, n - sent, 0);
                        if (r < 0) {
                                if (errno == EINTR)
                                        continue;
                                /* Socket buffer full: wait, so back-pressure reaches the TAP queue
                                 * and TCP inside the tunnel slows down instead of losing. */
                                if ((errno == EAGAIN || errno == ENOBUFS) &&
                                    wait_writable(d, d->udp_fd))
                                        continue;
                                /* Our source address went away: let routing pick, and
                                 * forget it so the next batch does too, unless the endpoint
                                 * moved meanwhile (roaming): ep is a copy from the batch's
                                 * start and must not be written back over a newer one. */
                                if (udp_source_gone(errno) && controllen) {
                                        for (unsigned i = sent; i < n; i++) {
                                                b->msgs[i].msg_hdr.msg_control = NULL;
                                                b->msgs[i].msg_hdr.msg_controllen = 0;
                                        }
                                        controllen = 0;
                                        peer_forget_source(p, &ep);
                                        ep.src.family = 0;
                                        continue;
                                }
                                errors += n - sent;
                                break;
                        }
                        sent += (unsigned) r;
                }

                if (sent > 0) {
                        if (ep.via_relay)
                                stat_add(&d->stats.relay_tx_packets, sent);
                        stat_add(&d->stats.tx_packets, sent);
                        stat_add(&d->stats.tx_bytes, bytes);
                        atomic_store_explicit(&p->last_tx_ns, now, memory_order_relaxed);
                        atomic_store_explicit(&p->last_tx_data_ns, now, memory_order_relaxed);
                        atomic_store_explicit(&p->rx_unanswered_since_ns, 0, memory_order_relaxed);
                        if (atomic_load_explicit(&p->tx_unanswered_since_ns, memory_order_relaxed) == 0)
                                atomic_store_explicit(&p->tx_unanswered_since_ns, now,
                                                      memory_order_relaxed);
                }
                stat_add(&d->stats.tx_errors, errors);
                if (dropped) {
                        stat_add(&d->stats.tx_dropped_no_session, dropped);
                        request_handshake(d);
                } else if (rekey)
                        request_handshake(d);
        }
        free(b);
        return NULL;
}

struct rx_buffers {
        uint8_t in[DATAPATH_BATCH][RELAYED_DATAGRAM_MAX_LEN];
        union sockaddr_union from[DATAPATH_BATCH];
        uint8_t control[DATAPATH_BATCH][UDP_PKTINFO_SPACE] __attribute__((aligned(8)));
        struct iovec iov[DATAPATH_BATCH];
        struct mmsghdr msgs[DATAPATH_BATCH];
};

/* What one receive batch saw, flushed to the counters and timers once per batch. */
struct rx_batch {
        uint64_t now;
        struct keypair *cur, *prev, *next;
        struct endpoint ep;
        uint64_t packets, bytes, replayed, bad_tag, unknown, malformed, hs_dropped, relayed,
                hs_ratelimited;
        bool authenticated, got_data, queued;
        struct endpoint last_bad;
        const char *last_reason;
};

static struct keypair *lookup_keypair(const struct rx_batch *x, uint32_t idx) {
        if (x->cur && x->cur->local_index == idx)
                return x->cur;
        if (x->next && x->next->local_index == idx)
                return x->next;
        if (x->prev && x->prev->local_index == idx)
                return x->prev;
        return NULL;
}

static bool enqueue(struct device *d, enum queued_kind kind, const uint8_t *data, size_t len,
                    const struct endpoint *from) {
        uint32_t head = atomic_load_explicit(&d->hs_head, memory_order_relaxed);
        uint32_t tail = atomic_load_explicit(&d->hs_tail, memory_order_acquire);
        struct queued_handshake *q;

        if (head - tail >= MAX_QUEUED_HANDSHAKES || len > sizeof(q->data))
                return false;
        q = &d->hs_queue[head % MAX_QUEUED_HANDSHAKES];
        memcpy(q->data, data, len);
        q->len = (uint16_t) len;
        q->kind = (uint8_t) kind;
        q->from = *from;
        atomic_store_explicit(&d->hs_head, head + 1, memory_order_release);
        return true;
}

static bool queue_under_load(struct device *d) {
        uint32_t head = atomic_load_explicit(&d->hs_head, memory_order_relaxed);
        uint32_t tail = atomic_load_explicit(&d->hs_tail, memory_order_relaxed);

        return head - tail >= UNDER_LOAD_QUEUE_LEN;
}

static void bad(struct rx_batch *x, uint64_t *counter, const char *reason,
                const struct endpoint *from) {
        (*counter)++;
        x->last_reason = reason;
        x->last_bad = *from;
}

static void rx_data(struct device *d, struct rx_batch *x, uint8_t *buf, size_t len,
                    const struct endpoint *from) {
        struct peer *p = &d->peer;
        struct keypair *kp = lookup_keypair(x, get_le32(buf + 4));
        uint8_t *frame;
        size_t flen;
        uint64_t counter;
        int r;

        if (!kp) {
                /* With no session at all we may have restarted: enough bytes from this source
                 * buy one initiation back to it. With a session we just initiated, the peer
                 * still sends on its old one: it missed our confirmation, which the same
                 * credit buys again. Never via the relay (credit.c, handshake.c). */
                bool young = x->cur && x->cur->initiator &&
                             x->now - x->cur->birth_ns < REKEY_TIMEOUT * NSEC_PER_SEC &&
                             endpoint_equal(from, &x->ep);
                if ((!x->cur || young) && !from->via_relay && d->rx_credit &&
                    credit_earn(d->rx_credit, &from->addr.sa, from->len, len,
                                young ? MESSAGE_DATA_MIN_LEN
                                      : sizeof(struct message_handshake_initiation),
                                x->now) &&
                    enqueue(d, QUEUED_UNKNOWN_SESSION, buf, 0, from))
                        x->queued = true;
                return bad(x, &x->unknown, "unknown session index", from);
        }
        r = session_decrypt(kp, buf, len, x->now, &frame, &flen, &counter);
        if (r == -EALREADY)
                return bad(x, &x->replayed, "replayed counter", from);
        if (r == -ESTALE)
                return bad(x, &x->unknown, "expired session", from);
        if (r < 0)
                return bad(x, &x->bad_tag, "authentication failed", from);

        x->authenticated = true;
        if (kp == x->next && !atomic_exchange(&p->next_confirmed, true))
                device_wake(d);
        /* Roaming: the endpoint follows the last authenticated data packet, whether it came
         * straight from the peer or through the relay, and so does our source address. */
        if (!endpoint_equal(from, &x->ep) || !endpoint_same_source(from, &x->ep)) {
                peer_set_endpoint(p, from);
                x->ep = *from;
                device_wake(d); /* the control loop reports the new path */
        }
        if (kp == x->cur && kp->initiator &&
            x->now - kp->birth_ns >=
                    (REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) * NSEC_PER_SEC)
                request_handshake(d);
        if (flen == 0)
                return; /* keepalive */
        x->got_data = true;
        if (write(d->tap->fd, frame, flen) < 0)
                return;
        x->packets++;
        x->bytes += flen;
}

/* A path probe is opened here (the replay window has one writer: this thread) and handed to the
 * control loop, which answers or switches paths. */
static void rx_probe(struct device *d, struct rx_batch *x, uint8_t *buf, size_t len,
                     const struct endpoint *from) {
        uint8_t type = buf[0], *nonce;
        struct keypair *kp = lookup_keypair(x, get_le32(buf + 4));
        size_t nlen;
        int r;

        if (!kp)
                return bad(x, &x->unknown, "probe for an unknown session", from);
        r = session_decrypt_control(kp, type, buf, len, x->now, &nonce, &nlen, NULL);
        if (r == -EALREADY)
                return bad(x, &x->replayed, "replayed probe", from);
        if (r < 0 || nlen != 8)
                return bad(x, &x->bad_tag, "probe failed authentication", from);
        if (enqueue(d, type == MESSAGE_PATH_PROBE ? QUEUED_PROBE : QUEUED_PROBE_REPLY, nonce, 8,
                    from))
                x->queued = true;
        else
                x->hs_dropped++;
}

/* The peer's closing message: opened here (the replay window's one writer), handed up. */
static void rx_close(struct device *d, struct rx_batch *x, uint8_t *buf, size_t len,
                     const struct endpoint *from) {
        struct keypair *kp = lookup_keypair(x, get_le32(buf + 4));
        uint8_t *marker;
        size_t mlen;
        int r;

        if (!kp)
                return bad(x, &x->unknown, "closing message for an unknown session", from);
        r = session_decrypt_control(kp, MESSAGE_CLOSE, buf, len, x->now, &marker, &mlen, NULL);
        if (r == -EALREADY)
                return bad(x, &x->replayed, "replayed closing message", from);
        if (r < 0 || mlen != CLOSE_MARKER_LEN || memcmp(marker, CLOSE_MARKER, mlen) != 0)
                return bad(x, &x->bad_tag, "closing message failed authentication", from);
        /* With the session it closes (its first bytes: type, then key_idx), so the control
         * loop acts only while that session is still ours: the second copy, or one that
         * arrives after a new handshake, changes nothing. */
        if (enqueue(d, QUEUED_CLOSE, buf, 8, from))
                x->queued = true;
        else
                x->hs_dropped++;
}

static void rx_datagram(struct device *d, struct rx_batch *x, uint8_t *buf, size_t len,
                        const struct endpoint *from, bool relayed) {
        if (!relayed && stun_is_message(buf, len)) {
                /* Responses to our STUN requests (NAT discovery) share the socket. */
                if (enqueue(d, QUEUED_MESSAGE, buf, len, from))
                        x->queued = true;
                else
                        x->hs_dropped++;
                return;
        }

        switch (message_classify(buf, len)) {
        case MESSAGE_DATA:
                return rx_data(d, x, buf, len, from);
        case MESSAGE_HANDSHAKE_INITIATION:
        case MESSAGE_HANDSHAKE_RESPONSE:
        case MESSAGE_HANDSHAKE_COOKIE:
                /* Under load, each source gets its share of the queue and no more, so one
                 * address cannot fill it and push the peer's messages out. This is before
                 * mac2 (the control loop checks that): a sender who forges the peer's source
                 * address can spend the peer's share, but could fill the whole queue from
                 * random addresses without this; the control loop's bucket after mac2 is the
                 * one spoofing cannot touch. */
                if (d->rx_ratelimit && queue_under_load(d) &&
                    !ratelimit_allow(d->rx_ratelimit, &from->addr.sa, from->len, x->now)) {
                        x->hs_ratelimited++;
                        return;
                }
                if (enqueue(d, QUEUED_MESSAGE, buf, len, from))
                        x->queued = true;
                else
                        x->hs_dropped++;
                return;
        case MESSAGE_PATH_PROBE:
        case MESSAGE_PATH_PROBE_REPLY:
                return rx_probe(d, x, buf, len, from);
        case MESSAGE_CLOSE:
                return rx_close(d, x, buf, len, from);
        case MESSAGE_RELAY_CHALLENGE:
        case MESSAGE_RELAY_REGISTERED:
        case MESSAGE_RELAY_PEER:
                if (relayed)
                        break; /* relay control is never wrapped */
                if (enqueue(d, QUEUED_MESSAGE, buf, len, from))
                        x->queued = true;
                else
                        x->hs_dropped++;
                return;
        case MESSAGE_RELAY_DATA: {
                /* One level of wrapping only: the inner message is handled as if it had come
                 * from "the relay, slot N", which is then how we answer. */
                struct endpoint via = *from;
                if (relayed)
                        break;
                /* Only the relay we register with may hand us a wrapped message; from anyone
                 * else it is a forged "the relay says slot N sent this". */
                if (!atomic_load_explicit(&d->relay_address_set, memory_order_acquire) ||
                    !endpoint_same_address(from, &d->relay_address))
                        return bad(x, &x->malformed, "relay data not from the relay", from);
                via.via_relay = true;
                via.relay_slot = get_le32(buf + 4);
                x->relayed++;
                return rx_datagram(d, x, buf + sizeof(struct message_relay_data),
                                   len - sizeof(struct message_relay_data), &via, true);
        }
        default:
                break;
        }
        bad(x, &x->malformed, "malformed", from);
}

static void *rx_main(void *userdata) {
        struct device *d = userdata;
        struct peer *p = &d->peer;
        struct rx_buffers *b = calloc(1, sizeof(*b));
        struct pollfd pfd[2] = { { .fd = d->udp_fd, .events = POLLIN },
                                 { .fd = d->stop_fd, .events = POLLIN } };
        /* Per-packet problems are logged at most 5 times per 10 s from this thread. */
        struct log_ratelimit ratelimit = LOG_RATELIMIT_INIT(10, 5);

        if (!b) {
                log_error("rx thread: out of memory");
                return NULL;
        }
        for (unsigned i = 0; i < DATAPATH_BATCH; i++)
                b->iov[i] = (struct iovec){ .iov_base = b->in[i], .iov_len = sizeof(b->in[i]) };

        for (;;) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[1].revents)
                        break;

                for (unsigned i = 0; i < DATAPATH_BATCH; i++)
                        b->msgs[i].msg_hdr = (struct msghdr){
                                .msg_name = &b->from[i],
                                .msg_namelen = sizeof(b->from[i]),
                                .msg_iov = &b->iov[i],
                                .msg_iovlen = 1,
                                .msg_control = b->control[i],
                                .msg_controllen = sizeof(b->control[i]),
                        };
                int n = recvmmsg(d->udp_fd, b->msgs, DATAPATH_BATCH, MSG_DONTWAIT, NULL);
                if (n <= 0)
                        continue;

                qs_enter(&d->rx_qs);
                struct rx_batch x = {
                        .now = now_ns(),
                        .cur = atomic_load_explicit(&p->current, memory_order_acquire),
                        .prev = atomic_load_explicit(&p->previous, memory_order_acquire),
                        .next = atomic_load_explicit(&p->next, memory_order_acquire),
                };
                peer_get_endpoint(p, &x.ep);
                for (int i = 0; i < n; i++) {
                        struct endpoint from = { .len = b->msgs[i].msg_hdr.msg_namelen };

                        memcpy(&from.addr, &b->from[i], from.len);
                        udp_read_pktinfo(&b->msgs[i].msg_hdr, &from);
                        if (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                                bad(&x, &x.malformed, "oversized", &from);
                                continue;
                        }
                        rx_datagram(d, &x, b->in[i], b->msgs[i].msg_len, &from, false);
                }
                qs_leave(&d->rx_qs);

                if (x.last_reason) {
                        unsigned suppressed = 0;
                        if (log_ratelimit_below(&ratelimit, x.now, &suppressed)) {
                                char buf[ENDPOINT_STRLEN];
                                log_warning("dropped %llu invalid packet(s), the last from %s: %s%s",
                                            (unsigned long long) (x.malformed + x.replayed +
                                                                  x.bad_tag + x.unknown),
                                            endpoint_to_string(&x.last_bad, buf), x.last_reason,
                                            suppressed ? " (more suppressed)" : "");
                        }
                }
                stat_add(&d->stats.rx_packets, x.packets);
                stat_add(&d->stats.rx_bytes, x.bytes);
                stat_add(&d->stats.rx_replayed, x.replayed);
                stat_add(&d->stats.rx_bad_tag, x.bad_tag);
                stat_add(&d->stats.rx_unknown_index, x.unknown);
                stat_add(&d->stats.rx_malformed, x.malformed);
                stat_add(&d->stats.rx_handshake_dropped, x.hs_dropped);
                stat_add(&d->stats.relay_rx_packets, x.relayed);
                stat_add(&d->stats.rx_handshake_ratelimited, x.hs_ratelimited);
                if (x.authenticated) {
                        atomic_store_explicit(&p->last_rx_ns, x.now, memory_order_relaxed);
                        atomic_store_explicit(&p->tx_unanswered_since_ns, 0, memory_order_relaxed);
                }
                if (x.got_data) {
                        atomic_store_explicit(&p->last_rx_data_ns, x.now, memory_order_relaxed);
                        if (atomic_load_explicit(&p->rx_unanswered_since_ns, memory_order_relaxed) == 0)
                                atomic_store_explicit(&p->rx_unanswered_since_ns, x.now,
                                                      memory_order_relaxed);
                }
                if (x.queued)
                        device_wake(d);
        }
        free(b);
        return NULL;
}

int datapath_start(struct device *d) {
        sigset_t all, old;
        int r;

        /* The threads take no signals: the control loop handles them (sd-event signalfd). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&d->tx_thread, NULL, tx_main, d);
        if (r == 0) {
                r = -pthread_create(&d->rx_thread, NULL, rx_main, d);
                if (r < 0) {
                        uint64_t one = 1;
                        (void) !write(d->stop_fd, &one, sizeof(one));
                        pthread_join(d->tx_thread, NULL);
                }
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        pthread_setname_np(d->tx_thread, "shadowmesh-tx");
        pthread_setname_np(d->rx_thread, "shadowmesh-rx");
        d->threads_started = true;
        return 0;
}

void datapath_stop(struct device *d) {
        uint64_t one = 1;

        if (!d->threads_started)
                return;
        atomic_store(&d->stopping, true);
        (void) !write(d->stop_fd, &one, sizeof(one));
        pthread_join(d->tx_thread, NULL);
        pthread_join(d->rx_thread, NULL);
        d->threads_started = false;
}
