/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "service-log.h"

static int max_level = LOG_INFO;
static bool to_syslog;

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
        if (to_syslog)
                vsyslog(level, fmt, ap);
        else {
                char buf[2048];
                vsnprintf(buf, sizeof(buf), fmt, ap);
                fprintf(stderr, "nm-shadowmesh[%ld]: %s %s\n", (long) getpid(), names[level & 7],
                        buf);
        }
        va_end(ap);
}
