/* SPDX-License-Identifier: MIT */
/*
 * Noise handshakes against the cacophony vectors (every NN, NNpsk0, IK and IKpsk2 vector of
 * suite 25519_ChaChaPoly_BLAKE2b: each handshake message, the handshake hash and the transport
 * messages byte for byte), then the failures: tampered messages, wrong psk, wrong remote static,
 * low-order ephemerals, messages out of turn.
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"
#include "tests.h"

#define SUITE "_25519_ChaChaPoly_BLAKE2b"

static const struct {
        const char *name;
        enum noise_pattern pattern;
        bool psk, responder_static;
} pattern_table[] = {
        {"NN", NOISE_PATTERN_NN, false, false},
        {"NNpsk0", NOISE_PATTERN_NNPSK0, true, false},
        {"IK", NOISE_PATTERN_IK, false, true},
        {"IKpsk2", NOISE_PATTERN_IKPSK2, true, true},
};

/* Everything needed to start both sides of one handshake. NULL: not used by the pattern. */
struct setup {
        enum noise_pattern pattern;
        const uint8_t *prologue;
        size_t prologue_len;
        const uint8_t *init_s, *init_rs, *init_e, *init_psk;
        const uint8_t *resp_s, *resp_e, *resp_psk;
};

static int start(const struct setup *s, struct noise_handshake *ini, struct noise_handshake *res) {
        int r;

        r = noise_handshake_init(ini, s->pattern, true, s->prologue, s->prologue_len, s->init_s,
                                 s->init_rs, s->init_psk);
        if (r < 0)
                return r;
        r = noise_handshake_init(res, s->pattern, false, s->prologue, s->prologue_len, s->resp_s,
                                 NULL, s->resp_psk);
        if (r < 0)
                return r;
        if (s->init_e)
                noise_handshake_set_ephemeral(ini, s->init_e);
        if (s->resp_e)
                noise_handshake_set_ephemeral(res, s->resp_e);
        return 0;
}

/* ---- vectors ---- */

static uint8_t *json_hex(json_t *obj, const char *key, size_t *ret_len) {
        json_t *v = json_object_get(obj, key);
        size_t dummy;

        if (!json_is_string(v))
                return NULL;
        return test_unhex(json_string_value(v), ret_len ? ret_len : &dummy);
}

static uint8_t *json_first_psk(json_t *obj, const char *key) {
        json_t *a = json_object_get(obj, key);
        size_t len;
        uint8_t *psk;

        if (!json_is_array(a) || json_array_size(a) == 0)
                return NULL;
        CHECK_EQ_INT(json_array_size(a), 1);
        psk = test_unhex(json_string_value(json_array_get(a, 0)), &len);
        CHECK_EQ_INT(len, NOISE_PSK_LEN);
        return psk;
}

