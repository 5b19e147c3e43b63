/* SPDX-License-Identifier: MIT */
/*
 * The learning switch's table at mesh scale (issue: 1,000 peers, 100,000 addresses): the cost of
 * a lookup (what the transmit side pays per frame), of a refresh and of learning (what the
 * receive side pays), and the table's memory. Not a test: it prints figures. Run:
 *   build/bench/bench-mactable [PEERS] [ADDRESSES]
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mactable.h"
#include "util.h" /* now_ns(): CLOCK_MONOTONIC */

int main(int argc, char **argv) {
        uint32_t peers = argc > 1 ? (uint32_t) strtoul(argv[1], NULL, 10) : 1000;
        uint32_t n = argc > 2 ? (uint32_t) strtoul(argv[2], NULL, 10) : 100000;
        enum { LOOKUPS = 20 * 1000 * 1000, ROUNDS = 5 };
        struct mactable t;
        uint8_t (*macs)[6];
        uint32_t *order, sink = 0;
        double best_lookup = 1e9, best_refresh = 1e9, learn_ns;
        uint64_t t0;

        if (sodium_init() < 0 || peers == 0 || n == 0)
                return 1;
        macs = malloc(sizeof(*macs) * n);
        order = malloc(sizeof(*order) * LOOKUPS);
        if (!macs || !order || mactable_init(&t, n) < 0)
                return 1;
        /* Random unicast addresses, as virtual machines and containers get them. */
        randombytes_buf(macs, sizeof(*macs) * n);
        for (uint32_t i = 0; i < n; i++)
                macs[i][0] = (uint8_t) ((macs[i][0] & 0xfc) | 0x02);
        /* Frames go to random addresses: every lookup misses the CPU cache, the worst case. */
        for (uint32_t i = 0; i < LOOKUPS; i++)
                order[i] = randombytes_uniform(n);

        t0 = now_ns();
        for (uint32_t i = 0; i < n; i++)
                mactable_learn(&t, macs[i], i % peers, 1000);
        learn_ns = (double) (now_ns() - t0) / n;

        for (int round = 0; round < ROUNDS; round++) {
                t0 = now_ns();
                for (uint32_t i = 0; i < LOOKUPS; i++)
                        sink += mactable_lookup(&t, macs[order[i]], 1001);
                double ns = (double) (now_ns() - t0) / LOOKUPS;
                if (ns < best_lookup)
                        best_lookup = ns;
                t0 = now_ns();
                for (uint32_t i = 0; i < LOOKUPS / 4; i++)
                        mactable_learn(&t, macs[order[i]], order[i] % peers, 1002 + (uint32_t) round);
                ns = (double) (now_ns() - t0) / (LOOKUPS / 4);
                if (ns < best_refresh)
                        best_refresh = ns;
        }
        /* Every address must resolve to its peer, or the figures mean nothing. */
        for (uint32_t i = 0; i < n; i++)
                if (mactable_lookup(&t, macs[i], 1010) != i % peers) {
                        fprintf(stderr, "address %" PRIu32 " resolves wrongly\n", i);
                        return 1;
                }
        printf("peers %" PRIu32 ", addresses %" PRIu32 ", slots %zu\n", peers, n, t.mask + 1);
        printf("lookup (random address, best of %d x %d): %.1f ns, %.1f million/s\n", ROUNDS,
               LOOKUPS, best_lookup, 1000.0 / best_lookup);
        printf("refresh (a known address seen again): %.1f ns\n", best_refresh);
        printf("learn (a new address): %.1f ns\n", learn_ns);
        printf("table memory: %.2f MiB (%.1f bytes per address)\n",
               (double) (t.mask + 1) * sizeof(struct mactable_slot) / (1024.0 * 1024.0),
               (double) (t.mask + 1) * sizeof(struct mactable_slot) / n);
        printf("(checksum %" PRIu32 ")\n", sink);
        mactable_done(&t);
        free(order);
        free(macs);
        return 0;
}
