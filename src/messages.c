/* SPDX-License-Identifier: MIT */
#include "messages.h"

enum message_type message_classify(const uint8_t *buf, size_t len) {
        if (!buf || len < sizeof(struct message_header))
                return MESSAGE_INVALID;

        /* One little-endian u32: any non-zero reserved byte makes it an unknown type. */
        switch (get_le32(buf)) {
        case MESSAGE_HANDSHAKE_INITIATION:
                /* Either mode's initiation; the handshake code drops the other mode's. */
                if (len == sizeof(struct message_handshake_initiation) ||
                    len == sizeof(struct message_handshake_initiation_psk))
                        return MESSAGE_HANDSHAKE_INITIATION;
                break;
        case MESSAGE_HANDSHAKE_RESPONSE:
                if (len == sizeof(struct message_handshake_response))
                        return MESSAGE_HANDSHAKE_RESPONSE;
                break;
        case MESSAGE_HANDSHAKE_COOKIE:
                if (len == sizeof(struct message_handshake_cookie))
                        return MESSAGE_HANDSHAKE_COOKIE;
                break;
        case MESSAGE_DATA:
                /* Any ciphertext length from a bare tag (keepalive) up to the largest frame we
                 * could have sealed; padding is the sender's business, the tag proves the rest. */
                if (len >= MESSAGE_DATA_MIN_LEN && len <= (size_t) DATAGRAM_MAX_LEN)
                        return MESSAGE_DATA;
                break;
        case MESSAGE_RELAY_REGISTER:
                /* The 424-byte REGISTER, or one with a want list (identity mode, several
                 * wanted peers: 428 + 32 n bytes, 1 <= n <= RELAY_MAX_WANTS). */
                if (len == sizeof(struct message_relay_register) ||
                    RELAY_REGISTER_WANTS_LEN_OK(len))
                        return MESSAGE_RELAY_REGISTER;
                break;
        case MESSAGE_RELAY_CHALLENGE:
                if (len == sizeof(struct message_relay_challenge))
                        return MESSAGE_RELAY_CHALLENGE;
                break;
        case MESSAGE_RELAY_REGISTERED:
                if (len == sizeof(struct message_relay_registered))
                        return MESSAGE_RELAY_REGISTERED;
                break;
        case MESSAGE_RELAY_PEER:
                if (len == sizeof(struct message_relay_peer))
                        return MESSAGE_RELAY_PEER;
                break;
        case MESSAGE_RELAY_DATA:
                /* Wraps one whole node-to-node message, itself classified on arrival. */
                if (len >= MESSAGE_RELAY_DATA_MIN_LEN && len <= (size_t) RELAYED_DATAGRAM_MAX_LEN)
                        return MESSAGE_RELAY_DATA;
                break;
        case MESSAGE_PATH_PROBE:
        case MESSAGE_PATH_PROBE_REPLY:
                if (len == sizeof(struct message_path_probe))
                        return (enum message_type) get_le32(buf);
                break;
        case MESSAGE_CLOSE:
                if (len == sizeof(struct message_close))
                        return MESSAGE_CLOSE;
                break;
        case MESSAGE_DISCOVERY: /* mesh discovery: 48 + n * 136 bytes */
                if (DISCOVERY_MESSAGE_LEN_OK(len))
                        return MESSAGE_DISCOVERY;
                break;
        default:
                break;
        }
        return MESSAGE_INVALID;
}
