/* SPDX-License-Identifier: MIT */
/* shadowmesh-relay's process: the UDP socket, the sd-event loop, signals, sd_notify and the
 * counters. Every protocol decision is relay-core's. */
#pragma once

#include <stdint.h>

#include "relay-core.h"

struct relay_options {
        const char *listen_host; /* numeric; NULL or "::": every address, IPv4 and IPv6 */
        uint16_t listen_port;    /* 0: any free port (logged) */
        struct relay_core_config core;
};

struct relay;

/* Open the socket (or adopt the one socket activation passed) and set up the loop. Logs the
 * reason of a failure itself. */
int relay_new(const struct relay_options *options, struct relay **ret);
/* Run until SIGINT or SIGTERM; 0 then, < 0 on an error of the loop. */
int relay_run(struct relay *r);
struct relay *relay_free(struct relay *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct relay *, relay_free);

/* One "stats: name=value ..." line, at notice level (SIGUSR1). */
void relay_log_stats(const struct relay *r);
