/* SPDX-License-Identifier: MIT */
/*
 * Segmentation and coalescing (src/offload.c): super-frames cut into MTU-sized segments whose
 * headers and checksums are checked field by field against an independent, byte-at-a-time
 * reference; segments coalesced back into the original; and the frames that must not coalesce.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "offload.h"
#include "tests.h"
#include "util.h"

enum { MTU = 1380, MAX_FRAME = MTU + 14, STRIDE = 1536 };

/* ---- an independent reference: RFC 1071 one 16-bit word at a time ---- */
static uint16_t ref_csum(const uint8_t *const *parts, const size_t *lens, size_t n) {
        uint32_t sum = 0;
        int odd = 0;
        uint8_t hi = 0;

        for (size_t k = 0; k < n; k++)
                for (size_t i = 0; i < lens[k]; i++) {
                        if (!odd)
                                hi = parts[k][i];
                        else
                                sum += (uint32_t) (hi << 8 | parts[k][i]);
                        odd ^= 1;
                }
        if (odd)
                sum += (uint32_t) hi << 8;
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t) ~sum;
}

struct flow {
        bool v6;
        uint8_t options[40];
        size_t options_len;
        uint8_t tos; /* IPv4 TOS / IPv6 traffic class */
        uint16_t sport; /* 0: 50000 */
        /* IPv6 extension headers between the fixed header and TCP, the first one's type, and
         * (with a Routing header) the final destination, which the pseudo-header uses. */
        uint8_t ext[64];
        size_t ext_len;
        uint8_t ext_first;
        const uint8_t *final_dst;
};

static size_t l3_of(void) {
        return 14;
}
static size_t l4_of(const struct flow *fl) {
        return 14 + (fl->v6 ? 40 + fl->ext_len : 20);
}

static size_t pseudo_header(const struct flow *fl, const uint8_t *f, size_t len, uint8_t pseudo[40]);

/* A whole TCP frame with correct lengths and checksums. */
static size_t make_frame(const struct flow *fl, uint8_t *f, uint32_t seq, uint8_t flags,
                         const uint8_t *payload, size_t n, uint16_t ip_id) {
        size_t l3 = l3_of(), l4 = l4_of(fl), doff = 20 + fl->options_len, len = l4 + doff + n;
        static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 2}, src[6] = {0x02, 0, 0, 0, 0, 1};

        memset(f, 0, l4 + doff);
        memcpy(f, dst, 6);
        memcpy(f + 6, src, 6);
        if (fl->v6) {
                f[12] = 0x86, f[13] = 0xdd;
                f[l3] = (uint8_t) (0x60 | fl->tos >> 4);
                f[l3 + 1] = (uint8_t) (fl->tos << 4 | 0x01); /* flow label 0x1abcd */
                f[l3 + 2] = 0xab, f[l3 + 3] = 0xcd;
                f[l3 + 4] = (uint8_t) ((len - l3 - 40) >> 8), f[l3 + 5] = (uint8_t) (len - l3 - 40);
                f[l3 + 6] = fl->ext_len ? fl->ext_first : 6, f[l3 + 7] = 64;
                f[l3 + 8] = 0xfd, f[l3 + 23] = 1;  /* fd00::1 */
                f[l3 + 24] = 0xfd, f[l3 + 39] = 2; /* fd00::2 */
                memcpy(f + l3 + 40, fl->ext, fl->ext_len);
        } else {
                f[12] = 0x08, f[13] = 0x00;
                f[l3] = 0x45;
                f[l3 + 1] = fl->tos;
                f[l3 + 2] = (uint8_t) ((len - l3) >> 8), f[l3 + 3] = (uint8_t) (len - l3);
                f[l3 + 4] = (uint8_t) (ip_id >> 8), f[l3 + 5] = (uint8_t) ip_id;
                f[l3 + 6] = 0x40; /* DF */
                f[l3 + 8] = 64, f[l3 + 9] = 6;
                f[l3 + 12] = 10, f[l3 + 15] = 1; /* 10.0.0.1 */
                f[l3 + 16] = 10, f[l3 + 19] = 2; /* 10.0.0.2 */
                const uint8_t *p[] = {f + l3};
                size_t ls[] = {20};
                uint16_t c = ref_csum(p, ls, 1);
                f[l3 + 10] = (uint8_t) (c >> 8), f[l3 + 11] = (uint8_t) c;
        }
        uint16_t sport = fl->sport ? fl->sport : 50000;
        f[l4] = (uint8_t) (sport >> 8), f[l4 + 1] = (uint8_t) sport;
        f[l4 + 2] = 0x14, f[l4 + 3] = 0x51; /* 5201 */
        f[l4 + 4] = (uint8_t) (seq >> 24), f[l4 + 5] = (uint8_t) (seq >> 16);
        f[l4 + 6] = (uint8_t) (seq >> 8), f[l4 + 7] = (uint8_t) seq;
        f[l4 + 8] = 0x11, f[l4 + 9] = 0x22, f[l4 + 10] = 0x33, f[l4 + 11] = 0x44; /* ack */
        f[l4 + 12] = (uint8_t) (doff / 4 << 4);
        f[l4 + 13] = flags;
        f[l4 + 14] = 0x01, f[l4 + 15] = 0xf6; /* window */
        memcpy(f + l4 + 20, fl->options, fl->options_len);
        memcpy(f + l4 + doff, payload, n);
        /* TCP checksum over the pseudo-header, header and payload, by the reference. */
        uint8_t pseudo[40];
        size_t plen = pseudo_header(fl, f, len, pseudo);
        const uint8_t *parts[] = {pseudo, f + l4};
        size_t lens[] = {plen, len - l4};
        uint16_t c = ref_csum(parts, lens, 2);
        f[l4 + 16] = (uint8_t) (c >> 8), f[l4 + 17] = (uint8_t) c;
        return len;
}

