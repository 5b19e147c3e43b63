/* SPDX-License-Identifier: MIT */
/*
 * Handshake CPU when many peers come up at once (issue: 1,000 peers): N initiators each run a
 * full Noise_IKpsk2 handshake (the identity mode's, with the shared key in the psk slot) with
 * one responder that pins all N public keys. Prints the CPU time of each side per handshake and
 * for all N, and how much of it the X25519 operations are. Only the Noise part is timed: the
 * daemon adds mac1 (one keyed BLAKE2s-like hash), a TAI64N check and a key pair set-up, which
 * cost a small fraction of one X25519. Run: build/bench/bench-handshake [PEERS]
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "noise.h"

struct pinned {
        uint8_t (*keys)[NOISE_PUBLIC_KEY_LEN];
        size_t n;
};

/* The responder's policy: is this static key one of the peers? A linear scan would cost
 * 1,000 x 32-byte compares per initiation; the daemon keeps its peers in a table, so a sorted
 * array with binary search stands for it here. */
static int cmp_key(const void *a, const void *b) {
        return memcmp(a, b, NOISE_PUBLIC_KEY_LEN);
}
static int check_pinned(const uint8_t rs[NOISE_PUBLIC_KEY_LEN], void *userdata) {
        const struct pinned *p = userdata;
        return bsearch(rs, p->keys, p->n, NOISE_PUBLIC_KEY_LEN, cmp_key) ? 0 : -EPERM;
}

static double cpu_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
        static const uint8_t prologue[] = "ShadowMesh v1 bench";
        uint8_t r_priv[32], r_pub[32], psk[32], (*i_priv)[32];
        struct pinned pins;
        struct noise_handshake *ini, resp;
        uint8_t msg1[256], msg2[256], payload[64];
        size_t len1, len2, plen;
        double t_init_write = 0, t_resp = 0, t_init_read = 0, t0, t_dh;
        unsigned dh_resp = 0;

        if (sodium_init() < 0 || n == 0)
                return 1;
        i_priv = malloc(n * sizeof(*i_priv));
        pins.keys = malloc(n * sizeof(*pins.keys));
        ini = malloc(n * sizeof(*ini));
        if (!i_priv || !pins.keys || !ini)
                return 1;
        pins.n = n;
        noise_generate_keypair(r_priv, r_pub);
        randombytes_buf(psk, sizeof(psk));
        for (size_t i = 0; i < n; i++)
                noise_generate_keypair(i_priv[i], pins.keys[i]);
        qsort(pins.keys, n, NOISE_PUBLIC_KEY_LEN, cmp_key);

        /* All N initiations first (they arrive at once), then the responder answers each, then
         * each initiator reads its response. */
        t0 = cpu_seconds();
        for (size_t i = 0; i < n; i++) {
                if (noise_handshake_init(&ini[i], NOISE_PATTERN_IKPSK2, true, prologue,
                                         sizeof(prologue), i_priv[i], r_pub, psk) < 0)
                        return 1;
        }
        t_init_write = cpu_seconds() - t0;
        for (size_t i = 0; i < n; i++) {
                t0 = cpu_seconds();
                if (noise_handshake_write_message(&ini[i], payload, 12, msg1, sizeof(msg1), &len1) < 0)
                        return 1;
                t_init_write += cpu_seconds() - t0;

                t0 = cpu_seconds();
                if (noise_handshake_init(&resp, NOISE_PATTERN_IKPSK2, false, prologue,
                                         sizeof(prologue), r_priv, NULL, psk) < 0)
                        return 1;
                noise_handshake_set_remote_static_check(&resp, check_pinned, &pins);
                if (noise_handshake_read_message(&resp, msg1, len1, payload, sizeof(payload), &plen) < 0 ||
                    noise_handshake_write_message(&resp, NULL, 0, msg2, sizeof(msg2), &len2) < 0)
                        return 1;
                dh_resp += resp.dh_count;
                noise_handshake_wipe(&resp);
                t_resp += cpu_seconds() - t0;

                t0 = cpu_seconds();
                if (noise_handshake_read_message(&ini[i], msg2, len2, payload, sizeof(payload), &plen) < 0 ||
                    !noise_handshake_is_complete(&ini[i]))
                        return 1;
                noise_handshake_wipe(&ini[i]);
                t_init_read += cpu_seconds() - t0;
        }

        /* One X25519 alone, for scale. */
        uint8_t out[32];
        t0 = cpu_seconds();
        for (int i = 0; i < 2000; i++)
                if (crypto_scalarmult(out, r_priv, pins.keys[i % n]) != 0)
                        return 1;
        t_dh = (cpu_seconds() - t0) / 2000;

        printf("peers %zu, Noise_IKpsk2, responder pins all %zu keys\n", n, n);
        printf("responder: %.1f us per handshake (%.2f X25519 each), %.3f s CPU for all %zu\n",
               t_resp / (double) n * 1e6, (double) dh_resp / (double) n, t_resp, n);
        printf("initiators: %.1f us per handshake (write + read), %.3f s CPU for all\n",
               (t_init_write + t_init_read) / (double) n * 1e6, t_init_write + t_init_read);
        printf("one X25519: %.1f us\n", t_dh * 1e6);
        free(ini);
        free(pins.keys);
        free(i_priv);
        return 0;
}
