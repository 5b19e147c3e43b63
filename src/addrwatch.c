/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "addrwatch.h"
#include "log.h"

struct addrwatch {
        sd_event *event;
        int tap_ifindex;
        struct peer *(*peer_at)(void *userdata, size_t i); /* the peers, NULL past the end */
        int (*announce)(void *userdata, bool first);
        void *userdata;
        struct netlink_monitor *monitor;
        sd_event_source *io, *timer;
        unsigned retries; /* sends left to try for the change being announced */
        /* The tunnel's socket is bound to this one address (family 0: to the wildcard). */
        int bound_family;
        struct in6_addr bound; /* an in_addr in its first bytes for AF_INET */
        bool bound_gone;
        bool stopped; /* reading the notifications failed: no longer watching */
};

/* Flags of an address that must not be the source of new traffic. */
#define ADDRESS_UNUSABLE (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED)

bool addrwatch_source_stale(const struct endpoint *peer, const struct netlink_address *a) {
        if (peer->src.family == 0)
                return false;
        if (endpoint_source_is(peer, a->family, &a->in6))
                return a->removed || (a->flags & ADDRESS_UNUSABLE);
        /* While a new IPv6 address is tentative, only the link-local one can be a source, and a
         * peer on the same link then answers to it. Once a global address is usable, leave it. */
        return !a->removed && a->family == AF_INET6 && a->scope == RT_SCOPE_UNIVERSE &&
               !(a->flags & ADDRESS_UNUSABLE) && peer->src.family == AF_INET6 &&
               IN6_IS_ADDR_LINKLOCAL(&peer->src.in6) &&
               !(peer->addr.sa.sa_family == AF_INET6 &&
                 IN6_IS_ADDR_LINKLOCAL(&peer->addr.in6.sin6_addr));
}

/* Fire msec from now, unless the timer is armed to fire sooner: a burst of notifications is
 * announced once, and a steady stream of them cannot postpone the announcement. */
static void arm(struct addrwatch *w, uint64_t msec) {
        uint64_t now, due, armed;
        int enabled = SD_EVENT_OFF, r;

        r = sd_event_now(w->event, CLOCK_BOOTTIME, &now);
        if (r >= 0) {
                due = now + msec * 1000;
                (void) sd_event_source_get_enabled(w->timer, &enabled);
                if (enabled != SD_EVENT_OFF && sd_event_source_get_time(w->timer, &armed) >= 0 &&
                    armed <= due)
                        return;
                r = sd_event_source_set_time(w->timer, due);
        }
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "cannot arm the address-change timer: %m");
}

/* A change to announce, after the burst it belongs to has settled. */
static void schedule(struct addrwatch *w) {
        w->retries = ADDRESS_CHANGE_RETRIES;
        arm(w, ADDRESS_CHANGE_SETTLE_MS);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct addrwatch *w = userdata;
        int r;

        r = w->announce(w->userdata, w->retries == ADDRESS_CHANGE_RETRIES);
        if (r >= 0 || r == -ENOKEY) {
                w->retries = 0;
                return 0;
        }
        if (w->retries == 0) {
                log_debug_errno(r, "address change: still cannot reach the peer (%m); waiting "
                                   "for the next change or frame");
                return 0;
        }
        w->retries--;
        arm(w, ADDRESS_CHANGE_RETRY_MS);
        return 0;
}

static void check_bound(struct addrwatch *w, const struct netlink_address *a, const char *text) {
        size_t len = a->family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);

        if (w->bound_family != a->family || memcmp(&w->bound, &a->in6, len) != 0)
                return;
        if (a->removed) {
                w->bound_gone = true;
                log_warning("%s, the address the tunnel's socket is bound to, was removed: "
                            "nothing can be sent or received until it is back",
                            text);
        } else if (w->bound_gone && !(a->flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED))) {
                w->bound_gone = false;
                log_info("%s, the address the tunnel's socket is bound to, is back", text);
        }
}

