/* SPDX-License-Identifier: MIT */
/*
 * The Noise Protocol Framework, revision 34, for NN, NNpsk0, IK and IKpsk2 over
 * 25519_ChaChaPoly_BLAKE2b. The code follows the spec's objects: CipherState (k, n inside the
 * handshake), SymmetricState (ck, h: section 5.2) and HandshakeState (section 5.3), with the
 * pattern tokens of section 7 and the psk rules of section 9.
 *
 * Reading and writing are transactional: a message is processed on a copy of the state, which
 * replaces the caller's only when the whole message succeeded. A forged or corrupted message
 * therefore leaves the handshake able to accept the genuine one.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "noise.h"
#include "util.h"

enum {
        HMAC_BLOCK_LEN = 128, /* BLAKE2b's block length, RFC 2104's B */
        NOISE_MESSAGES = 2,   /* every pattern here is one round trip */
        MAX_TOKENS = 5,
};

enum token {
        TOKEN_END = 0,
        TOKEN_E,
        TOKEN_S,
        TOKEN_EE,
        TOKEN_ES,
        TOKEN_SE,
        TOKEN_SS,
        TOKEN_PSK,
};

struct pattern_info {
        const char *protocol_name;
        bool psk;           /* any psk modifier: "e" also does MixKey (section 9.2) */
        bool responder_pre; /* "<- s" pre-message */
        enum token messages[NOISE_MESSAGES][MAX_TOKENS];
};

/* clang-format off */
static const struct pattern_info patterns[] = {
        [NOISE_PATTERN_NN] = {
                .protocol_name = "Noise_NN_25519_ChaChaPoly_BLAKE2b",
                .messages = {
                        { TOKEN_E },
                        { TOKEN_E, TOKEN_EE },
                },
        },
        [NOISE_PATTERN_NNPSK0] = {
                .protocol_name = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b",
                .psk = true,
                .messages = {
                        { TOKEN_PSK, TOKEN_E },
                        { TOKEN_E, TOKEN_EE },
                },
        },
        [NOISE_PATTERN_IK] = {
                .protocol_name = "Noise_IK_25519_ChaChaPoly_BLAKE2b",
                .responder_pre = true,
                .messages = {
                        { TOKEN_E, TOKEN_ES, TOKEN_S, TOKEN_SS },
                        { TOKEN_E, TOKEN_EE, TOKEN_SE },
                },
        },
        [NOISE_PATTERN_IKPSK2] = {
                .protocol_name = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b",
                .psk = true,
                .responder_pre = true,
                .messages = {
                        { TOKEN_E, TOKEN_ES, TOKEN_S, TOKEN_SS },
                        { TOKEN_E, TOKEN_EE, TOKEN_SE, TOKEN_PSK },
                },
        },
};
/* clang-format on */

static const struct pattern_info *pattern_get(enum noise_pattern p) {
        if ((unsigned) p >= ELEMENTSOF(patterns))
                return NULL;
        return &patterns[p];
}

