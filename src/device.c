/* SPDX-License-Identifier: MIT */
/*
 * A tunnel instance: start-up ladder, control loop, shutdown in reverse order (main.c starts
 * the front ends after device_new() and stops them before device_free()).
 *
 * Start-up does everything that can fail for a reason the user must fix before it creates the
 * TAP (resolve the peer, bind the port), so a failed start leaves nothing behind.
 */
#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <sys/eventfd.h>

#include "addrwatch.h"
#include "caps.h"
#include "credit.h"
#include "datapath.h"
#include "device.h"
#include "handshake.h"
#include "hostport.h"
#include "keys.h"
#include "log.h"
#include "netcheck.h"
#include "path.h"
#include "ratelimit.h"
#include "relay-client.h"
#include "resolve.h"
#include "stun.h"
#include "timers.h"

static void sync_listed(struct device *d);

void device_emit_changed(struct device *d, const char *const *properties) {
        sync_listed(d); /* a peer's state moved: it may enter or leave what the APIs list */
        if (d->emit_changed)
                d->emit_changed(d, properties);
}

/* Come back to on_wake: the queue holds more than one round's share. */
static void wake_again(struct device *d) {
        uint64_t one = 1;
        (void) !write(d->dp.wake_fd, &one, sizeof(one));
}

void device_log_stats(struct device *d) {
        struct stats *s = &d->dp.stats;
        /* Frames read from each TAP queue, "N/N/...": how the kernel spread the flows over the
         * transmit threads (network.threads). */
        char queues[DATAPATH_MAX_QUEUES * 21] = "";
        size_t used = 0;

        for (unsigned i = 0; i < d->dp.n_queues && used < sizeof(queues); i++)
                used += (size_t) snprintf(queues + used, sizeof(queues) - used, "%s%llu",
                                          i ? "/" : "",
                                          (unsigned long long) atomic_load_explicit(
                                                  &d->dp.queues[i].frames, memory_order_relaxed));

#define S(x) (unsigned long long) atomic_load_explicit(&s->x, memory_order_relaxed)
        log_info("stats: tx_packets=%llu tx_bytes=%llu rx_packets=%llu rx_bytes=%llu "
                 "rx_replayed=%llu rx_bad_tag=%llu rx_unknown_index=%llu rx_malformed=%llu "
                 "rx_bad_mac1=%llu rx_handshake_failed=%llu rx_handshake_dropped=%llu "
                 "tx_dropped_no_session=%llu tx_errors=%llu handshakes=%llu "
                 "initiations_sent=%llu cookies_sent=%llu relay_tx_packets=%llu "
                 "relay_rx_packets=%llu probes_sent=%llu path_switches=%llu rx_reflected=%llu "
                 "rx_handshake_ratelimited=%llu handshakes_deferred=%llu tx_gso_frames=%llu "
                 "tx_udp_gso_datagrams=%llu rx_udp_gro_datagrams=%llu rx_gro_merged=%llu "
                 "peers=%zu tx_unicast_frames=%llu tx_flooded_frames=%llu tx_flood_copies=%llu "
                 "peers_refused_full=%llu macs_forgotten=%llu macs_learned=%llu macs_moved=%llu "
                 "macs_refused_full=%llu tap_queue_frames=%s rx_worker_datagrams=%llu",
                 S(tx_packets), S(tx_bytes), S(rx_packets), S(rx_bytes), S(rx_replayed),
                 S(rx_bad_tag), S(rx_unknown_index), S(rx_malformed), S(rx_bad_mac1),
                 S(rx_handshake_failed), S(rx_handshake_dropped), S(tx_dropped_no_session),
                 S(tx_errors), S(handshakes), S(initiations_sent), S(cookies_sent),
                 S(relay_tx_packets), S(relay_rx_packets), S(probes_sent), S(path_switches),
                 S(rx_reflected), S(rx_handshake_ratelimited), S(handshakes_deferred),
                 S(tx_gso_frames), S(tx_udp_gso_datagrams), S(rx_udp_gro_datagrams),
                 S(rx_gro_merged), d->n_peers, S(tx_unicast_frames), S(tx_flooded_frames),
                 S(tx_flood_copies), S(peers_refused_full), S(macs_forgotten),
                 (unsigned long long) atomic_load(&d->dp.macs.stats.learned),
                 (unsigned long long) atomic_load(&d->dp.macs.stats.moved),
                 (unsigned long long) atomic_load(&d->dp.macs.stats.refused_full),
                 queues[0] ? queues : "0", S(rx_worker_datagrams));
#undef S
}

/*
 * The peer table. The control loop owns it; the data threads read dp.peers[slot] without a
 * lock, only inside a batch (datapath.c). Adding publishes a fully set-up peer (release store);
 * removing unpublishes it (seq_cst store), snapshots the data threads' quiescent-state markers
 * (peer_retire_start) and frees it on a later tick once both threads passed a quiescent point
 * (peer_retired), the key pair retirement argument of peer.c applied to the peer that holds
 * them. Until then its slot stays taken, so that no session index of its names another peer.
 */
/* What the APIs list (D-Bus Peer objects, Peers, status) are the peers in play: neither
 * waiting for someone to connect nor disconnected. The table itself always keeps one peer, the
 * waiting instance's placeholder (and the last one after a Disconnect), which is no peer to a
 * user. Every state change reaches device_emit_changed, which brings the list up to date. */
static bool in_play(const struct peer *p) {
        return p->state != TUNNEL_WAITING && p->state != TUNNEL_DISCONNECTED;
}

