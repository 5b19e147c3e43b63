/* SPDX-License-Identifier: MIT */
/* shadowmeshctl disconnect: Disconnect() on the instance. Silent on success. */
#include <getopt.h>
#include <stdio.h>

#include "shadowmesh/bus-api.h"
#include "ctl.h"
#include "i18n.h"

int ctl_disconnect(struct ctl *ctl, int argc, char **argv) {
        static const struct option options[] = {
                { "instance", required_argument, NULL, 'i' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(ctl_instance_freep) struct ctl_instance *inst = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
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
        if (optind < argc)
                return ctl_usage_error(_("unexpected argument '%s'"), argv[optind]);
        if (ctl_instance_new(ctl->instance ? ctl->instance : CTL_DEFAULT_INSTANCE, &inst) < 0)
                return ctl_usage_error(_("invalid instance name '%s'"), ctl->instance);

        if (ctl_bus_open(&bus) < 0)
                return CTL_EXIT_NOT_RUNNING;
        r = sd_bus_call_method(bus, inst->bus_name, inst->path, BUS_INTERFACE, "Disconnect",
                               &error, NULL, NULL);
        if (r < 0) {
                r = ctl_bus_error(bus, inst, &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        return CTL_EXIT_OK;
}