/* HASH(a || b): unkeyed BLAKE2b-512. */
void noise_hash(uint8_t out[NOISE_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
                size_t blen) {
        crypto_generichash_state st;

        crypto_generichash_init(&st, NULL, 0, NOISE_HASH_LEN);
        if (alen > 0)
                crypto_generichash_update(&st, a, alen);
        if (blen > 0)
                crypto_generichash_update(&st, b, blen);
        crypto_generichash_final(&st, out, NOISE_HASH_LEN);
        sodium_memzero(&st, sizeof(st));
}

/* RFC 2104 HMAC over the hash above: H((K ^ opad) || H((K ^ ipad) || data)), B = 128. Noise
 * section 4.3 requires exactly this construction; BLAKE2b's own keyed mode gives other bytes. */
void noise_hmac(uint8_t out[NOISE_HASH_LEN], const uint8_t *key, size_t keylen, const uint8_t *data,
                size_t datalen) {
        uint8_t block[HMAC_BLOCK_LEN] = {}, inner[NOISE_HASH_LEN];
        crypto_generichash_state st;

        if (keylen > HMAC_BLOCK_LEN)
                noise_hash(block, key, keylen, NULL, 0);
        else if (keylen > 0)
                memcpy(block, key, keylen);

        for (size_t i = 0; i < sizeof(block); i++)
                block[i] ^= 0x36;
        crypto_generichash_init(&st, NULL, 0, NOISE_HASH_LEN);
        crypto_generichash_update(&st, block, sizeof(block));
        if (datalen > 0)
                crypto_generichash_update(&st, data, datalen);
        crypto_generichash_final(&st, inner, sizeof(inner));

        /* (K ^ ipad) ^ (0x36 ^ 0x5c) = K ^ opad */
        for (size_t i = 0; i < sizeof(block); i++)
                block[i] ^= 0x36 ^ 0x5c;
        crypto_generichash_init(&st, NULL, 0, NOISE_HASH_LEN);
        crypto_generichash_update(&st, block, sizeof(block));
        crypto_generichash_update(&st, inner, sizeof(inner));
        crypto_generichash_final(&st, out, NOISE_HASH_LEN);

        sodium_memzero(block, sizeof(block));
        sodium_memzero(inner, sizeof(inner));
        sodium_memzero(&st, sizeof(st));
}

/* Noise section 4.3. Outputs are computed in local buffers first, so out1 may alias ck. */
void noise_hkdf(uint8_t out1[NOISE_HASH_LEN], uint8_t out2[NOISE_HASH_LEN],
                uint8_t out3[NOISE_HASH_LEN], const uint8_t ck[NOISE_HASH_LEN], const uint8_t *ikm,
                size_t ikmlen) {
        uint8_t temp_key[NOISE_HASH_LEN], o1[NOISE_HASH_LEN], o2[NOISE_HASH_LEN],
                buf[NOISE_HASH_LEN + 1];

        noise_hmac(temp_key, ck, NOISE_HASH_LEN, ikm, ikmlen);

        buf[0] = 0x01;
        noise_hmac(o1, temp_key, sizeof(temp_key), buf, 1);

        if (out2 || out3) {
                memcpy(buf, o1, NOISE_HASH_LEN);
                buf[NOISE_HASH_LEN] = 0x02;
                noise_hmac(o2, temp_key, sizeof(temp_key), buf, sizeof(buf));
        }
        if (out3) {
                memcpy(buf, o2, NOISE_HASH_LEN);
                buf[NOISE_HASH_LEN] = 0x03;
                noise_hmac(out3, temp_key, sizeof(temp_key), buf, sizeof(buf));
        }

        memcpy(out1, o1, NOISE_HASH_LEN);
        if (out2)
                memcpy(out2, o2, NOISE_HASH_LEN);

        sodium_memzero(temp_key, sizeof(temp_key));
        sodium_memzero(o1, sizeof(o1));
        sodium_memzero(o2, sizeof(o2));
        sodium_memzero(buf, sizeof(buf));
}

/* Section 12.3: 32 bits of zeros followed by the little-endian 64-bit counter. */
static void make_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t n) {
        memset(nonce, 0, 4);
        put_le64(nonce + 4, n);
}

/* libsodium is not given a NULL buffer even for zero lengths. */
static const uint8_t empty[1];

void noise_aead_encrypt(uint8_t *out, const uint8_t *in, size_t inlen, const uint8_t *ad,
                        size_t adlen, uint64_t nonce, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]) {
        uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

        make_nonce(npub, nonce);
        crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in ? in : empty, inlen,
                                                  ad ? ad : empty, adlen, NULL, npub, key);
}

int noise_aead_decrypt(uint8_t *out, const uint8_t *in, size_t inlen, const uint8_t *ad,
                       size_t adlen, uint64_t nonce, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]) {
        uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
        uint8_t scratch[1];

        if (inlen < NOISE_AUTHTAG_LEN)
                return -EBADMSG;
        if (!out && inlen > NOISE_AUTHTAG_LEN)
                return -EINVAL; /* only an empty message may go without a buffer */
        make_nonce(npub, nonce);
        /* The tag is checked before anything is decrypted; on a bad one out is zeroed here too,
         * so that no plaintext is left there whatever libsodium's version does. */
        if (crypto_aead_chacha20poly1305_ietf_decrypt(out ? out : scratch, NULL, NULL, in, inlen,
                                                      ad ? ad : empty, adlen, npub, key) != 0) {
                if (out)
                        sodium_memzero(out, inlen - NOISE_AUTHTAG_LEN);
                return -EBADMSG;
        }
        return 0;
}