static void run_vector(json_t *v, enum noise_pattern pattern, const char *name) {
        _cleanup_free_ uint8_t *iprologue = NULL, *rprologue = NULL, *is = NULL, *ie = NULL,
                               *irs = NULL, *rs = NULL, *re = NULL, *ipsk = NULL, *rpsk = NULL,
                               *hash = NULL;
        size_t iprologue_len = 0, rprologue_len = 0, hash_len = 0;
        struct noise_handshake ini, res;
        uint8_t ikeys[2][NOISE_SYMMETRIC_KEY_LEN], rkeys[2][NOISE_SYMMETRIC_KEY_LEN];
        uint64_t nonce[2] = {0, 0}; /* per direction: [0] initiator->responder */
        json_t *messages, *m;
        size_t i;
        int r;

        iprologue = json_hex(v, "init_prologue", &iprologue_len);
        rprologue = json_hex(v, "resp_prologue", &rprologue_len);
        is = json_hex(v, "init_static", NULL);
        ie = json_hex(v, "init_ephemeral", NULL);
        irs = json_hex(v, "init_remote_static", NULL);
        rs = json_hex(v, "resp_static", NULL);
        re = json_hex(v, "resp_ephemeral", NULL);
        ipsk = json_first_psk(v, "init_psks");
        rpsk = json_first_psk(v, "resp_psks");
        hash = json_hex(v, "handshake_hash", &hash_len);
        CHECK(ie && re && hash);
        CHECK_EQ_INT(hash_len, NOISE_HASH_LEN);
        if (!ie || !re || !hash)
                return;

        r = noise_handshake_init(&ini, pattern, true, iprologue, iprologue_len, is, irs, ipsk);
        CHECKF(r == 0, "%s initiator init: %d", name, r);
        r = noise_handshake_init(&res, pattern, false, rprologue, rprologue_len, rs, NULL, rpsk);
        CHECKF(r == 0, "%s responder init: %d", name, r);
        if (r < 0)
                return;
        noise_handshake_set_ephemeral(&ini, ie);
        noise_handshake_set_ephemeral(&res, re);

        messages = json_object_get(v, "messages");
        CHECK(json_array_size(messages) > 2);
        json_array_foreach(messages, i, m) {
                _cleanup_free_ uint8_t *payload = NULL, *ct = NULL, *out = NULL, *got = NULL;
                size_t payload_len, ct_len, out_len = 0, got_len = 0;
                bool from_initiator = i % 2 == 0;
                struct noise_handshake *snd = from_initiator ? &ini : &res;
                struct noise_handshake *rcv = from_initiator ? &res : &ini;

                payload = json_hex(m, "payload", &payload_len);
                ct = json_hex(m, "ciphertext", &ct_len);
                out = malloc(ct_len + 64);
                got = malloc(ct_len + 64);
                if (!payload || !ct || !out || !got)
                        abort();

                if (i < 2) {
                        CHECK_EQ_INT(noise_handshake_message_len(snd, payload_len), ct_len);
                        r = noise_handshake_write_message(snd, payload, payload_len, out,
                                                          ct_len + 64, &out_len);
                        CHECKF(r == 0, "%s write message %zu: %d", name, i, r);
                        CHECK_EQ_INT(out_len, ct_len);
                        CHECKF(out_len == ct_len && memcmp(out, ct, ct_len) == 0,
                               "%s handshake message %zu ciphertext", name, i);
                        r = noise_handshake_read_message(rcv, ct, ct_len, got, ct_len + 64,
                                                         &got_len);
                        CHECKF(r == 0, "%s read message %zu: %d", name, i, r);
                        CHECK_EQ_INT(got_len, payload_len);
                        CHECKF(got_len == payload_len && memcmp(got, payload, payload_len) == 0,
                               "%s handshake message %zu payload", name, i);
                        if (i == 1) {
                                CHECK(noise_handshake_is_complete(&ini));
                                CHECK(noise_handshake_is_complete(&res));
                                CHECKF(memcmp(noise_handshake_hash(&ini), hash, hash_len) == 0,
                                       "%s initiator handshake hash", name);
                                CHECKF(memcmp(noise_handshake_hash(&res), hash, hash_len) == 0,
                                       "%s responder handshake hash", name);
                                CHECK_EQ_INT(noise_handshake_split(&ini, ikeys[0], ikeys[1]), 0);
                                CHECK_EQ_INT(noise_handshake_split(&res, rkeys[0], rkeys[1]), 0);
                        }
                        continue;
                }

                /* Transport: [0] is the send key of each side, [1] the receive key. */
                uint8_t *send_key = from_initiator ? ikeys[0] : rkeys[0];
                uint8_t *recv_key = from_initiator ? rkeys[1] : ikeys[1];
                uint64_t *n = &nonce[from_initiator ? 0 : 1];

                CHECK_EQ_INT(ct_len, noise_encrypted_len(payload_len));
                noise_aead_encrypt(out, payload, payload_len, NULL, 0, *n, send_key);
                CHECKF(memcmp(out, ct, ct_len) == 0, "%s transport message %zu ciphertext", name,
                       i);
                r = noise_aead_decrypt(got, ct, ct_len, NULL, 0, *n, recv_key);
                CHECKF(r == 0, "%s transport message %zu decrypt: %d", name, i, r);
                CHECKF(memcmp(got, payload, payload_len) == 0, "%s transport message %zu payload",
                       name, i);
                (*n)++;
        }

        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

static void test_vectors(void) {
        json_error_t err;
        json_t *root, *vectors, *v;
        unsigned count[ELEMENTSOF(pattern_table)] = {};
        size_t i;

        root = json_load_file(
                test_vector_path("noise/cacophony-25519_ChaChaPoly_BLAKE2b.extract.json"), 0, &err);
        if (!root) {
                fprintf(stderr, "cannot load Noise vectors: %s (line %d)\n", err.text, err.line);
                CHECK(root);
                return;
        }
        vectors = json_object_get(root, "vectors");
        CHECK(json_is_array(vectors));

        json_array_foreach(vectors, i, v) {
                const char *name = json_string_value(json_object_get(v, "protocol_name"));

                if (!name)
                        continue;
                for (size_t p = 0; p < ELEMENTSOF(pattern_table); p++) {
                        char full[128];

                        snprintf(full, sizeof(full), "Noise_%s" SUITE, pattern_table[p].name);
                        if (strcmp(name, full) != 0)
                                continue;
                        run_vector(v, pattern_table[p].pattern, name);
                        count[p]++;
                }
        }

        for (size_t p = 0; p < ELEMENTSOF(pattern_table); p++) {
                printf("Noise_%s" SUITE ": %u vector(s)\n", pattern_table[p].name, count[p]);
                CHECKF(count[p] > 0, "no vector for %s", pattern_table[p].name);
        }
        json_decref(root);
}

/* ---- behaviour with random keys ---- */

struct keyset {
        uint8_t init_s[32], init_s_pub[32], resp_s[32], resp_s_pub[32];
        uint8_t init_e[32], init_e_pub[32], resp_e[32], resp_e_pub[32];
        uint8_t psk[32];
        uint8_t prologue[29];
};

static void keyset_random(struct keyset *k, struct setup *s, enum noise_pattern pattern) {
        bool psk = pattern == NOISE_PATTERN_NNPSK0 || pattern == NOISE_PATTERN_IKPSK2;
        bool ik = pattern == NOISE_PATTERN_IK || pattern == NOISE_PATTERN_IKPSK2;

        noise_generate_keypair(k->init_s, k->init_s_pub);
        noise_generate_keypair(k->resp_s, k->resp_s_pub);
        noise_generate_keypair(k->init_e, k->init_e_pub);
        noise_generate_keypair(k->resp_e, k->resp_e_pub);
        randombytes_buf(k->psk, sizeof(k->psk));
        memcpy(k->prologue, SHADOWMESH_PROLOGUE_LABEL, strlen(SHADOWMESH_PROLOGUE_LABEL));
        randombytes_buf(k->prologue + strlen(SHADOWMESH_PROLOGUE_LABEL), NETWORK_ID_LEN);

        *s = (struct setup){
                .pattern = pattern,
                .prologue = k->prologue,
                .prologue_len = sizeof(k->prologue),
                .init_s = ik ? k->init_s : NULL,
                .init_rs = ik ? k->resp_s_pub : NULL,
                .init_e = k->init_e,
                .init_psk = psk ? k->psk : NULL,
                .resp_s = ik ? k->resp_s : NULL,
                .resp_e = k->resp_e,
                .resp_psk = psk ? k->psk : NULL,
        };
}

static const uint8_t payload0[12] = "timestamp12"; /* the size of a TAI64N timestamp */

/* A whole handshake with random ephemerals; both sides must agree on everything. */
static void test_roundtrip(enum noise_pattern pattern, const char *name) {
        struct noise_handshake ini, res;
        struct keyset k;
        struct setup s;
        uint8_t msg[256], pl[256];
        uint8_t isend[32], irecv[32], rsend[32], rrecv[32];
        size_t len, plen;

        keyset_random(&k, &s, pattern);
        s.init_e = s.resp_e = NULL; /* from the RNG this time */
        CHECK_EQ_INT(start(&s, &ini, &res), 0);

        CHECK(!noise_handshake_is_complete(&ini));
        CHECK_EQ_INT(noise_handshake_split(&ini, isend, irecv), -EPROTO);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, payload0, sizeof(payload0), msg,
                                                   sizeof(msg), &len),
                     0);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK_EQ_INT(plen, sizeof(payload0));
        CHECK_MEM(pl, payload0, sizeof(payload0));
        CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(noise_handshake_read_message(&ini, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK_EQ_INT(plen, 0);
        CHECK(noise_handshake_is_complete(&ini) && noise_handshake_is_complete(&res));
        CHECKF(memcmp(noise_handshake_hash(&ini), noise_handshake_hash(&res), NOISE_HASH_LEN) == 0,
               "%s: both sides have the same handshake hash", name);
        CHECK_EQ_INT(noise_handshake_split(&ini, isend, irecv), 0);
        CHECK_EQ_INT(noise_handshake_split(&res, rsend, rrecv), 0);
        CHECK_MEM(isend, rrecv, 32);
        CHECK_MEM(irecv, rsend, 32);
        CHECK(memcmp(isend, irecv, 32) != 0);

        /* Complete: nothing more to write or read. */
        CHECK_EQ_INT(noise_handshake_message_len(&ini, 0), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), -EPROTO);
        CHECK_EQ_INT(noise_handshake_read_message(&ini, msg, 48, pl, sizeof(pl), &plen), -EPROTO);
        CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), -EPROTO);

        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
        CHECK(sodium_is_zero((const unsigned char *) &ini, sizeof(ini)));
}

