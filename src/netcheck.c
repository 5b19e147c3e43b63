/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>

#include "hostport.h"
#include "log.h"
#include "natcheck.h"
#include "netcheck.h"
#include "resolve.h"

/* One STUN exchange series against one server, driven by its own timer. */
struct stun_run {
        const struct netcheck_socket *sock;
        struct natcheck *nc;
        sd_event_source *timer;
        struct resolve_query *resolve;
        char *name;
        bool full, done, failed;
        char error[128];
        void (*on_done)(struct stun_run *s);
        struct netcheck_run *owner;
};

struct netcheck_run {
        struct netcheck_socket sock;
        struct stun_run stun, relay;
        bool want_relay;
        void (*done)(struct netcheck_run *run, void *userdata);
        void *userdata;
};

static void stun_run_clear(struct stun_run *s) {
        s->timer = sd_event_source_disable_unref(s->timer);
        s->resolve = resolve_cancel(s->resolve);
        s->nc = natcheck_free(s->nc);
        free(s->name);
        s->name = NULL;
}

static void stun_finish(struct stun_run *s) {
        s->done = true;
        s->timer = sd_event_source_disable_unref(s->timer);
        s->on_done(s);
}

static int on_stun_timer(sd_event_source *src, uint64_t usec, void *userdata);

/* natcheck's address as endpoints are kept (v4-mapped when the socket family is IPv6). */
static void endpoint_from_storage(int family, const struct sockaddr_storage *ss,
                                  struct endpoint *ret) {
        *ret = (struct endpoint){ .len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                                  : sizeof(struct sockaddr_in6) };
        memcpy(&ret->addr, ss, ret->len);
        if (family == AF_INET6)
                udp_map_v4(&ret->addr, &ret->len);
}

/* Send what is due and re-arm the timer for the next deadline. */
static void stun_pump(struct stun_run *s) {
        uint8_t buf[STUN_MAX_MESSAGE_LEN];
        struct sockaddr_storage dst;
        socklen_t dst_len;
        uint64_t now = now_ns(), next;
        int n;

        while ((n = natcheck_next_packet(s->nc, now, buf, sizeof(buf), &dst, &dst_len)) > 0) {
                struct endpoint to;
                union sockaddr_union sa;
                socklen_t salen;
                int fd;

                endpoint_from_storage(s->sock->family, &dst, &to);
                fd = udp_pick(&s->sock->sockets, &to, &sa, &salen);
                (void) sendto(fd, buf, (size_t) n, MSG_DONTWAIT, &sa.sa, salen);
        }
        if (natcheck_done(s->nc)) {
                stun_finish(s);
                return;
        }
        next = natcheck_next_timeout(s->nc);
        if (next == UINT64_MAX)
                return;
        /* natcheck's clock is now_ns() (CLOCK_BOOTTIME); sd-event takes µs on that clock. */
        if (!s->timer)
                (void) sd_event_add_time(s->sock->event, &s->timer, CLOCK_BOOTTIME, next / 1000,
                                         1000, on_stun_timer, s);
        else {
                (void) sd_event_source_set_time(s->timer, next / 1000);
                (void) sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        }
}

static int on_stun_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        stun_pump(userdata);
        return 0;
}

static void add_local_addresses(struct stun_run *s) {
        struct ifaddrs *ifa = NULL;

        if (getifaddrs(&ifa) < 0)
                return;
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
                                     i->ifa_addr->sa_family != AF_INET6))
                        continue;
                struct sockaddr_storage sa;
                socklen_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                                  : sizeof(struct sockaddr_in6);
                memcpy(&sa, i->ifa_addr, len);
                /* Our port: a mapped address equal to local address and port means no NAT. */
                if (sa.ss_family == AF_INET)
                        ((struct sockaddr_in *) &sa)->sin_port = htons(s->sock->port);
                else
                        ((struct sockaddr_in6 *) &sa)->sin6_port = htons(s->sock->port);
                natcheck_add_local_address(s->nc, (struct sockaddr *) &sa, len);
        }
        freeifaddrs(ifa);
}

static void on_stun_resolved(struct resolve_query *q, int r, int gai_error,
                             const struct endpoint *result, void *userdata) {
        struct stun_run *s = userdata;
        struct sockaddr_storage server;
        socklen_t server_len = result ? result->len : 0;
        struct sockaddr_in6 local = { .sin6_family = AF_INET6 };

        s->resolve = NULL;
        if (r < 0) {
                snprintf(s->error, sizeof(s->error), "cannot resolve '%s': %s", s->name,
                         gai_error ? gai_strerror(gai_error) : strerror(-r));
                s->failed = true;
                stun_finish(s);
                return;
        }
        memcpy(&server, &result->addr, server_len);
        /* natcheck compares with plain IPv4 addresses: unmap a v4-mapped server address. */
        if (server.ss_family == AF_INET6 &&
            IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *) &server)->sin6_addr)) {
                struct sockaddr_in in = { .sin_family = AF_INET };
                in.sin_port = ((struct sockaddr_in6 *) &server)->sin6_port;
                memcpy(&in.sin_addr, &((struct sockaddr_in6 *) &server)->sin6_addr.s6_addr[12], 4);
                memcpy(&server, &in, sizeof(in));
                server_len = sizeof(in);
        }
        local.sin6_port = htons(s->sock->port);
        r = natcheck_new((struct sockaddr *) &server, server_len, (struct sockaddr *) &local,
                         sizeof(local), s->full, now_ns(), &s->nc);
        if (r < 0) {
                snprintf(s->error, sizeof(s->error), "cannot start NAT discovery: %s",
                         strerror(-r));
                s->failed = true;
                stun_finish(s);
                return;
        }
        add_local_addresses(s);
        stun_pump(s);
}