static void sync_listed(struct device *d) {
        for (size_t i = 0; i < d->n_peers; i++) {
                struct peer *p = d->by_id[i];

                if (in_play(p) == p->listed)
                        continue;
                p->listed = !p->listed;
                if (p->listed)
                        device_peer_added(d, p);
                else
                        device_peer_removed(d, p);
        }
}

size_t device_peer_count(const struct device *d) {
        return d->n_peers;
}

struct peer *device_peer_at(const struct device *d, size_t i) {
        return i < d->n_peers ? d->by_id[i] : NULL;
}

size_t device_listed_peer_count(const struct device *d) {
        size_t n = 0;

        for (size_t i = 0; i < d->n_peers; i++)
                n += d->by_id[i]->listed;
        return n;
}

struct peer *device_listed_peer_at(const struct device *d, size_t i) {
        for (size_t k = 0; k < d->n_peers; k++)
                if (d->by_id[k]->listed && i-- == 0)
                        return d->by_id[k];
        return NULL;
}

void device_peer_counters(const struct device *d, const struct peer *p, uint64_t *ret_rx_bytes,
                          uint64_t *ret_tx_bytes) {
        (void) d;
        if (ret_rx_bytes)
                *ret_rx_bytes = atomic_load_explicit(&p->rx_bytes, memory_order_relaxed);
        if (ret_tx_bytes)
                *ret_tx_bytes = atomic_load_explicit(&p->tx_bytes, memory_order_relaxed);
}

size_t device_peer_macs(const struct device *d, const struct peer *p) {
        if (!d->dp.macs.slots)
                return 0;
        return mactable_count_port(&d->dp.macs, datapath_port(p),
                                   (uint32_t) (now_ns() / NSEC_PER_SEC));
}

void device_peer_added(struct device *d, struct peer *p) {
        if (d->peer_hooks.added)
                d->peer_hooks.added(d, p);
}

void device_peer_removed(struct device *d, struct peer *p) {
        if (d->peer_hooks.removed)
                d->peer_hooks.removed(d, p);
}

int device_add_peer(struct device *d, const char *name, struct peer **ret) {
        struct qs_markers qs = datapath_markers(&d->dp);
        struct peer *p;
        uint32_t slot = 0;
        int r;

        while (slot < MESH_MAX_PEERS && d->slot_taken[slot])
                slot++;
        if (slot == MESH_MAX_PEERS || d->n_peers == MESH_MAX_PEERS)
                return -ENOSPC;
        r = peer_new(&qs, slot, d->last_peer_id + 1, &p);
        if (r < 0)
                return r;
        if (name && !(p->name = strdup(name))) {
                peer_free(p);
                return -ENOMEM;
        }
        /* The same cookie key for every peer: ours in shared-key mode; identity mode sets the
         * peer's own once its key is known. */
        if (d->keys.pattern == NOISE_PATTERN_NNPSK0)
                cookie_maker_init(&p->cookie_maker, d->keys.psk);
        /* Nothing learned behind it before its first session: no table walk to forget. */
        p->macs_forgotten = true;
        d->last_peer_id++;
        d->slot_taken[slot] = true;
        d->by_id[d->n_peers++] = p;
        if (!d->peer)
                d->peer = p;
        p->added_ns = now_ns();
        atomic_store_explicit(&d->dp.peers[slot], p, memory_order_release);
        if (slot + 1 > atomic_load_explicit(&d->dp.peers_end, memory_order_relaxed))
                atomic_store_explicit(&d->dp.peers_end, slot + 1, memory_order_release);
        sync_listed(d);
        *ret = p;
        return 0;
}

int device_add_joiner(struct device *d, struct peer **ret) {
        struct peer *p;
        int r = device_add_peer(d, NULL, &p);

        if (r < 0)
                return r;
        p->joined = true;
        p->state = TUNNEL_WAITING;
        *ret = p;
        return 0;
}

/* How the logs name a peer: its name, its address, else its id (its D-Bus object's). */
static const char *peer_label(const struct peer *p, char buf[static 24]) {
        if (p->name)
                return p->name;
        if (p->address)
                return p->address;
        snprintf(buf, 24, "#%" PRIu64, p->id);
        return buf;
}

static uint64_t last_heard_ns(struct peer *p) {
        uint64_t t = atomic_load_explicit(&p->last_rx_ns, memory_order_relaxed);

        if (t < p->last_handshake_ns)
                t = p->last_handshake_ns;
        return t < p->added_ns ? p->added_ns : t;
}

size_t device_expire_peers(struct device *d, uint64_t now) {
        size_t removed = 0;

        for (size_t i = d->n_peers; i-- > 0;) {
                struct peer *p = d->by_id[i];
                char buf[ENDPOINT_STRLEN], label[24];
                struct endpoint e;

                if (!p->joined || p->address || p->state == TUNNEL_CONNECTED ||
                    atomic_load(&p->current) || d->n_peers <= 1 ||
                    /* (the rx thread may have stamped a packet after `now` was read) */
                    last_heard_ns(p) + PEER_EXPIRE_AFTER_TIME * NSEC_PER_SEC > now)
                        continue;
                peer_get_endpoint(p, &e);
                log_info("peer %s (%s) expired: nothing authenticated from it for %d s; it joins "
                         "again when it comes back",
                         peer_label(p, label), e.len ? endpoint_to_string(&e, buf) : "no endpoint",
                         PEER_EXPIRE_AFTER_TIME);
                device_remove_peer(d, p);
                removed++;
        }
        return removed;
}

