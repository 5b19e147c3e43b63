/* SPDX-License-Identifier: MIT */
/*
 * Who owns the other end of a local TCP connection, asked of the kernel with NETLINK_SOCK_DIAG
 * (inet_diag), as `ss -e` does: the HTTP API learns the uid of a loopback client from it, since
 * TCP carries no credentials (SO_PEERCRED is for Unix sockets only).
 */
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

/* The uid of the TCP socket bound to local and connected to remote: for a client of ours,
 * local is the client's address (our getpeername) and remote ours (our getsockname). One exact
 * lookup (not a dump), answered at once by the kernel. -ENOENT when no such socket exists (the
 * client closed it), -EAFNOSUPPORT for a family other than IPv4/IPv6, other -errno from netlink. */
int sockdiag_tcp_uid(const struct sockaddr *local, const struct sockaddr *remote, uid_t *ret_uid);
