/* SPDX-License-Identifier: MIT */
/*
 * The prototype's HTTP control API on daemon.listen_address (a loopback address), served by
 * libmicrohttpd on the device's sd-event loop: MHD runs without a thread of its own
 * (MHD_USE_EPOLL), its epoll fd is an sd-event I/O source and MHD_get_timeout() arms an
 * sd-event timer, so a slow or hostile client never blocks the loop. Routing and JSON are in
 * http-api.c; the calls go to the same connection manager as D-Bus (manager.c).
 */
#pragma once

struct device;
struct http_server;

/* Serve the API when d->config->control_host is set (a no-op otherwise). Binds at once, so a
 * port in use fails the start: -EADDRINUSE etc., logged here. */
int http_start(struct device *d);
/* Stop serving; a /connect still waiting gets 503 if it can be sent, else its connection is
 * closed. Accepts d->http == NULL. */
void http_stop(struct device *d);