void device_forget_macs(struct device *d, struct peer *p) {
        size_t n = device_peer_macs(d, p);
        char buf[ENDPOINT_STRLEN], label[24];
        struct endpoint e;

        if (!d->dp.macs.slots)
                return;
        (void) datapath_forget_port(&d->dp, datapath_port(p));
        p->macs_forgotten = true;
        atomic_fetch_add_explicit(&d->dp.stats.macs_forgotten, n, memory_order_relaxed);
        peer_get_endpoint(p, &e);
        if (n > 0)
                log_info("forgot %zu MAC address(es) behind peer %s (%s)", n,
                         peer_label(p, label),
                         e.len ? endpoint_to_string(&e, buf) : "no endpoint");
}

void device_remove_peer(struct device *d, struct peer *p) {
        size_t i = 0;

        if (!p || d->n_peers <= 1)
                return;
        while (i < d->n_peers && d->by_id[i] != p)
                i++;
        if (i == d->n_peers)
                return;
        if (p->listed) {
                p->listed = false;
                device_peer_removed(d, p);
        }
        device_forget_macs(d, p);
        memmove(&d->by_id[i], &d->by_id[i + 1], (d->n_peers - i - 1) * sizeof(d->by_id[0]));
        d->n_peers--;
        if (d->peer == p)
                d->peer = d->by_id[0];
        atomic_store(&d->dp.peers[p->slot], NULL); /* seq_cst: before peer_retire_start's loads */
        d->dying[d->n_dying].p = p;
        peer_retire_start(p, d->dying[d->n_dying].qs);
        d->n_dying++;
}

void device_collect_peers(struct device *d) {
        size_t kept = 0;

        for (size_t i = 0; i < d->n_dying; i++) {
                struct peer *p = d->dying[i].p;
                if (peer_retired(p, d->dying[i].qs)) {
                        d->slot_taken[p->slot] = false;
                        peer_free(p);
                } else
                        d->dying[kept++] = d->dying[i];
        }
        d->n_dying = kept;
}

struct peer *device_peer_by_slot(const struct device *d, uint32_t slot, uint64_t id) {
        struct peer *p;

        if (slot >= MESH_MAX_PEERS)
                return NULL;
        p = atomic_load_explicit(&d->dp.peers[slot], memory_order_relaxed);
        return p && p->id == id ? p : NULL;
}

struct peer *device_peer_by_endpoint(const struct device *d, const struct endpoint *e) {
        for (size_t i = 0; i < d->n_peers; i++) {
                struct endpoint pe;
                peer_get_endpoint(d->by_id[i], &pe);
                if (pe.len && endpoint_equal(&pe, e))
                        return d->by_id[i];
        }
        return NULL;
}

static struct peer *table_at(void *userdata, size_t i) {
        return device_peer_at(userdata, i);
}

/* A shared-key newcomer authenticated: a peer of its own (handshake.c). */
static struct peer *table_add(void *userdata) {
        struct device *d = userdata;
        struct peer *p;

        return device_add_joiner(d, &p) < 0 ? NULL : p;
}

/* Events for the connection logic (manager.c sets the hooks). */
static void report_session_up(struct device *d, struct peer *p) {
        if (d->events.session_up)
                d->events.session_up(d, p);
}

/* What the timers changed in the peer, reported upward. */
static void report_timers(struct device *d, struct peer *p, unsigned events) {
        if ((events & TIMERS_STATE_CHANGED) && d->events.peer_changed)
                d->events.peer_changed(d, p);
        if (events & TIMERS_SESSION_UP)
                report_session_up(d, p);
}

/* The peer's endpoint moved (roaming, a probe, a handshake): log it and emit it. */
static void report_path(struct device *d, struct peer *p) {
        if (path_report(&d->sender, p) && p == d->peer)
                device_properties_changed(d, "Path", "Endpoint");
}

/* One message the rx thread handed over. */
static void dispatch(struct device *d, const struct queued_handshake *q, bool under_load) {
        struct peer *p;

        switch (q->kind) {
        case QUEUED_PROBE:
                if ((p = device_peer_by_slot(d, q->slot, q->peer_id)))
                        path_on_probe(&d->sender, p, q->data, &q->from);
                return;
        case QUEUED_PROBE_REPLY:
                if ((p = device_peer_by_slot(d, q->slot, q->peer_id))) {
                        path_on_probe_reply(&d->sender, p, q->data, &q->from);
                        report_path(d, p);
                }
                return;
        case QUEUED_CLOSE:
                if ((p = device_peer_by_slot(d, q->slot, q->peer_id)) && d->events.peer_closed)
                        d->events.peer_closed(d, p, get_le32(q->data + 4), &q->from);
                return;
        case QUEUED_UNKNOWN_SESSION:
                /* Whose session it was: the peer at that address, else the index's slot's. */
                p = device_peer_by_endpoint(d, &q->from);
                if (!p && q->len >= 8)
                        p = atomic_load_explicit(
                                &d->dp.peers[MESH_SLOT_OF_INDEX(get_le32(q->data + 4))],
                                memory_order_relaxed);
                if (!p && d->n_peers == 1)
                        p = d->peer;
                if (p)
                        handshake_answer_unknown_session(&d->keys, &d->sender, p, &q->from);
                return;
        default:
                break;
        }
        if (!q->from.via_relay && stun_is_message(q->data, q->len)) {
                if (!netcheck_input(d->netcheck, q))
                        (void) netcheck_input(d->netcheck_api, q);
                return;
        }
        switch (message_classify(q->data, q->len)) {
        case MESSAGE_RELAY_CHALLENGE:
        case MESSAGE_RELAY_REGISTERED:
        case MESSAGE_RELAY_PEER:
                relay_client_input(d->relay, q);
                return;
        default: {
                const struct handshake_peers peers = {
                        .at = table_at,
                        /* Shared-key mode: any node with the key may join. */
                        .add = d->keys.pattern == NOISE_PATTERN_NNPSK0 ? table_add : NULL,
                        .userdata = d,
                };
                bool up = handshake_process_peers(&d->keys, &d->sender, &peers, q, under_load, &p);
                if (p)
                        report_path(d, p);
                if (up)
                        report_session_up(d, p);
        }
        }
}

