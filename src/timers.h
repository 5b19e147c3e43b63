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