void noise_generate_keypair(uint8_t priv[NOISE_PUBLIC_KEY_LEN], uint8_t pub[NOISE_PUBLIC_KEY_LEN]) {
        for (;;) {
                randombytes_buf(priv, NOISE_PUBLIC_KEY_LEN);
                /* RFC 7748 section 5 clamping, stored so the key file holds the real scalar. */
                priv[0] &= 248;
                priv[31] &= 127;
                priv[31] |= 64;
                if (crypto_scalarmult_base(pub, priv) == 0)
                        return;
        }
}

int noise_public_from_private(uint8_t pub[NOISE_PUBLIC_KEY_LEN],
                              const uint8_t priv[NOISE_PUBLIC_KEY_LEN]) {
        uint8_t tmp[NOISE_PUBLIC_KEY_LEN];

        if (crypto_scalarmult_base(tmp, priv) != 0) {
                sodium_memzero(tmp, sizeof(tmp));
                return -EINVAL;
        }
        memcpy(pub, tmp, sizeof(tmp));
        sodium_memzero(tmp, sizeof(tmp));
        return 0;
}

/* ---- SymmetricState (section 5.2) ---- */

static void mix_hash(struct noise_handshake *hs, const uint8_t *data, size_t len) {
        noise_hash(hs->h, hs->h, NOISE_HASH_LEN, data, len);
}

static void mix_key(struct noise_handshake *hs, const uint8_t *ikm, size_t len) {
        uint8_t temp_k[NOISE_HASH_LEN];

        noise_hkdf(hs->ck, temp_k, NULL, hs->ck, ikm, len);
        memcpy(hs->k, temp_k, NOISE_SYMMETRIC_KEY_LEN); /* HASHLEN 64: truncate to 32 */
        hs->has_k = true;
        hs->n = 0;
        sodium_memzero(temp_k, sizeof(temp_k));
}

static void mix_key_and_hash(struct noise_handshake *hs, const uint8_t *ikm, size_t len) {
        uint8_t temp_h[NOISE_HASH_LEN], temp_k[NOISE_HASH_LEN];

        noise_hkdf(hs->ck, temp_h, temp_k, hs->ck, ikm, len);
        mix_hash(hs, temp_h, sizeof(temp_h));
        memcpy(hs->k, temp_k, NOISE_SYMMETRIC_KEY_LEN);
        hs->has_k = true;
        hs->n = 0;
        sodium_memzero(temp_h, sizeof(temp_h));
        sodium_memzero(temp_k, sizeof(temp_k));
}

/* out receives len + (has_k ? 16 : 0) bytes. out may equal in. */
static int encrypt_and_hash(struct noise_handshake *hs, uint8_t *out, const uint8_t *in,
                            size_t len) {
        if (!hs->has_k) {
                if (len > 0)
                        memmove(out, in, len);
                mix_hash(hs, out, len);
                return 0;
        }
        /* n = 2^64-1 is reserved (section 5.1); a handshake never gets near it. */
        if (hs->n == UINT64_MAX)
                return -EOVERFLOW;
        noise_aead_encrypt(out, in, len, hs->h, NOISE_HASH_LEN, hs->n, hs->k);
        hs->n++;
        mix_hash(hs, out, noise_encrypted_len(len));
        return 0;
}

/* in holds len bytes (the tag included when has_k); out receives the plaintext and may equal in:
 * h is advanced over the ciphertext before it is decrypted. */
static int decrypt_and_hash(struct noise_handshake *hs, uint8_t *out, const uint8_t *in,
                            size_t len) {
        uint8_t next_h[NOISE_HASH_LEN];
        int r;

        noise_hash(next_h, hs->h, NOISE_HASH_LEN, in, len);
        if (!hs->has_k) {
                if (len > 0)
                        memmove(out, in, len);
        } else {
                if (hs->n == UINT64_MAX) {
                        r = -EOVERFLOW;
                        goto finish;
                }
                r = noise_aead_decrypt(out, in, len, hs->h, NOISE_HASH_LEN, hs->n, hs->k);
                if (r < 0)
                        goto finish;
                hs->n++;
        }
        memcpy(hs->h, next_h, NOISE_HASH_LEN);
        r = 0;
finish:
        sodium_memzero(next_h, sizeof(next_h));
        return r;
}

/* ---- HandshakeState (section 5.3) ---- */

