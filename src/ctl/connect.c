/* SPDX-License-Identifier: MIT */
/*
 * shadowmeshctl connect ADDR[:PORT]: Connect(s peer, a{sv} options). The daemon replies only
 * once the handshake completed or failed, so the call is asynchronous here: a progress line
 * on a terminal, ticking every second, until the reply comes.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shadowmesh/bus-api.h"
#include "config.h"
#include "ctl.h"
#include "hostport.h"
#include "messages.h"
#include "i18n.h"

#define REPLY_GRACE_SEC 5              /* resolving, and the reply's trip back */

struct pending {
        bool done;
        sd_bus_error error;
        int r;
};

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct pending *p = userdata;

        p->done = true;
        p->r = sd_bus_message_get_errno(m);
        if (sd_bus_message_is_method_error(m, NULL))
                sd_bus_error_copy(&p->error, sd_bus_message_get_error(m));
        return 0;
}

static uint64_t now_mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static int parse_timeout(const char *s, uint32_t *ret) {
        char *end;
        unsigned long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < 1 || v > CONNECT_TIMEOUT_MAX_SEC)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* host[:port] checked as the daemon and its configuration check it (hostport.c), with the
 * same reason, so that nothing is sent, and no "Connecting..." printed, for an address that
 * cannot work. what names the argument as the user wrote it: "ADDR", "--relay-server". */
static int check_host_port(const char *what, const char *s, uint16_t default_port) {
        _cleanup_free_ char *host = NULL;
        const char *why = NULL;
        uint16_t port;
        int r;

        r = hostport_parse(s, default_port, &host, &port, &why);
        if (r == -ENOMEM)
                return ctl_error(CTL_EXIT_FAILURE, "%s", strerror(ENOMEM));
        if (r < 0)
                /* Translators: the same words as the configuration's "'%s' is not host[:port]:
                 * %s" (shadowmeshd --check); the first %s names the argument (ADDR,
                 * --relay-server). */
                return ctl_usage_error(_("invalid %s: '%s' is not host[:port]: %s"), what, s,
                                       _(why));
        return 0;
}

static int append_options(sd_bus_message *m, bool have_timeout, uint32_t timeout_sec,
                          const char *public_key, bool relay, const char *relay_server) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && have_timeout)
                r = sd_bus_message_append(m, "{sv}", "timeout_sec", "u", timeout_sec);
        if (r >= 0 && public_key)
                r = sd_bus_message_append(m, "{sv}", "public_key", "s", public_key);
        if (r >= 0 && relay)
                r = sd_bus_message_append(m, "{sv}", "relay", "b", 1);
        if (r >= 0 && relay_server)
                r = sd_bus_message_append(m, "{sv}", "relay_server", "s", relay_server);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* Run the bus until the reply or the deadline; on a terminal, redraw the progress line each
 * second. Returns 0 when the reply came, -ETIMEDOUT, or -errno of the bus. */
