/* SPDX-License-Identifier: MIT */
/*
 * A small UDP helper for the netns tests, so they need neither socat nor python:
 *
 *   udp-tool replay-raw PCAP PORT TYPE
 *       Resend, byte for byte, every IPv4 UDP packet of the capture whose destination port is
 *       PORT and whose payload is a ShadowMesh message of TYPE: same source address and port,
 *       through a raw socket (the UDP checksum is recomputed, since a capture taken on a veth
 *       holds only the partial checksum of an offloaded packet). Prints "sent N".
 *   udp-tool replay-udp PCAP PORT TYPE DST_IP
 *       The same payloads from an ordinary UDP socket on an ephemeral port. Prints "sent N".
 *   udp-tool garbage DST_IP PORT
 *       Datagrams that no version-1 parser may accept: empty, shorter than a header, unknown
 *       types, non-zero reserved bytes, every message type cut short, random bytes, oversized.
 *       Prints "malformed N" (datagrams that are malformed by length or type alone) and
 *       "sent N" (all of them, including ones whose counter depends on the receiver's state).
 *   udp-tool initiations DST_IP PORT N
 *       N shared-key-mode initiations of random bytes (right type and size, bad mac1), to
 *       check that rejections are counted one by one but logged rate-limited.
 *   udp-tool hold IP PORT
 *       Bind IP:PORT, print "bound", and wait until killed.
 *   udp-tool stale-data DST_IP PORT N LEN WAIT_MS
 *       N data messages of LEN bytes for a session nobody has (random receiver index, counter
 *       and ciphertext), one every 10 ms from one socket, then WAIT_MS more of listening. Prints
 *       "sent_bytes X", "received_bytes Y" (UDP payload bytes) and "received_initiations Z":
 *       what a node that lost its keys answers to stale data, to check it never amplifies.
 *
 * The message sizes are read from src/messages.h, so they follow the wire format.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "messages.h"

enum {
        LINKTYPE_NULL = 0,
        LINKTYPE_ETHERNET = 1,
        LINKTYPE_RAW = 101,
        LINKTYPE_LINUX_SLL = 113,
        LINKTYPE_LINUX_SLL2 = 276,
        PCAP_MAX_RECORD = 262144,
        UDP_MAX_PAYLOAD = 65507,
};

static void die(const char *what) {
        fprintf(stderr, "udp-tool: %s: %s\n", what, strerror(errno));
        exit(EXIT_FAILURE);
}

static void usage(void) {
        fprintf(stderr, "usage: udp-tool replay-raw PCAP PORT TYPE\n"
                        "       udp-tool replay-udp PCAP PORT TYPE DST_IP\n"
                        "       udp-tool garbage DST_IP PORT\n"
                        "       udp-tool initiations DST_IP PORT N\n"
                        "       udp-tool hold IP PORT\n"
                        "       udp-tool stale-data DST_IP PORT N LEN WAIT_MS\n");
        exit(64);
}

static unsigned long parse_ulong(const char *s, unsigned long max) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v > max) {
                fprintf(stderr, "udp-tool: bad number '%s'\n", s);
                exit(64);
        }
        return v;
}

static struct sockaddr_in parse_addr(const char *ip, uint16_t port) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

        if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
                fprintf(stderr, "udp-tool: bad IPv4 address '%s'\n", ip);
                exit(64);
        }
        return sa;
}

static uint32_t get32(const uint8_t *p, int swapped) {
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        return swapped ? __builtin_bswap32(v) : v;
}

/* Sum of 16-bit big-endian words, folded at the end by the caller. */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum) {
        for (size_t i = 0; i + 1 < len; i += 2)
                sum += (uint32_t) p[i] << 8 | p[i + 1];
        if (len & 1)
                sum += (uint32_t) p[len - 1] << 8;
        return sum;
}

static uint16_t fold(uint32_t sum) {
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t) ~sum;
}

/* RFC 768: the checksum covers a pseudo-header, the UDP header and the payload. */
static void udp_fix_checksum(uint8_t *ip, size_t ihl, size_t udp_len) {
        uint8_t *udp = ip + ihl;
        uint8_t pseudo[12];
        uint16_t c;

        memcpy(pseudo, ip + 12, 8);
        pseudo[8] = 0;
        pseudo[9] = IPPROTO_UDP;
        pseudo[10] = (uint8_t) (udp_len >> 8);
        pseudo[11] = (uint8_t) udp_len;
        udp[6] = udp[7] = 0;
        c = fold(sum16(udp, udp_len, sum16(pseudo, sizeof(pseudo), 0)));
        if (c == 0)
                c = 0xffff;
        udp[6] = (uint8_t) (c >> 8);
        udp[7] = (uint8_t) c;
}