/* Sizes the wire formats of messages.h reserve for the Noise part of each message. */
static void test_message_sizes(void) {
        struct noise_handshake ini, res;
        struct keyset k;
        struct setup s;
        uint8_t msg[256], pl[64];
        size_t len, plen;

        keyset_random(&k, &s, NOISE_PATTERN_IKPSK2);
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_message_len(&ini, NOISE_TIMESTAMP_LEN),
                     sizeof(struct message_handshake_initiation) - 8 - sizeof(struct message_macs));
        /* -ENOBUFS one byte short, and the state is untouched: the full write then works. */
        CHECK_EQ_INT(
                noise_handshake_write_message(&ini, payload0, sizeof(payload0), msg, 107, &len),
                -ENOBUFS);
        CHECK_EQ_INT(
                noise_handshake_write_message(&ini, payload0, sizeof(payload0), msg, 108, &len), 0);
        CHECK_EQ_INT(len, 108);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(payload0) - 1, &plen),
                     -ENOBUFS);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK_EQ_INT(noise_handshake_message_len(&res, 0),
                     sizeof(struct message_handshake_response) - 12 - sizeof(struct message_macs));
        CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(len, 48);
        /* One byte short of the tag. */
        CHECK_EQ_INT(noise_handshake_read_message(&ini, msg, 47, pl, sizeof(pl), &plen), -EBADMSG);
        CHECK_EQ_INT(noise_handshake_read_message(&ini, msg, len, pl, sizeof(pl), &plen), 0);

        keyset_random(&k, &s, NOISE_PATTERN_NNPSK0);
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_message_len(&ini, NOISE_TIMESTAMP_LEN),
                     sizeof(struct message_handshake_initiation_psk) - 8 -
                             sizeof(struct message_macs));
        CHECK_EQ_INT(noise_handshake_write_message(&ini, payload0, sizeof(payload0), msg,
                                                   sizeof(msg), &len),
                     0);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK_EQ_INT(noise_handshake_message_len(&res, 0),
                     sizeof(struct message_handshake_response) - 12 - sizeof(struct message_macs));

        /* NN and IK without a psk: the first message's payload travels in clear in NN. */
        keyset_random(&k, &s, NOISE_PATTERN_NN);
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_message_len(&ini, 5), 32 + 5);
        CHECK_EQ_INT(noise_handshake_message_len(&res, 5), 32 + 5);
        keyset_random(&k, &s, NOISE_PATTERN_IK);
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_message_len(&ini, 5), 32 + 48 + 5 + 16);
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

