/* SPDX-License-Identifier: MIT */
/*
 * bench/floor.c: the least a TAP-over-UDP forwarder with ChaCha20-Poly1305 does, as a yardstick
 * for the ping target (bench/floor.sh, bench/README.md "The floor").
 *
 * NOT A VPN: one fixed, public key, no handshake, no replay window, no peer but the one given.
 * It exists to measure what a round trip costs when nothing but the unavoidable is done: one
 * thread, one wait, read a frame, seal it (libsodium, the cipher and message layout of
 * shadowmeshd's data messages: a 16-byte header, the counter as nonce, a 16-byte tag), send it;
 * receive, open, write. Options add, one at a time, what shadowmeshd's receive thread does
 * beyond that, so that a difference in ping can be put on its cause:
 *
 *   --cipher none    copy instead of seal and open (what the cipher costs)
 *   --poll           poll() on the socket, an IPv6 socket and two eventfds besides the TAP
 *                    queues (shadowmeshd's receive thread), instead of epoll
 *   --vnet           IFF_VNET_HDR with checksum and TSO offloads; a 12-byte header on every
 *                    TAP read and write (writev)
 *   --queues N       IFF_MULTI_QUEUE with N queues, all waited on
 *   --threads N      N more threads, each asleep in poll() on its own eventfd (a multi-threaded
 *                    process pays for shared file tables on every system call)
 *   --mmsg           recvmmsg (16 slots) and sendmmsg with IP_PKTINFO, UDP_GRO on the socket
 *                    (a ping's yardstick: a coalesced run of datagrams is not split, it fails
 *                    to open and is dropped; bulk traffic is the benchmark's, not this one's)
 *
 * Usage: floor --tap NAME --local IPV4:PORT --remote IPV4:PORT [options]   (root, in a netns)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define MAX_QUEUES 8
#define MAX_THREADS 16
#define HEADER_LEN 16
#define TAG_LEN crypto_aead_chacha20poly1305_ietf_ABYTES
#define VNET_LEN 12
#define FRAME_MAX 65536
#define MMSG_SLOTS 16
#define SLOT_LEN 2048

struct options {
        const char *tap;
        struct sockaddr_in local, remote;
        bool cipher, poll, vnet, mmsg;
        unsigned queues, threads;
};

static const uint8_t key[crypto_aead_chacha20poly1305_ietf_KEYBYTES]; /* all zero: public */
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

static int fail(const char *what) {
        fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
        return 1;
}

static bool parse_endpoint(const char *s, struct sockaddr_in *ret) {
        char host[INET_ADDRSTRLEN];
        const char *colon = strrchr(s, ':');
        char *end;
        long port;

        if (!colon || (size_t) (colon - s) >= sizeof(host))
                return false;
        memcpy(host, s, (size_t) (colon - s));
        host[colon - s] = 0;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || port < 1 || port > 65535)
                return false;
        *ret = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        return inet_pton(AF_INET, host, &ret->sin_addr) == 1;
}

static bool parse_count(const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *ret = (unsigned) v;
        return true;
}