struct pcap {
        FILE *f;
        int swapped;
        uint32_t linktype;
        uint8_t buf[PCAP_MAX_RECORD];
};

static void pcap_open(struct pcap *p, const char *path) {
        uint8_t hdr[24];
        uint32_t magic;

        p->f = fopen(path, "re");
        if (!p->f)
                die(path);
        if (fread(hdr, 1, sizeof(hdr), p->f) != sizeof(hdr)) {
                fprintf(stderr, "udp-tool: %s: too short for a pcap file\n", path);
                exit(EXIT_FAILURE);
        }
        memcpy(&magic, hdr, sizeof(magic));
        if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d)
                p->swapped = 0;
        else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1)
                p->swapped = 1;
        else {
                fprintf(stderr, "udp-tool: %s: not a classic pcap file\n", path);
                exit(EXIT_FAILURE);
        }
        p->linktype = get32(hdr + 20, p->swapped) & 0xffff;
}

/* Next IPv4 packet of the capture (pointer into p->buf), or NULL at the end. */
static uint8_t *pcap_next_ipv4(struct pcap *p, size_t *ret_len) {
        for (;;) {
                uint8_t rec[16];
                uint32_t incl;
                size_t off;
                uint16_t proto;

                if (fread(rec, 1, sizeof(rec), p->f) != sizeof(rec))
                        return NULL;
                incl = get32(rec + 8, p->swapped);
                if (incl > sizeof(p->buf)) {
                        fprintf(stderr, "udp-tool: corrupt pcap record of %u bytes\n", incl);
                        exit(EXIT_FAILURE);
                }
                if (fread(p->buf, 1, incl, p->f) != incl)
                        return NULL;

                switch (p->linktype) {
                case LINKTYPE_ETHERNET:
                        if (incl < 14)
                                continue;
                        off = 14;
                        proto = (uint16_t) (p->buf[12] << 8 | p->buf[13]);
                        while ((proto == 0x8100 || proto == 0x88a8) && incl >= off + 4) {
                                proto = (uint16_t) (p->buf[off + 2] << 8 | p->buf[off + 3]);
                                off += 4;
                        }
                        break;
                case LINKTYPE_LINUX_SLL:
                        if (incl < 16)
                                continue;
                        off = 16;
                        proto = (uint16_t) (p->buf[14] << 8 | p->buf[15]);
                        break;
                case LINKTYPE_LINUX_SLL2:
                        if (incl < 20)
                                continue;
                        off = 20;
                        proto = (uint16_t) (p->buf[0] << 8 | p->buf[1]);
                        break;
                case LINKTYPE_RAW:
                        off = 0;
                        proto = 0x0800;
                        break;
                default:
                        fprintf(stderr, "udp-tool: unsupported link type %u\n", p->linktype);
                        exit(EXIT_FAILURE);
                }
                if (proto != 0x0800 || incl < off + 20 || (p->buf[off] >> 4) != 4)
                        continue;
                *ret_len = incl - off;
                return p->buf + off;
        }
}

/* If ip is a whole, unfragmented UDP datagram to port with a message of type, return its
 * payload; the IP header length and the UDP length go to the out-parameters. */
static uint8_t *match_udp(uint8_t *ip, size_t len, uint16_t port, uint8_t type,
                          size_t *ret_ihl, size_t *ret_udp_len) {
        size_t ihl = (size_t) (ip[0] & 0x0f) * 4;
        size_t total = (size_t) ip[2] << 8 | ip[3];
        size_t udp_len;
        uint8_t *udp, *payload;

        if (ihl < 20 || total > len || total < ihl + 8 || ip[9] != IPPROTO_UDP)
                return NULL;
        if ((ip[6] & 0x3f) != 0 || ip[7] != 0) /* a fragment */
                return NULL;
        udp = ip + ihl;
        udp_len = (size_t) udp[4] << 8 | udp[5];
        if (udp_len < 8 + sizeof(struct message_header) || ihl + udp_len > total)
                return NULL;
        if (((uint16_t) (udp[2] << 8 | udp[3])) != port)
                return NULL;
        payload = udp + 8;
        if (payload[0] != type || payload[1] != 0 || payload[2] != 0 || payload[3] != 0)
                return NULL;
        *ret_ihl = ihl;
        *ret_udp_len = udp_len;
        return payload;
}

