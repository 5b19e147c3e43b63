/* SPDX-License-Identifier: MIT */
#pragma once

#include "device.h"

/* How often the control loop evaluates the timer rules. */
#define TIMERS_TICK_NSEC (250 * NSEC_PER_MSEC)

/* Evaluate every timer rule (listed at the top of timers.c) against the clock. */
void timers_tick(struct device *d, uint64_t now);
/* Something needs a session now (first packet, rekey, start-up): start a handshake unless one
 * is already being retried. */
void timers_want_handshake(struct device *d, uint64_t now);
/* The same, and the first retry (rule 1) after first_retry_ns rather than REKEY_TIMEOUT. */
void timers_want_handshake_soon(struct device *d, uint64_t now, uint64_t first_retry_ns);
