/* SPDX-License-Identifier: MIT */
/*
 * Plain-UDP probes for the NAT tests: they check that the namespaces behave like the NATs the
 * test meant to build (mapping and filtering), without the daemon. IPv4 only.
 *
 *   nat-udp whoami IP:PORT
 *       Answer every datagram with the text "IP:PORT" of its sender (a STUN-like reflector
 *       without STUN). Prints "bound" once listening; runs until killed.
 *   nat-udp ask [-b IP:PORT] [-l SECONDS] SERVER:PORT...
 *       From one socket, ask each whoami SERVER in turn (5 tries, 200 ms apart) and print
 *       "SERVER mapped IP:PORT" or "SERVER timeout". With -l, then listen for SECONDS and print
 *       "from IP:PORT" for each datagram from a source that was not asked (unsolicited
 *       traffic that the NAT let through); every line is flushed at once.
 *   nat-udp send [-b IP:PORT] DST:PORT [COUNT]
 *       Send COUNT (default 5) datagrams, 50 ms apart, from one socket.
 *   nat-udp rfc5780 [-b IP:PORT] SERVER:PORT
 *       RFC 5780 behaviour discovery from one socket against a STUN server with OTHER-ADDRESS
 *       (section 4.4 filtering, then 4.3 mapping), written independently of src/natcheck.c so
 *       the two can be compared. Prints one line per test ("test1 mapped IP:PORT other
 *       IP:PORT", "filtering2 answered|timeout", "filtering3 answered|timeout", "mapping2 mapped
 *       ...", "mapping3 mapped ...") and then "mapping M", "filtering F", "type T" with the
 *       names natcheck.h uses.
 *   nat-udp punch [-b IP:PORT] PEER:PORT SECONDS
 *       Hole punching as a peer-to-peer node does it: every 100 ms send "punch heard=H" to PEER
 *       and to every address a punch came from (peer-reflexive candidates). Prints "from
 *       IP:PORT" once per new source. Done (exit 0, "punched via IP:PORT") once a punch was
 *       received and the other side reported hearing ours, after a few more sends so that the
 *       other side learns it too; exit 1 ("no punch ...") at the deadline.
 *
 * Exit status 0 on success, 1 on a probe that failed (timeout), 2 on a usage or socket error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
        MAX_SOURCES = 16,
        MAX_SERVERS = 8,
        ASK_TRIES = 5,
        ASK_INTERVAL_MS = 200,
        SEND_INTERVAL_MS = 50,
        PUNCH_INTERVAL_MS = 100,
        PUNCH_EXTRA_SENDS = 5,
};

_Noreturn static void die(const char *what) {
        fprintf(stderr, "nat-udp: %s: %s\n", what, strerror(errno));
        exit(2);
}

_Noreturn static void usage(void) {
        fprintf(stderr, "usage: nat-udp whoami IP:PORT\n"
                        "       nat-udp ask [-b IP:PORT] [-l SECONDS] SERVER:PORT...\n"
                        "       nat-udp send [-b IP:PORT] DST:PORT [COUNT]\n"
                        "       nat-udp rfc5780 [-b IP:PORT] SERVER:PORT\n"
                        "       nat-udp punch [-b IP:PORT] PEER:PORT SECONDS\n");
        exit(2);
}

static unsigned long parse_ulong(const char *s, unsigned long max) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v > max) {
                fprintf(stderr, "nat-udp: bad number '%s'\n", s);
                exit(2);
        }
        return v;
}

static struct sockaddr_in parse_endpoint(const char *s) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        char host[INET_ADDRSTRLEN];
        const char *colon = strrchr(s, ':');

        if (!colon || (size_t) (colon - s) >= sizeof(host)) {
                fprintf(stderr, "nat-udp: bad endpoint '%s' (want IP:PORT)\n", s);
                exit(2);
        }
        memcpy(host, s, (size_t) (colon - s));
        host[colon - s] = '\0';
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                fprintf(stderr, "nat-udp: bad address '%s'\n", host);
                exit(2);
        }
        sa.sin_port = htons((uint16_t) parse_ulong(colon + 1, 65535));
        return sa;
}

static void format_endpoint(const struct sockaddr_in *sa, char *buf, size_t len) {
        char host[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned) ntohs(sa->sin_port));
}

static bool same_endpoint(const struct sockaddr_in *a, const struct sockaddr_in *b) {
        return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int open_socket(const char *bind_to) {
        struct sockaddr_in local = {.sin_family = AF_INET};
        int fd, one = 1;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket");
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                die("SO_REUSEADDR");
        if (bind_to)
                local = parse_endpoint(bind_to);
        if (bind(fd, (struct sockaddr *) &local, sizeof(local)) < 0)
                die("bind");
        return fd;
}

/* Wait up to timeout_ms for a datagram; returns its length, -1 on timeout. An ICMP error
 * reported on the socket (port unreachable) is not a datagram: keep waiting. */
