/* SPDX-License-Identifier: MIT */
/*
 * STUN codec (RFC 8489) for Binding transactions, with the RFC 5780 attributes and RFC 5389's
 * MAPPED-ADDRESS fallback. The parser is total: every read is bounds-checked against the
 * message length field, which itself must match the datagram. Section numbers below are RFC
 * 8489's unless named otherwise.
 */
#include <netinet/in.h>
#include <nettle/hmac.h>
#include <sodium.h>
#include <string.h>

#include "build-config.h"
#include "stun.h"
#include "util.h"

enum {
        ATTR_HEADER_LEN = 4,
        INTEGRITY_LEN = 20, /* HMAC-SHA1, section 14.5 */
        INTEGRITY_ATTR_LEN = ATTR_HEADER_LEN + INTEGRITY_LEN,
        FINGERPRINT_ATTR_LEN = ATTR_HEADER_LEN + 4,
        /* Section 14.6: may sit between MESSAGE-INTEGRITY and FINGERPRINT. We neither send nor
         * check it, but a message carrying it is well-formed. */
        ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
        /* RFC 3489's SOURCE-ADDRESS and CHANGED-ADDRESS: reserved by RFC 8489, but servers that
         * also serve RFC 3489 clients may still send them. Understood and ignored, so they do
         * not make a response "unknown comprehension-required". */
        ATTR_LEGACY_SOURCE_ADDRESS = 0x0004,
        ATTR_LEGACY_CHANGED_ADDRESS = 0x0005,
        ADDRESS_FAMILY_IPV4 = 0x01,
        ADDRESS_FAMILY_IPV6 = 0x02,
        /* Section 14.8: the reason phrase is fewer than 128 characters, at most 509 bytes when
         * we encode it (763 is the bound when decoding). */
        ERROR_REASON_MAX = 509,
};

#define FINGERPRINT_XOR UINT32_C(0x5354554e)
#define SOFTWARE_NAME "ShadowMesh " PACKAGE_VERSION

/* Reflected CRC-32 (polynomial 0xEDB88320) one nibble at a time: a 64-byte table is plenty for
 * messages of at most a few hundred bytes. */
static const uint32_t crc32_nibble[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
};

uint32_t stun_crc32(const uint8_t *data, size_t len) {
        uint32_t crc = UINT32_C(0xFFFFFFFF);

        for (size_t i = 0; i < len; i++) {
                crc ^= data[i];
                crc = (crc >> 4) ^ crc32_nibble[crc & 0x0F];
                crc = (crc >> 4) ^ crc32_nibble[crc & 0x0F];
        }
        return crc ^ UINT32_C(0xFFFFFFFF);
}

bool stun_is_message(const uint8_t *buf, size_t len) {
        if (!buf || len < STUN_HEADER_LEN)
                return false;
        /* Section 5: the two most significant bits are zero, the cookie is fixed, and the
         * length counts the attributes, which are 4-aligned. */
        return (buf[0] & 0xC0) == 0 && get_be32(buf + 4) == STUN_MAGIC_COOKIE &&
               (size_t) get_be16(buf + 2) + STUN_HEADER_LEN == len && len % 4 == 0;
}

/* Decode a (XOR-)MAPPED-ADDRESS-style value (section 14.1/14.2). */
static int parse_address(const uint8_t *v, size_t vlen, bool xored, const uint8_t *header,
                         struct sockaddr_storage *ret) {
        struct sockaddr_storage ss = {};
        uint16_t port;

        if (vlen < 4)
                return -EBADMSG;
        port = get_be16(v + 2);
        if (xored)
                port ^= (uint16_t) (STUN_MAGIC_COOKIE >> 16);

        switch (v[1]) {
        case ADDRESS_FAMILY_IPV4: {
                struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
                uint8_t a[4];

                if (vlen != 8)
                        return -EBADMSG;
                for (size_t i = 0; i < 4; i++)
                        a[i] = v[4 + i] ^ (xored ? header[4 + i] : 0);
                sin->sin_family = AF_INET;
                sin->sin_port = htons(port);
                memcpy(&sin->sin_addr, a, 4);
                break;
        }
        case ADDRESS_FAMILY_IPV6: {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
                uint8_t a[16];

                if (vlen != 20)
                        return -EBADMSG;
                /* header[4..20) is the cookie followed by the transaction id. */
                for (size_t i = 0; i < 16; i++)
                        a[i] = v[4 + i] ^ (xored ? header[4 + i] : 0);
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(port);
                memcpy(&sin6->sin6_addr, a, 16);
                break;
        }
        default:
                return -EBADMSG;
        }
        *ret = ss;
        return 0;
}

