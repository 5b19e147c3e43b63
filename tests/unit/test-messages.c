/* SPDX-License-Identifier: MIT */
/* Wire sizes and message_classify() over exact, short, long and bad-reserved inputs of every
 * type. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "messages.h"
#include "tests.h"

static uint8_t buf[DATAGRAM_MAX_LEN + 64];

static enum message_type classify_as(uint32_t type_word, size_t len) {
        memset(buf, 0x5c, sizeof(buf));
        if (len >= 4)
                put_le32(buf, type_word);
        return message_classify(buf, len);
}

static void test_sizes(void) {
        CHECK_EQ_INT(sizeof(struct message_header), 4);
        CHECK_EQ_INT(sizeof(struct message_macs), 32);
        CHECK_EQ_INT(sizeof(struct message_handshake_initiation), 148);
        CHECK_EQ_INT(sizeof(struct message_handshake_initiation_psk), 100);
        CHECK_EQ_INT(sizeof(struct message_handshake_response), 92);
        CHECK_EQ_INT(sizeof(struct message_handshake_cookie), 64);
        CHECK_EQ_INT(sizeof(struct message_data), 16);
        CHECK_EQ_INT(MESSAGE_DATA_MIN_LEN, 32);
        CHECK_EQ_INT(offsetof(struct message_handshake_initiation, sender_index), 4);
        CHECK_EQ_INT(offsetof(struct message_handshake_initiation, unencrypted_ephemeral), 8);
        CHECK_EQ_INT(offsetof(struct message_handshake_initiation, encrypted_static), 40);
        CHECK_EQ_INT(offsetof(struct message_handshake_initiation, encrypted_timestamp), 88);
        CHECK_EQ_INT(offsetof(struct message_handshake_initiation, macs), 116);
        CHECK_EQ_INT(offsetof(struct message_handshake_initiation_psk, encrypted_timestamp), 40);
        CHECK_EQ_INT(offsetof(struct message_handshake_initiation_psk, macs), 68);
        CHECK_EQ_INT(offsetof(struct message_handshake_response, receiver_index), 8);
        CHECK_EQ_INT(offsetof(struct message_handshake_response, encrypted_nothing), 44);
        CHECK_EQ_INT(offsetof(struct message_handshake_response, macs), 60);
        CHECK_EQ_INT(offsetof(struct message_handshake_cookie, nonce), 8);
        CHECK_EQ_INT(offsetof(struct message_handshake_cookie, encrypted_cookie), 32);
        CHECK_EQ_INT(offsetof(struct message_data, counter), 8);
        CHECK_EQ_INT(FRAME_MAX_LEN, 9018);
        CHECK_EQ_INT(DATAGRAM_MAX_LEN, 16 + 9024 + 16);
        CHECK_EQ_INT(RELAYED_DATAGRAM_MAX_LEN, 16 + 9024 + 16 + 8);
        CHECK_EQ_INT(sizeof(struct message_relay_register), 424);
        CHECK_EQ_INT(offsetof(struct message_relay_register, client_nonce), 296);
        CHECK_EQ_INT(offsetof(struct message_relay_register, network_key), 312);
        CHECK_EQ_INT(offsetof(struct message_relay_register, proof), 344);
        CHECK_EQ_INT(offsetof(struct message_relay_register, signature), 360);
        CHECK_EQ_INT(sizeof(struct relay_want_list), 4);
        CHECK_EQ_INT(RELAY_REGISTER_WANTS_LEN(1), 460);
        CHECK_EQ_INT(RELAY_REGISTER_MAX_LEN, 1196);
        CHECK_EQ_INT(sizeof(struct message_relay_challenge), 68);
        CHECK_EQ_INT(offsetof(struct message_relay_challenge, auth), 52);
        CHECK_EQ_INT(sizeof(struct message_relay_registered), 48);
        CHECK_EQ_INT(offsetof(struct message_relay_registered, auth), 32);
        CHECK_EQ_INT(sizeof(struct message_relay_peer), 240);
        CHECK_EQ_INT(offsetof(struct message_relay_peer, auth), 224);
        CHECK_EQ_INT(sizeof(struct message_path_probe), 40);
}

/* Type t is accepted at exactly the lengths ok() says, over 0 .. DATAGRAM_MAX_LEN + 64. */
static void check_type(uint32_t t, enum message_type want, bool (*ok)(size_t)) {
        unsigned wrong = 0, accepted = 0;

        for (size_t len = 0; len <= sizeof(buf); len++) {
                enum message_type got = classify_as(t, len);
                enum message_type expect = ok(len) ? want : MESSAGE_INVALID;
                if (got != expect) {
                        wrong++;
                        CHECKF(got == expect, "type %u, len %zu: %d", t, len, got);
                }
                accepted += got != MESSAGE_INVALID;
        }
        CHECK_EQ_INT(wrong, 0);
        CHECKF((accepted > 0) == (want != MESSAGE_INVALID), "type %u: accepted %u lengths", t,
               accepted);
        /* Any non-zero reserved byte, at any accepted length, makes it invalid. */
        for (size_t len = 0; len <= sizeof(buf); len++) {
                if (!ok(len))
                        continue;
                for (unsigned byte = 1; byte < 4; byte++) {
                        uint32_t word = t | (UINT32_C(1) << (8 * byte));
                        CHECK_EQ_INT(classify_as(word, len), MESSAGE_INVALID);
                        word = t | (UINT32_C(0x80) << (8 * byte));
                        CHECK_EQ_INT(classify_as(word, len), MESSAGE_INVALID);
                }
        }
}