static ssize_t recv_timeout(int fd, char *buf, size_t len, struct sockaddr_in *from,
                            int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) (timeout_ms > 0 ? timeout_ms : 0);

        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                uint64_t now = now_ms();
                socklen_t flen = sizeof(*from);
                ssize_t n;
                int r;

                if (now >= deadline)
                        return -1;
                r = poll(&p, 1, (int) (deadline - now));
                if (r < 0 && errno != EINTR)
                        die("poll");
                if (r <= 0)
                        continue;
                n = recvfrom(fd, buf, len - 1, 0, (struct sockaddr *) from, &flen);
                if (n < 0) {
                        if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
                            errno == ENETUNREACH || errno == EINTR)
                                continue;
                        die("recvfrom");
                }
                buf[n] = '\0';
                return n;
        }
}

static void send_text(int fd, const struct sockaddr_in *to, const char *text) {
        /* A refused or unreachable destination is a probe result, not an error. */
        if (sendto(fd, text, strlen(text), 0, (const struct sockaddr *) to, sizeof(*to)) < 0 &&
            errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH &&
            errno != EPERM)
                die("sendto");
}

static int cmd_whoami(int argc, char **argv) {
        char buf[512], text[64];
        struct sockaddr_in from;
        int fd;

        if (argc != 2)
                usage();
        fd = open_socket(argv[1]);
        printf("bound\n");
        fflush(stdout);
        for (;;) {
                if (recv_timeout(fd, buf, sizeof(buf), &from, 3600 * 1000) < 0)
                        continue;
                format_endpoint(&from, text, sizeof(text));
                send_text(fd, &from, text);
        }
}

/* Options shared by ask, send and punch: -b IP:PORT, -l SECONDS. Returns the index of the first
 * operand. */
static int parse_options(int argc, char **argv, const char **ret_bind, unsigned long *ret_listen) {
        int i = 1;

        while (i < argc && argv[i][0] == '-') {
                if (strcmp(argv[i], "-b") == 0 && i + 1 < argc)
                        *ret_bind = argv[i + 1];
                else if (strcmp(argv[i], "-l") == 0 && i + 1 < argc && ret_listen)
                        *ret_listen = parse_ulong(argv[i + 1], 3600);
                else
                        usage();
                i += 2;
        }
        return i;
}

static int cmd_ask(int argc, char **argv) {
        struct sockaddr_in servers[MAX_SERVERS], from;
        const char *bind_to = NULL;
        unsigned long listen_s = 0;
        char buf[512], text[64];
        int fd, i, n_servers, failed = 0;

        i = parse_options(argc, argv, &bind_to, &listen_s);
        n_servers = argc - i;
        if (n_servers < 1 || n_servers > MAX_SERVERS)
                usage();
        for (int s = 0; s < n_servers; s++)
                servers[s] = parse_endpoint(argv[i + s]);
        fd = open_socket(bind_to);

        for (int s = 0; s < n_servers; s++) {
                bool answered = false;

                for (int t = 0; t < ASK_TRIES && !answered; t++) {
                        uint64_t deadline = now_ms() + ASK_INTERVAL_MS;

                        send_text(fd, &servers[s], "ask");
                        while (!answered) {
                                uint64_t now = now_ms();

                                if (now >= deadline ||
                                    recv_timeout(fd, buf, sizeof(buf), &from,
                                                 (int) (deadline - now)) < 0)
                                        break;
                                answered = same_endpoint(&from, &servers[s]);
                        }
                }
                format_endpoint(&servers[s], text, sizeof(text));
                if (answered)
                        printf("%s mapped %s\n", text, buf);
                else {
                        printf("%s timeout\n", text);
                        failed = 1;
                }
                fflush(stdout);
        }

        if (listen_s > 0) {
                uint64_t deadline = now_ms() + listen_s * 1000;
                struct sockaddr_in seen[MAX_SOURCES];
                int n_seen = 0;

                printf("listening\n");
                fflush(stdout);
                for (;;) {
                        uint64_t now = now_ms();
                        bool known = false;

                        if (now >= deadline ||
                            recv_timeout(fd, buf, sizeof(buf), &from, (int) (deadline - now)) < 0)
                                break;
                        for (int s = 0; s < n_servers && !known; s++)
                                known = same_endpoint(&from, &servers[s]) &&
                                        strcmp(buf, "hello") != 0;
                        for (int s = 0; s < n_seen && !known; s++)
                                known = same_endpoint(&from, &seen[s]);
                        if (known)
                                continue;
                        if (n_seen < MAX_SOURCES)
                                seen[n_seen++] = from;
                        format_endpoint(&from, text, sizeof(text));
                        printf("from %s\n", text);
                        fflush(stdout);
                }
        }
        close(fd);
        return failed;
}