static void test_init_errors(void) {
        struct noise_handshake hs;
        uint8_t key[32] = {1}, pub[32];

        CHECK_EQ_INT(noise_public_from_private(pub, key), 0);
        CHECK_EQ_INT(noise_handshake_init(&hs, NOISE_PATTERN_NN, true, NULL, 0, NULL, NULL, NULL),
                     0);
        CHECK_EQ_INT(
                noise_handshake_init(&hs, NOISE_PATTERN_NNPSK0, true, NULL, 0, NULL, NULL, NULL),
                -EINVAL);
        CHECK_EQ_INT(noise_handshake_init(&hs, NOISE_PATTERN_IK, true, NULL, 0, key, NULL, NULL),
                     -EINVAL);
        CHECK_EQ_INT(noise_handshake_init(&hs, NOISE_PATTERN_IK, true, NULL, 0, NULL, pub, NULL),
                     -EINVAL);
        CHECK_EQ_INT(noise_handshake_init(&hs, NOISE_PATTERN_IK, false, NULL, 0, NULL, NULL, NULL),
                     -EINVAL);
        CHECK_EQ_INT(noise_handshake_init(&hs, NOISE_PATTERN_IK, false, NULL, 0, key, NULL, NULL),
                     0);
        CHECK_EQ_INT(
                noise_handshake_init(&hs, NOISE_PATTERN_IKPSK2, false, NULL, 0, key, NULL, NULL),
                -EINVAL);
        CHECK_EQ_INT(noise_handshake_init(&hs, NOISE_PATTERN_IKPSK2, true, NULL, 0, key, pub, key),
                     0);
        CHECK_EQ_INT(
                noise_handshake_init(&hs, (enum noise_pattern) 17, true, NULL, 0, key, pub, key),
                -EINVAL);
        noise_handshake_wipe(&hs);
}

