/* SPDX-License-Identifier: MIT */
#pragma once

#include "handshake.h"
#include "path.h"
#include "peer.h"

/* How often the control loop evaluates the timer rules: TIMERS_TICK_NSEC while something is
 * under way (a handshake, a key pair to confirm or retire, a relay or path change); once the
 * tunnel has settled (device.c, device_settled), whether traffic moves or not, when a rule
 * counted from the last packets falls due (timers_next_due), at least every
 * TIMERS_QUIET_TICK_NSEC: what is left then counts in seconds. */
#define TIMERS_TICK_NSEC (250 * NSEC_PER_MSEC)
#define TIMERS_QUIET_TICK_NSEC (1000 * NSEC_PER_MSEC)

/* What the timers tell their caller, which reports it upward (manager.c). */
enum {
        TIMERS_STATE_CHANGED = 1 << 0, /* the peer's state moved (peer_event) */
        TIMERS_SESSION_UP = 1 << 1,    /* a put-off confirmation made the session usable */
};

/* Evaluate every timer rule (listed at the top of timers.c) against the clock. Returns
 * TIMERS_* flags. */
unsigned timers_tick(struct handshake_keys *k, const struct sender *s, struct peer *p,
                     uint64_t now);
/* When rules 3, 3b, 4, 4b or 8 (the ones counted from p's last packets) fall due next, on the
 * clock of now_ns(); UINT64_MAX: none is running. The settled tick (device.c) wakes for it
 * rather than up to a second late. */
uint64_t timers_next_due(struct peer *p);
/* Something needs a session now (first packet, rekey, start-up): start a handshake unless one
 * is already being retried. Returns TIMERS_* flags. */
unsigned timers_want_handshake(struct handshake_keys *k, const struct sender *s, struct peer *p,
                               uint64_t now);
/* The same, and the first retry (rule 1) after first_retry_ns rather than REKEY_TIMEOUT. */
unsigned timers_want_handshake_soon(struct handshake_keys *k, const struct sender *s,
                                    struct peer *p, uint64_t now, uint64_t first_retry_ns);
