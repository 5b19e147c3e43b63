/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mesh discovery's peer-list chunk (discovery.h): each input is a chunk's
 * plaintext, as session_decrypt_control hands it over. Beyond "no crash", it aborts when an
 * invariant breaks:
 *   - a decoded chunk holds at most DISCOVERY_MAX_ENTRIES entries of at most
 *     DISCOVERY_MAX_CANDIDATES candidates, and only addresses the candidate filter accepts; its
 *     flags, ids and chunk numbers obey messages.h (checked here independently of the codec);
 *   - the encoding is canonical: a chunk that decodes with nothing refused is re-encoded by
 *     discovery_encode into exactly the input bytes (chunk index and count aside, which the
 *     encoder derives from the list), and a decoded chunk's entries always encode, into bytes
 *     that decode to the same entries;
 *   - a malformed chunk leaves *ret untouched and says what is wrong;
 *   - the merge gives one verdict per entry, OURSELF exactly for our id, never more new peers
 *     than the budget, addresses to try that are acceptable, distinct and never the known
 *     endpoint, -EPERM only for a SELF entry that names someone other than the sender, and then
 *     refuses an older version of the same chunk as stale.
 * Derived from the input itself (so the seeds reach every branch): the sender's id is entry 0's
 * when the epoch is odd (else unknown, as in shared-key mode); our id is the last entry's when
 * bit 1 of the epoch is set; an id is known when its byte 1 is odd, has a direct session when
 * bit 1 of it is set, and is allowed unless byte 2 is odd.
 * The seed corpus (corpus/fuzz-discovery/) holds the unit test's vector and other valid chunks.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "candidate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW (UINT64_C(1000) * NSEC_PER_SEC)

static bool fuzz_allowed(void *userdata, const uint8_t id[32]) {
        (void) userdata;
        return !(id[2] & 1);
}

static int fuzz_lookup(void *userdata, const struct discovery_entry *e,
                       struct discovery_known *ret) {
        (void) userdata;
        if (!(e->id[1] & 1))
                return 0;
        *ret = (struct discovery_known){.direct = e->id[1] & 2};
        /* Known at the entry's endpoint or its first candidate, written as a dual-stack socket
         * reports IPv4 (mapped) when bit 2 is set. */
        if (e->id[1] & 4)
                ret->endpoint = e->endpoint;
        else if (e->n_candidates > 0)
                ret->endpoint = e->candidates[0];
        if ((e->id[1] & 8) && ret->endpoint.family == RELAY_CANDIDATE_IPV4) {
                ret->endpoint.family = RELAY_CANDIDATE_IPV6;
                memmove(ret->endpoint.addr + 12, ret->endpoint.addr, 4);
                memset(ret->endpoint.addr, 0, 10);
                ret->endpoint.addr[10] = ret->endpoint.addr[11] = 0xff;
        }
        return 1;
}

static struct relay_candidate canonical(const struct relay_candidate *c) {
        static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
        struct relay_candidate r = *c;

        if (c->family == RELAY_CANDIDATE_IPV6 && memcmp(c->addr, mapped, 12) == 0) {
                memset(r.addr, 0, sizeof(r.addr));
                memcpy(r.addr, c->addr + 12, 4);
                r.family = RELAY_CANDIDATE_IPV4;
        }
        return r;
}

static bool same_entries(const struct discovery_chunk *a, const struct discovery_chunk *b) {
        if (a->n_entries != b->n_entries || a->epoch != b->epoch || a->version != b->version)
                return false;
        for (size_t i = 0; i < a->n_entries; i++) {
                const struct discovery_entry *x = &a->entries[i], *y = &b->entries[i];
                if (memcmp(x->id, y->id, 32) != 0 || x->flags != y->flags ||
                    memcmp(&x->endpoint, &y->endpoint, sizeof(x->endpoint)) != 0 ||
                    x->n_candidates != y->n_candidates ||
                    memcmp(x->candidates, y->candidates,
                           x->n_candidates * sizeof(x->candidates[0])) != 0)
                        return false;
        }
        return true;
}