/* The TCP pseudo-header of frame f (len bytes) into pseudo; returns its length. */
static size_t pseudo_header(const struct flow *fl, const uint8_t *f, size_t len, uint8_t pseudo[40]) {
        size_t l3 = l3_of(), l4 = l4_of(fl);

        memset(pseudo, 0, 40);
        if (fl->v6) {
                memcpy(pseudo, f + l3 + 8, 32);
                if (fl->final_dst)
                        memcpy(pseudo + 16, fl->final_dst, 16);
                pseudo[34] = (uint8_t) ((len - l4) >> 8), pseudo[35] = (uint8_t) (len - l4);
                pseudo[39] = 6;
                return 40;
        }
        memcpy(pseudo, f + l3 + 12, 8);
        pseudo[9] = 6;
        pseudo[10] = (uint8_t) ((len - l4) >> 8), pseudo[11] = (uint8_t) (len - l4);
        return 12;
}

/* Checks a frame's IPv4 header checksum and TCP checksum with the reference. */
static bool checksums_ok(const struct flow *fl, const uint8_t *f, size_t len) {
        size_t l3 = l3_of(), l4 = l4_of(fl);
        uint8_t pseudo[40] = {0};
        size_t plen;

        if (!fl->v6) {
                const uint8_t *p[] = {f + l3};
                size_t ls[] = {20};
                if (ref_csum(p, ls, 1) != 0)
                        return false;
        }
        plen = pseudo_header(fl, f, len, pseudo);
        const uint8_t *parts[] = {pseudo, f + l4};
        size_t lens[] = {plen, len - l4};
        return ref_csum(parts, lens, 2) == 0;
}

static uint32_t seq_of(const struct flow *fl, const uint8_t *f) {
        const uint8_t *t = f + l4_of(fl);
        return (uint32_t) t[4] << 24 | (uint32_t) t[5] << 16 | (uint32_t) t[6] << 8 | t[7];
}

static uint8_t *payload_buf(size_t n) {
        uint8_t *p = malloc(n);
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (i * 7 + (i >> 8));
        return p;
}

/* The kernel's view of a super-frame: the vnet header for TSO. */
static struct vnet_hdr tso_hdr(const struct flow *fl, size_t mss) {
        return (struct vnet_hdr){
                .flags = VNET_HDR_F_NEEDS_CSUM,
                .gso_type = fl->v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4,
                .hdr_len = (uint16_t) (l4_of(fl) + 20 + fl->options_len),
                .gso_size = (uint16_t) mss,
                .csum_start = (uint16_t) l4_of(fl),
                .csum_offset = 16,
        };
}

