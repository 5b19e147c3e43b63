/* SPDX-License-Identifier: MIT */
/*
 * The daemon's capabilities after start-up. Creating the TAP and binding the UDP socket need
 * a privileged start; running the tunnel afterwards needs CAP_NET_ADMIN only (rtnetlink on the
 * TAP, and deleting it at exit). caps_drop() keeps just that, for good: the bounding,
 * inheritable and ambient sets lose everything else, and no_new_privs stops an exec from
 * gaining anything back.
 */
#pragma once

#include <stdint.h>

/* Reduce the calling thread's capabilities to CAP_NET_ADMIN (when it has it) and set
 * no_new_privs. Capabilities are per thread: call it before any other thread starts, and
 * every thread made afterwards inherits the reduced sets. The bounding set shrinks only with
 * CAP_SETPCAP (a service manager may have removed it, and reduced the bounding set itself).
 * Returns 0 or -errno. */
int caps_drop(void);

/* The calling thread's effective and permitted sets as bit masks (for the log). */
int caps_get(uint64_t *ret_effective, uint64_t *ret_permitted);
