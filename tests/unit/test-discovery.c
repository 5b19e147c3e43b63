/* SPDX-License-Identifier: MIT */
/* Mesh discovery's peer-list chunk (messages.h, discovery.h): a hand-written byte vector that
 * pins the format, round trips (also sealed on a real session, as the closing message is), every
 * refusal of the decoder and the encoder, the candidate filter, chunking of long lists, the
 * freshness rule and every merge verdict with the per-sender budget of new peers. */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "session.h"
#include "tests.h"

#define NOW (UINT64_C(5000) * NSEC_PER_SEC)

static struct relay_candidate v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
        struct relay_candidate r = {.family = RELAY_CANDIDATE_IPV4, .port_be = htons(port)};
        r.addr[0] = a;
        r.addr[1] = b;
        r.addr[2] = c;
        r.addr[3] = d;
        return r;
}

static struct relay_candidate v6(const char *text, uint16_t port) {
        struct relay_candidate r = {.family = RELAY_CANDIDATE_IPV6, .port_be = htons(port)};
        if (inet_pton(AF_INET6, text, r.addr) != 1)
                abort();
        return r;
}

static void id_of(uint8_t id[32], uint32_t n) {
        memset(id, 0x5a, 32);
        put_le32(id, n);
}

static struct discovery_entry entry(uint32_t n, uint8_t flags) {
        struct discovery_entry e = {.flags = flags};
        id_of(e.id, n);
        return e;
}

/* The vector: chunk 1 of 3, epoch 0x0807060504030201, version 5; a SELF entry (id 0x11..,
 * candidates 192.0.2.10:9001 and [2001:db8::5]:9001) and a DIRECT entry (id 0x22.., endpoint
 * 198.51.100.7:40000, candidate 10.1.2.3:9001). Written from messages.h by hand, not by the
 * encoder. */
#define Z20 "0000000000000000000000000000000000000000"
static const char vector_hex[] =
        /* header: epoch, version, chunk_index, chunk_count */
        "0102030405060708"
        "05000000"
        "0100"
        "0300"
        /* entry 0: id, flags SELF, 2 candidates, reserved; no endpoint */
        "1111111111111111111111111111111111111111111111111111111111111111"
        "01"
        "02"
        "0000" Z20
        /* candidate 1: family 4, 0, port 9001, 192.0.2.10 */
        "0400"
        "2329"
        "c000020a"
        "000000000000000000000000"
        /* candidate 2: family 6, 0, port 9001, 2001:db8::5 */
        "0600"
        "2329"
        "20010db8000000000000000000000005" Z20 Z20
        /* entry 1: id, flags DIRECT, 1 candidate, reserved */
        "2222222222222222222222222222222222222222222222222222222222222222"
        "02"
        "01"
        "0000"
        /* endpoint: family 4, port 40000, 198.51.100.7 */
        "0400"
        "9c40"
        "c6336407"
        "000000000000000000000000"
        /* candidate 1: 10.1.2.3:9001 */
        "0400"
        "2329"
        "0a010203"
        "000000000000000000000000" Z20 Z20 Z20;

static void vector_entries(struct discovery_entry e[2]) {
        memset(e, 0, 2 * sizeof(*e));
        memset(e[0].id, 0x11, 32);
        e[0].flags = DISCOVERY_ENTRY_SELF;
        e[0].n_candidates = 2;
        e[0].candidates[0] = v4(192, 0, 2, 10, 9001);
        e[0].candidates[1] = v6("2001:db8::5", 9001);
        memset(e[1].id, 0x22, 32);
        e[1].flags = DISCOVERY_ENTRY_DIRECT;
        e[1].endpoint = v4(198, 51, 100, 7, 40000);
        e[1].n_candidates = 1;
        e[1].candidates[0] = v4(10, 1, 2, 3, 9001);
}

static bool entry_equal(const struct discovery_entry *a, const struct discovery_entry *b) {
        if (memcmp(a->id, b->id, 32) != 0 || a->flags != b->flags ||
            memcmp(&a->endpoint, &b->endpoint, sizeof(a->endpoint)) != 0 ||
            a->n_candidates != b->n_candidates)
                return false;
        return memcmp(a->candidates, b->candidates, a->n_candidates * sizeof(a->candidates[0])) ==
               0;
}

static void test_vector(void) {
        struct discovery_entry want[2 + 2 * DISCOVERY_MAX_ENTRIES] = {};
        struct discovery_chunk c;
        struct discovery_error why = {};
        uint8_t out[DISCOVERY_PLAIN_MAX_LEN];
        size_t len;
        uint8_t *bytes = test_unhex(vector_hex, &len);

        CHECK_EQ_INT(len, 16 + 2 * 136);
        CHECK_EQ_INT(discovery_decode(bytes, len, &c, &why), 0);
        CHECK(c.epoch == UINT64_C(0x0807060504030201));
        CHECK_EQ_INT(c.version, 5);
        CHECK_EQ_INT(c.chunk_index, 1);
        CHECK_EQ_INT(c.chunk_count, 3);
        CHECK_EQ_INT(c.n_entries, 2);
        CHECK_EQ_INT(c.refused_addresses, 0);
        vector_entries(want);
        CHECK(entry_equal(&c.entries[0], &want[0]));
        CHECK(entry_equal(&c.entries[1], &want[1]));
        CHECK_EQ_INT(ntohs(c.entries[1].endpoint.port_be), 40000);

        /* The encoder writes exactly these bytes: as chunk 1 of a list of 2 + 16 entries (the
         * vector's entries at indexes 8 and 9, distinct others around them). */
        for (uint32_t i = 0; i < ELEMENTSOF(want); i++)
                want[i] = entry(100 + i, 0), want[i].endpoint = v4(203, 0, 113, (uint8_t) i, 9001);
        vector_entries(&want[8]);
        CHECK_EQ_INT(discovery_chunk_count(ELEMENTSOF(want)), 3);
        /* Only the first two of chunk 1 are the vector's: encode a list cut to them. */
        CHECK_EQ_INT(discovery_encode(UINT64_C(0x0807060504030201), 5, want, 10, 1, out,
                                      sizeof(out), &why),
                     16 + 2 * 136);
        /* A list of 10 has 2 chunks, the vector says 3: patch only that field, compare all. */
        CHECK_EQ_INT(get_le16(out + 14), 2);
        out[14] = 3;
        CHECK_MEM(out, bytes, len);
        free(bytes);
}