static void check_segment_and_coalesce(const struct flow *fl, size_t n_payload, uint8_t flags) {
        uint8_t *big = malloc(OFFLOAD_MAX_FRAME), *payload = payload_buf(n_payload);
        uint8_t *out = malloc((size_t) OFFLOAD_MAX_SEGMENTS * STRIDE);
        size_t lens[OFFLOAD_MAX_SEGMENTS], n = 0, hdr = l4_of(fl) + 20 + fl->options_len;
        size_t mss = MAX_FRAME - hdr, len;
        uint32_t seq = 0xfffff000; /* wraps inside the super-frame */
        struct vnet_hdr h = tso_hdr(fl, mss);
        struct gro *g = calloc(1, sizeof(*g));
        int r;

        g->bufs = malloc((size_t) OFFLOAD_GRO_MAX_ITEMS * OFFLOAD_MAX_FRAME);
        len = make_frame(fl, big, seq, flags, payload, n_payload, 0x1234);
        if (fl->final_dst) {
                /* What the kernel hands over with NEEDS_CSUM: the pseudo-header's sum (with
                 * the final destination and the whole TCP length) in the checksum field. */
                uint8_t pseudo[40];
                size_t plen = pseudo_header(fl, big, len, pseudo);
                const uint8_t *parts[] = {pseudo};
                uint16_t partial = (uint16_t) ~ref_csum(parts, &plen, 1);
                big[l4_of(fl) + 16] = (uint8_t) (partial >> 8);
                big[l4_of(fl) + 17] = (uint8_t) partial;
        }
        r = offload_segment(&h, big, len, MAX_FRAME, out, STRIDE, OFFLOAD_MAX_SEGMENTS, lens, &n);
        CHECKF(r == 0, "offload_segment: %d", r);
        CHECK_EQ_INT(n, (n_payload + mss - 1) / mss);
        size_t off = 0;
        for (size_t i = 0; r == 0 && i < n; i++) {
                const uint8_t *o = out + i * STRIDE, *t = o + l4_of(fl);
                size_t chunk = lens[i] - hdr;
                CHECK(lens[i] <= MAX_FRAME);
                CHECK(i + 1 == n ? chunk == n_payload - off : chunk == mss);
                CHECKF(checksums_ok(fl, o, lens[i]), "segment %zu of %zu: checksum", i, n);
                CHECK_EQ_INT(seq_of(fl, o), (uint32_t) (seq + off));
                CHECK(memcmp(o + hdr, payload + off, chunk) == 0);
                /* Options copied into every segment. */
                CHECK(memcmp(t + 20, fl->options, fl->options_len) == 0);
                /* FIN and PSH only on the last segment; CWR only on the first. */
                CHECK(!!(t[13] & 0x01) == (i + 1 == n && (flags & 0x01)));
                CHECK(!!(t[13] & 0x08) == (i + 1 == n && (flags & 0x08)));
                CHECK(!!(t[13] & 0x80) == (i == 0 && (flags & 0x80)));
                if (!fl->v6) {
                        CHECK_EQ_INT(o[l3_of() + 4] << 8 | o[l3_of() + 5], 0x1234 + i);
                        CHECK_EQ_INT(o[l3_of() + 2] << 8 | o[l3_of() + 3], lens[i] - l3_of());
                } else {
                        /* Payload length: extension headers, TCP header and data. */
                        CHECK_EQ_INT(o[l3_of() + 4] << 8 | o[l3_of() + 5], lens[i] - l3_of() - 40);
                        /* Extension headers copied into every segment, the chain intact. */
                        CHECK_EQ_INT(o[l3_of() + 6], fl->ext_len ? fl->ext_first : 6);
                        CHECK(memcmp(o + l3_of() + 40, fl->ext, fl->ext_len) == 0);
                }
                off += chunk;
        }
        CHECK_EQ_INT(off, n_payload);

        /* Coalesce the segments back: one item equal to the super-frame (but for the fields a
         * NEEDS_CSUM frame leaves to the kernel), when flags allow. */
        for (size_t i = 0; r == 0 && i < n; i++)
                CHECK(gro_add(g, out + i * STRIDE, lens[i]) == 0);
        bool plain = (flags & ~0x18) == 0;
        if (fl->ext_len) {
                /* Not coalesced with extension headers: each passes through as it is. */
                CHECK_EQ_INT(g->n, n);
                for (size_t i = 0; r == 0 && i < g->n && i < n; i++) {
                        CHECK_EQ_INT(g->items[i].vh.gso_type, 0);
                        CHECK(g->items[i].len == lens[i] &&
                              memcmp(g->items[i].data, out + i * STRIDE, lens[i]) == 0);
                }
        } else if (plain && n > 1) {
                CHECK_EQ_INT(g->n, 1);
                struct gro_item *it = &g->items[0];
                CHECK_EQ_INT(it->len, len);
                CHECK(memcmp(it->data + hdr, payload, n_payload) == 0);
                CHECK_EQ_INT(it->vh.gso_type, fl->v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4);
                CHECK_EQ_INT(it->vh.gso_size, mss);
                CHECK_EQ_INT(it->vh.flags, VNET_HDR_F_NEEDS_CSUM);
                CHECK_EQ_INT(it->vh.csum_start, l4_of(fl));
                CHECK_EQ_INT(it->vh.csum_offset, 16);
                CHECK_EQ_INT(it->vh.hdr_len, hdr);
                /* The super-frame the kernel would see after finishing the checksum: equal to
                 * the original, byte for byte. */
                uint8_t *fin = malloc(it->len);
                memcpy(fin, it->data, it->len);
                struct vnet_hdr csum_only = {.flags = VNET_HDR_F_NEEDS_CSUM,
                                             .csum_start = it->vh.csum_start,
                                             .csum_offset = 16};
                uint8_t *tmp = malloc(OFFLOAD_MAX_FRAME);
                size_t l1, n1;
                CHECK(offload_segment(&csum_only, fin, it->len, OFFLOAD_MAX_FRAME, tmp,
                                      OFFLOAD_MAX_FRAME, 1, &l1, &n1) == 0);
                CHECKF(memcmp(tmp, big, len) == 0, "coalesced frame differs from the original");
                CHECK(checksums_ok(fl, tmp, l1));
                free(tmp);
                free(fin);
        } else if (plain) {
                CHECK_EQ_INT(g->n, 1);
                CHECK_EQ_INT(g->items[0].vh.gso_type, 0);
        }
        gro_reset(g);
        free(g->bufs);
        free(g);
        free(out);
        free(payload);
        free(big);
}

