/* SPDX-License-Identifier: MIT */
/*
 * Instances on the system bus: naming (an instance name escaped as sd_bus_path_encode() does
 * is both the last element of its object path and of its bus name), discovery (ListNames),
 * GetStatus, and how a failed call becomes a message and an exit code.
 */
#include <stdio.h>
#include <string.h>

#include "shadowmesh/bus-api.h"
#include "ctl.h"
#include "i18n.h"

#define BUS_NAME_MAX 255 /* D-Bus specification, "Valid Names" */

struct ctl_instance *ctl_instance_free(struct ctl_instance *i) {
        if (!i)
                return NULL;
        free(i->name);
        free(i->bus_name);
        free(i->path);
        free(i);
        return NULL;
}

int ctl_instance_new(const char *name, struct ctl_instance **ret) {
        _cleanup_(ctl_instance_freep) struct ctl_instance *i = NULL;
        const char *label;
        int r;

        if (!name || !*name)
                return -EINVAL;
        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->name = strdup(name);
        if (!i->name)
                return -ENOMEM;
        r = sd_bus_path_encode(BUS_PATH_PREFIX, name, &i->path);
        if (r < 0)
                return r;
        label = i->path + strlen(BUS_PATH_PREFIX "/");
        if (asprintf(&i->bus_name, BUS_NAME_PREFIX "%s", label) < 0) {
                i->bus_name = NULL;
                return -ENOMEM;
        }
        if (strlen(i->bus_name) > BUS_NAME_MAX)
                return -EINVAL;
        *ret = TAKE_PTR(i);
        return 0;
}

void ctl_instance_list_free(struct ctl_instance **list, size_t n) {
        for (size_t i = 0; i < n; i++)
                ctl_instance_free(list[i]);
        free(list);
}

static int compare_instances(const void *a, const void *b) {
        const struct ctl_instance *x = *(struct ctl_instance *const *) a;
        const struct ctl_instance *y = *(struct ctl_instance *const *) b;
        return strcmp(x->name, y->name);
}

/* org.shadowmesh1.Instance.<label> -> instance, or 0 when the name is not one of ours (a
 * label that is not what sd_bus_path_encode() makes of its own decoding). */
static int instance_from_bus_name(const char *bus_name, struct ctl_instance **ret) {
        _cleanup_free_ char *path = NULL, *name = NULL;
        _cleanup_(ctl_instance_freep) struct ctl_instance *i = NULL;
        const char *label;
        int r;

        if (strncmp(bus_name, BUS_NAME_PREFIX, strlen(BUS_NAME_PREFIX)) != 0)
                return 0;
        label = bus_name + strlen(BUS_NAME_PREFIX);
        if (asprintf(&path, BUS_PATH_PREFIX "/%s", label) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        r = sd_bus_path_decode(path, BUS_PATH_PREFIX, &name);
        if (r <= 0)
                return r;
        r = ctl_instance_new(name, &i);
        if (r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        if (strcmp(i->bus_name, bus_name) != 0)
                return 0;
        *ret = TAKE_PTR(i);
        return 1;
}

int ctl_instance_list(sd_bus *bus, struct ctl_instance ***ret, size_t *ret_n,
                      sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct ctl_instance **list = NULL;
        size_t n = 0, allocated = 0;
        const char *bus_name;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "ListNames", error, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "s");
        while (r >= 0 && (r = sd_bus_message_read(reply, "s", &bus_name)) > 0) {
                struct ctl_instance *i = NULL;

                r = instance_from_bus_name(bus_name, &i);
                if (r <= 0)
                        continue;
                if (n == allocated) {
                        size_t a = allocated ? allocated * 2 : 8;
                        struct ctl_instance **l = reallocarray(list, a, sizeof(*list));
                        if (!l) {
                                ctl_instance_free(i);
                                r = -ENOMEM;
                                break;
                        }
                        list = l;
                        allocated = a;
                }
                list[n++] = i;
        }
        if (r < 0) {
                ctl_instance_list_free(list, n);
                return r;
        }
        if (n > 1)
                qsort(list, n, sizeof(*list), compare_instances);
        *ret = list;
        *ret_n = n;
        return 0;
}

int ctl_bus_open(sd_bus **ret) {
        int r = sd_bus_open_system(ret);
        if (r < 0)
                ctl_error(CTL_EXIT_NOT_RUNNING, _("cannot connect to the system bus: %s"),
                          strerror(-r));
        return r;
}

bool ctl_error_is_not_running(const sd_bus_error *error) {
        return sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                      SD_BUS_ERROR_NAME_HAS_NO_OWNER);
}