static int wait_reply(sd_bus *bus, struct pending *p, const char *peer, uint64_t deadline,
                      bool tty) {
        uint64_t start = now_mono_usec(), shown = UINT64_MAX;
        int r;

        if (!tty)
                fprintf(stderr, _("Connecting to %s...\n"), peer);
        while (!p->done) {
                uint64_t now = now_mono_usec(), elapsed = (now - start) / USEC_PER_SEC, wait;

                if (now >= deadline)
                        return -ETIMEDOUT;
                if (tty && elapsed != shown) {
                        fputs("\r\033[K", stderr);
                        fprintf(stderr, _("Connecting to %s... (%llu s)"), peer,
                                (unsigned long long) elapsed);
                        fflush(stderr);
                        shown = elapsed;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                /* Wake at the next whole second of elapsed time, or at the deadline. */
                wait = start + (elapsed + 1) * USEC_PER_SEC - now;
                wait = MIN(wait, deadline - now);
                r = sd_bus_wait(bus, wait);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

int ctl_connect(struct ctl *ctl, int argc, char **argv) {
        enum { ARG_TIMEOUT = 0x100, ARG_PUBLIC_KEY, ARG_RELAY, ARG_RELAY_SERVER };
        static const struct option options[] = {
                { "instance", required_argument, NULL, 'i' },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "public-key", required_argument, NULL, ARG_PUBLIC_KEY },
                { "relay", no_argument, NULL, ARG_RELAY },
                { "relay-server", required_argument, NULL, ARG_RELAY_SERVER },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(ctl_instance_freep) struct ctl_instance *inst = NULL;
        struct pending p = { .error = SD_BUS_ERROR_NULL };
        struct tunnel_status s;
        uint32_t timeout_sec = CONNECT_TIMEOUT_DEFAULT_SEC;
        bool have_timeout = false, relay = false, tty;
        char public_key[45];
        const char *peer, *key_arg = NULL, *relay_server = NULL;
        uint64_t call_timeout;
        int c, r, code;

        while ((c = getopt_long(argc, argv, "hi:", options, NULL)) >= 0) {
                switch (c) {
                case 'i':
                        ctl->instance = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (parse_timeout(optarg, &timeout_sec) < 0)
                                return ctl_usage_error(
                                        _("invalid --timeout '%s': expected whole seconds, "
                                          "1 to %u"),
                                        optarg, CONNECT_TIMEOUT_MAX_SEC);
                        have_timeout = true;
                        break;
                case ARG_PUBLIC_KEY:
                        key_arg = optarg;
                        break;
                case ARG_RELAY:
                        relay = true;
                        break;
                case ARG_RELAY_SERVER:
                        relay_server = optarg;
                        break;
                case 'h':
                        return ctl_command_help("connect");
                default:
                        return ctl_getopt_error();
                }
        }
        if (ctl->json)
                return ctl_usage_error(_("--json is for status, list and netcheck"));
        if (optind + 1 < argc)
                return ctl_usage_error(_("unexpected argument '%s'"), argv[optind + 1]);
        /* No address: the relay introduces the peer. A public key in its place means the
         * same, for that peer (identity mode). */
        peer = optind < argc ? argv[optind] : "";
        if (optind < argc && !*peer)
                return ctl_usage_error(_("the peer's address is empty"));
        if (*peer && !key_arg && strlen(peer) == 44 && peer[43] == '=') {
                uint8_t key[32];
                if (config_parse_key(peer, key) == 0) {
                        key_arg = peer;
                        peer = "";
                }
                sodium_memzero(key, sizeof(key));
        }
        if (key_arg) {
                /* Checked here so a typo is a usage error; sent in canonical base64. */
                uint8_t key[32];
                if (config_parse_key(key_arg, key) < 0)
                        return ctl_usage_error(_("invalid --public-key: expected 44 base64 "
                                                 "characters or 64 hex digits"));
                config_format_key(key, public_key);
                sodium_memzero(key, sizeof(key));
        }
        if (*peer) {
                r = check_host_port("ADDR", peer, PORT_DEFAULT);
                if (r != 0)
                        return r;
        }
        if (relay_server && *relay_server) {
                r = check_host_port("--relay-server", relay_server, RELAY_PORT_DEFAULT);
                if (r != 0)
                        return r;
        }
        if (ctl_instance_new(ctl->instance ? ctl->instance : CTL_DEFAULT_INSTANCE, &inst) < 0)
                return ctl_usage_error(_("invalid instance name '%s'"), ctl->instance);

        if (ctl_bus_open(&bus) < 0)
                return CTL_EXIT_NOT_RUNNING;
        r = sd_bus_message_new_method_call(bus, &m, inst->bus_name, inst->path, BUS_INTERFACE,
                                           "Connect");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", peer);
        if (r >= 0)
                r = append_options(m, have_timeout, timeout_sec, key_arg ? public_key : NULL,
                                   relay, relay_server);
        if (r < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("cannot build the Connect call: %s"),
                                 strerror(-r));

        /* Our own deadline comes first; sd-bus's timeout is only a backstop past it. */
        call_timeout = (uint64_t) (timeout_sec + REPLY_GRACE_SEC) * USEC_PER_SEC;
        r = sd_bus_call_async(bus, &slot, m, on_reply, &p, call_timeout + USEC_PER_SEC);
        if (r < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("cannot send the Connect call: %s"),
                                 strerror(-r));
        tty = isatty(STDERR_FILENO);
        r = wait_reply(bus, &p, *peer ? peer : _("the peer (through the relay)"),
                       now_mono_usec() + call_timeout, tty);
        if (tty) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
        }
        if (r == -ETIMEDOUT) {
                sd_bus_error_free(&p.error);
                return ctl_error(CTL_EXIT_TIMEOUT,
                                 _("no reply from instance '%s' within %llu s"), inst->name,
                                 (unsigned long long) (call_timeout / USEC_PER_SEC));
        }
        if (r < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("lost the system bus: %s"), strerror(-r));
        if (sd_bus_error_is_set(&p.error)) {
                code = ctl_bus_error(bus, inst, &p.error, p.r);
                sd_bus_error_free(&p.error);
                return code;
        }

        /* Connected: say where to, from the daemon's view. */
        r = ctl_get_status(bus, inst, &s, &p.error);
        if (r < 0) {
                code = ctl_bus_error(bus, inst, &p.error, r);
                sd_bus_error_free(&p.error);
                return code;
        }
        printf(_("Connected to %s (%s)\n"), *s.endpoint ? s.endpoint : peer, s.path);
        tunnel_status_done(&s);
        return ctl_finish_stdout(CTL_EXIT_OK);
}
