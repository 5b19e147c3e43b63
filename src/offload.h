/* SPDX-License-Identifier: MIT */
/*
 * Segmentation offloads in userspace, for a TAP opened with IFF_VNET_HDR (DESIGN "Data path"):
 *
 *   transmit: the kernel hands over an Ethernet frame of up to 64 KiB with a virtio_net_hdr
 *             (a TCP "super-frame", or a frame whose checksum is left to us). offload_segment()
 *             cuts it into frames that fit the tunnel's MTU, each a complete, checksummed
 *             Ethernet frame, so every one travels as its own data message and a lost datagram
 *             costs one segment. The wire format does not change: a peer without offloads
 *             receives ordinary frames.
 *   receive:  offload_gro_*() coalesces consecutive in-order TCP segments of one flow back
 *             into a super-frame, written to the TAP with a virtio_net_hdr (gso_type TCPV4 or
 *             TCPV6), so the kernel's stack handles one frame instead of forty. Anything else
 *             passes through unchanged, in order within its flow.
 *
 * Pure: bytes in, bytes out, no system calls, no logging. Every length comes from the frame or
 * the header and is checked against the buffer before it is used, since a virtio_net_hdr from
 * the kernel and a frame from a peer are both untrusted input here (tests/fuzz/fuzz-offload.c).
 * Only TCP over IPv4 without IP options, and over IPv6, is segmented; IPv6 extension headers
 * that the kernel may put in front of TCP (Hop-by-Hop, Destination Options, Routing) are
 * copied into every segment. Coalescing takes IPv4 without options and IPv6 without extension
 * headers (like wireguard-go's tun offload); anything else passes through unchanged, and any
 * other GSO request is refused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct virtio_net_hdr (include/uapi/linux/virtio_net.h), as a TAP reads and writes it on a
 * little-endian host (legacy virtio: native endianness; tap.c sets TUNSETVNETLE to be sure). */
struct vnet_hdr {
        uint8_t flags;
        uint8_t gso_type;
        uint16_t hdr_len;
        uint16_t gso_size;
        uint16_t csum_start;
        uint16_t csum_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vnet_hdr) == 10, "virtio_net_hdr is 10 bytes");

enum {
        VNET_HDR_F_NEEDS_CSUM = 1,
        VNET_HDR_F_DATA_VALID = 2,
        VNET_HDR_GSO_NONE = 0,
        VNET_HDR_GSO_TCPV4 = 1,
        VNET_HDR_GSO_TCPV6 = 4,
        VNET_HDR_GSO_ECN = 0x80,
};

enum {
        /* The largest frame the kernel hands over or takes with a vnet header: 64 KiB of IP
         * packet plus the Ethernet header (and one VLAN tag). */
        OFFLOAD_MAX_FRAME = 65535 + 18,
        /* Segments one super-frame may become: 64 KiB / Linux's smallest MSS (TCP_MIN_MSS). */
        OFFLOAD_MIN_MSS = 88,
        OFFLOAD_MAX_SEGMENTS = OFFLOAD_MAX_FRAME / OFFLOAD_MIN_MSS + 1,
        /* Frames one receive batch may hand to the coalescer, and flows it tracks at once. */
        OFFLOAD_GRO_MAX_ITEMS = 256,
        /* IPv6 extension headers walked before TCP (at most one of each kind is usual, and
         * each takes at least 8 bytes of the frame anyway). */
        OFFLOAD_MAX_IPV6_EXTENSIONS = 8,
};

/* Internet checksum (RFC 1071) helpers: 32-bit partial sums, folded at the end. */
uint32_t inet_csum_partial(const void *data, size_t len, uint32_t sum);
uint16_t inet_csum_fold(uint32_t sum);

/*
 * Transmit. frame/len: what the TAP gave after the vnet header h (host order, as
 * vnet_hdr_from_le() returns it). Writes the frames to send into out[i * stride], their lengths
 * into ret_lens[i], and their number into *ret_n (at most max_out; each at most
 * max_frame_len bytes: the TAP MTU plus the Ethernet header). A frame without GSO but with
 * NEEDS_CSUM gets its checksum filled in; a frame with neither is copied as it is.
 * -EINVAL: the header does not describe the frame (lengths, offsets, protocol); -EMSGSIZE:
 * more segments than max_out, or a plain frame longer than max_frame_len.
 */
int offload_segment(const struct vnet_hdr *h, const uint8_t *frame, size_t len, size_t max_frame_len,
                    uint8_t *out, size_t stride, size_t max_out, size_t *ret_lens, size_t *ret_n);

void vnet_hdr_from_le(struct vnet_hdr *h, const uint8_t raw[static sizeof(struct vnet_hdr)]);
void vnet_hdr_to_le(const struct vnet_hdr *h, uint8_t raw[static sizeof(struct vnet_hdr)]);

/*
 * Receive. One batch: gro_add() each frame in arrival order (the frame must stay valid and
 * unchanged until the batch is written), then write items[0..n) to the TAP, each with its vnet
 * header, then gro_reset(). Coalesced frames live in bufs (OFFLOAD_GRO_MAX_ITEMS buffers of
 * OFFLOAD_MAX_FRAME bytes, owned by the caller, allocated once).
 */
struct gro_item {
        const uint8_t *data;
        size_t len;
        struct vnet_hdr vh; /* host order; all zero for a frame passed through */
        /* Coalescing state, private. */
        uint8_t *buf;    /* non-NULL once this item holds more than its first segment */
        uint16_t l3_off, l4_off, hdr_len, mss;
        uint32_t next_seq;
        bool is_v6, open;
        uint8_t segments;
};

struct gro {
        struct gro_item items[OFFLOAD_GRO_MAX_ITEMS];
        size_t n;
        uint8_t *bufs;  /* OFFLOAD_GRO_MAX_ITEMS * OFFLOAD_MAX_FRAME bytes */
        size_t n_bufs;  /* buffers in use */
        uint64_t coalesced; /* segments merged into another (a counter for status) */
};

/* UDP GRO receive: a buffer of len bytes the kernel coalesced from datagrams of segment bytes
 * each (the last may be shorter; segment 0: the buffer is one datagram). Returns the length of
 * the datagram starting at *off and advances *off past it; 0 when none is left. */
size_t udp_gro_next(size_t len, size_t segment, size_t *off);

/* Adds one frame (bytes past its IP packet, such as padding, are left out); returns 0, or
 * -ENOSPC when the batch is full (write it out and reset first). */
int gro_add(struct gro *g, const uint8_t *frame, size_t len);
void gro_reset(struct gro *g);
