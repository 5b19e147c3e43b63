/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the STUN codec and the NAT discovery state machine. Each input is
 *   - parsed by stun_parse, and when it parses: checked against invariants (the pointers and
 *     offsets lie inside the input, the quick demultiplexing test agrees, a present
 *     FINGERPRINT is correct, a mapped address survives a build/parse round trip) and its
 *     MESSAGE-INTEGRITY verified with a fixed key (0, -ENOENT or -EBADMSG, nothing else);
 *   - offered as the answer to the tests of a natcheck in progress (the k-th message to the
 *     k-th test, the last one to all later tests): as is, and with its transaction id
 *     replaced by the running test's (transaction ids are deterministic here, see
 *     fuzz_random_buf), from where the test sent, from OTHER-ADDRESS and from the server's
 *     IP with OTHER-ADDRESS's port. The clock advances to each timeout until natcheck is done;
 *     the result must stay consistent. The input's length modulo 4 picks an IPv6 server
 *     and/or a wildcard-bound socket.
 * The seed corpus (corpus/fuzz-stun/) holds the four RFC 5769 samples and answers to this
 * natcheck (server 198.51.100.1:3478, OTHER-ADDRESS 198.51.100.2:3479).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "natcheck.h"
#include "stun.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[] = "VOkJxbRl1RmTxUk/WvJxBt";

/* Transaction ids: the k-th id drawn since the input started is twelve bytes of 0xA0 + k, so
 * the seeds can answer test I (0xA0...) and the patched copies reach every later test. */
static unsigned random_calls;

static const char *fuzz_random_name(void) {
        return "fuzz-deterministic";
}

static uint32_t fuzz_random(void) {
        return 4;
}

static void fuzz_random_buf(void *buf, size_t size) {
        memset(buf, 0xA0 + (int) (random_calls++ & 0x3F), size);
}

static struct randombytes_implementation fuzz_random_impl = {
        .implementation_name = fuzz_random_name,
        .random = fuzz_random,
        .buf = fuzz_random_buf,
};

static bool initialized;

static void initialize(void) {
        if (randombytes_set_implementation(&fuzz_random_impl) != 0 || sodium_init() < 0)
                abort();
        initialized = true;
}

