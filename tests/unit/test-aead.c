/* SPDX-License-Identifier: MIT */
/*
 * The AEADs ShadowMesh uses: ChaCha20-Poly1305 IETF (transport and handshake, through
 * noise_aead_* with Noise's nonce layout) and XChaCha20-Poly1305 (cookie replies), checked
 * against RFC 8439, draft-irtf-cfrg-xchacha and Wycheproof.
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"
#include "tests.h"

enum aead_kind {
        AEAD_CHACHA,  /* 12-byte nonce */
        AEAD_XCHACHA, /* 24-byte nonce */
};

struct aead_case {
        const uint8_t *key, *nonce, *aad, *msg, *ct, *tag;
        size_t key_len, nonce_len, aad_len, msg_len, ct_len, tag_len;
};

static int seal(enum aead_kind kind, uint8_t *out, const struct aead_case *c) {
        if (kind == AEAD_CHACHA)
                return crypto_aead_chacha20poly1305_ietf_encrypt(
                        out, NULL, c->msg, c->msg_len, c->aad, c->aad_len, NULL, c->nonce, c->key);
        return crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, c->msg, c->msg_len, c->aad,
                                                          c->aad_len, NULL, c->nonce, c->key);
}

static int open_(enum aead_kind kind, uint8_t *out, const uint8_t *in, size_t inlen,
                 const struct aead_case *c) {
        if (kind == AEAD_CHACHA)
                return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, inlen, c->aad,
                                                                 c->aad_len, c->nonce, c->key);
        return crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, in, inlen, c->aad,
                                                          c->aad_len, c->nonce, c->key);
}

/* 4 zero bytes || LE64: the nonces noise_aead_* can express. */
static bool noise_nonce(const struct aead_case *c, uint64_t *ret) {
        static const uint8_t zero[4];

        if (c->nonce_len != 12 || memcmp(c->nonce, zero, 4) != 0)
                return false;
        *ret = get_le64(c->nonce + 4);
        return true;
}

/* A valid case: seals to ct || tag, opens to msg, and a flipped tag bit is rejected. Returns
 * whether noise_aead_* could be checked too. */
static bool check_valid(enum aead_kind kind, const struct aead_case *c, const char *what) {
        size_t n = c->ct_len + c->tag_len;
        uint8_t *sealed = malloc(n + 1), *opened = malloc(c->msg_len + 1), *expect = malloc(n + 1);
        bool noise_checked = false;
        uint64_t nonce;

        if (!sealed || !opened || !expect)
                abort();
        memcpy(expect, c->ct, c->ct_len);
        memcpy(expect + c->ct_len, c->tag, c->tag_len);

        CHECK_EQ_INT(c->ct_len, c->msg_len);
        CHECK_EQ_INT(c->tag_len, 16);
        CHECK_EQ_INT(seal(kind, sealed, c), 0);
        CHECKF(memcmp(sealed, expect, n) == 0, "%s: ciphertext", what);
        CHECKF(open_(kind, opened, expect, n, c) == 0, "%s: decrypt", what);
        CHECKF(memcmp(opened, c->msg, c->msg_len) == 0, "%s: plaintext", what);
        expect[n - 1] ^= 1;
        CHECKF(open_(kind, opened, expect, n, c) == -1, "%s: modified tag accepted", what);
        expect[n - 1] ^= 1;

        if (kind == AEAD_CHACHA && noise_nonce(c, &nonce)) {
                noise_aead_encrypt(sealed, c->msg, c->msg_len, c->aad, c->aad_len, nonce, c->key);
                CHECKF(memcmp(sealed, expect, n) == 0, "%s: noise_aead_encrypt", what);
                CHECKF(noise_aead_decrypt(opened, expect, n, c->aad, c->aad_len, nonce, c->key) ==
                               0,
                       "%s: noise_aead_decrypt", what);
                CHECKF(memcmp(opened, c->msg, c->msg_len) == 0, "%s: noise plaintext", what);
                noise_checked = true;
        }
        free(sealed);
        free(opened);
        free(expect);
        return noise_checked;
}

