/* SPDX-License-Identifier: MIT */
/*
 * X25519 through libsodium's crypto_scalarmult against every Wycheproof case, and the rule the
 * handshake builds on: a public key whose shared secret is all zeros (a low-order point, in any
 * encoding) makes crypto_scalarmult return -1 and a Noise handshake that meets it fail with
 * -EINVAL.
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"
#include "tests.h"

/* Handshake states just before each place a remote ephemeral is used in a DH. */
struct fixtures {
        /* NN: the initiator about to read message 2 (e, ee). */
        struct noise_handshake nn_ini;
        uint8_t nn_msg2[64];
        size_t nn_msg2_len;
        /* NN: the responder about to read message 1 (e); its DH comes when it writes. */
        struct noise_handshake nn_res;
        uint8_t nn_msg1[64];
        size_t nn_msg1_len;
        /* IKpsk2: the responder about to read message 1 (e, es, s, ss). */
        struct noise_handshake ik_res;
        uint8_t ik_msg1[256];
        size_t ik_msg1_len;
};

static void fixtures_init(struct fixtures *f) {
        uint8_t ipriv[32], ipub[32], rpriv[32], rpub[32], psk[32], pl[64];
        struct noise_handshake ini, res;
        size_t plen;

        noise_generate_keypair(ipriv, ipub);
        noise_generate_keypair(rpriv, rpub);
        randombytes_buf(psk, sizeof(psk));

        CHECK_EQ_INT(noise_handshake_init(&ini, NOISE_PATTERN_NN, true, NULL, 0, NULL, NULL, NULL),
                     0);
        CHECK_EQ_INT(noise_handshake_init(&res, NOISE_PATTERN_NN, false, NULL, 0, NULL, NULL, NULL),
                     0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, f->nn_msg1, sizeof(f->nn_msg1),
                                                   &f->nn_msg1_len),
                     0);
        f->nn_res = res;
        CHECK_EQ_INT(noise_handshake_read_message(&res, f->nn_msg1, f->nn_msg1_len, pl, sizeof(pl),
                                                  &plen),
                     0);
        CHECK_EQ_INT(noise_handshake_write_message(&res, NULL, 0, f->nn_msg2, sizeof(f->nn_msg2),
                                                   &f->nn_msg2_len),
                     0);
        f->nn_ini = ini;

        CHECK_EQ_INT(
                noise_handshake_init(&ini, NOISE_PATTERN_IKPSK2, true, NULL, 0, ipriv, rpub, psk),
                0);
        CHECK_EQ_INT(noise_handshake_init(&f->ik_res, NOISE_PATTERN_IKPSK2, false, NULL, 0, rpriv,
                                          NULL, psk),
                     0);
        CHECK_EQ_INT(noise_handshake_write_message(&ini, NULL, 0, f->ik_msg1, sizeof(f->ik_msg1),
                                                   &f->ik_msg1_len),
                     0);

        /* The fixtures themselves work unchanged. */
        res = f->ik_res;
        CHECK_EQ_INT(noise_handshake_read_message(&res, f->ik_msg1, f->ik_msg1_len, pl, sizeof(pl),
                                                  &plen),
                     0);
        ini = f->nn_ini;
        CHECK_EQ_INT(noise_handshake_read_message(&ini, f->nn_msg2, f->nn_msg2_len, pl, sizeof(pl),
                                                  &plen),
                     0);
        noise_handshake_wipe(&ini);
        noise_handshake_wipe(&res);
        sodium_memzero(ipriv, sizeof(ipriv));
        sodium_memzero(rpriv, sizeof(rpriv));
}

