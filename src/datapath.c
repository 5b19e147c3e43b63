/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "credit.h"
#include "datapath.h"
#include "log.h"
#include "offload.h"
#include "ratelimit.h"
#include "stun.h"
#include "workers.h"

/* Quiescent-state markers (the argument is in peer.c, above peer_collect_retired): odd while
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

/* Wake the control loop (device.c reads the queue and the peer's flags). */
static void wake_control(struct datapath *d) {
        uint64_t one = 1;
        (void) !write(d->wake_fd, &one, sizeof(one));
}

static void request_handshake(struct datapath *d, struct peer *p) {
        if (!atomic_exchange(&p->want_handshake, true))
                wake_control(d);
}

/* The peer in slot, inside a batch (NULL: none). */
static inline struct peer *peer_at(struct datapath *d, uint32_t slot) {
        return atomic_load_explicit(&d->peers[slot], memory_order_acquire);
}

bool datapath_forget_port(struct datapath *d, uint32_t port) {
        uint32_t head = atomic_load_explicit(&d->forget_head, memory_order_relaxed);
        uint32_t tail = atomic_load_explicit(&d->forget_tail, memory_order_acquire);

        if (head - tail >= ELEMENTSOF(d->forget_ports))
                return false;
        d->forget_ports[head % ELEMENTSOF(d->forget_ports)] = port;
        atomic_store_explicit(&d->forget_head, head + 1, memory_order_release);
        return true;
}

/* The rx thread (the MAC table's one writer) drops what the control loop asked it to. */
static void forget_requested(struct datapath *d) {
        uint32_t head = atomic_load_explicit(&d->forget_head, memory_order_acquire);
        uint32_t tail = atomic_load_explicit(&d->forget_tail, memory_order_relaxed);

        for (; tail != head; tail++)
                mactable_forget_port(&d->macs, d->forget_ports[tail % ELEMENTSOF(d->forget_ports)]);
        atomic_store_explicit(&d->forget_tail, tail, memory_order_release);
}

