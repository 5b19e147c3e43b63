/* SPDX-License-Identifier: MIT */
/* sm-call: call a method of org.shadowmesh1.Tunnel on the system bus ($DBUS_SYSTEM_BUS_ADDRESS)
 * and print the outcome with the error's name AND its message. busctl prints neither the name
 * of an error nor the message of org.freedesktop.DBus.Error.AccessDenied, and dbus-send cannot
 * build the a{sv} argument of Connect, so the tests use this.
 *
 *   sm-call [--timeout SEC] DEST PATH Connect PEER [NAME=TYPE:VALUE]...   (TYPE: s, u, b, i)
 *   sm-call [--timeout SEC] DEST PATH Disconnect|GetStatus
 *
 * Prints "ok" (exit 0) or "error NAME: MESSAGE" (exit 1); 2 on usage or bus errors. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#define TUNNEL_INTERFACE "org.shadowmesh1.Tunnel"

static int append_option(sd_bus_message *m, const char *spec) {
        const char *eq = strchr(spec, '='), *value;
        char name[128], type;
        int r;

        if (!eq || (size_t) (eq - spec) >= sizeof(name) || strlen(eq + 1) < 2 || eq[2] != ':')
                return -EINVAL;
        memcpy(name, spec, (size_t) (eq - spec));
        name[eq - spec] = 0;
        type = eq[1];
        value = eq + 3;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r < 0)
                return r;
        switch (type) {
        case 's':
                r = sd_bus_message_append(m, "v", "s", value);
                break;
        case 'u':
                r = sd_bus_message_append(m, "v", "u", (uint32_t) strtoul(value, NULL, 10));
                break;
        case 'i':
                r = sd_bus_message_append(m, "v", "i", (int32_t) strtol(value, NULL, 10));
                break;
        case 'b':
                r = sd_bus_message_append(m, "v", "b", strcmp(value, "true") == 0);
                break;
        default:
                return -EINVAL;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"timeout", required_argument, NULL, 't'},
                {},
        };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus = NULL;
        uint64_t timeout_usec = 60 * 1000000ULL;
        const char *dest, *path, *method;
        int c, r, rc = 2;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (c != 't')
                        return 2;
                timeout_usec = strtoull(optarg, NULL, 10) * 1000000ULL;
        }
        if (argc - optind < 3) {
                fprintf(stderr, "usage: sm-call [--timeout SEC] DEST PATH METHOD [ARGS...]\n");
                return 2;
        }
        dest = argv[optind];
        path = argv[optind + 1];
        method = argv[optind + 2];
        optind += 3;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "sm-call: cannot connect to the system bus: %s\n", strerror(-r));
                return 2;
        }
        r = sd_bus_message_new_method_call(bus, &m, dest, path, TUNNEL_INTERFACE, method);
        if (r >= 0 && strcmp(method, "Connect") == 0) {
                if (optind >= argc) {
                        fprintf(stderr, "sm-call: Connect needs PEER\n");
                        goto out;
                }
                r = sd_bus_message_append(m, "s", argv[optind++]);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                for (; r >= 0 && optind < argc; optind++) {
                        r = append_option(m, argv[optind]);
                        if (r == -EINVAL) {
                                fprintf(stderr, "sm-call: bad option '%s' (NAME=TYPE:VALUE)\n",
                                        argv[optind]);
                                goto out;
                        }
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        } else if (r >= 0 && optind < argc) {
                fprintf(stderr, "sm-call: %s takes no arguments here\n", method);
                goto out;
        }
        if (r < 0) {
                fprintf(stderr, "sm-call: building the message: %s\n", strerror(-r));
                goto out;
        }

        r = sd_bus_call(bus, m, timeout_usec, &error, &reply);
        if (r < 0) {
                if (sd_bus_error_is_set(&error)) {
                        printf("error %s: %s\n", error.name, error.message ? error.message : "");
                        rc = 1;
                } else
                        fprintf(stderr, "sm-call: call failed: %s\n", strerror(-r));
                goto out;
        }
        printf("ok\n");
        rc = 0;
out:
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return rc;
}
