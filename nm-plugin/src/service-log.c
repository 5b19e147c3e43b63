/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
/* sd_journal_sendv() would add CODE_FILE=service-log.c to every entry. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "service-log.h"

static int max_level = LOG_INFO;
static bool to_syslog;
static char *connection_uuid;
static char *instance_name;

void service_log_set_connection(const char *uuid, const char *instance) {
        g_free(connection_uuid);
        g_free(instance_name);
        connection_uuid = g_strdup(uuid && *uuid ? uuid : NULL);
        instance_name = g_strdup(instance && *instance ? instance : NULL);
}

/* The journal's native protocol, with the connection's fields; false if it is not there. */
static bool send_journal(int level, const char *message) {
        g_autofree char *msg = g_strconcat("MESSAGE=", message, NULL);
        g_autofree char *prio = g_strdup_printf("PRIORITY=%d", level);
        g_autofree char *conn = connection_uuid ? g_strconcat("NM_CONNECTION=", connection_uuid, NULL)
                                                : NULL;
        g_autofree char *inst = instance_name
                                        ? g_strconcat("SHADOWMESH_INSTANCE=", instance_name, NULL)
                                        : NULL;
        struct iovec iov[5];
        int n = 0;

#define ADD(s) iov[n++] = (struct iovec) { .iov_base = (s), .iov_len = strlen(s) }
        ADD(msg);
        ADD(prio);
        ADD("SYSLOG_IDENTIFIER=nm-shadowmesh");
        if (conn)
                ADD(conn);
        if (inst)
                ADD(inst);
#undef ADD
        return sd_journal_sendv(iov, n) >= 0;
}

static int env_int(const char *name, int min, int max, int fallback) {
        const char *v = getenv(name);
        char *end;
        long n;

        if (!v || !*v)
                return fallback;
        n = strtol(v, &end, 10);
        if (*end || n < min || n > max)
                return fallback;
        return (int) n;
}

void service_log_setup(bool debug) {
        max_level = env_int("NM_VPN_LOG_LEVEL", 0, LOG_DEBUG, LOG_INFO);
        if (debug)
                max_level = LOG_DEBUG;
        to_syslog = env_int("NM_VPN_LOG_SYSLOG", 0, 1, debug ? 0 : 1) == 1;
        if (to_syslog)
                openlog("nm-shadowmesh", LOG_PID, LOG_DAEMON);
}

int service_log_level(void) {
        return max_level;
}

void service_log(int level, const char *fmt, ...) {
        static const char *const names[] = {"<emerg>", "<alert>",  "<crit>", "<error>",
                                            "<warn>",  "<notice>", "<info>", "<debug>"};
        va_list ap;

        if (level > max_level)
                return;
        va_start(ap, fmt);
        if (to_syslog) {
                char buf[2048];
                vsnprintf(buf, sizeof(buf), fmt, ap);
                if (!send_journal(level, buf))
                        syslog(level, "%s", buf);
        } else {
                char buf[2048];
                vsnprintf(buf, sizeof(buf), fmt, ap);
                fprintf(stderr, "nm-shadowmesh[%ld]: %s %s\n", (long) getpid(), names[level & 7],
                        buf);
        }
        va_end(ap);
}
