/* SPDX-License-Identifier: MIT */
/* host[:port] parsing shared by the configuration, the daemon's bus API and shadowmeshctl. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostport.h"

/* Marks a reason for xgettext (po/POTFILES.in); shadowmeshctl translates it where it prints. */
#define N_(s) s

int hostport_parse_port(const char *s, uint16_t *ret) {
        uint32_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *c = s; *c; c++) {
                if (*c < '0' || *c > '9')
                        return -EINVAL;
                v = v * 10 + (uint32_t) (*c - '0');
                if (v > 65535)
                        return -ERANGE;
        }
        if (v == 0)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

/* Host names as resolvers accept them; a name of digits and dots only must be an IPv4
 * literal, so that 192.0.2.300 is an error here and not a DNS query later. */
static const char *host_name_problem(const char *s, size_t len) {
        bool numeric = true;
        char buf[INET_ADDRSTRLEN];
        struct in_addr a;

        if (len == 0)
                return N_("empty host");
        if (len > HOSTPORT_NAME_MAX)
                return N_("host name longer than 253 characters");
        for (size_t i = 0; i < len; i++) {
                if (!isalnum((unsigned char) s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
                        return N_("invalid character in the host name");
                if (!isdigit((unsigned char) s[i]) && s[i] != '.')
                        numeric = false;
        }
        if (!numeric)
                return NULL;
        if (len >= sizeof(buf))
                return N_("not an IPv4 address (four numbers from 0 to 255, separated by dots)");
        memcpy(buf, s, len);
        buf[len] = 0;
        if (inet_pton(AF_INET, buf, &a) != 1)
                return N_("not an IPv4 address (four numbers from 0 to 255, separated by dots)");
        return NULL;
}

int hostport_parse(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port,
                   const char **ret_why) {
        const char *host, *port = NULL, *colon;
        size_t host_len;
        uint16_t p = default_port;
        char *h;

        *ret_why = N_("empty host");
        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                char buf[INET6_ADDRSTRLEN];
                struct in6_addr a;

                *ret_why = N_("missing ']' after the IPv6 address");
                if (!end)
                        return -EINVAL;
                host = s + 1;
                host_len = (size_t) (end - host);
                *ret_why = N_("not an IPv6 address between '[' and ']'");
                if (host_len == 0 || host_len >= sizeof(buf))
                        return -EINVAL;
                memcpy(buf, host, host_len);
                buf[host_len] = 0;
                if (inet_pton(AF_INET6, buf, &a) != 1)
                        return -EINVAL;
                *ret_why = N_("expected ':port' after ']'");
                if (end[1] == ':')
                        port = end + 2;
                else if (end[1] != 0)
                        return -EINVAL;
        } else if ((colon = strchr(s, ':')) && strchr(colon + 1, ':')) {
                /* Two colons or more: a bare IPv6 address, which cannot carry a port. */
                struct in6_addr a;

                *ret_why = N_("not a valid IPv6 address (write [address]:port to give a port)");
                if (inet_pton(AF_INET6, s, &a) != 1)
                        return -EINVAL;
                host = s;
                host_len = strlen(s);
        } else {
                host = s;
                host_len = colon ? (size_t) (colon - s) : strlen(s);
                if (colon)
                        port = colon + 1;
                *ret_why = host_name_problem(host, host_len);
                if (*ret_why)
                        return -EINVAL;
        }
        if (port) {
                *ret_why = N_("port must be a number from 1 to 65535");
                if (hostport_parse_port(port, &p) < 0)
                        return -EINVAL;
        }
        *ret_why = "out of memory";
        h = strndup(host, host_len);
        if (!h)
                return -ENOMEM;
        *ret_host = h;
        *ret_port = p;
        *ret_why = NULL;
        return 0;
}

int hostport_format(const char *host, uint16_t port, char *buf, size_t size) {
        int n = snprintf(buf, size, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

char *hostport_join(const char *host, uint16_t port) {
        char *s;

        return asprintf(&s, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port) < 0 ? NULL : s;
}
