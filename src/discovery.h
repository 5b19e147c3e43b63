/* SPDX-License-Identifier: MIT */
/*
 * Mesh discovery's pure core: the peer-list chunk (messages.h, "Mesh discovery") encoded and
 * decoded with strict validation, and the merge rules that turn a chunk received from peer X
 * into what the node should do. No sockets, no clock of its own (the caller passes "now"), no
 * allocation, no logging: errors come back as -errno with a struct discovery_error naming what
 * and where, and the caller logs once with the peer's name.
 *
 * The chunk travels sealed on the session, like the closing message:
 *   n = session_encrypt_control(kp, MESSAGE_DISCOVERY, plain, plain_len, out, sizeof(out), now);
 *   r = session_decrypt_control(kp, MESSAGE_DISCOVERY, msg, len, now, &plain, &plain_len, NULL);
 * then discovery_decode(plain, plain_len, ...) and discovery_merge().
 *
 * First, for the whole chunk: one older than the last taken from X is refused (-ESTALE), and
 * so is one with a SELF entry naming anyone but X when X's id is known (identity mode: its
 * static key): X lies about who it is (-EPERM). Then for each entry, in this order:
 *   1. our own id: DISCOVERY_OURSELF (its endpoint is how X sees us: a reflexive address of
 *      ours, like STUN's; nothing to add);
 *   2. SELF-flagged: DISCOVERY_SENDER, X describing itself: the caller records X's id (shared-key
 *      mode learns it here) and its candidates, which it may pass on to others;
 *   3. X's own id without SELF: DISCOVERY_IGNORED_SENDER (we reach X already);
 *   4. the allowed callback says no (identity mode: a key not in our peers list):
 *      DISCOVERY_IGNORED_NOT_ALLOWED;
 *   5. a peer we know (the lookup callback): with a live direct session, DISCOVERY_KNOWN;
 *      otherwise the entry's addresses other than the peer's current endpoint are
 *      DISCOVERY_TRY (or DISCOVERY_KNOWN when none is left);
 *   6. a peer we do not know: with addresses, or reached by X through the relay (so the relay
 *      may introduce us), DISCOVERY_ADD if the sender's budget has a token left, else
 *      DISCOVERY_IGNORED_OVER_LIMIT; with neither, DISCOVERY_IGNORED_NO_ADDRESS.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "messages.h"

/* One entry, decoded (or to encode). Addresses are wire candidates (network byte order port). */
struct discovery_entry {
        uint8_t id[NOISE_PUBLIC_KEY_LEN];
        uint8_t flags;                   /* DISCOVERY_ENTRY_* */
        struct relay_candidate endpoint; /* family RELAY_CANDIDATE_NONE: none */
        uint8_t n_candidates;
        struct relay_candidate candidates[DISCOVERY_MAX_CANDIDATES];
};

/* One decoded chunk. Addresses the candidate filter refused are left out of the entries (an
 * entry's endpoint then reads as none, and it loses DIRECT, as the encoder does) and counted in
 * refused_addresses. Every decoded chunk's entries are valid input to discovery_encode. */
struct discovery_chunk {
        uint64_t epoch;
        uint32_t version;
        uint16_t chunk_index, chunk_count;
        size_t n_entries;
        struct discovery_entry entries[DISCOVERY_MAX_ENTRIES];
        unsigned refused_addresses;
};

/* Where a chunk (or a list to encode) is wrong: what, in which entry (-1: the chunk's header or
 * length; for the encoder, the index in the whole list) and which address (-1: none, 0: the
 * endpoint, 1..DISCOVERY_MAX_CANDIDATES: that candidate). */
struct discovery_error {
        const char *what;
        int entry;
        int address;
};

/* Chunks a list of n_entries entries spans: at least 1 (an empty list is one empty chunk). */
size_t discovery_chunk_count(size_t n_entries);

/*
 * Encode chunk `index` of a whole list (entries[index * DISCOVERY_MAX_ENTRIES ...]) into out,
 * which must hold DISCOVERY_PLAIN_MAX_LEN (or the chunk's exact length). The list's entries are
 * checked as a receiver checks them (flags, counts, families, canonical IPv4, all-zero id, one
 * SELF entry per chunk, no duplicate id in a chunk, no duplicate address in an entry); addresses
 * the candidate filter refuses are left out (a peer reached over loopback is real to us and
 * meaningless to anyone else), and an entry whose endpoint is left out loses DIRECT.
 * Returns the plaintext length, or -EINVAL (bad list or index, `why` says where), -E2BIG (more
 * than DISCOVERY_MAX_LIST_ENTRIES), -ENOBUFS (out too small).
 */