static bool attribute_understood(uint16_t type) {
        switch (type) {
        case STUN_ATTR_MAPPED_ADDRESS:
        case STUN_ATTR_CHANGE_REQUEST:
        case STUN_ATTR_USERNAME:
        case STUN_ATTR_MESSAGE_INTEGRITY:
        case STUN_ATTR_ERROR_CODE:
        case STUN_ATTR_UNKNOWN_ATTRIBUTES:
        case STUN_ATTR_REALM:
        case STUN_ATTR_NONCE:
        case STUN_ATTR_XOR_MAPPED_ADDRESS:
        case STUN_ATTR_PADDING:
        case STUN_ATTR_RESPONSE_PORT:
        case ATTR_MESSAGE_INTEGRITY_SHA256:
        case ATTR_LEGACY_SOURCE_ADDRESS:
        case ATTR_LEGACY_CHANGED_ADDRESS:
                return true;
        default:
                return false;
        }
}

int stun_parse(const uint8_t *buf, size_t len, struct stun_message *ret) {
        struct stun_message m = {};
        struct sockaddr_storage plain_mapped = {};
        bool has_xor_mapped = false, has_plain_mapped = false, has_integrity_sha256 = false;
        size_t pos;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (!stun_is_message(buf, len))
                return -EBADMSG;

        m.type = get_be16(buf);
        memcpy(m.transaction_id, buf + 8, STUN_TRANSACTION_ID_LEN);

        for (pos = STUN_HEADER_LEN; pos < len;) {
                uint16_t type, vlen;
                size_t padded;
                const uint8_t *v;

                if (len - pos < ATTR_HEADER_LEN)
                        return -EBADMSG;
                type = get_be16(buf + pos);
                vlen = get_be16(buf + pos + 2);
                padded = ALIGN_TO((size_t) vlen, 4);
                if (len - pos - ATTR_HEADER_LEN < padded)
                        return -EBADMSG;
                v = buf + pos + ATTR_HEADER_LEN;

                /* Section 14.7: FINGERPRINT is the last attribute. Section 14.5: after
                 * MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may follow. */
                if (m.fingerprint_offset)
                        return -EBADMSG;
                if (m.integrity_offset && type != STUN_ATTR_FINGERPRINT &&
                    (type != ATTR_MESSAGE_INTEGRITY_SHA256 || has_integrity_sha256))
                        return -EBADMSG;
                if (has_integrity_sha256 && type != STUN_ATTR_FINGERPRINT)
                        return -EBADMSG;

                switch (type) {
                case STUN_ATTR_XOR_MAPPED_ADDRESS:
                        /* Section 14: only the first occurrence of an attribute counts. */
                        if (!has_xor_mapped) {
                                r = parse_address(v, vlen, true, buf, &m.mapped);
                                if (r < 0)
                                        return r;
                                has_xor_mapped = true;
                        }
                        break;
                case STUN_ATTR_MAPPED_ADDRESS:
                        if (!has_plain_mapped) {
                                r = parse_address(v, vlen, false, buf, &plain_mapped);
                                if (r < 0)
                                        return r;
                                has_plain_mapped = true;
                        }
                        break;
                case STUN_ATTR_OTHER_ADDRESS:
                        if (!m.has_other_address) {
                                r = parse_address(v, vlen, false, buf, &m.other_address);
                                if (r < 0)
                                        return r;
                                m.has_other_address = true;
                        }
                        break;
                case STUN_ATTR_RESPONSE_ORIGIN:
                        if (!m.has_response_origin) {
                                r = parse_address(v, vlen, false, buf, &m.response_origin);
                                if (r < 0)
                                        return r;
                                m.has_response_origin = true;
                        }
                        break;
                case STUN_ATTR_CHANGE_REQUEST:
                        if (vlen != 4)
                                return -EBADMSG;
                        if (!m.has_change_request) {
                                m.change_flags = get_be32(v);
                                m.has_change_request = true;
                        }
                        break;
                case STUN_ATTR_ERROR_CODE: {
                        unsigned cls, number;

                        /* Section 14.8: 21 reserved bits, class 3..6, number 0..99. */
                        if (vlen < 4)
                                return -EBADMSG;
                        cls = v[2] & 0x07;
                        number = v[3];
                        if (cls < 3 || cls > 6 || number > 99)
                                return -EBADMSG;
                        if (!m.has_error) {
                                m.error_code = (uint16_t) (cls * 100 + number);
                                m.has_error = true;
                        }
                        break;
                }
                case STUN_ATTR_USERNAME:
                        if (!m.username) {
                                m.username = v;
                                m.username_len = vlen;
                        }
                        break;
                case STUN_ATTR_SOFTWARE:
                        if (!m.software) {
                                m.software = v;
                                m.software_len = vlen;
                        }
                        break;
                case STUN_ATTR_MESSAGE_INTEGRITY:
                        if (vlen != INTEGRITY_LEN)
                                return -EBADMSG;
                        m.integrity_offset = pos;
                        break;
                case ATTR_MESSAGE_INTEGRITY_SHA256:
                        /* Section 14.6: 16 to 32 bytes, a multiple of 4. */
                        if (vlen < 16 || vlen > 32 || vlen % 4)
                                return -EBADMSG;
                        has_integrity_sha256 = true;
                        break;
                case STUN_ATTR_FINGERPRINT:
                        if (vlen != 4)
                                return -EBADMSG;
                        /* The length field already ends after FINGERPRINT when it is last,
                         * which the check at the top of the loop enforces on any follower. */
                        if ((stun_crc32(buf, pos) ^ FINGERPRINT_XOR) != get_be32(v))
                                return -EBADMSG;
                        m.fingerprint_offset = pos;
                        m.fingerprint_ok = true;
                        break;
                default:
                        /* Section 14: 0x0000-0x7FFF are comprehension-required. */
                        if (type < 0x8000 && !attribute_understood(type) && !m.unknown_required)
                                m.unknown_required = type;
                        break;
                }
                pos += ATTR_HEADER_LEN + padded;
        }

        /* RFC 5389 compatibility: old servers send only MAPPED-ADDRESS. */
        if (has_xor_mapped)
                m.has_mapped = true;
        else if (has_plain_mapped) {
                m.mapped = plain_mapped;
                m.has_mapped = true;
        }

        *ret = m;
        return 0;
}

