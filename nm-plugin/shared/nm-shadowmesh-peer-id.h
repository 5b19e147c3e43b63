/* SPDX-License-Identifier: MIT */
/*
 * One node's identity in a connection's "peer" and "peers": the service (settings.c) and the
 * editor's checks (nm-shadowmesh-utils.c) use the same one, so that the editor refuses exactly
 * the repeated peers the service would.
 */
#pragma once

#include <stdint.h>

/* host (lower case, no trailing dot; an IP address in its canonical spelling, a v4-mapped IPv6
 * address as IPv4) and port as "host|port", newly allocated (g_free). */
char *nm_shadowmesh_peer_identity(const char *host, uint16_t port);
