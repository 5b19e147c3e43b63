/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* sd_journal_sendv() would add CODE_FILE=log.c and CODE_LINE= of this file to every entry. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"

enum {
        LOG_MESSAGE_MAX = 1024,
        LOG_FIELD_MAX = 320, /* "SHADOWMESH_PEER=" and a host name of 253 characters and a port */
};

static int max_level = LOG_INFO;
static const char *program_name = "shadowmeshd";
static const char *instance_name = NULL;
/* -1: not decided yet; 0: stderr as text; 1: the journal (native protocol, stderr as fallback) */
static int to_journal = -1;

void log_set_program_name(const char *name) {
        program_name = name;
}

void log_set_instance(const char *name) {
        instance_name = name;
}

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr is the journal; a child
 * that inherited the variable but whose stderr went elsewhere (a pipe, a file) does not match. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        int n = 0;

        if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n] != 0)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

static const struct {
        const char *name;
        int level;
} level_names[] = {
        { "emerg", LOG_EMERG },   { "alert", LOG_ALERT }, { "crit", LOG_CRIT },
        { "error", LOG_ERR },     { "err", LOG_ERR },     { "warning", LOG_WARNING },
        { "warn", LOG_WARNING },  { "notice", LOG_NOTICE }, { "info", LOG_INFO },
        { "debug", LOG_DEBUG },
};

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcasecmp(s, level_names[i].name) == 0)
                        return level_names[i].level;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i].level == level)
                        return level_names[i].name;
        return "unknown";
}

/* One "NAME=value" field for sd_journal_sendv(); an empty value leaves the field out. */
static void add_field(struct iovec *iov, size_t *n, char *buf, size_t size, const char *name,
                      const char *value) {
        int len;

        if (!value || !*value)
                return;
        len = snprintf(buf, size, "%s=%s", name, value);
        if (len < 0)
                return;
        iov[(*n)++] = (struct iovec) { .iov_base = buf, .iov_len = MIN((size_t) len, size - 1) };
}

/* The native protocol: MESSAGE and the fields as one datagram. False when the journal's socket
 * refused it (then the caller writes to stderr). */
static bool send_journal(int level, int error, const char *peer, const char *endpoint,
                         const char *message) {
        char msg[LOG_MESSAGE_MAX + 16], prio[16], ident[LOG_FIELD_MAX], inst[LOG_FIELD_MAX],
                peer_f[LOG_FIELD_MAX], ep_f[LOG_FIELD_MAX], err_f[32], num[16];
        struct iovec iov[7];
        size_t n = 0;

        add_field(iov, &n, msg, sizeof(msg), "MESSAGE", message);
        snprintf(num, sizeof(num), "%d", level);
        add_field(iov, &n, prio, sizeof(prio), "PRIORITY", num);
        add_field(iov, &n, ident, sizeof(ident), "SYSLOG_IDENTIFIER", program_name);
        add_field(iov, &n, inst, sizeof(inst), "SHADOWMESH_INSTANCE", instance_name);
        add_field(iov, &n, peer_f, sizeof(peer_f), "SHADOWMESH_PEER", peer);
        add_field(iov, &n, ep_f, sizeof(ep_f), "SHADOWMESH_ENDPOINT", endpoint);
        if (error > 0) {
                snprintf(num, sizeof(num), "%d", error);
                add_field(iov, &n, err_f, sizeof(err_f), "ERRNO", num);
        }
        return sd_journal_sendv(iov, (int) n) >= 0;
}

static int log_dispatch(int level, int error, const char *peer, const char *endpoint,
                        const char *fmt, va_list ap) _printf_(5, 0);
static int log_dispatch(int level, int error, const char *peer, const char *endpoint,
                        const char *fmt, va_list ap) {
        int saved = errno;
        char buf[LOG_MESSAGE_MAX];

        if (error < 0)
                error = -error;
        /* %m in the format means the error passed in, as systemd's log functions do. */
        errno = error;
        vsnprintf(buf, sizeof(buf), fmt, ap);

        if (to_journal < 0)
                to_journal = stderr_is_journal();
        if (to_journal && send_journal(level, error, peer, endpoint, buf)) {
                errno = saved;
                return -error;
        }
        if (to_journal)
                fprintf(stderr, "<%d>%s\n", level, buf);
        else
                fprintf(stderr, "%s: %s\n", program_name, buf);
        errno = saved;
        return -error;
}

int log_internal(int level, int error, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_dispatch(level, error, NULL, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int log_internal_peer(int level, int error, const char *peer, const char *endpoint,
                      const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_dispatch(level, error, peer, endpoint, fmt, ap);
        va_end(ap);
        return r;
}

bool log_ratelimit_below(struct log_ratelimit *rl, uint64_t now, unsigned *ret_suppressed) {
        unsigned suppressed = 0;

        if (rl->begin_ns == 0 || now - rl->begin_ns >= rl->interval_ns) {
                suppressed = rl->suppressed;
                rl->begin_ns = now;
                rl->num = 0;
                rl->suppressed = 0;
        }
        if (rl->num < rl->burst) {
                rl->num++;
                if (ret_suppressed)
                        *ret_suppressed = suppressed;
                return true;
        }
        rl->suppressed++;
        return false;
}