/* Wait until fd is writable or the device stops; false when stopping. */
static bool wait_writable(struct datapath *d, int fd) {
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

/* One peer a transmit batch sends to: what the batch loaded for it (inside the batch), and
 * what it sealed for it. */
struct tx_dest {
        struct peer *p;
        struct keypair *kp;
        struct endpoint ep;
        /* The socket for ep and ep's address as that socket takes it (udp_pick). */
        int fd;
        union sockaddr_union name;
        socklen_t namelen;
        uint8_t pktinfo[UDP_PKTINFO_SPACE] __attribute__((aligned(8)));
        size_t controllen;
        /* The clock when its key pair was loaded (a key pair installed after the batch began
         * must not look born in the future: see tx_dest). */
        uint64_t now;
        bool usable, rekey;
        uint64_t bytes, dropped;
        unsigned count, first; /* its datagrams, and where they start once grouped */
        unsigned sent;         /* of them, that left */
        /* Of them, unicast frames to an address learned behind this peer: the traffic that
         * expects an answer. Flooded copies (broadcast, multicast, unknown destinations: IPv6
         * router solicitations, MLD reports) do not start timers rules 3 and 3b, which would
         * otherwise take a peer's silence after two such announcements for a restart. */
        unsigned unicast;
        /* Of the dropped ones (no session), frames that look for a host (frame_seeks_host):
         * they, not background multicast, ask for a handshake. */
        unsigned seeking;
        /* Kept for the accounting after the sends (the peer is checked by slot and id). */
        uint64_t id;
        uint32_t slot;
        bool source_gone;      /* our source address went away: forget stale's source */
        struct endpoint stale;
};

struct tx_buffers {
        /* One TAP read with offloads: the vnet header and a frame of up to 64 KiB. */
        uint8_t frame[TAP_VNET_HDR_LEN + OFFLOAD_MAX_FRAME];
        /* The frames to seal: what a plain TAP read gave (seg[0]), or the segments of the
         * frame above. Whatever the batch has no room for is sealed by the next one. */
        uint8_t seg[OFFLOAD_MAX_SEGMENTS][FRAME_MAX_LEN];
        size_t seg_len[OFFLOAD_MAX_SEGMENTS];
        size_t n_seg, next_seg;
        /* A flooded segment that did not fit the batch continues at this slot (0: none). */
        uint32_t flood_next;
        /* Each message is sealed after room for a RELAY_DATA header, which is filled in when
         * the peer is reached through the relay; otherwise the send starts past it. */
        uint8_t out[DATAPATH_TX_DATAGRAMS][RELAYED_DATAGRAM_MAX_LEN];
        /* The datagrams as sealed (sealed[i] for dests[out_dest[i]]), then grouped by peer in
         * iov: one sendmmsg (and UDP GSO runs) per peer. */
        struct iovec sealed[DATAPATH_TX_DATAGRAMS];
        uint16_t out_dest[DATAPATH_TX_DATAGRAMS];
        struct iovec iov[DATAPATH_TX_DATAGRAMS];
        /* The batch's peers: dest_of_slot[slot] is valid when dest_gen[slot] == gen. */
        struct tx_dest dests[MESH_MAX_PEERS];
        uint16_t dest_of_slot[MESH_MAX_PEERS];
        uint32_t dest_gen[MESH_MAX_PEERS], gen;
        unsigned n_dests;
        /* The sends: one per datagram, or one per run of equal-sized datagrams (UDP GSO);
         * msg_first[i] is the first datagram of send i, msg_first[m] the number of them. */
        uint8_t control[DATAPATH_TX_DATAGRAMS][UDP_CONTROL_SPACE] __attribute__((aligned(8)));
        struct mmsghdr msgs[DATAPATH_TX_DATAGRAMS];
        unsigned msg_first[DATAPATH_TX_DATAGRAMS + 1];
};

/* Read one frame from the TAP queue fd into b->seg: as it is from a plain TAP, cut into MTU-sized
 * segments (or checksummed) from a TAP with offloads. 1: a frame, 0: none waiting, -EBADMSG: a
 * frame its vnet header does not describe (dropped), other -errno: the read failed. */
static int tx_read(struct datapath *d, struct tx_buffers *b, int fd, uint64_t *gso_frames) {
        bool offload = d->tap->vnet_hdr;
        struct vnet_hdr h;
        ssize_t k;
        size_t n;

        do
                k = read(fd, offload ? b->frame : b->seg[0],
                         offload ? sizeof(b->frame) : sizeof(b->seg[0]));
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return errno == EAGAIN ? 0 : -errno;
        b->next_seg = b->n_seg = 0;
        b->flood_next = 0;
        if (!offload) {
                b->seg_len[0] = (size_t) k;
                b->n_seg = 1;
                return 1;
        }
        if ((size_t) k < TAP_VNET_HDR_LEN)
                return -EBADMSG;
        vnet_hdr_from_le(&h, b->frame);
        if (offload_segment(&h, b->frame + TAP_VNET_HDR_LEN, (size_t) k - TAP_VNET_HDR_LEN,
                            FRAME_MAX_LEN, b->seg[0], FRAME_MAX_LEN, OFFLOAD_MAX_SEGMENTS,
                            b->seg_len, &n) < 0)
                return -EBADMSG;
        if (h.gso_type != VNET_HDR_GSO_NONE)
                (*gso_frames)++;
        b->n_seg = n;
        return 1;
}

/* Group datagrams [first, n) into sends to t (t->name, the address its socket takes): with
 * gso, each run of equal-sized datagrams (the last of a run may be shorter) within the
 * kernel's limits becomes one send with a UDP_SEGMENT cmsg; without, every datagram is its
 * own. Returns the number of sends. */
static unsigned tx_build(struct tx_buffers *b, unsigned first, unsigned n, struct tx_dest *t,
                         const uint8_t *pktinfo, size_t pktinfo_len, bool gso) {
        unsigned m = 0;

        for (unsigned i = first; i < n; m++) {
                size_t size = b->iov[i].iov_len, total = size, controllen = pktinfo_len;
                unsigned count = 1;

                while (gso && i + count < n && count < UDP_GSO_MAX_SEGMENTS &&
                       b->iov[i + count].iov_len <= size &&
                       total + b->iov[i + count].iov_len <= UDP_GSO_MAX_BYTES) {
                        total += b->iov[i + count].iov_len;
                        if (b->iov[i + count++].iov_len < size)
                                break; /* a shorter one ends the run */
                }
                memcpy(b->control[m], pktinfo, pktinfo_len);
                if (count > 1)
                        controllen = udp_write_segment(b->control[m], controllen, (uint16_t) size);
                b->msgs[m].msg_hdr = (struct msghdr){
                        .msg_name = &t->name,
                        .msg_namelen = t->namelen,
                        .msg_iov = &b->iov[i],
                        .msg_iovlen = count,
                        .msg_control = controllen ? b->control[m] : NULL,
                        .msg_controllen = controllen,
                };
                b->msg_first[m] = i;
                i += count;
        }
        b->msg_first[m] = n;
        return m;
}

/* What a thread that transmits keeps from one batch to the next: its buffers (with the
 * segments a batch had no room for), its log rate limit, and what it learned of UDP GSO. */
struct tx_state {
        struct tx_buffers *b;
        /* Send errors are logged at most 5 times per 10 s from this thread. */
        struct log_ratelimit ratelimit;
        /* UDP GSO with offloads on, until the kernel refuses the first such send; verified
         * once one went out. */
        bool gso, gso_verified;
};

static int tx_state_init(struct datapath *d, struct tx_state *s) {
        *s = (struct tx_state){
                .b = calloc(1, sizeof(*s->b)),
                .ratelimit = LOG_RATELIMIT_INIT(10, 5),
                .gso = d->tap->vnet_hdr && !(d->offload_disabled & DATAPATH_NO_UDP_GSO),
        };
        return s->b ? 0 : -ENOMEM;
}

/* The batch's destination for the peer in slot (loading its key pair and endpoint once per
 * batch), or -1 when the slot is empty. Inside the batch only. */
static int tx_dest(struct datapath *d, struct tx_buffers *b, uint32_t slot) {
        struct tx_dest *t;
        struct peer *p;

        if (b->dest_gen[slot] == b->gen)
                return b->dest_of_slot[slot];
        p = peer_at(d, slot);
        if (!p)
                return -1;
        t = &b->dests[b->n_dests];
        *t = (struct tx_dest){ .p = p,
                               .kp = atomic_load_explicit(&p->current, memory_order_acquire) };
        /* Read after the key pair: the control loop may have installed it (birth_ns) after
         * this batch read the clock, and the expiry checks subtract birth from now. */
        t->now = now_ns();
        peer_get_endpoint(p, &t->ep);
        t->usable = t->kp && atomic_load_explicit(&t->kp->valid, memory_order_relaxed) &&
                    t->ep.len > 0;
        t->controllen = udp_write_pktinfo(&t->ep, t->pktinfo);
        t->fd = udp_pick(&d->sockets, &t->ep, &t->name, &t->namelen);
        b->dest_gen[slot] = b->gen;
        b->dest_of_slot[slot] = (uint16_t) b->n_dests;
        return (int) b->n_dests++;
}

/* Seal the current segment for destination i into datagram n. false when it could not be
 * (no usable session: counted as dropped for that peer). */
static bool tx_seal(struct tx_buffers *b, unsigned i, unsigned n) {
        struct tx_dest *t = &b->dests[i];
        const size_t hdr = sizeof(struct message_relay_data);
        size_t len = b->seg_len[b->next_seg];
        ssize_t m = -1;

        if (t->usable) {
                m = session_encrypt(t->kp, b->seg[b->next_seg], len, b->out[n] + hdr,
                                    sizeof(b->out[n]) - hdr, t->now);
                if (m < 0)
                        t->usable = false; /* expired or out of counters: rekey */
        }
        if (!t->usable) {
                t->dropped++;
                if (frame_seeks_host(b->seg[b->next_seg], len))
                        t->seeking++;
                return false;
        }
        if (t->ep.via_relay) {
                put_le32(b->out[n], MESSAGE_RELAY_DATA);
                put_le32(b->out[n] + 4, t->ep.relay_slot);
                b->sealed[n] = (struct iovec){ .iov_base = b->out[n], .iov_len = (size_t) m + hdr };
        } else
                b->sealed[n] = (struct iovec){ .iov_base = b->out[n] + hdr, .iov_len = (size_t) m };
        b->out_dest[n] = (uint16_t) i;
        t->bytes += len;
        t->count++;
        return true;
}

/* Send datagrams [first, last) (one peer's) to t->ep: one sendmmsg, retried as the kernel
 * asks (a full socket buffer, UDP GSO refused, our source address gone). Returns the number of
 * datagrams that left; *ret_error is the errno of a send that failed for good (0: none). */
static unsigned tx_send(struct datapath *d, struct tx_state *s, struct tx_dest *t, unsigned first,
                        unsigned last, bool *gso, bool *gso_verified, bool *waited,
                        uint64_t *gso_datagrams, int *ret_error) {
        struct tx_buffers *b = s->b;
        size_t controllen = t->controllen;
        unsigned m = tx_build(b, first, last, t, t->pktinfo, controllen, *gso), sent = 0;
        /* A GSO send was refused and its datagrams are being retried one by one. */
        bool gso_retry = false;

        *ret_error = 0;
        while (sent < m) {
                int r = sendmmsg(t->fd, b->msgs + sent, m - sent, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        *waited |= errno == EAGAIN || errno == ENOBUFS;
                        /* Socket buffer full: wait, so back-pressure reaches the TAP queue
                         * and TCP inside the tunnel slows down instead of losing. */
                        if ((errno == EAGAIN || errno == ENOBUFS) &&
                            wait_writable(d, t->fd))
                                continue;
                        /* The kernel refuses UDP GSO here (EIO: no checksum offload on
                         * the route's device; EINVAL: segments beyond its MTU): send
                         * these one datagram each. */
                        if ((errno == EIO || errno == EINVAL) &&
                            b->msgs[sent].msg_hdr.msg_iovlen > 1) {
                                m = tx_build(b, b->msg_first[sent], last, t, t->pktinfo,
                                             controllen, false);
                                sent = 0;
                                gso_retry = true;
                                continue;
                        }
                        /* Our source address went away: let routing pick, and
                         * forget it so the next batch does too, unless the endpoint
                         * moved meanwhile (roaming): ep is a copy from the batch's
                         * start and must not be written back over a newer one. */
                        if (udp_source_gone(errno) && controllen) {
                                controllen = 0;
                                t->source_gone = true;
                                t->stale = t->ep;
                                t->ep.src.family = 0;
                                m = tx_build(b, b->msg_first[sent], last, t, t->pktinfo,
                                             controllen, *gso);
                                sent = 0;
                                gso_retry = false; /* the source, not GSO, was at fault */
                                continue;
                        }
                        *ret_error = errno;
                        break;
                }
                /* The datagrams GSO could not send went out one by one: GSO it was,
                 * and if it never worked on this socket, it never will. */
                if (gso_retry && !*gso_verified && *gso) {
                        *gso = false;
                        log_warning("UDP segmentation offload refused by the kernel, "
                                    "sending one datagram per system call");
                }
                gso_retry = false;
                for (unsigned i = sent; i < sent + (unsigned) r; i++) {
                        unsigned count = b->msg_first[i + 1] - b->msg_first[i];
                        if (count > 1) {
                                *gso_datagrams += count;
                                *gso_verified = true;
                        }
                }
                sent += (unsigned) r;
        }
        return b->msg_first[sent] - first;
}

/* One transmit batch: the segments left over from the last one, then up to max_frames frames
 * from the TAP queue q, sealed inside a batch of the calling thread's quiescent-state marker qs (the
 * only place peers and key pairs are loaded), then sent after leaving it. The thread that
 * reads the TAP runs it: the tx thread, or the rx thread while the tx thread is parked ("Idle
 * hand-over" below). Returns what it found (TX_*).
 *
 * The learning switch: a frame whose destination the MAC table knows goes to that one peer;
 * unknown unicast, broadcast and multicast are flooded to every peer (each copy sealed for its
 * peer; a TCP super-frame was cut into segments by tx_read, so a flood copies segments). The
 * sealed datagrams are then grouped by peer: one sendmmsg (with UDP GSO runs) per peer. */
enum {
        TX_READ_ALL = 1 << 0, /* it read max_frames frames: the TAP may hold more */
        TX_BUSY = 1 << 1,     /* it filled the send vector, left segments over, cut a TCP
                               * super-frame or waited for the socket */
};
static unsigned tx_batch(struct datapath *d, struct tx_state *s, _Atomic uint64_t *qs,
                         struct datapath_queue *q, unsigned max_frames) {
        struct tx_buffers *b = s->b;
        bool gso = s->gso, gso_verified = s->gso_verified, waited = false;

        qs_enter(qs);
        uint64_t now = now_ns(), dropped = 0, errors = 0, gso_frames = 0, gso_datagrams = 0,
                 unicast = 0, flooded = 0, copies = 0, orphans = 0;
        uint32_t now_sec = (uint32_t) (now / NSEC_PER_SEC),
                 end = atomic_load_explicit(&d->peers_end, memory_order_acquire);
        unsigned n = 0, frames = 0;

        b->gen++;
        if (b->gen == 0) { /* wrapped: no stale generation may match */
                memset(b->dest_gen, 0, sizeof(b->dest_gen));
                b->gen = 1;
        }
        b->n_dests = 0;
        while (n < DATAPATH_TX_DATAGRAMS) {
                if (b->next_seg == b->n_seg) {
                        if (frames == max_frames)
                                break;
                        int r = tx_read(d, b, q->tap_fd, &gso_frames);
                        if (r == 0)
                                break;
                        if (r == -EBADMSG) {
                                errors++;
                                continue;
                        }
                        if (r < 0) {
                                errors++;
                                break;
                        }
                        frames++;
                }
                const uint8_t *frame = b->seg[b->next_seg];
                int dest = -1;

                if (b->flood_next == 0 && b->seg_len[b->next_seg] >= 14 && !mac_is_group(frame)) {
                        uint32_t port = mactable_lookup(&d->macs, frame, now_sec);
                        if (port != MACTABLE_PORT_NONE) {
                                struct peer *p = peer_at(d, MESH_SLOT_OF_INDEX(port));
                                if (p && datapath_port(p) == port)
                                        dest = tx_dest(d, b, p->slot);
                        }
                }
                if (dest >= 0) {
                        unicast++;
                        if (tx_seal(b, (unsigned) dest, n)) {
                                b->dests[dest].unicast++;
                                n++;
                        }
                        b->next_seg++;
                        continue;
                }
                /* Flood: every peer, from where an earlier batch left off. */
                bool any = false;
                uint32_t slot = b->flood_next;
                for (; slot < end && n < DATAPATH_TX_DATAGRAMS; slot++) {
                        int i = tx_dest(d, b, slot);
                        if (i < 0)
                                continue;
                        any = true;
                        if (tx_seal(b, (unsigned) i, n)) {
                                n++;
                                copies++;
                        }
                }
                if (slot < end) {
                        b->flood_next = slot; /* the batch is full: the rest next time */
                        break;
                }
                if (b->flood_next == 0 && !any)
                        orphans++; /* no peer at all */
                b->flood_next = 0;
                flooded++;
                b->next_seg++;
        }

        /* Last use of the key pairs in this batch: the rekey decisions. Then leave it, so that
         * waiting for the socket below (up to 10 s) never keeps a retired key pair or a removed
         * peer from being freed: the datagrams are sealed and each ep is our own copy. */
        for (unsigned i = 0; i < b->n_dests; i++) {
                struct tx_dest *t = &b->dests[i];
                struct keypair *kp = t->kp;
                t->id = t->p->id;
                t->slot = t->p->slot;
                t->rekey = !t->dropped && kp && kp->initiator &&
                           (t->now - kp->birth_ns >= REKEY_AFTER_TIME * NSEC_PER_SEC ||
                            atomic_load_explicit(&kp->send_counter, memory_order_relaxed) >=
                                    REKEY_AFTER_MESSAGES);
                t->kp = NULL;
        }
        qs_leave(qs);

        /* Group by peer (a counting sort of the iovecs, stable: a flow's order stays). */
        unsigned at = 0;
        for (unsigned i = 0; i < b->n_dests; i++) {
                b->dests[i].first = at;
                at += b->dests[i].count;
                b->dests[i].count = 0;
        }
        for (unsigned i = 0; i < n; i++) {
                struct tx_dest *t = &b->dests[b->out_dest[i]];
                b->iov[t->first + t->count++] = b->sealed[i];
        }
        for (unsigned i = 0; i < b->n_dests; i++) {
                struct tx_dest *t = &b->dests[i];
                int send_error = 0;

                if (t->count == 0)
                        continue;
                t->sent = tx_send(d, s, t, t->first, t->first + t->count, &gso, &gso_verified,
                                  &waited, &gso_datagrams, &send_error);
                if (send_error) {
                        errors += t->count - t->sent;
                        udp_log_send_error(&s->ratelimit, now, "peer", &t->ep, send_error,
                                           t->count - t->sent);
                }
        }

        /* What the sends tell the peers (timer inputs, counters, handshake requests): inside a
         * batch again, and only to a peer still in its slot (the same one: its id). */
        qs_enter(qs);
        for (unsigned i = 0; i < b->n_dests; i++) {
                struct tx_dest *t = &b->dests[i];
                struct peer *p = peer_at(d, t->slot);

                dropped += t->dropped;
                if (!p || p != t->p || p->id != t->id)
                        continue;
                if (t->source_gone)
                        (void) peer_forget_source(p, &t->stale);
                if (t->sent > 0) {
                        if (t->ep.via_relay)
                                stat_add(&d->stats.relay_tx_packets, t->sent);
                        stat_add(&d->stats.tx_packets, t->sent);
                        stat_add(&d->stats.tx_bytes, t->bytes);
                        stat_add(&p->tx_packets, t->sent);
                        stat_add(&p->tx_bytes, t->bytes);
                        atomic_store_explicit(&p->last_tx_ns, now, memory_order_relaxed);
                        atomic_store_explicit(&p->rx_unanswered_since_ns, 0, memory_order_relaxed);
                }
                if (t->sent > 0 && t->unicast > 0) {
                        atomic_store_explicit(&p->last_tx_data_ns, now, memory_order_relaxed);
                        if (atomic_load_explicit(&p->tx_unanswered_since_ns, memory_order_relaxed) ==
                            0)
                                atomic_store_explicit(&p->tx_unanswered_since_ns, now,
                                                      memory_order_relaxed);
                }
                if (t->seeking || t->rekey)
                        request_handshake(d, p);
        }
        qs_leave(qs);

        stat_add(&d->stats.tx_dropped_no_session, dropped + orphans);
        stat_add(&d->stats.tx_errors, errors);
        stat_add(&d->stats.tx_gso_frames, gso_frames);
        stat_add(&d->stats.tx_udp_gso_datagrams, gso_datagrams);
        stat_add(&d->stats.tx_unicast_frames, unicast);
        stat_add(&d->stats.tx_flooded_frames, flooded);
        stat_add(&d->stats.tx_flood_copies, copies);
        stat_add(&q->frames, frames);
        s->gso = gso;
        s->gso_verified = gso_verified;
        unsigned found = max_frames > 0 && frames == max_frames ? TX_READ_ALL : 0;
        if (waited || gso_frames > 0 || n == DATAPATH_TX_DATAGRAMS || b->next_seg < b->n_seg)
                found |= TX_BUSY;
        return found;
}

/*
 * Idle hand-over. On an idle tunnel a frame's round trip would cost a thread wake-up per hop
 * more than a single-threaded VPN pays: the rx thread writes a ping into the TAP, the kernel
 * answers inside that write, and the sleeping tx thread must be woken (and scheduled, often
 * only once the rx thread sleeps) to send the answer. So once the tx thread has found the TAP
 * empty for DATAPATH_IDLE_PARK_MS it parks: it hands the TAP to the rx thread
 * (its queue's tap_reader) and sleeps on its own eventfd. The rx thread then polls the TAP beside the
 * socket and transmits itself, whenever the TAP has a frame and right after a batch it wrote to
 * the TAP (the answer is already queued: read without a poll() first, while that finds one).
 * A lone frame is sent without reading on (rx_transmit), so an idle round trip costs each side
 * no more system calls than a single-threaded VPN's (poll, receive, write, read, send). As soon
 * as one of its transmit batches finds the tunnel busy (tx_batch() says when), it finishes that
 * batch's segments and hands the TAP back, waking the tx thread: under load the two threads
 * work as before. Such a batch that meets a
 * full socket waits for it like the tx thread's (outside its quiescence batch): the rx thread
 * then receives nothing until the socket drains, once, before it hands the TAP back.
 *
 * With several queues (network.threads) this happens per queue: each tx thread parks on its own
 * idle queue and hands that queue alone to the rx thread, which then polls every queue handed
 * to it and, after a batch it wrote to the TAP, reads the one the last answer came from (the
 * kernel's answer is on the queue its flow hashes to). A busy queue goes back to its own tx
 * thread.
 *
 * Exactly one thread reads a queue and sends its frames at any time: the one its tap_reader
 * names. Only that thread changes it, after its last send has returned (release store), and
 * the other loads it (acquire) before it reads the queue, so a flow's frames (one flow, one
 * queue) leave in the order the TAP gave them. Each store is followed by a write to the other
 * thread's eventfd, which that thread polls after its load, so no hand-over is missed. Key
 * pairs: the rx thread seals inside batches of its own marker (DATAPATH_QS_RX), which is all
 * device.c's retirement argument needs (it is per thread: "loads key pair pointers only inside
 * a batch, never waits in one").
 */
static void handover(struct datapath_queue *q, unsigned reader, int wake_fd) {
        uint64_t one = 1;

        atomic_store_explicit(&q->tap_reader, reader, memory_order_release);
        (void) !write(wake_fd, &one, sizeof(one));
}

static void drain_eventfd(int fd) {
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
}

static void *tx_main(void *userdata) {
        struct datapath_queue *q = userdata;
        struct datapath *d = q->d;
        struct tx_state s;
        struct pollfd pfd[2] = { { .fd = q->tap_fd, .events = POLLIN },
                                 { .fd = d->stop_fd, .events = POLLIN } },
                      parked[2] = { { .fd = q->handover_fd, .events = POLLIN },
                                    { .fd = d->stop_fd, .events = POLLIN } };

        if (tx_state_init(d, &s) < 0) {
                log_error("tx thread: out of memory");
                return NULL;
        }
        for (;;) {
                /* Segments left over from the last batch go first, without waiting. */
                if (s.b->next_seg < s.b->n_seg) {
                        if (atomic_load_explicit(&d->stopping, memory_order_relaxed))
                                break;
                } else if (atomic_load_explicit(&q->tap_reader, memory_order_acquire) ==
                           DATAPATH_TAP_RX) {
                        /* Parked: the rx thread has the queue until it hands it back. */
                        if (poll(parked, 2, -1) < 0 && errno != EINTR)
                                break;
                        if (parked[1].revents)
                                break;
                        if (parked[0].revents)
                                drain_eventfd(q->handover_fd);
                        continue;
                } else {
                        int r = poll(pfd, 2, DATAPATH_IDLE_PARK_MS);
                        if (r < 0) {
                                if (errno == EINTR)
                                        continue;
                                break;
                        }
                        if (r == 0) {
                                handover(q, DATAPATH_TAP_RX, d->rx_handover_fd);
                                continue;
                        }
                        if (pfd[1].revents)
                                break;
                }

                tx_batch(d, &s, &d->qs[DATAPATH_QS_TX(q->index)].v, q, DATAPATH_BATCH);
        }
        free(s.b);
        return NULL;
}

/* The rx thread's turn at a TAP queue while its tx thread is parked. The first frame is sent on
 * its own. A lone frame (none sent from this queue for DATAPATH_IDLE_BURST_US: a ping, its
 * answer) ends the turn there, with no read that would find the TAP empty: if more follow, the
 * next poll() says so at once. A frame that follows another within that time is a burst: a
 * batch of up to DATAPATH_IDLE_TX_FRAMES - 1 more is read, and when that found the tunnel busy
 * (all of them there, or TX_BUSY), its left-over segments are sent too (no more frames read),
 * and the TAP goes back to the tx thread. *last_ns is this queue's last turn that found a frame.
 * Returns whether the queue had a frame. */
static bool rx_transmit(struct datapath *d, struct tx_state *s, struct datapath_queue *q,
                        uint64_t *last_ns) {
        _Atomic uint64_t *qs = &d->qs[DATAPATH_QS_RX].v;
        unsigned r = tx_batch(d, s, qs, q, 1);
        uint64_t now;
        bool burst;

        if (!r)
                return false; /* the queue was empty */
        now = now_ns();
        burst = now - *last_ns < (uint64_t) DATAPATH_IDLE_BURST_US * 1000;
        *last_ns = now;
        if (r == TX_READ_ALL) {
                if (!burst)
                        return true;
                r = tx_batch(d, s, qs, q, DATAPATH_IDLE_TX_FRAMES - 1);
        }
        while (s->b->next_seg < s->b->n_seg &&
               !atomic_load_explicit(&d->stopping, memory_order_relaxed))
                tx_batch(d, s, qs, q, 0);
        if (r)
                handover(q, DATAPATH_TAP_TX, q->handover_fd);
        return true;
}

/* rx_transmit on a queue the rx thread loaded as its own earlier in this pass: only if it
 * still is (one handed back since is its tx thread's again, and only that thread changes it
 * while it has it). false: it was ours and empty. */
static bool try_transmit(struct datapath *d, struct tx_state *s, struct datapath_queue *q,
                         uint64_t *last_ns) {
        if (atomic_load_explicit(&q->tap_reader, memory_order_acquire) != DATAPATH_TAP_RX)
                return true;
        return rx_transmit(d, s, q, last_ns);
}

/* A data message opened ahead by the receive thread's crypto workers (session_open): its key
 * pair as the batch found it, and the result, for rx_data to accept in order. */
struct rx_open {
        uint8_t *msg;
        struct keypair *kp;
        uint8_t *frame;
        uint32_t len, flen;
        uint64_t counter;
        int r;
};

/* Receive buffers: DATAPATH_BATCH datagrams, or with UDP GRO, DATAPATH_RX_GRO_SLOTS buffers
 * that each hold a run of coalesced datagrams. */
#define RX_IN_LEN                                                                                  \
        MAX((size_t) DATAPATH_BATCH * RELAYED_DATAGRAM_MAX_LEN,                                   \
            (size_t) DATAPATH_RX_GRO_SLOTS * UDP_GRO_BUFFER_LEN)
struct rx_buffers {
        uint8_t in[RX_IN_LEN];
        union sockaddr_union from[DATAPATH_BATCH];
        uint8_t control[DATAPATH_BATCH][UDP_CONTROL_SPACE] __attribute__((aligned(8)));
        struct iovec iov[DATAPATH_BATCH];
        /* Set up once (rx_main); recvmmsg changes only the lengths of the n_used it filled,
         * which the next receive puts back: a lone datagram touches one header, not them all. */
        struct mmsghdr msgs[DATAPATH_BATCH];
        unsigned n_used;
        /* Offloads: frames of one batch coalesced for the TAP (offload.h). */
        struct gro gro;
        /* Crypto workers: the batch's data messages opened ahead (rx_open_batch), the clock
         * they were opened with, and the pool. */
        struct rx_open open[DATAPATH_RX_OPEN_MAX];
        unsigned n_open;
        uint64_t open_now;
        struct workers pool;
};

struct rx_batch {
        uint64_t now;
        uint32_t now_sec;
        /* The peer whose datagrams are being handled (the slot of their session index), its
         * key pairs and endpoint as this batch loaded them, and what it got so far: added to it
         * when another peer's datagram comes (rx_peer), and at the batch's end. */
        uint32_t slot; /* MESH_MAX_PEERS: none loaded yet */
        struct peer *p;
        struct keypair *cur, *prev, *next;
        struct endpoint ep;
        uint64_t p_packets, p_bytes;
        bool p_authenticated, p_got_data;
        uint64_t packets, bytes, replayed, bad_tag, unknown, malformed, hs_dropped, relayed,
                hs_ratelimited, gro_datagrams;
        struct gro *gro; /* NULL: one write per frame */
        bool vnet_hdr;   /* the TAP wants a vnet header on every write */
        /* The data messages opened ahead (n_open of them, in the batch's order), and the
         * first one rx_data has not reached yet. */
        const struct rx_open *open;
        unsigned n_open, next_open;
        bool got_data, queued;
        struct endpoint last_bad;
        const char *last_reason;
};

/* What the batch's current peer got: its counters and timer inputs. */
static void rx_peer_flush(struct rx_batch *x) {
        struct peer *p = x->p;

        if (!p)
                return;
        stat_add(&p->rx_packets, x->p_packets);
        stat_add(&p->rx_bytes, x->p_bytes);
        if (x->p_authenticated) {
                atomic_store_explicit(&p->last_rx_ns, x->now, memory_order_relaxed);
                atomic_store_explicit(&p->tx_unanswered_since_ns, 0, memory_order_relaxed);
        }
        if (x->p_got_data) {
                atomic_store_explicit(&p->last_rx_data_ns, x->now, memory_order_relaxed);
                if (atomic_load_explicit(&p->rx_unanswered_since_ns, memory_order_relaxed) == 0)
                        atomic_store_explicit(&p->rx_unanswered_since_ns, x->now,
                                              memory_order_relaxed);
        }
        x->p_packets = x->p_bytes = 0;
        x->p_authenticated = x->p_got_data = false;
}

/* Make the peer in slot the batch's current one (loading its key pairs once per run of its
 * datagrams). */
static void rx_peer(struct datapath *d, struct rx_batch *x, uint32_t slot) {
        if (slot == x->slot)
                return;
        rx_peer_flush(x);
        x->slot = slot;
        x->p = peer_at(d, slot);
        x->cur = x->prev = x->next = NULL;
        x->ep = (struct endpoint){};
        if (!x->p)
                return;
        x->cur = atomic_load_explicit(&x->p->current, memory_order_acquire);
        x->prev = atomic_load_explicit(&x->p->previous, memory_order_acquire);
        x->next = atomic_load_explicit(&x->p->next, memory_order_acquire);
        peer_get_endpoint(x->p, &x->ep);
        /* The clock after the key pairs: one installed since the batch began must not look
         * born in the future to the expiry checks (they subtract its birth from now). */
        x->now = now_ns();
        x->now_sec = (uint32_t) (x->now / NSEC_PER_SEC);
}

/* Of a peer's key pairs, the one with session index idx, or NULL. */
static struct keypair *keypair_with_index(struct keypair *cur, struct keypair *next,
                                          struct keypair *prev, uint32_t idx) {
        if (cur && cur->local_index == idx)
                return cur;
        if (next && next->local_index == idx)
                return next;
        if (prev && prev->local_index == idx)
                return prev;
        return NULL;
}

/* The key pair a session index names: the slot in its low bits gives the peer, and the peer
 * must own the index itself (a forged or stale index finds nothing). */
static struct keypair *lookup_keypair(struct datapath *d, struct rx_batch *x, uint32_t idx) {
        rx_peer(d, x, MESH_SLOT_OF_INDEX(idx));
        return keypair_with_index(x->cur, x->next, x->prev, idx);
}

static bool enqueue(struct datapath *d, enum queued_kind kind, const uint8_t *data, size_t len,
                    const struct endpoint *from, const struct peer *p) {
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
        q->slot = p ? p->slot : MESH_MAX_PEERS;
        q->peer_id = p ? p->id : 0;
        atomic_store_explicit(&d->hs_head, head + 1, memory_order_release);
        return true;
}

static bool queue_under_load(struct datapath *d) {
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

/* Write what the batch coalesced to the TAP, each with its vnet header, in order. */
static void rx_flush(struct datapath *d, struct rx_batch *x) {
        struct gro *g = x->gro;

        for (size_t i = 0; i < g->n; i++) {
                uint8_t vh[TAP_VNET_HDR_LEN];
                struct iovec iov[2] = {
                        { .iov_base = vh, .iov_len = sizeof(vh) },
                        { .iov_base = (void *) g->items[i].data, .iov_len = g->items[i].len },
                };
                vnet_hdr_to_le(&g->items[i].vh, vh);
                (void) !writev(d->tap->write_fd, iov, 2);
        }
        gro_reset(g);
}

/* A decrypted frame for the TAP: written at once on a plain TAP, handed to the coalescer (and
 * written by rx_flush at the end of the batch) with offloads. The frame stays in the receive
 * buffer until then. */
static void rx_deliver(struct datapath *d, struct rx_batch *x, const uint8_t *frame, size_t len) {
        if (!x->gro && x->vnet_hdr) {
                static const uint8_t none[TAP_VNET_HDR_LEN];
                struct iovec iov[2] = {
                        { .iov_base = (void *) none, .iov_len = sizeof(none) },
                        { .iov_base = (void *) frame, .iov_len = len },
                };
                if (writev(d->tap->write_fd, iov, 2) < 0)
                        return;
        } else if (!x->gro) {
                if (write(d->tap->write_fd, frame, len) < 0)
                        return;
        } else if (gro_add(x->gro, frame, len) == -ENOSPC) {
                rx_flush(d, x);
                (void) gro_add(x->gro, frame, len); /* an empty batch takes any frame */
        }
        x->packets++;
        x->bytes += len;
        x->p_packets++;
        x->p_bytes += len;
}

/* The message at buf if a crypto worker opened it ahead (the batch walks in the same order;
 * one it skipped, for instance relay data not from the relay, is passed over). */
static const struct rx_open *opened_ahead(struct rx_batch *x, const uint8_t *buf) {
        while (x->next_open < x->n_open && x->open[x->next_open].msg < buf)
                x->next_open++;
        if (x->next_open < x->n_open && x->open[x->next_open].msg == buf)
                return &x->open[x->next_open++];
        return NULL;
}

static void rx_data(struct datapath *d, struct rx_batch *x, uint8_t *buf, size_t len,
                    const struct endpoint *from) {
        const struct rx_open *o = opened_ahead(x, buf);
        struct keypair *kp = lookup_keypair(d, x, get_le32(buf + 4));
        struct peer *p = x->p;
        uint8_t *frame;
        size_t flen;
        uint64_t counter;
        int r;

        if (o && o->kp != kp)
                /* A handshake replaced the key pair between opening and now: the message
                 * (opened in place) cannot be opened again. */
                return bad(x, &x->unknown, "session replaced while the batch was opened", from);
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
                    enqueue(d, QUEUED_UNKNOWN_SESSION, buf, 8, from, x->p))
                        x->queued = true;
                return bad(x, &x->unknown, "unknown session index", from);
        }
        if (o) {
                /* Opened by a worker: the replay window is ours (one writer) to check now. */
                r = o->r;
                frame = o->frame;
                flen = o->flen;
                counter = o->counter;
                if (r == 0 && !session_accept(kp, counter))
                        r = -EALREADY;
        } else
                r = session_decrypt(kp, buf, len, x->now, &frame, &flen, &counter);
        if (r == -EALREADY)
                return bad(x, &x->replayed, "replayed counter", from);
        if (r == -ESTALE)
                return bad(x, &x->unknown, "expired session", from);
        if (r < 0)
                return bad(x, &x->bad_tag, "authentication failed", from);

        x->p_authenticated = true;
        if (kp == x->next && !atomic_exchange(&p->next_confirmed, true))
                wake_control(d);
        /* Roaming: the endpoint follows the last authenticated data packet, whether it came
         * straight from the peer or through the relay, and so does our source address. */
        if (!endpoint_equal(from, &x->ep) || !endpoint_same_source(from, &x->ep)) {
                peer_set_endpoint(p, from);
                x->ep = *from;
                wake_control(d); /* the control loop reports the new path */
        }
        if (kp == x->cur && kp->initiator &&
            x->now - kp->birth_ns >=
                    (REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) * NSEC_PER_SEC)
                request_handshake(d, p);
        if (flen == 0)
                return; /* keepalive */
        x->got_data = x->p_got_data = true;
        /* The learning switch learns from authenticated frames only: the source address is
         * behind this peer (a move from another peer is counted by the table). */
        if (flen >= 14)
                (void) mactable_learn(&d->macs, frame + 6, datapath_port(p), x->now_sec);
        rx_deliver(d, x, frame, flen);
}

