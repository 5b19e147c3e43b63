/* SPDX-License-Identifier: MIT */
/*
 * The relay process around relay-core: one UDP socket read in batches (recvmmsg), forwarded
 * datagrams sent in batches (sendmmsg), replies (CHALLENGE, REGISTERED, PEER, STUN) sent as
 * they are made. One thread: the core is cheap per datagram, and the event loop only ever
 * waits in epoll.
 *
 * Timers: once a second, expired registrations leave the table (and STATUS= follows the
 * count); the watchdog is sd-event's (WatchdogSec= in the unit).
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "relay.h"

enum {
        RELAY_BATCH = 32,
        /* Batches handled per wake-up before the loop looks at signals and timers again. */
        RELAY_BATCHES_PER_WAKEUP = 16,
        /* One byte more than the largest datagram we take, so a bigger one shows as MSG_TRUNC. */
        RELAY_RECV_BUFFER_LEN = RELAYED_DATAGRAM_MAX_LEN + 1,
};
#define SWEEP_USEC USEC_PER_SEC

struct relay {
        sd_event *event;
        sd_event_source *io_source, *sweep_source;
        int fd;
        struct relay_core *core;
        struct relay_actions *actions;
        char listen_text[ENDPOINT_STRLEN];

        uint8_t (*buffers)[RELAY_RECV_BUFFER_LEN];
        union sockaddr_union sources[RELAY_BATCH];
        struct iovec iov[RELAY_BATCH];
        struct mmsghdr msgs[RELAY_BATCH];

        /* Forwarded datagrams of the current batch: they point into buffers. */
        size_t n_out;
        union sockaddr_union out_dest[RELAY_BATCH];
        struct iovec out_iov[RELAY_BATCH];
        struct mmsghdr out_msgs[RELAY_BATCH];

        uint64_t send_errors, recv_errors, oversized;
        size_t status_count;
        bool status_sent;
        struct log_ratelimit error_ratelimit;
};

void relay_log_stats(const struct relay *r) {
        const struct relay_stats *s = relay_core_stats(r->core);

#define S(x) (unsigned long long) (x)
        log_notice("stats: registrations=%llu packets_in=%llu forwarded=%llu forwarded_bytes=%llu "
                   "dropped_rate=%llu dropped_unregistered=%llu dropped_not_allowed=%llu "
                   "bad_proof=%llu stun=%llu challenges=%llu registered=%llu peers_sent=%llu "
                   "moved=%llu replaced=%llu renamed=%llu expired=%llu dropped_unpaired=%llu "
                   "dropped_bandwidth=%llu dropped_full=%llu dropped_invalid=%llu "
                   "dropped_unauth_budget=%llu dropped_oversized=%llu send_errors=%llu recv_errors=%llu",
                   S(s->registrations), S(s->packets_in), S(s->forwarded), S(s->forwarded_bytes),
                   S(s->dropped_rate), S(s->dropped_unregistered), S(s->dropped_not_allowed),
                   S(s->bad_proof), S(s->stun), S(s->challenges), S(s->registered),
                   S(s->peers_sent), S(s->moved), S(s->replaced), S(s->renamed), S(s->expired),
                   S(s->dropped_unpaired), S(s->dropped_bandwidth), S(s->dropped_full),
                   S(s->dropped_invalid), S(s->dropped_unauth_budget), S(r->oversized), S(r->send_errors), S(r->recv_errors));
#undef S
}

static void update_status(struct relay *r) {
        size_t n = relay_core_count(r->core);

        if (r->status_sent && n == r->status_count)
                return;
        r->status_count = n;
        r->status_sent = true;
        sd_notifyf(false, "STATUS=Listening on %s, %zu registration%s", r->listen_text, n,
                   n == 1 ? "" : "s");
}

static void send_error(struct relay *r, int error, const struct endpoint *dest) {
        char buf[ENDPOINT_STRLEN];
        unsigned suppressed = 0;

        r->send_errors++;
        if (log_ratelimit_below(&r->error_ratelimit, now_ns(), &suppressed))
                log_warning_errno(error, "sending to %s failed: %m%s",
                                  endpoint_to_string(dest, buf),
                                  suppressed ? " (more errors suppressed)" : "");
}

static void flush_forwards(struct relay *r) {
        size_t done = 0;

        while (done < r->n_out) {
                int n = sendmmsg(r->fd, r->out_msgs + done, (unsigned) (r->n_out - done), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* Skip the datagram that failed (EAGAIN: the send queue is full; UDP
                         * may drop, and the ends retransmit) and carry on with the rest. */
                        struct endpoint e = {.len = r->out_msgs[done].msg_hdr.msg_namelen};
                        memcpy(&e.addr, &r->out_dest[done], sizeof(e.addr));
                        send_error(r, errno, &e);
                        done++;
                        continue;
                }
                done += (size_t) n;
        }
        r->n_out = 0;
}