static int parse_options(int argc, char **argv, struct options *o) {
        static const struct option longopts[] = {
                { "tap", required_argument, NULL, 't' },   { "local", required_argument, NULL, 'l' },
                { "remote", required_argument, NULL, 'r' }, { "cipher", required_argument, NULL, 'c' },
                { "poll", no_argument, NULL, 'p' },         { "vnet", no_argument, NULL, 'v' },
                { "queues", required_argument, NULL, 'q' }, { "threads", required_argument, NULL, 'T' },
                { "mmsg", no_argument, NULL, 'm' },         { NULL, 0, NULL, 0 }
        };
        bool have_local = false, have_remote = false;
        int c;

        *o = (struct options){ .cipher = true, .queues = 1 };
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (c) {
                case 't': o->tap = optarg; break;
                case 'l':
                case 'r':
                        if (!parse_endpoint(optarg, c == 'l' ? &o->local : &o->remote)) {
                                fprintf(stderr, "floor: --%s: want IPV4:PORT (port 1-65535), got '%s'\n",
                                        c == 'l' ? "local" : "remote", optarg);
                                return -1;
                        }
                        *(c == 'l' ? &have_local : &have_remote) = true;
                        break;
                case 'c':
                        if (strcmp(optarg, "chacha20poly1305") && strcmp(optarg, "none")) {
                                fprintf(stderr, "floor: --cipher: want chacha20poly1305 or none, got '%s'\n", optarg);
                                return -1;
                        }
                        o->cipher = !strcmp(optarg, "chacha20poly1305");
                        break;
                case 'p': o->poll = true; break;
                case 'v': o->vnet = true; break;
                case 'm': o->mmsg = true; break;
                case 'q':
                        if (!parse_count(optarg, 1, MAX_QUEUES, &o->queues)) {
                                fprintf(stderr, "floor: --queues: want 1-%d, got '%s'\n", MAX_QUEUES, optarg);
                                return -1;
                        }
                        break;
                case 'T':
                        if (!parse_count(optarg, 0, MAX_THREADS, &o->threads)) {
                                fprintf(stderr, "floor: --threads: want 0-%d, got '%s'\n", MAX_THREADS, optarg);
                                return -1;
                        }
                        break;
                default: return -1;
                }
        }
        if (o->tap && strlen(o->tap) >= IFNAMSIZ) {
                fprintf(stderr, "floor: --tap: '%s' is longer than %d characters\n", o->tap, IFNAMSIZ - 1);
                return -1;
        }
        if (!o->tap || !have_local || !have_remote || optind != argc) {
                fprintf(stderr, "usage: floor --tap NAME --local IPV4:PORT --remote IPV4:PORT "
                                "[--cipher chacha20poly1305|none] [--poll] [--vnet] [--queues N] "
                                "[--threads N] [--mmsg]\n");
                return -1;
        }
        return 0;
}

static void *idle_thread(void *userdata) {
        int fd = eventfd(0, EFD_CLOEXEC);
        struct pollfd p = { .fd = fd, .events = POLLIN };

        (void) userdata;
        while (fd >= 0 && poll(&p, 1, -1) >= 0)
                ;
        return NULL;
}

static int open_tap(const struct options *o, int *fds) {
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };

        if (o->vnet)
                ifr.ifr_flags |= IFF_VNET_HDR;
        if (o->queues > 1)
                ifr.ifr_flags |= IFF_MULTI_QUEUE;
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", o->tap);
        for (unsigned i = 0; i < o->queues; i++) {
                int size = VNET_LEN;
                fds[i] = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
                if (fds[i] < 0 || ioctl(fds[i], TUNSETIFF, &ifr) < 0)
                        return -1;
                if (o->vnet && ioctl(fds[i], TUNSETVNETHDRSZ, &size) < 0)
                        return -1;
        }
        if (o->vnet && ioctl(fds[0], TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)
                return -1;
        return 0;
}

/* The wait: epoll on the TAP queues and the socket, or poll() on shadowmeshd's receive
 * thread's set (the socket, two eventfds, an IPv6 socket, the queues). Returns the fds that
 * are readable, in *ready. */
struct waiter {
        bool poll;
        int epfd;
        struct pollfd pfd[4 + MAX_QUEUES];
        unsigned n;
};

static int waiter_init(struct waiter *w, bool use_poll, int sock, const int *taps, unsigned queues) {
        *w = (struct waiter){ .poll = use_poll, .epfd = -1 };
        if (use_poll) {
                int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                w->pfd[w->n++] = (struct pollfd){ .fd = sock, .events = POLLIN };
                w->pfd[w->n++] = (struct pollfd){ .fd = eventfd(0, EFD_CLOEXEC), .events = POLLIN };
                w->pfd[w->n++] = (struct pollfd){ .fd = eventfd(0, EFD_CLOEXEC), .events = POLLIN };
                w->pfd[w->n++] = (struct pollfd){ .fd = s6, .events = POLLIN };
                for (unsigned i = 0; i < queues; i++)
                        w->pfd[w->n++] = (struct pollfd){ .fd = taps[i], .events = POLLIN };
                for (unsigned i = 0; i < w->n; i++)
                        if (w->pfd[i].fd < 0)
                                return -1;
                return 0;
        }
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0)
                return -1;
        for (unsigned i = 0; i <= queues; i++) {
                int fd = i < queues ? taps[i] : sock;
                struct epoll_event e = { .events = EPOLLIN, .data.fd = fd };
                if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
                        return -1;
        }
        return 0;
}