/* A data thread asked for a handshake: still needed? Its request may have been made from a
 * batch that began before the session it lacked was installed (the flag is read later, maybe
 * in the very wake-up that installed it from the queue); a fresh, usable session that is not
 * due for rekeying makes it moot. */
static bool handshake_still_wanted(struct peer *p, uint64_t now) {
        struct keypair *kp = atomic_load(&p->current);
        uint64_t age;

        if (!kp || !atomic_load(&kp->valid))
                return true;
        /* Born after `now` was read: installed a moment ago, as fresh as can be. */
        age = now > kp->birth_ns ? now - kp->birth_ns : 0;
        if (age >= REJECT_AFTER_TIME * NSEC_PER_SEC ||
            atomic_load(&kp->send_counter) >= REJECT_AFTER_MESSAGES)
                return true;
        return kp->initiator && (age >= REKEY_AFTER_TIME * NSEC_PER_SEC ||
                                 atomic_load(&kp->send_counter) >= REKEY_AFTER_MESSAGES);
}

/* Handle queued handshake messages and requests from the data threads. */
static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct device *d = userdata;
        uint64_t v, now = now_ns();
        uint32_t head, tail, queued;
        bool under_load;

        (void) !read(fd, &v, sizeof(v));

        head = atomic_load_explicit(&d->dp.hs_head, memory_order_acquire);
        tail = atomic_load_explicit(&d->dp.hs_tail, memory_order_relaxed);
        queued = head - tail;
        /* Both tests run: the flag is cleared each round. */
        if (atomic_exchange_explicit(&d->dp.hs_queue_was_long, false, memory_order_relaxed) |
            (queued >= UNDER_LOAD_QUEUE_LEN))
                d->under_load_until_ns = now + UNDER_LOAD_AFTER_TIME * NSEC_PER_SEC;
        under_load = now < d->under_load_until_ns;

        /* A bounded share per wake-up keeps the loop responsive; the rest comes next round. */
        for (unsigned i = 0; i < 256 && tail != head; i++, tail++) {
                dispatch(d, &d->dp.hs_queue[tail % MAX_QUEUED_HANDSHAKES], under_load);
                atomic_store_explicit(&d->dp.hs_tail, tail + 1, memory_order_release);
        }
        if (tail != head)
                wake_again(d);

        /* Mesh discovery's own queue (datapath.h), drained the same way. */
        head = atomic_load_explicit(&d->dp.disco_head, memory_order_acquire);
        tail = atomic_load_explicit(&d->dp.disco_tail, memory_order_relaxed);
        for (; tail != head; tail++) {
                const struct queued_discovery *q = &d->dp.disco_queue[tail % DISCOVERY_QUEUE_LEN];
                struct peer *p = device_peer_by_slot(d, q->slot, q->peer_id);
                if (p && d->events.discovery)
                        d->events.discovery(d, p, q->plain, q->len, &q->from);
                atomic_store_explicit(&d->dp.disco_tail, tail + 1, memory_order_release);
        }

        /* The data threads' requests, per peer (a walk of the table: once per wake-up). */
        for (size_t i = 0; i < d->n_peers; i++) {
                struct peer *p = d->by_id[i];
                if (atomic_exchange(&p->next_confirmed, false) && peer_confirm_next(p))
                        report_session_up(d, p);
                if (atomic_exchange(&p->want_handshake, false) && handshake_still_wanted(p, now))
                        report_timers(d, p,
                                      timers_want_handshake(&d->keys, &d->sender, p, now));
                report_path(d, p); /* the rx thread may have moved the endpoint (roaming) */
        }
        return 0;
}

/* A peer that left `connected` (its session stopped working, it closed, failed, or was
 * disconnected) takes its MAC addresses with it: frames to them would only be dropped for want
 * of a session, so they are flooded again and learned anew wherever the addresses show up
 * (behind another peer, or behind this one once it is back). */
static bool peer_dead(const struct peer *p) {
        return p->state != TUNNEL_CONNECTED;
}

/* Does anything on the control loop need the short tick (TIMERS_TICK_NSEC)? Not when no
 * handshake is under way or half made (a next key pair awaiting its first packet), nothing
 * waits for the data threads to pass a quiescent point, no path probe is out, the relay client
 * is registered and the front ends have nothing due: the rules left (keepalives, dead peer,
 * expiry, NAT keepalive, re-registration) count in seconds. An idle daemon then wakes once a
 * second instead of four times. */
static bool device_settled(const struct device *d) {
        if (d->n_dying > 0 || !relay_client_settled(d->relay) ||
            (d->events.pending && d->events.pending(d)))
                return false;
        for (size_t i = 0; i < d->n_peers; i++) {
                struct peer *p = d->by_id[i];
                if (p->handshake_attempts_started_ns != 0 || atomic_load(&p->next) ||
                    atomic_load(&p->want_handshake) || atomic_load(&p->next_confirmed) ||
                    p->n_retired > 0 || p->relay_probe_pending)
                        return false;
        }
        return true;
}

/* After every event the control loop handled (a handshake message, a D-Bus or HTTP call, an
 * address change): if it started something, the short tick again, from now. */
