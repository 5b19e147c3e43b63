/* SPDX-License-Identifier: MIT */
/*
 * mac1/mac2 and cookie replies, WireGuard's denial-of-service defence (paper, 5.4.4 and 5.4.7).
 *
 * mac1 proves the sender knows the responder's key material, so we do no Diffie-Hellman work
 * for strangers. Under load the responder also wants mac2, keyed by a cookie that only the
 * holder of the source address can have received: a cookie reply, sealed to the mac1 of the
 * message it answers so that only the real sender can open it. The cookie secret rotates every
 * COOKIE_SECRET_MAX_AGE seconds; the maker stops using a cookie a little earlier
 * (COOKIE_SECRET_LATENCY) so that it never sends a mac2 the responder already forgot.
 */
#include <netinet/in.h>
#include <sodium.h>

#include "cookie.h"

_Static_assert(COOKIE_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "cookie key");
_Static_assert(COOKIE_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(NOISE_AUTHTAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(COOKIE_LEN >= crypto_generichash_KEYBYTES_MIN, "a cookie keys BLAKE2b");
_Static_assert(NOISE_HASH_LEN <= crypto_generichash_KEYBYTES_MAX, "so does the secret");
_Static_assert(COOKIE_LEN >= crypto_generichash_BYTES_MIN, "mac length");

#define KEY_MATERIAL_LEN 32
#define MACS_LEN sizeof(struct message_macs)

/* HASH(label || key material): BLAKE2b-256. */
static void derive_key(uint8_t out[COOKIE_KEY_LEN], const char label[static 8],
                       const uint8_t key_material[KEY_MATERIAL_LEN]) {
        crypto_generichash_state st;

        crypto_generichash_init(&st, NULL, 0, COOKIE_KEY_LEN);
        crypto_generichash_update(&st, (const uint8_t *) label, 8);
        crypto_generichash_update(&st, key_material, KEY_MATERIAL_LEN);
        crypto_generichash_final(&st, out, COOKIE_KEY_LEN);
        sodium_memzero(&st, sizeof(st));
}

_Static_assert(sizeof(LABEL_MAC1) - 1 == 8 && sizeof(LABEL_COOKIE) - 1 == 8, "labels");

/* mac1 covers the message up to mac1, mac2 up to mac2. Callers guarantee len >= MACS_LEN. */
static void compute_mac1(uint8_t out[COOKIE_LEN], const uint8_t *msg, size_t len,
                         const uint8_t key[COOKIE_KEY_LEN]) {
        crypto_generichash(out, COOKIE_LEN, msg, len - MACS_LEN, key, COOKIE_KEY_LEN);
}

static void compute_mac2(uint8_t out[COOKIE_LEN], const uint8_t *msg, size_t len,
                         const uint8_t cookie[COOKIE_LEN]) {
        crypto_generichash(out, COOKIE_LEN, msg, len - COOKIE_LEN, cookie, COOKIE_LEN);
}

/* now >= birth + age_sec. A clock behind the birth never counts as expiry. */
static bool has_expired(uint64_t birth_ns, uint64_t age_sec, uint64_t now) {
        return now >= birth_ns && now - birth_ns >= age_sec * NSEC_PER_SEC;
}

/* The bytes a cookie is bound to: the address (4 or 16 bytes) then the port, both as on the
 * wire. A v4-mapped IPv6 source is its IPv4 address, so a dual-stack socket and a v4 socket
 * give the same cookie to the same sender. Returns the length, or 0 for any other family. */
static size_t source_bytes(uint8_t out[18], const struct sockaddr *src, socklen_t srclen) {
        if (!src)
                return 0;
        if (src->sa_family == AF_INET && srclen >= (socklen_t) sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) src;

                memcpy(out, &sin->sin_addr, 4);
                memcpy(out + 4, &sin->sin_port, 2);
                return 6;
        }
        if (src->sa_family == AF_INET6 && srclen >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) src;

                if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
                        memcpy(out, sin6->sin6_addr.s6_addr + 12, 4);
                        memcpy(out + 4, &sin6->sin6_port, 2);
                        return 6;
                }
                memcpy(out, sin6->sin6_addr.s6_addr, 16);
                memcpy(out + 16, &sin6->sin6_port, 2);
                return 18;
        }
        return 0;
}

/* cookie = MAC(secret, source), with the secret renewed once it is COOKIE_SECRET_MAX_AGE old.
 * -EAFNOSUPPORT for a source that is neither IPv4 nor IPv6. */
static int make_cookie(struct cookie_checker *c, uint8_t cookie[COOKIE_LEN],
                       const struct sockaddr *src, socklen_t srclen, uint64_t now) {
        uint8_t input[18];
        size_t n = source_bytes(input, src, srclen);

        if (n == 0)
                return -EAFNOSUPPORT;
        if (has_expired(c->secret_birth_ns, COOKIE_SECRET_MAX_AGE, now)) {
                randombytes_buf(c->secret, sizeof(c->secret));
                c->secret_birth_ns = now;
        }
        crypto_generichash(cookie, COOKIE_LEN, input, n, c->secret, sizeof(c->secret));
        return 0;
}

