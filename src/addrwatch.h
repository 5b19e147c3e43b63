/* SPDX-License-Identifier: MIT */
/*
 * Roaming, our side: the host's own addresses, watched through rtnetlink (RTNLGRP_IPV4_IFADDR,
 * RTNLGRP_IPV6_IFADDR) on the control loop. The peer follows us by WireGuard's rule, the source
 * of the last authenticated packet; this makes sure such a packet leaves promptly, from an
 * address that exists.
 *
 *  - The source address pinned for the peer (udp.h: the address its packets reached) is dropped
 *    when it is removed, or becomes deprecated, tentative or DAD-failed: routing chooses.
 *  - A link-local IPv6 source (all there was while a new address was tentative) is dropped when
 *    a global address appears, unless the peer itself is link-local.
 *  - Any change of an address outside our TAP (after ADDRESS_CHANGE_SETTLE_MS, once per burst):
 *    we re-register with the relay and send the peer a keepalive (or a new initiation while a
 *    handshake is under way), so it learns our new address even when we have nothing to send.
 *    A send that fails is retried every ADDRESS_CHANGE_RETRY_MS, ADDRESS_CHANGE_RETRIES times.
 *  - Notifications lost to a full socket (ENOBUFS) count as every address having changed.
 *
 * Without this watcher roaming still works, more slowly: a send that fails because its source
 * is gone drops the source and is retried at once (datapath.c, path.c).
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "netlink.h"
#include "peer.h"

struct addrwatch;

/* Start watching on event, for the tunnel's socket udp_fd (its bound address is watched too),
 * ignoring the TAP's own addresses (tap_ifindex). peer_at(userdata, i) gives the peers whose
 * source addresses are kept right (NULL past the end). announce(userdata, first) sends the
 * peers one authenticated packet each from wherever
 * routing sends it now (first: the first try for this change, when the relay hears of it too);
 * it returns -errno when that send failed, and is retried. -errno when rtnetlink cannot be
 * watched; the caller decides whether that matters. */
int addrwatch_new(sd_event *event, int udp_fd, int tap_ifindex,
                  struct peer *(*peer_at)(void *userdata, size_t i),
                  int (*announce)(void *userdata, bool first), void *userdata,
                  struct addrwatch **ret);
struct addrwatch *addrwatch_free(struct addrwatch *w);
/* Is w still hearing of address changes? False for NULL, and after reading the notifications
 * failed (then nothing will tell the caller of a change: it has to look for itself). */
bool addrwatch_watching(const struct addrwatch *w);

/* Pure: does notification a make the source address cached in peer wrong? */
bool addrwatch_source_stale(const struct endpoint *peer, const struct netlink_address *a);