static void test_round_trip_sealed(void) {
        struct discovery_entry list[3];
        struct discovery_chunk c;
        struct discovery_error why = {};
        uint8_t plain[DISCOVERY_PLAIN_MAX_LEN], msg[DISCOVERY_MESSAGE_MAX_LEN], copy[sizeof(msg)];
        uint8_t key_a[32], key_b[32], *opened;
        struct keypair a, b;
        size_t opened_len;
        ssize_t n, m;

        list[0] = entry(1, DISCOVERY_ENTRY_SELF);
        list[0].n_candidates = 1;
        list[0].candidates[0] = v4(192, 0, 2, 1, 9001);
        list[1] = entry(2, DISCOVERY_ENTRY_DIRECT);
        list[1].endpoint = v6("2001:db8:1::2", 51000);
        list[2] = entry(3, DISCOVERY_ENTRY_RELAY);
        list[2].n_candidates = 4;
        for (uint8_t i = 0; i < 4; i++)
                list[2].candidates[i] = v4(198, 51, 100, (uint8_t) (10 + i), 9001);

        n = discovery_encode(42, 7, list, 3, 0, plain, sizeof(plain), &why);
        CHECK_EQ_INT(n, 16 + 3 * 136);

        /* Sealed like the closing message, on a real key pair. */
        memset(key_a, 1, sizeof(key_a));
        memset(key_b, 2, sizeof(key_b));
        keypair_init(&a, key_a, key_b, 10, 20, true, NOW);
        keypair_init(&b, key_b, key_a, 20, 10, false, NOW);
        m = session_encrypt_control(&a, MESSAGE_DISCOVERY, plain, (size_t) n, msg, sizeof(msg),
                                    NOW);
        CHECK_EQ_INT(m, sizeof(struct message_discovery) + (size_t) n + NOISE_AUTHTAG_LEN);
        CHECK_EQ_INT(msg[0], MESSAGE_DISCOVERY);
        memcpy(copy, msg, (size_t) m);
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_DISCOVERY, msg, (size_t) m, NOW, &opened,
                                             &opened_len, NULL),
                     0);
        CHECK_EQ_INT(opened_len, n);
        CHECK_EQ_INT(discovery_decode(opened, opened_len, &c, &why), 0);
        CHECK(c.epoch == 42);
        CHECK_EQ_INT(c.version, 7);
        CHECK_EQ_INT(c.chunk_index, 0);
        CHECK_EQ_INT(c.chunk_count, 1);
        CHECK_EQ_INT(c.n_entries, 3);
        for (size_t i = 0; i < 3; i++)
                CHECKF(entry_equal(&c.entries[i], &list[i]), "entry %zu", i);
        /* A captured copy is refused by the session's replay window. */
        memcpy(msg, copy, (size_t) m);
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_DISCOVERY, msg, (size_t) m, NOW, &opened,
                                             &opened_len, NULL),
                     -EALREADY);
        /* Retyped into a closing message (or read as one), it fails authentication. */
        m = session_encrypt_control(&a, MESSAGE_DISCOVERY, plain, (size_t) n, msg, sizeof(msg),
                                    NOW);
        msg[0] = MESSAGE_CLOSE;
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_CLOSE, msg, (size_t) m, NOW, &opened,
                                             &opened_len, NULL),
                     -EBADMSG);
        /* One flipped ciphertext byte: refused. */
        m = session_encrypt_control(&a, MESSAGE_DISCOVERY, plain, (size_t) n, msg, sizeof(msg),
                                    NOW);
        msg[40] ^= 1;
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_DISCOVERY, msg, (size_t) m, NOW, &opened,
                                             &opened_len, NULL),
                     -EBADMSG);
        keypair_wipe(&a);
        keypair_wipe(&b);
}

/* A chunk of 2 well-formed entries in buf; each refusal below changes one thing in it. */
static size_t good_chunk(uint8_t *buf) {
        struct discovery_entry list[2];
        struct discovery_error why;

        list[0] = entry(1, 0);
        list[0].endpoint = v4(192, 0, 2, 1, 9001);
        list[0].n_candidates = 2;
        list[0].candidates[0] = v4(192, 0, 2, 2, 9001);
        list[0].candidates[1] = v6("2001:db8::1", 9001);
        list[1] = entry(2, DISCOVERY_ENTRY_DIRECT);
        list[1].endpoint = v4(192, 0, 2, 3, 9001);
        return (size_t) discovery_encode(1, 1, list, 2, 0, buf, DISCOVERY_PLAIN_MAX_LEN, &why);
}

#define ENTRY(i) (16 + (i) * 136)
#define ADDR(i, a) (ENTRY(i) + 36 + (a) * 20) /* a = 0: endpoint, 1..4: candidates */

struct refusal {
        const char *what;   /* the error text expected */
        int entry, address; /* where */
        size_t len_delta;   /* bytes cut (or, negative as size_t, added) */
        size_t off[3];
        uint8_t val[3];
        unsigned n;
};

