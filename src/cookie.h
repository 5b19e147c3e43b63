/* SPDX-License-Identifier: MIT */
/*
 * mac1, mac2 and cookie replies (WireGuard's DoS defence, section 5.4.4 and 5.4.7 of its paper)
 * over BLAKE2b and XChaCha20-Poly1305.
 *
 *   mac1 = MAC(HASH(LABEL_MAC1 || K), msg up to mac1)      K: responder's static public key in
 *   mac2 = MAC(cookie, msg up to mac2)                        identity mode, the psk in shared-key
 *   cookie = MAC(secret, source address || port)              mode (a non-member cannot make us
 *   reply = XAEAD(HASH(LABEL_COOKIE || K), nonce, cookie, aad=mac1)   do DH work)
 *
 * MAC is keyed BLAKE2b with a 16-byte output; HASH is BLAKE2b-256. Pure except the random
 * nonce and secret; the clock is passed in.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "messages.h"

struct cookie_checker {
        uint8_t secret[NOISE_HASH_LEN];
        uint64_t secret_birth_ns;
        uint8_t mac1_key[COOKIE_KEY_LEN];
        uint8_t cookie_encryption_key[COOKIE_KEY_LEN];
};

struct cookie_maker {
        uint8_t mac1_key[COOKIE_KEY_LEN];
        uint8_t cookie_encryption_key[COOKIE_KEY_LEN];
        uint8_t cookie[COOKIE_LEN];
        uint64_t cookie_birth_ns;
        bool have_cookie;
        uint8_t last_mac1_sent[COOKIE_LEN];
        bool have_sent_mac1;
};

enum cookie_mac_state {
        COOKIE_INVALID_MAC,
        COOKIE_VALID_MAC_BUT_NO_COOKIE,
        COOKIE_VALID_MAC_WITH_COOKIE,
};

/* key_material: our static public key (identity mode) or the psk (shared-key mode). */
void cookie_checker_init(struct cookie_checker *c, const uint8_t key_material[32]);
/* key_material of the remote: its static public key, or the psk. */
void cookie_maker_init(struct cookie_maker *m, const uint8_t key_material[32]);

/* Check mac1 (and mac2 when check_cookie) of a handshake message of len bytes whose last
 * sizeof(struct message_macs) bytes are the macs. src: where it came from. */
enum cookie_mac_state cookie_validate_packet(struct cookie_checker *c, const uint8_t *msg,
                                             size_t len, const struct sockaddr *src,
                                             socklen_t srclen, bool check_cookie, uint64_t now);

/* Fill mac1 (and mac2 when a cookie younger than COOKIE_SECRET_MAX_AGE - LATENCY is held). */
void cookie_add_mac_to_packet(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now);

/* Build a cookie reply to msg (a handshake message we will not process now). */
void cookie_message_create(struct cookie_checker *c, struct message_handshake_cookie *out,
                           const uint8_t *msg, size_t len, uint32_t receiver_index,
                           const struct sockaddr *src, socklen_t srclen, uint64_t now);

/* Take a cookie from a reply to our last message. -EBADMSG on a bad tag, -ENOENT when we sent
 * no message it could answer. */
int cookie_message_consume(struct cookie_maker *m, const struct message_handshake_cookie *msg,
                           uint64_t now);

void cookie_checker_wipe(struct cookie_checker *c);
void cookie_maker_wipe(struct cookie_maker *m);
