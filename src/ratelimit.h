/* SPDX-License-Identifier: MIT */
/*
 * Per-source token buckets for handshake messages under load (WireGuard's ratelimiter.c, in our
 * own words): RATELIMIT_PACKETS_PER_SECOND with a burst of RATELIMIT_BURST per IPv4 address or
 * IPv6 /64 (one host usually owns a /64), the port ignored (a host has many).
 *
 * The table is a fixed open-addressed array of RATELIMIT_TABLE_SIZE slots, hashed with a keyed
 * SipHash so a remote party cannot aim many sources at one chain; a slot whose bucket has been
 * full for a second is as good as free and is reused. No allocation after ratelimit_new(), no
 * lock: one instance belongs to one thread. Pure except the random hash key; the clock is
 * passed in.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

struct ratelimit;

/* -ENOMEM or 0. */
int ratelimit_new(struct ratelimit **ret);
struct ratelimit *ratelimit_free(struct ratelimit *rl);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ratelimit *, ratelimit_free);

/* Take one token from src's bucket at time now (ns). False: over the rate, or no room for a new
 * source in the table. Sources that are neither IPv4 nor IPv6 share one bucket. */
bool ratelimit_allow(struct ratelimit *rl, const struct sockaddr *src, socklen_t srclen,
                     uint64_t now);

/* Sources with a live bucket (tests, and the curious). */
size_t ratelimit_count(const struct ratelimit *rl, uint64_t now);
