/* SPDX-License-Identifier: MIT */
/*
 * TCP segmentation (transmit) and coalescing (receive) for a TAP with IFF_VNET_HDR; see
 * offload.h. The header fixes follow what the kernel's own tcp_gso_segment() and
 * tcp_gro_receive() do: every segment gets its own IPv4 id, length and header checksum and
 * its own TCP sequence number and full checksum; FIN and PSH stay on the last segment, CWR on
 * the first; coalescing needs the same flow, consecutive sequence numbers, equal ACK, window
 * and options, equal segment sizes (the last may be shorter) and plain ACK/PSH flags.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "offload.h"

enum {
        ETH_HLEN_ = 14,
        VLAN_HLEN_ = 4,
        IPV4_HLEN = 20,
        IPV6_HLEN = 40,
        TCP_MIN_HLEN = 20,
        TCP_FLAG_FIN = 0x01,
        TCP_FLAG_SYN = 0x02,
        TCP_FLAG_RST = 0x04,
        TCP_FLAG_PSH = 0x08,
        TCP_FLAG_ACK = 0x10,
        TCP_FLAG_CWR = 0x80,
        IPPROTO_TCP_ = 6,
        IPPROTO_HOPOPTS_ = 0,
        IPPROTO_ROUTING_ = 43,
        IPPROTO_DSTOPTS_ = 60,
};

static uint16_t get16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}
static uint32_t get32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static void put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

uint32_t inet_csum_partial(const void *data, size_t len, uint32_t sum) {
        const uint8_t *p = data;
        uint64_t acc = sum;

        /* Big-endian 16-bit words, summed 32 bits at a time into 64 bits (no overflow for
         * any frame we handle), folded once at the end. */
        while (len >= 4) {
                acc += get32(p);
                p += 4;
                len -= 4;
        }
        if (len >= 2) {
                acc += get16(p);
                p += 2;
                len -= 2;
        }
        if (len)
                acc += (uint32_t) p[0] << 8;
        while (acc >> 32)
                acc = (acc & 0xffffffffu) + (acc >> 32);
        /* Keep the partial sum in 32 bits, folded to at most 17 bits' worth. */
        acc = (acc & 0xffff) + (acc >> 16);
        acc = (acc & 0xffff) + (acc >> 16);
        return (uint32_t) acc;
}

uint16_t inet_csum_fold(uint32_t sum) {
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t) ~sum;
}

void vnet_hdr_from_le(struct vnet_hdr *h, const uint8_t raw[static sizeof(struct vnet_hdr)]) {
        h->flags = raw[0];
        h->gso_type = raw[1];
        h->hdr_len = (uint16_t) (raw[2] | raw[3] << 8);
        h->gso_size = (uint16_t) (raw[4] | raw[5] << 8);
        h->csum_start = (uint16_t) (raw[6] | raw[7] << 8);
        h->csum_offset = (uint16_t) (raw[8] | raw[9] << 8);
}

void vnet_hdr_to_le(const struct vnet_hdr *h, uint8_t raw[static sizeof(struct vnet_hdr)]) {
        const uint16_t v[4] = {h->hdr_len, h->gso_size, h->csum_start, h->csum_offset};

        raw[0] = h->flags;
        raw[1] = h->gso_type;
        for (size_t i = 0; i < 4; i++) {
                raw[2 + 2 * i] = (uint8_t) v[i];
                raw[3 + 2 * i] = (uint8_t) (v[i] >> 8);
        }
}

/* Where the headers of a TCP frame are, or false when it is not TCP over IPv4 without options,
 * or over IPv6 (with extension headers only where ext allows them), that fits in len. */
struct tcp_frame {
        size_t l3, l4, payload; /* offsets */
        size_t ip_len;          /* the IP packet's length by its own header */
        bool v6;
        bool routing; /* an IPv6 Routing header: the pseudo-header's address is not daddr */
};