static int on_post(sd_event_source *s, void *userdata) {
        struct device *d = userdata;

        if (d->tick_quiet && !device_settled(d)) {
                d->tick_quiet = false;
                return sd_event_source_set_time_relative(d->tick_source, TIMERS_TICK_NSEC / 1000);
        }
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        struct device *d = userdata;
        uint64_t now = now_ns(), next;

        for (size_t i = 0; i < d->n_peers; i++) {
                struct peer *p = d->by_id[i];
                report_timers(d, p, timers_tick(&d->keys, &d->sender, p, now));
                /* NAT traversal: relay fallback, direct-path probes, NAT keepalives. */
                path_tick(&d->sender, p, now, d->nat_keepalive);
                report_path(d, p);
                if (peer_dead(p) && !p->macs_forgotten)
                        device_forget_macs(d, p);
                else if (p->state == TUNNEL_CONNECTED)
                        p->macs_forgotten = false;
        }
        device_collect_peers(d);
        relay_client_tick(d->relay, now);
        if (d->events.tick)
                d->events.tick(d, now);
        /* Quiet: settled, nothing under way, whether traffic moves or not (what traffic starts
         * is a timestamp the data threads record and timers_next_due counts from, or a request
         * that wakes this loop: rule 2). The next tick then comes when a timer rule falls due,
         * if that is sooner than TIMERS_QUIET_TICK_NSEC, but never sooner than the short tick
         * (a keepalive that cannot be sent leaves its rule due). */
        d->tick_quiet = device_settled(d);
        next = d->tick_quiet ? TIMERS_QUIET_TICK_NSEC : TIMERS_TICK_NSEC;
        if (d->tick_quiet) {
                for (size_t i = 0; i < d->n_peers; i++) {
                        uint64_t due = timers_next_due(d->by_id[i]);
                        if (due < now + next)
                                next = due > now + TIMERS_TICK_NSEC ? due - now : TIMERS_TICK_NSEC;
                }
        }
        return sd_event_source_set_time_relative(s, next / 1000);
}

/* Our address changed (addrwatch.c): one authenticated packet to each peer from wherever
 * routing sends it now, and (first) a registration with the relay from there. */
