/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <string.h>

#include "nm-shadowmesh-peer-id.h"

char *nm_shadowmesh_peer_identity(const char *host, uint16_t port) {
        g_autofree char *h = g_ascii_strdown(host, -1);
        struct in6_addr a6;
        struct in_addr a4;
        char buf[INET6_ADDRSTRLEN];
        size_t n = strlen(h);

        if (inet_pton(AF_INET6, h, &a6) == 1) {
                if (IN6_IS_ADDR_V4MAPPED(&a6))
                        inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof(buf));
                else
                        inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
                return g_strdup_printf("%s|%u", buf, port);
        }
        if (inet_pton(AF_INET, h, &a4) == 1) {
                inet_ntop(AF_INET, &a4, buf, sizeof(buf));
                return g_strdup_printf("%s|%u", buf, port);
        }
        if (n > 1 && h[n - 1] == '.')
                h[n - 1] = '\0';
        return g_strdup_printf("%s|%u", h, port);
}