static void check_address(const struct sockaddr_storage *ss) {
        if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
                abort();
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
        if (a->ss_family != b->ss_family)
                return false;
        if (a->ss_family == AF_INET)
                return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
        return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

static socklen_t address_len(const struct sockaddr_storage *ss) {
        return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void fuzz_codec(const uint8_t *data, size_t size, struct stun_message *ret) {
        struct stun_message m;
        int r;

        memset(ret, 0, sizeof(*ret));
        r = stun_parse(data, size, &m);
        if (r < 0) {
                if (r != -EBADMSG)
                        abort();
                return;
        }
        if (!stun_is_message(data, size) || m.type > 0x3FFF)
                abort();
        if (m.username && (m.username < data || m.username + m.username_len > data + size))
                abort();
        if (m.software && (m.software < data || m.software + m.software_len > data + size))
                abort();
        if (m.integrity_offset &&
            (m.integrity_offset < STUN_HEADER_LEN || m.integrity_offset + 24 > size))
                abort();
        if (m.fingerprint_offset && (!m.fingerprint_ok || m.fingerprint_offset + 8 != size))
                abort();
        if (m.has_mapped)
                check_address(&m.mapped);
        if (m.has_other_address)
                check_address(&m.other_address);
        if (m.has_response_origin)
                check_address(&m.response_origin);
        if (m.has_error && (m.error_code < 300 || m.error_code > 699))
                abort();

        r = stun_check_integrity(data, size, &m, fuzz_key, sizeof(fuzz_key) - 1);
        if (m.integrity_offset == 0 ? r != -ENOENT : r != 0 && r != -EBADMSG)
                abort();

        /* What we decoded, we encode back to the same thing. */
        if (m.has_mapped) {
                uint8_t buf[STUN_MAX_MESSAGE_LEN];
                struct stun_message back;

                r = stun_build_binding_success(
                        buf, sizeof(buf), m.transaction_id, (const struct sockaddr *) &m.mapped,
                        address_len(&m.mapped),
                        m.has_response_origin ? (const struct sockaddr *) &m.response_origin : NULL,
                        address_len(&m.response_origin),
                        m.has_other_address ? (const struct sockaddr *) &m.other_address : NULL,
                        address_len(&m.other_address));
                if (r < 0 || stun_parse(buf, (size_t) r, &back) < 0 || !back.fingerprint_ok ||
                    !same_address(&back.mapped, &m.mapped) ||
                    back.has_other_address != m.has_other_address ||
                    (m.has_other_address && !same_address(&back.other_address, &m.other_address)))
                        abort();
        }
        *ret = m;
}

static void offer(struct natcheck *n, const uint8_t *buf, size_t len,
                  const struct sockaddr_storage *from, uint64_t now) {
        if (from->ss_family == AF_INET || from->ss_family == AF_INET6)
                natcheck_input(n, buf, len, (const struct sockaddr *) from, address_len(from), now);
}

enum { MAX_SEGMENTS = 8 };

struct segment {
        const uint8_t *data;
        size_t size;
        struct stun_message m; /* zeroed unless it parsed */
};

/* The input as a run of STUN messages, each as long as its header says: the k-th answers the
 * k-th test (the last one all later tests), so one input can give each test its own mapped
 * address. Input that is not such a run is one segment. */
static size_t split(const uint8_t *data, size_t size, struct segment *seg) {
        size_t n = 0, off = 0;

        while (n < MAX_SEGMENTS && size - off >= STUN_HEADER_LEN) {
                size_t len = STUN_HEADER_LEN + get_be16(data + off + 2);
                if (len > size - off)
                        break;
                seg[n].data = data + off;
                seg[n].size = len;
                n++;
                off += len;
        }
        if (n == 0) {
                seg[0].data = data;
                seg[0].size = size;
                n = 1;
        }
        return n;
}

static void fuzz_natcheck(const uint8_t *data, size_t size, struct segment *seg, size_t n_seg) {
        struct sockaddr_storage server = {}, local = {}, own = {};
        socklen_t server_len, local_len;
        uint8_t pkt[STUN_MAX_MESSAGE_LEN], copy[65536 + STUN_HEADER_LEN];
        uint8_t last_tid[STUN_TRANSACTION_ID_LEN] = {};
        struct natcheck *n = NULL;
        uint64_t now = NSEC_PER_SEC;
        size_t test = 0;
        bool any_sent = false;

        /* The input's length modulo 4 (STUN messages are multiples of 4, so trailing bytes
         * pick it) chooses an IPv6 server and a wildcard-bound socket. */
        if (size & 2) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &server,
                                    *l6 = (struct sockaddr_in6 *) &local,
                                    *o6 = (struct sockaddr_in6 *) &own;
                s6->sin6_family = l6->sin6_family = o6->sin6_family = AF_INET6;
                s6->sin6_port = htons(3478);
                l6->sin6_port = htons(5000);
                inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
                if (!(size & 1))
                        inet_pton(AF_INET6, "fd00::10", &l6->sin6_addr);
                inet_pton(AF_INET6, "2001:db8:1::1", &o6->sin6_addr);
                server_len = local_len = sizeof(struct sockaddr_in6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) &server,
                                   *l4 = (struct sockaddr_in *) &local,
                                   *o4 = (struct sockaddr_in *) &own;
                s4->sin_family = l4->sin_family = o4->sin_family = AF_INET;
                s4->sin_port = htons(3478);
                l4->sin_port = htons(5000);
                inet_pton(AF_INET, "198.51.100.1", &s4->sin_addr);
                if (!(size & 1))
                        inet_pton(AF_INET, "192.168.1.10", &l4->sin_addr);
                inet_pton(AF_INET, "203.0.113.1", &o4->sin_addr);
                server_len = local_len = sizeof(struct sockaddr_in);
        }

        random_calls = 0;
        if (natcheck_new((struct sockaddr *) &server, server_len, (struct sockaddr *) &local,
                         local_len, true, now, &n) < 0)
                abort();
        natcheck_add_local_address(n, (struct sockaddr *) &own, address_len(&own));

        /* Every test: at most NATCHECK_RC requests, five tests; bound the loop well above. */
        for (unsigned round = 0; round < 64 && !natcheck_done(n); round++) {
                struct sockaddr_storage dst, alt;
                socklen_t dst_len;
                uint8_t tid[STUN_TRANSACTION_ID_LEN];
                int r;
                bool sent = false;

                while ((r = natcheck_next_packet(n, now, pkt, sizeof(pkt), &dst, &dst_len)) > 0) {
                        struct stun_message req;
                        if (stun_parse(pkt, (size_t) r, &req) < 0 ||
                            req.type != STUN_BINDING_REQUEST || !req.fingerprint_ok ||
                            dst_len != address_len(&dst) || dst.ss_family != server.ss_family)
                                abort();
                        memcpy(tid, req.transaction_id, sizeof(tid));
                        sent = true;
                }
                if (r < 0)
                        abort();

                if (sent) {
                        if (any_sent && memcmp(tid, last_tid, sizeof(tid)) != 0)
                                test++;
                        memcpy(last_tid, tid, sizeof(tid));
                        any_sent = true;

                        const struct segment *sg = &seg[MIN(test, n_seg - 1)];
                        now += NSEC_PER_MSEC;
                        offer(n, sg->data, sg->size, &dst, now);
                        if (sg->size >= STUN_HEADER_LEN && sg->size <= sizeof(copy)) {
                                memcpy(copy, sg->data, sg->size);
                                memcpy(copy + 8, tid, sizeof(tid));
                                offer(n, copy, sg->size, &dst, now);
                                if (sg->m.has_other_address) {
                                        offer(n, copy, sg->size, &sg->m.other_address, now);
                                        /* The server's IP with the other port. */
                                        alt = dst;
                                        if (alt.ss_family == AF_INET &&
                                            sg->m.other_address.ss_family == AF_INET)
                                                ((struct sockaddr_in *) &alt)->sin_port =
                                                        ((const struct sockaddr_in *) &sg->m
                                                                 .other_address)
                                                                ->sin_port;
                                        if (alt.ss_family == AF_INET6 &&
                                            sg->m.other_address.ss_family == AF_INET6)
                                                ((struct sockaddr_in6 *) &alt)->sin6_port =
                                                        ((const struct sockaddr_in6 *) &sg->m
                                                                 .other_address)
                                                                ->sin6_port;
                                        offer(n, copy, sg->size, &alt, now);
                                }
                        }
                }
                if (natcheck_done(n))
                        break;
                uint64_t next = natcheck_next_timeout(n);
                if (next == UINT64_MAX || next < now)
                        abort();
                now = MAX(next, now + 1);
        }
        if (!natcheck_done(n) || natcheck_next_timeout(n) != UINT64_MAX)
                abort();

        const struct natcheck_result *res = natcheck_result(n);
        if (res->udp_blocked && res->has_public)
                abort();
        if (!res->has_public &&
            (res->mapping != NAT_MAPPING_UNKNOWN || res->filtering != NAT_FILTERING_UNKNOWN))
                abort();
        if (!res->server_supports_rfc5780 && res->filtering != NAT_FILTERING_UNKNOWN)
                abort();
        if (!natcheck_type_string(res) || !nat_mapping_to_string(res->mapping) ||
            !nat_filtering_to_string(res->filtering))
                abort();
        natcheck_free(n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct segment seg[MAX_SEGMENTS];
        struct stun_message whole;
        size_t n_seg;

        if (!initialized)
                initialize();
        fuzz_codec(data, size, &whole);
        n_seg = split(data, size, seg);
        for (size_t i = 0; i < n_seg; i++)
                fuzz_codec(seg[i].data, seg[i].size, &seg[i].m);
        fuzz_natcheck(data, size, seg, n_seg);
        return 0;
}