static int cmd_replay(int argc, char **argv, int raw) {
        static struct pcap p;
        struct sockaddr_in dst = {.sin_family = AF_INET};
        uint16_t port;
        uint8_t type;
        uint8_t *ip;
        size_t len;
        unsigned sent = 0;
        int fd;

        if (argc != (raw ? 5 : 6))
                usage();
        port = (uint16_t) parse_ulong(argv[3], 65535);
        type = (uint8_t) parse_ulong(argv[4], 255);
        if (!raw)
                dst = parse_addr(argv[5], port);

        pcap_open(&p, argv[2]);
        fd = raw ? socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)
                 : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket");

        while ((ip = pcap_next_ipv4(&p, &len))) {
                size_t ihl, udp_len;
                uint8_t *payload = match_udp(ip, len, port, type, &ihl, &udp_len);
                ssize_t n;

                if (!payload)
                        continue;
                if (raw) {
                        size_t total = ihl + udp_len;

                        ip[2] = (uint8_t) (total >> 8);
                        ip[3] = (uint8_t) total;
                        udp_fix_checksum(ip, ihl, udp_len);
                        memcpy(&dst.sin_addr, ip + 16, 4);
                        n = sendto(fd, ip, total, 0, (struct sockaddr *) &dst, sizeof(dst));
                } else
                        n = sendto(fd, payload, udp_len - 8, 0, (struct sockaddr *) &dst,
                                   sizeof(dst));
                if (n < 0)
                        die("sendto");
                sent++;
        }
        fclose(p.f);
        close(fd);
        printf("sent %u\n", sent);
        return 0;
}

static void fill_random(uint8_t *p, size_t len) {
        while (len > 0) {
                ssize_t n = getrandom(p, len, 0);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("getrandom");
                }
                p += n;
                len -= (size_t) n;
        }
}

static void send_one(int fd, const struct sockaddr_in *dst, const uint8_t *p, size_t len) {
        if (sendto(fd, p, len, 0, (const struct sockaddr *) dst, sizeof(*dst)) < 0)
                die("sendto");
}

/* A datagram of len random bytes whose first four bytes are type, reserved[0..2]. */
static void send_shaped(int fd, const struct sockaddr_in *dst, uint8_t *buf, size_t len,
                        uint8_t type, uint8_t reserved) {
        fill_random(buf, len);
        if (len > 0)
                buf[0] = type;
        if (len > 1)
                buf[1] = reserved;
        if (len > 2)
                buf[2] = 0;
        if (len > 3)
                buf[3] = 0;
        send_one(fd, dst, buf, len);
}

static int cmd_garbage(int argc, char **argv) {
        static uint8_t buf[UDP_MAX_PAYLOAD];
        static const size_t cut[][2] = {
                {MESSAGE_HANDSHAKE_INITIATION, sizeof(struct message_handshake_initiation_psk) - 1},
                {MESSAGE_HANDSHAKE_INITIATION, 50},
                {MESSAGE_HANDSHAKE_INITIATION, sizeof(struct message_header)},
                {MESSAGE_HANDSHAKE_RESPONSE, sizeof(struct message_handshake_response) - 1},
                {MESSAGE_HANDSHAKE_RESPONSE, 8},
                {MESSAGE_HANDSHAKE_COOKIE, sizeof(struct message_handshake_cookie) - 1},
                {MESSAGE_HANDSHAKE_COOKIE, 12},
                {MESSAGE_DATA, MESSAGE_DATA_MIN_LEN - 1},
                {MESSAGE_DATA, sizeof(struct message_data)},
                {MESSAGE_DATA, sizeof(struct message_header)},
        };
        struct sockaddr_in dst;
        unsigned malformed = 0, sent = 0;
        int fd;

        if (argc != 4)
                usage();
        dst = parse_addr(argv[2], (uint16_t) parse_ulong(argv[3], 65535));
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket");

        /* Empty and shorter than the 4-byte header. */
        for (size_t len = 0; len < sizeof(struct message_header); len++) {
                send_shaped(fd, &dst, buf, len, MESSAGE_DATA, 0);
                malformed++;
        }
        /* Type 0, and a valid type with non-zero reserved bytes, at sizes that would fit. */
        send_shaped(fd, &dst, buf, sizeof(struct message_handshake_initiation_psk),
                    MESSAGE_INVALID, 0);
        send_shaped(fd, &dst, buf, sizeof(struct message_handshake_initiation_psk),
                    MESSAGE_HANDSHAKE_INITIATION, 1);
        send_shaped(fd, &dst, buf, sizeof(struct message_handshake_response),
                    MESSAGE_HANDSHAKE_RESPONSE, 0x80);
        send_shaped(fd, &dst, buf, 200, MESSAGE_DATA, 1);
        malformed += 4;
        /* Every message type one byte (or more) short. */
        for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
                send_shaped(fd, &dst, buf, cut[i][1], (uint8_t) cut[i][0], 0);
                malformed++;
        }
        /* Random bytes of random lengths, with a type byte no version-1 message uses. */
        for (unsigned i = 0; i < 20; i++) {
                uint16_t len;

                fill_random((uint8_t *) &len, sizeof(len));
                len = (uint16_t) (sizeof(struct message_header) + len % 1400);
                fill_random(buf, len);
                buf[0] = (uint8_t) (0xc0 | buf[0]);
                send_one(fd, &dst, buf, len);
                malformed++;
        }
        /* Oversized: the biggest UDP datagram, bigger than any message the daemon reads. */
        send_shaped(fd, &dst, buf, UDP_MAX_PAYLOAD, 0xee, 0);
        malformed++;
        /* Depend on the receiver's state, so not counted as malformed here: a well-formed
         * initiation of random bytes (bad mac1), a data message for an unknown index, and an
         * oversized data message (truncated by the receiver's buffer). */
        send_shaped(fd, &dst, buf, sizeof(struct message_handshake_initiation_psk),
                    MESSAGE_HANDSHAKE_INITIATION, 0);
        send_shaped(fd, &dst, buf, 128, MESSAGE_DATA, 0);
        send_shaped(fd, &dst, buf, UDP_MAX_PAYLOAD, MESSAGE_DATA, 0);
        sent = malformed + 3;

        close(fd);
        printf("malformed %u\nsent %u\n", malformed, sent);
        return 0;
}

