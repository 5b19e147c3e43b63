/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the segmentation offloads (src/offload.c): a virtio_net_hdr from the
 * kernel and the frames coalesced from peers are both untrusted here. Each input is
 *   - a 10-byte vnet header (little-endian, as the TAP gives it) and a frame: segmented for two
 *     tunnel MTUs; every segment must fit its slot and the segments' payload must add up;
 *     the segments are then coalesced again, and every item must stay inside its buffer;
 *   - the same bytes read as frames with 2-byte length prefixes, coalesced as one receive batch;
 *   - the same bytes as a UDP GRO receive buffer whose segment size is the first two bytes (as
 *     the kernel's UDP_GRO cmsg would say): the datagrams udp_gro_next() cuts must tile the
 *     buffer exactly, none longer than the segment size, and each is then coalesced as a
 *     frame (trailing bytes past its IP packet, like the tunnel's padding, included).
 * The seeds (corpus/fuzz-offload/) are TCP super-frames over IPv4 and IPv6 (one with a
 * Hop-by-Hop, a Destination Options and a Routing header) and a frame that only wants its
 * checksum filled in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { STRIDE = 9018 };

static uint8_t *seg_out, *gro_bufs;
static struct gro *gro;

static void check_items(const struct gro *g) {
        for (size_t i = 0; i < g->n; i++) {
                const struct gro_item *it = &g->items[i];
                if (it->buf && (it->data != it->buf || it->len > OFFLOAD_MAX_FRAME))
                        abort();
                if (it->vh.gso_type && (it->vh.gso_size == 0 || it->vh.hdr_len >= it->len ||
                                        it->vh.csum_start + it->vh.csum_offset + 2u > it->len))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const size_t mtus[] = {1394, 9014};
        size_t lens[OFFLOAD_MAX_SEGMENTS], n;
        struct vnet_hdr h;

        if (!seg_out) {
                seg_out = malloc((size_t) OFFLOAD_MAX_SEGMENTS * STRIDE);
                gro_bufs = malloc((size_t) OFFLOAD_GRO_MAX_ITEMS * OFFLOAD_MAX_FRAME);
                gro = calloc(1, sizeof(*gro));
                if (!seg_out || !gro_bufs || !gro)
                        abort();
                gro->bufs = gro_bufs;
        }
        if (size < sizeof(struct vnet_hdr) || size > OFFLOAD_MAX_FRAME + sizeof(struct vnet_hdr))
                return 0;
        vnet_hdr_from_le(&h, data);
        for (size_t m = 0; m < 2; m++) {
                const uint8_t *frame = data + sizeof(h);
                size_t len = size - sizeof(h), total = 0;

                if (offload_segment(&h, frame, len, mtus[m], seg_out, STRIDE, OFFLOAD_MAX_SEGMENTS,
                                    lens, &n) < 0)
                        continue;
                if (n == 0 || n > OFFLOAD_MAX_SEGMENTS)
                        abort();
                gro_reset(gro);
                for (size_t i = 0; i < n; i++) {
                        if (lens[i] > mtus[m] || lens[i] == 0)
                                abort();
                        total += lens[i];
                        if (gro_add(gro, seg_out + i * STRIDE, lens[i]) < 0)
                                break;
                }
                if (n == 1 && total != len)
                        abort();
                check_items(gro);
        }

        /* The same bytes as one receive batch of length-prefixed frames. */
        gro_reset(gro);
        for (size_t off = 0; off + 2 <= size;) {
                size_t len = (size_t) data[off] << 8 | data[off + 1];
                off += 2;
                if (len > size - off)
                        len = size - off;
                if (gro_add(gro, data + off, len) < 0)
                        break;
                off += len;
        }
        check_items(gro);

        /* The same bytes as a coalesced UDP receive buffer. */
        if (size >= 2) {
                size_t segment = (size_t) data[0] << 8 | data[1], off = 0, k, covered = 0;
                size_t count = 0;
                gro_reset(gro);
                while ((k = udp_gro_next(size, segment, &off)) > 0) {
                        if (off > size || off - k != covered || (segment && k > segment))
                                abort();
                        covered = off;
                        if (++count > size)
                                abort(); /* no progress */
                        if (gro_add(gro, data + off - k, k) == -ENOSPC) {
                                check_items(gro);
                                gro_reset(gro);
                        }
                }
                if (covered != size)
                        abort();
                check_items(gro);
        }
        return 0;
}
