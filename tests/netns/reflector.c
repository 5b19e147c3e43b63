/* SPDX-License-Identifier: MIT */
/*
 * The attacker of issue 9, item 1, for reflection.sh: it sees a node's handshake initiations on
 * their way to the peer and sends each one back to the node it came from, unchanged, from its
 * own UDP port, at once (the node's handshake is then in flight) and once more DELAY_MS later
 * (the handshake has finished by then). It knows no key.
 *
 *   reflector IFACE PORT DELAY_MS
 *
 * IFACE is watched with a packet socket for IPv4 UDP datagrams to PORT whose payload is an
 * initiation (type 1, either mode's size). Prints "listening" once ready, and "bounced N" after
 * each bounce (N counts both sends). Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "messages.h"

enum { PENDING_MAX = 64 };

struct pending {
        struct sockaddr_in to;
        uint8_t data[sizeof(struct message_handshake_initiation)];
        size_t len;
        uint64_t due_ms;
};

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void die(const char *what) {
        fprintf(stderr, "reflector: %s: %s\n", what, strerror(errno));
        exit(EXIT_FAILURE);
}

int main(int argc, char **argv) {
        struct pending pending[PENDING_MAX];
        size_t n_pending = 0;
        unsigned long bounced = 0;
        struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
        int pfd, ufd;
        unsigned port;
        uint64_t delay;

        if (argc != 4) {
                fprintf(stderr, "usage: reflector IFACE PORT DELAY_MS\n");
                return 64;
        }
        port = (unsigned) strtoul(argv[2], NULL, 10);
        delay = strtoull(argv[3], NULL, 10);
        ll.sll_ifindex = (int) if_nametoindex(argv[1]);
        if (ll.sll_ifindex == 0)
                die(argv[1]);
        /* Cooked packets: the IP header first, whatever the link layer. */
        pfd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
        if (pfd < 0 || bind(pfd, (struct sockaddr *) &ll, sizeof(ll)) < 0)
                die("packet socket");
        ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (ufd < 0)
                die("udp socket");
        printf("listening\n");
        fflush(stdout);

        for (;;) {
                uint64_t now = now_ms();
                int timeout = -1;

                for (size_t i = 0; i < n_pending;) {
                        if (pending[i].due_ms <= now) {
                                if (sendto(ufd, pending[i].data, pending[i].len, 0,
                                           (struct sockaddr *) &pending[i].to,
                                           sizeof(pending[i].to)) >= 0)
                                        printf("bounced %lu\n", ++bounced);
                                pending[i] = pending[--n_pending];
                                continue;
                        }
                        if (timeout < 0 || pending[i].due_ms - now < (uint64_t) timeout)
                                timeout = (int) (pending[i].due_ms - now);
                        i++;
                }
                fflush(stdout);

                struct pollfd p = { .fd = pfd, .events = POLLIN };
                if (poll(&p, 1, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        die("poll");
                }
                if (!(p.revents & POLLIN))
                        continue;

                uint8_t pkt[2048];
                struct sockaddr_ll from;
                socklen_t fromlen = sizeof(from);
                ssize_t k = recvfrom(pfd, pkt, sizeof(pkt), 0, (struct sockaddr *) &from, &fromlen);
                if (k < (ssize_t) sizeof(struct iphdr) || from.sll_pkttype == PACKET_OUTGOING)
                        continue;
                const struct iphdr *ip = (const struct iphdr *) pkt;
                size_t ihl = (size_t) ip->ihl * 4;
                if (ip->version != 4 || ip->protocol != IPPROTO_UDP || ihl < sizeof(*ip) ||
                    (size_t) k < ihl + sizeof(struct udphdr))
                        continue;
                const struct udphdr *udp = (const struct udphdr *) (pkt + ihl);
                const uint8_t *payload = pkt + ihl + sizeof(*udp);
                size_t len = (size_t) k - ihl - sizeof(*udp);
                if (ntohs(udp->dest) != port || len < 4 || payload[0] != MESSAGE_HANDSHAKE_INITIATION ||
                    (len != sizeof(struct message_handshake_initiation) &&
                     len != sizeof(struct message_handshake_initiation_psk)))
                        continue;

                /* Back where it came from: now, and again after the delay. */
                for (unsigned copy = 0; copy < 2 && n_pending < PENDING_MAX; copy++) {
                        struct pending *q = &pending[n_pending++];
                        q->to = (struct sockaddr_in){ .sin_family = AF_INET,
                                                      .sin_port = udp->source,
                                                      .sin_addr.s_addr = ip->saddr };
                        memcpy(q->data, payload, len);
                        q->len = len;
                        q->due_ms = now_ms() + (copy ? delay : 0);
                }
        }
}