static void test_decode_refusals(void) {
        static const struct refusal cases[] = {
                {"shorter than the list header", -1, -1, .len_delta = 288 - 15},
                {"length not a whole number of entries", -1, -1, .len_delta = 1},
                {"chunk count out of range", -1, -1, .off = {14, 15}, .val = {0, 0}, .n = 2},
                {"chunk count out of range", -1, -1, .off = {14, 15}, .val = {0xff, 0xff}, .n = 2},
                {"chunk index not below the chunk count", -1, -1, .off = {12}, .val = {1}, .n = 1},
                {"all-zero id", 1, -1, .n = 0xff},
                {"entry reserved bytes not zero", 0, -1, .off = {ENTRY(0) + 35}, .val = {1},
                 .n = 1},
                {"more than DISCOVERY_MAX_CANDIDATES candidates", 0, -1, .off = {ENTRY(0) + 33},
                 .val = {5}, .n = 1},
                {"unused candidate slot not zero", 0, 3, .off = {ADDR(0, 3) + 7}, .val = {1},
                 .n = 1},
                {"absent candidate", 0, 2, .off = {ADDR(0, 2)}, .val = {0}, .n = 1},
                {"unknown address family", 0, 1, .off = {ADDR(0, 1)}, .val = {5}, .n = 1},
                {"unknown address family", 1, 0, .off = {ADDR(1, 0)}, .val = {2}, .n = 1},
                {"address reserved byte not zero", 0, 0, .off = {ADDR(0, 0) + 1}, .val = {1},
                 .n = 1},
                {"IPv4 address with bytes past the fourth", 0, 1, .off = {ADDR(0, 1) + 8},
                 .val = {1}, .n = 1},
                {"IPv4-mapped IPv6 address (must be family 4)", 0, 2, .n = 0xfd},
                {"absent address with bytes set", 1, 0, .off = {ADDR(1, 0)}, .val = {0}, .n = 1},
                {"address twice in one entry", 0, 1, .off = {ADDR(0, 1) + 7}, .val = {1}, .n = 1},
                {"unknown entry flags", 0, -1, .off = {ENTRY(0) + 32}, .val = {8}, .n = 1},
                {"entry both direct and relayed", 1, -1, .off = {ENTRY(1) + 32},
                 .val = {DISCOVERY_ENTRY_DIRECT | DISCOVERY_ENTRY_RELAY}, .n = 1},
                {"self entry with a path flag", 1, -1, .off = {ENTRY(1) + 32},
                 .val = {DISCOVERY_ENTRY_SELF | DISCOVERY_ENTRY_DIRECT}, .n = 1},
                {"self or relayed entry with an endpoint", 1, -1, .off = {ENTRY(1) + 32},
                 .val = {DISCOVERY_ENTRY_RELAY}, .n = 1},
                {"direct entry without an endpoint", 0, -1, .off = {ENTRY(0) + 32},
                 .val = {DISCOVERY_ENTRY_DIRECT}, .n = 0xfe},
                {"id twice in one chunk", 1, -1, .off = {ENTRY(1)}, .val = {1}, .n = 1},
        };
        uint8_t buf[DISCOVERY_PLAIN_MAX_LEN + 200];
        size_t len;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const struct refusal *t = &cases[i];
                struct discovery_chunk c, before;
                struct discovery_error why = {};

                len = good_chunk(buf);
                CHECK_EQ_INT(len, 16 + 2 * 136);
                len -= t->len_delta;
                if (t->n == 0xff) /* a zero id */
                        memset(buf + ENTRY(t->entry), 0, 32);
                else if (t->n == 0xfd) { /* ::ffff:192.0.2.9 as a family-6 candidate */
                        struct relay_candidate m = v6("::ffff:192.0.2.9", 9001);
                        memcpy(buf + ADDR(0, 2), &m, 20);
                } else if (t->n == 0xfe) { /* DIRECT on entry 0 after its endpoint is removed */
                        memset(buf + ADDR(0, 0), 0, 20);
                        buf[ENTRY(0) + 32] = t->val[0];
                } else
                        for (unsigned k = 0; k < t->n; k++)
                                buf[t->off[k]] = t->val[k];
                memset(&c, 0xa5, sizeof(c));
                before = c;
                CHECKF(discovery_decode(buf, len, &c, &why) == -EBADMSG, "case %zu (%s)", i,
                       t->what);
                CHECKF(why.what && strcmp(why.what, t->what) == 0,
                       "case %zu: got \"%s\", want \"%s\"", i, why.what ? why.what : "(null)",
                       t->what);
                CHECKF(why.entry == t->entry && why.address == t->address,
                       "case %zu: at entry %d address %d, want %d %d", i, why.entry, why.address,
                       t->entry, t->address);
                CHECKF(memcmp(&c, &before, sizeof(c)) == 0, "case %zu: *ret changed on failure", i);
        }

        /* Unchanged, the chunk every case started from decodes. */
        struct discovery_chunk c;
        struct discovery_error why = {};
        len = good_chunk(buf);
        CHECK_EQ_INT(discovery_decode(buf, len, &c, &why), 0);
        CHECK_EQ_INT(c.n_entries, 2);

        /* More than DISCOVERY_MAX_ENTRIES entries (length says 9). */
        memset(buf, 0, sizeof(buf));
        buf[14] = 1;
        for (unsigned i = 0; i < 9; i++)
                memset(buf + ENTRY(i), (int) i + 1, 32);
        CHECK_EQ_INT(discovery_decode(buf, ENTRY(9), &c, &why), -EBADMSG);
        CHECK(strcmp(why.what, "more than DISCOVERY_MAX_ENTRIES entries") == 0);
        CHECK_EQ_INT(discovery_decode(buf, ENTRY(8), &c, &why), 0); /* 8 is fine */
        CHECK_EQ_INT(c.n_entries, 8);
        /* Two SELF entries. */
        buf[ENTRY(2) + 32] = DISCOVERY_ENTRY_SELF;
        buf[ENTRY(5) + 32] = DISCOVERY_ENTRY_SELF;
        CHECK_EQ_INT(discovery_decode(buf, ENTRY(8), &c, &why), -EBADMSG);
        CHECK(strcmp(why.what, "two self entries in one chunk") == 0 && why.entry == 5);
        /* An empty chunk: fine alone, refused in a list of several. */
        CHECK_EQ_INT(discovery_decode(buf, 16, &c, &why), 0);
        CHECK_EQ_INT(c.n_entries, 0);
        buf[14] = 2;
        CHECK_EQ_INT(discovery_decode(buf, 16, &c, &why), -EBADMSG);
        CHECK(strcmp(why.what, "empty chunk in a list of several") == 0);
        /* The largest chunk count is allowed, one more is not. */
        put_le32(buf + 12, (uint32_t) DISCOVERY_MAX_CHUNKS << 16 | (DISCOVERY_MAX_CHUNKS - 1));
        CHECK_EQ_INT(discovery_decode(buf, ENTRY(1), &c, &why), 0);
        put_le32(buf + 12, (uint32_t) (DISCOVERY_MAX_CHUNKS + 1) << 16);
        CHECK_EQ_INT(discovery_decode(buf, ENTRY(1), &c, &why), -EBADMSG);
        CHECK_EQ_INT(discovery_decode(NULL, 16, &c, &why), -EBADMSG);
        /* why may be NULL. */
        CHECK_EQ_INT(discovery_decode(buf, 15, &c, NULL), -EBADMSG);
}