/* HMAC-SHA1 over the message up to offset `end` (where MESSAGE-INTEGRITY starts), with the
 * header's length field pretending the message ends right after MESSAGE-INTEGRITY (14.5). */
static void integrity_compute(const uint8_t *buf, size_t end, const uint8_t *key, size_t keylen,
                              uint8_t digest[INTEGRITY_LEN]) {
        struct hmac_sha1_ctx ctx;
        uint8_t header[STUN_HEADER_LEN];

        memcpy(header, buf, STUN_HEADER_LEN);
        put_be16(header + 2, (uint16_t) (end + INTEGRITY_ATTR_LEN - STUN_HEADER_LEN));

        hmac_sha1_set_key(&ctx, keylen, key);
        hmac_sha1_update(&ctx, STUN_HEADER_LEN, header);
        hmac_sha1_update(&ctx, end - STUN_HEADER_LEN, buf + STUN_HEADER_LEN);
        hmac_sha1_digest(&ctx, INTEGRITY_LEN, digest);
        /* The context holds the keyed inner and outer states. */
        sodium_memzero(&ctx, sizeof(ctx));
}

int stun_check_integrity(const uint8_t *buf, size_t len, const struct stun_message *m,
                         const uint8_t *key, size_t keylen) {
        uint8_t digest[INTEGRITY_LEN];
        size_t off;
        int r;

        if (!buf || !m || (!key && keylen > 0))
                return -EINVAL;
        off = m->integrity_offset;
        if (off == 0)
                return -ENOENT;
        /* m is meant to come from stun_parse(buf, len); do not trust it blindly. */
        if (off < STUN_HEADER_LEN || off > len || len - off < INTEGRITY_ATTR_LEN ||
            off + INTEGRITY_ATTR_LEN - STUN_HEADER_LEN > UINT16_MAX ||
            get_be16(buf + off) != STUN_ATTR_MESSAGE_INTEGRITY ||
            get_be16(buf + off + 2) != INTEGRITY_LEN)
                return -EBADMSG;

        integrity_compute(buf, off, key, keylen, digest);
        r = sodium_memcmp(digest, buf + off + ATTR_HEADER_LEN, INTEGRITY_LEN) == 0 ? 0 : -EBADMSG;
        sodium_memzero(digest, sizeof(digest));
        return r;
}

