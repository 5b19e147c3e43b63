/* SPDX-License-Identifier: MIT */
/*
 * Runs natcheck against a real STUN server with a real UDP socket and poll(2), and prints the
 * result as key=value lines for tests/stun/coturn.sh:
 *
 *   natcheck-probe [-v] [--public-only] [--bind IP[:PORT]] SERVER_IP[:PORT]
 *
 * Output: local=IP:PORT, public=IP:PORT (or "none"), type=, mapping=, filtering=, rfc5780=yes|no,
 * udp_blocked=yes|no, rtt_us=. With -v every request sent and answer taken goes to stderr with
 * its time since the start, so a failing test shows the retransmission schedule.
 * Exit status: 0 when natcheck finished, 1 on a usage or socket error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "natcheck.h"
#include "util.h"

static bool verbose;

static int parse_endpoint(const char *s, uint16_t default_port, struct sockaddr_in *ret) {
        char host[INET_ADDRSTRLEN + 1];
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t) (colon - s) : strlen(s);
        unsigned long port = default_port;

        if (n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = 0;
        if (colon) {
                char *end;
                errno = 0;
                port = strtoul(colon + 1, &end, 10);
                if (errno || *end || end == colon + 1 || port > 65535)
                        return -EINVAL;
        }
        *ret = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        if (inet_pton(AF_INET, host, &ret->sin_addr) != 1)
                return -EINVAL;
        return 0;
}

static const char *format(const struct sockaddr_storage *ss, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN] = "?";
        uint16_t port = 0;

        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
                inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
                port = ntohs(sin->sin_port);
                snprintf(buf, size, "%s:%u", ip, port);
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;
                inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
                port = ntohs(sin6->sin6_port);
                snprintf(buf, size, "[%s]:%u", ip, port);
        } else
                snprintf(buf, size, "none");
        return buf;
}

/* A wildcard-bound socket: tell natcheck every interface address, so that a mapped address
 * equal to one of them is recognised as "no NAT". */
static int add_interface_addresses(struct natcheck *n) {
        struct ifaddrs *list, *i;

        if (getifaddrs(&list) < 0)
                return -errno;
        for (i = list; i; i = i->ifa_next)
                if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
                        natcheck_add_local_address(n, i->ifa_addr, sizeof(struct sockaddr_in));
        freeifaddrs(list);
        return 0;
}

static int run(const struct sockaddr_in *server, const struct sockaddr_in *bind_to, bool full) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage local = {};
        socklen_t local_len = sizeof(local);
        struct natcheck *n = NULL;
        uint64_t start = now_ns();
        char a[64], b[64];
        int r;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (const struct sockaddr *) bind_to, sizeof(*bind_to)) < 0 ||
            getsockname(fd, (struct sockaddr *) &local, &local_len) < 0) {
                fprintf(stderr, "natcheck-probe: socket: %m\n");
                return 1;
        }

        r = natcheck_new((const struct sockaddr *) server, sizeof(*server),
                         (const struct sockaddr *) &local, local_len, full, start, &n);
        if (r < 0) {
                fprintf(stderr, "natcheck-probe: natcheck_new: %s\n", strerror(-r));
                return 1;
        }
        if (bind_to->sin_addr.s_addr == htonl(INADDR_ANY) && (r = add_interface_addresses(n)) < 0)
                fprintf(stderr, "natcheck-probe: getifaddrs: %s\n", strerror(-r));

        while (!natcheck_done(n)) {
                uint8_t buf[STUN_MAX_MESSAGE_LEN];
                struct sockaddr_storage dst;
                socklen_t dst_len;
                uint64_t now = now_ns(), next;

                while ((r = natcheck_next_packet(n, now, buf, sizeof(buf), &dst, &dst_len)) > 0) {
                        if (verbose)
                                fprintf(stderr, "%8.3f ms  send %d bytes to %s\n",
                                        (double) (now - start) / NSEC_PER_MSEC, r,
                                        format(&dst, a, sizeof(a)));
                        if (sendto(fd, buf, (size_t) r, 0, (struct sockaddr *) &dst, dst_len) < 0)
                                /* ICMP errors from an earlier datagram surface here; the
                                 * retransmission schedule covers a lost request. */
                                if (verbose)
                                        fprintf(stderr, "           sendto: %m\n");
                }
                if (r < 0) {
                        fprintf(stderr, "natcheck-probe: natcheck_next_packet: %s\n", strerror(-r));
                        natcheck_free(n);
                        return 1;
                }
                if (natcheck_done(n))
                        break;

                next = natcheck_next_timeout(n);
                now = now_ns();
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int timeout_ms =
                        next <= now ? 0 : (int) ((next - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
                if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
                        fprintf(stderr, "natcheck-probe: poll: %m\n");
                        natcheck_free(n);
                        return 1;
                }
                for (;;) {
                        struct sockaddr_storage from;
                        socklen_t from_len = sizeof(from);
                        ssize_t len = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *) &from,
                                               &from_len);
                        if (len < 0)
                                break; /* EAGAIN, or an ICMP error for an earlier send */
                        now = now_ns();
                        bool ours = natcheck_input(n, buf, (size_t) len, (struct sockaddr *) &from,
                                                   from_len, now);
                        if (verbose)
                                fprintf(stderr, "%8.3f ms  recv %zd bytes from %s%s\n",
                                        (double) (now - start) / NSEC_PER_MSEC, len,
                                        format(&from, a, sizeof(a)), ours ? "" : " (ignored)");
                }
        }

        const struct natcheck_result *res = natcheck_result(n);
        printf("local=%s\n", format(&local, a, sizeof(a)));
        printf("public=%s\n",
               res->has_public ? format(&res->public_endpoint, b, sizeof(b)) : "none");
        printf("type=%s\n", natcheck_type_string(res));
        printf("mapping=%s\n", nat_mapping_to_string(res->mapping));
        printf("filtering=%s\n", nat_filtering_to_string(res->filtering));
        printf("rfc5780=%s\n", res->server_supports_rfc5780 ? "yes" : "no");
        printf("udp_blocked=%s\n", res->udp_blocked ? "yes" : "no");
        printf("rtt_us=%" PRIu64 "\n", res->rtt_ns / 1000);
        printf("elapsed_ms=%" PRIu64 "\n", (now_ns() - start) / NSEC_PER_MSEC);
        natcheck_free(n);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"verbose", no_argument, NULL, 'v'},
                {"public-only", no_argument, NULL, 'p'},
                {"bind", required_argument, NULL, 'b'},
                {},
        };
        struct sockaddr_in server, bind_to = {.sin_family = AF_INET};
        bool full = true;
        int c;

        while ((c = getopt_long(argc, argv, "vpb:", options, NULL)) >= 0)
                switch (c) {
                case 'v':
                        verbose = true;
                        break;
                case 'p':
                        full = false;
                        break;
                case 'b':
                        if (parse_endpoint(optarg, 0, &bind_to) < 0) {
                                fprintf(stderr, "natcheck-probe: bad --bind \"%s\"\n", optarg);
                                return 1;
                        }
                        break;
                default:
                        return 1;
                }
        if (optind != argc - 1 || parse_endpoint(argv[optind], 3478, &server) < 0) {
                fprintf(stderr, "usage: natcheck-probe [-v] [--public-only] [--bind IP[:PORT]] "
                                "SERVER_IP[:PORT]\n");
                return 1;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        return run(&server, &bind_to, full);
}