/* Addresses the relay client would refuse are dropped and counted; the rest of the chunk stays. */
static void test_decode_filter(void) {
        struct relay_candidate refused[] = {
                v4(127, 0, 0, 1, 9001),       v4(0, 0, 0, 0, 9001),   v4(224, 0, 0, 1, 9001),
                v4(255, 255, 255, 255, 9001), v4(240, 0, 0, 1, 9001), v4(169, 254, 1, 1, 9001),
                v4(192, 0, 2, 1, 0),          v6("::1", 9001),        v6("::", 9001),
                v6("fe80::1", 9001),          v6("ff02::1", 9001),    v6("2001:db8::9", 0),
        };
        uint8_t buf[DISCOVERY_PLAIN_MAX_LEN];
        struct discovery_chunk c;
        struct discovery_error why = {};
        size_t len = good_chunk(buf);

        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                /* As entry 0's first candidate, and as entry 1's (DIRECT) endpoint. */
                len = good_chunk(buf);
                memcpy(buf + ADDR(0, 1), &refused[i], 20);
                memcpy(buf + ADDR(1, 0), &refused[i], 20);
                CHECKF(discovery_decode(buf, len, &c, &why) == 0, "address %zu: %s", i, why.what);
                CHECKF(c.refused_addresses == 2, "address %zu: %u refused", i, c.refused_addresses);
                CHECK_EQ_INT(c.n_entries, 2);
                CHECK_EQ_INT(c.entries[0].endpoint.family, RELAY_CANDIDATE_IPV4);
                CHECK_EQ_INT(c.entries[0].n_candidates, 1);
                CHECK_EQ_INT(c.entries[0].candidates[0].family, RELAY_CANDIDATE_IPV6);
                CHECK_EQ_INT(c.entries[1].endpoint.family, RELAY_CANDIDATE_NONE);
                CHECK_EQ_INT(c.entries[1].flags, 0); /* DIRECT went with its endpoint */
        }
}

static void test_encode_refusals(void) {
        struct discovery_entry list[3];
        struct discovery_error why;
        uint8_t out[DISCOVERY_PLAIN_MAX_LEN];
        struct relay_candidate mapped = v6("::ffff:192.0.2.1", 9001);

#define REFUSE(n, err, text, e, a)                                                                 \
        do {                                                                                       \
                why = (struct discovery_error){};                                                  \
                CHECK_EQ_INT(discovery_encode(1, 1, list, n, 0, out, sizeof(out), &why), err);     \
                CHECKF(why.what &&strcmp(why.what, text) == 0 && why.entry == (e) &&               \
                               why.address == (a),                                                 \
                       "got \"%s\" at %d/%d", why.what ? why.what : "(null)", why.entry,           \
                       why.address);                                                               \
        } while (0)
#define RESET()                                                                                    \
        do {                                                                                       \
                list[0] = entry(1, 0);                                                             \
                list[1] = entry(2, 0);                                                             \
                list[2] = entry(3, 0);                                                             \
        } while (0)

        RESET();
        CHECK_EQ_INT(discovery_encode(1, 1, list, 3, 0, out, sizeof(out), &why), 16 + 3 * 136);
        memset(list[1].id, 0, 32);
        REFUSE(3, -EINVAL, "all-zero id", 1, -1);
        RESET();
        list[2].n_candidates = DISCOVERY_MAX_CANDIDATES + 1;
        REFUSE(3, -EINVAL, "more than DISCOVERY_MAX_CANDIDATES candidates", 2, -1);
        RESET();
        list[0].endpoint = mapped;
        REFUSE(3, -EINVAL, "IPv4-mapped IPv6 address (must be family 4)", 0, 0);
        RESET();
        list[0].n_candidates = 2;
        list[0].candidates[0] = v4(192, 0, 2, 1, 9001);
        REFUSE(3, -EINVAL, "absent candidate", 0, 2);
        list[0].candidates[1] = v4(192, 0, 2, 1, 9001);
        list[0].candidates[1].family = 9;
        REFUSE(3, -EINVAL, "unknown address family", 0, 2);
        RESET();
        list[1].flags = 0x10;
        REFUSE(3, -EINVAL, "unknown entry flags", 1, -1);
        list[1].flags = DISCOVERY_ENTRY_DIRECT;
        REFUSE(3, -EINVAL, "direct entry without an endpoint", 1, -1);
        list[1].flags = DISCOVERY_ENTRY_RELAY;
        list[1].endpoint = v4(192, 0, 2, 1, 9001);
        REFUSE(3, -EINVAL, "self or relayed entry with an endpoint", 1, -1);
        RESET();
        list[0].flags = list[2].flags = DISCOVERY_ENTRY_SELF;
        REFUSE(3, -EINVAL, "two self entries in one chunk", 2, -1);
        RESET();
        memcpy(list[2].id, list[0].id, 32);
        REFUSE(3, -EINVAL, "id twice in one chunk", 2, -1);
        RESET();
        why = (struct discovery_error){};
        CHECK_EQ_INT(discovery_encode(1, 1, list, 3, 0, NULL, sizeof(out), &why), -EINVAL);
        CHECK(strcmp(why.what, "no list or no buffer") == 0);
        CHECK_EQ_INT(discovery_encode(1, 1, NULL, 3, 0, out, sizeof(out), &why), -EINVAL);
        CHECK_EQ_INT(discovery_encode(1, 1, list, 3, 1, out, sizeof(out), &why), -EINVAL);
        CHECK(strcmp(why.what, "chunk index past the list") == 0);
        CHECK_EQ_INT(discovery_encode(1, 1, list, DISCOVERY_MAX_LIST_ENTRIES + 1, 0, out,
                                      sizeof(out), &why),
                     -E2BIG);
        CHECK_EQ_INT(discovery_encode(1, 1, list, 3, 0, out, 16 + 3 * 136 - 1, &why), -ENOBUFS);
        CHECK_EQ_INT(discovery_encode(1, 1, list, 3, 0, out, 16 + 3 * 136, NULL), 16 + 3 * 136);
}