static void check_merge(const struct discovery_chunk *c) {
        uint8_t self_id[32] = {0xee, 0xee};
        const uint8_t *sender_id = NULL;
        struct discovery_context ctx = {
                .self_id = self_id, .allowed = fuzz_allowed, .lookup = fuzz_lookup};
        struct discovery_sender s = {};
        struct discovery_action act[DISCOVERY_MAX_ENTRIES];
        struct discovery_chunk older;
        size_t n = SIZE_MAX, added = 0;
        bool forged = false;
        int r;

        if (c->n_entries > 0 && (c->epoch & 1))
                sender_id = c->entries[0].id;
        if (c->n_entries > 0 && (c->epoch & 2))
                memcpy(self_id, c->entries[c->n_entries - 1].id, 32);
        ctx.sender_id = sender_id;
        for (size_t i = 0; i < c->n_entries; i++)
                forged = forged || ((c->entries[i].flags & DISCOVERY_ENTRY_SELF) && sender_id &&
                                    memcmp(c->entries[i].id, sender_id, 32) != 0);

        r = discovery_merge(&ctx, &s, c, NOW, act, &n);
        if (forged) {
                if (r != -EPERM || n != SIZE_MAX || s.seen)
                        abort();
                return;
        }
        if (r != 0 || n != c->n_entries || !s.seen)
                abort();
        for (size_t i = 0; i < n; i++) {
                const struct discovery_action *a = &act[i];
                const struct discovery_entry *e = &c->entries[i];
                struct discovery_known known = {};
                bool is_known = fuzz_lookup(NULL, e, &known) > 0;

                if (a->entry != e || !discovery_verdict_to_string(a->verdict) ||
                    a->n_try > 1 + DISCOVERY_MAX_CANDIDATES)
                        abort();
                if ((a->verdict == DISCOVERY_OURSELF) != (memcmp(e->id, self_id, 32) == 0))
                        abort();
                if (a->verdict == DISCOVERY_SENDER && !(e->flags & DISCOVERY_ENTRY_SELF))
                        abort();
                if ((a->verdict == DISCOVERY_ADD || a->verdict == DISCOVERY_IGNORED_OVER_LIMIT) &&
                    is_known)
                        abort();
                if (a->verdict == DISCOVERY_ADD && a->n_try == 0 && !a->via_relay)
                        abort();
                if (a->verdict == DISCOVERY_TRY) {
                        struct relay_candidate k = canonical(&known.endpoint);
                        if (!is_known || known.direct || a->n_try == 0)
                                abort();
                        for (size_t j = 0; j < a->n_try; j++)
                                if (k.family && memcmp(&a->try[j], &k, sizeof(k)) == 0)
                                        abort();
                }
                for (size_t j = 0; j < a->n_try; j++) {
                        if (!relay_candidate_acceptable(&a->try[j]))
                                abort();
                        for (size_t l = 0; l < j; l++)
                                if (memcmp(&a->try[j], &a->try[l], sizeof(a->try[j])) == 0)
                                        abort();
                }
                added += a->verdict == DISCOVERY_ADD;
        }
        if (added > DISCOVERY_NEW_PEERS_BURST || s.tokens != DISCOVERY_NEW_PEERS_BURST - added)
                abort();

        /* The same list again is taken; an older version of it is stale and changes nothing. */
        older = *c;
        older.version = c->version - 1;
        struct discovery_sender before = s;
        if (discovery_merge(&ctx, &s, &older, NOW, act, &n) != -ESTALE ||
            memcmp(&s, &before, sizeof(s)) != 0)
                abort();
        if (discovery_merge(&ctx, &s, c, NOW, act, &n) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct discovery_chunk c, again, untouched;
        struct discovery_error why = {};
        uint8_t out[DISCOVERY_PLAIN_MAX_LEN];
        ssize_t n;
        int r;

        memset(&c, 0x5a, sizeof(c));
        untouched = c;
        r = discovery_decode(data, size, &c, &why);
        if (r < 0) {
                if (r != -EBADMSG || !why.what || memcmp(&c, &untouched, sizeof(c)) != 0)
                        abort();
                return 0;
        }
        if (r != 0 || c.n_entries > DISCOVERY_MAX_ENTRIES || c.chunk_index >= c.chunk_count ||
            size != DISCOVERY_PLAIN_MIN_LEN + c.n_entries * sizeof(struct discovery_wire_entry))
                abort();
        /* The rules of messages.h, checked here on their own (the encoder shares the decoder's
         * checks, so the round trip below cannot see a rule both forgot). */
        unsigned selves = 0;
        for (size_t i = 0; i < c.n_entries; i++) {
                const struct discovery_entry *e = &c.entries[i];
                uint8_t path = e->flags & (DISCOVERY_ENTRY_DIRECT | DISCOVERY_ENTRY_RELAY);
                if (e->n_candidates > DISCOVERY_MAX_CANDIDATES ||
                    (e->endpoint.family && !relay_candidate_acceptable(&e->endpoint)))
                        abort();
                for (size_t k = 0; k < e->n_candidates; k++)
                        if (!relay_candidate_acceptable(&e->candidates[k]))
                                abort();
                if ((e->flags & ~DISCOVERY_ENTRY_FLAGS_KNOWN) ||
                    path == (DISCOVERY_ENTRY_DIRECT | DISCOVERY_ENTRY_RELAY) ||
                    ((e->flags & DISCOVERY_ENTRY_SELF) && path) ||
                    ((e->flags & (DISCOVERY_ENTRY_SELF | DISCOVERY_ENTRY_RELAY)) &&
                     e->endpoint.family) ||
                    ((e->flags & DISCOVERY_ENTRY_DIRECT) && !e->endpoint.family) ||
                    sodium_is_zero(e->id, sizeof(e->id)))
                        abort();
                selves += !!(e->flags & DISCOVERY_ENTRY_SELF);
                for (size_t j = 0; j < i; j++)
                        if (memcmp(c.entries[j].id, e->id, sizeof(e->id)) == 0)
                                abort();
        }
        if (selves > 1 || (c.n_entries == 0 && c.chunk_count != 1) ||
            c.chunk_count > DISCOVERY_MAX_CHUNKS)
                abort();

        /* Encode what was decoded, as chunk 0 of a list of just these entries. */
        n = discovery_encode(c.epoch, c.version, c.entries, c.n_entries, 0, out, sizeof(out), &why);
        if (n < 0 || (size_t) n != size)
                abort();
        if (c.refused_addresses == 0 &&
            (memcmp(out, data, 12) != 0 || memcmp(out + 16, data + 16, size - 16) != 0))
                abort();
        if (discovery_decode(out, (size_t) n, &again, &why) != 0 || again.refused_addresses != 0)
                abort();
        /* The decoder already left out what the encoder leaves out: nothing else changed. */
        if (!same_entries(&c, &again))
                abort();

        check_merge(&c);
        return 0;
}