static void test_out_of_turn(enum noise_pattern pattern) {
        struct noise_handshake ini, res;
        struct keyset k;
        struct setup s;
        uint8_t msg[256], pl[256];
        size_t len, plen;

        keyset_random(&k, &s, pattern);
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), -EPROTO);
        CHECK_EQ_INT(noise_handshake_read_message(&ini, msg, 100, pl, sizeof(pl), &plen), -EPROTO);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), -EPROTO);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), -EPROTO);
        CHECK_EQ_INT(noise_handshake_split(&res, msg, msg + 32), -EPROTO);
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

/*
 * Flip one bit at every byte of each handshake message. The receiver must reject the message,
 * except NN's first one, which nothing authenticates: then the next message must fail. After a
 * rejection the untouched message must still be accepted (reads are transactional).
 */
static void test_tamper(enum noise_pattern pattern, const char *name) {
        unsigned rejected = 0, rejected_later = 0, total = 0;
        struct keyset k;
        struct setup s;

        keyset_random(&k, &s, pattern);
        for (unsigned m = 0; m < 2; m++) {
                struct noise_handshake ini, res, *snd, *rcv;
                uint8_t msg[256], bad[256], pl[256];
                size_t len, plen, n;

                CHECK_EQ_INT(start(&s, &ini, &res), 0);
                snd = m == 0 ? &ini : &res;
                rcv = m == 0 ? &res : &ini;
                if (m == 1) {
                        CHECK_EQ_INT(noise_handshake_write_message(&ini, payload0, sizeof(payload0),
                                                                   msg, sizeof(msg), &len),
                                     0);
                        CHECK_EQ_INT(
                                noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen),
                                0);
                }
                n = noise_handshake_message_len(snd, sizeof(payload0));
                for (size_t off = 0; off < n; off++) {
                        struct noise_handshake s2 = *snd, r2 = *rcv;
                        int r;

                        total++;
                        CHECK_EQ_INT(noise_handshake_write_message(&s2, payload0, sizeof(payload0),
                                                                   msg, sizeof(msg), &len),
                                     0);
                        memcpy(bad, msg, len);
                        bad[off] ^= (uint8_t) (1u << (off % 8));
                        r = noise_handshake_read_message(&r2, bad, len, pl, sizeof(pl), &plen);
                        if (r < 0) {
                                CHECKF(r == -EBADMSG || r == -EINVAL, "%s: %d", name, r);
                                rejected++;
                                /* Transactional: the genuine message still works. */
                                r = noise_handshake_read_message(&r2, msg, len, pl, sizeof(pl),
                                                                 &plen);
                                CHECKF(r == 0, "%s message %u after a rejected copy: %d", name, m,
                                       r);
                                continue;
                        }
                        CHECKF(pattern == NOISE_PATTERN_NN && m == 0,
                               "%s message %u with bit %zu flipped was accepted", name, m,
                               off * 8 + off % 8);
                        if (m != 0)
                                continue;
                        /* NN message 1: the response, made from the tampered state, must fail. */
                        r = noise_handshake_write_message(&r2, NULL, 0, msg, sizeof(msg), &len);
                        if (r == 0)
                                r = noise_handshake_read_message(&s2, msg, len, pl, sizeof(pl),
                                                                 &plen);
                        CHECKF(r < 0, "%s: a response to a tampered message 1 was accepted", name);
                        if (r < 0)
                                rejected_later++;
                        noise_handshake_wipe(&s2);
                        noise_handshake_wipe(&r2);
                }
                noise_handshake_wipe(&ini);
                noise_handshake_wipe(&res);
        }
        printf("%s: %u tampered messages, %u rejected on read, %u rejected at the next message\n",
               name, total, rejected, rejected_later);
        CHECK_EQ_INT(rejected + rejected_later, total);
}