static int announce_address(void *userdata, bool first) {
        struct device *d = userdata;
        int ret = 0;

        if (first) {
                d->address_changes++;
                relay_client_refresh(d->relay);
        }
        for (size_t i = 0; i < d->n_peers; i++) {
                struct peer *p = d->by_id[i];
                int r = 0;
                if (atomic_load(&p->current))
                        r = path_send_keepalive(&d->sender, p);
                else if (p->handshake_attempts_started_ns != 0) /* timers.c rule 1 retries */
                        r = handshake_send_initiation(&d->keys, &d->sender, p);
                /* no session and none under way: the next frame starts one from here */
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

/* The start-up NAT discovery's findings: PublicEndpoint, NatType, and a new candidate for the
 * relay. */
static void on_startup_netcheck(struct netcheck_run *run, void *userdata) {
        struct device *d = userdata;
        struct netcheck_report rep;
        char buf[ENDPOINT_STRLEN];

        netcheck_report(run, &rep);
        if (rep.stun_failed || !rep.has_result) {
                log_warning("NAT discovery with %s failed: %s", rep.stun_server, rep.stun_error);
                return;
        }
        snprintf(d->nat_type, sizeof(d->nat_type), "%s", rep.nat_type);
        if (rep.has_public) {
                d->public_endpoint_sa = rep.public_endpoint;
                endpoint_to_string(&d->public_endpoint_sa, buf);
                snprintf(d->public_endpoint, sizeof(d->public_endpoint), "%s", buf);
                log_info("public endpoint %s, NAT type %s (mapping %s, filtering %s)", buf,
                         d->nat_type, nat_mapping_to_string(rep.mapping),
                         nat_filtering_to_string(rep.filtering));
        } else
                log_warning("no answer from STUN server %s: NAT type %s", rep.stun_server,
                            d->nat_type);
        /* Behind any NAT (or not knowing): keep the mapping open on idle sessions. */
        if (rep.mapping != NAT_MAPPING_NO_NAT)
                d->nat_keepalive = true;
        device_properties_changed(d, "PublicEndpoint", "NatType");
        relay_client_refresh(d->relay);
}

int device_start_netcheck(struct device *d) {
        d->netcheck = netcheck_free(d->netcheck);
        return netcheck_start(&d->netcheck_socket, d->config->stun_host, d->config->stun_port, NULL,
                              0, on_startup_netcheck, d, &d->netcheck);
}

const char *device_control_group(const struct device *d) {
        return d->config->control_group ? d->config->control_group : "netdev";
}

void device_resolve_control_group(struct device *d) {
        const char *name = device_control_group(d);
        struct group *g = getgrnam(name);

        d->has_control_gid = g != NULL;
        if (g)
                d->control_gid = g->gr_gid;
        else if (d->config->control_group)
                log_warning("control group '%s' does not exist: only root may connect "
                            "and disconnect", name);
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        device_log_stats(userdata);
        return 0;
}

static int open_socket(struct device *d) {
        const struct config *config = d->config;
        int r;

        r = udp_take_activation_socket(&d->sockets.fd, &d->udp_family, &d->port);
        if (r < 0)
                return r;
        if (r > 0) {
                log_info("using the socket passed by the service manager (udp port %u)", d->port);
                return 0;
        }

        d->port = config->listen_port;
        r = udp_open(config->bind_host, d->port, &d->sockets.fd, &d->sockets.fd4, &d->udp_family);
        if (r == -EADDRINUSE)
                return log_error_errno(r, "udp port %u is already in use (another shadowmeshd? "
                                          "set network.listen_port)",
                                       d->port);
        if (r == -EADDRNOTAVAIL)
                return log_error_errno(r, "cannot listen on %s:%u: no such local address",
                                       config->bind_host, d->port);
        if (r < 0)
                return log_error_errno(r, "cannot open udp port %u: %m", d->port);
        return 0;
}

/* What the socket really is bound to, as the kernel says, so a wrong bind shows at start. */
static void log_bound_address(struct device *d) {
        const char *mode = d->keys.pattern == NOISE_PATTERN_IKPSK2
                                   ? "identity mode (Noise_IKpsk2)"
                                   : "shared-key mode (Noise_NNpsk0)";
        struct endpoint e = { .len = sizeof(e.addr) };
        char buf[ENDPOINT_STRLEN];
        int v6only = 0;
        socklen_t len = sizeof(v6only);

        if (d->sockets.fd4 >= 0) {
                /* udp_open's pair: nothing to ask the kernel. */
                log_info("listening on udp port %u at 0.0.0.0 and [::] (every IPv4 and IPv6 "
                         "address, a socket each), %s",
                         d->port, mode);
                return;
        }
        if (getsockname(d->sockets.fd, &e.addr.sa, &e.len) < 0) {
                log_info("listening on udp port %u, %s", d->port, mode);
                return;
        }
        if (e.addr.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&e.addr.in6.sin6_addr))
                (void) getsockopt(d->sockets.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
        log_info("listening on udp port %u at %s%s, %s", d->port, endpoint_to_string(&e, buf),
                 e.addr.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&e.addr.in6.sin6_addr)
                         ? (v6only ? " (IPv6 only)" : " (every IPv4 and IPv6 address)")
                         : "",
                 mode);
}

static void format_addresses(const struct config *c, char *buf, size_t size) {
        size_t off = 0;

        buf[0] = 0;
        for (size_t i = 0; i < c->n_addresses && off < size; i++) {
                char a[INET6_ADDRSTRLEN];
                inet_ntop(c->addresses[i].family, &c->addresses[i].addr, a, sizeof(a));
                off += (size_t) snprintf(buf + off, size - off, "%s%s/%u", i ? ", " : "", a,
                                         c->addresses[i].prefixlen);
        }
}

/* The TAP's Ethernet address is stable across restarts, so that the peer's ARP and neighbour
 * caches stay right when this side restarts: a hash of what makes this node this node (the
 * machine, the instance, its tunnel addresses and identity), locally administered, unicast. */
static void tap_mac_address(struct device *d, uint8_t mac[6]) {
        const struct config *c = d->config;
        _cleanup_free_ char *machine_id = NULL;
        crypto_generichash_state st;
        uint8_t h[16];

        crypto_generichash_init(&st, NULL, 0, sizeof(h));
        crypto_generichash_update(&st, (const uint8_t *) "shadowmesh-tap-mac", 18);
        if (read_full_file("/etc/machine-id", &machine_id, NULL, 256) >= 0)
                crypto_generichash_update(&st, (const uint8_t *) machine_id, strlen(machine_id));
        crypto_generichash_update(&st, (const uint8_t *) d->instance, strlen(d->instance) + 1);
        crypto_generichash_update(&st, (const uint8_t *) c->tap_device, strlen(c->tap_device) + 1);
        crypto_generichash_update(&st, (const uint8_t *) c->addresses,
                                  c->n_addresses * sizeof(c->addresses[0]));
        crypto_generichash_update(&st, d->keys.static_public, sizeof(d->keys.static_public));
        crypto_generichash_final(&st, h, sizeof(h));
        memcpy(mac, h, 6);
        mac[0] = (uint8_t) ((mac[0] & 0xfc) | 0x02);
}

static int setup_keys(struct device *d) {
        struct config *c = d->config;
        uint8_t network_id[NETWORK_ID_LEN];
        size_t off = sizeof(SHADOWMESH_PROLOGUE_LABEL) - 1;

        if (config_identity_mode(c)) {
                d->keys.pattern = NOISE_PATTERN_IKPSK2;
                memcpy(d->keys.static_private, c->private_key, sizeof(d->keys.static_private));
                if (noise_public_from_private(d->keys.static_public, d->keys.static_private) < 0)
                        return -EINVAL;
                /* The optional shared key fills the psk slot; zeros when absent. */
                if (c->has_psk)
                        memcpy(d->keys.psk, c->psk, sizeof(d->keys.psk));
                cookie_checker_init(&d->keys.cookie_checker, d->keys.static_public);
        } else {
                d->keys.pattern = NOISE_PATTERN_NNPSK0;
                memcpy(d->keys.psk, c->psk, sizeof(d->keys.psk));
                cookie_checker_init(&d->keys.cookie_checker, d->keys.psk);
        }
        randombytes_buf(d->keys.own_initiation_key, sizeof(d->keys.own_initiation_key));
        keys_network_id(c->has_psk ? c->psk : NULL, network_id);
        memcpy(d->keys.prologue, SHADOWMESH_PROLOGUE_LABEL, off);
        memcpy(d->keys.prologue + off, network_id, NETWORK_ID_LEN);
        return 0;
}

/* One entry of peers: (resolved now, so that a wrong address fails the start). */
static int add_configured_peer(struct device *d, const struct config_peer *cp) {
        struct peer *p;
        int r;

        r = device_add_peer(d, cp->name, &p);
        if (r < 0)
                return log_error_errno(r, "cannot add peer %s: %m", cp->name ? cp->name : "");
        if (config_identity_mode(d->config)) {
                memcpy(p->public_key, cp->public_key, sizeof(p->public_key));
                cookie_maker_init(&p->cookie_maker, p->public_key);
        }
        if (cp->host) {
                struct endpoint e;
                int gai = 0;

                r = udp_resolve(cp->host, cp->port, d->udp_family, &e, &gai);
                if (r < 0)
                        return log_error_errno(r, "cannot resolve peer address '%s': %s",
                                               cp->host, gai ? gai_strerror(gai) : strerror(-r));
                peer_set_endpoint(p, &e);
                p->static_endpoint = true;
                p->address = hostport_join(cp->host, cp->port);
                if (!p->address)
                        return log_error_errno(ENOMEM, "out of memory");
                p->state = TUNNEL_CONNECTING;
        }
        return 0;
}

int device_new(struct config *config, const char *instance, struct device **ret) {
        _cleanup_(device_freep) struct device *d = NULL;
        char buf[ENDPOINT_STRLEN], addrs[512];
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return log_error_errno(ENOMEM, "out of memory");
        d->config = config;
        d->instance = instance;
        d->sockets.fd = d->sockets.fd4 = d->dp.sockets.fd = d->dp.sockets.fd4 = d->dp.stop_fd =
                d->dp.wake_fd = -EBADF;

        r = setup_keys(d);
        if (r < 0)
                return log_error_errno(r, "%s: invalid private key", config->path);
        r = mactable_init(&d->dp.macs, MESH_MAX_MACS);
        if (r < 0)
                return log_error_errno(r, "cannot allocate the MAC table: %m");

        d->dp.hs_queue = calloc(MAX_QUEUED_HANDSHAKES, sizeof(*d->dp.hs_queue));
        if (!d->dp.hs_queue)
                return log_error_errno(ENOMEM, "out of memory");
        if (ratelimit_new(&d->dp.rx_ratelimit) < 0 || ratelimit_new(&d->keys.ratelimit) < 0 ||
            credit_new(&d->dp.rx_credit) < 0)
                return log_error_errno(ENOMEM, "out of memory");

        /* The socket and the peer's address first: the steps most likely to fail for a reason
         * the user must fix, before anything exists that would need cleaning up. */
        r = open_socket(d);
        if (r < 0)
                return r;
        d->sender = (struct sender){ .sockets = d->sockets, .stats = &d->dp.stats };

        /* The peer table: every entry of peers: (none: one peer that waits for whoever
         * connects). */
        for (size_t i = 0; i < MAX(config->n_peers, (size_t) 1); i++) {
                const struct config_peer *cp = config->n_peers ? &config->peers[i]
                                                                : config_first_peer(config);
                r = add_configured_peer(d, cp);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < d->n_peers; i++)
                if (d->by_id[i]->static_endpoint)
                        d->state = TUNNEL_CONNECTING;

        uint8_t mac[6];
        tap_mac_address(d, mac);
        r = tap_create_queues(config->tap_device, mac, config->mtu, config->addresses,
                              config->n_addresses, config->offload ? TAP_OFFLOAD : 0,
                              datapath_queues_for(config->threads), &d->tap);
        if (r == -EEXIST)
                return log_error_errno(r, "device %s already exists and is not ours (choose "
                                          "another network.tap_device)",
                                       config->tap_device);
        if (r == -ENOENT)
                return log_error_errno(r, "/dev/net/tun not found (is the tun module loaded? "
                                          "modprobe tun)");
        if (r == -EPERM || r == -EACCES)
                return log_error_errno(r, "creating %s needs CAP_NET_ADMIN (run as root)",
                                       config->tap_device);
        if (r == -EOPNOTSUPP)
                return log_error_errno(r, "the kernel's TAP has no virtio-net header support "
                                          "(set network.offload: no)");
        if (r < 0)
                return log_error_errno(r, "failed to create TAP device %s: %m",
                                       config->tap_device);
        format_addresses(config, addrs, sizeof(addrs));
        d->dp.rx_workers = datapath_rx_workers_for(config->rx_workers);
        log_info("%s up (mtu %u%s%s%s, %u queue%s, %u receive worker%s)", d->tap->name,
                 d->tap->mtu, addrs[0] ? ", " : "", addrs,
                 d->tap->tso        ? ", offloads on"
                 : d->tap->vnet_hdr ? ", no TSO from the kernel"
                                    : "",
                 d->tap->n_queues, d->tap->n_queues > 1 ? "s" : "", d->dp.rx_workers,
                 d->dp.rx_workers == 1 ? "" : "s");

        d->dp.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        d->dp.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->dp.stop_fd < 0 || d->dp.wake_fd < 0)
                return log_error_errno(errno, "eventfd: %m");

        r = sd_event_new(&d->event);
        if (r < 0)
                return log_error_errno(r, "sd_event_new: %m");
        d->netcheck_socket = (struct netcheck_socket){
                .event = d->event, .sockets = d->sockets, .family = d->udp_family,
                .port = d->port
        };
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* SIGINT, SIGTERM and SIGHUP are main.c's, for the front ends. */
        if ((r = sd_event_add_signal(d->event, NULL, SIGUSR1, on_usr1, d)) < 0 ||
            (r = sd_event_add_io(d->event, &d->wake_source, d->dp.wake_fd, EPOLLIN, on_wake,
                                 d)) < 0 ||
            (r = sd_event_add_time_relative(d->event, &d->tick_source, CLOCK_BOOTTIME,
                                            TIMERS_TICK_NSEC / 1000, 10 * 1000, on_tick, d)) < 0 ||
            (r = sd_event_add_post(d->event, &d->post_source, on_post, d)) < 0)
                return log_error_errno(r, "setting up the event loop: %m");
        r = sd_event_source_set_enabled(d->tick_source, SD_EVENT_ON);
        if (r < 0)
                return log_error_errno(r, "setting up the event loop: %m");
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                return log_error_errno(r, "enabling the watchdog: %m");

        /* The TAP exists and the socket is bound: from here on CAP_NET_ADMIN is enough. Now,
         * while this is the only thread, so that every thread started later inherits it. */
        r = caps_drop();
        if (r < 0)
                return log_error_errno(r, "dropping capabilities: %m");

        char bad[32];
        r = datapath_parse_disable(getenv("SHADOWMESHD_OFFLOAD_DISABLE"), &d->dp.offload_disabled,
                                   bad, sizeof(bad));
        if (r < 0)
                return log_error_errno(r, "SHADOWMESHD_OFFLOAD_DISABLE: unknown part '%s' (known: "
                                          "udp-gso, udp-gro, tcp-gro)", bad);
        if (d->dp.offload_disabled && d->tap->vnet_hdr)
                log_info("offloads:%s%s%s turned off by SHADOWMESHD_OFFLOAD_DISABLE",
                         d->dp.offload_disabled & DATAPATH_NO_UDP_GSO ? " udp-gso" : "",
                         d->dp.offload_disabled & DATAPATH_NO_UDP_GRO ? " udp-gro" : "",
                         d->dp.offload_disabled & DATAPATH_NO_TCP_GRO ? " tcp-gro" : "");

        d->dp.tap = d->tap;
        d->dp.sockets = d->sockets;
        r = datapath_start(&d->dp);
        if (r < 0)
                return log_error_errno(r, "starting the data path threads: %m");

        log_bound_address(d);
        for (size_t i = 0; i < d->n_peers; i++) {
                struct peer *p = d->by_id[i];
                struct endpoint e;
                peer_get_endpoint(p, &e);
                if (e.len)
                        log_info("peer %s%s%s (%s)", p->name ? p->name : "",
                                 p->name ? " at " : "", endpoint_to_string(&e, buf), p->address);
        }
        if (!d->peer->static_endpoint)
                log_info(d->n_peers > 1 ? "waiting for the other peers to connect"
                                        : "waiting for the peer to connect");

        /* NAT traversal: both start with name resolution on a worker thread and never block
         * start-up; a STUN server or relay that cannot be reached is a warning, not a failure. */
        snprintf(d->nat_type, sizeof(d->nat_type), "unknown");
        if (config->nat_enabled && config->stun_host) {
                r = device_start_netcheck(d);
                if (r < 0)
                        log_warning_errno(r, "cannot start NAT discovery: %m");
        }

        /* Roaming: follow our own address changes. Not fatal: without the watcher a send from
         * a vanished address still recovers, only later. */
        r = addrwatch_new(d->event, d->sockets.fd, d->tap->ifindex, table_at, announce_address, d,
                          &d->addrwatch);
        if (r < 0)
                log_warning_errno(r, "cannot watch the host's addresses (roaming will be slower): "
                                     "%m");

        device_resolve_control_group(d);

        *ret = TAKE_PTR(d);
        return 0;
}