int noise_handshake_init(struct noise_handshake *hs, enum noise_pattern pattern, bool initiator,
                         const uint8_t *prologue, size_t prologue_len, const uint8_t *s_priv,
                         const uint8_t *rs, const uint8_t *psk) {
        const struct pattern_info *p = pattern_get(pattern);
        size_t name_len;
        int r;

        if (!hs || !p)
                return -EINVAL;
        if (prologue_len > 0 && !prologue)
                return -EINVAL;
        if (p->responder_pre) {
                if (!s_priv || (initiator && !rs))
                        return -EINVAL;
        }
        if (p->psk && !psk)
                return -EINVAL;

        sodium_memzero(hs, sizeof(*hs));
        hs->pattern = pattern;
        hs->initiator = initiator;

        /* InitializeSymmetric(protocol_name) */
        name_len = strlen(p->protocol_name);
        if (name_len <= NOISE_HASH_LEN)
                memcpy(hs->h, p->protocol_name, name_len);
        else
                noise_hash(hs->h, (const uint8_t *) p->protocol_name, name_len, NULL, 0);
        memcpy(hs->ck, hs->h, NOISE_HASH_LEN);

        mix_hash(hs, prologue, prologue_len);

        if (p->responder_pre) {
                r = noise_public_from_private(hs->s_pub, s_priv);
                if (r < 0)
                        goto fail;
                memcpy(hs->s_priv, s_priv, NOISE_PUBLIC_KEY_LEN);
                hs->has_s = true;

                /* Pre-message "<- s": both sides hash the responder's static key. */
                if (initiator) {
                        memcpy(hs->rs, rs, NOISE_PUBLIC_KEY_LEN);
                        hs->has_rs = true;
                        mix_hash(hs, hs->rs, NOISE_PUBLIC_KEY_LEN);
                } else
                        mix_hash(hs, hs->s_pub, NOISE_PUBLIC_KEY_LEN);
        }

        if (p->psk) {
                memcpy(hs->psk, psk, NOISE_PSK_LEN);
                hs->has_psk = true;
        }
        return 0;

fail:
        noise_handshake_wipe(hs);
        return r;
}

void noise_handshake_set_ephemeral(struct noise_handshake *hs,
                                   const uint8_t e_priv[NOISE_PUBLIC_KEY_LEN]) {
        /* has_e before the "e" token means "injected": the token then uses this key instead of
         * generating one. */
        if (noise_public_from_private(hs->e_pub, e_priv) < 0) {
                sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
                sodium_memzero(hs->e_pub, sizeof(hs->e_pub));
                hs->has_e = false;
                return;
        }
        memcpy(hs->e_priv, e_priv, NOISE_PUBLIC_KEY_LEN);
        hs->has_e = true;
}

bool noise_handshake_is_complete(const struct noise_handshake *hs) {
        return hs->message_index >= NOISE_MESSAGES;
}

static bool is_our_turn(const struct noise_handshake *hs, bool writing) {
        bool initiator_turn = hs->message_index % 2 == 0;

        if (noise_handshake_is_complete(hs))
                return false;
        return (initiator_turn == hs->initiator) == writing;
}

size_t noise_handshake_message_len(const struct noise_handshake *hs, size_t payload_len) {
        const struct pattern_info *p = pattern_get(hs->pattern);
        bool has_k = hs->has_k;
        size_t len = 0;

        if (!p || noise_handshake_is_complete(hs))
                return 0;

        for (const enum token *t = p->messages[hs->message_index]; *t != TOKEN_END; t++)
                switch (*t) {
                case TOKEN_E:
                        len += NOISE_PUBLIC_KEY_LEN;
                        if (p->psk)
                                has_k = true;
                        break;
                case TOKEN_S:
                        len += has_k ? noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)
                                     : NOISE_PUBLIC_KEY_LEN;
                        break;
                case TOKEN_EE:
                case TOKEN_ES:
                case TOKEN_SE:
                case TOKEN_SS:
                case TOKEN_PSK:
                        has_k = true;
                        break;
                case TOKEN_END:
                        break;
                }

        return len + (has_k ? noise_encrypted_len(payload_len) : payload_len);
}

/* MixKey(DH(local, remote)) for the DH tokens. Which keys a token names depends on the side:
 * "es" is DH(e, rs) for the initiator and DH(s, re) for the responder (section 7.1). */
