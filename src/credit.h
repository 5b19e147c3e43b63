/* SPDX-License-Identifier: MIT */
/*
 * Per-source byte credit: how a node that lost its keys (it restarted) may answer the peer's
 * data for a session it no longer knows, without ever sending more than it received.
 *
 * Each source (address and port: the answer goes back to exactly there) accumulates the bytes
 * of the datagrams it sent us; a reply of `cost` bytes is granted only when the credit covers
 * it, the cost is then spent, and at most once per CREDIT_INTERVAL_MS per source. So over any
 * sequence of packets, the bytes granted to a source never exceed the bytes it sent: no
 * amplification, whoever forged the source address.
 *
 * A fixed open-addressed table of CREDIT_TABLE_SIZE slots, keyed SipHash (a remote party cannot
 * aim sources at one chain), CREDIT_PROBES probes; a slot idle for CREDIT_IDLE_SEC is free
 * again, and a new source that finds no free slot earns nothing (the hard cap). No allocation
 * after credit_new(), no lock: one table belongs to one thread (the rx thread). Pure except the
 * random hash key; the clock is passed in.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

struct credit;

int credit_new(struct credit **ret);
struct credit *credit_free(struct credit *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct credit *, credit_free);

/* Count `bytes` received from src at now (ns). True when a reply of `cost` bytes to src is
 * granted now (the credit covers it and the source's last grant is CREDIT_INTERVAL_MS old);
 * the cost is then taken from the credit. Sources other than IPv4/IPv6 earn nothing. */
bool credit_earn(struct credit *c, const struct sockaddr *src, socklen_t srclen, size_t bytes,
                 size_t cost, uint64_t now);