static int cmd_send(int argc, char **argv) {
        const char *bind_to = NULL;
        unsigned long count = 5;
        struct sockaddr_in dst;
        int fd, i;

        i = parse_options(argc, argv, &bind_to, NULL);
        if (argc - i < 1 || argc - i > 2)
                usage();
        dst = parse_endpoint(argv[i]);
        if (argc - i == 2)
                count = parse_ulong(argv[i + 1], 1000);
        fd = open_socket(bind_to);
        for (unsigned long c = 0; c < count; c++) {
                struct timespec ts = {0, SEND_INTERVAL_MS * 1000000L};

                send_text(fd, &dst, "hello");
                if (c + 1 < count)
                        nanosleep(&ts, NULL);
        }
        close(fd);
        return 0;
}

/* ---- STUN (RFC 8489 Binding, RFC 5780 CHANGE-REQUEST) ---------------------------------------- */

enum {
        STUN_HEADER = 20,
        STUN_COOKIE = 0x2112A442,
        STUN_BINDING_REQUEST = 0x0001,
        STUN_BINDING_SUCCESS = 0x0101,
        STUN_MAPPED_ADDRESS = 0x0001,
        STUN_CHANGE_REQUEST = 0x0003,
        STUN_XOR_MAPPED_ADDRESS = 0x0020,
        STUN_OTHER_ADDRESS = 0x802c,
        STUN_CHANGE_IP = 0x04,
        STUN_CHANGE_PORT = 0x02,
        STUN_TRIES = 5,
        STUN_INTERVAL_MS = 200,
};

struct stun_reply {
        bool has_mapped, has_other;
        struct sockaddr_in mapped, other, origin;
};

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static uint16_t get16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

static void put32(uint8_t *p, uint32_t v) {
        put16(p, (uint16_t) (v >> 16));
        put16(p + 2, (uint16_t) v);
}

static uint32_t get32(const uint8_t *p) {
        return (uint32_t) get16(p) << 16 | get16(p + 2);
}

/* An IPv4 address attribute (MAPPED-ADDRESS layout), XORed with the cookie when xor is set. */
static bool stun_address(const uint8_t *v, size_t len, bool xor, struct sockaddr_in *ret) {
        uint16_t port;
        uint32_t addr;

        if (len < 8 || v[1] != 0x01)
                return false;
        port = get16(v + 2);
        addr = get32(v + 4);
        if (xor) {
                port ^= (uint16_t) (STUN_COOKIE >> 16);
                addr ^= STUN_COOKIE;
        }
        *ret = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
        ret->sin_addr.s_addr = htonl(addr);
        return true;
}

static bool stun_parse(const uint8_t *buf, size_t len, const uint8_t *tid, struct stun_reply *ret) {
        size_t off = STUN_HEADER;

        if (len < STUN_HEADER || get16(buf) != STUN_BINDING_SUCCESS ||
            get32(buf + 4) != STUN_COOKIE || memcmp(buf + 8, tid, 12) != 0 ||
            (size_t) get16(buf + 2) + STUN_HEADER != len)
                return false;
        while (off + 4 <= len) {
                uint16_t type = get16(buf + off), alen = get16(buf + off + 2);
                const uint8_t *v = buf + off + 4;

                if (off + 4 + alen > len)
                        return false;
                if (type == STUN_XOR_MAPPED_ADDRESS)
                        ret->has_mapped = stun_address(v, alen, true, &ret->mapped);
                else if (type == STUN_MAPPED_ADDRESS && !ret->has_mapped)
                        ret->has_mapped = stun_address(v, alen, false, &ret->mapped);
                else if (type == STUN_OTHER_ADDRESS)
                        ret->has_other = stun_address(v, alen, false, &ret->other);
                off += 4 + (((size_t) alen + 3) & ~(size_t) 3);
        }
        return ret->has_mapped;
}

