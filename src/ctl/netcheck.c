/* SPDX-License-Identifier: MIT */
/* shadowmeshctl netcheck: NetCheck() on the instance: what the network looks like from the
 * tunnel's own socket. Human lines, or the reply as one JSON object. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "shadowmesh/bus-api.h"
#include "ctl.h"
#include "i18n.h"

/* STUN with retransmissions to a server that does not answer, plus the relay: well under this. */
#define NETCHECK_CALL_TIMEOUT_SEC 30

struct report {
        const char *public_endpoint, *nat_type, *mapping, *filtering, *stun_server, *stun_error,
                *relay;
        uint64_t stun_rtt, relay_rtt;
        int relay_reachable, relay_registered;
};

static int parse(sd_bus_message *reply, struct report *rep) {
        const char *key;
        int r;

        *rep = (struct report){
                .public_endpoint = "", .nat_type = "", .mapping = "", .filtering = "",
                .stun_server = "", .stun_error = "", .relay = "",
        };
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *contents;
                char type;

                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, &type, &contents);
                if (r < 0)
                        break;
#define STR(name, field)                                                                           \
        else if (strcmp(key, name) == 0 && strcmp(contents, "s") == 0) r =                         \
                sd_bus_message_read(reply, "v", "s", &rep->field)
#define U64(name, field)                                                                           \
        else if (strcmp(key, name) == 0 && strcmp(contents, "t") == 0) r =                         \
                sd_bus_message_read(reply, "v", "t", &rep->field)
#define BOOL(name, field)                                                                          \
        else if (strcmp(key, name) == 0 && strcmp(contents, "b") == 0) r =                         \
                sd_bus_message_read(reply, "v", "b", &rep->field)
                if (0)
                        ;
                STR("PublicEndpoint", public_endpoint);
                STR("NatType", nat_type);
                STR("NatMapping", mapping);
                STR("NatFiltering", filtering);
                STR("StunServer", stun_server);
                STR("StunError", stun_error);
                STR("Relay", relay);
                U64("StunRttUsec", stun_rtt);
                U64("RelayRttUsec", relay_rtt);
                BOOL("RelayReachable", relay_reachable);
                BOOL("RelayRegistered", relay_registered);
                else
                        r = sd_bus_message_skip(reply, "v");
#undef STR
#undef U64
#undef BOOL
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        return r < 0 ? r : sd_bus_message_exit_container(reply);
}

static int print_human(const struct report *rep) {
        _cleanup_(table_done) struct table t = {};
        int r = 0;

#define ADD(label, ...)                                                                            \
        do {                                                                                       \
                if (r >= 0)                                                                        \
                        r = table_add(&t, label, __VA_ARGS__);                                     \
        } while (0)
        ADD(_("Public endpoint"), "%s", *rep->public_endpoint ? rep->public_endpoint : _("unknown"));
        ADD(_("NAT type"), "%s", rep->nat_type);
        ADD(_("NAT mapping"), "%s", rep->mapping);
        ADD(_("NAT filtering"), "%s", rep->filtering);
        if (rep->stun_rtt)
                ADD(_("STUN server"), _("%s (%llu ms)"), rep->stun_server,
                    (unsigned long long) ((rep->stun_rtt + 500) / 1000));
        else
                ADD(_("STUN server"), _("%s (no answer%s%s)"), rep->stun_server,
                    *rep->stun_error ? ": " : "", rep->stun_error);
        if (!*rep->relay)
                ADD(_("Relay"), "%s", _("none configured"));
        else if (rep->relay_reachable)
                ADD(_("Relay"), _("%s, reachable (%llu ms), %s"), rep->relay,
                    (unsigned long long) ((rep->relay_rtt + 500) / 1000),
                    rep->relay_registered ? _("registered") : _("not registered"));
        else
                ADD(_("Relay"), _("%s, unreachable"), rep->relay);
#undef ADD
        if (r < 0)
                return r;
        table_print(&t, stdout);
        return 0;
}

int ctl_netcheck(struct ctl *ctl, int argc, char **argv) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "instance", required_argument, NULL, 'i' },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(ctl_instance_freep) struct ctl_instance *inst = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct report rep;
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
                        return ctl_command_help("netcheck");
                default:
                        return ctl_getopt_error();
                }
        }
        if (optind < argc)
                return ctl_usage_error(_("unexpected argument '%s'"), argv[optind]);
        if (ctl_instance_new(ctl->instance ? ctl->instance : CTL_DEFAULT_INSTANCE, &inst) < 0)
                return ctl_usage_error(_("invalid instance name '%s'"), ctl->instance);

        if (ctl_bus_open(&bus) < 0)
                return CTL_EXIT_NOT_RUNNING;
        r = sd_bus_message_new_method_call(bus, &m, inst->bus_name, inst->path, BUS_INTERFACE,
                                           "NetCheck");
        if (r >= 0)
                r = sd_bus_call(bus, m, NETCHECK_CALL_TIMEOUT_SEC * USEC_PER_SEC, &error, &reply);
        if (r < 0) {
                r = ctl_bus_error(bus, inst, &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        if (ctl->json) {
                r = json_status(stdout, inst->name, reply);
                fputc('\n', stdout);
        } else {
                r = parse(reply, &rep);
                if (r >= 0)
                        r = print_human(&rep);
        }
        if (r < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("cannot read the NetCheck reply: %s"),
                                 strerror(-r));
        return ctl_finish_stdout(CTL_EXIT_OK);
}