/* IPv6 extension headers (RFC 8200 section 4) a TCP segment the kernel hands over may carry in
 * front of TCP: Hop-by-Hop Options (first only), Destination Options and Routing. All three
 * are <next header, length in 8-octet units after the first 8, ...>. A Fragment header never
 * comes with segmentation offload, and AH/ESP are applied before a packet reaches a device. */
static bool skip_ipv6_extensions(const uint8_t *f, size_t len, struct tcp_frame *t) {
        uint8_t next = f[t->l3 + 6];
        size_t off = t->l3 + IPV6_HLEN;

        for (unsigned i = 0; next != IPPROTO_TCP_; i++) {
                if (i == OFFLOAD_MAX_IPV6_EXTENSIONS || len < off + 8)
                        return false;
                if (next == IPPROTO_ROUTING_)
                        t->routing = true;
                else if (next != IPPROTO_DSTOPTS_ && (next != IPPROTO_HOPOPTS_ || i > 0))
                        return false;
                next = f[off];
                off += ((size_t) f[off + 1] + 1) * 8;
        }
        t->l4 = off;
        return true;
}

static bool parse_tcp(const uint8_t *f, size_t len, struct tcp_frame *ret, bool ext) {
        struct tcp_frame t = {.l3 = ETH_HLEN_};
        uint16_t type;
        size_t doff;

        if (len < ETH_HLEN_)
                return false;
        type = get16(f + 12);
        if (type == 0x8100) {
                if (len < ETH_HLEN_ + VLAN_HLEN_)
                        return false;
                type = get16(f + 16);
                t.l3 += VLAN_HLEN_;
        }
        if (type == 0x0800) {
                if (len < t.l3 + IPV4_HLEN || f[t.l3] != 0x45 || f[t.l3 + 9] != IPPROTO_TCP_)
                        return false;
                /* No fragments: MF clear and offset 0 (DF may be set). */
                if (get16(f + t.l3 + 6) & 0x3fff)
                        return false;
                t.ip_len = get16(f + t.l3 + 2);
                t.l4 = t.l3 + IPV4_HLEN;
                if (t.ip_len < IPV4_HLEN)
                        return false;
        } else if (type == 0x86dd) {
                if (len < t.l3 + IPV6_HLEN || (f[t.l3] >> 4) != 6)
                        return false;
                t.ip_len = IPV6_HLEN + (size_t) get16(f + t.l3 + 4);
                t.l4 = t.l3 + IPV6_HLEN;
                t.v6 = true;
                if (f[t.l3 + 6] != IPPROTO_TCP_ && (!ext || !skip_ipv6_extensions(f, len, &t)))
                        return false;
        } else
                return false;
        if (len < t.l4 + TCP_MIN_HLEN)
                return false;
        doff = (size_t) (f[t.l4 + 12] >> 4) * 4;
        if (doff < TCP_MIN_HLEN || len < t.l4 + doff)
                return false;
        t.payload = t.l4 + doff;
        *ret = t;
        return true;
}

/* The TCP pseudo-header's partial sum (RFC 793, RFC 8200 section 8.1). */
static uint32_t pseudo_sum(const uint8_t *f, const struct tcp_frame *t, size_t tcp_len) {
        uint32_t sum;

        if (t->v6)
                sum = inet_csum_partial(f + t->l3 + 8, 32, 0);
        else
                sum = inet_csum_partial(f + t->l3 + 12, 8, 0);
        return sum + IPPROTO_TCP_ + (uint32_t) tcp_len;
}

static void ipv4_fix(uint8_t *ip, size_t ip_len, uint16_t id) {
        put16(ip + 2, (uint16_t) ip_len);
        put16(ip + 4, id);
        put16(ip + 10, 0);
        put16(ip + 10, inet_csum_fold(inet_csum_partial(ip, IPV4_HLEN, 0)));
}

/* The full TCP checksum over tcp_len bytes at t->l4, given the pseudo-header's sum. */
static void tcp_checksum_with(uint8_t *f, const struct tcp_frame *t, size_t tcp_len, uint32_t pseudo) {
        put16(f + t->l4 + 16, 0);
        put16(f + t->l4 + 16, inet_csum_fold(inet_csum_partial(f + t->l4, tcp_len, pseudo)));
}