/* What the encoder leaves out: refused addresses (and DIRECT with its endpoint), duplicates. */
static void test_encode_normalizes(void) {
        struct discovery_entry e = entry(7, DISCOVERY_ENTRY_DIRECT);
        struct discovery_chunk c;
        struct discovery_error why = {};
        uint8_t out[DISCOVERY_PLAIN_MAX_LEN];
        ssize_t n;

        e.endpoint = v4(127, 0, 0, 1, 9002); /* a peer on this host: real to us only */
        e.n_candidates = 4;
        e.candidates[0] = v4(192, 0, 2, 7, 9001);
        e.candidates[1] = v4(192, 0, 2, 7, 9001); /* twice */
        e.candidates[2] = v6("fe80::7", 9001);    /* link-local */
        e.candidates[3] = v6("2001:db8::7", 9001);
        n = discovery_encode(9, 9, &e, 1, 0, out, sizeof(out), &why);
        CHECK_EQ_INT(n, 16 + 136);
        CHECK_EQ_INT(discovery_decode(out, (size_t) n, &c, &why), 0);
        CHECK_EQ_INT(c.refused_addresses, 0); /* nothing refused left on the wire */
        CHECK_EQ_INT(c.entries[0].flags, 0);  /* DIRECT went with its endpoint */
        CHECK_EQ_INT(c.entries[0].endpoint.family, RELAY_CANDIDATE_NONE);
        CHECK_EQ_INT(c.entries[0].n_candidates, 2);
        CHECK_MEM(&c.entries[0].candidates[0], &e.candidates[0], 20);
        CHECK_MEM(&c.entries[0].candidates[1], &e.candidates[3], 20);

        /* A candidate equal to the endpoint is dropped; the endpoint and DIRECT stay. */
        e.endpoint = v4(192, 0, 2, 7, 9001);
        n = discovery_encode(9, 9, &e, 1, 0, out, sizeof(out), &why);
        CHECK_EQ_INT(discovery_decode(out, (size_t) n, &c, &why), 0);
        CHECK_EQ_INT(c.entries[0].flags, DISCOVERY_ENTRY_DIRECT);
        CHECK_MEM(&c.entries[0].endpoint, &e.endpoint, 20);
        CHECK_EQ_INT(c.entries[0].n_candidates, 1);
        CHECK_MEM(&c.entries[0].candidates[0], &e.candidates[3], 20);
}

static void test_chunking(void) {
        enum { N = 3 * DISCOVERY_MAX_ENTRIES + 1 };
        struct discovery_entry list[N];
        bool seen[N] = {};
        uint8_t out[DISCOVERY_PLAIN_MAX_LEN];
        struct discovery_chunk c;
        struct discovery_error why = {};
        ssize_t n;

        CHECK_EQ_INT(discovery_chunk_count(0), 1);
        CHECK_EQ_INT(discovery_chunk_count(1), 1);
        CHECK_EQ_INT(discovery_chunk_count(DISCOVERY_MAX_ENTRIES), 1);
        CHECK_EQ_INT(discovery_chunk_count(DISCOVERY_MAX_ENTRIES + 1), 2);
        CHECK_EQ_INT(discovery_chunk_count(N), 4);
        CHECK_EQ_INT(discovery_chunk_count(DISCOVERY_MAX_LIST_ENTRIES), DISCOVERY_MAX_CHUNKS);

        for (uint32_t i = 0; i < N; i++) {
                list[i] = entry(1000 + i, i == 0 ? DISCOVERY_ENTRY_SELF : DISCOVERY_ENTRY_DIRECT);
                if (i)
                        list[i].endpoint = v4(198, 51, 100, (uint8_t) i, 9001);
        }
        /* Every chunk decodes on its own (in any order: here backwards) and together they are
         * the list, each entry once. */
        for (size_t k = 4; k-- > 0;) {
                n = discovery_encode(77, 3, list, N, k, out, sizeof(out), &why);
                CHECK_EQ_INT(n, 16 + (k < 3 ? DISCOVERY_MAX_ENTRIES : 1) * 136);
                CHECK_EQ_INT(discovery_decode(out, (size_t) n, &c, &why), 0);
                CHECK_EQ_INT(c.chunk_index, k);
                CHECK_EQ_INT(c.chunk_count, 4);
                CHECK(c.epoch == 77 && c.version == 3);
                for (size_t i = 0; i < c.n_entries; i++) {
                        uint32_t id = get_le32(c.entries[i].id) - 1000;
                        CHECKF(id < N && !seen[id], "entry %u", id);
                        if (id < N) {
                                seen[id] = true;
                                CHECK(entry_equal(&c.entries[i], &list[id]));
                        }
                }
        }
        for (size_t i = 0; i < N; i++)
                CHECKF(seen[i], "entry %zu in no chunk", i);
        CHECK_EQ_INT(discovery_encode(77, 3, list, N, 4, out, sizeof(out), &why), -EINVAL);

        /* An empty list: one empty chunk. */
        n = discovery_encode(77, 4, NULL, 0, 0, out, sizeof(out), &why);
        CHECK_EQ_INT(n, DISCOVERY_PLAIN_MIN_LEN);
        CHECK_EQ_INT(discovery_decode(out, (size_t) n, &c, &why), 0);
        CHECK_EQ_INT(c.chunk_count, 1);

        /* A full chunk is the largest plaintext, and sealed the largest message. */
        n = discovery_encode(77, 3, list + 1, DISCOVERY_MAX_ENTRIES, 0, out, sizeof(out), &why);
        CHECK_EQ_INT(n, DISCOVERY_PLAIN_MAX_LEN);

        /* The longest list: its last chunk carries the largest index and count. */
        struct discovery_entry *big = calloc(DISCOVERY_MAX_LIST_ENTRIES, sizeof(*big));
        CHECK(big != NULL);
        if (!big)
                return;
        for (uint32_t i = 0; i < DISCOVERY_MAX_LIST_ENTRIES; i++)
                id_of(big[i].id, i + 1);
        n = discovery_encode(1, 1, big, DISCOVERY_MAX_LIST_ENTRIES, DISCOVERY_MAX_CHUNKS - 1, out,
                             sizeof(out), &why);
        CHECK_EQ_INT(n, 16 + (DISCOVERY_MAX_LIST_ENTRIES -
                              (DISCOVERY_MAX_CHUNKS - 1) * DISCOVERY_MAX_ENTRIES) *
                                        136);
        CHECK_EQ_INT(discovery_decode(out, (size_t) n, &c, &why), 0);
        CHECK_EQ_INT(c.chunk_index, DISCOVERY_MAX_CHUNKS - 1);
        CHECK_EQ_INT(c.chunk_count, DISCOVERY_MAX_CHUNKS);
        free(big);
}

