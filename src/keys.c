/* SPDX-License-Identifier: MIT */
#include <sodium.h>

#include "keys.h"

void keys_network_id(const uint8_t *psk, uint8_t out[NETWORK_ID_LEN]) {
        crypto_generichash_state st;

        if (!psk) {
                memset(out, 0, NETWORK_ID_LEN);
                return;
        }
        crypto_generichash_init(&st, NULL, 0, NETWORK_ID_LEN);
        crypto_generichash_update(&st, (const uint8_t *) LABEL_NETWORK_ID,
                                  sizeof(LABEL_NETWORK_ID) - 1);
        crypto_generichash_update(&st, psk, NOISE_PSK_LEN);
        crypto_generichash_final(&st, out, NETWORK_ID_LEN);
        sodium_memzero(&st, sizeof(st));
}