static void tcp_checksum(uint8_t *f, const struct tcp_frame *t, size_t tcp_len) {
        tcp_checksum_with(f, t, tcp_len, pseudo_sum(f, t, tcp_len));
}

/* NEEDS_CSUM without GSO: what the kernel's skb_checksum_help() does. */
static int fill_checksum(const struct vnet_hdr *h, uint8_t *f, size_t len) {
        size_t at = (size_t) h->csum_start + h->csum_offset;
        uint16_t c;

        if (h->csum_start >= len || at + 2 > len)
                return -EINVAL;
        c = inet_csum_fold(inet_csum_partial(f + h->csum_start, len - h->csum_start, 0));
        put16(f + at, c ? c : 0xffff);
        return 0;
}

int offload_segment(const struct vnet_hdr *h, const uint8_t *frame, size_t len, size_t max_frame_len,
                    uint8_t *out, size_t stride, size_t max_out, size_t *ret_lens, size_t *ret_n) {
        uint8_t gso = h->gso_type & (uint8_t) ~VNET_HDR_GSO_ECN;
        struct tcp_frame t;
        size_t hdr, payload, mss, n;
        uint32_t seq, pseudo_nolen = 0;
        uint16_t id = 0;
        uint8_t flags;

        if (len < ETH_HLEN_ || len > OFFLOAD_MAX_FRAME || max_out == 0 || stride < max_frame_len)
                return -EINVAL;
        if (gso == VNET_HDR_GSO_NONE) {
                int r;
                if (len > max_frame_len)
                        return -EMSGSIZE;
                memcpy(out, frame, len);
                if (h->flags & VNET_HDR_F_NEEDS_CSUM) {
                        r = fill_checksum(h, out, len);
                        if (r < 0)
                                return r;
                }
                ret_lens[0] = len;
                *ret_n = 1;
                return 0;
        }
        if (gso != VNET_HDR_GSO_TCPV4 && gso != VNET_HDR_GSO_TCPV6)
                return -EINVAL; /* UDP fragmentation offload is never enabled on our TAP */
        if (!parse_tcp(frame, len, &t, true) || t.v6 != (gso == VNET_HDR_GSO_TCPV6))
                return -EINVAL;
        /* The kernel's offsets must agree with the headers: never trust one without the other. */
        if (h->csum_start != t.l4 || h->csum_offset != 16)
                return -EINVAL;
        hdr = t.payload;
        payload = len - hdr;
        mss = h->gso_size;
        if (mss == 0 || hdr + mss > max_frame_len)
                return -EINVAL;
        n = payload == 0 ? 1 : (payload + mss - 1) / mss;
        if (n > max_out)
                return -EMSGSIZE;

        /* With a Routing header the pseudo-header's destination is the final one (RFC 8200
         * section 8.1), kept in that header in a form that depends on its type. The kernel
         * summed the right pseudo-header into the checksum field (NEEDS_CSUM: over the whole
         * TCP length), so each segment's is that sum with the super-frame's TCP length taken
         * out (one's complement: add its complement) and its own added, as the kernel's own
         * tcp_gso_segment() derives it. Without one, it is computed from the addresses. */
        if (t.routing)
                pseudo_nolen = get16(frame + t.l4 + 16) + (uint16_t) ~(uint16_t) (len - t.l4);
        seq = get32(frame + t.l4 + 4);
        flags = frame[t.l4 + 13];
        if (!t.v6)
                id = get16(frame + t.l3 + 4);
        for (size_t i = 0; i < n; i++) {
                size_t off = i * mss, chunk = payload - off < mss ? payload - off : mss;
                uint8_t *o = out + i * stride;
                struct tcp_frame ot = t;
                size_t seg_len = hdr + chunk;

                memcpy(o, frame, hdr);
                memcpy(o + hdr, frame + hdr + off, chunk);
                if (t.v6) /* the payload: extension headers, TCP header and data */
                        put16(o + t.l3 + 4, (uint16_t) (seg_len - t.l3 - IPV6_HLEN));
                else
                        ipv4_fix(o + t.l3, seg_len - t.l3, (uint16_t) (id + i));
                put32(o + t.l4 + 4, seq + (uint32_t) off);
                o[t.l4 + 13] = flags;
                if (i + 1 < n)
                        o[t.l4 + 13] &= (uint8_t) ~(TCP_FLAG_FIN | TCP_FLAG_PSH);
                if (i > 0)
                        o[t.l4 + 13] &= (uint8_t) ~TCP_FLAG_CWR;
                if (t.routing)
                        tcp_checksum_with(o, &ot, seg_len - t.l4,
                                          pseudo_nolen + (uint32_t) (seg_len - t.l4));
                else
                        tcp_checksum(o, &ot, seg_len - t.l4);
                ret_lens[i] = seg_len;
        }
        *ret_n = n;
        return 0;
}

