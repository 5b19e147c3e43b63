/* SPDX-License-Identifier: MIT */
/*
 * The daemon's error messages in shadowmeshctl's own words, translated. The daemon (bus.c,
 * manager.c) answers in English and in D-Bus terms ("call Disconnect", "the relay_server
 * option"); each entry below matches one of its messages, takes the variable parts (%s) out of
 * it and says the same in the CLI's terms, through gettext. A message no entry matches (a
 * newer daemon) is printed as the daemon wrote it. tests/dbus/ctl.sh drives each error in
 * English, German and French, so a change of wording on either side fails there.
 */
#include <string.h>

#include "ctl.h"
#include "i18n.h"

#define WORDS_MAX_ARGS 3
#define WORDS_ARG_MAX 256

static const struct {
        const char *daemon; /* the daemon's English text; %s (or %u) marks a variable part */
        const char *ours;   /* our words: the same %s, in the same order */
} words[] = {
        { "Only root and members of group '%s' may connect this tunnel",
          N_("permission denied: only root and members of group '%s' may connect this "
             "instance") },
        { "Only root and members of group '%s' may disconnect this tunnel",
          N_("permission denied: only root and members of group '%s' may disconnect this "
             "instance") },
        { "Already connected to %s; call Disconnect first",
          N_("already connected to %s; run 'shadowmeshctl disconnect' first") },
        { "Already connecting to %s; call Disconnect first",
          N_("already connecting to %s; run 'shadowmeshctl disconnect' first") },
        { "No peer is connected", N_("no peer is connected") },
        { "No handshake with %s before the timeout: the peer did not answer (wrong address, "
          "UDP port blocked, or a different key)",
          N_("no handshake with %s before the timeout: the peer did not answer (wrong "
             "address, UDP port blocked, or a different key)") },
        { "Cannot resolve '%s': %s", N_("cannot resolve '%s': %s") },
        { "No relay configured: set relay.server or pass the relay_server option",
          N_("no relay configured: set relay.server in the configuration, or pass "
             "--relay-server HOST[:PORT]") },
        { "Option 'public_key' needs identity mode (identity.private_key_file in the "
          "configuration)",
          N_("--public-key needs identity mode (identity.private_key_file in the instance's "
             "configuration)") },
        { "Option 'relay_server' is not host[:port]: '%s'",
          N_("invalid --relay-server '%s': expected HOST[:PORT]") },
        { "Option 'timeout_sec' must be between 1 and %u",
          N_("--timeout must be between 1 and %s seconds") },
        { "Peer address is empty: expected host[:port] (an empty peer needs a relay to "
          "introduce it)",
          N_("no peer address, and no relay to introduce the peer: give ADDR[:PORT], or "
             "--relay-server HOST[:PORT]") },
        { "Peer address '%s' is not valid: expected host[:port]",
          N_("invalid peer address '%s': expected ADDR[:PORT]") },
        { "Disconnected before the handshake with %s completed",
          N_("disconnected before the handshake with %s completed") },
};

/* Does text match pattern, each %s/%u standing for one or more characters? The captured parts
 * go to args (at most WORDS_MAX_ARGS, each truncated to WORDS_ARG_MAX - 1 bytes). The last
 * literal part decides where a placeholder ends: the shortest capture that lets the rest
 * match, which is what the daemon's messages need (no placeholder is followed by a literal
 * that also appears inside its value, except at the very end). */
static bool match(const char *pattern, const char *text, char args[][WORDS_ARG_MAX],
                  size_t n_args) {
        while (*pattern) {
                if (pattern[0] == '%' && (pattern[1] == 's' || pattern[1] == 'u')) {
                        if (n_args >= WORDS_MAX_ARGS || !*text)
                                return false;
                        /* Try every end for this capture, shortest first. */
                        for (size_t len = 1; len <= strlen(text); len++) {
                                if (match(pattern + 2, text + len, args, n_args + 1)) {
                                        size_t n = MIN(len, (size_t) WORDS_ARG_MAX - 1);
                                        memcpy(args[n_args], text, n);
                                        args[n_args][n] = 0;
                                        return true;
                                }
                        }
                        return false;
                }
                if (*pattern != *text)
                        return false;
                pattern++;
                text++;
        }
        return *text == 0;
}

const char *ctl_words_for(const char *daemon_message, char *buf, size_t size) {
        char args[WORDS_MAX_ARGS][WORDS_ARG_MAX] = {};

        if (!daemon_message)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(words); i++) {
                if (!match(words[i].daemon, daemon_message, args, 0))
                        continue;
                /* The format comes from our own table (and its translations, which msgfmt
                 * --check-format holds to the same %s). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(buf, size, _(words[i].ours), args[0], args[1], args[2]);
#pragma GCC diagnostic pop
                return buf;
        }
        return daemon_message;
}
