/* SPDX-License-Identifier: MIT */
/* mac1/mac2 and cookie replies: key derivation and mac1 against values from Python's hashlib
 * (an independent BLAKE2b), replies sealed and opened with libsodium directly, the whole cookie
 * exchange for IPv4, IPv6 and v4-mapped sources, and both expiry clocks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cookie.h"
#include "tests.h"

#define T0 (UINT64_C(1000) * NSEC_PER_SEC)
#define SEC NSEC_PER_SEC

static uint8_t km[32], km_other[32];

static struct sockaddr_in v4(const char *addr, uint16_t port) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
                abort();
        return sin;
}

static struct sockaddr_in6 v6(const char *addr, uint16_t port) {
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) != 1)
                abort();
        return sin6;
}

#define SA(x) ((const struct sockaddr *) &(x)), sizeof(x)

static void make_initiation(uint8_t msg[148], unsigned seed) {
        msg[0] = 1;
        msg[1] = msg[2] = msg[3] = 0;
        for (unsigned i = 4; i < 148; i++)
                msg[i] = (uint8_t) (i * 7 + 3 + seed);
}

static void test_keys_and_mac1(void) {
        static const char mac1_key_hex[] =
                "b941bf1b95db7cb783423638ff760265304756babdb2510836584fbfbe257274";
        static const char cookie_key_hex[] =
                "23e183f41d849970577acaafb23f2891bafd92709b873d0ae8d228560c90a648";
        static const char mac1_hex[] = "a2b8f24e6fa5ce8636b922e9d622276d";
        struct cookie_checker c;
        struct cookie_maker m;
        uint8_t msg[148], zero[16] = {0};
        size_t n;
        uint8_t *k1 = test_unhex(mac1_key_hex, &n), *kc = test_unhex(cookie_key_hex, &n),
                *mac1 = test_unhex(mac1_hex, &n);

        cookie_checker_init(&c, km);
        cookie_maker_init(&m, km);
        CHECK_MEM(c.mac1_key, k1, 32);
        CHECK_MEM(c.cookie_encryption_key, kc, 32);
        CHECK_MEM(m.mac1_key, k1, 32);
        CHECK_MEM(m.cookie_encryption_key, kc, 32);
        CHECK(!m.have_cookie && !m.have_sent_mac1);

        make_initiation(msg, 0);
        cookie_add_mac_to_packet(&m, msg, sizeof(msg), T0);
        CHECK_MEM(msg + 116, mac1, 16);
        CHECK_MEM(msg + 132, zero, 16); /* no cookie yet: mac2 is zero */
        CHECK_MEM(m.last_mac1_sent, mac1, 16);
        CHECK(m.have_sent_mac1);
        /* The bytes before the macs are not touched. */
        uint8_t orig[148];
        make_initiation(orig, 0);
        CHECK_MEM(msg, orig, 116);

        struct sockaddr_in src = v4("192.0.2.1", 9001);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), false, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), true, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);

        /* Any changed byte up to mac1, or mac1 itself, invalidates; mac2 does not count. */
        unsigned invalid = 0, still_valid = 0;
        for (unsigned i = 0; i < 148; i++) {
                uint8_t copy[148];
                memcpy(copy, msg, 148);
                copy[i] ^= 0x20;
                enum cookie_mac_state s = cookie_validate_packet(&c, copy, 148, SA(src), true, T0);
                if (i < 132)
                        invalid += s == COOKIE_INVALID_MAC;
                else
                        still_valid += s == COOKIE_VALID_MAC_BUT_NO_COOKIE;
        }
        CHECK_EQ_INT(invalid, 132);
        CHECK_EQ_INT(still_valid, 16);

        /* A maker holding other key material makes a mac1 the checker refuses, and the other
         * way round. */
        struct cookie_maker m2;
        struct cookie_checker c2;
        uint8_t msg2[148];
        cookie_maker_init(&m2, km_other);
        cookie_checker_init(&c2, km_other);
        make_initiation(msg2, 0);
        cookie_add_mac_to_packet(&m2, msg2, 148, T0);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg2, 148, SA(src), false, T0), COOKIE_INVALID_MAC);
        CHECK_EQ_INT(cookie_validate_packet(&c2, msg, 148, SA(src), false, T0), COOKIE_INVALID_MAC);
        CHECK_EQ_INT(cookie_validate_packet(&c2, msg2, 148, SA(src), false, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);

        /* Other message sizes: mac1 always covers everything before the last 32 bytes. */
        uint8_t resp[92] = {2}, psk[100] = {1};
        cookie_add_mac_to_packet(&m, resp, sizeof(resp), T0);
        cookie_add_mac_to_packet(&m, psk, sizeof(psk), T0);
        uint8_t expect[16];
        crypto_generichash(expect, 16, resp, 60, k1, 32);
        CHECK_MEM(resp + 60, expect, 16);
        crypto_generichash(expect, 16, psk, 68, k1, 32);
        CHECK_MEM(psk + 68, expect, 16);
        CHECK_MEM(m.last_mac1_sent, expect, 16);
        CHECK_EQ_INT(cookie_validate_packet(&c, resp, 92, SA(src), false, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, psk, 100, SA(src), false, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        /* Truncation: a valid message cut short is invalid; too short for macs at all too. */
        CHECK_EQ_INT(cookie_validate_packet(&c, psk, 99, SA(src), false, T0), COOKIE_INVALID_MAC);
        CHECK_EQ_INT(cookie_validate_packet(&c, psk, 35, SA(src), false, T0), COOKIE_INVALID_MAC);
        CHECK_EQ_INT(cookie_validate_packet(&c, psk, 0, SA(src), false, T0), COOKIE_INVALID_MAC);

        cookie_checker_wipe(&c);
        cookie_maker_wipe(&m);
        uint8_t zeros[sizeof(c) > sizeof(m) ? sizeof(c) : sizeof(m)];
        memset(zeros, 0, sizeof(zeros));
        CHECK_MEM(&c, zeros, sizeof(c));
        CHECK_MEM(&m, zeros, sizeof(m));
        cookie_checker_wipe(&c2);
        cookie_maker_wipe(&m2);
        free(k1);
        free(kc);
        free(mac1);
}

/* Open a reply with libsodium directly and compare its cookie with MAC(secret, address bytes ||
 * port bytes) computed here. */
static void check_reply_contents(const struct cookie_checker *c,
                                 const struct message_handshake_cookie *r, const uint8_t mac1[16],
                                 const uint8_t *addr, size_t addr_len, uint16_t port) {
        uint8_t cookie[16], expect[16], input[18];

        memcpy(input, addr, addr_len);
        input[addr_len] = (uint8_t) (port >> 8);
        input[addr_len + 1] = (uint8_t) port;
        crypto_generichash(expect, 16, input, addr_len + 2, c->secret, sizeof(c->secret));
        CHECK_EQ_INT(crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL,
                                                                r->encrypted_cookie, 32, mac1, 16,
                                                                r->nonce, c->cookie_encryption_key),
                     0);
        CHECK_MEM(cookie, expect, 16);
}

static void test_round_trip_v4(void) {
        struct cookie_checker c;
        struct cookie_maker m;
        struct message_handshake_cookie reply, reply2;
        uint8_t msg[148], later[148], zero[16] = {0};
        struct sockaddr_in src = v4("192.0.2.1", 9001), other_addr = v4("192.0.2.2", 9001),
                           other_port = v4("192.0.2.1", 9002);
        struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1", 9001);

        cookie_checker_init(&c, km);
        cookie_maker_init(&m, km);
        /* Nothing sent yet: no reply can be for us. */
        memset(&reply, 0, sizeof(reply));
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0), -ENOENT);

        make_initiation(msg, 1);
        cookie_add_mac_to_packet(&m, msg, 148, T0);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), true, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        cookie_message_create(&c, &reply, msg, 148, 0xdeadbeef, SA(src), T0);
        CHECK_EQ_INT(message_classify((const uint8_t *) &reply, sizeof(reply)),
                     MESSAGE_HANDSHAKE_COOKIE);
        CHECK_MEM(&reply, "\x03\x00\x00\x00\xef\xbe\xad\xde", 8);
        CHECK_EQ_INT(c.secret_birth_ns, T0); /* first use at T0 renewed the initial secret */
        check_reply_contents(&c, &reply, msg + 116, (const uint8_t *) "\xc0\x00\x02\x01", 4, 9001);
        /* Random nonces: two replies differ. */
        cookie_message_create(&c, &reply2, msg, 148, 0xdeadbeef, SA(src), T0);
        CHECK(memcmp(reply.nonce, reply2.nonce, 24) != 0);

        /* A tampered reply is refused and leaves the maker waiting for the real one. */
        for (size_t i = 0; i < 56; i++) {
                struct message_handshake_cookie bad = reply;
                ((uint8_t *) &bad)[8 + i] ^= 1;
                CHECK_EQ_INT(cookie_message_consume(&m, &bad, T0), -EBADMSG);
        }
        struct message_handshake_cookie bad_type = reply;
        bad_type.header.type = 2;
        CHECK_EQ_INT(cookie_message_consume(&m, &bad_type, T0), -EBADMSG);
        CHECK(!m.have_cookie);

        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0 + SEC), 0);
        CHECK(m.have_cookie);
        CHECK_EQ_INT(m.cookie_birth_ns, T0 + SEC);
        /* One cookie per message sent: the second copy finds nothing to answer. */
        CHECK_EQ_INT(cookie_message_consume(&m, &reply2, T0 + SEC), -ENOENT);

        make_initiation(later, 2);
        cookie_add_mac_to_packet(&m, later, 148, T0 + 2 * SEC);
        CHECK(memcmp(later + 132, zero, 16) != 0);
        uint8_t expect[16];
        crypto_generichash(expect, 16, later, 132, m.cookie, 16);
        CHECK_MEM(later + 132, expect, 16);
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(src), true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(src), false, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(mapped), true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(other_addr), true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(other_port), true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        /* A bad mac2 is "no cookie"; a bad mac1 is invalid whatever mac2 says. */
        later[140] ^= 1;
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(src), true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        later[140] ^= 1;
        later[120] ^= 1;
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(src), true, T0 + 2 * SEC),
                     COOKIE_INVALID_MAC);
        later[120] ^= 1;

        /* Source families we cannot bind a cookie to, or cut-short sockaddrs. */
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, SA(un), true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, (const struct sockaddr *) &src,
                                            sizeof(src) - 1, true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, later, 148, NULL, 0, true, T0 + 2 * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);

        /* A reply sealed to another mac1 (a message we did not send last) is refused. */
        uint8_t first[148], second[148];
        make_initiation(first, 3);
        make_initiation(second, 4);
        cookie_add_mac_to_packet(&m, first, 148, T0 + 3 * SEC);
        cookie_add_mac_to_packet(&m, second, 148, T0 + 3 * SEC);
        cookie_message_create(&c, &reply, first, 148, 1, SA(src), T0 + 3 * SEC);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0 + 3 * SEC), -EBADMSG);
        cookie_message_create(&c, &reply, second, 148, 1, SA(src), T0 + 3 * SEC);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0 + 3 * SEC), 0);
        /* A reply from a checker with other key material is refused. */
        struct cookie_checker c2;
        cookie_checker_init(&c2, km_other);
        cookie_add_mac_to_packet(&m, first, 148, T0 + 3 * SEC);
        cookie_message_create(&c2, &reply, first, 148, 1, SA(src), T0 + 3 * SEC);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0 + 3 * SEC), -EBADMSG);

        /* A reply sealed here with libsodium, to the last mac1, gives the maker that cookie. */
        static const uint8_t chosen[16] = "chosen cookie!!";
        uint8_t nonce[24];
        memset(nonce, 0x42, sizeof(nonce));
        memset(&reply, 0, sizeof(reply));
        reply.header.type = 3;
        memcpy(reply.nonce, nonce, 24);
        crypto_aead_xchacha20poly1305_ietf_encrypt(reply.encrypted_cookie, NULL, chosen, 16,
                                                   first + 116, 16, NULL, nonce,
                                                   c.cookie_encryption_key);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0 + 4 * SEC), 0);
        CHECK_MEM(m.cookie, chosen, 16);

        /* A message too short to carry macs gets an all-zero (invalid) reply. */
        cookie_message_create(&c, &reply, msg, 20, 7, SA(src), T0);
        CHECK_EQ_INT(message_classify((const uint8_t *) &reply, sizeof(reply)), MESSAGE_INVALID);

        cookie_checker_wipe(&c);
        cookie_checker_wipe(&c2);
        cookie_maker_wipe(&m);
}