/* The lengths the classifier will take: exactly those of a sealed chunk of 0..8 entries. */
static void test_message_lengths(void) {
        unsigned ok = 0;

        for (size_t len = 0; len <= DATAGRAM_MAX_LEN; len++) {
                bool want = len >= 48 && len <= 48 + 8 * 136 && (len - 48) % 136 == 0;
                if (DISCOVERY_MESSAGE_LEN_OK(len) != want) {
                        CHECKF(false, "length %zu", len);
                        break;
                }
                ok += want;
        }
        CHECK_EQ_INT(ok, DISCOVERY_MAX_ENTRIES + 1);
        CHECK(DISCOVERY_MESSAGE_LEN_OK(sizeof(struct message_discovery) + DISCOVERY_PLAIN_MIN_LEN +
                                       NOISE_AUTHTAG_LEN));
        CHECK(DISCOVERY_MESSAGE_LEN_OK(DISCOVERY_MESSAGE_MAX_LEN));
        CHECK(!DISCOVERY_MESSAGE_LEN_OK(DISCOVERY_MESSAGE_MAX_LEN + 136));
        CHECK(!DISCOVERY_MESSAGE_LEN_OK(sizeof(struct message_close)));
}

static void test_freshness(void) {
        struct discovery_sender s = {};

        CHECK(discovery_sender_accept(&s, 10, 5));  /* first */
        CHECK(discovery_sender_accept(&s, 10, 5));  /* another chunk of the same list */
        CHECK(discovery_sender_accept(&s, 10, 6));  /* newer */
        CHECK(!discovery_sender_accept(&s, 10, 5)); /* stale */
        CHECK_EQ_INT(s.version, 6);
        CHECK(discovery_sender_accept(&s, 11, 0));           /* the sender restarted */
        CHECK(!discovery_sender_accept(&s, 11, UINT32_MAX)); /* "before 0" in serial terms */
        s.version = UINT32_MAX;
        CHECK(discovery_sender_accept(&s, 11, 0)); /* the wrap moves forward */
        CHECK(!discovery_sender_accept(&s, 11, UINT32_MAX));
        CHECK(discovery_sender_accept(&s, 11, 1u << 30));
}

/* The merge tests' world: our id 1, sender id 2; the known peers and the allowed ids. */
struct world {
        uint32_t known[4];
        struct discovery_known state[4];
        size_t n_known;
        uint32_t refused_id; /* not allowed; 0: all allowed */
        unsigned lookups;
};

static bool world_allowed(void *userdata, const uint8_t id[32]) {
        struct world *w = userdata;
        return get_le32(id) != w->refused_id;
}

static int world_lookup(void *userdata, const struct discovery_entry *e,
                        struct discovery_known *ret) {
        struct world *w = userdata;

        w->lookups++;
        for (size_t i = 0; i < w->n_known; i++)
                if (get_le32(e->id) == w->known[i]) {
                        *ret = w->state[i];
                        return 1;
                }
        return 0;
}