static int cmd_initiations(int argc, char **argv) {
        uint8_t buf[sizeof(struct message_handshake_initiation_psk)];
        struct sockaddr_in dst;
        unsigned long n;
        int fd;

        if (argc != 5)
                usage();
        dst = parse_addr(argv[2], (uint16_t) parse_ulong(argv[3], 65535));
        n = parse_ulong(argv[4], 100000);
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket");
        for (unsigned long i = 0; i < n; i++)
                send_shaped(fd, &dst, buf, sizeof(buf), MESSAGE_HANDSHAKE_INITIATION, 0);
        close(fd);
        printf("sent %lu\n", n);
        return 0;
}

static int cmd_hold(int argc, char **argv) {
        struct sockaddr_in sa;
        int fd;

        if (argc != 4)
                usage();
        sa = parse_addr(argv[2], (uint16_t) parse_ulong(argv[3], 65535));
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket");
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die("bind");
        printf("bound\n");
        fflush(stdout);
        /* Until a signal ends the process (the test sends SIGTERM). */
        while (pause() < 0 && errno == EINTR)
                ;
        close(fd);
        return 0;
}

static int cmd_stale_data(int argc, char **argv) {
        static uint8_t buf[UDP_MAX_PAYLOAD];
        unsigned long n, len, wait_ms, sent = 0, received = 0, initiations = 0;
        struct sockaddr_in dst;
        int fd;

        if (argc != 7)
                usage();
        dst = parse_addr(argv[2], (uint16_t) parse_ulong(argv[3], 65535));
        n = parse_ulong(argv[4], 100000);
        len = parse_ulong(argv[5], DATAGRAM_MAX_LEN);
        wait_ms = parse_ulong(argv[6], 60000);
        if (len < MESSAGE_DATA_MIN_LEN)
                usage();
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket");
        struct timeval tv = { .tv_usec = 10000 };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                die("setsockopt");
        /* Every 10 ms a datagram (while any are left), and whatever came back meanwhile. */
        for (unsigned long tick = 0; tick < n + wait_ms / 10; tick++) {
                if (tick < n) {
                        send_shaped(fd, &dst, buf, len, MESSAGE_DATA, 0);
                        sent += len;
                }
                for (;;) {
                        ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                        if (k < 0)
                                break;
                        received += (unsigned long) k;
                        initiations += k > 0 && buf[0] == MESSAGE_HANDSHAKE_INITIATION;
                }
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        close(fd);
        printf("sent_bytes %lu\nreceived_bytes %lu\nreceived_initiations %lu\n", sent, received,
               initiations);
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 2)
                usage();
        if (strcmp(argv[1], "replay-raw") == 0)
                return cmd_replay(argc, argv, 1);
        if (strcmp(argv[1], "replay-udp") == 0)
                return cmd_replay(argc, argv, 0);
        if (strcmp(argv[1], "garbage") == 0)
                return cmd_garbage(argc, argv);
        if (strcmp(argv[1], "initiations") == 0)
                return cmd_initiations(argc, argv);
        if (strcmp(argv[1], "stale-data") == 0)
                return cmd_stale_data(argc, argv);
        if (strcmp(argv[1], "hold") == 0)
                return cmd_hold(argc, argv);
        usage();
}
