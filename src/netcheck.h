/* SPDX-License-Identifier: MIT */
/* NAT discovery on the daemon's own UDP socket (natcheck.c does the protocol): at start-up for
 * PublicEndpoint/NatType and the relay's candidates, and on demand for the NetCheck() call. */
#pragma once

#include <systemd/sd-bus.h>

#include "device.h"

/* Start-up discovery against nat.stun_server (full RFC 5780 tests when it supports them). */
int netcheck_startup(struct device *d);
/* NetCheck(): STUN server tests plus the relay's round-trip time; replies to m when done. */
int netcheck_api_start(struct device *d, sd_bus_message *m, sd_bus_error *error);
/* A STUN message from the rx thread: offered to every run in progress. */
void netcheck_input(struct device *d, const struct queued_handshake *q);
/* Stop the start-up NAT discovery (reload starts it again with the new server). */
void netcheck_free_startup(struct device *d);
void netcheck_free_all(struct device *d);
