/* SPDX-License-Identifier: MIT */
/* notify-recv: the service manager's half of sd_notify(3), for tests that run without systemd.
 *
 *   notify-recv SOCKET_PATH [BUS_NAME]
 *
 * Binds an AF_UNIX datagram socket at SOCKET_PATH (the test passes it to the daemon as
 * NOTIFY_SOCKET) and prints one line per datagram, with the sender's PID from SCM_CREDENTIALS
 * and the milliseconds since start:
 *
 *   listening on PATH
 *   notify pid=1234 ms=57: READY=1
 *   name BUS_NAME owned at READY=1: yes
 *
 * The "name" line comes right after a datagram carrying READY=1 when BUS_NAME is given: the
 * answer of NameHasOwner on the system bus ($DBUS_SYSTEM_BUS_ADDRESS), asked before anything
 * else is read. Runs until killed. Several assignments in one datagram are joined by '|'. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *name_owned(const char *name) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        const char *answer = "unknown (bus error)";
        int owned = 0, r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s",
                                       name);
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &owned);
        if (r >= 0)
                answer = owned ? "yes" : "no";
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return answer;
}

/* Whether the datagram holds the assignment LINE (assignments are separated by newlines). */
static bool has_line(const char *buf, const char *line) {
        size_t len = strlen(line);

        for (const char *p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == 0))
                        return true;
        return false;
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *path, *bus_name;
        long long start = now_ms();
        int fd, one = 1;

        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: notify-recv SOCKET_PATH [BUS_NAME]\n");
                return 2;
        }
        path = argv[1];
        bus_name = argc == 3 ? argv[2] : NULL;
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "notify-recv: socket path too long\n");
                return 2;
        }
        strcpy(sa.sun_path, path);
        setvbuf(stdout, NULL, _IOLBF, 0);

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *) &sa,
                 (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1)) < 0) {
                fprintf(stderr, "notify-recv: %s: %s\n", path, strerror(errno));
                return 1;
        }
        printf("listening on %s\n", path);

        for (;;) {
                char buf[4097];
                union {
                        struct cmsghdr align;
                        char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 8)];
                } control;
                struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                pid_t sender = 0;
                ssize_t n;

                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "notify-recv: recvmsg: %s\n", strerror(errno));
                        return 1;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET)
                                continue;
                        if (c->cmsg_type == SCM_CREDENTIALS) {
                                struct ucred uc;
                                memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                                sender = uc.pid;
                        } else if (c->cmsg_type == SCM_RIGHTS) {
                                /* Passed descriptors (FDSTORE, BARRIER) are not ours to keep. */
                                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t j = 0; j < k; j++) {
                                        int passed;
                                        memcpy(&passed, CMSG_DATA(c) + j * sizeof(int),
                                               sizeof(int));
                                        close(passed);
                                }
                        }
                }
                buf[n] = 0;
                while (n > 0 && buf[n - 1] == '\n')
                        buf[--n] = 0;
                bool ready = has_line(buf, "READY=1");
                const char *owned = ready && bus_name ? name_owned(bus_name) : NULL;
                for (ssize_t i = 0; i < n; i++)
                        if (buf[i] == '\n')
                                buf[i] = '|';
                printf("notify pid=%d ms=%lld: %s\n", (int) sender, now_ms() - start, buf);
                if (owned)
                        printf("name %s owned at READY=1: %s\n", bus_name, owned);
        }
}