static int mix_dh(struct noise_handshake *hs, enum token t) {
        const uint8_t *local, *remote;
        uint8_t dh[crypto_scalarmult_BYTES];
        bool local_e, remote_e;
        int r;

        switch (t) {
        case TOKEN_EE:
                local_e = remote_e = true;
                break;
        case TOKEN_ES:
                local_e = hs->initiator;
                remote_e = !hs->initiator;
                break;
        case TOKEN_SE:
                local_e = !hs->initiator;
                remote_e = hs->initiator;
                break;
        case TOKEN_SS:
                local_e = remote_e = false;
                break;
        default:
                return -EINVAL;
        }

        if (local_e ? !hs->has_e : !hs->has_s)
                return -EINVAL;
        if (remote_e ? !hs->has_re : !hs->has_rs)
                return -EINVAL;
        local = local_e ? hs->e_priv : hs->s_priv;
        remote = remote_e ? hs->re : hs->rs;

        /* -1: the result is all zeros, i.e. the remote key is of low order. Contributory
         * behaviour is required: a peer must not be able to force a known shared secret. */
        hs->dh_count++;
        if (crypto_scalarmult(dh, local, remote) != 0) {
                r = -EINVAL;
                goto finish;
        }
        mix_key(hs, dh, sizeof(dh));
        r = 0;
finish:
        sodium_memzero(dh, sizeof(dh));
        return r;
}

static void finish_message(struct noise_handshake *hs) {
        hs->message_index++;
        if (noise_handshake_is_complete(hs)) {
                /* Only ck and h are needed from here on (Split, channel binding). */
                sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
                sodium_memzero(hs->k, sizeof(hs->k));
                hs->has_k = false;
                hs->n = 0;
        }
}