/* One Binding transaction (STUN_TRIES sends); true when answered. */
static bool stun_transaction(int fd, const struct sockaddr_in *server, uint8_t change,
                             struct stun_reply *ret) {
        uint8_t req[STUN_HEADER + 8], tid[12];
        size_t len = STUN_HEADER;
        char buf[1500];

        for (size_t i = 0; i < sizeof(tid); i++)
                tid[i] = (uint8_t) random();
        put16(req, STUN_BINDING_REQUEST);
        put32(req + 4, STUN_COOKIE);
        memcpy(req + 8, tid, sizeof(tid));
        if (change) {
                put16(req + len, STUN_CHANGE_REQUEST);
                put16(req + len + 2, 4);
                put32(req + len + 4, change);
                len += 8;
        }
        put16(req + 2, (uint16_t) (len - STUN_HEADER));

        for (int t = 0; t < STUN_TRIES; t++) {
                uint64_t deadline = now_ms() + STUN_INTERVAL_MS;

                if (sendto(fd, req, len, 0, (const struct sockaddr *) server, sizeof(*server)) < 0 &&
                    errno != ECONNREFUSED)
                        die("sendto");
                for (;;) {
                        uint64_t now = now_ms();
                        struct sockaddr_in from;
                        ssize_t n;

                        if (now >= deadline)
                                break;
                        n = recv_timeout(fd, buf, sizeof(buf), &from, (int) (deadline - now));
                        if (n < 0)
                                break;
                        *ret = (struct stun_reply){.origin = from};
                        if (stun_parse((const uint8_t *) buf, (size_t) n, tid, ret))
                                return true;
                }
        }
        return false;
}

static bool is_local_address(const struct sockaddr_in *sa) {
        struct ifaddrs *list, *i;
        bool found = false;

        if (getifaddrs(&list) < 0)
                die("getifaddrs");
        for (i = list; i && !found; i = i->ifa_next)
                found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                        ((struct sockaddr_in *) i->ifa_addr)->sin_addr.s_addr ==
                                sa->sin_addr.s_addr;
        freeifaddrs(list);
        return found;
}

static int cmd_rfc5780(int argc, char **argv) {
        struct stun_reply r1, r2, r3, f;
        struct sockaddr_in server, local, alt;
        const char *bind_to = NULL, *mapping, *filtering, *type;
        socklen_t llen = sizeof(local);
        char a[64], b[64];
        bool f2, f3;
        int fd, i;

        i = parse_options(argc, argv, &bind_to, NULL);
        if (argc - i != 1)
                usage();
        server = parse_endpoint(argv[i]);
        srandom((unsigned) now_ms() ^ (unsigned) getpid());
        fd = open_socket(bind_to);
        if (getsockname(fd, (struct sockaddr *) &local, &llen) < 0)
                die("getsockname");

        /* Test I. */
        if (!stun_transaction(fd, &server, 0, &r1)) {
                printf("test1 timeout\ntype udp-blocked\n");
                return 1;
        }
        format_endpoint(&r1.mapped, a, sizeof(a));
        if (r1.has_other)
                format_endpoint(&r1.other, b, sizeof(b));
        printf("test1 mapped %s other %s\n", a, r1.has_other ? b : "none");
        if (!r1.has_other) {
                printf("type unknown\n");
                return 1;
        }

        /* Filtering (section 4.4) first: test II asks for another IP and port, test III for
         * another port only. Only the primary address has been contacted yet; after the mapping
         * tests the NAT would let the alternate address's answers in, and a port-restricted
         * cone would look like a full cone. */
        f2 = stun_transaction(fd, &server, STUN_CHANGE_IP | STUN_CHANGE_PORT, &f);
        printf("filtering2 %s\n", f2 ? "answered" : "timeout");
        f3 = f2 || stun_transaction(fd, &server, STUN_CHANGE_PORT, &f);
        if (!f2)
                printf("filtering3 %s\n", f3 ? "answered" : "timeout");

        /* Mapping (RFC 5780 section 4.3): test II to the alternate IP, primary port; test III to
         * the alternate IP and port. */
        alt = server;
        alt.sin_addr = r1.other.sin_addr;
        if (!stun_transaction(fd, &alt, 0, &r2)) {
                printf("mapping2 timeout\n");
                return 1;
        }
        format_endpoint(&r2.mapped, a, sizeof(a));
        printf("mapping2 mapped %s\n", a);
        if (!stun_transaction(fd, &r1.other, 0, &r3)) {
                printf("mapping3 timeout\n");
                return 1;
        }
        format_endpoint(&r3.mapped, a, sizeof(a));
        printf("mapping3 mapped %s\n", a);

        if (is_local_address(&r1.mapped) && r1.mapped.sin_port == local.sin_port)
                mapping = "no-nat";
        else if (same_endpoint(&r1.mapped, &r2.mapped))
                mapping = "endpoint-independent";
        else if (same_endpoint(&r2.mapped, &r3.mapped))
                mapping = "address-dependent";
        else
                mapping = "address-and-port-dependent";
        filtering = f2 ? "endpoint-independent"
                       : (f3 ? "address-dependent" : "address-and-port-dependent");
        if (strcmp(mapping, "no-nat") == 0)
                type = "no-nat";
        else if (strcmp(mapping, "endpoint-independent") != 0)
                type = "symmetric";
        else if (f2)
                type = "full-cone";
        else if (f3)
                type = "restricted-cone";
        else
                type = "port-restricted-cone";
        printf("mapping %s\nfiltering %s\ntype %s\n", mapping, filtering, type);
        close(fd);
        return 0;
}