static void test_wrong_psk(enum noise_pattern pattern, const char *name) {
        struct noise_handshake ini, res;
        uint8_t other_psk[32], msg[256], pl[256];
        struct keyset k;
        struct setup s;
        size_t len, plen;
        int r;

        keyset_random(&k, &s, pattern);
        memcpy(other_psk, k.psk, 32);
        other_psk[31] ^= 0x80;
        s.resp_psk = other_psk;
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, payload0, sizeof(payload0), msg,
                                                   sizeof(msg), &len),
                     0);
        r = noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen);
        if (pattern == NOISE_PATTERN_NNPSK0) {
                /* psk0: the first message is already keyed with it. */
                CHECKF(r == -EBADMSG, "%s wrong psk, message 1: %d", name, r);
        } else {
                /* psk2: it enters at the response. */
                CHECKF(r == 0, "%s wrong psk, message 1: %d", name, r);
                CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len),
                             0);
                r = noise_handshake_read_message(&ini, msg, len, pl, sizeof(pl), &plen);
                CHECKF(r == -EBADMSG, "%s wrong psk, message 2: %d", name, r);
        }
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

static void test_wrong_rs(enum noise_pattern pattern, const char *name) {
        struct noise_handshake ini, res;
        uint8_t other_priv[32], other_pub[32], msg[256], pl[256];
        struct keyset k;
        struct setup s;
        size_t len, plen;
        int r;

        keyset_random(&k, &s, pattern);
        noise_generate_keypair(other_priv, other_pub);
        s.init_rs = other_pub;
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, payload0, sizeof(payload0), msg,
                                                   sizeof(msg), &len),
                     0);
        r = noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen);
        CHECKF(r == -EBADMSG, "%s initiator with the wrong responder key: %d", name, r);
        CHECK(noise_handshake_remote_static(&res) == NULL);
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

