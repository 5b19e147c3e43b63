/* SPDX-License-Identifier: MIT */
/*
 * Logging. On a terminal or a pipe: "shadowmeshd: message" lines on stderr. Under journald
 * (JOURNAL_STREAM names stderr's device and inode, as systemd sets it for StandardError=journal)
 * each message goes to the journal's native socket with structured fields, so that
 * `journalctl SHADOWMESH_PEER=203.0.113.42:9001` finds a peer's lines:
 *   SHADOWMESH_INSTANCE=  the instance (log_set_instance), on every message
 *   SHADOWMESH_PEER=      the peer as configured or connected (host:port), where known
 *   SHADOWMESH_ENDPOINT=  the peer's current UDP endpoint (ip:port), where known
 * and MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, ERRNO. Should the native socket refuse a message,
 * it goes to stderr with a "<N>" priority prefix, which the journal's stream reads.
 */
#pragma once

#include <stdint.h>
#include <syslog.h>

#include "util.h"

void log_set_max_level(int level); /* LOG_ERR .. LOG_DEBUG */
/* The prefix of every line on a terminal, and SYSLOG_IDENTIFIER ("shadowmeshd" unless set). */
void log_set_program_name(const char *name);
/* SHADOWMESH_INSTANCE= of every message from now on (NULL: none). The string must outlive the
 * logging. */
void log_set_instance(const char *name);
int log_get_max_level(void);
/* The levels every document names (--help, shadowmeshd(8), shadowmesh.yaml(5), the parser's
 * errors), most verbose first. log_level_from_string() also takes syslog's and systemd's
 * other names (warn, err, crit, alert, emerg), which `systemctl service-log-level` sends. */
#define LOG_LEVEL_NAMES "debug, info, notice, warning or error"
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Returns -abs(error) when error != 0, else 0, so "return log_error_errno(r, ...)" reads well. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

/* log_internal with the peer's fields (each may be NULL or ""; then it is left out). */
int log_internal_peer(int level, int error, const char *peer, const char *endpoint,
                      const char *fmt, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...)                                                          \
        ({                                                                                         \
                int _l_ = (level), _e_ = (error);                                                  \
                _l_ <= log_get_max_level() ? log_internal(_l_, _e_, __VA_ARGS__)                   \
                                           : (_e_ < 0 ? _e_ : -_e_);                               \
        })
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

/* Messages about one peer: peer is how it was configured or connected ("host:port"), endpoint
 * its current address ("ip:port"); either may be NULL. */
#define log_peer_full_errno(level, error, peer, endpoint, ...)                                     \
        ({                                                                                         \
                int _l_ = (level), _e_ = (error);                                                  \
                _l_ <= log_get_max_level()                                                         \
                        ? log_internal_peer(_l_, _e_, (peer), (endpoint), __VA_ARGS__)             \
                        : (_e_ < 0 ? _e_ : -_e_);                                                  \
        })
#define log_peer_debug(peer, endpoint, ...) log_peer_full_errno(LOG_DEBUG, 0, peer, endpoint, __VA_ARGS__)
#define log_peer_info(peer, endpoint, ...) log_peer_full_errno(LOG_INFO, 0, peer, endpoint, __VA_ARGS__)
#define log_peer_warning(peer, endpoint, ...)                                                      \
        log_peer_full_errno(LOG_WARNING, 0, peer, endpoint, __VA_ARGS__)

/* Token bucket for per-packet warnings: at most burst messages per interval; the first
 * message after a suppressed run says how many were dropped. Not thread-safe: one per thread. */
struct log_ratelimit {
        uint64_t interval_ns;
        unsigned burst;
        uint64_t begin_ns;
        unsigned num;
        unsigned suppressed;
};
#define LOG_RATELIMIT_INIT(interval_sec, b)                                                        \
        { .interval_ns = (uint64_t) (interval_sec) * NSEC_PER_SEC, .burst = (b) }
/* true when this message may be printed; *ret_suppressed gets the count skipped before it. */
bool log_ratelimit_below(struct log_ratelimit *rl, uint64_t now, unsigned *ret_suppressed);