static int cmd_punch(int argc, char **argv) {
        struct sockaddr_in targets[MAX_SOURCES], from, via = {0};
        const char *bind_to = NULL;
        int fd, i, n_targets = 1, extra = -1;
        bool heard = false, acked = false;
        uint64_t deadline, next_send = 0;
        char buf[512], text[64];

        i = parse_options(argc, argv, &bind_to, NULL);
        if (argc - i != 2)
                usage();
        targets[0] = parse_endpoint(argv[i]);
        deadline = now_ms() + parse_ulong(argv[i + 1], 3600) * 1000;
        fd = open_socket(bind_to);

        for (;;) {
                uint64_t now = now_ms();

                if (now >= next_send) {
                        for (int t = 0; t < n_targets; t++)
                                send_text(fd, &targets[t],
                                          heard ? "punch heard=1" : "punch heard=0");
                        next_send = now + PUNCH_INTERVAL_MS;
                        if (extra > 0 && --extra == 0)
                                break;
                }
                if (now >= deadline)
                        break;
                if (recv_timeout(fd, buf, sizeof(buf), &from, (int) (next_send - now)) < 0)
                        continue;
                if (strncmp(buf, "punch heard=", 12) != 0)
                        continue;
                if (!heard)
                        via = from;
                heard = true;
                if (strcmp(buf, "punch heard=1") == 0 && !acked) {
                        acked = true;
                        extra = PUNCH_EXTRA_SENDS;
                }
                bool known = false;
                for (int t = 0; t < n_targets && !known; t++)
                        known = same_endpoint(&from, &targets[t]);
                if (!known && n_targets < MAX_SOURCES) {
                        /* Peer-reflexive: answer where the punch really came from. */
                        targets[n_targets++] = from;
                        format_endpoint(&from, text, sizeof(text));
                        printf("from %s\n", text);
                        fflush(stdout);
                }
        }
        close(fd);
        if (heard && acked) {
                format_endpoint(&via, text, sizeof(text));
                printf("punched via %s\n", text);
                return 0;
        }
        printf("no punch (heard=%d, acked=%d)\n", heard, acked);
        return 1;
}

int main(int argc, char **argv) {
        if (argc < 2)
                usage();
        if (strcmp(argv[1], "whoami") == 0)
                return cmd_whoami(argc - 1, argv + 1);
        if (strcmp(argv[1], "ask") == 0)
                return cmd_ask(argc - 1, argv + 1);
        if (strcmp(argv[1], "send") == 0)
                return cmd_send(argc - 1, argv + 1);
        if (strcmp(argv[1], "rfc5780") == 0)
                return cmd_rfc5780(argc - 1, argv + 1);
        if (strcmp(argv[1], "punch") == 0)
                return cmd_punch(argc - 1, argv + 1);
        usage();
}
