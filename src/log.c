/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *program_name = "shadowmeshd";
static int use_prefix = -1;

void log_set_program_name(const char *name) {
        program_name = name;
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

int log_internal(int level, int error, const char *fmt, ...) {
        int saved = errno;
        char buf[1024];
        va_list ap;

        if (error < 0)
                error = -error;
        /* %m in the format means the error passed in, as systemd's log functions do. */
        errno = error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (use_prefix < 0)
                use_prefix = getenv("JOURNAL_STREAM") != NULL;
        if (use_prefix)
                fprintf(stderr, "<%d>%s\n", level, buf);
        else
                fprintf(stderr, "%s: %s\n", program_name, buf);
        errno = saved;
        return -error;
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