static void test_merge_verdicts(void) {
        uint8_t self_id[32], sender_id[32];
        struct world w = {.known = {20, 21}, .n_known = 2, .refused_id = 30};
        struct discovery_context ctx = {.self_id = self_id,
                                        .sender_id = sender_id,
                                        .allowed = world_allowed,
                                        .lookup = world_lookup,
                                        .userdata = &w};
        struct discovery_sender s = {};
        struct discovery_action act[DISCOVERY_MAX_ENTRIES];
        struct discovery_chunk c = {.epoch = 1, .version = 1, .chunk_count = 1, .n_entries = 8};
        size_t n = 99;

        id_of(self_id, 1);
        id_of(sender_id, 2);
        w.state[0] = (struct discovery_known){.direct = true, .endpoint = v4(192, 0, 2, 20, 9001)};
        /* Known on the relay; its endpoint given in the mapped form a dual-stack socket uses. */
        w.state[1] = (struct discovery_known){.endpoint = v6("::ffff:192.0.2.21", 9001)};

        c.entries[0] = entry(1, DISCOVERY_ENTRY_DIRECT); /* us, as the sender sees us */
        c.entries[0].endpoint = v4(203, 0, 113, 1, 40001);
        c.entries[1] = entry(2, DISCOVERY_ENTRY_SELF); /* the sender */
        c.entries[1].n_candidates = 1;
        c.entries[1].candidates[0] = v4(10, 0, 0, 2, 9001);
        c.entries[2] = entry(30, DISCOVERY_ENTRY_DIRECT); /* not allowed */
        c.entries[2].endpoint = v4(192, 0, 2, 30, 9001);
        c.entries[3] = entry(20, DISCOVERY_ENTRY_DIRECT); /* known, direct session */
        c.entries[3].endpoint = v4(192, 0, 2, 99, 9001);
        c.entries[4] = entry(21, DISCOVERY_ENTRY_DIRECT); /* known, relayed: new address only */
        c.entries[4].endpoint = v4(192, 0, 2, 21, 9001);
        c.entries[4].n_candidates = 1;
        c.entries[4].candidates[0] = v6("2001:db8::21", 9001);
        c.entries[5] = entry(40, DISCOVERY_ENTRY_DIRECT); /* new */
        c.entries[5].endpoint = v4(192, 0, 2, 40, 9001);
        c.entries[5].n_candidates = 1;
        c.entries[5].candidates[0] = v4(10, 0, 0, 40, 9001);
        c.entries[6] = entry(41, DISCOVERY_ENTRY_RELAY); /* new, relay only, no address */
        c.entries[7] = entry(42, 0);                     /* new, no address, no relay */

        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), 0);
        CHECK_EQ_INT(n, 8);
        CHECK_EQ_INT(act[0].verdict, DISCOVERY_OURSELF);
        CHECK_EQ_INT(act[1].verdict, DISCOVERY_SENDER);
        CHECK_EQ_INT(act[1].n_try, 1);
        CHECK_MEM(&act[1].try[0], &c.entries[1].candidates[0], 20);
        CHECK_EQ_INT(act[2].verdict, DISCOVERY_IGNORED_NOT_ALLOWED);
        CHECK_EQ_INT(act[3].verdict, DISCOVERY_KNOWN);
        CHECK_EQ_INT(act[3].n_try, 0);
        CHECK_EQ_INT(act[4].verdict, DISCOVERY_TRY);
        CHECK_EQ_INT(act[4].n_try, 1); /* its current endpoint is not "new" */
        CHECK_MEM(&act[4].try[0], &c.entries[4].candidates[0], 20);
        CHECK_EQ_INT(act[5].verdict, DISCOVERY_ADD);
        CHECK_EQ_INT(act[5].n_try, 2);
        CHECK_MEM(&act[5].try[0], &c.entries[5].endpoint, 20);
        CHECK_MEM(&act[5].try[1], &c.entries[5].candidates[0], 20);
        CHECK(!act[5].via_relay);
        CHECK_EQ_INT(act[6].verdict, DISCOVERY_ADD);
        CHECK(act[6].via_relay);
        CHECK_EQ_INT(act[6].n_try, 0);
        CHECK_EQ_INT(act[7].verdict, DISCOVERY_IGNORED_NO_ADDRESS);
        for (size_t i = 0; i < n; i++)
                CHECK(act[i].entry == &c.entries[i]);
        /* Two tokens went on the two peers added; none on the rest. */
        CHECK_EQ_INT(s.tokens, DISCOVERY_NEW_PEERS_BURST - 2);
        CHECK(s.seen && s.epoch == 1 && s.version == 1);

        /* The sender named without SELF: ignored. A known peer with nothing new: known. */
        c.n_entries = 2;
        c.entries[0] = entry(2, DISCOVERY_ENTRY_DIRECT);
        c.entries[0].endpoint = v4(192, 0, 2, 2, 9001);
        c.entries[1] = entry(21, DISCOVERY_ENTRY_DIRECT);
        c.entries[1].endpoint = v4(192, 0, 2, 21, 9001);
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), 0);
        CHECK_EQ_INT(act[0].verdict, DISCOVERY_IGNORED_SENDER);
        CHECK_EQ_INT(act[1].verdict, DISCOVERY_KNOWN);

        /* The allowed callback is optional (shared-key mode: any member may join). */
        ctx.allowed = NULL;
        c.n_entries = 1;
        c.entries[0] = entry(30, DISCOVERY_ENTRY_DIRECT);
        c.entries[0].endpoint = v4(192, 0, 2, 30, 9001);
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), 0);
        CHECK_EQ_INT(act[0].verdict, DISCOVERY_ADD);

        for (int v = 0; v < _DISCOVERY_VERDICT_MAX; v++)
                CHECKF(discovery_verdict_to_string(v) != NULL, "verdict %d", v);
        CHECK(discovery_verdict_to_string(_DISCOVERY_VERDICT_MAX) == NULL);
        CHECK(strcmp(discovery_verdict_to_string(DISCOVERY_IGNORED_OVER_LIMIT),
                     "ignored-over-limit") == 0);
}

