/* SPDX-License-Identifier: MIT */
/*
 * shadowmeshctl list: every instance that owns org.shadowmesh1.Instance.<label> on the system
 * bus, one line each (networkctl list style), or a JSON array of status objects.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "i18n.h"

struct row {
        const struct ctl_instance *inst;
        struct tunnel_status status;
};

static void print_cell(const char *s, size_t width, bool last) {
        if (last) {
                printf("%s\n", s);
                return;
        }
        printf("%s%*s ", s, (int) (width - text_width(s)), "");
}

static void print_table(const struct row *rows, size_t n) {
        const char *header[] = { _("INSTANCE"), _("STATE"), _("ENDPOINT"), _("DEVICE") };
        size_t width[ELEMENTSOF(header)];

        for (size_t c = 0; c < ELEMENTSOF(header); c++)
                width[c] = text_width(header[c]);
        for (size_t i = 0; i < n; i++) {
                const struct tunnel_status *s = &rows[i].status;
                width[0] = MAX(width[0], text_width(rows[i].inst->name));
                width[1] = MAX(width[1], text_width(s->state));
                width[2] = MAX(width[2], text_width(*s->endpoint ? s->endpoint : "-"));
        }
        for (size_t c = 0; c < ELEMENTSOF(header); c++)
                print_cell(header[c], width[c], c + 1 == ELEMENTSOF(header));
        for (size_t i = 0; i < n; i++) {
                const struct tunnel_status *s = &rows[i].status;
                print_cell(rows[i].inst->name, width[0], false);
                print_cell(s->state, width[1], false);
                print_cell(*s->endpoint ? s->endpoint : "-", width[2], false);
                print_cell(s->tap_device, width[3], true);
        }
        printf("\n");
        printf(ngettext("%zu instance listed.\n", "%zu instances listed.\n", n), n);
}

static void print_json(const struct row *rows, size_t n) {
        fputc('[', stdout);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        fputc(',', stdout);
                if (json_status(stdout, rows[i].inst->name, rows[i].status.reply) < 0)
                        /* A reply that GetStatus parsing already accepted: cannot happen. */
                        fputs("null", stdout);
        }
        fputs("]\n", stdout);
}

int ctl_list(struct ctl *ctl, int argc, char **argv) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct ctl_instance **list = NULL;
        struct row *rows = NULL;
        size_t n = 0, n_rows = 0;
        int c, r, code = CTL_EXIT_OK;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        ctl->json = true;
                        break;
                case 'h':
                        return ctl_command_help("list");
                default:
                        return ctl_getopt_error();
                }
        }
        if (optind < argc)
                return ctl_usage_error(_("list takes no arguments"));
        if (ctl->instance)
                return ctl_usage_error(_("list shows every instance: -i does not apply"));

        if (ctl_bus_open(&bus) < 0)
                return CTL_EXIT_NOT_RUNNING;
        r = ctl_instance_list(bus, &list, &n, &error);
        if (r < 0) {
                r = ctl_error(CTL_EXIT_FAILURE, _("cannot list the bus names: %s"),
                              sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        rows = calloc(n ? n : 1, sizeof(*rows));
        if (!rows) {
                ctl_instance_list_free(list, n);
                return ctl_error(CTL_EXIT_FAILURE, "%s", strerror(ENOMEM));
        }
        for (size_t i = 0; i < n; i++) {
                r = ctl_get_status(bus, list[i], &rows[n_rows].status, &error);
                if (r >= 0) {
                        rows[n_rows++].inst = list[i];
                        continue;
                }
                /* Gone since ListNames: not running any more, so not listed. */
                if (!ctl_error_is_not_running(&error)) {
                        int e = ctl_bus_error(bus, list[i], &error, r);
                        if (code == CTL_EXIT_OK)
                                code = e;
                }
                sd_bus_error_free(&error);
        }

        if (ctl->json)
                print_json(rows, n_rows);
        else
                print_table(rows, n_rows);

        for (size_t i = 0; i < n_rows; i++)
                tunnel_status_done(&rows[i].status);
        free(rows);
        ctl_instance_list_free(list, n);
        return ctl_finish_stdout(code);
}