static int write_tokens(struct noise_handshake *hs, const struct pattern_info *p,
                        const uint8_t *payload, size_t payload_len, uint8_t *out) {
        size_t off = 0;
        int r;

        for (const enum token *t = p->messages[hs->message_index]; *t != TOKEN_END; t++) {
                switch (*t) {
                case TOKEN_E:
                        if (!hs->has_e) {
                                noise_generate_keypair(hs->e_priv, hs->e_pub);
                                hs->has_e = true;
                        }
                        memcpy(out + off, hs->e_pub, NOISE_PUBLIC_KEY_LEN);
                        off += NOISE_PUBLIC_KEY_LEN;
                        mix_hash(hs, hs->e_pub, NOISE_PUBLIC_KEY_LEN);
                        if (p->psk)
                                mix_key(hs, hs->e_pub, NOISE_PUBLIC_KEY_LEN);
                        break;
                case TOKEN_S: {
                        bool had_k = hs->has_k;

                        if (!hs->has_s)
                                return -EINVAL;
                        r = encrypt_and_hash(hs, out + off, hs->s_pub, NOISE_PUBLIC_KEY_LEN);
                        if (r < 0)
                                return r;
                        off += had_k ? noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)
                                     : NOISE_PUBLIC_KEY_LEN;
                        break;
                }
                case TOKEN_PSK:
                        mix_key_and_hash(hs, hs->psk, NOISE_PSK_LEN);
                        break;
                case TOKEN_END:
                        break;
                default:
                        r = mix_dh(hs, *t);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        return encrypt_and_hash(hs, out + off, payload ? payload : empty, payload_len);
}

int noise_handshake_write_message(struct noise_handshake *hs, const uint8_t *payload,
                                  size_t payload_len, uint8_t *out, size_t out_max,
                                  size_t *ret_len) {
        _cleanup_(noise_handshake_wipe) struct noise_handshake tmp;
        const struct pattern_info *p = pattern_get(hs->pattern);
        size_t len;
        int r;

        if (!p)
                return -EINVAL;
        if (!is_our_turn(hs, true))
                return -EPROTO;
        if (payload_len > 0 && !payload)
                return -EINVAL;
        len = noise_handshake_message_len(hs, payload_len);
        if (len < payload_len || !out || out_max < len)
                return -ENOBUFS;

        tmp = *hs;
        r = write_tokens(&tmp, p, payload, payload_len, out);
        if (r < 0) {
                sodium_memzero(out, len);
                return r;
        }
        finish_message(&tmp);
        *hs = tmp;
        if (ret_len)
                *ret_len = len;
        return 0;
}

static int read_tokens(struct noise_handshake *hs, const struct pattern_info *p, const uint8_t *msg,
                       size_t len, uint8_t *payload) {
        size_t off = 0;
        int r;

        for (const enum token *t = p->messages[hs->message_index]; *t != TOKEN_END; t++) {
                switch (*t) {
                case TOKEN_E:
                        memcpy(hs->re, msg + off, NOISE_PUBLIC_KEY_LEN);
                        hs->has_re = true;
                        off += NOISE_PUBLIC_KEY_LEN;
                        mix_hash(hs, hs->re, NOISE_PUBLIC_KEY_LEN);
                        if (p->psk)
                                mix_key(hs, hs->re, NOISE_PUBLIC_KEY_LEN);
                        break;
                case TOKEN_S: {
                        size_t n = hs->has_k ? noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)
                                             : NOISE_PUBLIC_KEY_LEN;
                        uint8_t rs[noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)];

                        r = decrypt_and_hash(hs, rs, msg + off, n);
                        if (r < 0)
                                return r;
                        memcpy(hs->rs, rs, NOISE_PUBLIC_KEY_LEN);
                        hs->has_rs = true;
                        off += n;
                        if (hs->check_remote_static) {
                                r = hs->check_remote_static(hs->rs, hs->check_userdata);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
                case TOKEN_PSK:
                        mix_key_and_hash(hs, hs->psk, NOISE_PSK_LEN);
                        break;
                case TOKEN_END:
                        break;
                default:
                        r = mix_dh(hs, *t);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        return decrypt_and_hash(hs, payload, msg + off, len - off);
}

int noise_handshake_read_message(struct noise_handshake *hs, const uint8_t *msg, size_t len,
                                 uint8_t *payload, size_t payload_max, size_t *ret_payload_len) {
        _cleanup_(noise_handshake_wipe) struct noise_handshake tmp;
        const struct pattern_info *p = pattern_get(hs->pattern);
        uint8_t scratch[1];
        size_t overhead, plen;
        int r;

        if (!p)
                return -EINVAL;
        if (!is_our_turn(hs, false))
                return -EPROTO;
        overhead = noise_handshake_message_len(hs, 0);
        if (!msg || len < overhead)
                return -EBADMSG;
        plen = len - overhead;
        if (plen > payload_max || (plen > 0 && !payload))
                return -ENOBUFS;

        tmp = *hs;
        r = read_tokens(&tmp, p, msg, len, plen > 0 ? payload : scratch);
        hs->dh_count = tmp.dh_count;
        if (r < 0)
                return r;
        finish_message(&tmp);
        *hs = tmp;
        if (ret_payload_len)
                *ret_payload_len = plen;
        return 0;
}

int noise_handshake_split(const struct noise_handshake *hs,
                          uint8_t ret_send[NOISE_SYMMETRIC_KEY_LEN],
                          uint8_t ret_recv[NOISE_SYMMETRIC_KEY_LEN]) {
        uint8_t k1[NOISE_HASH_LEN], k2[NOISE_HASH_LEN];

        if (!noise_handshake_is_complete(hs))
                return -EPROTO;

        /* Split(): HKDF(ck, zerolen), each output truncated to 32 bytes (section 5.2). */
        noise_hkdf(k1, k2, NULL, hs->ck, NULL, 0);
        memcpy(ret_send, hs->initiator ? k1 : k2, NOISE_SYMMETRIC_KEY_LEN);
        memcpy(ret_recv, hs->initiator ? k2 : k1, NOISE_SYMMETRIC_KEY_LEN);
        sodium_memzero(k1, sizeof(k1));
        sodium_memzero(k2, sizeof(k2));
        return 0;
}

const uint8_t *noise_handshake_hash(const struct noise_handshake *hs) {
        return hs->h;
}

const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs) {
        return hs->has_rs ? hs->rs : NULL;
}

void noise_handshake_set_remote_static_check(struct noise_handshake *hs,
                                             int (*check)(const uint8_t rs[NOISE_PUBLIC_KEY_LEN],
                                                          void *userdata),
                                             void *userdata) {
        hs->check_remote_static = check;
        hs->check_userdata = userdata;
}

void noise_handshake_wipe(struct noise_handshake *hs) {
        if (hs)
                sodium_memzero(hs, sizeof(*hs));
}