/* ---- builders --------------------------------------------------------------------------- */

int stun_build_header(uint8_t *buf, size_t max, uint16_t type,
                      const uint8_t tid[STUN_TRANSACTION_ID_LEN]) {
        if (!buf || !tid || type > 0x3FFF)
                return -EINVAL;
        if (max < STUN_HEADER_LEN)
                return -ENOBUFS;
        put_be16(buf, type);
        put_be16(buf + 2, 0);
        put_be32(buf + 4, STUN_MAGIC_COOKIE);
        memcpy(buf + 8, tid, STUN_TRANSACTION_ID_LEN);
        return STUN_HEADER_LEN;
}

/* Make room for an attribute of vlen value bytes at the end of the message; returns the new
 * message length (padding zeroed, header length updated) or -errno. */
static int attr_reserve(uint8_t *buf, size_t len, size_t max, uint16_t type, size_t vlen) {
        size_t total;

        if (!buf || len < STUN_HEADER_LEN || len % 4 != 0 || vlen > UINT16_MAX)
                return -EINVAL;
        total = len + ATTR_HEADER_LEN + ALIGN_TO(vlen, 4);
        if (total > max || total - STUN_HEADER_LEN > UINT16_MAX || total > INT32_MAX)
                return -ENOBUFS;
        put_be16(buf + len, type);
        put_be16(buf + len + 2, (uint16_t) vlen);
        memset(buf + len + ATTR_HEADER_LEN + vlen, 0, ALIGN_TO(vlen, 4) - vlen);
        put_be16(buf + 2, (uint16_t) (total - STUN_HEADER_LEN));
        return (int) total;
}

int stun_add_bytes(uint8_t *buf, size_t len, size_t max, uint16_t attr, const void *data,
                   size_t data_len) {
        int r;

        if (!data && data_len > 0)
                return -EINVAL;
        r = attr_reserve(buf, len, max, attr, data_len);
        if (r < 0)
                return r;
        if (data_len > 0)
                memcpy(buf + len + ATTR_HEADER_LEN, data, data_len);
        return r;
}

int stun_add_u32(uint8_t *buf, size_t len, size_t max, uint16_t attr, uint32_t value) {
        uint8_t v[4];

        put_be32(v, value);
        return stun_add_bytes(buf, len, max, attr, v, sizeof(v));
}

int stun_add_address(uint8_t *buf, size_t len, size_t max, uint16_t attr, const uint8_t *tid,
                     const struct sockaddr *sa, socklen_t salen) {
        uint8_t v[20], mask[16];
        bool xored = attr == STUN_ATTR_XOR_MAPPED_ADDRESS;
        size_t vlen, alen;
        uint16_t port;
        const uint8_t *addr;

        if (!sa || !buf || len < STUN_HEADER_LEN)
                return -EINVAL;

        if (sa->sa_family == AF_INET && salen >= (socklen_t) sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
                v[1] = ADDRESS_FAMILY_IPV4;
                port = ntohs(sin->sin_port);
                addr = (const uint8_t *) &sin->sin_addr;
                alen = 4;
        } else if (sa->sa_family == AF_INET6 && salen >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
                v[1] = ADDRESS_FAMILY_IPV6;
                port = ntohs(sin6->sin6_port);
                addr = (const uint8_t *) &sin6->sin6_addr;
                alen = 16;
        } else
                return -EAFNOSUPPORT;

        /* Section 14.2: XOR with the cookie, then (IPv6) the transaction id. Without an explicit
         * tid, the one already in the header is the message's. */
        put_be32(mask, STUN_MAGIC_COOKIE);
        memcpy(mask + 4, tid ? tid : buf + 8, STUN_TRANSACTION_ID_LEN);

        v[0] = 0;
        put_be16(v + 2, xored ? port ^ (uint16_t) (STUN_MAGIC_COOKIE >> 16) : port);
        for (size_t i = 0; i < alen; i++)
                v[4 + i] = addr[i] ^ (xored ? mask[i] : 0);
        vlen = 4 + alen;
        return stun_add_bytes(buf, len, max, attr, v, vlen);
}

