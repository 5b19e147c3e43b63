/* SPDX-License-Identifier: MIT */
/*
 * The Noise Protocol Framework (revision 34), suite 25519_ChaChaPoly_BLAKE2b, for the patterns
 * ShadowMesh uses (NN, NNpsk0, IK, IKpsk2). Pure: bytes in, bytes out; no sockets, no clocks,
 * no globals, no logging. Ephemeral keys come from libsodium's RNG unless a test injects them.
 *
 * Crypto: X25519 (crypto_scalarmult; a -1 return is a failure), ChaCha20-Poly1305 IETF with
 * nonce = 4 zero bytes || 64-bit LE counter, BLAKE2b-512 (unkeyed crypto_generichash) inside
 * HMAC (RFC 2104, block 128) inside HKDF (Noise section 4.3).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "messages.h"

enum noise_pattern {
        NOISE_PATTERN_NN,
        NOISE_PATTERN_NNPSK0,
        NOISE_PATTERN_IK,
        NOISE_PATTERN_IKPSK2,
};

/* Noise HASH/HMAC/HKDF over BLAKE2b-512, exposed for their own vector tests and for cookie.c. */
void noise_hash(uint8_t out[NOISE_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
                size_t blen);
void noise_hmac(uint8_t out[NOISE_HASH_LEN], const uint8_t *key, size_t keylen,
                const uint8_t *data, size_t datalen);
/* HKDF(ck, ikm) with 1..3 outputs of NOISE_HASH_LEN bytes; out2/out3 may be NULL. */
void noise_hkdf(uint8_t out1[NOISE_HASH_LEN], uint8_t out2[NOISE_HASH_LEN],
                uint8_t out3[NOISE_HASH_LEN], const uint8_t ck[NOISE_HASH_LEN],
                const uint8_t *ikm, size_t ikmlen);

/* Transport-phase cipher: ChaCha20-Poly1305 IETF with Noise's nonce layout. out may equal in.
 * Decrypt returns -EBADMSG on a bad tag (out then holds no plaintext). */
void noise_aead_encrypt(uint8_t *out, const uint8_t *in, size_t inlen, const uint8_t *ad,
                        size_t adlen, uint64_t nonce, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]);
int noise_aead_decrypt(uint8_t *out, const uint8_t *in, size_t inlen, const uint8_t *ad,
                       size_t adlen, uint64_t nonce, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]);

/* X25519 key pair from the system RNG (clamped as crypto_box does); public from private. */
void noise_generate_keypair(uint8_t priv[NOISE_PUBLIC_KEY_LEN], uint8_t pub[NOISE_PUBLIC_KEY_LEN]);
int noise_public_from_private(uint8_t pub[NOISE_PUBLIC_KEY_LEN],
                              const uint8_t priv[NOISE_PUBLIC_KEY_LEN]);

struct noise_handshake {
        enum noise_pattern pattern;
        bool initiator;
        unsigned message_index; /* messages written or read so far */

        uint8_t ck[NOISE_HASH_LEN];
        uint8_t h[NOISE_HASH_LEN];
        uint8_t k[NOISE_SYMMETRIC_KEY_LEN];
        bool has_k;
        uint64_t n;

        uint8_t s_priv[NOISE_PUBLIC_KEY_LEN], s_pub[NOISE_PUBLIC_KEY_LEN];
        uint8_t e_priv[NOISE_PUBLIC_KEY_LEN], e_pub[NOISE_PUBLIC_KEY_LEN];
        uint8_t rs[NOISE_PUBLIC_KEY_LEN], re[NOISE_PUBLIC_KEY_LEN];
        uint8_t psk[NOISE_PSK_LEN];
        bool has_s, has_e, has_rs, has_re, has_psk;

        /* Optional: see noise_handshake_set_remote_static_check(). */
        int (*check_remote_static)(const uint8_t rs[NOISE_PUBLIC_KEY_LEN], void *userdata);
        void *check_userdata;
        /* X25519 operations done so far, kept even by a failed read: lets tests prove that a
         * check came before the expensive part. */
        unsigned dh_count;
};

/*
 * Start a handshake. s_priv: the local static private key (required for IK initiator and
 * responder, ignored for NN). rs: the remote static public key (required for the IK initiator;
 * for the IK responder it is learned from message 1). psk: required for the psk patterns.
 * Returns -EINVAL when a required key is missing.
 */
int noise_handshake_init(struct noise_handshake *hs, enum noise_pattern pattern, bool initiator,
                         const uint8_t *prologue, size_t prologue_len,
                         const uint8_t *s_priv, const uint8_t *rs, const uint8_t *psk);

/* Tests only: use this ephemeral private key instead of a random one for the next "e". */
void noise_handshake_set_ephemeral(struct noise_handshake *hs,
                                   const uint8_t e_priv[NOISE_PUBLIC_KEY_LEN]);

/* Call check(rs, userdata) as soon as a read decrypts the remote static key, before any DH
 * that uses it; a negative return fails the read with that error. The IK responder thus
 * refuses a key it does not pin after one X25519 (es) instead of two (es, ss): a stranger who
 * knows our public key (all mac1 needs) costs half as much. Keeps the core pure: the caller
 * owns the policy. */
void noise_handshake_set_remote_static_check(struct noise_handshake *hs,
                                             int (*check)(const uint8_t rs[NOISE_PUBLIC_KEY_LEN],
                                                          void *userdata),
                                             void *userdata);

/* Write the next handshake message with payload. -ENOBUFS if out is too small, -EPROTO when it
 * is not our turn or the handshake is complete, -EINVAL on a DH failure (low-order point). */
int noise_handshake_write_message(struct noise_handshake *hs, const uint8_t *payload,
                                  size_t payload_len, uint8_t *out, size_t out_max,
                                  size_t *ret_len);

/* Read the next handshake message. -EBADMSG on a wrong length or bad tag, -EINVAL on a DH
 * failure, -EPROTO out of turn. On failure the state is unusable: wipe it. */
int noise_handshake_read_message(struct noise_handshake *hs, const uint8_t *msg, size_t len,
                                 uint8_t *payload, size_t payload_max, size_t *ret_payload_len);

/* Exact size of the next message for a payload of payload_len bytes. */
size_t noise_handshake_message_len(const struct noise_handshake *hs, size_t payload_len);

bool noise_handshake_is_complete(const struct noise_handshake *hs);

/* After the last message: the two transport keys. ret_send/ret_recv are from this side's point
 * of view (initiator sends with the first Split() key). -EPROTO when not complete. */
int noise_handshake_split(const struct noise_handshake *hs,
                          uint8_t ret_send[NOISE_SYMMETRIC_KEY_LEN],
                          uint8_t ret_recv[NOISE_SYMMETRIC_KEY_LEN]);

/* Handshake hash h, for channel binding and vector tests. */
const uint8_t *noise_handshake_hash(const struct noise_handshake *hs);
/* The remote static key once known (IK responder after message 1), else NULL. */
const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs);

/* sodium_memzero the whole state. */
void noise_handshake_wipe(struct noise_handshake *hs);
