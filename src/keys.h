/* SPDX-License-Identifier: MIT */
/* Derived key material: the network id that goes into the Noise prologue. */
#pragma once

#include "messages.h"

/* BLAKE2b-128(LABEL_NETWORK_ID || psk); all zeros when psk is NULL. The relay may learn it (it
 * is how peers of one network find each other); it reveals nothing of the psk. */
void keys_network_id(const uint8_t *psk, uint8_t out[NETWORK_ID_LEN]);