static void test_segment_coalesce(void) {
        struct flow v4 = {}, v6 = {.v6 = true, .tos = 0x28};
        /* Timestamps (NOP NOP TS) and a SACK-permitted-like padding: 12 option bytes. */
        struct flow v4opt = {.options = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, .options_len = 12};
        struct flow v6opt = v4opt;
        v6opt.v6 = true;

        check_segment_and_coalesce(&v4, 64000, 0x10);
        check_segment_and_coalesce(&v6, 64000, 0x10);
        check_segment_and_coalesce(&v4opt, 30000, 0x18); /* PSH at the end */
        check_segment_and_coalesce(&v6opt, 30000, 0x18);
        check_segment_and_coalesce(&v4, 10 * (MAX_FRAME - 54), 0x10); /* exact multiple */
        check_segment_and_coalesce(&v4, 100, 0x10);                  /* one segment */
        check_segment_and_coalesce(&v4, 20000, 0x11);                /* FIN on the last only */
        check_segment_and_coalesce(&v6, 20000, 0x90);                /* CWR on the first only */
        check_segment_and_coalesce(&v4, 20000, 0x19);
}

/* IPv6 extension headers in front of TCP (RFC 8200 section 4): Hop-by-Hop (first), then
 * Destination Options; and Destination Options then a Routing header (type 2, RFC 6275: one
 * address, the final destination, which the pseudo-header uses instead of the IPv6 header's). */
static const uint8_t home_address[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};

static void ext_flows(struct flow *hbh_dst, struct flow *dst_rt) {
        /* Hop-by-Hop: next 60, 8 bytes, PadN(4); Destination Options: next 6 (TCP), 16 bytes,
         * PadN(12). */
        static const uint8_t a[] = {60, 0, 1, 4, 0, 0, 0, 0, 6, 1, 1, 12, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 0};
        /* Destination Options: next 43, 8 bytes, PadN(4); Routing: next 6, 24 bytes, type 2,
         * segments left 1, reserved, the home address. */
        uint8_t b[32] = {43, 0, 1, 4, 0, 0, 0, 0, 6, 2, 2, 1, 0, 0, 0, 0};

        memcpy(b + 16, home_address, 16);
        *hbh_dst = (struct flow){.v6 = true, .ext_len = sizeof(a), .ext_first = 0,
                                 .options = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2},
                                 .options_len = 12};
        memcpy(hbh_dst->ext, a, sizeof(a));
        *dst_rt = (struct flow){.v6 = true, .ext_len = sizeof(b), .ext_first = 60,
                                .final_dst = home_address};
        memcpy(dst_rt->ext, b, sizeof(b));
}

static void test_ipv6_extension_headers(void) {
        struct flow hbh_dst, dst_rt;

        ext_flows(&hbh_dst, &dst_rt);
        check_segment_and_coalesce(&hbh_dst, 64000, 0x10);
        check_segment_and_coalesce(&hbh_dst, 30000, 0x19); /* PSH and FIN on the last only */
        check_segment_and_coalesce(&dst_rt, 64000, 0x10);
        check_segment_and_coalesce(&dst_rt, 20000, 0x98); /* CWR first, PSH last */
        check_segment_and_coalesce(&dst_rt, 100, 0x10);   /* one segment */
}

/* Extension headers a TSO frame cannot have, or that do not fit: refused (counted as a tx
 * error by the data path), never read past the frame. */