static void test_remote_static(enum noise_pattern pattern) {
        struct noise_handshake ini, res;
        uint8_t msg[256], pl[256];
        struct keyset k;
        struct setup s;
        size_t len, plen;

        keyset_random(&k, &s, pattern);
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK(noise_handshake_remote_static(&res) == NULL);
        CHECK(noise_handshake_remote_static(&ini) != NULL &&
              memcmp(noise_handshake_remote_static(&ini), k.resp_s_pub, 32) == 0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK(noise_handshake_remote_static(&res) != NULL &&
              memcmp(noise_handshake_remote_static(&res), k.init_s_pub, 32) == 0);
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

/* The responder's remote-static check runs as soon as the initiator's static key is decrypted,
 * before the second DH (ss): a refused key costs one X25519 (es), an accepted one two, and the
 * read then fails with the check's error. Handshake flooding by strangers who know our public
 * key (all mac1 needs) rests on this. */
struct static_check {
        const uint8_t *allowed;
        unsigned calls;
        uint8_t seen[32];
};

static int check_static(const uint8_t rs[32], void *userdata) {
        struct static_check *c = userdata;

        c->calls++;
        memcpy(c->seen, rs, 32);
        return memcmp(rs, c->allowed, 32) == 0 ? 0 : -EKEYREJECTED;
}

static void test_static_check_before_ss(enum noise_pattern pattern) {
        struct noise_handshake ini, res;
        uint8_t msg[256], pl[256], other[32];
        struct keyset k;
        struct setup s;
        size_t len, plen = 0;

        /* Unknown key: refused after one DH, with the check's error. */
        keyset_random(&k, &s, pattern);
        randombytes_buf(other, sizeof(other));
        struct static_check c = { .allowed = other };
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        noise_handshake_set_remote_static_check(&res, check_static, &c);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen),
                     -EKEYREJECTED);
        CHECK_EQ_INT(c.calls, 1);
        CHECK_MEM(c.seen, k.init_s_pub, 32);
        CHECK_EQ_INT(res.dh_count, 1);
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);

        /* The pinned key: both DHs, and the handshake completes as without a check. */
        keyset_random(&k, &s, pattern);
        c = (struct static_check){ .allowed = k.init_s_pub };
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        noise_handshake_set_remote_static_check(&res, check_static, &c);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK_EQ_INT(c.calls, 1);
        CHECK_EQ_INT(res.dh_count, 2);
        CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(noise_handshake_read_message(&ini, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK(noise_handshake_is_complete(&ini) && noise_handshake_is_complete(&res));
        CHECK_MEM(noise_handshake_hash(&ini), noise_handshake_hash(&res), 64);
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

/* A low-order (here all-zero) ephemeral makes the first DH that uses it fail with -EINVAL:
 * the reader's own DH for IK message 1 ("es") and every message 2 ("ee"), the responder's
 * write of message 2 for NN/NNpsk0 (message 1 has no DH there). */
static void test_low_order(enum noise_pattern pattern, const char *name) {
        bool ik = pattern == NOISE_PATTERN_IK || pattern == NOISE_PATTERN_IKPSK2;
        struct noise_handshake ini, res;
        uint8_t msg[256], pl[256];
        struct keyset k;
        struct setup s;
        size_t len, plen;
        int r;

        /* message 1 */
        keyset_random(&k, &s, pattern);
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
        memset(msg, 0, NOISE_PUBLIC_KEY_LEN);
        r = noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen);
        if (ik)
                CHECKF(r == -EINVAL, "%s zero ephemeral in message 1: %d", name, r);
        else if (pattern == NOISE_PATTERN_NNPSK0)
                /* e is mixed into the key: the payload tag no longer matches. */
                CHECKF(r == -EBADMSG, "%s zero ephemeral in message 1: %d", name, r);
        else {
                CHECKF(r == 0, "%s zero ephemeral in message 1: %d", name, r);
                r = noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len);
                CHECKF(r == -EINVAL, "%s response to a zero ephemeral: %d", name, r);
        }

        /* message 2 */
        CHECK_EQ_INT(start(&s, &ini, &res), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
        CHECK_EQ_INT(noise_handshake_read_message(&res, msg, len, pl, sizeof(pl), &plen), 0);
        CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, msg, sizeof(msg), &len), 0);
        memset(msg, 0, NOISE_PUBLIC_KEY_LEN);
        r = noise_handshake_read_message(&ini, msg, len, pl, sizeof(pl), &plen);
        CHECKF(r == -EINVAL, "%s zero ephemeral in message 2: %d", name, r);

        /* Our own ephemeral of low order is impossible, but an IK initiator given a low-order
         * responder key must refuse to write. */
        if (ik) {
                uint8_t zero[32] = {};

                s.init_rs = zero;
                CHECK_EQ_INT(start(&s, &ini, &res), 0);
                r = noise_handshake_write_message(&ini, NULL, 0, msg, sizeof(msg), &len);
                CHECKF(r == -EINVAL, "%s initiator towards a zero static key: %d", name, r);
        }
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
}

