/* SPDX-License-Identifier: MIT */
/* shadowmeshctl disconnect [PEER]: Disconnect() on the instance, or on the one peer PEER names
 * (its name, its public key, its id or its object path). Silent on success. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "shadowmesh/bus-api.h"
#include "ctl.h"
#include "i18n.h"

static bool peer_matches(const struct ctl_peer *p, const char *arg) {
        return (*p->name && strcmp(p->name, arg) == 0) ||
               (*p->public_key && strcmp(p->public_key, arg) == 0) ||
               strcmp(p->id, arg) == 0 || strcmp(p->object, arg) == 0;
}

/* The object of the one peer of inst that arg names, in ret (malloc'd); or an exit code. */
static int find_peer(sd_bus *bus, const struct ctl_instance *inst, const char *arg, char **ret) {
        _cleanup_(ctl_tunnel_done) struct ctl_tunnel t = {};
        size_t found = 0, at = 0;
        int r;

        r = ctl_get_tunnel(bus, inst, &t);
        if (r != CTL_EXIT_OK)
                return r;
        for (size_t i = 0; i < t.n_peers; i++)
                if (peer_matches(&t.peers[i], arg)) {
                        found++;
                        at = i;
                }
        if (found == 1) {
                *ret = strdup(t.peers[at].object);
                r = *ret ? CTL_EXIT_OK : ctl_error(CTL_EXIT_FAILURE, "%s", strerror(ENOMEM));
        } else if (found > 1) {
                /* Names are unique, and so are ids, but one peer's name may be another's id:
                 * the object path (or the public key) is what tells them apart. */
                char ids[128] = "";
                size_t len = 0;

                for (size_t i = 0; i < t.n_peers && len < sizeof(ids); i++)
                        if (peer_matches(&t.peers[i], arg))
                                len += (size_t) snprintf(ids + len, sizeof(ids) - len, "%s%s",
                                                         len ? ", " : "", t.peers[i].id);
                r = ctl_error(CTL_EXIT_USAGE,
                              _("'%s' names %zu peers of instance '%s' (ids %s): give the "
                                "peer's public key or object path, as 'shadowmeshctl status' "
                                "shows them"),
                              arg, found, inst->name, ids);
        } else
                r = ctl_error(CTL_EXIT_STATE,
                              _("instance '%s' has no peer '%s' (a name, a public key or an id, "
                                "as 'shadowmeshctl status' shows them)"),
                              inst->name, arg);
        return r;
}

int ctl_disconnect(struct ctl *ctl, int argc, char **argv) {
        static const struct option options[] = {
                { "instance", required_argument, NULL, 'i' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(ctl_instance_freep) struct ctl_instance *inst = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *peer = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "hi:", options, NULL)) >= 0) {
                switch (c) {
                case 'i':
                        ctl->instance = optarg;
                        break;
                case 'h':
                        return ctl_command_help("disconnect");
                default:
                        return ctl_getopt_error();
                }
        }
        if (ctl->json)
                return ctl_usage_error(_("--json is for status, list and netcheck"));
        if (optind + 1 < argc)
                return ctl_usage_error(_("unexpected argument '%s'"), argv[optind + 1]);
        if (ctl_instance_new(ctl->instance ? ctl->instance : CTL_DEFAULT_INSTANCE, &inst) < 0)
                return ctl_usage_error(_("invalid instance name '%s'"), ctl->instance);

        if (ctl_bus_open(&bus) < 0)
                return CTL_EXIT_NOT_RUNNING;
        if (optind < argc) {
                r = find_peer(bus, inst, argv[optind], &peer);
                if (r != CTL_EXIT_OK)
                        return r;
        }
        r = sd_bus_call_method(bus, inst->bus_name, peer ? peer : inst->path,
                               peer ? BUS_PEER_INTERFACE : BUS_INTERFACE, "Disconnect", &error,
                               NULL, NULL);
        if (r < 0) {
                r = ctl_bus_error(bus, inst, &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        return CTL_EXIT_OK;
}