static void test_ipv6_extension_headers_refused(void) {
        struct flow base, fl;
        uint8_t *f = malloc(OFFLOAD_MAX_FRAME), *out = malloc((size_t) 64 * STRIDE);
        uint8_t *payload = payload_buf(20000);
        size_t len, lens[64], n;
        struct vnet_hdr h;

        ext_flows(&base, &fl);
        /* A Fragment header (44): no TSO frame is a fragment. */
        fl = (struct flow){.v6 = true, .ext_len = 8, .ext_first = 44, .ext = {6, 0, 0, 0, 0, 0, 0, 1}};
        len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1);
        h = tso_hdr(&fl, 1326);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 64, lens, &n) == -EINVAL);
        /* Hop-by-Hop anywhere but first. */
        fl = (struct flow){.v6 = true, .ext_len = 16, .ext_first = 60,
                           .ext = {0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0}};
        len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1);
        h = tso_hdr(&fl, 1326);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 64, lens, &n) == -EINVAL);
        /* AH (51) and ESP (50) are applied before a device sees the packet. */
        fl.ext[8] = 51;
        fl.ext[0] = 6;
        fl.ext_first = 51;
        len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1);
        h = tso_hdr(&fl, 1326);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 64, lens, &n) == -EINVAL);
        /* More than OFFLOAD_MAX_IPV6_EXTENSIONS Destination Options headers in a row. */
        fl = (struct flow){.v6 = true, .ext_first = 60};
        for (size_t i = 0; i <= OFFLOAD_MAX_IPV6_EXTENSIONS; i++) {
                uint8_t *e = fl.ext + 8 * i;
                e[0] = i == OFFLOAD_MAX_IPV6_EXTENSIONS ? 6 : 60;
                e[2] = 1, e[3] = 4;
        }
        fl.ext_len = 8 * (OFFLOAD_MAX_IPV6_EXTENSIONS + 1);
        len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1);
        h = tso_hdr(&fl, 1326);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 64, lens, &n) == -EINVAL);
        /* One fewer is taken. */
        fl.ext[8 * (OFFLOAD_MAX_IPV6_EXTENSIONS - 1)] = 6;
        fl.ext_len = 8 * OFFLOAD_MAX_IPV6_EXTENSIONS;
        len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1);
        h = tso_hdr(&fl, MAX_FRAME - l4_of(&fl) - 20);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 64, lens, &n) == 0 && n > 1 &&
              checksums_ok(&fl, out, lens[0]));
        /* A header whose length runs past the frame, and frames cut inside the chain. */
        fl = base;
        len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1);
        h = tso_hdr(&fl, 1326);
        for (size_t cut = 14 + 40; cut < l4_of(&fl) + 20; cut++)
                CHECK(offload_segment(&h, f, cut, MAX_FRAME, out, STRIDE, 64, lens, &n) == -EINVAL);
        f[14 + 40 + 8 + 1] = 0xff; /* Destination Options of 2048 bytes */
        CHECK(offload_segment(&h, f, 14 + 40 + 1000, MAX_FRAME, out, STRIDE, 64, lens, &n) == -EINVAL);
        /* csum_start must agree with the TCP header behind the chain. */
        len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1);
        h.csum_start = 14 + 40;
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 64, lens, &n) == -EINVAL);
        free(payload);
        free(out);
        free(f);
}

static void test_checksum_only(void) {
        struct flow fl = {};
        uint8_t f[2000], out[STRIDE], *payload = payload_buf(1000);
        size_t len = make_frame(&fl, f, 1, 0x18, payload, 1000, 7), l, n;
        struct vnet_hdr h = {.flags = VNET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16};

        /* The kernel leaves the pseudo-header sum in the field; we finish it. */
        uint32_t ps = inet_csum_partial(f + 26, 8, 0) + 6 + (uint32_t) (len - 34);
        uint16_t partial = (uint16_t) ~inet_csum_fold(ps);
        f[50] = (uint8_t) (partial >> 8), f[51] = (uint8_t) partial;
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 1, &l, &n) == 0);
        CHECK_EQ_INT(n, 1);
        CHECK(checksums_ok(&fl, out, l));
        /* Offsets outside the frame are refused. */
        h.csum_start = (uint16_t) len;
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 1, &l, &n) == -EINVAL);
        h.csum_start = 34;
        h.csum_offset = (uint16_t) (len - 34 - 1);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 1, &l, &n) == -EINVAL);
        /* A plain frame over the MTU is refused. */
        h = (struct vnet_hdr){};
        CHECK(offload_segment(&h, f, len, 1000, out, STRIDE, 1, &l, &n) == -EMSGSIZE);
        /* Shorter than an Ethernet header: not a frame. */
        CHECK(offload_segment(&h, f, 13, MAX_FRAME, out, STRIDE, 1, &l, &n) == -EINVAL);
        CHECK(offload_segment(&h, f, 0, MAX_FRAME, out, STRIDE, 1, &l, &n) == -EINVAL);
        /* Output slots smaller than a frame are a caller's bug. */
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, 100, 1, &l, &n) == -EINVAL);
        free(payload);
}