static void test_public_from_private(void) {
        for (unsigned i = 0; i < 32; i++) {
                uint8_t priv[32], pub[32], ref[32], gpriv[32], gpub[32];

                randombytes_buf(priv, sizeof(priv));
                CHECK_EQ_INT(noise_public_from_private(pub, priv), 0);
                CHECK_EQ_INT(crypto_scalarmult_base(ref, priv), 0);
                CHECK_MEM(pub, ref, 32);

                noise_generate_keypair(gpriv, gpub);
                CHECK_EQ_INT(crypto_scalarmult_base(ref, gpriv), 0);
                CHECK_MEM(gpub, ref, 32);
                CHECK((gpriv[0] & 7) == 0 && (gpriv[31] & 0xc0) == 0x40);
        }
}

/* HKDF is defined through HMAC (Noise 4.3); check the chaining and the NULL outputs. */
static void test_hkdf_structure(void) {
        uint8_t ck[64], ikm[40], o1[64], o2[64], o3[64], t[64], e1[64], e2[64], e3[64], buf[65];
        uint8_t a1[64], a2[64], longkey[300], h1[64], h2[64], hashed[64];

        randombytes_buf(ck, sizeof(ck));
        randombytes_buf(ikm, sizeof(ikm));
        noise_hkdf(o1, o2, o3, ck, ikm, sizeof(ikm));
        noise_hmac(t, ck, sizeof(ck), ikm, sizeof(ikm));
        buf[0] = 1;
        noise_hmac(e1, t, 64, buf, 1);
        memcpy(buf, e1, 64);
        buf[64] = 2;
        noise_hmac(e2, t, 64, buf, 65);
        memcpy(buf, e2, 64);
        buf[64] = 3;
        noise_hmac(e3, t, 64, buf, 65);
        CHECK_MEM(o1, e1, 64);
        CHECK_MEM(o2, e2, 64);
        CHECK_MEM(o3, e3, 64);
        noise_hkdf(a1, a2, NULL, ck, ikm, sizeof(ikm));
        CHECK_MEM(a1, e1, 64);
        CHECK_MEM(a2, e2, 64);
        memcpy(a1, ck, 64);
        noise_hkdf(a1, NULL, NULL, a1, ikm, sizeof(ikm)); /* output aliasing the chaining key */
        CHECK_MEM(a1, e1, 64);

        /* RFC 2104: a key longer than the block is hashed first. */
        randombytes_buf(longkey, sizeof(longkey));
        noise_hash(hashed, longkey, sizeof(longkey), NULL, 0);
        noise_hmac(h1, longkey, sizeof(longkey), ikm, sizeof(ikm));
        noise_hmac(h2, hashed, sizeof(hashed), ikm, sizeof(ikm));
        CHECK_MEM(h1, h2, 64);
        /* and HMAC is not BLAKE2b's keyed mode */
        crypto_generichash(h2, 64, ikm, sizeof(ikm), ck, 64);
        noise_hmac(h1, ck, 64, ikm, sizeof(ikm));
        CHECK(memcmp(h1, h2, 64) != 0);
        /* noise_hash(a, b) is HASH(a || b) */
        crypto_generichash(h2, 64, longkey, sizeof(longkey), NULL, 0);
        noise_hash(h1, longkey, 100, longkey + 100, sizeof(longkey) - 100);
        CHECK_MEM(h1, h2, 64);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;

        test_vectors();
        test_hkdf_structure();
        test_public_from_private();
        test_init_errors();
        test_message_sizes();
        for (size_t p = 0; p < ELEMENTSOF(pattern_table); p++) {
                enum noise_pattern pattern = pattern_table[p].pattern;
                const char *name = pattern_table[p].name;

                test_roundtrip(pattern, name);
                test_out_of_turn(pattern);
                test_tamper(pattern, name);
                test_low_order(pattern, name);
                if (pattern_table[p].psk)
                        test_wrong_psk(pattern, name);
                if (pattern_table[p].responder_static) {
                        test_wrong_rs(pattern, name);
                        test_remote_static(pattern);
                        test_static_check_before_ss(pattern);
                }
        }
        return test_summary();
}