static void test_round_trip_v6(void) {
        struct cookie_checker c;
        struct cookie_maker m;
        struct message_handshake_cookie reply;
        uint8_t msg[92] = {2};
        struct sockaddr_in6 src = v6("2001:db8::1", 9001), other = v6("2001:db8::2", 9001),
                            other_port = v6("2001:db8::1", 1);
        struct sockaddr_in as_v4 = v4("0.0.0.0", 9001);
        uint8_t addr[16];

        cookie_checker_init(&c, km);
        cookie_maker_init(&m, km);
        cookie_add_mac_to_packet(&m, msg, sizeof(msg), T0);
        cookie_message_create(&c, &reply, msg, sizeof(msg), 5, SA(src), T0);
        inet_pton(AF_INET6, "2001:db8::1", addr);
        check_reply_contents(&c, &reply, msg + 60, addr, 16, 9001);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0), 0);
        cookie_add_mac_to_packet(&m, msg, sizeof(msg), T0);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 92, SA(src), true, T0),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 92, SA(other), true, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 92, SA(other_port), true, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 92, SA(as_v4), true, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);

        /* The v4-mapped form of an IPv4 sender and its plain form share a cookie. */
        struct sockaddr_in plain = v4("198.51.100.7", 40000);
        struct sockaddr_in6 mapped = v6("::ffff:198.51.100.7", 40000);
        cookie_add_mac_to_packet(&m, msg, sizeof(msg), T0);
        cookie_message_create(&c, &reply, msg, sizeof(msg), 5, SA(mapped), T0);
        check_reply_contents(&c, &reply, msg + 60, (const uint8_t *) "\xc6\x33\x64\x07", 4, 40000);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0), 0);
        cookie_add_mac_to_packet(&m, msg, sizeof(msg), T0);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 92, SA(plain), true, T0),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 92, SA(mapped), true, T0),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 92, SA(src), true, T0),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        cookie_checker_wipe(&c);
        cookie_maker_wipe(&m);
}