static void check_invalid(enum aead_kind kind, const struct aead_case *c, const char *what) {
        size_t n = c->ct_len + c->tag_len;
        uint8_t *in = malloc(n + 1), *out = malloc(n + 1);
        uint64_t nonce;

        if (!in || !out)
                abort();
        memcpy(in, c->ct, c->ct_len);
        memcpy(in + c->ct_len, c->tag, c->tag_len);
        CHECKF(open_(kind, out, in, n, c) == -1, "%s: invalid case accepted", what);
        if (kind == AEAD_CHACHA && noise_nonce(c, &nonce))
                CHECKF(noise_aead_decrypt(out, in, n, c->aad, c->aad_len, nonce, c->key) ==
                               -EBADMSG,
                       "%s: invalid case accepted by noise_aead_decrypt", what);
        free(in);
        free(out);
}

/* ---- "name: hex" files (RFC 8439, the XChaCha draft) ---- */

struct kv_record {
        char *key, *nonce, *aad, *plaintext, *ciphertext, *tag;
};

static void kv_record_clear(struct kv_record *r) {
        free(r->key);
        free(r->nonce);
        free(r->aad);
        free(r->plaintext);
        free(r->ciphertext);
        free(r->tag);
        *r = (struct kv_record){};
}

/* Runs every complete record; returns how many there were. */
static unsigned kv_flush(struct kv_record *r, enum aead_kind kind, const char *file,
                         unsigned *noise_checked) {
        _cleanup_free_ uint8_t *key = NULL, *nonce = NULL, *aad = NULL, *pt = NULL, *ct = NULL,
                               *tag = NULL;
        struct aead_case c = {};
        unsigned ran = 0;

        if (!r->key || !r->nonce || !r->aad || !r->plaintext || !r->ciphertext || !r->tag)
                goto done;
        key = test_unhex(r->key, &c.key_len);
        nonce = test_unhex(r->nonce, &c.nonce_len);
        aad = test_unhex(r->aad, &c.aad_len);
        pt = test_unhex(r->plaintext, &c.msg_len);
        ct = test_unhex(r->ciphertext, &c.ct_len);
        tag = test_unhex(r->tag, &c.tag_len);
        c.key = key, c.nonce = nonce, c.aad = aad, c.msg = pt, c.ct = ct, c.tag = tag;
        CHECK_EQ_INT(c.key_len, 32);
        CHECK_EQ_INT(c.nonce_len, kind == AEAD_CHACHA ? 12 : 24);
        if (check_valid(kind, &c, file))
                (*noise_checked)++;
        ran = 1;
done:
        kv_record_clear(r);
        return ran;
}

static unsigned run_kv_file(const char *relative, enum aead_kind kind, unsigned *noise_checked) {
        _cleanup_free_ char *text = test_read_file(test_vector_path(relative), NULL);
        struct kv_record rec = {};
        unsigned count = 0;
        char *save = NULL;

        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *colon, *value, **slot = NULL;

                if (strncmp(line, "##", 2) == 0) {
                        count += kv_flush(&rec, kind, relative, noise_checked);
                        continue;
                }
                if (line[0] == '#' || !(colon = strchr(line, ':')))
                        continue;
                *colon = 0;
                value = colon + 1;
                value += strspn(value, " \t");
                value[strcspn(value, " \t\r")] = 0;
                if (strcmp(line, "key") == 0)
                        slot = &rec.key;
                else if (strcmp(line, "nonce") == 0)
                        slot = &rec.nonce;
                else if (strcmp(line, "aad") == 0)
                        slot = &rec.aad;
                else if (strcmp(line, "plaintext") == 0)
                        slot = &rec.plaintext;
                else if (strcmp(line, "ciphertext") == 0)
                        slot = &rec.ciphertext;
                else if (strcmp(line, "tag") == 0)
                        slot = &rec.tag;
                if (slot) {
                        free(*slot);
                        *slot = strdup(value);
                        if (!*slot)
                                abort();
                }
        }
        count += kv_flush(&rec, kind, relative, noise_checked);
        return count;
}

/* ---- Wycheproof ---- */