/* "not running": which instances do run, and how to start this one. */
static int not_running(sd_bus *bus, const struct ctl_instance *inst) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        struct ctl_instance **list = NULL;
        size_t n = 0;

        ctl_error(CTL_EXIT_NOT_RUNNING, _("instance '%s' is not running (no %s on the system bus)"),
                  inst->name, inst->bus_name);
        if (bus && ctl_instance_list(bus, &list, &n, &error) >= 0) {
                if (n == 0)
                        fprintf(stderr, "%s\n", _("No instance is running."));
                else {
                        fprintf(stderr, "%s", _("Running instances:"));
                        for (size_t i = 0; i < n; i++)
                                fprintf(stderr, "%s%s", i ? ", " : " ", list[i]->name);
                        fputc('\n', stderr);
                }
                ctl_instance_list_free(list, n);
        }
        fprintf(stderr, _("Start it with: systemctl start shadowmesh@%s\n"), inst->name);
        return CTL_EXIT_NOT_RUNNING;
}

int ctl_bus_error(sd_bus *bus, const struct ctl_instance *inst, const sd_bus_error *error, int r) {
        char buf[1024];

        if (!sd_bus_error_is_set(error))
                return ctl_error(CTL_EXIT_FAILURE, "%s", strerror(r < 0 ? -r : EIO));
        if (ctl_error_is_not_running(error))
                return not_running(bus, inst);

        /* The daemon's message in our words; the name picks the exit code. */
        const char *text = error->message && *error->message
                                   ? ctl_words_for(error->message, buf, sizeof(buf))
                                   : error->name;
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED))
                return ctl_error(CTL_EXIT_ACCESS, "%s", text);
        if (sd_bus_error_has_name(error, BUS_ERROR_HANDSHAKE_TIMEOUT))
                return ctl_error(CTL_EXIT_TIMEOUT, "%s", text);
        if (sd_bus_error_has_names(error, BUS_ERROR_ALREADY_CONNECTED,
                                   BUS_ERROR_NOT_CONNECTED))
                return ctl_error(CTL_EXIT_STATE, "%s", text);
        return ctl_error(CTL_EXIT_FAILURE, "%s", text);
}

void tunnel_status_done(struct tunnel_status *s) {
        s->reply = sd_bus_message_unref(s->reply);
        free(s->local_address);
        s->local_address = NULL;
        free(s->peers);
        s->peers = NULL;
}

/* An array of strings ("s") or object paths ("o"), NULL-terminated; the strings point into m. */
static int read_string_array(sd_bus_message *m, const char *type, const char ***ret) {
        const char **v = NULL, *s;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', type);
        while (r >= 0 && (r = sd_bus_message_read(m, type, &s)) > 0) {
                const char **w = reallocarray(v, n + 2, sizeof(*v));
                if (!w) {
                        r = -ENOMEM;
                        break;
                }
                v = w;
                v[n++] = s;
                v[n] = NULL;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0 && !v && !(v = calloc(1, sizeof(*v))))
                r = -ENOMEM;
        if (r < 0) {
                free(v);
                return r;
        }
        *ret = v;
        return 0;
}

/* A property shadowmeshctl shows: its name, its D-Bus type and where it goes in a struct. */
struct field {
        const char *name;
        char type;
        size_t offset;
};

/* Read the variant of property name into base + its field's offset when the table has it with
 * that basic type; skip it otherwise. The variant is next in m. */
static int read_field(sd_bus_message *m, const char *name, const struct field *fields, size_t n,
                      void *base) {
        const char *contents;
        int r;

        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(name, fields[i].name) != 0 || contents[0] != fields[i].type ||
                    contents[1] != 0)
                        continue;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r >= 0)
                        r = sd_bus_message_read_basic(m, fields[i].type,
                                                      (uint8_t *) base + fields[i].offset);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                return r;
        }
        return sd_bus_message_skip(m, "v");
}

/* The properties shadowmeshctl shows; anything else in the reply is skipped (and still
 * appears in --json). */
static int read_property(sd_bus_message *m, const char *name, struct tunnel_status *s) {
        static const struct field fields[] = {
#define F(n, t, f) { n, t, offsetof(struct tunnel_status, f) }
                F("State", 's', state),
                F("FailureReason", 's', failure_reason),
                F("Path", 's', path),
                F("PeerAddress", 's', peer_address),
                F("Endpoint", 's', endpoint),
                F("PublicEndpoint", 's', public_endpoint),
                F("NatType", 's', nat_type),
                F("TapDevice", 's', tap_device),
                F("PublicKey", 's', public_key),
                F("Mtu", 'u', mtu),
                F("RxBytes", 't', rx_bytes),
                F("TxBytes", 't', tx_bytes),
                F("RxPackets", 't', rx_packets),
                F("TxPackets", 't', tx_packets),
                F("LastHandshake", 't', last_handshake),
#undef F
        };
        const char *contents;
        int r;

        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;
        if ((strcmp(name, "LocalAddress") == 0 && strcmp(contents, "as") == 0) ||
            (strcmp(name, "Peers") == 0 && strcmp(contents, "ao") == 0)) {
                const char ***field = name[0] == 'P' ? &s->peers : &s->local_address;
                const char **v;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r >= 0)
                        r = read_string_array(m, contents + 1, &v);
                if (r < 0)
                        return r;
                free(*field);
                *field = v;
                return sd_bus_message_exit_container(m);
        }
        return read_field(m, name, fields, ELEMENTSOF(fields), s);
}

