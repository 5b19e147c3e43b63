/* SPDX-License-Identifier: MIT */
/*
 * STUN message codec (RFC 8489), just what ShadowMesh needs: Binding requests and responses
 * with XOR-MAPPED-ADDRESS / MAPPED-ADDRESS, the RFC 5780 attributes OTHER-ADDRESS,
 * RESPONSE-ORIGIN and CHANGE-REQUEST, ERROR-CODE, and MESSAGE-INTEGRITY (HMAC-SHA1) and
 * FINGERPRINT (CRC-32 xor 0x5354554e) both ways. Pure: bytes in, bytes out; no sockets, no
 * clocks, no logging. Checked against RFC 5769's sample messages.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_MAGIC_COOKIE UINT32_C(0x2112A442)
enum {
        STUN_HEADER_LEN = 20,
        STUN_TRANSACTION_ID_LEN = 12,
        STUN_MAX_MESSAGE_LEN = 548, /* RFC 8489 section 6.1: fits any path, no fragmentation */

        STUN_BINDING_REQUEST = 0x0001,
        STUN_BINDING_SUCCESS = 0x0101,
        STUN_BINDING_ERROR = 0x0111,

        STUN_ATTR_MAPPED_ADDRESS = 0x0001,
        STUN_ATTR_CHANGE_REQUEST = 0x0003, /* RFC 5780 */
        STUN_ATTR_USERNAME = 0x0006,
        STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
        STUN_ATTR_ERROR_CODE = 0x0009,
        STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
        STUN_ATTR_REALM = 0x0014,
        STUN_ATTR_NONCE = 0x0015,
        STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
        STUN_ATTR_PADDING = 0x0026,       /* RFC 5780 */
        STUN_ATTR_RESPONSE_PORT = 0x0027, /* RFC 5780 */
        STUN_ATTR_SOFTWARE = 0x8022,
        STUN_ATTR_FINGERPRINT = 0x8028,
        STUN_ATTR_RESPONSE_ORIGIN = 0x802b, /* RFC 5780 */
        STUN_ATTR_OTHER_ADDRESS = 0x802c,   /* RFC 5780 */

        STUN_CHANGE_IP = 0x04,
        STUN_CHANGE_PORT = 0x02,
};

/* Quick test used to demultiplex a UDP port shared with other protocols: the two top bits are
 * zero, the magic cookie is in place and the length field matches len. */
bool stun_is_message(const uint8_t *buf, size_t len);

struct stun_message {
        uint16_t type;
        uint8_t transaction_id[STUN_TRANSACTION_ID_LEN];

        /* XOR-MAPPED-ADDRESS if present, else MAPPED-ADDRESS. */
        bool has_mapped;
        struct sockaddr_storage mapped;
        bool has_other_address;
        struct sockaddr_storage other_address;
        bool has_response_origin;
        struct sockaddr_storage response_origin;
        bool has_change_request;
        uint32_t change_flags;
        bool has_error;
        uint16_t error_code; /* class * 100 + number */

        const uint8_t *username; /* points into the parsed buffer */
        size_t username_len;
        const uint8_t *software;
        size_t software_len;

        /* Offsets of MESSAGE-INTEGRITY and FINGERPRINT in the buffer, 0 when absent. */
        size_t integrity_offset;
        size_t fingerprint_offset;
        bool fingerprint_ok; /* present and correct */
        /* Comprehension-required attributes we do not know (first one), 0 if none. */
        uint16_t unknown_required;
};

/* Parse and check the structure (header, lengths, padding, attribute order rules: nothing but
 * FINGERPRINT after MESSAGE-INTEGRITY, nothing after FINGERPRINT). -EBADMSG on anything
 * malformed. A wrong FINGERPRINT is -EBADMSG too. Pointers in *ret point into buf. */
int stun_parse(const uint8_t *buf, size_t len, struct stun_message *ret);

/* Verify MESSAGE-INTEGRITY with key (short-term: the password; long-term: MD5 of
 * user:realm:pass, computed by the caller). 0 ok, -ENOENT absent, -EBADMSG wrong. Constant time. */
int stun_check_integrity(const uint8_t *buf, size_t len, const struct stun_message *m,
                         const uint8_t *key, size_t keylen);

/* Builders: write into buf (max bytes), return the length or -ENOBUFS. The attribute adders
 * append to a message being built and keep the header length right. */
int stun_build_header(uint8_t *buf, size_t max, uint16_t type,
                      const uint8_t tid[STUN_TRANSACTION_ID_LEN]);
int stun_add_address(uint8_t *buf, size_t len, size_t max, uint16_t attr, const uint8_t *tid,
                     const struct sockaddr *sa, socklen_t salen); /* XOR'ed for XOR-MAPPED-ADDRESS */
int stun_add_u32(uint8_t *buf, size_t len, size_t max, uint16_t attr, uint32_t value);
int stun_add_bytes(uint8_t *buf, size_t len, size_t max, uint16_t attr, const void *data,
                   size_t data_len); /* padded to 4 */
int stun_add_integrity(uint8_t *buf, size_t len, size_t max, const uint8_t *key, size_t keylen);
int stun_add_fingerprint(uint8_t *buf, size_t len, size_t max);

/* Binding request, with CHANGE-REQUEST when change_flags != 0, and FINGERPRINT. */
int stun_build_binding_request(uint8_t *buf, size_t max, const uint8_t tid[STUN_TRANSACTION_ID_LEN],
                               uint32_t change_flags);
/* Binding success response: XOR-MAPPED-ADDRESS = mapped; RESPONSE-ORIGIN and OTHER-ADDRESS
 * when given (RFC 5780 servers); SOFTWARE; FINGERPRINT. */
int stun_build_binding_success(uint8_t *buf, size_t max, const uint8_t tid[STUN_TRANSACTION_ID_LEN],
                               const struct sockaddr *mapped, socklen_t mapped_len,
                               const struct sockaddr *response_origin, socklen_t origin_len,
                               const struct sockaddr *other_address, socklen_t other_len);
/* Binding error response (e.g. 420 Unknown Attribute, 400 Bad Request). */
int stun_build_binding_error(uint8_t *buf, size_t max, const uint8_t tid[STUN_TRANSACTION_ID_LEN],
                             uint16_t code, const char *reason);

/* CRC-32 (ISO-HDLC, as zlib) over data: FINGERPRINT is this xor 0x5354554e. */
uint32_t stun_crc32(const uint8_t *data, size_t len);