static bool is_initiation(size_t len) {
        return len == 148 || len == 100;
}
static bool is_response(size_t len) {
        return len == 92;
}
static bool is_cookie(size_t len) {
        return len == 64;
}
static bool is_data(size_t len) {
        return len >= 32 && len <= 9056;
}
static bool is_register(size_t len) {
        /* Or with a want list: 428 + 32 n, 1 <= n <= 24 (messages.h). */
        return len == 424 || (len >= 460 && len <= 1196 && (len - 428) % 32 == 0);
}
static bool is_challenge(size_t len) {
        return len == 68;
}
static bool is_registered(size_t len) {
        return len == 48;
}
static bool is_relay_peer(size_t len) {
        return len == 240;
}
static bool is_relay_data(size_t len) {
        return len >= 12 && len <= 9056 + 8;
}
static bool is_probe(size_t len) {
        return len == 40;
}
/* A discovery chunk: 32 bytes of header and tag, 16 of list header, 0..8 entries of 136. */
static bool is_discovery(size_t len) {
        return len >= 48 && len <= 48 + 8 * 136 && (len - 48) % 136 == 0;
}
static bool never(size_t len) {
        return false;
}

static void test_classify(void) {
        check_type(MESSAGE_HANDSHAKE_INITIATION, MESSAGE_HANDSHAKE_INITIATION, is_initiation);
        check_type(MESSAGE_HANDSHAKE_RESPONSE, MESSAGE_HANDSHAKE_RESPONSE, is_response);
        check_type(MESSAGE_HANDSHAKE_COOKIE, MESSAGE_HANDSHAKE_COOKIE, is_cookie);
        check_type(MESSAGE_DATA, MESSAGE_DATA, is_data);
        check_type(MESSAGE_RELAY_REGISTER, MESSAGE_RELAY_REGISTER, is_register);
        check_type(MESSAGE_RELAY_CHALLENGE, MESSAGE_RELAY_CHALLENGE, is_challenge);
        check_type(MESSAGE_RELAY_REGISTERED, MESSAGE_RELAY_REGISTERED, is_registered);
        check_type(MESSAGE_RELAY_PEER, MESSAGE_RELAY_PEER, is_relay_peer);
        check_type(MESSAGE_RELAY_DATA, MESSAGE_RELAY_DATA, is_relay_data);
        check_type(MESSAGE_PATH_PROBE, MESSAGE_PATH_PROBE, is_probe);
        check_type(MESSAGE_PATH_PROBE_REPLY, MESSAGE_PATH_PROBE_REPLY, is_probe);
        check_type(MESSAGE_CLOSE, MESSAGE_CLOSE, is_probe); /* the closing message: 40 B too */
        check_type(MESSAGE_DISCOVERY, MESSAGE_DISCOVERY, is_discovery);

        /* Unknown types, at the lengths of known ones, are invalid. */
        static const uint32_t unknown[] = {0, 14, 15, 0xff, 0x100, 0x104, 0x01000001, 0xffffffff};
        static const size_t lens[] = {0, 3, 4, 32, 40, 48, 52, 64, 68, 92, 100, 148, 224, 240, 312, 424, 1500, 9056};
        unsigned refused = 0;
        for (size_t i = 0; i < ELEMENTSOF(unknown); i++)
                for (size_t j = 0; j < ELEMENTSOF(lens); j++)
                        refused += classify_as(unknown[i], lens[j]) == MESSAGE_INVALID;
        CHECK_EQ_INT(refused, ELEMENTSOF(unknown) * ELEMENTSOF(lens));
        check_type(0, MESSAGE_INVALID, never);

        /* Fewer than four bytes can never be classified, whatever they hold; and NULL. */
        uint8_t small[3] = {1, 0, 0};
        CHECK_EQ_INT(message_classify(small, 0), MESSAGE_INVALID);
        CHECK_EQ_INT(message_classify(small, 1), MESSAGE_INVALID);
        CHECK_EQ_INT(message_classify(small, 3), MESSAGE_INVALID);
        CHECK_EQ_INT(message_classify(NULL, 148), MESSAGE_INVALID);

        /* The type is the first byte, not a byte further in. */
        memset(buf, 0, sizeof(buf));
        buf[3] = 1;
        CHECK_EQ_INT(message_classify(buf, 148), MESSAGE_INVALID);
        memset(buf, 0, sizeof(buf));
        buf[0] = 4;
        CHECK_EQ_INT(message_classify(buf, 32), MESSAGE_DATA);
        CHECK_EQ_INT(message_classify(buf, 31), MESSAGE_INVALID);
        CHECK_EQ_INT(message_classify(buf, 33), MESSAGE_DATA); /* padding is not enforced */
        CHECK_EQ_INT(message_classify(buf, 9056), MESSAGE_DATA);
        CHECK_EQ_INT(message_classify(buf, 9057), MESSAGE_INVALID);
}

int main(void) {
        test_sizes();
        test_classify();
        return test_summary();
}
