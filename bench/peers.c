/* SPDX-License-Identifier: MIT */
/*
 * Memory per idle peer (issue 11, section 7: goal under 16 KiB): a device's peer table filled
 * with N peers by device_add_peer(), as device_new() fills it from the peers: list (each with a
 * name and an address string, no session), measured as the heap the peers take (mallinfo2's
 * bytes in use, before and after) and as resident memory (VmRSS), divided by N. The table's own
 * slots (the data threads' pointer array, the order and retirement arrays) are part of struct
 * device whatever the number of peers, and are reported apart. Not a test: it prints figures.
 *   build/bench/bench-peers [PEERS]
 */
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

static long rss_kib(void) {
        char line[256];
        long kib = -1;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

int main(int argc, char **argv) {
        size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : MESH_MAX_PEERS;
        struct device *d;
        struct mallinfo2 before, after;
        long rss_before, rss_after;

        if (sodium_init() < 0 || n == 0 || n > MESH_MAX_PEERS)
                return 1;
        d = calloc(1, sizeof(*d));
        if (!d)
                return 1;
        d->keys.pattern = NOISE_PATTERN_NNPSK0;
        rss_before = rss_kib();
        before = mallinfo2();
        for (size_t i = 0; i < n; i++) {
                struct peer *p;
                char name[32];
                snprintf(name, sizeof(name), "node-%zu", i);
                if (device_add_peer(d, name, &p) < 0)
                        return 1;
                p->address = strdup("198.51.100.200:9001");
                if (!p->address)
                        return 1;
                /* What an idle configured peer has: its address, timers never run. */
                struct endpoint e = { .len = sizeof(struct sockaddr_in) };
                e.addr.in.sin_family = AF_INET;
                e.addr.in.sin_port = htons(9001);
                peer_set_endpoint(p, &e);
        }
        after = mallinfo2();
        rss_after = rss_kib();
        printf("peers: %zu\n", n);
        printf("sizeof(struct peer): %zu bytes\n", sizeof(struct peer));
        printf("heap per idle peer: %.0f bytes (%.2f KiB)\n",
               (double) (after.uordblks - before.uordblks) / (double) n,
               (double) (after.uordblks - before.uordblks) / (double) n / 1024);
        printf("resident memory per idle peer: %.2f KiB\n",
               (double) (rss_after - rss_before) / (double) n);
        printf("the table's fixed part (in struct device, any number of peers): %zu KiB\n",
               (sizeof(d->by_id) + sizeof(d->slot_taken) + sizeof(d->dying) +
                sizeof(d->dp.peers)) / 1024);
        for (size_t i = 0; i < d->n_peers; i++)
                peer_free(d->by_id[i]);
        free(d);
        return 0;
}
