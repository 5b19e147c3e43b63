/* SPDX-License-Identifier: MIT */
/* Unit tests' endpoints from literal addresses (test data: a bad literal aborts). */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "udp.h"

static inline struct endpoint ep4(const char *addr, uint16_t port) {
        struct endpoint e = { .len = sizeof(struct sockaddr_in) };

        e.addr.in.sin_family = AF_INET;
        e.addr.in.sin_port = htons(port);
        if (inet_pton(AF_INET, addr, &e.addr.in.sin_addr) != 1)
                abort();
        return e;
}

static inline struct endpoint ep6(const char *addr, uint16_t port) {
        struct endpoint e = { .len = sizeof(struct sockaddr_in6) };

        e.addr.in6.sin6_family = AF_INET6;
        e.addr.in6.sin6_port = htons(port);
        if (inet_pton(AF_INET6, addr, &e.addr.in6.sin6_addr) != 1)
                abort();
        return e;
}