static void test_bad_gso_headers(void) {
        struct flow fl = {};
        uint8_t *f = malloc(OFFLOAD_MAX_FRAME), *out = malloc((size_t) 8 * STRIDE);
        uint8_t *payload = payload_buf(20000);
        size_t len = make_frame(&fl, f, 1, 0x10, payload, 20000, 1), lens[8], n;
        struct vnet_hdr h = tso_hdr(&fl, 1326);

        /* More segments than room. */
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 8, lens, &n) == -EMSGSIZE);
        /* csum_start that does not point at the TCP header. */
        h.csum_start = 30;
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 8, lens, &n) == -EINVAL);
        /* gso_type that disagrees with the frame's IP version. */
        h = tso_hdr(&fl, 1326);
        h.gso_type = VNET_HDR_GSO_TCPV6;
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 8, lens, &n) == -EINVAL);
        /* MSS 0, and an MSS that does not fit the MTU. */
        h = tso_hdr(&fl, 0);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 8, lens, &n) == -EINVAL);
        h = tso_hdr(&fl, MAX_FRAME);
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 8, lens, &n) == -EINVAL);
        /* UDP fragmentation offload (gso_type 3) is never enabled: refused. */
        h = tso_hdr(&fl, 1326);
        h.gso_type = 3;
        CHECK(offload_segment(&h, f, len, MAX_FRAME, out, STRIDE, 8, lens, &n) == -EINVAL);
        /* A frame cut short inside the TCP header. */
        h = tso_hdr(&fl, 1326);
        CHECK(offload_segment(&h, f, 40, MAX_FRAME, out, STRIDE, 8, lens, &n) == -EINVAL);
        free(payload);
        free(out);
        free(f);
}

/* Frames that must not coalesce stay separate, in order. */
static void test_no_coalesce(void) {
        struct flow fl = {}, other = {.tos = 0x04}, port = {.sport = 50001};
        struct gro *g = calloc(1, sizeof(*g));
        uint8_t fr[12][2000], *p = payload_buf(1000);
        size_t l[12];

        g->bufs = malloc((size_t) OFFLOAD_GRO_MAX_ITEMS * OFFLOAD_MAX_FRAME);
        l[0] = make_frame(&fl, fr[0], 1000, 0x10, p, 1000, 1);
        l[1] = make_frame(&fl, fr[1], 2000, 0x10, p, 1000, 2);    /* joins 0 */
        l[2] = make_frame(&fl, fr[2], 5000, 0x10, p, 1000, 3);    /* a gap: new item */
        l[3] = make_frame(&other, fr[3], 6000, 0x10, p, 1000, 4); /* other TOS: other flow */
        l[4] = make_frame(&fl, fr[4], 6000, 0x10, p, 1000, 5);    /* joins 2 */
        l[5] = make_frame(&fl, fr[5], 7000, 0x12, p, 1000, 6);    /* SYN: plain */
        l[6] = make_frame(&fl, fr[6], 8000, 0x10, p, 1000, 7);    /* after SYN: new item */
        l[7] = make_frame(&fl, fr[7], 9000, 0x10, p, 500, 8);     /* short: joins 6, closes */
        l[8] = make_frame(&fl, fr[8], 9500, 0x10, p, 500, 9);     /* after a short one: new */
        l[9] = make_frame(&fl, fr[9], 10000, 0x10, p, 1000, 10);  /* longer than mss: new */
        l[10] = make_frame(&fl, fr[10], 11000, 0x10, p, 0, 11);   /* pure ACK: plain */
        l[11] = make_frame(&fl, fr[11], 11000, 0x10, p, 1000, 12);
        fr[11][60] ^= 0xff; /* corrupted payload: checksum fails, plain */
        for (int i = 0; i < 12; i++)
                CHECK(gro_add(g, fr[i], l[i]) == 0);
        /* Another source port continuing the sequence: another flow. */
        uint8_t fp[2000];
        size_t lp = make_frame(&port, fp, 12000, 0x10, p, 1000, 13);
        CHECK(gro_add(g, fp, lp) == 0);
        /* items: {0,1} {2,4} 3 5 {6,7} 8 9 10 11 fp */
        CHECK_EQ_INT(g->n, 10);
        CHECK(g->items[9].data == fp);
        CHECK_EQ_INT(g->items[0].len, l[0] + 1000);
        CHECK_EQ_INT(g->items[1].len, l[2] + 1000);
        CHECK(g->items[2].data == fr[3] && g->items[2].vh.gso_type == 0);
        CHECK(g->items[3].data == fr[5] && g->items[3].vh.gso_type == 0);
        CHECK_EQ_INT(g->items[4].len, l[6] + 500);
        CHECK(g->items[5].data == fr[8]);
        CHECK(g->items[6].data == fr[9]);
        CHECK(g->items[7].data == fr[10]);
        CHECK(g->items[8].data == fr[11]);
        CHECK_EQ_INT(g->coalesced, 3);
        /* Non-TCP passes through. */
        uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
        gro_reset(g);
        CHECK(gro_add(g, arp, sizeof(arp)) == 0);
        CHECK(g->n == 1 && g->items[0].data == arp && g->items[0].len == sizeof(arp));
        /* A full batch says so. */
        gro_reset(g);
        for (int i = 0; i < OFFLOAD_GRO_MAX_ITEMS; i++)
                CHECK(gro_add(g, arp, sizeof(arp)) == 0);
        CHECK(gro_add(g, arp, sizeof(arp)) == -ENOSPC);
        free(g->bufs);
        free(g);
        free(p);
}

