/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>

#include "bus.h"
#include "log.h"
#include "natcheck.h"
#include "netcheck.h"
#include "relay-client.h"
#include "resolve.h"

/* One STUN exchange series against one server, driven by its own timer. */
struct stun_run {
        struct device *d;
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
        struct device *d;
        sd_bus_message *request; /* NetCheck() being answered; NULL at start-up */
        struct stun_run stun, relay;
        bool want_relay;
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

/* Send what is due and re-arm the timer for the next deadline. */
static void stun_pump(struct stun_run *s) {
        uint8_t buf[STUN_MAX_MESSAGE_LEN];
        struct sockaddr_storage dst;
        socklen_t dst_len;
        uint64_t now = now_ns(), next;
        int n;

        while ((n = natcheck_next_packet(s->nc, now, buf, sizeof(buf), &dst, &dst_len)) > 0) {
                struct endpoint to = { .len = dst_len };
                memcpy(&to.addr, &dst, dst_len);
                /* A v4 server address on a dual-stack socket must be v4-mapped. */
                if (dst.ss_family == AF_INET && s->d->udp_family == AF_INET6) {
                        const struct sockaddr_in *in = (const struct sockaddr_in *) &dst;
                        to = (struct endpoint){ .len = sizeof(struct sockaddr_in6) };
                        to.addr.in6.sin6_family = AF_INET6;
                        to.addr.in6.sin6_port = in->sin_port;
                        to.addr.in6.sin6_addr.s6_addr[10] = 0xff;
                        to.addr.in6.sin6_addr.s6_addr[11] = 0xff;
                        memcpy(&to.addr.in6.sin6_addr.s6_addr[12], &in->sin_addr, 4);
                }
                (void) sendto(s->d->udp_fd, buf, (size_t) n, MSG_DONTWAIT, &to.addr.sa, to.len);
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
                (void) sd_event_add_time(s->d->event, &s->timer, CLOCK_BOOTTIME, next / 1000, 1000,
                                         on_stun_timer, s);
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
                        ((struct sockaddr_in *) &sa)->sin_port = htons(s->d->port);
                else
                        ((struct sockaddr_in6 *) &sa)->sin6_port = htons(s->d->port);
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
        local.sin6_port = htons(s->d->port);
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

static int stun_run_start(struct stun_run *s, struct device *d, const char *host, uint16_t port,
                          bool full, void (*on_done)(struct stun_run *)) {
        *s = (struct stun_run){ .d = d, .full = full, .on_done = on_done };
        if (asprintf(&s->name, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port) < 0) {
                s->name = NULL;
                return -ENOMEM;
        }
        return resolve_start(d->event, host, port, d->udp_family, on_stun_resolved, s, &s->resolve);
}

static void endpoint_from_storage(struct device *d, const struct sockaddr_storage *ss,
                                  struct endpoint *ret) {
        *ret = (struct endpoint){};
        if (ss->ss_family == AF_INET && d->udp_family == AF_INET6) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) ss;
                ret->addr.in6.sin6_family = AF_INET6;
                ret->addr.in6.sin6_port = in->sin_port;
                ret->addr.in6.sin6_addr.s6_addr[10] = 0xff;
                ret->addr.in6.sin6_addr.s6_addr[11] = 0xff;
                memcpy(&ret->addr.in6.sin6_addr.s6_addr[12], &in->sin_addr, 4);
                ret->len = sizeof(struct sockaddr_in6);
        } else {
                ret->len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                    : sizeof(struct sockaddr_in6);
                memcpy(&ret->addr, ss, ret->len);
        }
}

/* ---- start-up discovery ---- */

static void on_startup_done(struct stun_run *s) {
        struct device *d = s->d;
        const struct natcheck_result *r = s->nc ? natcheck_result(s->nc) : NULL;
        char buf[ENDPOINT_STRLEN];

        if (s->failed || !r) {
                log_warning("NAT discovery with %s failed: %s", s->name, s->error);
                return;
        }
        snprintf(d->nat_type, sizeof(d->nat_type), "%s", natcheck_type_string(r));
        if (r->has_public) {
                endpoint_from_storage(d, &r->public_endpoint, &d->public_endpoint_sa);
                endpoint_to_string(&d->public_endpoint_sa, buf);
                snprintf(d->public_endpoint, sizeof(d->public_endpoint), "%s", buf);
                log_info("public endpoint %s, NAT type %s (mapping %s, filtering %s)", buf,
                         d->nat_type, nat_mapping_to_string(r->mapping),
                         nat_filtering_to_string(r->filtering));
        } else
                log_warning("no answer from STUN server %s: NAT type %s", s->name, d->nat_type);
        /* Behind any NAT (or not knowing): keep the mapping open on idle sessions. */
        if (r->mapping != NAT_MAPPING_NO_NAT)
                d->nat_keepalive = true;
        bus_emit_changed(d, "PublicEndpoint", "NatType", NULL);
        relay_client_refresh(d->relay);
}

int netcheck_startup(struct device *d) {
        struct netcheck_run *run;
        int r;

        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->d = d;
        run->stun.owner = run;
        r = stun_run_start(&run->stun, d, d->config->stun_host, d->config->stun_port, true,
                           on_startup_done);
        if (r < 0) {
                stun_run_clear(&run->stun);
                free(run);
                return r;
        }
        run->stun.owner = run;
        d->netcheck = run;
        return 0;
}

/* ---- NetCheck() ---- */

static int append_str(sd_bus_message *m, const char *key, const char *value) {
        return sd_bus_message_append(m, "{sv}", key, "s", value);
}

static void api_reply(struct netcheck_run *run) {
        struct device *d = run->d;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const struct natcheck_result *sr = run->stun.nc ? natcheck_result(run->stun.nc) : NULL;
        const struct natcheck_result *rr = run->relay.nc ? natcheck_result(run->relay.nc) : NULL;
        char buf[ENDPOINT_STRLEN] = "";
        int r;

        if (sr && sr->has_public) {
                struct endpoint e;
                endpoint_from_storage(d, &sr->public_endpoint, &e);
                endpoint_to_string(&e, buf);
        }
        r = sd_bus_message_new_method_return(run->request, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_str(reply, "PublicEndpoint", buf);
        if (r >= 0)
                r = append_str(reply, "NatType", sr ? natcheck_type_string(sr) : "unknown");
        if (r >= 0)
                r = append_str(reply, "NatMapping",
                               nat_mapping_to_string(sr ? sr->mapping : NAT_MAPPING_UNKNOWN));
        if (r >= 0)
                r = append_str(reply, "NatFiltering",
                               nat_filtering_to_string(sr ? sr->filtering : NAT_FILTERING_UNKNOWN));
        if (r >= 0)
                r = append_str(reply, "StunServer", run->stun.name ? run->stun.name : "");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "StunRttUsec", "t",
                                          sr && sr->has_public ? sr->rtt_ns / 1000 : (uint64_t) 0);
        if (r >= 0)
                r = append_str(reply, "StunError", run->stun.failed ? run->stun.error : "");
        if (r >= 0)
                r = append_str(reply, "Relay", run->want_relay ? relay_client_name(d->relay) : "");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "RelayReachable", "b",
                                          (int) (rr && rr->has_public));
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "RelayRttUsec", "t",
                                          rr && rr->has_public ? rr->rtt_ns / 1000 : (uint64_t) 0);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "RelayRegistered", "b",
                                          (int) relay_client_registered(d->relay));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                (void) sd_bus_send(NULL, reply, NULL);
        else
                (void) sd_bus_reply_method_errorf(run->request, SD_BUS_ERROR_FAILED,
                                                  "Cannot build the reply: %s", strerror(-r));
}