void cookie_checker_init(struct cookie_checker *c, const uint8_t key_material[32]) {
        derive_key(c->mac1_key, LABEL_MAC1, key_material);
        derive_key(c->cookie_encryption_key, LABEL_COOKIE, key_material);
        /* A random secret from the start: the first rotation then happens COOKIE_SECRET_MAX_AGE
         * after clock 0, and no cookie is ever made from a predictable secret. */
        randombytes_buf(c->secret, sizeof(c->secret));
        c->secret_birth_ns = 0;
}

void cookie_maker_init(struct cookie_maker *m, const uint8_t key_material[32]) {
        memset(m, 0, sizeof(*m));
        derive_key(m->mac1_key, LABEL_MAC1, key_material);
        derive_key(m->cookie_encryption_key, LABEL_COOKIE, key_material);
}

enum cookie_mac_state cookie_validate_packet(struct cookie_checker *c, const uint8_t *msg,
                                             size_t len, const struct sockaddr *src,
                                             socklen_t srclen, bool check_cookie, uint64_t now) {
        uint8_t computed[COOKIE_LEN], cookie[COOKIE_LEN];
        enum cookie_mac_state state = COOKIE_INVALID_MAC;

        if (!msg || len < sizeof(struct message_header) + MACS_LEN)
                return COOKIE_INVALID_MAC;

        compute_mac1(computed, msg, len, c->mac1_key);
        if (sodium_memcmp(computed, msg + len - MACS_LEN, COOKIE_LEN) != 0)
                goto out;

        state = COOKIE_VALID_MAC_BUT_NO_COOKIE;
        if (!check_cookie)
                goto out;
        if (make_cookie(c, cookie, src, srclen, now) < 0)
                goto out;
        compute_mac2(computed, msg, len, cookie);
        if (sodium_memcmp(computed, msg + len - COOKIE_LEN, COOKIE_LEN) == 0)
                state = COOKIE_VALID_MAC_WITH_COOKIE;
out:
        sodium_memzero(cookie, sizeof(cookie));
        return state;
}

void cookie_add_mac_to_packet(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now) {
        uint8_t *mac1, *mac2;

        if (!msg || len < sizeof(struct message_header) + MACS_LEN)
                return;
        mac1 = msg + len - MACS_LEN;
        mac2 = msg + len - COOKIE_LEN;

        compute_mac1(mac1, msg, len, m->mac1_key);
        memcpy(m->last_mac1_sent, mac1, COOKIE_LEN);
        m->have_sent_mac1 = true;

        if (m->have_cookie &&
            !has_expired(m->cookie_birth_ns, COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY, now))
                compute_mac2(mac2, msg, len, m->cookie);
        else
                memset(mac2, 0, COOKIE_LEN);
}

void cookie_message_create(struct cookie_checker *c, struct message_handshake_cookie *out,
                           const uint8_t *msg, size_t len, uint32_t receiver_index,
                           const struct sockaddr *src, socklen_t srclen, uint64_t now) {
        uint8_t *raw = (uint8_t *) out;
        uint8_t cookie[COOKIE_LEN] = {0};
        const uint8_t *mac1;

        memset(out, 0, sizeof(*out));
        if (!msg || len < sizeof(struct message_header) + MACS_LEN)
                return; /* all zeros: classified as invalid, answers nothing */
        mac1 = msg + len - MACS_LEN;

        out->header.type = MESSAGE_HANDSHAKE_COOKIE;
        put_le32(raw + offsetof(struct message_handshake_cookie, receiver_index), receiver_index);
        randombytes_buf(out->nonce, sizeof(out->nonce));

        /* For a source we cannot bind a cookie to, the cookie stays zero: the checker never
         * accepts a mac2 from such a source anyway. */
        (void) make_cookie(c, cookie, src, srclen, now);
        crypto_aead_xchacha20poly1305_ietf_encrypt(out->encrypted_cookie, NULL, cookie, COOKIE_LEN,
                                                   mac1, COOKIE_LEN, NULL, out->nonce,
                                                   c->cookie_encryption_key);
        sodium_memzero(cookie, sizeof(cookie));
}

int cookie_message_consume(struct cookie_maker *m, const struct message_handshake_cookie *msg,
                           uint64_t now) {
        uint8_t cookie[COOKIE_LEN];

        if (!m->have_sent_mac1)
                return -ENOENT;
        if (get_le32(msg) != MESSAGE_HANDSHAKE_COOKIE)
                return -EBADMSG;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                    cookie, NULL, NULL, msg->encrypted_cookie, sizeof(msg->encrypted_cookie),
                    m->last_mac1_sent, COOKIE_LEN, msg->nonce, m->cookie_encryption_key) != 0)
                return -EBADMSG;

        memcpy(m->cookie, cookie, COOKIE_LEN);
        m->cookie_birth_ns = now;
        m->have_cookie = true;
        /* One reply per message sent: a second copy of the reply is not a fresh cookie. */
        m->have_sent_mac1 = false;
        sodium_memzero(cookie, sizeof(cookie));
        return 0;
}

void cookie_checker_wipe(struct cookie_checker *c) {
        sodium_memzero(c, sizeof(*c));
}

void cookie_maker_wipe(struct cookie_maker *m) {
        sodium_memzero(m, sizeof(*m));
}