/* Recompute a frame's IPv4 header and TCP checksums with the reference after editing it. */
static void refresh_checksums(const struct flow *fl, uint8_t *f, size_t len) {
        size_t l3 = l3_of(), l4 = l4_of(fl);
        uint8_t pseudo[40] = {0};
        size_t plen;

        if (!fl->v6) {
                f[l3 + 10] = f[l3 + 11] = 0;
                const uint8_t *p[] = {f + l3};
                size_t ls[] = {20};
                uint16_t c = ref_csum(p, ls, 1);
                f[l3 + 10] = (uint8_t) (c >> 8), f[l3 + 11] = (uint8_t) c;
        }
        plen = pseudo_header(fl, f, len, pseudo);
        f[l4 + 16] = f[l4 + 17] = 0;
        const uint8_t *parts[] = {pseudo, f + l4};
        size_t lens[] = {plen, len - l4};
        uint16_t c = ref_csum(parts, lens, 2);
        f[l4 + 16] = (uint8_t) (c >> 8), f[l4 + 17] = (uint8_t) c;
}

/* Two segments that would follow each other, but for one field: never one super-frame. */
static void test_no_coalesce_pairs(void) {
        static const struct {
                const char *what;
                bool v6;
                size_t at; /* offset of the byte to change in the second frame */
                uint8_t xor_;
                bool keep_checksum; /* leave the checksum wrong */
        } cases[] = {
                {"source port", false, 34 + 1, 0x01, false},
                {"destination port", false, 34 + 3, 0x01, false},
                {"source address", false, 14 + 15, 0x04, false},
                {"destination address", false, 14 + 19, 0x08, false},
                {"TOS", false, 14 + 1, 0x04, false},
                {"TTL", false, 14 + 8, 0x01, false},
                {"DF", false, 14 + 6, 0x40, false},
                {"ACK number", false, 34 + 11, 0x01, false},
                {"window", false, 34 + 15, 0x01, false},
                {"SYN", false, 34 + 13, 0x02, false},
                {"FIN", false, 34 + 13, 0x01, false},
                {"RST", false, 34 + 13, 0x04, false},
                {"URG", false, 34 + 13, 0x20, false},
                {"ECE", false, 34 + 13, 0x40, false},
                {"CWR", false, 34 + 13, 0x80, false},
                {"bad TCP checksum", false, 34 + 30, 0x10, true},
                {"IPv6 flow label", true, 14 + 3, 0x01, false},
                {"IPv6 hop limit", true, 14 + 7, 0x01, false},
                {"IPv6 source address", true, 14 + 23, 0x04, false},
                {"IPv6 bad TCP checksum", true, 54 + 30, 0x10, true},
        };
        struct gro *g = calloc(1, sizeof(*g));
        uint8_t a[2000], b[2000], *p = payload_buf(1000);

        g->bufs = malloc((size_t) OFFLOAD_GRO_MAX_ITEMS * OFFLOAD_MAX_FRAME);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct flow fl = {.v6 = cases[i].v6};
                size_t la = make_frame(&fl, a, 1000, 0x10, p, 1000, 1);
                size_t lb = make_frame(&fl, b, 2000, 0x10, p, 1000, 2);

                /* Unchanged, the two join. */
                gro_reset(g);
                CHECK(gro_add(g, a, la) == 0 && gro_add(g, b, lb) == 0);
                CHECKF(g->n == 1, "%s: the unchanged pair did not coalesce", cases[i].what);
                b[cases[i].at] ^= cases[i].xor_;
                if (!cases[i].keep_checksum)
                        refresh_checksums(&fl, b, lb);
                gro_reset(g);
                CHECK(gro_add(g, a, la) == 0 && gro_add(g, b, lb) == 0);
                CHECKF(g->n == 2 && g->items[1].data == b, "%s: coalesced", cases[i].what);
        }
        free(g->bufs);
        free(g);
        free(p);
}