/* A path probe is opened here (the replay window has one writer: this thread) and handed to the
 * control loop, which answers or switches paths. */
static void rx_probe(struct datapath *d, struct rx_batch *x, uint8_t *buf, size_t len,
                     const struct endpoint *from) {
        uint8_t type = buf[0], *nonce;
        struct keypair *kp = lookup_keypair(d, x, get_le32(buf + 4));
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
                    from, x->p))
                x->queued = true;
        else
                x->hs_dropped++;
}

/* The peer's closing message: opened here (the replay window's one writer), handed up. */
static void rx_close(struct datapath *d, struct rx_batch *x, uint8_t *buf, size_t len,
                     const struct endpoint *from) {
        struct keypair *kp = lookup_keypair(d, x, get_le32(buf + 4));
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
        if (enqueue(d, QUEUED_CLOSE, buf, 8, from, x->p))
                x->queued = true;
        else
                x->hs_dropped++;
}

/* Mesh discovery: a peer-list chunk, opened here like the closing message (the replay
 * window's one writer) and handed up in its own queue with the peer whose session opened it. */
static void rx_discovery(struct datapath *d, struct rx_batch *x, uint8_t *buf, size_t len,
                         const struct endpoint *from) {
        struct keypair *kp = lookup_keypair(d, x, get_le32(buf + 4));
        uint32_t head = atomic_load_explicit(&d->disco_head, memory_order_relaxed);
        uint32_t tail = atomic_load_explicit(&d->disco_tail, memory_order_acquire);
        struct queued_discovery *q;
        uint8_t *plain;
        size_t plen;
        int r;

        if (!kp || !x->p)
                return bad(x, &x->unknown, "discovery message for an unknown session", from);
        r = session_decrypt_control(kp, MESSAGE_DISCOVERY, buf, len, x->now, &plain, &plen, NULL);
        if (r == -EALREADY)
                return bad(x, &x->replayed, "replayed discovery message", from);
        if (r < 0 || plen > DISCOVERY_PLAIN_MAX_LEN)
                return bad(x, &x->bad_tag, "discovery message failed authentication", from);
        if (head - tail >= DISCOVERY_QUEUE_LEN) {
                x->hs_dropped++; /* the sender's periodic resend brings it again */
                return;
        }
        q = &d->disco_queue[head % DISCOVERY_QUEUE_LEN];
        memcpy(q->plain, plain, plen);
        q->len = (uint16_t) plen;
        q->from = *from;
        q->slot = x->p->slot;
        q->peer_id = x->p->id;
        atomic_store_explicit(&d->disco_head, head + 1, memory_order_release);
        x->queued = true;
}