int ctl_get_status(sd_bus *bus, const struct ctl_instance *inst, struct tunnel_status *ret,
                   sd_bus_error *error) {
        struct tunnel_status s = {
                .state = "", .failure_reason = "", .path = "", .peer_address = "",
                .endpoint = "",
                .public_endpoint = "", .nat_type = "", .tap_device = "", .public_key = "",
        };
        const char *name;
        int r;

        r = sd_bus_call_method(bus, inst->bus_name, inst->path, BUS_INTERFACE, "GetStatus",
                               error, &s.reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(s.reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(s.reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(s.reply, "s", &name);
                if (r >= 0)
                        r = read_property(s.reply, name, &s);
                if (r >= 0)
                        r = sd_bus_message_exit_container(s.reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(s.reply);
        if (r >= 0 && !s.local_address && !(s.local_address = calloc(1, sizeof(char *))))
                r = -ENOMEM;
        if (r >= 0 && !s.peers && !(s.peers = calloc(1, sizeof(char *))))
                r = -ENOMEM;
        if (r < 0) {
                tunnel_status_done(&s);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         _("malformed GetStatus reply from %s: %s"),
                                         inst->bus_name, strerror(-r));
        }
        *ret = s;
        return 0;
}

/* The Peer properties shadowmeshctl shows; anything else is skipped (and still appears in
 * --json, which walks the reply itself). */
static int read_peer_property(sd_bus_message *m, const char *name, struct ctl_peer *p) {
        static const struct field fields[] = {
#define F(n, t, f) { n, t, offsetof(struct ctl_peer, f) }
                F("Name", 's', name),
                F("PublicKey", 's', public_key),
                F("Endpoint", 's', endpoint),
                F("Path", 's', path),
                F("State", 's', state),
                F("LastHandshake", 't', last_handshake),
                F("RxBytes", 't', rx_bytes),
                F("TxBytes", 't', tx_bytes),
                F("MACs", 'u', macs),
#undef F
        };
        return read_field(m, name, fields, ELEMENTSOF(fields), p);
}

int ctl_get_peer(sd_bus *bus, const struct ctl_instance *inst, const char *object,
                 struct ctl_peer *ret, sd_bus_error *error) {
        struct ctl_peer p = {
                .object = object, .name = "", .public_key = "", .endpoint = "", .path = "",
                .state = "",
        };
        const char *name, *slash = strrchr(object, '/');
        int r;

        p.id = slash ? slash + 1 : object;
        r = sd_bus_call_method(bus, inst->bus_name, object, "org.freedesktop.DBus.Properties",
                               "GetAll", error, &p.reply, "s", BUS_PEER_INTERFACE);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(p.reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(p.reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(p.reply, "s", &name);
                if (r >= 0)
                        r = read_peer_property(p.reply, name, &p);
                if (r >= 0)
                        r = sd_bus_message_exit_container(p.reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(p.reply);
        if (r < 0) {
                ctl_peer_done(&p);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         _("malformed reply for peer %s from %s: %s"), object,
                                         inst->bus_name, strerror(-r));
        }
        *ret = p;
        return 0;
}

void ctl_peer_done(struct ctl_peer *p) {
        p->reply = sd_bus_message_unref(p->reply);
}

int ctl_get_peers(sd_bus *bus, const struct ctl_instance *inst, const char *const *objects,
                  struct ctl_peer **ret, size_t *ret_n, sd_bus_error *error) {
        struct ctl_peer *list = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; objects[i]; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                struct ctl_peer *l = reallocarray(list, n + 1, sizeof(*list));
                if (!l) {
                        r = -ENOMEM;
                        break;
                }
                list = l;
                r = ctl_get_peer(bus, inst, objects[i], &list[n], &e);
                /* A peer that left since the list was read is simply gone. */
                if (r < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                        sd_bus_error_free(&e);
                        r = 0;
                        continue;
                }
                if (r < 0) {
                        sd_bus_error_move(error, &e);
                        break;
                }
                n++;
        }
        if (r < 0) {
                ctl_peers_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

void ctl_peers_free(struct ctl_peer *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                ctl_peer_done(&list[i]);
        free(list);
}

int ctl_get_tunnel(sd_bus *bus, const struct ctl_instance *inst, struct ctl_tunnel *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        struct ctl_tunnel t = {};
        int r;

        r = ctl_get_status(bus, inst, &t.status, &error);
        if (r < 0)
                return ctl_bus_error(bus, inst, &error, r);
        r = ctl_get_peers(bus, inst, t.status.peers, &t.peers, &t.n_peers, &error);
        if (r < 0) {
                tunnel_status_done(&t.status);
                return ctl_bus_error(bus, inst, &error, r);
        }
        *ret = t;
        return CTL_EXIT_OK;
}

void ctl_tunnel_done(struct ctl_tunnel *t) {
        /* The peers first: their object paths point into the status reply. */
        ctl_peers_free(t->peers, t->n_peers);
        t->peers = NULL;
        t->n_peers = 0;
        tunnel_status_done(&t->status);
}