/* At most one forward per datagram received, so a batch never overflows out_msgs. */
static void queue_forward(struct relay *r, const struct relay_send *s) {
        size_t k = r->n_out++;
        struct msghdr *h = &r->out_msgs[k].msg_hdr;

        memcpy(&r->out_dest[k], &s->dest.addr, sizeof(r->out_dest[k]));
        r->out_iov[k] = (struct iovec){.iov_base = (void *) s->data, .iov_len = s->len};
        memset(&r->out_msgs[k], 0, sizeof(r->out_msgs[k]));
        h->msg_name = &r->out_dest[k];
        h->msg_namelen = s->dest.len;
        h->msg_iov = &r->out_iov[k];
        h->msg_iovlen = 1;
}

static void send_now(struct relay *r, const struct relay_send *s) {
        ssize_t n;

        do
                n = sendto(r->fd, s->data, s->len, 0, &s->dest.addr.sa, s->dest.len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                send_error(r, errno, &s->dest);
}

static const char *drop_reason(int reason) {
        switch (reason) {
        case -ENOBUFS:
                return "over its rate limit";
        case -EACCES:
                return "network not allowed";
        case -EPERM:
                return "identity proof does not verify";
        case -ENOENT:
                return "sender or slot not registered";
        case -ENOSPC:
                return "registration table or network full";
        case -ESRCH:
                return "these two may not talk";
        default:
                return "malformed, or not for the relay";
        }
}

static void log_drop(int reason, const struct endpoint *src, const uint8_t *data, size_t len) {
        struct relay_register_error why = {};
        char buf[ENDPOINT_STRLEN];

        /* Per-datagram, so debug only: the counters tell the story at any other level. */
        if (log_get_max_level() < LOG_DEBUG)
                return;
        /* A malformed REGISTER: say what is wrong with it, and where. */
        if (reason == -EBADMSG && len >= 1 && data[0] == MESSAGE_RELAY_REGISTER &&
            relay_register_parse(data, len, NULL, &why) < 0) {
                log_debug("dropped a REGISTER from %s: %s (candidate %d, want %d)",
                          endpoint_to_string(src, buf), why.what, why.candidate, why.want);
                return;
        }
        log_debug("dropped a datagram from %s: %s", endpoint_to_string(src, buf),
                  drop_reason(reason));
}

static void log_registered(const struct endpoint *src, const struct relay_actions *a) {
        char buf[ENDPOINT_STRLEN];

        if (log_get_max_level() >= LOG_DEBUG)
                log_debug(
                        "registration from %s: slot %08x, %zu PEER message%s",
                        endpoint_to_string(src, buf),
                        get_le32(a->send[0].data + offsetof(struct message_relay_registered, slot)),
                        a->n - 1, a->n == 2 ? "" : "s");
}

/* One batch received: each datagram through the core, replies sent at once, forwards batched. */
static void handle_batch(struct relay *r, unsigned n) {
        uint64_t now = now_ns();

        for (unsigned i = 0; i < n; i++) {
                struct msghdr *h = &r->msgs[i].msg_hdr;
                struct endpoint src = {.len = h->msg_namelen};
                int k;

                memcpy(&src.addr, &r->sources[i], sizeof(src.addr));
                if (h->msg_flags & MSG_TRUNC) {
                        r->oversized++;
                        continue;
                }
                k = relay_core_receive(r->core, r->buffers[i], r->msgs[i].msg_len, &src, now,
                                       r->actions);
                if (k < 0)
                        log_drop(k, &src, r->buffers[i], r->msgs[i].msg_len);
                else if (k == MESSAGE_RELAY_REGISTER && r->actions->n > 0 &&
                         r->actions->send[0].data[0] == MESSAGE_RELAY_REGISTERED)
                        log_registered(&src, r->actions);
                for (size_t j = 0; j < r->actions->n; j++) {
                        const struct relay_send *s = &r->actions->send[j];
                        if (s->forward)
                                queue_forward(r, s);
                        else
                                send_now(r, s);
                }
        }
        flush_forwards(r);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct relay *r = userdata;

        for (unsigned b = 0; b < RELAY_BATCHES_PER_WAKEUP; b++) {
                int n;

                for (size_t i = 0; i < RELAY_BATCH; i++) {
                        struct msghdr *h = &r->msgs[i].msg_hdr;

                        r->iov[i].iov_base = r->buffers[i];
                        r->iov[i].iov_len = RELAY_RECV_BUFFER_LEN;
                        memset(&r->msgs[i], 0, sizeof(r->msgs[i]));
                        h->msg_name = &r->sources[i];
                        h->msg_namelen = sizeof(r->sources[i]);
                        h->msg_iov = &r->iov[i];
                        h->msg_iovlen = 1;
                }
                n = recvmmsg(fd, r->msgs, RELAY_BATCH, MSG_DONTWAIT, NULL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        /* ICMP errors of earlier sends surface here (ECONNREFUSED and kin):
                         * nothing to do about them but count. */
                        r->recv_errors++;
                        continue;
                }
                handle_batch(r, (unsigned) n);
                if (n < RELAY_BATCH)
                        break;
        }
        return 0;
}

static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
        struct relay *r = userdata;
        unsigned n = relay_core_expire(r->core, now_ns());

        if (n > 0)
                log_debug("%u registration%s expired", n, n == 1 ? "" : "s");
        update_status(r);
        return sd_event_source_set_time_relative(s, SWEEP_USEC);
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        relay_log_stats(userdata);
        return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("received %s, shutting down", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int open_socket(struct relay *r, const struct relay_options *o) {
        int family, k;
        uint16_t port;

        k = udp_take_activation_socket(&r->fd, &family, &port);
        if (k < 0)
                return k;
        if (k > 0) {
                log_info("using the socket passed by the service manager (--listen ignored)");
                return 0;
        }

        k = udp_open(o->listen_host, o->listen_port, &r->fd, NULL, &family);
        if (k == -EADDRINUSE)
                return log_error_errno(k,
                                       "udp port %u is already in use (another "
                                       "shadowmesh-relay? use --listen)",
                                       o->listen_port);
        if (k == -EADDRNOTAVAIL)
                return log_error_errno(k, "cannot listen on %s port %u: no such local address",
                                       o->listen_host, o->listen_port);
        if (k == -EACCES)
                return log_error_errno(k,
                                       "cannot listen on udp port %u: permission denied (a "
                                       "port below 1024 needs CAP_NET_BIND_SERVICE)",
                                       o->listen_port);
        if (k < 0)
                return log_error_errno(k, "cannot open udp port %u: %m", o->listen_port);
        return 0;
}

int relay_new(const struct relay_options *o, struct relay **ret) {
        _cleanup_(relay_freep) struct relay *r = NULL;
        struct endpoint local = {.len = sizeof(local.addr)};
        sigset_t mask;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return log_error_errno(ENOMEM, "out of memory");
        r->fd = -EBADF;
        r->error_ratelimit = (struct log_ratelimit) LOG_RATELIMIT_INIT(10, 5);
        r->actions = calloc(1, sizeof(*r->actions));
        r->buffers = calloc(RELAY_BATCH, sizeof(*r->buffers));
        if (!r->actions || !r->buffers)
                return log_error_errno(ENOMEM, "out of memory");

        k = relay_core_new(&o->core, now_ns(), &r->core);
        if (k == -EINVAL)
                return log_error_errno(k, "invalid relay limits");
        if (k < 0)
                return log_error_errno(k, "setting up the registrations table: %m");

        k = open_socket(r, o);
        if (k < 0)
                return k;
        if (getsockname(r->fd, &local.addr.sa, &local.len) < 0)
                return log_error_errno(errno, "getsockname: %m");
        endpoint_to_string(&local, r->listen_text);

        k = sd_event_new(&r->event);
        if (k < 0)
                return log_error_errno(k, "sd_event_new: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((k = sd_event_add_signal(r->event, NULL, SIGINT, on_exit_signal, r)) < 0 ||
            (k = sd_event_add_signal(r->event, NULL, SIGTERM, on_exit_signal, r)) < 0 ||
            (k = sd_event_add_signal(r->event, NULL, SIGUSR1, on_usr1, r)) < 0 ||
            (k = sd_event_add_io(r->event, &r->io_source, r->fd, EPOLLIN, on_io, r)) < 0 ||
            (k = sd_event_add_time_relative(r->event, &r->sweep_source, CLOCK_BOOTTIME, SWEEP_USEC,
                                            100 * 1000, on_sweep, r)) < 0 ||
            (k = sd_event_source_set_enabled(r->sweep_source, SD_EVENT_ON)) < 0)
                return log_error_errno(k, "setting up the event loop: %m");
        k = sd_event_set_watchdog(r->event, true);
        if (k < 0)
                return log_error_errno(k, "enabling the watchdog: %m");

        *ret = TAKE_PTR(r);
        return 0;
}

int relay_run(struct relay *r) {
        int k;

        /* Ready: the socket is bound and the loop is about to read it. The test scripts wait
         * for this line. */
        log_info("listening on %s (udp)", r->listen_text);
        update_status(r);
        sd_notify(false, "READY=1");
        k = sd_event_loop(r->event);
        if (k < 0)
                return log_error_errno(k, "event loop: %m");
        return 0;
}

struct relay *relay_free(struct relay *r) {
        if (!r)
                return NULL;
        sd_event_source_unref(r->io_source);
        sd_event_source_unref(r->sweep_source);
        sd_event_unref(r->event);
        safe_close(r->fd);
        relay_core_free(r->core);
        free(r->actions);
        free(r->buffers);
        free(r);
        return NULL;
}