/* ---- receive: coalescing ------------------------------------------------------------------ */

static bool tcp_checksum_ok(const uint8_t *f, const struct tcp_frame *t, size_t tcp_len) {
        return inet_csum_fold(inet_csum_partial(f + t->l4, tcp_len, pseudo_sum(f, t, tcp_len))) == 0;
}

/* Same flow, and everything but length, sequence and checksum the same, so that the first
 * segment's headers can stand for all (tcp_gro_receive()'s flush conditions). */
static bool same_flow(const struct gro_item *it, const uint8_t *f, const struct tcp_frame *t) {
        const uint8_t *a = it->data;
        size_t doff = t->payload - t->l4;

        if (it->is_v6 != t->v6 || it->l3_off != t->l3 || it->l4_off != t->l4 ||
            it->hdr_len != t->payload)
                return false;
        /* Ethernet header (and VLAN tag). */
        if (memcmp(a, f, t->l3) != 0)
                return false;
        if (t->v6) {
                /* version, traffic class, flow label; next header and hop limit; addresses */
                if (memcmp(a + t->l3, f + t->l3, 4) != 0 || memcmp(a + t->l3 + 6, f + t->l3 + 6, 34) != 0)
                        return false;
        } else {
                /* version/IHL, TOS; flags (DF); TTL, protocol; addresses */
                if (memcmp(a + t->l3, f + t->l3, 2) != 0 || a[t->l3 + 6] != f[t->l3 + 6] ||
                    memcmp(a + t->l3 + 8, f + t->l3 + 8, 2) != 0 ||
                    memcmp(a + t->l3 + 12, f + t->l3 + 12, 8) != 0)
                        return false;
        }
        /* Ports; ACK number; data offset; window; options. Flags are checked by the caller. */
        return memcmp(a + t->l4, f + t->l4, 4) == 0 && memcmp(a + t->l4 + 8, f + t->l4 + 8, 5) == 0 &&
               memcmp(a + t->l4 + 14, f + t->l4 + 14, 2) == 0 &&
               memcmp(a + t->l4 + TCP_MIN_HLEN, f + t->l4 + TCP_MIN_HLEN, doff - TCP_MIN_HLEN) == 0;
}

/* Headers of a coalesced item after its payload grew: lengths, IPv4 checksum, the vnet header
 * and the pseudo-header sum the kernel expects in the TCP checksum field with NEEDS_CSUM. */
static void item_fix(struct gro_item *it) {
        uint8_t *f = it->buf;
        struct tcp_frame t = {.l3 = it->l3_off, .l4 = it->l4_off, .payload = it->hdr_len, .v6 = it->is_v6};
        size_t tcp_len = it->len - it->l4_off;

        if (it->is_v6)
                put16(f + t.l3 + 4, (uint16_t) (it->len - t.l4));
        else
                ipv4_fix(f + t.l3, it->len - t.l3, get16(f + t.l3 + 4));
        put16(f + t.l4 + 16, (uint16_t) ~inet_csum_fold(pseudo_sum(f, &t, tcp_len)));
        it->vh = (struct vnet_hdr){
                .flags = VNET_HDR_F_NEEDS_CSUM,
                .gso_type = it->is_v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4,
                .hdr_len = it->hdr_len,
                .gso_size = it->mss,
                .csum_start = it->l4_off,
                .csum_offset = 16,
        };
}