/* Every handshake that meets pub as the peer's ephemeral must fail with -EINVAL. */
static void check_noise_rejects(const struct fixtures *f, const uint8_t pub[32], long long tc) {
        struct noise_handshake hs;
        uint8_t msg[256], pl[64];
        size_t len, plen;
        int r;

        hs = f->nn_ini;
        memcpy(msg, f->nn_msg2, f->nn_msg2_len);
        memcpy(msg, pub, 32);
        r = noise_handshake_read_message(&hs, msg, f->nn_msg2_len, pl, sizeof(pl), &plen);
        CHECKF(r == -EINVAL, "tcId %lld: NN initiator reading message 2: %d", tc, r);

        hs = f->nn_res;
        memcpy(msg, f->nn_msg1, f->nn_msg1_len);
        memcpy(msg, pub, 32);
        r = noise_handshake_read_message(&hs, msg, f->nn_msg1_len, pl, sizeof(pl), &plen);
        CHECKF(r == 0, "tcId %lld: NN responder reading message 1 (no DH yet): %d", tc, r);
        r = noise_handshake_write_message(&hs, NULL, 0, msg, sizeof(msg), &len);
        CHECKF(r == -EINVAL, "tcId %lld: NN responder writing message 2: %d", tc, r);

        hs = f->ik_res;
        memcpy(msg, f->ik_msg1, f->ik_msg1_len);
        memcpy(msg, pub, 32);
        r = noise_handshake_read_message(&hs, msg, f->ik_msg1_len, pl, sizeof(pl), &plen);
        CHECKF(r == -EINVAL, "tcId %lld: IKpsk2 responder reading message 1: %d", tc, r);
        noise_handshake_wipe(&hs);
}

int main(void) {
        unsigned valid = 0, acceptable = 0, zero = 0, total = 0;
        struct fixtures f;
        json_t *root, *groups, *g, *tests, *t;
        json_error_t err;
        size_t gi, ti;

        if (sodium_init() < 0)
                return 1;
        fixtures_init(&f);

        root = json_load_file(test_vector_path("wycheproof/x25519_test.json"), 0, &err);
        CHECKF(root, "x25519_test.json: %s", err.text);
        if (!root)
                return test_summary();

        groups = json_object_get(root, "testGroups");
        json_array_foreach(groups, gi, g) {
                CHECK(strcmp(json_string_value(json_object_get(g, "curve")), "curve25519") == 0);
                tests = json_object_get(g, "tests");
                json_array_foreach(tests, ti, t) {
                        _cleanup_free_ uint8_t *pub = NULL, *priv = NULL, *shared = NULL;
                        long long tc = json_integer_value(json_object_get(t, "tcId"));
                        const char *result = json_string_value(json_object_get(t, "result"));
                        size_t pub_len, priv_len, shared_len;
                        uint8_t out[32];
                        int r;

                        pub = test_unhex(json_string_value(json_object_get(t, "public")), &pub_len);
                        priv = test_unhex(json_string_value(json_object_get(t, "private")),
                                          &priv_len);
                        shared = test_unhex(json_string_value(json_object_get(t, "shared")),
                                            &shared_len);
                        CHECK_EQ_INT(pub_len, 32);
                        CHECK_EQ_INT(priv_len, 32);
                        CHECK_EQ_INT(shared_len, 32);
                        if (pub_len != 32 || priv_len != 32 || shared_len != 32)
                                continue;
                        total++;

                        r = crypto_scalarmult(out, priv, pub);
                        if (sodium_is_zero(shared, 32)) {
                                CHECKF(r == -1, "tcId %lld: all-zero shared secret accepted", tc);
                                check_noise_rejects(&f, pub, tc);
                                zero++;
                                continue;
                        }
                        CHECKF(r == 0, "tcId %lld: crypto_scalarmult returned %d", tc, r);
                        CHECKF(r == 0 && memcmp(out, shared, 32) == 0, "tcId %lld: shared secret",
                               tc);
                        if (strcmp(result, "valid") == 0)
                                valid++;
                        else {
                                CHECKF(strcmp(result, "acceptable") == 0, "tcId %lld: result %s",
                                       tc, result);
                                acceptable++;
                        }
                }
        }
        json_decref(root);

        printf("Wycheproof X25519: %u cases: %u valid and %u acceptable with the expected secret, "
               "%u with an all-zero secret rejected (by crypto_scalarmult and by 3 handshakes "
               "each)\n",
               total, valid, acceptable, zero);
        CHECK_EQ_INT(total, 518);
        CHECK(zero > 0 && valid > 0);

        noise_handshake_wipe(&f.nn_ini);
        noise_handshake_wipe(&f.nn_res);
        noise_handshake_wipe(&f.ik_res);
        return test_summary();
}