static void api_free(struct netcheck_run *run) {
        stun_run_clear(&run->stun);
        stun_run_clear(&run->relay);
        sd_bus_message_unref(run->request);
        free(run);
}

static void on_api_part_done(struct stun_run *s) {
        struct netcheck_run *run = s->owner;

        if (!run->stun.done || (run->want_relay && !run->relay.done))
                return;
        api_reply(run);
        run->d->netcheck_api = NULL;
        api_free(run);
}

int netcheck_api_start(struct device *d, sd_bus_message *m, sd_bus_error *error) {
        const struct config *c = d->config;
        struct netcheck_run *run;
        int r;

        if (d->netcheck_api)
                return sd_bus_error_set(error, BUS_ERROR_PREFIX "InProgress",
                                        "A NetCheck is already running");
        if (!c->stun_host && !c->relay_host)
                return sd_bus_error_set(error, BUS_ERROR_PREFIX "NoStunServer",
                                        "No STUN server configured (nat.stun_server or "
                                        "relay.server)");
        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->d = d;
        run->request = sd_bus_message_ref(m);
        run->stun.owner = run->relay.owner = run;
        run->want_relay = c->relay_host != NULL;
        r = stun_run_start(&run->stun, d, c->stun_host ? c->stun_host : c->relay_host,
                           c->stun_host ? c->stun_port : c->relay_port, true, on_api_part_done);
        run->stun.owner = run;
        if (r >= 0 && run->want_relay) {
                /* The relay answers STUN Binding: one request measures its round trip. */
                r = stun_run_start(&run->relay, d, c->relay_host, c->relay_port, false,
                                   on_api_part_done);
                run->relay.owner = run;
        }
        if (r < 0) {
                api_free(run);
                return sd_bus_error_set_errnof(error, -r, "Cannot start the NAT check: %m");
        }
        d->netcheck_api = run;
        return 1;
}

void netcheck_input(struct device *d, const struct queued_handshake *q) {
        struct sockaddr_storage from;
        socklen_t len = q->from.len;
        struct stun_run *runs[3] = {
                d->netcheck ? &d->netcheck->stun : NULL,
                d->netcheck_api ? &d->netcheck_api->stun : NULL,
                d->netcheck_api ? &d->netcheck_api->relay : NULL,
        };

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
                if (!s || !s->nc || s->done)
                        continue;
                if (natcheck_input(s->nc, q->data, q->len, (struct sockaddr *) &from, len,
                                   now_ns())) {
                        stun_pump(s);
                        return;
                }
        }
}

void netcheck_free_startup(struct device *d) {
        if (d->netcheck) {
                stun_run_clear(&d->netcheck->stun);
                free(d->netcheck);
                d->netcheck = NULL;
        }
}

void netcheck_free_all(struct device *d) {
        netcheck_free_startup(d);
        if (d->netcheck_api) {
                (void) sd_bus_reply_method_errorf(d->netcheck_api->request,
                                                  BUS_ERROR_PREFIX "Cancelled",
                                                  "The daemon is shutting down");
                api_free(d->netcheck_api);
                d->netcheck_api = NULL;
        }
}
