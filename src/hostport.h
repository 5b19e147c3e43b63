/* SPDX-License-Identifier: MIT */
/*
 * host[:port] as every program reads it: the configuration (peer.address, relay.server,
 * nat.stun_server), the daemon's D-Bus Connect, and shadowmeshctl before it calls the daemon.
 * One parser, so a port of 99999 or a host of 192.0.2.300 gets the same reason everywhere.
 * Pure: no resolving, no logging.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HOSTPORT_NAME_MAX 253 /* RFC 1035: a name of at most 253 characters in text form */

/* The wording shared by `shadowmeshd --check` and shadowmeshctl: the input, then the reason. */
#define HOSTPORT_ERROR_FMT "'%s' is not host[:port]: %s"

/* "host", "host:port", "1.2.3.4:port", "[v6]:port" or a bare IPv6 address. A host that is all
 * digits and dots must be an IPv4 address (no top-level domain is numeric). ret_host is
 * malloc'd; without a port, ret_port is default_port. On -EINVAL, *ret_why (never NULL) is an
 * English constant saying what is wrong, marked for gettext so that shadowmeshctl translates
 * it; -ENOMEM leaves it "out of memory". The outputs are untouched on failure but for ret_why. */
int hostport_parse(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port,
                   const char **ret_why);

/* The other way: "host:port", or "[host]:port" for an IPv6 literal (what hostport_parse reads
 * back). hostport_format writes it into buf (HOSTPORT_STRLEN is always enough; -ENAMETOOLONG
 * when size is not); hostport_join returns it malloc'd (NULL: out of memory). */
#define HOSTPORT_STRLEN (HOSTPORT_NAME_MAX + sizeof("[]:65535"))
int hostport_format(const char *host, uint16_t port, char *buf, size_t size);
char *hostport_join(const char *host, uint16_t port);

/* A port number, 1 to 65535, decimal digits only. */
int hostport_parse_port(const char *s, uint16_t *ret);
