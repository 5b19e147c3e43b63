/* SPDX-License-Identifier: MIT */
/*
 * The peer-list chunk's codec and the merge rules (discovery.h; the format is in messages.h).
 * The decoder refuses anything a correct encoder cannot produce, so that a chunk has exactly one
 * encoding and the format stays pinned; the encoder runs the same checks on what it is given,
 * so that we never send what we would refuse.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "discovery.h"
#include "candidate.h" /* relay_candidate_acceptable: the filter the relay's PEER goes through */

#define ENTRY_LEN sizeof(struct discovery_wire_entry)
#define HEADER_LEN sizeof(struct discovery_list_header)

/* Say where and return error: the encoder's -EINVAL or the decoder's -EBADMSG. */
static int fail(struct discovery_error *why, int error, const char *what, int entry, int address) {
        if (why)
                *why = (struct discovery_error){.what = what, .entry = entry, .address = address};
        return error;
}

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static bool address_equal(const struct relay_candidate *a, const struct relay_candidate *b) {
        return memcmp(a, b, sizeof(*a)) == 0;
}

static bool address_present(const struct relay_candidate *c) {
        return c->family != RELAY_CANDIDATE_NONE;
}

static bool is_v4_mapped(const uint8_t a[16]) {
        static const uint8_t prefix[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/* The one encoding of an address (messages.h): NULL when c has it, else what is wrong. */
static const char *address_check(const struct relay_candidate *c) {
        if (c->family == RELAY_CANDIDATE_NONE)
                return sodium_is_zero((const uint8_t *) c, sizeof(*c))
                               ? NULL
                               : "absent address with bytes set";
        if (c->reserved_zero != 0)
                return "address reserved byte not zero";
        if (c->family == RELAY_CANDIDATE_IPV4)
                return sodium_is_zero(c->addr + 4, 12) ? NULL
                                                       : "IPv4 address with bytes past the fourth";
        if (c->family == RELAY_CANDIDATE_IPV6)
                return is_v4_mapped(c->addr) ? "IPv4-mapped IPv6 address (must be family 4)" : NULL;
        return "unknown address family";
}

/* An IPv4-mapped IPv6 address as family 4, so that the caller's endpoints (which a dual-stack
 * socket reports mapped) compare equal to the wire's. */
static struct relay_candidate address_canonical(const struct relay_candidate *c) {
        struct relay_candidate r = *c;

        if (c->family == RELAY_CANDIDATE_IPV6 && is_v4_mapped(c->addr)) {
                memset(r.addr, 0, sizeof(r.addr));
                memcpy(r.addr, c->addr + 12, 4);
                r.family = RELAY_CANDIDATE_IPV4;
        }
        return r;
}

/* Flags and the endpoint rules that go with them (messages.h). */
static const char *flags_check(uint8_t flags, bool has_endpoint) {
        if (flags & ~DISCOVERY_ENTRY_FLAGS_KNOWN)
                return "unknown entry flags";
        if ((flags & DISCOVERY_ENTRY_DIRECT) && (flags & DISCOVERY_ENTRY_RELAY))
                return "entry both direct and relayed";
        if ((flags & DISCOVERY_ENTRY_SELF) &&
            (flags & (DISCOVERY_ENTRY_DIRECT | DISCOVERY_ENTRY_RELAY)))
                return "self entry with a path flag";
        if ((flags & (DISCOVERY_ENTRY_SELF | DISCOVERY_ENTRY_RELAY)) && has_endpoint)
                return "self or relayed entry with an endpoint";
        if ((flags & DISCOVERY_ENTRY_DIRECT) && !has_endpoint)
                return "direct entry without an endpoint";
        return NULL;
}

size_t discovery_chunk_count(size_t n_entries) {
        return n_entries == 0 ? 1 : (n_entries + DISCOVERY_MAX_ENTRIES - 1) / DISCOVERY_MAX_ENTRIES;
}

/* Append c to list unless refused by the filter (counted) or already there (dropped). */
static void keep_address(const struct relay_candidate *c, struct relay_candidate *list, size_t *n,
                         unsigned *refused) {
        if (!relay_candidate_acceptable(c)) {
                (*refused)++;
                return;
        }
        for (size_t i = 0; i < *n; i++)
                if (address_equal(&list[i], c))
                        return;
        list[(*n)++] = *c;
}

ssize_t discovery_encode(uint64_t epoch, uint32_t version, const struct discovery_entry *entries,
                         size_t n_entries, size_t index, uint8_t *out, size_t out_max,
                         struct discovery_error *why) {
        size_t count = discovery_chunk_count(n_entries), first, n, len;
        bool self_seen = false;

        if (n_entries > DISCOVERY_MAX_LIST_ENTRIES)
                return fail(why, -E2BIG, "list longer than DISCOVERY_MAX_LIST_ENTRIES", -1, -1);
        if ((n_entries > 0 && !entries) || !out)
                return fail(why, -EINVAL, "no list or no buffer", -1, -1);
        if (index >= count)
                return fail(why, -EINVAL, "chunk index past the list", -1, -1);
        first = index * DISCOVERY_MAX_ENTRIES;
        n = MIN(n_entries - first, (size_t) DISCOVERY_MAX_ENTRIES);
        len = HEADER_LEN + n * ENTRY_LEN;
        if (out_max < len)
                return -ENOBUFS;

        /* Check the whole chunk before writing anything. */
        for (size_t i = first; i < first + n; i++) {
                const struct discovery_entry *e = &entries[i];
                const char *what;

                if (sodium_is_zero(e->id, sizeof(e->id)))
                        return fail(why, -EINVAL, "all-zero id", (int) i, -1);
                if (e->n_candidates > DISCOVERY_MAX_CANDIDATES)
                        return fail(why, -EINVAL, "more than DISCOVERY_MAX_CANDIDATES candidates",
                                    (int) i, -1);
                what = address_check(&e->endpoint);
                if (what)
                        return fail(why, -EINVAL, what, (int) i, 0);
                for (size_t c = 0; c < e->n_candidates; c++) {
                        what = address_present(&e->candidates[c]) ? address_check(&e->candidates[c])
                                                                  : "absent candidate";
                        if (what)
                                return fail(why, -EINVAL, what, (int) i, (int) c + 1);
                }
                what = flags_check(e->flags, address_present(&e->endpoint));
                if (what)
                        return fail(why, -EINVAL, what, (int) i, -1);
                if (e->flags & DISCOVERY_ENTRY_SELF) {
                        if (self_seen)
                                return fail(why, -EINVAL, "two self entries in one chunk", (int) i,
                                            -1);
                        self_seen = true;
                }
                for (size_t j = first; j < i; j++)
                        if (memcmp(entries[j].id, e->id, sizeof(e->id)) == 0)
                                return fail(why, -EINVAL, "id twice in one chunk", (int) i, -1);
        }

        memset(out, 0, len);
        put_le64(out + offsetof(struct discovery_list_header, epoch), epoch);
        put_le32(out + offsetof(struct discovery_list_header, version), version);
        put_le16(out + offsetof(struct discovery_list_header, chunk_index), (uint16_t) index);
        put_le16(out + offsetof(struct discovery_list_header, chunk_count), (uint16_t) count);
        for (size_t i = 0; i < n; i++) {
                const struct discovery_entry *e = &entries[first + i];
                struct relay_candidate addrs[1 + DISCOVERY_MAX_CANDIDATES];
                struct discovery_wire_entry w = {};
                size_t k = 0;
                unsigned refused = 0;

                memcpy(w.id, e->id, sizeof(w.id));
                w.flags = e->flags;
                if (address_present(&e->endpoint))
                        keep_address(&e->endpoint, addrs, &k, &refused);
                if (k == 1)
                        w.endpoint = addrs[0];
                else
                        w.flags &= (uint8_t) ~DISCOVERY_ENTRY_DIRECT; /* its endpoint is left out */
                for (size_t c = 0; c < e->n_candidates; c++)
                        keep_address(&e->candidates[c], addrs, &k, &refused);
                /* addrs[0] is the endpoint when there is one; the rest are candidates. */
                for (size_t c = address_present(&w.endpoint) ? 1 : 0; c < k; c++)
                        w.candidates[w.n_candidates++] = addrs[c];
                memcpy(out + HEADER_LEN + i * ENTRY_LEN, &w, ENTRY_LEN);
        }
        return (ssize_t) len;
}

int discovery_decode(const uint8_t *plain, size_t len, struct discovery_chunk *ret,
                     struct discovery_error *why) {
        struct discovery_chunk c = {};
        int self_entry = -1;

        if (!plain || len < HEADER_LEN)
                return fail(why, -EBADMSG, "shorter than the list header", -1, -1);
        if ((len - HEADER_LEN) % ENTRY_LEN != 0)
                return fail(why, -EBADMSG, "length not a whole number of entries", -1, -1);
        c.n_entries = (len - HEADER_LEN) / ENTRY_LEN;
        if (c.n_entries > DISCOVERY_MAX_ENTRIES)
                return fail(why, -EBADMSG, "more than DISCOVERY_MAX_ENTRIES entries", -1, -1);
        c.epoch = get_le64(plain + offsetof(struct discovery_list_header, epoch));
        c.version = get_le32(plain + offsetof(struct discovery_list_header, version));
        c.chunk_index = get_le16(plain + offsetof(struct discovery_list_header, chunk_index));
        c.chunk_count = get_le16(plain + offsetof(struct discovery_list_header, chunk_count));
        if (c.chunk_count == 0 || c.chunk_count > DISCOVERY_MAX_CHUNKS)
                return fail(why, -EBADMSG, "chunk count out of range", -1, -1);
        if (c.chunk_index >= c.chunk_count)
                return fail(why, -EBADMSG, "chunk index not below the chunk count", -1, -1);
        if (c.n_entries == 0 && c.chunk_count != 1)
                return fail(why, -EBADMSG, "empty chunk in a list of several", -1, -1);

        for (size_t i = 0; i < c.n_entries; i++) {
                struct discovery_wire_entry w;
                struct discovery_entry *e = &c.entries[i];
                struct relay_candidate addrs[1 + DISCOVERY_MAX_CANDIDATES];
                size_t n_addrs = 0;
                const char *what;
                int ei = (int) i;

                memcpy(&w, plain + HEADER_LEN + i * ENTRY_LEN, ENTRY_LEN);
                if (sodium_is_zero(w.id, sizeof(w.id)))
                        return fail(why, -EBADMSG, "all-zero id", ei, -1);
                if (w.reserved_zero[0] || w.reserved_zero[1])
                        return fail(why, -EBADMSG, "entry reserved bytes not zero", ei, -1);
                if (w.n_candidates > DISCOVERY_MAX_CANDIDATES)
                        return fail(why, -EBADMSG, "more than DISCOVERY_MAX_CANDIDATES candidates",
                                    ei, -1);
                what = address_check(&w.endpoint);
                if (what)
                        return fail(why, -EBADMSG, what, ei, 0);
                if (address_present(&w.endpoint))
                        addrs[n_addrs++] = w.endpoint;
                for (size_t k = 0; k < DISCOVERY_MAX_CANDIDATES; k++) {
                        const struct relay_candidate *a = &w.candidates[k];

                        if (k >= w.n_candidates) {
                                if (!sodium_is_zero((const uint8_t *) a, sizeof(*a)))
                                        return fail(why, -EBADMSG, "unused candidate slot not zero",
                                                    ei, (int) k + 1);
                                continue;
                        }
                        what = address_present(a) ? address_check(a) : "absent candidate";
                        if (what)
                                return fail(why, -EBADMSG, what, ei, (int) k + 1);
                        for (size_t j = 0; j < n_addrs; j++)
                                if (address_equal(&addrs[j], a))
                                        return fail(why, -EBADMSG, "address twice in one entry", ei,
                                                    (int) k + 1);
                        addrs[n_addrs++] = *a;
                }
                what = flags_check(w.flags, address_present(&w.endpoint));
                if (what)
                        return fail(why, -EBADMSG, what, ei, -1);
                if (w.flags & DISCOVERY_ENTRY_SELF) {
                        if (self_entry >= 0)
                                return fail(why, -EBADMSG, "two self entries in one chunk", ei, -1);
                        self_entry = ei;
                }
                for (size_t j = 0; j < i; j++)
                        if (memcmp(c.entries[j].id, w.id, sizeof(w.id)) == 0)
                                return fail(why, -EBADMSG, "id twice in one chunk", ei, -1);

                /* Well formed: keep what the filter accepts, as the relay client does with the
                 * relay's PEER (a bad address costs only itself). */
                memcpy(e->id, w.id, sizeof(e->id));
                e->flags = w.flags;
                if (address_present(&w.endpoint)) {
                        if (relay_candidate_acceptable(&w.endpoint))
                                e->endpoint = w.endpoint;
                        else {
                                /* As the encoder does: DIRECT goes with its endpoint, so that
                                 * a decoded entry is always one the encoder takes. */
                                e->flags &= (uint8_t) ~DISCOVERY_ENTRY_DIRECT;
                                c.refused_addresses++;
                        }
                }
                for (size_t k = 0; k < w.n_candidates; k++) {
                        if (relay_candidate_acceptable(&w.candidates[k]))
                                e->candidates[e->n_candidates++] = w.candidates[k];
                        else
                                c.refused_addresses++;
                }
        }
        *ret = c;
        return 0;
}

bool discovery_sender_accept(struct discovery_sender *s, uint64_t epoch, uint32_t version) {
        /* RFC 1982 serial comparison: version older than s->version when the signed distance
         * from it is negative. */
        if (s->seen && s->epoch == epoch && (int32_t) (version - s->version) < 0)
                return false;
        s->seen = true;
        s->epoch = epoch;
        s->version = version;
        return true;
}

/* A token bucket of DISCOVERY_NEW_PEERS_BURST, one token per DISCOVERY_NEW_PEER_REFILL_MS. It
 * starts full and is kept across the sender's epochs: a new epoch must not buy new peers. */
static void budget_refill(struct discovery_sender *s, uint64_t now_ns) {
        const uint64_t step = (uint64_t) DISCOVERY_NEW_PEER_REFILL_MS * NSEC_PER_MSEC;
        uint64_t n;

        if (!s->budget_started) {
                s->budget_started = true;
                s->tokens = DISCOVERY_NEW_PEERS_BURST;
                s->refill_ns = now_ns;
                return;
        }
        if (now_ns < s->refill_ns) /* a clock that went back adds nothing */
                return;
        if (s->tokens >= DISCOVERY_NEW_PEERS_BURST) {
                s->refill_ns = now_ns;
                return;
        }
        n = (now_ns - s->refill_ns) / step;
        if (n == 0)
                return;
        if (n >= DISCOVERY_NEW_PEERS_BURST - s->tokens) {
                s->tokens = DISCOVERY_NEW_PEERS_BURST;
                s->refill_ns = now_ns;
        } else {
                s->tokens += (uint32_t) n;
                s->refill_ns += n * step;
        }
}

/* The entry's addresses not equal to `except` (none when except is absent). */
static size_t addresses_to_try(const struct discovery_entry *e,
                               const struct relay_candidate *except,
                               struct relay_candidate out[static 1 + DISCOVERY_MAX_CANDIDATES]) {
        struct relay_candidate skip =
                except ? address_canonical(except) : (struct relay_candidate){};
        const struct relay_candidate *all[1 + DISCOVERY_MAX_CANDIDATES];
        size_t n_all = 0, n = 0;

        if (address_present(&e->endpoint))
                all[n_all++] = &e->endpoint;
        for (size_t i = 0; i < MIN(e->n_candidates, (uint8_t) DISCOVERY_MAX_CANDIDATES); i++)
                all[n_all++] = &e->candidates[i];
        for (size_t i = 0; i < n_all; i++) {
                struct relay_candidate a = address_canonical(all[i]);
                bool dup = address_present(&skip) && address_equal(&a, &skip);

                if (!address_present(&a))
                        continue;
                for (size_t j = 0; j < n && !dup; j++)
                        dup = address_equal(&out[j], &a);
                if (!dup)
                        out[n++] = a;
        }
        return n;
}

int discovery_merge(const struct discovery_context *ctx, struct discovery_sender *sender,
                    const struct discovery_chunk *chunk, uint64_t now_ns,
                    struct discovery_action ret_actions[static DISCOVERY_MAX_ENTRIES],
                    size_t *ret_n) {
        struct discovery_action actions[DISCOVERY_MAX_ENTRIES];
        struct discovery_sender s;

        if (!ctx || !ctx->self_id || !ctx->lookup || !sender || !chunk || !ret_n ||
            chunk->n_entries > DISCOVERY_MAX_ENTRIES)
                return -EINVAL;
        s = *sender;
        if (!discovery_sender_accept(&s, chunk->epoch, chunk->version))
                return -ESTALE;
        /* A sender that describes someone else as itself is not believed about anything. */
        for (size_t i = 0; i < chunk->n_entries; i++) {
                const struct discovery_entry *e = &chunk->entries[i];
                if ((e->flags & DISCOVERY_ENTRY_SELF) && ctx->sender_id &&
                    memcmp(e->id, ctx->sender_id, NOISE_PUBLIC_KEY_LEN) != 0)
                        return -EPERM;
        }
        budget_refill(&s, now_ns);

        for (size_t i = 0; i < chunk->n_entries; i++) {
                const struct discovery_entry *e = &chunk->entries[i];
                struct discovery_action *a = &actions[i];
                struct discovery_known known = {};

                *a = (struct discovery_action){.entry = e,
                                               .via_relay = e->flags & DISCOVERY_ENTRY_RELAY};
                if (memcmp(e->id, ctx->self_id, NOISE_PUBLIC_KEY_LEN) == 0) {
                        /* Even a SELF entry with our id (a shared-key sender cannot know our
                         * id is its own) is never taken as the sender. */
                        a->verdict = DISCOVERY_OURSELF;
                        continue;
                }
                if (e->flags & DISCOVERY_ENTRY_SELF) {
                        a->verdict = DISCOVERY_SENDER;
                        a->n_try = addresses_to_try(e, NULL, a->try);
                        continue;
                }
                if (ctx->sender_id && memcmp(e->id, ctx->sender_id, NOISE_PUBLIC_KEY_LEN) == 0) {
                        a->verdict = DISCOVERY_IGNORED_SENDER;
                        continue;
                }
                if (ctx->allowed && !ctx->allowed(ctx->userdata, e->id)) {
                        a->verdict = DISCOVERY_IGNORED_NOT_ALLOWED;
                        continue;
                }
                if (ctx->lookup(ctx->userdata, e, &known) > 0) {
                        if (known.direct) {
                                a->verdict = DISCOVERY_KNOWN;
                                continue;
                        }
                        a->n_try = addresses_to_try(e, &known.endpoint, a->try);
                        a->verdict = a->n_try > 0 ? DISCOVERY_TRY : DISCOVERY_KNOWN;
                        continue;
                }
                a->n_try = addresses_to_try(e, NULL, a->try);
                if (a->n_try == 0 && !a->via_relay) {
                        a->verdict = DISCOVERY_IGNORED_NO_ADDRESS;
                        continue;
                }
                if (s.tokens == 0) {
                        a->verdict = DISCOVERY_IGNORED_OVER_LIMIT;
                        a->n_try = 0;
                        continue;
                }
                s.tokens--;
                a->verdict = DISCOVERY_ADD;
        }

        memcpy(ret_actions, actions, chunk->n_entries * sizeof(actions[0]));
        *ret_n = chunk->n_entries;
        *sender = s;
        return 0;
}

const char *discovery_verdict_to_string(enum discovery_verdict v) {
        static const char *const names[_DISCOVERY_VERDICT_MAX] = {
                [DISCOVERY_ADD] = "add",
                [DISCOVERY_TRY] = "try",
                [DISCOVERY_KNOWN] = "known",
                [DISCOVERY_SENDER] = "sender",
                [DISCOVERY_OURSELF] = "ourself",
                [DISCOVERY_IGNORED_SENDER] = "ignored-sender",
                [DISCOVERY_IGNORED_NOT_ALLOWED] = "ignored-not-allowed",
                [DISCOVERY_IGNORED_OVER_LIMIT] = "ignored-over-limit",
                [DISCOVERY_IGNORED_NO_ADDRESS] = "ignored-no-address",
        };
        return (unsigned) v < _DISCOVERY_VERDICT_MAX ? names[v] : NULL;
}