struct wycheproof_counts {
        unsigned valid, invalid, skipped, noise;
};

static void run_wycheproof(const char *relative, enum aead_kind kind,
                           struct wycheproof_counts *cnt) {
        size_t want_nonce = kind == AEAD_CHACHA ? 12 : 24;
        json_t *root, *groups, *g, *tests, *t;
        json_error_t err;
        size_t gi, ti;

        root = json_load_file(test_vector_path(relative), 0, &err);
        CHECKF(root, "%s: %s", relative, err.text);
        if (!root)
                return;
        groups = json_object_get(root, "testGroups");
        json_array_foreach(groups, gi, g) {
                tests = json_object_get(g, "tests");
                json_array_foreach(tests, ti, t) {
                        _cleanup_free_ uint8_t *key = NULL, *iv = NULL, *aad = NULL, *msg = NULL,
                                               *ct = NULL, *tag = NULL;
                        const char *result = json_string_value(json_object_get(t, "result"));
                        struct aead_case c = {};
                        char what[128];

                        snprintf(what, sizeof(what), "%s tcId %lld", relative,
                                 (long long) json_integer_value(json_object_get(t, "tcId")));
                        key = test_unhex(json_string_value(json_object_get(t, "key")), &c.key_len);
                        iv = test_unhex(json_string_value(json_object_get(t, "iv")), &c.nonce_len);
                        aad = test_unhex(json_string_value(json_object_get(t, "aad")), &c.aad_len);
                        msg = test_unhex(json_string_value(json_object_get(t, "msg")), &c.msg_len);
                        ct = test_unhex(json_string_value(json_object_get(t, "ct")), &c.ct_len);
                        tag = test_unhex(json_string_value(json_object_get(t, "tag")), &c.tag_len);
                        c.key = key, c.nonce = iv, c.aad = aad, c.msg = msg, c.ct = ct, c.tag = tag;

                        /* The fixed-size API cannot even express these (the "InvalidNonceSize"
                         * cases); all of them are expected to be invalid. */
                        if (c.key_len != 32 || c.nonce_len != want_nonce || c.tag_len != 16) {
                                CHECKF(strcmp(result, "invalid") == 0, "%s: skipped a valid case",
                                       what);
                                cnt->skipped++;
                                continue;
                        }
                        if (strcmp(result, "valid") == 0) {
                                if (check_valid(kind, &c, what))
                                        cnt->noise++;
                                cnt->valid++;
                        } else {
                                CHECKF(strcmp(result, "invalid") == 0, "%s: result %s", what,
                                       result);
                                check_invalid(kind, &c, what);
                                cnt->invalid++;
                        }
                }
        }
        json_decref(root);
}