static void rx_datagram(struct datapath *d, struct rx_batch *x, uint8_t *buf, size_t len,
                        const struct endpoint *from, bool relayed) {
        if (!relayed && stun_is_message(buf, len)) {
                /* Responses to our STUN requests (NAT discovery) share the socket. */
                if (enqueue(d, QUEUED_MESSAGE, buf, len, from, NULL))
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
                if (queue_under_load(d)) {
                        atomic_store_explicit(&d->hs_queue_was_long, true, memory_order_relaxed);
                        if (d->rx_ratelimit &&
                            !ratelimit_allow(d->rx_ratelimit, &from->addr.sa, from->len, x->now)) {
                                x->hs_ratelimited++;
                                return;
                        }
                }
                if (enqueue(d, QUEUED_MESSAGE, buf, len, from, NULL))
                        x->queued = true;
                else
                        x->hs_dropped++;
                return;
        case MESSAGE_PATH_PROBE:
        case MESSAGE_PATH_PROBE_REPLY:
                return rx_probe(d, x, buf, len, from);
        case MESSAGE_CLOSE:
                return rx_close(d, x, buf, len, from);
        case MESSAGE_DISCOVERY: /* mesh discovery */
                return rx_discovery(d, x, buf, len, from);
        case MESSAGE_RELAY_CHALLENGE:
        case MESSAGE_RELAY_REGISTERED:
        case MESSAGE_RELAY_PEER:
                if (relayed)
                        break; /* relay control is never wrapped */
                if (enqueue(d, QUEUED_MESSAGE, buf, len, from, NULL))
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

/* How the rx thread receives (fixed at its start). */
struct rx_setup {
        bool offload;   /* the TAP takes a vnet header */
        bool tcp_gro;   /* coalesce TCP segments for the TAP */
        bool udp_gro;   /* the sockets hand over UDP GRO runs */
        size_t slots;   /* receive buffers per batch */
};

/*
 * Crypto workers (network.rx_workers). Opening (ChaCha20-Poly1305) is most of the receive
 * thread's work under load, and it needs nothing but the key pair: so a batch with enough data
 * messages is opened by the receive thread and its workers (workers.h) together, before the
 * batch is handled; everything with an order or a single writer stays with the receive thread,
 * in the batch's order, after: the replay window (session_accept), roaming, the learning
 * switch, the TAP writes and their coalescing, the counters. A flow's frames thus reach the TAP
 * in the order they came, and no lock is taken.
 *
 * The key pairs are found inside the receive thread's quiescent-state batch, which lasts until
 * the workers are done (workers_run returns then), so no worker ever holds one past it. A
 * message whose peer has no key pair yet, and everything that is not a data message, is left
 * to the batch (rx_data opens what it was not handed). Small batches (an idle tunnel's ping)
 * skip all this: waking a worker costs more than opening a few messages.
 */
static void rx_open_one(void *ctx, unsigned i) {
        struct rx_buffers *b = ctx;
        struct rx_open *o = &b->open[i];
        size_t flen = 0;

        o->r = session_open(o->kp, o->msg, o->len, b->open_now, &o->frame, &flen, &o->counter);
        o->flen = (uint32_t) flen;
}

/* The key pair of session index idx, as rx_data's lookup would find it (without the batch's
 * per-peer cache, which stays rx_data's). */
static struct keypair *find_keypair(struct datapath *d, uint32_t idx) {
        struct peer *p = peer_at(d, MESH_SLOT_OF_INDEX(idx));

        if (!p)
                return NULL;
        return keypair_with_index(atomic_load_explicit(&p->current, memory_order_acquire),
                                  atomic_load_explicit(&p->next, memory_order_acquire),
                                  atomic_load_explicit(&p->previous, memory_order_acquire), idx);
}

/* A datagram of the batch: note it if it is a data message (straight, or wrapped in relay
 * data: rx_datagram checks the wrapping's origin later) of a session we have. */
static void rx_note_data(struct datapath *d, struct rx_buffers *b, uint8_t *buf, size_t len) {
        enum message_type type;
        struct keypair *kp;

        if (b->n_open == DATAPATH_RX_OPEN_MAX || stun_is_message(buf, len))
                return;
        type = message_classify(buf, len);
        if (type == MESSAGE_RELAY_DATA) {
                buf += sizeof(struct message_relay_data);
                len -= sizeof(struct message_relay_data);
                type = message_classify(buf, len);
        }
        if (type != MESSAGE_DATA || !(kp = find_keypair(d, get_le32(buf + 4))))
                return;
        b->open[b->n_open++] = (struct rx_open){ .msg = buf, .kp = kp, .len = (uint32_t) len };
}

/* Open the batch's n datagrams' data messages ahead, on the workers too, when there are enough
 * (inside the receive thread's quiescent-state batch). Returns how many were opened. */
static unsigned rx_open_batch(struct datapath *d, struct rx_buffers *b, const struct rx_setup *c,
                              unsigned n, uint64_t now) {
        b->n_open = 0;
        for (unsigned i = 0; i < n; i++) {
                size_t len = b->msgs[i].msg_len, off = 0, k,
                       segment = c->udp_gro ? udp_read_gro(&b->msgs[i].msg_hdr) : 0;
                uint8_t *in = b->iov[i].iov_base;

                if (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                        continue;
                while ((k = udp_gro_next(len, segment, &off)) > 0)
                        rx_note_data(d, b, in + off - k, k);
        }
        if (b->n_open < DATAPATH_RX_SPLIT_MIN) {
                b->n_open = 0;
                return 0;
        }
        b->open_now = now;
        workers_run(&b->pool, b->n_open);
        return b->n_open;
}

/* One batch from socket fd (map_v4: the IPv4 socket beside an IPv6 one, whose sources are kept
 * v4-mapped): receive, open, deliver, count. true when it wrote data to the TAP. */
static bool rx_receive(struct datapath *d, struct rx_buffers *b, const struct rx_setup *c, int fd,
                       bool map_v4, struct log_ratelimit *rl) {
        for (unsigned i = 0; i < b->n_used; i++) {
                b->msgs[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
                b->msgs[i].msg_hdr.msg_controllen = sizeof(b->control[i]);
        }
        int n = recvmmsg(fd, b->msgs, (unsigned) c->slots, MSG_DONTWAIT, NULL);
        if (n <= 0) {
                b->n_used = 0;
                return false;
        }
        b->n_used = (unsigned) n;

        forget_requested(d);
        qs_enter(&d->qs[DATAPATH_QS_RX].v);
        struct rx_batch x = {
                .now = now_ns(),
                .slot = MESH_MAX_PEERS,
                .gro = c->tcp_gro ? &b->gro : NULL,
                .vnet_hdr = c->offload,
        };
        x.now_sec = (uint32_t) (x.now / NSEC_PER_SEC);
        if (b->pool.n_threads > 0) {
                x.open = b->open;
                x.n_open = rx_open_batch(d, b, c, (unsigned) n, x.now);
                stat_add(&d->stats.rx_worker_datagrams,
                         atomic_exchange_explicit(&b->pool.worker_items, 0, memory_order_relaxed));
        }
        for (int i = 0; i < n; i++) {
                struct endpoint from = { .len = b->msgs[i].msg_hdr.msg_namelen };
                uint8_t *in = b->iov[i].iov_base;
                size_t len = b->msgs[i].msg_len, off = 0, k, segment = 0;

                memcpy(&from.addr, &b->from[i], from.len);
                if (map_v4)
                        udp_map_v4(&from.addr, &from.len);
                udp_read_pktinfo(&b->msgs[i].msg_hdr, &from);
                if (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                        bad(&x, &x.malformed, "oversized", &from);
                        continue;
                }
                /* UDP GRO: equal-sized datagrams of one sender, back to back. */
                if (c->udp_gro) {
                        segment = udp_read_gro(&b->msgs[i].msg_hdr);
                        if (segment > 0 && segment < len)
                                x.gro_datagrams += (len + segment - 1) / segment;
                }
                while ((k = udp_gro_next(len, segment, &off)) > 0)
                        rx_datagram(d, &x, in + off - k, k, &from, false);
        }
        if (x.gro) {
                rx_flush(d, &x);
                stat_add(&d->stats.rx_gro_merged, b->gro.coalesced);
                b->gro.coalesced = 0;
        }
        rx_peer_flush(&x);
        qs_leave(&d->qs[DATAPATH_QS_RX].v);

        if (x.last_reason) {
                unsigned suppressed = 0;
                if (log_ratelimit_below(rl, x.now, &suppressed)) {
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
        stat_add(&d->stats.rx_udp_gro_datagrams, x.gro_datagrams);
        if (x.queued)
                wake_control(d);
        return x.got_data;
}

/* rx_main's poll set: the two sockets and two eventfds come first, then the queues. */
#define RX_POLL_QUEUES 4

static void *rx_main(void *userdata) {
        struct datapath *d = userdata;
        struct rx_buffers *b = calloc(1, sizeof(*b));
        /* The socket, the stop and hand-over eventfds, the IPv4 socket (an fd below 0, which
         * poll() skips, when there is none), then the TAP queues whose tx threads are parked
         * (idle hand-over), which owned[] names. */
        struct pollfd pfd[RX_POLL_QUEUES + DATAPATH_MAX_QUEUES] = {
                { .fd = d->sockets.fd, .events = POLLIN },
                { .fd = d->stop_fd, .events = POLLIN },
                { .fd = d->rx_handover_fd, .events = POLLIN },
                { .fd = d->sockets.fd4, .events = POLLIN },
        };
        const int sockets[2] = { d->sockets.fd, d->sockets.fd4 };
        const unsigned socket_pfd[2] = { 0, 3 };
        struct datapath_queue *owned[DATAPATH_MAX_QUEUES];
        unsigned n_owned;
        struct tx_state tx;
        /* Per-packet problems are logged at most 5 times per 10 s from this thread. */
        struct log_ratelimit ratelimit = LOG_RATELIMIT_INIT(10, 5);
        struct rx_setup setup = {
                .offload = d->tap->vnet_hdr,
                .tcp_gro = d->tap->vnet_hdr && !(d->offload_disabled & DATAPATH_NO_TCP_GRO),
                .slots = DATAPATH_BATCH,
        };
        size_t slot_len = RELAYED_DATAGRAM_MAX_LEN;

        if (!b || tx_state_init(d, &tx) < 0) {
                log_error("rx thread: out of memory");
                free(b);
                return NULL;
        }
        if (setup.tcp_gro) {
                /* Coalescing buffers: reserved address space, touched only as a batch
                 * coalesces (idle memory stays small). */
                b->gro.bufs = calloc(OFFLOAD_GRO_MAX_ITEMS, OFFLOAD_MAX_FRAME);
                if (!b->gro.bufs) {
                        log_error("rx thread: out of memory");
                        free(tx.b);
                        free(b);
                        return NULL;
                }
        }
        if (setup.offload && !(d->offload_disabled & DATAPATH_NO_UDP_GRO)) {
                /* On both sockets or neither: the buffers are sized for one or the other. */
                int r = udp_set_gro(d->sockets.fd, true);
                if (r >= 0 && d->sockets.fd4 >= 0) {
                        r = udp_set_gro(d->sockets.fd4, true);
                        if (r < 0)
                                (void) udp_set_gro(d->sockets.fd, false);
                }
                if (r < 0)
                        log_info_errno(r, "UDP GRO not available, receiving one datagram per "
                                          "buffer: %m");
                else {
                        setup.udp_gro = true;
                        setup.slots = DATAPATH_RX_GRO_SLOTS;
                        slot_len = UDP_GRO_BUFFER_LEN;
                }
        }
        for (unsigned i = 0; i < setup.slots; i++) {
                b->iov[i] = (struct iovec){ .iov_base = b->in + i * slot_len, .iov_len = slot_len };
                b->msgs[i].msg_hdr = (struct msghdr){
                        .msg_name = &b->from[i],
                        .msg_namelen = sizeof(b->from[i]),
                        .msg_iov = &b->iov[i],
                        .msg_iovlen = 1,
                        .msg_control = b->control[i],
                        .msg_controllen = sizeof(b->control[i]),
                };
        }
        if (d->rx_workers > 0) {
                /* Crypto workers: they inherit this thread's mask (no signals). */
                int r = workers_start(&b->pool, d->rx_workers, rx_open_one, b, "shadowmesh-rxw");
                if (r < 0)
                        log_warning_errno(r, "rx thread: starting crypto workers failed, opening "
                                             "every datagram on this thread: %m");
        }

        /* The answer right after a batch written to the TAP (see below): the queue the last
         * frame this thread sent came from, whether to read it right after such a batch, and
         * when a batch last went without (0: the last one did not). Each queue's last turn
         * that found a frame (rx_transmit). */
        unsigned last_queue = 0;
        bool speculate = true;
        uint64_t skipped_ns = 0, last_tx_ns[DATAPATH_MAX_QUEUES] = { 0 };

        for (;;) {
                n_owned = 0;
                for (unsigned i = 0; i < d->n_queues; i++)
                        if (atomic_load_explicit(&d->queues[i].tap_reader, memory_order_acquire) ==
                            DATAPATH_TAP_RX) {
                                owned[n_owned] = &d->queues[i];
                                pfd[RX_POLL_QUEUES + n_owned] = (struct pollfd){
                                        .fd = d->queues[i].tap_fd, .events = POLLIN
                                };
                                n_owned++;
                        }
                if (poll(pfd, RX_POLL_QUEUES + n_owned, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[1].revents)
                        break;
                if (pfd[2].revents) {
                        /* A tx thread parked: poll its queue from now on. */
                        drain_eventfd(d->rx_handover_fd);
                        continue;
                }
                bool tap_had_frame = false;
                for (unsigned i = 0; i < n_owned; i++)
                        if (pfd[RX_POLL_QUEUES + i].revents &&
                            rx_transmit(d, &tx, owned[i], &last_tx_ns[owned[i]->index])) {
                                last_queue = owned[i]->index;
                                tap_had_frame = true;
                        }
                /* A batch went without the read below, and the TAP had an answer right after
                 * it (nothing else woke us): read after such batches again. */
                if (skipped_ns && tap_had_frame && !pfd[0].revents && !pfd[3].revents &&
                    now_ns() - skipped_ns < (uint64_t) DATAPATH_IDLE_BURST_US * 1000)
                        speculate = true;
                skipped_ns = 0;

                /* A batch from each socket that has datagrams, then the kernel's answer to what
                 * they wrote (a ping's echo, a TCP ACK): it is in the TAP already, so send it
                 * now rather than wake a tx thread, or even poll() for it. The guess: the queue
                 * the last answer came from (one flow, one queue); an answer on another queue
                 * is found by the next poll(). Where what the batches write brings no answer
                 * (the pinging side), that read finds nothing: after one such miss, batches go
                 * without it until an answer is seen right after one again. */
                bool got_data = false;
                for (unsigned sock = 0; sock < 2; sock++)
                        if (pfd[socket_pfd[sock]].revents)
                                got_data |= rx_receive(d, b, &setup, sockets[sock], sock == 1,
                                                       &ratelimit);
                if (got_data && n_owned > 0) {
                        struct datapath_queue *q = owned[0];
                        for (unsigned i = 1; i < n_owned; i++)
                                if (owned[i]->index == last_queue)
                                        q = owned[i];
                        if (!speculate)
                                skipped_ns = now_ns();
                        else if (!try_transmit(d, &tx, q, &last_tx_ns[q->index]))
                                speculate = false;
                        else
                                last_queue = q->index;
                }
        }
        workers_stop(&b->pool);
        free(tx.b);
        free(b->gro.bufs);
        free(b);
        return NULL;
}

int datapath_parse_disable(const char *s, unsigned *ret, char *ret_bad, size_t bad_len) {
        static const struct {
                const char *name;
                unsigned flag;
        } words[] = {
                { "udp-gso", DATAPATH_NO_UDP_GSO },
                { "udp-gro", DATAPATH_NO_UDP_GRO },
                { "tcp-gro", DATAPATH_NO_TCP_GRO },
        };
        unsigned flags = 0;

        while (s && *s) {
                size_t len = strcspn(s, ",");
                bool found = false;

                for (size_t i = 0; i < ELEMENTSOF(words); i++)
                        if (len == strlen(words[i].name) && strncmp(s, words[i].name, len) == 0) {
                                flags |= words[i].flag;
                                found = true;
                        }
                if (!found && len > 0) {
                        snprintf(ret_bad, bad_len, "%.*s", (int) MIN(len, (size_t) INT_MAX), s);
                        return -EINVAL;
                }
                s += len;
                if (*s == ',')
                        s++;
        }
        *ret = flags;
        return 0;
}

static void handover_fds_close(struct datapath *d) {
        for (unsigned i = 0; i < DATAPATH_MAX_QUEUES; i++) {
                if (d->queues[i].handover_fd >= 0)
                        close(d->queues[i].handover_fd);
                d->queues[i].handover_fd = -1;
        }
        if (d->rx_handover_fd >= 0)
                close(d->rx_handover_fd);
        d->rx_handover_fd = -1;
}

/* Stop and join the first n tx threads (start failed midway). */
static void stop_started(struct datapath *d, unsigned n) {
        uint64_t one = 1;

        atomic_store(&d->stopping, true);
        (void) !write(d->stop_fd, &one, sizeof(one));
        for (unsigned i = 0; i < n; i++)
                pthread_join(d->queues[i].thread, NULL);
}

static unsigned cpus_available(void) {
        cpu_set_t set;
        int n;

        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                return 1;
        n = CPU_COUNT(&set);
        return n < 1 ? 1 : (unsigned) n;
}

unsigned datapath_queues_for(uint32_t threads) {
        if (threads > 0)
                return MIN(threads, (uint32_t) DATAPATH_MAX_QUEUES);
        return MIN(cpus_available(), (unsigned) DATAPATH_MAX_QUEUES);
}

/* auto: half the CPUs, less the receive thread's own; none below 4 CPUs. A worker pays only
 * on a core the receive thread, the applications and the kernel's network stack leave free: on
 * 2 CPUs it cost 12-15 % of one TCP stream (bench/README.md). */
unsigned datapath_rx_workers_for(uint32_t rx_workers) {
        unsigned cpus;

        if (rx_workers != CONFIG_RX_WORKERS_AUTO)
                return MIN(rx_workers, (uint32_t) WORKERS_MAX);
        cpus = cpus_available();
        return cpus < 4 ? 0 : MIN(cpus / 2 - 1, (unsigned) WORKERS_MAX);
}

int datapath_start(struct datapath *d) {
        sigset_t all, old;
        unsigned started = 0;
        int r = 0;

        if (d->tap->n_queues < 1 || d->tap->n_queues > DATAPATH_MAX_QUEUES)
                return -EINVAL;
        d->n_queues = d->tap->n_queues;
        /* Idle hand-over: each tx thread reads its queue first; each wakes the other by these. */
        d->rx_handover_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        for (unsigned i = 0; i < DATAPATH_MAX_QUEUES; i++) {
                struct datapath_queue *q = &d->queues[i];
                q->d = d;
                q->index = i;
                q->tap_fd = i < d->n_queues ? d->tap->queue_fd[i] : -EBADF;
                atomic_store(&q->tap_reader, DATAPATH_TAP_TX);
                q->handover_fd = i < d->n_queues ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
                if (i < d->n_queues && q->handover_fd < 0 && r == 0)
                        r = -errno;
        }
        if (d->rx_handover_fd < 0 && r == 0)
                r = -errno;
        if (r < 0) {
                handover_fds_close(d);
                return r;
        }
        atomic_store(&d->stopping, false);
        /* The threads take no signals: the control loop handles them (sd-event signalfd). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (; started < d->n_queues; started++) {
                r = -pthread_create(&d->queues[started].thread, NULL, tx_main, &d->queues[started]);
                if (r < 0)
                        break;
        }
        if (r == 0)
                r = -pthread_create(&d->rx_thread, NULL, rx_main, d);
        if (r < 0)
                stop_started(d, started);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                handover_fds_close(d);
                return r;
        }
        for (unsigned i = 0; i < d->n_queues; i++) {
                char name[16] = "shadowmesh-tx";
                if (d->n_queues > 1) /* one digit: DATAPATH_MAX_QUEUES <= 10 */
                        snprintf(name, sizeof(name), "shadowmesh-tx%c", (char) ('0' + i % 10));
                pthread_setname_np(d->queues[i].thread, name);
        }
        pthread_setname_np(d->rx_thread, "shadowmesh-rx");
        d->threads_started = true;
        return 0;
}

void datapath_stop(struct datapath *d) {
        if (!d->threads_started)
                return;
        stop_started(d, d->n_queues);
        pthread_join(d->rx_thread, NULL);
        d->threads_started = false;
        handover_fds_close(d);
}