static void add_plain(struct gro *g, const uint8_t *frame, size_t len) {
        g->items[g->n++] = (struct gro_item){.data = frame, .len = len};
}

int gro_add(struct gro *g, const uint8_t *frame, size_t len) {
        struct tcp_frame t;
        size_t payload, tcp_len;
        uint8_t flags;
        struct gro_item *it = NULL;

        if (g->n >= OFFLOAD_GRO_MAX_ITEMS)
                return -ENOSPC;
        /* Bytes past the IP packet (Ethernet padding, or the tunnel's padding to 16 bytes)
         * are not part of it: the kernel trims them too, so drop them here and the frame can
         * still be coalesced. */
        if (parse_tcp(frame, len, &t, false) && t.l3 + t.ip_len < len && t.l3 + t.ip_len >= t.payload)
                len = t.l3 + t.ip_len;
        if (!parse_tcp(frame, len, &t, false) || t.l3 + t.ip_len != len) {
                add_plain(g, frame, len);
                return 0;
        }
        payload = len - t.payload;
        tcp_len = len - t.l4;
        flags = frame[t.l4 + 13];

        /* The newest item of this flow, if any. */
        for (size_t i = g->n; i-- > 0;)
                if (g->items[i].mss && same_flow(&g->items[i], frame, &t)) {
                        it = &g->items[i];
                        break;
                }
        bool plain_flags = (flags & ~(TCP_FLAG_ACK | TCP_FLAG_PSH)) == 0 && (flags & TCP_FLAG_ACK);
        bool coalescable = payload > 0 && plain_flags && tcp_checksum_ok(frame, &t, tcp_len);

        if (it && it->open && coalescable && get32(frame + t.l4 + 4) == it->next_seq &&
            payload <= it->mss && it->len + payload - t.l3 <= 65535 &&
            g->n_bufs < OFFLOAD_GRO_MAX_ITEMS) {
                if (!it->buf) {
                        it->buf = g->bufs + g->n_bufs++ * (size_t) OFFLOAD_MAX_FRAME;
                        memcpy(it->buf, it->data, it->len);
                        it->data = it->buf;
                }
                memcpy(it->buf + it->len, frame + t.payload, payload);
                it->len += payload;
                it->next_seq += (uint32_t) payload;
                it->segments++;
                if (flags & TCP_FLAG_PSH)
                        it->buf[it->l4_off + 13] |= TCP_FLAG_PSH;
                /* Only the last segment may be short or carry PSH; and the kernel takes at
                 * most 64 segments in one super-frame (MAX_SKB_FRAGS-bound). */
                if (payload < it->mss || (flags & TCP_FLAG_PSH) || it->segments >= 64)
                        it->open = false;
                item_fix(it);
                g->coalesced++;
                return 0;
        }
        if (it)
                it->open = false; /* this flow continues in a new item: keep its order */
        if (!coalescable) {
                add_plain(g, frame, len);
                return 0;
        }
        g->items[g->n++] = (struct gro_item){
                .data = frame,
                .len = len,
                .l3_off = (uint16_t) t.l3,
                .l4_off = (uint16_t) t.l4,
                .hdr_len = (uint16_t) t.payload,
                .mss = (uint16_t) payload,
                .next_seq = get32(frame + t.l4 + 4) + (uint32_t) payload,
                .is_v6 = t.v6,
                .open = !(flags & TCP_FLAG_PSH),
                .segments = 1,
        };
        return 0;
}

size_t udp_gro_next(size_t len, size_t segment, size_t *off) {
        size_t left;

        if (*off >= len)
                return 0;
        left = len - *off;
        if (segment > 0 && segment < left)
                left = segment;
        *off += left;
        return left;
}

void gro_reset(struct gro *g) {
        g->n = 0;
        g->n_bufs = 0;
}