static void test_merge_refusals(void) {
        uint8_t self_id[32], sender_id[32];
        struct world w = {};
        struct discovery_context ctx = {
                .self_id = self_id, .sender_id = sender_id, .lookup = world_lookup, .userdata = &w};
        struct discovery_sender s = {}, before;
        struct discovery_action act[DISCOVERY_MAX_ENTRIES];
        struct discovery_chunk c = {.epoch = 1, .version = 5, .chunk_count = 1, .n_entries = 1};
        size_t n = 99;

        id_of(self_id, 1);
        id_of(sender_id, 2);
        c.entries[0] = entry(50, DISCOVERY_ENTRY_DIRECT);
        c.entries[0].endpoint = v4(192, 0, 2, 50, 9001);
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), 0);

        /* Stale: nothing decided, nothing changed, the callbacks not even asked. */
        before = s;
        c.version = 4;
        w.lookups = 0;
        n = 99;
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), -ESTALE);
        CHECK_EQ_INT(n, 99);
        CHECK_EQ_INT(w.lookups, 0);
        CHECK(memcmp(&s, &before, sizeof(s)) == 0);

        /* A SELF entry naming someone other than the sender: the chunk is not believed. */
        c.version = 6;
        c.n_entries = 2;
        c.entries[1] = entry(51, DISCOVERY_ENTRY_SELF);
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), -EPERM);
        CHECK_EQ_INT(n, 99);
        CHECK_EQ_INT(w.lookups, 0);
        CHECK(memcmp(&s, &before, sizeof(s)) == 0);

        /* Shared-key mode before the sender's id is known: its SELF entry is how we learn it. */
        ctx.sender_id = NULL;
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), 0);
        CHECK_EQ_INT(act[1].verdict, DISCOVERY_SENDER);
        CHECK_EQ_INT(get_le32(act[1].entry->id), 51);
        /* A SELF entry with our own id is never the sender. */
        c.version = 7;
        c.entries[1] = entry(1, DISCOVERY_ENTRY_SELF);
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), 0);
        CHECK_EQ_INT(act[1].verdict, DISCOVERY_OURSELF);

        /* Bad arguments. */
        ctx.lookup = NULL;
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), -EINVAL);
        ctx.lookup = world_lookup;
        ctx.self_id = NULL;
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), -EINVAL);
        ctx.self_id = self_id;
        c.n_entries = DISCOVERY_MAX_ENTRIES + 1;
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, NOW, act, &n), -EINVAL);
}

/* At most DISCOVERY_NEW_PEERS_BURST new peers at once from one sender, then one per
 * DISCOVERY_NEW_PEER_REFILL_MS; a new epoch (or version) buys nothing. */
static void test_merge_budget(void) {
        const uint64_t step = (uint64_t) DISCOVERY_NEW_PEER_REFILL_MS * NSEC_PER_MSEC;
        uint8_t self_id[32], sender_id[32];
        struct world w = {};
        struct discovery_context ctx = {
                .self_id = self_id, .sender_id = sender_id, .lookup = world_lookup, .userdata = &w};
        struct discovery_sender s = {};
        struct discovery_action act[DISCOVERY_MAX_ENTRIES];
        struct discovery_chunk c = {
                .epoch = 1, .version = 1, .chunk_count = 1, .n_entries = DISCOVERY_MAX_ENTRIES};
        unsigned added = 0, next_id = 100;
        uint64_t now = NOW;
        size_t n;

#define FILL()                                                                                     \
        do {                                                                                       \
                for (size_t i = 0; i < DISCOVERY_MAX_ENTRIES; i++) {                               \
                        c.entries[i] = entry(next_id++, DISCOVERY_ENTRY_DIRECT);                   \
                        c.entries[i].endpoint = v4(198, 51, 100, (uint8_t) i, 9001);               \
                }                                                                                  \
        } while (0)
#define COUNT_ADDED()                                                                              \
        do {                                                                                       \
                added = 0;                                                                         \
                for (size_t i = 0; i < n; i++)                                                     \
                        added += act[i].verdict == DISCOVERY_ADD;                                  \
        } while (0)

        id_of(self_id, 1);
        id_of(sender_id, 2);
        /* The burst, over several chunks of one list. */
        unsigned total = 0;
        for (unsigned k = 0; k < DISCOVERY_NEW_PEERS_BURST / DISCOVERY_MAX_ENTRIES + 1; k++) {
                FILL();
                CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now, act, &n), 0);
                COUNT_ADDED();
                total += added;
        }
        CHECK_EQ_INT(total, DISCOVERY_NEW_PEERS_BURST);
        CHECK_EQ_INT(act[0].verdict, DISCOVERY_IGNORED_OVER_LIMIT);
        CHECK_EQ_INT(act[0].n_try, 0);
        /* Another epoch, another version: still nothing. */
        c.epoch = 2;
        c.version = 9;
        FILL();
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now + step - 1, act, &n), 0);
        COUNT_ADDED();
        CHECK_EQ_INT(added, 0);
        /* One refill step later, one more; then two steps, two more. */
        FILL();
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now + step, act, &n), 0);
        COUNT_ADDED();
        CHECK_EQ_INT(added, 1);
        FILL();
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now + 3 * step + step / 2, act, &n), 0);
        COUNT_ADDED();
        CHECK_EQ_INT(added, 2);
        /* The half step left over counts: half a step later, one more. */
        FILL();
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now + 4 * step, act, &n), 0);
        COUNT_ADDED();
        CHECK_EQ_INT(added, 1);
        /* A clock that went back adds nothing. */
        FILL();
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now, act, &n), 0);
        COUNT_ADDED();
        CHECK_EQ_INT(added, 0);
        /* Long idle: the bucket fills to the burst, never beyond. */
        now += 1000 * step;
        total = 0;
        for (unsigned k = 0; k < DISCOVERY_NEW_PEERS_BURST / DISCOVERY_MAX_ENTRIES + 2; k++) {
                FILL();
                CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now, act, &n), 0);
                COUNT_ADDED();
                total += added;
        }
        CHECK_EQ_INT(total, DISCOVERY_NEW_PEERS_BURST);
        /* Known peers and refused entries cost nothing: with the budget spent, they still get
         * their verdicts. */
        w.known[0] = 500;
        w.state[0] = (struct discovery_known){};
        w.n_known = 1;
        c.n_entries = 1;
        c.entries[0] = entry(500, DISCOVERY_ENTRY_DIRECT);
        c.entries[0].endpoint = v4(198, 51, 100, 1, 9001);
        CHECK_EQ_INT(discovery_merge(&ctx, &s, &c, now, act, &n), 0);
        CHECK_EQ_INT(act[0].verdict, DISCOVERY_TRY);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_vector();
        test_round_trip_sealed();
        test_decode_refusals();
        test_decode_filter();
        test_encode_refusals();
        test_encode_normalizes();
        test_chunking();
        test_message_lengths();
        test_freshness();
        test_merge_verdicts();
        test_merge_refusals();
        test_merge_budget();
        return test_summary();
}
