/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the Noise handshake reader with whatever arrives as message 1 (to a responder) or
 * message 2 (to an initiator that sent message 1), in both modes. The first input byte picks
 * the case; the rest is the message. Keys are fixed so the fuzzer can learn valid prefixes.
 * Invariants: no crash, and a read that fails leaves a state that can be wiped.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"

static const uint8_t prologue[] = "ShadowMesh v1 fuzz";

/* The responder's pinned-key check (handshake.c's, in miniature): data[0] bit 2 pins the
 * fuzzer's initiator key, otherwise a key nobody has, so both the refusal before the second DH
 * and the accepting path are explored. */
static int check_pinned(const uint8_t rs[32], void *userdata) {
        return sodium_memcmp(rs, userdata, 32) == 0 ? 0 : -EKEYREJECTED;
}

static void keypair_from_seed(uint8_t seed, uint8_t priv[32], uint8_t pub[32]) {
        memset(priv, seed, 32);
        priv[0] &= 248;
        priv[31] = (priv[31] & 127) | 64;
        crypto_scalarmult_base(pub, priv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool init;
        uint8_t psk[32], s_i[32], S_i[32], s_r[32], S_r[32], e[32], E[32];
        uint8_t buf[256], payload[256];
        struct noise_handshake hs;
        enum noise_pattern pattern;
        size_t n, plen;

        if (!init) {
                if (sodium_init() < 0)
                        abort();
                init = true;
        }
        if (size < 1)
                return 0;
        memset(psk, 0x42, sizeof(psk));
        keypair_from_seed(1, s_i, S_i);
        keypair_from_seed(2, s_r, S_r);
        keypair_from_seed(3, e, E);
        pattern = (data[0] & 1) ? NOISE_PATTERN_IKPSK2 : NOISE_PATTERN_NNPSK0;
        bool ik = pattern == NOISE_PATTERN_IKPSK2;

        if (data[0] & 2) {
                /* Responder reading message 1. */
                static uint8_t nobody[32] = { 0xee };
                if (noise_handshake_init(&hs, pattern, false, prologue, sizeof(prologue),
                                         ik ? s_r : NULL, NULL, psk) < 0)
                        abort();
                if (ik)
                        noise_handshake_set_remote_static_check(&hs, check_pinned,
                                                                (data[0] & 4) ? S_i : nobody);
                int r = noise_handshake_read_message(&hs, data + 1, size - 1, payload,
                                                     sizeof(payload), &plen);
                /* A refused key never gets to the second DH. */
                if (r == -EKEYREJECTED && hs.dh_count > 1)
                        abort();
                if (r >= 0) {
                        /* Accepted: the responder must be able to answer. */
                        if (noise_handshake_write_message(&hs, NULL, 0, buf, sizeof(buf), &n) < 0 &&
                            !ik)
                                abort();
                }
        } else {
                /* Initiator that sent message 1 reading message 2. */
                if (noise_handshake_init(&hs, pattern, true, prologue, sizeof(prologue),
                                         ik ? s_i : NULL, ik ? S_r : NULL, psk) < 0)
                        abort();
                noise_handshake_set_ephemeral(&hs, e);
                if (noise_handshake_write_message(&hs, (const uint8_t *) "ts", 2, buf, sizeof(buf),
                                                  &n) < 0)
                        abort();
                if (noise_handshake_read_message(&hs, data + 1, size - 1, payload,
                                                 sizeof(payload), &plen) >= 0) {
                        uint8_t k1[32], k2[32];
                        if (noise_handshake_split(&hs, k1, k2) < 0)
                                abort();
                }
        }
        noise_handshake_wipe(&hs);
        return 0;
}