int stun_add_integrity(uint8_t *buf, size_t len, size_t max, const uint8_t *key, size_t keylen) {
        uint8_t digest[INTEGRITY_LEN];
        int r;

        if (!key && keylen > 0)
                return -EINVAL;
        /* Reserve first: this also sets the header length to end after MESSAGE-INTEGRITY,
         * which is what the MAC covers. */
        r = attr_reserve(buf, len, max, STUN_ATTR_MESSAGE_INTEGRITY, INTEGRITY_LEN);
        if (r < 0)
                return r;
        integrity_compute(buf, len, key, keylen, digest);
        memcpy(buf + len + ATTR_HEADER_LEN, digest, INTEGRITY_LEN);
        sodium_memzero(digest, sizeof(digest));
        return r;
}

int stun_add_fingerprint(uint8_t *buf, size_t len, size_t max) {
        int r;

        r = attr_reserve(buf, len, max, STUN_ATTR_FINGERPRINT, 4);
        if (r < 0)
                return r;
        /* Section 14.7: CRC over everything before FINGERPRINT, the length already counting
         * FINGERPRINT itself (attr_reserve set it). */
        put_be32(buf + len + ATTR_HEADER_LEN, stun_crc32(buf, len) ^ FINGERPRINT_XOR);
        return r;
}

int stun_build_binding_request(uint8_t *buf, size_t max, const uint8_t tid[STUN_TRANSACTION_ID_LEN],
                               uint32_t change_flags) {
        int r;

        r = stun_build_header(buf, max, STUN_BINDING_REQUEST, tid);
        if (r >= 0 && change_flags != 0)
                r = stun_add_u32(buf, (size_t) r, max, STUN_ATTR_CHANGE_REQUEST, change_flags);
        if (r >= 0)
                r = stun_add_fingerprint(buf, (size_t) r, max);
        return r;
}

int stun_build_binding_success(uint8_t *buf, size_t max, const uint8_t tid[STUN_TRANSACTION_ID_LEN],
                               const struct sockaddr *mapped, socklen_t mapped_len,
                               const struct sockaddr *response_origin, socklen_t origin_len,
                               const struct sockaddr *other_address, socklen_t other_len) {
        int r;

        if (!mapped)
                return -EINVAL;
        r = stun_build_header(buf, max, STUN_BINDING_SUCCESS, tid);
        if (r >= 0)
                r = stun_add_address(buf, (size_t) r, max, STUN_ATTR_XOR_MAPPED_ADDRESS, tid,
                                     mapped, mapped_len);
        if (r >= 0 && response_origin)
                r = stun_add_address(buf, (size_t) r, max, STUN_ATTR_RESPONSE_ORIGIN, tid,
                                     response_origin, origin_len);
        if (r >= 0 && other_address)
                r = stun_add_address(buf, (size_t) r, max, STUN_ATTR_OTHER_ADDRESS, tid,
                                     other_address, other_len);
        if (r >= 0)
                r = stun_add_bytes(buf, (size_t) r, max, STUN_ATTR_SOFTWARE, SOFTWARE_NAME,
                                   strlen(SOFTWARE_NAME));
        if (r >= 0)
                r = stun_add_fingerprint(buf, (size_t) r, max);
        return r;
}

int stun_build_binding_error(uint8_t *buf, size_t max, const uint8_t tid[STUN_TRANSACTION_ID_LEN],
                             uint16_t code, const char *reason) {
        uint8_t v[4 + ERROR_REASON_MAX];
        size_t reason_len;
        int r;

        /* Section 14.8: class 3..6, number 0..99. */
        if (code < 300 || code > 699)
                return -EINVAL;
        if (!reason)
                reason = "";
        reason_len = strlen(reason);
        if (reason_len > ERROR_REASON_MAX)
                return -EINVAL;

        v[0] = 0;
        v[1] = 0;
        v[2] = (uint8_t) (code / 100);
        v[3] = (uint8_t) (code % 100);
        memcpy(v + 4, reason, reason_len);

        r = stun_build_header(buf, max, STUN_BINDING_ERROR, tid);
        if (r >= 0)
                r = stun_add_bytes(buf, (size_t) r, max, STUN_ATTR_ERROR_CODE, v, 4 + reason_len);
        if (r >= 0)
                r = stun_add_bytes(buf, (size_t) r, max, STUN_ATTR_SOFTWARE, SOFTWARE_NAME,
                                   strlen(SOFTWARE_NAME));
        if (r >= 0)
                r = stun_add_fingerprint(buf, (size_t) r, max);
        return r;
}
