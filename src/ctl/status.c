/* SPDX-License-Identifier: MIT */
/* shadowmeshctl status: one instance (-i), or every running instance; human or --json. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "shadowmesh/bus-api.h"
#include "ctl.h"
#include "i18n.h"

static int print_human(const struct ctl_instance *inst, const struct tunnel_status *s) {
        _cleanup_(table_done) struct table t = {};
        _cleanup_free_ char *ago = NULL;
        char rx[FORMAT_BYTES_MAX], tx[FORMAT_BYTES_MAX];
        int r = 0;

        ago = format_ago(s->last_handshake, now_realtime_us());
        if (!ago)
                return -ENOMEM;

#define ADD(label, ...)                                                                            \
        do {                                                                                       \
                if (r >= 0)                                                                        \
                        r = table_add(&t, label, __VA_ARGS__);                                     \
        } while (0)
        ADD(_("Instance"), "%s", inst->name);
        ADD(_("State"), "%s", s->state);
        if (*s->failure_reason)
                ADD(_("Reason"), "%s", s->failure_reason);
        ADD(_("Path"), "%s", s->path);
        /* The address we were given, else (the peer came to us) where it is. */
        ADD(_("Peer"), "%s",
            *s->peer_address ? s->peer_address : *s->endpoint ? s->endpoint : "-");
        ADD(_("Endpoint"), "%s", *s->endpoint ? s->endpoint : "-");
        if (*s->public_endpoint)
                ADD(_("Public endpoint"), "%s", s->public_endpoint);
        if (*s->nat_type && strcmp(s->nat_type, "unknown") != 0)
                ADD(_("NAT type"), "%s", s->nat_type);
        ADD(_("Device"), "%s", s->tap_device);
        for (size_t i = 0; s->local_address[i]; i++)
                ADD(i == 0 ? _("Address") : NULL, "%s", s->local_address[i]);
        ADD(_("MTU"), "%u", (unsigned) s->mtu);
        if (*s->public_key)
                ADD(_("Public key"), "%s", s->public_key);
        ADD(_("Transfer"), _("%s received, %s sent (%llu / %llu packets)"),
            format_bytes(rx, s->rx_bytes), format_bytes(tx, s->tx_bytes),
            (unsigned long long) s->rx_packets, (unsigned long long) s->tx_packets);
        ADD(_("Last handshake"), "%s", ago);
#undef ADD
        if (r < 0)
                return r;
        table_print(&t, stdout);
        return 0;
}

/* One peer as `wg show` shows one: a heading with its name (else its key, else its id), then
 * indented lowercase "label: value" lines. Lowercase also keeps the instance's lines the only
 * "State:", "Endpoint:"... lines, for scripts that grep for them. */
static int print_peer(const struct ctl_peer *p) {
        _cleanup_free_ char *ago = NULL;
        char rx[FORMAT_BYTES_MAX], tx[FORMAT_BYTES_MAX];

        ago = format_ago(p->last_handshake, now_realtime_us());
        if (!ago)
                return -ENOMEM;
        printf("\n%s: %s\n", _("peer"),
               *p->name ? p->name : *p->public_key ? p->public_key : p->id);
        if (*p->name && *p->public_key)
                printf("  %s: %s\n", _("public key"), p->public_key);
        printf("  %s: %s\n", _("endpoint"), *p->endpoint ? p->endpoint : "-");
        printf("  %s: %s\n", _("path"), p->path);
        printf("  %s: %s\n", _("state"), p->state);
        printf("  %s: %s\n", _("latest handshake"), ago);
        printf("  %s: ", _("transfer"));
        printf(_("%s received, %s sent"), format_bytes(rx, p->rx_bytes),
               format_bytes(tx, p->tx_bytes));
        printf("\n  %s: %u\n", _("MACs learned"), (unsigned) p->macs);
        printf("  %s: %s\n", _("object"), p->object);
        return 0;
}

/* Print one instance, after separator (may be NULL) once its status is in. Returns an exit
 * code; *printed tells whether it went to stdout. */
static int show(sd_bus *bus, const struct ctl_instance *inst, bool json, const char *separator,
                bool *printed) {
        _cleanup_(ctl_tunnel_done) struct ctl_tunnel t = {};
        int r;

        *printed = false;
        r = ctl_get_tunnel(bus, inst, &t);
        if (r != CTL_EXIT_OK)
                return r;
        if (separator)
                fputs(separator, stdout);
        if (json)
                r = json_status_peers(stdout, inst->name, t.status.reply, t.peers, t.n_peers);
        else {
                r = print_human(inst, &t.status);
                for (size_t i = 0; r >= 0 && i < t.n_peers; i++)
                        r = print_peer(&t.peers[i]);
        }
        if (r < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("cannot show instance '%s': %s"), inst->name,
                                 strerror(-r));
        *printed = true;
        return CTL_EXIT_OK;
}

static int show_all(sd_bus *bus, bool json) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct ctl_instance **list = NULL;
        bool printed = false;
        int code = CTL_EXIT_OK;
        size_t n = 0, shown = 0;
        int r;

        r = ctl_instance_list(bus, &list, &n, &error);
        if (r < 0) {
                r = ctl_error(CTL_EXIT_FAILURE, _("cannot list the bus names: %s"),
                              sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        if (n == 0) {
                free(list);
                return ctl_error(CTL_EXIT_NOT_RUNNING,
                                 _("no instance is running (no %s* on the system bus)"),
                                 BUS_NAME_PREFIX);
        }
        if (json)
                fputc('[', stdout);
        for (size_t i = 0; i < n; i++) {
                int c = show(bus, list[i], json, shown > 0 ? (json ? "," : "\n") : NULL, &printed);
                if (printed)
                        shown++;
                /* An instance that went away since ListNames is simply gone; other failures
                 * are reported, and the first one decides the exit code. */
                if (c != CTL_EXIT_OK && c != CTL_EXIT_NOT_RUNNING && code == CTL_EXIT_OK)
                        code = c;
        }
        if (json)
                fputs("]\n", stdout);
        ctl_instance_list_free(list, n);
        if (shown == 0 && code == CTL_EXIT_OK)
                code = ctl_error(CTL_EXIT_NOT_RUNNING,
                                 _("no instance is running (no %s* on the system bus)"),
                                 BUS_NAME_PREFIX);
        return ctl_finish_stdout(code);
}

int ctl_status(struct ctl *ctl, int argc, char **argv) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "instance", required_argument, NULL, 'i' },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(ctl_instance_freep) struct ctl_instance *inst = NULL;
        bool printed = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "hi:", options, NULL)) >= 0) {
                switch (c) {
                case 'i':
                        ctl->instance = optarg;
                        break;
                case ARG_JSON:
                        ctl->json = true;
                        break;
                case 'h':
                        return ctl_command_help("status");
                default:
                        return ctl_getopt_error();
                }
        }
        if (optind < argc)
                return ctl_usage_error(_("status takes no arguments (use -i NAME to pick an "
                                         "instance)"));
        if (ctl->instance && ctl_instance_new(ctl->instance, &inst) < 0)
                return ctl_usage_error(_("invalid instance name '%s'"), ctl->instance);

        if (ctl_bus_open(&bus) < 0)
                return CTL_EXIT_NOT_RUNNING;
        if (!inst)
                return show_all(bus, ctl->json);
        r = show(bus, inst, ctl->json, NULL, &printed);
        if (printed && ctl->json)
                fputc('\n', stdout);
        return ctl_finish_stdout(r);
}
