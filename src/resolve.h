/* SPDX-License-Identifier: MIT */
/* Name resolution off the event loop: getaddrinfo() runs on a short-lived thread and the result
 * comes back as an sd-event callback. Cancelling drops the callback, never blocks. */
#pragma once

#include <systemd/sd-event.h>

#include "udp.h"

struct resolve_query;

/* r < 0: failure; gai_error is the getaddrinfo error (for gai_strerror) or 0. */
typedef void (*resolve_callback_t)(struct resolve_query *q, int r, int gai_error,
                                   const struct endpoint *result, void *userdata);

int resolve_start(sd_event *event, const char *host, uint16_t port, int family,
                  resolve_callback_t callback, void *userdata, struct resolve_query **ret);
/* Forget the query: the callback will not run (the query is freed when its worker ends). The
 * query pointer is invalid once the callback has returned: clear handles in the callback. */
struct resolve_query *resolve_cancel(struct resolve_query *q);