static void test_expiry(void) {
        struct cookie_checker c;
        struct cookie_maker m;
        struct message_handshake_cookie reply;
        uint8_t msg[148], zero[16] = {0};
        struct sockaddr_in src = v4("203.0.113.42", 9001);
        const uint64_t maker_life =
                (uint64_t) (COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY) * SEC;

        cookie_checker_init(&c, km);
        cookie_maker_init(&m, km);
        make_initiation(msg, 9);
        cookie_add_mac_to_packet(&m, msg, 148, T0);
        cookie_message_create(&c, &reply, msg, 148, 1, SA(src), T0);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, T0), 0);

        /* The maker uses its cookie for COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY. */
        cookie_add_mac_to_packet(&m, msg, 148, T0 + maker_life - 1);
        CHECK(memcmp(msg + 132, zero, 16) != 0);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), true, T0 + maker_life - 1),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        cookie_add_mac_to_packet(&m, msg, 148, T0 + maker_life);
        CHECK_MEM(msg + 132, zero, 16);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), true, T0 + maker_life),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);

        /* The checker renews its secret after COOKIE_SECRET_MAX_AGE: a mac2 from a cookie
         * it gave out before is then worthless, even if the maker still sends it. */
        cookie_add_mac_to_packet(&m, msg, 148, T0 + maker_life - 1);
        uint8_t old_secret[sizeof(c.secret)];
        memcpy(old_secret, c.secret, sizeof(old_secret));
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), true,
                                            T0 + (uint64_t) COOKIE_SECRET_MAX_AGE * SEC - 1),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        CHECK_MEM(c.secret, old_secret, sizeof(old_secret));
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), true,
                                            T0 + (uint64_t) COOKIE_SECRET_MAX_AGE * SEC),
                     COOKIE_VALID_MAC_BUT_NO_COOKIE);
        CHECK(memcmp(c.secret, old_secret, sizeof(old_secret)) != 0);
        CHECK_EQ_INT(c.secret_birth_ns, T0 + (uint64_t) COOKIE_SECRET_MAX_AGE * SEC);

        /* A fresh cookie from the new secret works again. */
        const uint64_t t1 = T0 + (uint64_t) COOKIE_SECRET_MAX_AGE * SEC + SEC;
        cookie_message_create(&c, &reply, msg, 148, 1, SA(src), t1);
        CHECK_EQ_INT(cookie_message_consume(&m, &reply, t1), 0);
        cookie_add_mac_to_packet(&m, msg, 148, t1);
        CHECK_EQ_INT(cookie_validate_packet(&c, msg, 148, SA(src), true, t1),
                     COOKIE_VALID_MAC_WITH_COOKIE);
        cookie_checker_wipe(&c);
        cookie_maker_wipe(&m);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        for (unsigned i = 0; i < 32; i++) {
                km[i] = (uint8_t) i;
                km_other[i] = (uint8_t) (i + 1);
        }
        test_keys_and_mac1();
        test_round_trip_v4();
        test_round_trip_v6();
        test_expiry();
        return test_summary();
}