static int waiter_wait(struct waiter *w, int *ready, unsigned max) {
        unsigned n = 0;

        if (w->poll) {
                if (poll(w->pfd, w->n, -1) < 0)
                        return -1;
                for (unsigned i = 0; i < w->n && n < max; i++)
                        if (w->pfd[i].revents)
                                ready[n++] = w->pfd[i].fd;
                return (int) n;
        }
        struct epoll_event ev[1 + MAX_QUEUES];
        int k = epoll_wait(w->epfd, ev, 1 + MAX_QUEUES, -1);
        for (int i = 0; i < k && n < max; i++)
                ready[n++] = ev[i].data.fd;
        return k < 0 ? -1 : (int) n;
}

struct forwarder {
        const struct options *o;
        int sock;
        uint64_t counter;
        uint8_t frame[VNET_LEN + FRAME_MAX], out[HEADER_LEN + FRAME_MAX + TAG_LEN];
        /* --mmsg: the receive slots, set up once */
        struct mmsghdr msgs[MMSG_SLOTS];
        struct iovec iov[MMSG_SLOTS];
        struct sockaddr_in from[MMSG_SLOTS];
        uint8_t control[MMSG_SLOTS][64] __attribute__((aligned(8)));
        uint8_t slots[MMSG_SLOTS][SLOT_LEN];
};

static void nonce_of(uint64_t counter, uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES]) {
        memset(nonce, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
        for (unsigned i = 0; i < 8; i++)
                nonce[4 + i] = (uint8_t) (counter >> (8 * i));
}

static void send_sealed(struct forwarder *f, size_t len) {
        struct iovec io = { .iov_base = f->out, .iov_len = len };

        if (!f->o->mmsg) {
                (void) sendto(f->sock, f->out, len, 0, (const struct sockaddr *) &f->o->remote,
                              sizeof(f->o->remote));
                return;
        }
        uint8_t control[CMSG_SPACE(sizeof(struct in_pktinfo))] __attribute__((aligned(8))) = { 0 };
        struct mmsghdr m = { .msg_hdr = { .msg_name = (void *) &f->o->remote,
                                          .msg_namelen = sizeof(f->o->remote),
                                          .msg_iov = &io,
                                          .msg_iovlen = 1,
                                          .msg_control = control,
                                          .msg_controllen = sizeof(control) } };
        struct cmsghdr *c = CMSG_FIRSTHDR(&m.msg_hdr);
        struct in_pktinfo info = { .ipi_spec_dst = f->o->local.sin_addr };
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(info));
        memcpy(CMSG_DATA(c), &info, sizeof(info));
        (void) sendmmsg(f->sock, &m, 1, 0);
}

static void from_tap(struct forwarder *f, int tap) {
        size_t skip = f->o->vnet ? VNET_LEN : 0;
        ssize_t k = read(tap, f->frame, sizeof(f->frame));
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

        if (k <= (ssize_t) skip)
                return;
        size_t len = (size_t) k - skip;
        const uint8_t *m = f->frame + skip;
        memcpy(f->out, "\4\0\0\0\1\0\0\0", 8);
        for (unsigned i = 0; i < 8; i++)
                f->out[8 + i] = (uint8_t) (f->counter >> (8 * i));
        nonce_of(f->counter++, nonce);
        if (f->o->cipher)
                crypto_aead_chacha20poly1305_ietf_encrypt_detached(f->out + HEADER_LEN,
                                                                  f->out + HEADER_LEN + len, NULL,
                                                                  m, len, NULL, 0, NULL, nonce, key);
        else {
                memcpy(f->out + HEADER_LEN, m, len);
                memset(f->out + HEADER_LEN + len, 0, TAG_LEN);
        }
        send_sealed(f, HEADER_LEN + len + TAG_LEN);
}