/* noise_aead_* must be libsodium's IETF construction with nonce 0^32 || LE64(n). */
static void test_noise_nonce_layout(void) {
        /* clang-format off */
        static const uint64_t counters[] = {
                0, 1, 2, 255, 256, UINT64_C(0xffffffff), UINT64_C(0x100000000),
                UINT64_C(0x0102030405060708), UINT64_C(1) << 60, UINT64_MAX - 1, UINT64_MAX,
        };
        /* clang-format on */
        uint8_t key[32], ad[13], msg[1500], ref[1500 + 16], out[1500 + 16], back[1500];
        uint8_t npub[12] = {};
        unsigned checked = 0;

        randombytes_buf(key, sizeof(key));
        randombytes_buf(ad, sizeof(ad));
        randombytes_buf(msg, sizeof(msg));
        for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                size_t len = (size_t[]){0, 1, 15, 16, 17, 64, 1380, 1500}[i % 8];
                uint64_t n = counters[i];

                for (unsigned b = 0; b < 8; b++)
                        npub[4 + b] = (uint8_t) (n >> (8 * b));
                CHECK_EQ_INT(crypto_aead_chacha20poly1305_ietf_encrypt(ref, NULL, msg, len, ad,
                                                                       sizeof(ad), NULL, npub, key),
                             0);
                noise_aead_encrypt(out, msg, len, ad, sizeof(ad), n, key);
                CHECKF(memcmp(out, ref, len + 16) == 0, "counter %llu", (unsigned long long) n);
                CHECK_EQ_INT(noise_aead_decrypt(back, ref, len + 16, ad, sizeof(ad), n, key), 0);
                CHECK(memcmp(back, msg, len) == 0);

                /* In place, both ways. */
                memcpy(out, msg, len);
                noise_aead_encrypt(out, out, len, ad, sizeof(ad), n, key);
                CHECK(memcmp(out, ref, len + 16) == 0);
                CHECK_EQ_INT(noise_aead_decrypt(out, out, len + 16, ad, sizeof(ad), n, key), 0);
                CHECK(memcmp(out, msg, len) == 0);

                /* Wrong counter, wrong ad, flipped bit: -EBADMSG and no plaintext left. */
                CHECK_EQ_INT(noise_aead_decrypt(back, ref, len + 16, ad, sizeof(ad), n ^ 1, key),
                             -EBADMSG);
                CHECK_EQ_INT(noise_aead_decrypt(back, ref, len + 16, ad, sizeof(ad) - 1, n, key),
                             -EBADMSG);
                ref[len / 2] ^= 0x10;
                memset(back, 0xaa, sizeof(back));
                CHECK_EQ_INT(noise_aead_decrypt(back, ref, len + 16, ad, sizeof(ad), n, key),
                             -EBADMSG);
                CHECK(len == 0 || sodium_is_zero(back, len));
                checked++;
        }
        /* Shorter than a tag. */
        CHECK_EQ_INT(noise_aead_decrypt(back, ref, 15, NULL, 0, 0, key), -EBADMSG);
        CHECK_EQ_INT(noise_aead_decrypt(back, ref, 0, NULL, 0, 0, key), -EBADMSG);
        /* Empty message with no ad: a keepalive. */
        noise_aead_encrypt(out, NULL, 0, NULL, 0, 7, key);
        CHECK_EQ_INT(noise_aead_decrypt(NULL, out, 16, NULL, 0, 7, key), 0);
        CHECK_EQ_INT(noise_aead_decrypt(NULL, out, 16, NULL, 0, 8, key), -EBADMSG);
        printf("noise_aead vs libsodium with 0^32||LE64 nonces: %u counters\n", checked);
}

int main(void) {
        struct wycheproof_counts cc = {}, xc = {};
        unsigned rfc_noise = 0, draft_noise = 0, n;

        if (sodium_init() < 0)
                return 1;

        n = run_kv_file("aead/rfc8439-aead.txt", AEAD_CHACHA, &rfc_noise);
        printf("RFC 8439 AEAD vectors: %u (%u also through noise_aead)\n", n, rfc_noise);
        CHECK_EQ_INT(n, 2);
        CHECK_EQ_INT(rfc_noise, 1); /* A.5's nonce is 00000000 || 0102030405060708 */

        n = run_kv_file("aead/xchacha20poly1305-draft.txt", AEAD_XCHACHA, &draft_noise);
        printf("XChaCha20-Poly1305 draft vectors: %u\n", n);
        CHECK_EQ_INT(n, 1);

        test_noise_nonce_layout();

        run_wycheproof("wycheproof/chacha20_poly1305_test.json", AEAD_CHACHA, &cc);
        printf("Wycheproof ChaCha20-Poly1305: %u valid, %u invalid, %u skipped (nonce size), "
               "%u valid also through noise_aead\n",
               cc.valid, cc.invalid, cc.skipped, cc.noise);
        CHECK(cc.valid > 0 && cc.invalid > 0);
        CHECK_EQ_INT(cc.valid + cc.invalid + cc.skipped, 325);

        run_wycheproof("wycheproof/xchacha20_poly1305_test.json", AEAD_XCHACHA, &xc);
        printf("Wycheproof XChaCha20-Poly1305: %u valid, %u invalid, %u skipped (nonce size)\n",
               xc.valid, xc.invalid, xc.skipped);
        CHECK(xc.valid > 0 && xc.invalid > 0);
        CHECK_EQ_INT(xc.valid + xc.invalid + xc.skipped, 315);

        return test_summary();
}