ssize_t discovery_encode(uint64_t epoch, uint32_t version, const struct discovery_entry *entries,
                         size_t n_entries, size_t index, uint8_t *out, size_t out_max,
                         struct discovery_error *why);

/*
 * Decode a chunk's plaintext (what session_decrypt_control gave back). Returns 0 and fills
 * *ret, or -EBADMSG when it is malformed (`why` says what and where; *ret untouched).
 */
int discovery_decode(const uint8_t *plain, size_t len, struct discovery_chunk *ret,
                     struct discovery_error *why);

/* What a receiver keeps per sender: the newest (epoch, version) it took and the budget of new
 * peers the sender may still introduce. All zeros is the state before the first chunk. */
struct discovery_sender {
        bool seen;
        uint64_t epoch;
        uint32_t version;
        bool budget_started;
        uint32_t tokens;
        uint64_t refill_ns; /* when the last token was added */
};

/*
 * Whether a chunk of (epoch, version) is fresh from this sender: true (and remembered) for the
 * first chunk, another epoch (the sender restarted), or a version not older than the last taken
 * (serial arithmetic: correct across the 32-bit wrap); false for a stale chunk.
 */
bool discovery_sender_accept(struct discovery_sender *s, uint64_t epoch, uint32_t version);

/* What the caller knows of a peer that an entry names. */
struct discovery_known {
        bool direct;                     /* a live session on a direct path */
        struct relay_candidate endpoint; /* its current endpoint, family 0 when none */
};

struct discovery_context {
        const uint8_t *self_id;   /* our node id (required) */
        const uint8_t *sender_id; /* X's node id; NULL while unknown (shared-key mode) */
        /* Whether id may be a peer at all (identity mode: it is in our peers list). NULL: any. */
        bool (*allowed)(void *userdata, const uint8_t id[NOISE_PUBLIC_KEY_LEN]);
        /* 1 and *ret filled when the entry names a peer we have (by id, or in shared-key mode
         * by an endpoint of a peer whose id we have not learned yet), 0 when not. */
        int (*lookup)(void *userdata, const struct discovery_entry *e, struct discovery_known *ret);
        void *userdata;
};

enum discovery_verdict {
        DISCOVERY_ADD,                 /* a new peer: add it, handshake with `try` */
        DISCOVERY_TRY,                 /* a known peer without a direct path: try `try` */
        DISCOVERY_KNOWN,               /* a known peer, nothing new */
        DISCOVERY_SENDER,              /* X's description of itself (its id, its candidates) */
        DISCOVERY_OURSELF,             /* our own entry */
        DISCOVERY_IGNORED_SENDER,      /* names X without SELF */
        DISCOVERY_IGNORED_NOT_ALLOWED, /* the allowed callback refused it */
        DISCOVERY_IGNORED_OVER_LIMIT,  /* new, but X's budget of new peers is spent */
        DISCOVERY_IGNORED_NO_ADDRESS,  /* new, with no address and no relay path */
        _DISCOVERY_VERDICT_MAX,
};

struct discovery_action {
        enum discovery_verdict verdict;
        const struct discovery_entry *entry; /* points into the chunk merged */
        bool via_relay;                      /* X reaches that peer only through the relay */
        size_t n_try;                        /* ADD, TRY, SENDER: addresses, no duplicates */
        struct relay_candidate try[1 + DISCOVERY_MAX_CANDIDATES];
};

/*
 * Decide what a decoded chunk from sender X means (rules above). ret_actions gets one action per
 * entry, in order, and *ret_n their number. Updates *sender (freshness, budget) on success.
 * Returns 0, -ESTALE (an older chunk: nothing decided, *sender unchanged), -EPERM (a SELF entry
 * naming someone other than X: nothing decided, *sender unchanged) or -EINVAL (no self_id or
 * lookup).
 */
int discovery_merge(const struct discovery_context *ctx, struct discovery_sender *sender,
                    const struct discovery_chunk *chunk, uint64_t now_ns,
                    struct discovery_action ret_actions[static DISCOVERY_MAX_ENTRIES],
                    size_t *ret_n);

const char *discovery_verdict_to_string(enum discovery_verdict v);