static void test_checksum_helpers(void) {
        /* RFC 1071 section 3's example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2. */
        static const uint8_t ex[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
        CHECK_EQ_INT(inet_csum_fold(inet_csum_partial(ex, sizeof(ex), 0)), (uint16_t) ~0xddf2);
        /* Odd lengths and split sums agree with the reference. */
        uint8_t *b = payload_buf(1001);
        const uint8_t *parts[] = {b};
        size_t lens[] = {1001};
        CHECK_EQ_INT(inet_csum_fold(inet_csum_partial(b, 1001, 0)), ref_csum(parts, lens, 1));
        CHECK_EQ_INT(inet_csum_fold(inet_csum_partial(b + 500, 501, inet_csum_partial(b, 500, 0))),
                     ref_csum(parts, lens, 1));
        free(b);
        /* vnet header byte order. */
        struct vnet_hdr h = {1, 4, 0x1234, 0x0567, 54, 16}, back;
        uint8_t raw[10];
        vnet_hdr_to_le(&h, raw);
        CHECK(raw[2] == 0x34 && raw[3] == 0x12 && raw[4] == 0x67 && raw[5] == 0x05);
        vnet_hdr_from_le(&back, raw);
        CHECK(memcmp(&h, &back, sizeof(h)) == 0);
}

/* Frames as the tunnel delivers them: padded with zeros to a multiple of 16 bytes. The
 * padding is not part of the IP packet, so it must neither stop coalescing nor end up inside
 * the coalesced frame; and a buffer the kernel coalesced (UDP GRO) is cut back into its
 * datagrams. */
static void test_padded_frames(void) {
        struct gro *g = calloc(1, sizeof(*g));
        uint8_t fr[3][2000] = {}, *p = payload_buf(3000);
        size_t l[3];

        g->bufs = malloc((size_t) OFFLOAD_GRO_MAX_ITEMS * OFFLOAD_MAX_FRAME);
        for (unsigned v6 = 0; v6 < 2; v6++) {
                struct flow fl = {.v6 = v6};
                gro_reset(g);
                g->coalesced = 0;
                for (size_t i = 0; i < 3; i++) {
                        l[i] = make_frame(&fl, fr[i], 1000 + (uint32_t) (i * 1000), 0x10,
                                          p + i * 1000, 1000, (uint16_t) (1 + i));
                        CHECK(gro_add(g, fr[i], (l[i] + 15) / 16 * 16 + 16) == 0);
                }
                CHECK_EQ_INT(g->n, 1);
                CHECK_EQ_INT(g->coalesced, 2);
                CHECK_EQ_INT(g->items[0].len, l[0] + 2000);
                CHECK(memcmp(g->items[0].data + l[0] - 1000, p, 3000) == 0);
                CHECK_EQ_INT(g->items[0].vh.gso_size, 1000);
                CHECK_EQ_INT(g->items[0].vh.gso_type, v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4);
        }
        /* An IP length beyond the frame is not padding: the frame passes as it is. */
        struct flow fl = {};
        gro_reset(g);
        l[0] = make_frame(&fl, fr[0], 1000, 0x10, p, 1000, 1);
        CHECK(gro_add(g, fr[0], l[0] - 1) == 0);
        CHECK(g->n == 1 && g->items[0].len == l[0] - 1 && g->items[0].vh.gso_type == 0);
        free(g->bufs);
        free(g);
        free(p);

        /* UDP GRO buffers: 3000 bytes of 1400-byte datagrams are 1400, 1400, 200. */
        size_t off = 0, k, got[4] = {}, n = 0;
        while ((k = udp_gro_next(3000, 1400, &off)) > 0 && n < 4)
                got[n++] = k;
        CHECK(n == 3 && got[0] == 1400 && got[1] == 1400 && got[2] == 200 && off == 3000);
        off = 0;
        CHECK_EQ_INT(udp_gro_next(700, 0, &off), 700); /* no segment size: one datagram */
        CHECK_EQ_INT(udp_gro_next(700, 0, &off), 0);
        off = 0;
        CHECK_EQ_INT(udp_gro_next(700, 1400, &off), 700); /* one shorter than the size */
        CHECK_EQ_INT(udp_gro_next(0, 1400, &off), 0);
}

int main(void) {
        test_checksum_helpers();
        test_segment_coalesce();
        test_checksum_only();
        test_bad_gso_headers();
        test_ipv6_extension_headers();
        test_ipv6_extension_headers_refused();
        test_no_coalesce();
        test_no_coalesce_pairs();
        test_padded_frames();
        return test_summary();
}
