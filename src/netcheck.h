/* SPDX-License-Identifier: MIT */
/* NAT discovery on the daemon's own UDP socket (natcheck.c does the protocol): STUN tests
 * against one server, and optionally the relay's round trip. Its owners use the report: the
 * start-up discovery (device.c: PublicEndpoint, NatType, the relay's candidates) and the
 * NetCheck() call (bus.c). */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "datapath.h"
#include "natcheck.h"

/* The tunnel's socket the checks run on, and its loop. */
struct netcheck_socket {
        sd_event *event;
        struct udp_sockets sockets;
        int family; /* endpoints' (udp_open) */
        uint16_t port;
};

struct netcheck_run;

/* STUN tests against stun_host:stun_port (full RFC 5780 tests when the server supports them),
 * and with relay_host a single Binding to the relay for its round trip. done(run, userdata)
 * runs once all parts finished (the caller reads the report, then frees the run). */
int netcheck_start(const struct netcheck_socket *sock, const char *stun_host, uint16_t stun_port,
                   const char *relay_host, uint16_t relay_port,
                   void (*done)(struct netcheck_run *run, void *userdata), void *userdata,
                   struct netcheck_run **ret);
struct netcheck_run *netcheck_free(struct netcheck_run *run);

/* A STUN message from the rx thread; true when run (may be NULL) took it. */
bool netcheck_input(struct netcheck_run *run, const struct queued_handshake *q);

/* What a finished run found. The strings live as long as the run. */
struct netcheck_report {
        const char *stun_server;
        bool stun_failed, has_result;
        const char *stun_error; /* "" unless stun_failed */
        bool has_public;
        struct endpoint public_endpoint; /* in the socket's family */
        const char *nat_type;
        enum nat_mapping mapping;
        enum nat_filtering filtering;
        uint64_t stun_rtt_usec;
        bool relay_reachable;
        uint64_t relay_rtt_usec;
};
void netcheck_report(const struct netcheck_run *run, struct netcheck_report *ret);