static int stun_run_start(struct stun_run *s, const struct netcheck_socket *sock, const char *host,
                          uint16_t port, bool full, void (*on_done)(struct stun_run *)) {
        *s = (struct stun_run){ .sock = sock, .full = full, .on_done = on_done };
        s->name = hostport_join(host, port);
        if (!s->name)
                return -ENOMEM;
        return resolve_start(sock->event, host, port, sock->family, on_stun_resolved, s,
                             &s->resolve);
}

static void on_part_done(struct stun_run *s) {
        struct netcheck_run *run = s->owner;

        if (!run->stun.done || (run->want_relay && !run->relay.done))
                return;
        run->done(run, run->userdata);
}

int netcheck_start(const struct netcheck_socket *sock, const char *stun_host, uint16_t stun_port,
                   const char *relay_host, uint16_t relay_port,
                   void (*done)(struct netcheck_run *run, void *userdata), void *userdata,
                   struct netcheck_run **ret) {
        struct netcheck_run *run;
        int r;

        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->sock = *sock;
        run->done = done;
        run->userdata = userdata;
        run->want_relay = relay_host != NULL;
        r = stun_run_start(&run->stun, &run->sock, stun_host, stun_port, true, on_part_done);
        run->stun.owner = run;
        if (r >= 0 && run->want_relay) {
                /* The relay answers STUN Binding: one request measures its round trip. */
                r = stun_run_start(&run->relay, &run->sock, relay_host, relay_port, false,
                                   on_part_done);
                run->relay.owner = run;
        }
        if (r < 0) {
                netcheck_free(run);
                return r;
        }
        *ret = run;
        return 0;
}

struct netcheck_run *netcheck_free(struct netcheck_run *run) {
        if (!run)
                return NULL;
        stun_run_clear(&run->stun);
        stun_run_clear(&run->relay);
        free(run);
        return NULL;
}

void netcheck_report(const struct netcheck_run *run, struct netcheck_report *ret) {
        const struct natcheck_result *sr = run->stun.nc ? natcheck_result(run->stun.nc) : NULL;
        const struct natcheck_result *rr = run->relay.nc ? natcheck_result(run->relay.nc) : NULL;

        *ret = (struct netcheck_report){
                .stun_server = run->stun.name ? run->stun.name : "",
                .stun_failed = run->stun.failed,
                .has_result = sr != NULL,
                .stun_error = run->stun.failed ? run->stun.error : "",
                .has_public = sr && sr->has_public,
                .nat_type = sr ? natcheck_type_string(sr) : "unknown",
                .mapping = sr ? sr->mapping : NAT_MAPPING_UNKNOWN,
                .filtering = sr ? sr->filtering : NAT_FILTERING_UNKNOWN,
                .stun_rtt_usec = sr && sr->has_public ? sr->rtt_ns / 1000 : 0,
                .relay_reachable = rr && rr->has_public,
                .relay_rtt_usec = rr && rr->has_public ? rr->rtt_ns / 1000 : 0,
        };
        if (ret->has_public)
                endpoint_from_storage(run->sock.family, &sr->public_endpoint,
                                      &ret->public_endpoint);
}

bool netcheck_input(struct netcheck_run *run, const struct queued_handshake *q) {
        struct sockaddr_storage from;
        socklen_t len = q->from.len;
        struct stun_run *runs[2];

        if (!run)
                return false;
        runs[0] = &run->stun;
        runs[1] = &run->relay;
        memcpy(&from, &q->from.addr, len);
        /* natcheck speaks plain IPv4: unmap. */
        if (from.ss_family == AF_INET6 &&
            IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *) &from)->sin6_addr)) {
                struct sockaddr_in in = { .sin_family = AF_INET };
                in.sin_port = ((struct sockaddr_in6 *) &from)->sin6_port;
                memcpy(&in.sin_addr, &((struct sockaddr_in6 *) &from)->sin6_addr.s6_addr[12], 4);
                memcpy(&from, &in, sizeof(in));
                len = sizeof(in);
        }
        for (size_t i = 0; i < ELEMENTSOF(runs); i++) {
                struct stun_run *s = runs[i];
                if (!s->nc || s->done)
                        continue;
                if (natcheck_input(s->nc, q->data, q->len, (struct sockaddr *) &from, len,
                                   now_ns())) {
                        stun_pump(s);
                        return true;
                }
        }
        return false;
}
