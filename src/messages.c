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
        default:
                break;
        }
        return MESSAGE_INVALID;
}