static void on_address(const struct netlink_address *a, void *userdata) {
        struct addrwatch *w = userdata;
        char text[INET6_ADDRSTRLEN];
        struct endpoint ep;
        struct peer *p;
        bool forgot = false;

        if (a->ifindex == w->tap_ifindex)
                return; /* the tunnel's own addresses */
        inet_ntop(a->family, &a->in6, text, sizeof(text));
        check_bound(w, a, text);

        for (size_t i = 0; (p = w->peer_at(w->userdata, i)); i++) {
                peer_get_endpoint(p, &ep);
                if (addrwatch_source_stale(&ep, a) && peer_forget_source(p, &ep)) {
                        char src[INET6_ADDRSTRLEN];

                        /* Logged once per change, not once per peer. */
                        if (!forgot && endpoint_source_is(&ep, a->family, &a->in6))
                                log_info("our source address %s for the peer %s; routing "
                                         "chooses another",
                                         text, a->removed ? "was removed" : "is no longer usable");
                        else if (!forgot)
                                log_info("our link-local source address %s for the peer gives "
                                         "way to %s",
                                         inet_ntop(ep.src.family, &ep.src.in6, src, sizeof(src)),
                                         text);
                        forgot = true;
                }
        }

        /* Loopback addresses, and an address that is not usable yet (the kernel says so again
         * once duplicate address detection is over), change nothing the peer could see. */
        if (!forgot && (a->scope == RT_SCOPE_HOST || a->scope == RT_SCOPE_NOWHERE ||
                        (!a->removed && (a->flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED))))) {
                log_debug("address %s on ifindex %d %s: nothing to do", text, a->ifindex,
                          a->removed ? "removed" : "changed");
                return;
        }
        log_debug("address %s on ifindex %d %s: telling the peer", text, a->ifindex,
                  a->removed ? "removed" : "added or changed");
        schedule(w);
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct addrwatch *w = userdata;
        struct endpoint ep;
        int r;

        r = netlink_monitor_read(w->monitor, on_address, w);
        if (r == -ENOBUFS) {
                log_info("address notifications were lost (the kernel's queue was full): "
                         "assuming every address changed");
                struct peer *p;
                for (size_t i = 0; (p = w->peer_at(w->userdata, i)); i++) {
                        peer_get_endpoint(p, &ep);
                        (void) peer_forget_source(p, &ep);
                }
                schedule(w);
        } else if (r < 0) {
                /* Not worth a busy loop: roaming still works through send errors. */
                log_warning_errno(r, "reading address notifications failed, no longer watching "
                                     "the host's addresses: %m");
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                w->stopped = true;
        }
        return 0;
}

/* The one address the socket is bound to, if it is bound to one. */
static void read_bound_address(struct addrwatch *w, int fd) {
        union sockaddr_union sa = {};
        socklen_t len = sizeof(sa);

        if (getsockname(fd, &sa.sa, &len) < 0)
                return;
        if (sa.sa.sa_family == AF_INET && sa.in.sin_addr.s_addr != htonl(INADDR_ANY)) {
                w->bound_family = AF_INET;
                memcpy(&w->bound, &sa.in.sin_addr, sizeof(sa.in.sin_addr));
        } else if (sa.sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sa.in6.sin6_addr)) {
                w->bound_family = AF_INET;
                memcpy(&w->bound, &sa.in6.sin6_addr.s6_addr[12], sizeof(struct in_addr));
        } else if (sa.sa.sa_family == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&sa.in6.sin6_addr)) {
                w->bound_family = AF_INET6;
                w->bound = sa.in6.sin6_addr;
        }
}

int addrwatch_new(sd_event *event, int udp_fd, int tap_ifindex,
                  struct peer *(*peer_at)(void *userdata, size_t i),
                  int (*announce)(void *userdata, bool first), void *userdata,
                  struct addrwatch **ret) {
        struct addrwatch *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->event = event;
        w->tap_ifindex = tap_ifindex;
        w->peer_at = peer_at;
        w->announce = announce;
        w->userdata = userdata;
        r = netlink_monitor_open(&w->monitor);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(event, &w->io, netlink_monitor_fd(w->monitor), EPOLLIN, on_readable,
                            w);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(event, &w->timer, CLOCK_BOOTTIME, 0, 0, on_timer, w);
        if (r < 0)
                goto fail;
        r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0)
                goto fail;
        read_bound_address(w, udp_fd);
        *ret = w;
        return 0;
fail:
        addrwatch_free(w);
        return r;
}

bool addrwatch_watching(const struct addrwatch *w) {
        return w && !w->stopped;
}

struct addrwatch *addrwatch_free(struct addrwatch *w) {
        if (!w)
                return NULL;
        w->timer = sd_event_source_disable_unref(w->timer);
        w->io = sd_event_source_disable_unref(w->io);
        w->monitor = netlink_monitor_close(w->monitor);
        free(w);
        return NULL;
}
