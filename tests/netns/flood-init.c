/* SPDX-License-Identifier: MIT */
/*
 * flood-init KEYHEX HOST PORT COUNT: send COUNT shared-key-mode handshake initiations with a
 * valid mac1 (computed from the shared key, as a member would) but garbage Noise contents, as
 * fast as the socket takes them, then count the cookie replies (type 3, 64 bytes) that come
 * back within a second. Prints "sent N cookies M". This is what puts a daemon "under load":
 * every datagram passes the cheap mac1 check and would cost a Diffie-Hellman operation.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "cookie.h"
#include "messages.h"
#include "util.h"

int main(int argc, char **argv) {
        struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
        struct message_handshake_initiation_psk m;
        struct cookie_maker maker;
        uint8_t psk[32], buf[256];
        unsigned long count, sent = 0, cookies = 0;
        int fd;

        if (argc != 5 || hex_decode(argv[1], psk, sizeof(psk)) < 0 || sodium_init() < 0) {
                fprintf(stderr, "usage: flood-init KEYHEX HOST PORT COUNT\n");
                return 2;
        }
        count = strtoul(argv[4], NULL, 10);
        if (getaddrinfo(argv[2], argv[3], &hints, &ai) != 0) {
                fprintf(stderr, "flood-init: cannot resolve %s\n", argv[2]);
                return 2;
        }
        fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                perror("flood-init: socket");
                return 2;
        }
        cookie_maker_init(&maker, psk);
        for (unsigned long i = 0; i < count; i++) {
                randombytes_buf(&m, sizeof(m));
                put_le32(&m.header, MESSAGE_HANDSHAKE_INITIATION);
                memset(&m.macs, 0, sizeof(m.macs));
                cookie_add_mac_to_packet(&maker, (uint8_t *) &m, sizeof(m), now_ns());
                if (send(fd, &m, sizeof(m), 0) == (ssize_t) sizeof(m))
                        sent++;
        }
        /* Collect cookie replies until the line is quiet for a second. */
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 1000) <= 0)
                        break;
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n == (ssize_t) sizeof(struct message_handshake_cookie) &&
                    get_le32(buf) == MESSAGE_HANDSHAKE_COOKIE)
                        cookies++;
        }
        printf("sent %lu cookies %lu\n", sent, cookies);
        freeaddrinfo(ai);
        return 0;
}
