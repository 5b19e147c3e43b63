/* SPDX-License-Identifier: MIT */
/*
 * The learning switch's forwarding table: Ethernet address -> the port (peer) it was last seen
 * behind, as a Linux bridge's FDB keeps it.
 *
 * Rules (DESIGN "Mesh"):
 *   - an address is learned from the source of an authenticated frame, never from anything else;
 *   - an entry lives MACTABLE_AGEING_SEC (300 s, the bridge's default ageing time) after the
 *     last frame from it, and a frame from another port moves it at once (counted as a move);
 *   - the table holds at most its capacity (a hard cap chosen at creation, at most
 *     MACTABLE_MAX_ENTRIES). At the cap a new address is not learned until an entry ages out or
 *     its port is forgotten and the bounded sweep that each refusal runs has reclaimed it;
 *     until then frames to it are flooded, which is correct, only less efficient. Already
 *     learned addresses keep working, and an attacker cannot evict them. Refusals are counted.
 *   - group addresses (broadcast, multicast: the I/G bit) are never learned, and lookups of
 *     them always miss, so they are flooded.
 *
 * Threads: one writer (the data path's receive side, which learns) and any number of readers
 * (the transmit side, which looks up), with no lock: each slot is two atomic words, a slot
 * that is being rewritten is marked busy first, and readers treat a busy slot as "not this
 * address". Forgetting a port and ageing need no writer either: an entry of a forgotten port is
 * ignored by lookups (the caller passes a validity check through the port value, see
 * mactable_lookup) and aged entries are reused by the writer in place.
 *
 * The table is pure: no clock of its own (callers pass "now" in seconds), no logging.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum {
        MACTABLE_AGEING_SEC = 300,
        /* 2^20 addresses: far beyond any Ethernet segment a VPN carries, and still 32 MiB
         * at most (two slots of 16 bytes per entry). */
        MACTABLE_MAX_ENTRIES = 1 << 20,
        /* A lookup or learn never probes more slots than this; with the table at most half
         * full, linear probing's expected chain is short (Knuth: 1.5 probes for a hit). */
        MACTABLE_MAX_PROBES = 64,
        /* At the cap, each refused address sweeps this many slots for dead entries: bounded
         * work per frame, and a full sweep after capacity * 2 / 256 refusals. */
        MACTABLE_SWEEP_STEP = 256,
};

#define MACTABLE_PORT_NONE UINT32_MAX

struct mactable_slot {
        _Atomic uint64_t key;   /* 0: empty; MACTABLE_BUSY: being rewritten; else OCCUPIED | mac */
        _Atomic uint64_t value; /* port << 32 | last seen (seconds) */
};

struct mactable_stats {
        _Atomic uint64_t learned, moved, refused_full;
};

struct mactable {
        struct mactable_slot *slots;
        size_t mask;     /* number of slots - 1 (a power of two) */
        size_t capacity; /* the cap on used slots */
        size_t used;     /* writer only: slots holding an address, live or aged */
        size_t sweep_cursor; /* writer only */
        uint64_t seed;   /* keyed hash: a peer cannot choose addresses that collide */
        struct mactable_stats stats;
};

/* A table for at most capacity addresses (1..MACTABLE_MAX_ENTRIES). -EINVAL or -ENOMEM. */
int mactable_init(struct mactable *t, size_t capacity);
void mactable_done(struct mactable *t);

/* Group (broadcast/multicast) address: the I/G bit of the first octet. */
static inline bool mac_is_group(const uint8_t mac[6]) {
        return mac[0] & 1;
}

/*
 * Does the frame look for a host, rather than announce something to whoever listens? True for
 * unicast, ARP, and IPv6 neighbour solicitations (behind at most one 802.1Q tag); false for the
 * rest of broadcast and multicast: router solicitations, MLD reports, mDNS, SSDP... A peer
 * without a session is asked for a handshake only by frames that look for a host (datapath.c):
 * background announcements must not keep a peer whose retries gave up from staying `failed`.
 */
static inline bool frame_seeks_host(const uint8_t *f, size_t len) {
        size_t l3 = 14;
        uint16_t type;

        if (len < 14)
                return false;
        if (!mac_is_group(f))
                return true;
        type = (uint16_t) (f[12] << 8 | f[13]);
        if (type == 0x8100 && len >= 18) { /* one VLAN tag */
                type = (uint16_t) (f[16] << 8 | f[17]);
                l3 = 18;
        }
        if (type == 0x0806) /* ARP */
                return true;
        /* IPv6, next header ICMPv6 (58), type 135: neighbour solicitation (RFC 4861). */
        return type == 0x86dd && len >= l3 + 41 && f[l3 + 6] == 58 && f[l3 + 40] == 135;
}

/*
 * The writer: the source address of an authenticated frame from port. Returns 1 when the
 * address is new, 2 when it moved from another port, 0 when only refreshed or ignored (a group
 * or all-zero address), -ENOSPC at the cap (nothing changed).
 */
int mactable_learn(struct mactable *t, const uint8_t mac[6], uint32_t port, uint32_t now_sec);

/* Readers: the port a live (not aged) entry names, or MACTABLE_PORT_NONE: flood. */
uint32_t mactable_lookup(const struct mactable *t, const uint8_t mac[6], uint32_t now_sec);

/* Control loop, for status: live entries of one port (a walk over the table: not per packet). */
size_t mactable_count_port(const struct mactable *t, uint32_t port, uint32_t now_sec);

/* Writer side only (or with the writer stopped): drop every entry of port, so that its slots
 * can be reused at once (a removed peer). */
void mactable_forget_port(struct mactable *t, uint32_t port);