static void to_tap(struct forwarder *f, int tap, const uint8_t *in, size_t k) {
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], vnet[VNET_LEN] = { 0 };
        uint64_t counter = 0;

        if (k < HEADER_LEN + TAG_LEN)
                return;
        size_t len = k - HEADER_LEN - TAG_LEN;
        for (unsigned i = 0; i < 8; i++)
                counter |= (uint64_t) in[8 + i] << (8 * i);
        nonce_of(counter, nonce);
        if (f->o->cipher) {
                if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                            f->frame, NULL, in + HEADER_LEN, len, in + HEADER_LEN + len, NULL, 0,
                            nonce, key) < 0)
                        return;
        } else
                memcpy(f->frame, in + HEADER_LEN, len);
        if (f->o->vnet) {
                struct iovec io[2] = { { .iov_base = vnet, .iov_len = VNET_LEN },
                                       { .iov_base = f->frame, .iov_len = len } };
                (void) !writev(tap, io, 2);
        } else
                (void) !write(tap, f->frame, len);
}

static void from_socket(struct forwarder *f, int tap) {
        if (!f->o->mmsg) {
                ssize_t k = recv(f->sock, f->out, sizeof(f->out), MSG_DONTWAIT);
                if (k > 0)
                        to_tap(f, tap, f->out, (size_t) k);
                return;
        }
        for (unsigned i = 0; i < MMSG_SLOTS; i++) {
                f->msgs[i].msg_hdr.msg_namelen = sizeof(f->from[i]);
                f->msgs[i].msg_hdr.msg_controllen = sizeof(f->control[i]);
        }
        int n = recvmmsg(f->sock, f->msgs, MMSG_SLOTS, MSG_DONTWAIT, NULL);
        for (int i = 0; i < n; i++)
                to_tap(f, tap, f->slots[i], f->msgs[i].msg_len);
}

int main(int argc, char **argv) {
        struct options o;
        int taps[MAX_QUEUES], ready[4 + MAX_QUEUES], one = 1;
        struct waiter w;
        struct forwarder *f;

        if (parse_options(argc, argv, &o) < 0)
                return 2;
        if (sodium_init() < 0) {
                fprintf(stderr, "floor: libsodium did not initialise\n");
                return 1;
        }
        f = calloc(1, sizeof(*f));
        if (!f)
                return fail("calloc");
        f->o = &o;
        if (open_tap(&o, taps) < 0)
                return fail(o.tap);
        f->sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (f->sock < 0 || bind(f->sock, (const struct sockaddr *) &o.local, sizeof(o.local)) < 0)
                return fail("UDP socket");
        if (o.mmsg) {
                if (setsockopt(f->sock, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ||
                    setsockopt(f->sock, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) < 0)
                        return fail("IP_PKTINFO/UDP_GRO");
                for (unsigned i = 0; i < MMSG_SLOTS; i++) {
                        f->iov[i] = (struct iovec){ .iov_base = f->slots[i], .iov_len = SLOT_LEN };
                        f->msgs[i].msg_hdr = (struct msghdr){ .msg_name = &f->from[i],
                                                              .msg_iov = &f->iov[i],
                                                              .msg_iovlen = 1,
                                                              .msg_control = f->control[i] };
                }
        }
        if (waiter_init(&w, o.poll, f->sock, taps, o.queues) < 0)
                return fail("the wait set");
        for (unsigned i = 0; i < o.threads; i++) {
                pthread_t t;
                if ((errno = pthread_create(&t, NULL, idle_thread, NULL)) != 0)
                        return fail("pthread_create");
                (void) pthread_detach(t);
        }
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        while (!stop) {
                int n = waiter_wait(&w, ready, 4 + MAX_QUEUES);
                if (n < 0 && errno != EINTR)
                        return fail("wait");
                for (int i = 0; i < n; i++) {
                        if (ready[i] == f->sock) {
                                from_socket(f, taps[0]);
                                continue;
                        }
                        for (unsigned q = 0; q < o.queues; q++)
                                if (ready[i] == taps[q])
                                        from_tap(f, taps[q]);
                }
        }
        return 0;
}