int device_run(struct device *d) {
        int r;

        for (size_t i = 0; i < d->n_peers; i++)
                if (d->by_id[i]->static_endpoint)
                        report_timers(d, d->by_id[i],
                                      timers_want_handshake(&d->keys, &d->sender, d->by_id[i],
                                                            now_ns()));
        r = sd_event_loop(d->event);
        if (r == -EEXIST || r == -EACCES)
                return r; /* logged by bus.c */
        if (r < 0)
                return log_error_errno(r, "event loop failed: %m");
        return 0;
}

struct device *device_free(struct device *d) {
        if (!d)
                return NULL;
        /* Reverse order of device_new (main.c stopped the front ends). */
        d->addrwatch = addrwatch_free(d->addrwatch);
        d->netcheck = netcheck_free(d->netcheck);
        d->relay = relay_client_free(d->relay);
        datapath_stop(&d->dp);
        if (d->tap)
                device_log_stats(d);
        d->tick_source = sd_event_source_disable_unref(d->tick_source);
        d->post_source = sd_event_source_disable_unref(d->post_source);
        d->wake_source = sd_event_source_disable_unref(d->wake_source);
        d->event = sd_event_unref(d->event);
        d->dp.wake_fd = safe_close(d->dp.wake_fd);
        d->dp.stop_fd = safe_close(d->dp.stop_fd);
        if (d->tap) {
                char name[IFNAMSIZ];
                memcpy(name, d->tap->name, sizeof(name));
                d->tap = tap_free(d->tap);
                log_info("%s removed", name);
        }
        d->sockets.fd = safe_close(d->sockets.fd);
        d->sockets.fd4 = safe_close(d->sockets.fd4);

        /* The threads are gone: the peers and their key pairs go at once. */
        for (size_t i = 0; i < d->n_peers; i++)
                peer_free(d->by_id[i]);
        for (size_t i = 0; i < d->n_dying; i++)
                peer_free(d->dying[i].p);
        d->n_peers = d->n_dying = 0;
        d->peer = NULL;
        mactable_done(&d->dp.macs);
        cookie_checker_wipe(&d->keys.cookie_checker);
        sodium_memzero(d->keys.static_private, sizeof(d->keys.static_private));
        sodium_memzero(d->keys.psk, sizeof(d->keys.psk));
        sodium_memzero(d->keys.own_initiation_key, sizeof(d->keys.own_initiation_key));
        d->dp.rx_ratelimit = ratelimit_free(d->dp.rx_ratelimit);
        d->dp.rx_credit = credit_free(d->dp.rx_credit);
        d->keys.ratelimit = ratelimit_free(d->keys.ratelimit);
        if (d->dp.hs_queue) {
                sodium_memzero(d->dp.hs_queue, MAX_QUEUED_HANDSHAKES * sizeof(*d->dp.hs_queue));
                free(d->dp.hs_queue);
        }
        free(d);
        return NULL;
}
