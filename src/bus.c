/* SPDX-License-Identifier: MIT */
/*
 * sd-bus glue for org.shadowmesh1.Tunnel (documented in dbus/org.shadowmesh1.Tunnel.txt), one
 * org.shadowmesh1.Peer object per peer in the device's table (dbus/org.shadowmesh1.Peer.txt)
 * and org.freedesktop.LogControl1. Access: the policy file lets everyone call; Connect,
 * Disconnect (the instance's and a peer's) and NetCheck are flagged unprivileged for sd-bus and
 * checked here: root, a member of the control group (asked of the bus itself,
 * GetConnectionCredentials), or a user polkit authorizes (CheckAuthorization), all without
 * blocking.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "bus.h"
#include "relay-client.h"
#include "reload.h"
#include "config.h"
#include "device.h"
#include "log.h"
#include "manager.h"
#include "netcheck.h"
#include "path.h"

#define LOG_CONTROL_PATH "/org/freedesktop/LogControl1"
#define LOG_CONTROL_INTERFACE "org.freedesktop.LogControl1"

int bus_label_escape(const char *name, char **ret) {
        _cleanup_free_ char *path = NULL;
        char *label;
        int r;

        r = sd_bus_path_encode("/x", name, &path);
        if (r < 0)
                return r;
        label = strdup(path + 3);
        if (!label)
                return -ENOMEM;
        *ret = label;
        return 0;
}

/* One org.shadowmesh1.Peer object: a peer of the device's table, and what PropertiesChanged
 * last said of it (emit_peer_changes compares against it). */
struct bus_peer {
        struct device *d;
        struct peer *p;
        uint64_t id;
        char *path;        /* <instance path>/peer/<id> */
        sd_bus_slot *slot; /* its vtable */
        enum tunnel_state state;
        char endpoint[ENDPOINT_STRLEN];
        const char *path_name;
        uint64_t last_handshake;
        char public_key[45];
        uint64_t rx_bytes, tx_bytes;
        size_t macs;
};

/* The D-Bus face's own state; device.c keeps the pointer (d->bus). */
struct bus {
        sd_bus *sd; /* NULL when there is no system bus */
        char *name, *path;
        void (*on_ready)(struct device *d, int r);
        struct bus_connect *connect;      /* a Connect call waiting for the tunnel */
        sd_bus_message *netcheck_request; /* the NetCheck call d->netcheck_api answers */
        struct bus_peer **peers;          /* the Peer objects, sorted by id */
        size_t n_peers;
};

/* ---- properties ---- */

/* One getter per property: appends its value to reply. */
typedef int (*property_fn)(sd_bus_message *reply, struct device *d);

static int get_state(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "s", tunnel_state_to_string(d->state));
}

static int get_failure_reason(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "s", manager_failure_reason(d));
}

static int get_path(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "s", path_name(d->peer));
}

/* The peer's endpoint as a plain address ("" when none); Path says whether it is the relay. */
static const char *peer_endpoint_string(struct peer *p, char buf[static ENDPOINT_STRLEN]) {
        struct endpoint e;

        peer_get_endpoint(p, &e);
        e.via_relay = false;
        if (!e.len) {
                buf[0] = 0;
                return buf;
        }
        return endpoint_to_string(&e, buf);
}

static int get_peer_address(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "s", d->peer->address ? d->peer->address : "");
}

static int get_endpoint(sd_bus_message *reply, struct device *d) {
        char buf[ENDPOINT_STRLEN];

        return sd_bus_message_append(reply, "s", peer_endpoint_string(d->peer, buf));
}

static int get_public_endpoint(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "s", d->public_endpoint);
}

static int get_nat_type(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "s", d->nat_type);
}

static int get_tap_device(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "s", d->tap->name);
}

static int get_local_address(sd_bus_message *reply, struct device *d) {
        const struct config *c = d->config;
        int r = sd_bus_message_open_container(reply, 'a', "s");

        for (size_t i = 0; r >= 0 && i < c->n_addresses; i++) {
                char a[INET6_ADDRSTRLEN + 8];
                inet_ntop(c->addresses[i].family, &c->addresses[i].addr, a, sizeof(a));
                snprintf(a + strlen(a), 8, "/%u", c->addresses[i].prefixlen);
                r = sd_bus_message_append(reply, "s", a);
        }
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int get_mtu(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "u", d->tap->mtu);
}

static int get_public_key(sd_bus_message *reply, struct device *d) {
        char key[45] = "";

        if (d->keys.pattern == NOISE_PATTERN_IKPSK2)
                config_format_key(d->keys.static_public, key);
        return sd_bus_message_append(reply, "s", key);
}

#define STAT(x) atomic_load_explicit(&d->dp.stats.x, memory_order_relaxed)
static int get_rx_bytes(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "t", STAT(rx_bytes));
}

static int get_tx_bytes(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "t", STAT(tx_bytes));
}

static int get_rx_packets(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "t", STAT(rx_packets));
}

static int get_tx_packets(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "t", STAT(tx_packets));
}
#undef STAT

static int get_last_handshake(sd_bus_message *reply, struct device *d) {
        return sd_bus_message_append(reply, "t", d->peer->last_handshake_realtime_us);
}

static int get_peers(sd_bus_message *reply, struct device *d) {
        int r = sd_bus_message_open_container(reply, 'a', "o");

        for (size_t i = 0; r >= 0 && i < d->bus->n_peers; i++)
                r = sd_bus_message_append(reply, "o", d->bus->peers[i]->path);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* Every property of org.shadowmesh1.Tunnel, once: its name, signature, getter and how its
 * changes are announced. The vtable and GetStatus (in this order) are both made from it. */
#define TUNNEL_PROPERTIES(X)                                                                       \
        X("State", "s", get_state, EMITS_CHANGE)                                                   \
        X("FailureReason", "s", get_failure_reason, EMITS_CHANGE)                                  \
        X("Path", "s", get_path, EMITS_CHANGE)                                                     \
        X("PeerAddress", "s", get_peer_address, EMITS_CHANGE)                                      \
        X("Endpoint", "s", get_endpoint, EMITS_CHANGE)                                             \
        X("PublicEndpoint", "s", get_public_endpoint, EMITS_CHANGE)                                \
        X("NatType", "s", get_nat_type, EMITS_CHANGE)                                              \
        X("TapDevice", "s", get_tap_device, CONST)                                                 \
        X("LocalAddress", "as", get_local_address, CONST)                                          \
        X("Mtu", "u", get_mtu, CONST)                                                              \
        X("PublicKey", "s", get_public_key, CONST)                                                 \
        X("RxBytes", "t", get_rx_bytes, EMITS_INVALIDATION)                                        \
        X("TxBytes", "t", get_tx_bytes, EMITS_INVALIDATION)                                        \
        X("RxPackets", "t", get_rx_packets, EMITS_INVALIDATION)                                    \
        X("TxPackets", "t", get_tx_packets, EMITS_INVALIDATION)                                    \
        X("LastHandshake", "t", get_last_handshake, EMITS_CHANGE)                                  \
        X("Peers", "ao", get_peers, EMITS_CHANGE)

static const struct {
        const char *name, *signature;
        property_fn get;
} properties[] = {
#define PROPERTY_ENTRY(name, signature, get, flags) { name, signature, get },
        TUNNEL_PROPERTIES(PROPERTY_ENTRY)
#undef PROPERTY_ENTRY
};

static int property_get(sd_bus *bus, const char *path, const char *interface,
                        const char *property, sd_bus_message *reply, void *userdata,
                        sd_bus_error *error) {
        for (size_t i = 0; i < ELEMENTSOF(properties); i++)
                if (strcmp(property, properties[i].name) == 0)
                        return properties[i].get(reply, userdata);
        return -ENOENT;
}

static int method_get_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(properties); i++) {
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", properties[i].name);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'v', properties[i].signature);
                if (r >= 0)
                        r = properties[i].get(reply, userdata);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- access checks ----
 *
 * Connect, Disconnect and NetCheck act on the tunnel or send traffic from its socket, so they
 * are for root, members of the control group, and (where polkit runs) users polkit authorizes
 * for the method's action. The checks ask the bus and polkit asynchronously: the event loop
 * never waits for them. Order: root at once; otherwise GetConnectionCredentials (the group);
 * otherwise polkit's CheckAuthorization. No polkit on the bus means the group check alone.
 * Anyone but root gets the caller's rights, not root's: Connect options that change who the
 * peer is must match the configuration (check_peer_options). */

#define POLKIT_SERVICE "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
/* CheckAuthorization flag: polkit may ask the user for a password (an agent is running). */
#define POLKIT_ALLOW_USER_INTERACTION 1u
/* An interactive check waits for a person typing a password. */
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (5 * 60 * USEC_PER_SEC)

/* root: the caller is root (may change who the peer is); otherwise a member of the control
 * group or a user polkit authorized. */
typedef int (*authorized_fn)(sd_bus_message *m, struct device *d, bool root,
                             sd_bus_error *error);

struct access {
        authorized_fn fn;
        const char *what;   /* "connect", as in "may connect this tunnel" */
        const char *action; /* the polkit action */
};

struct auth_request {
        struct device *d;
        sd_bus_message *m;
        const struct access *access;
};

static void auth_request_free(void *userdata) {
        struct auth_request *req = userdata;
        sd_bus_message_unref(req->m);
        free(req);
}

/* The pending call's slot takes its userdata (the auth_request): freed with the slot once the
 * reply has been handled, or when the bus goes away with the question open. The bus holds the
 * slot (floating), so our own reference goes. */
static void slot_owns_request(sd_bus_slot *slot) {
        (void) sd_bus_slot_set_destroy_callback(slot, auth_request_free);
        (void) sd_bus_slot_set_floating(slot, true);
        sd_bus_slot_unref(slot);
}

/* fn either replies itself, keeps m to reply later, or fails with error set. Returns 1: the
 * call is handled either way (0 would tell sd-bus to look for another handler). */
static int run_authorized(sd_bus_message *m, struct device *d, const struct access *a,
                          bool root) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = a->fn(m, d, root, &error);
        if (r < 0 || sd_bus_error_is_set(&error)) {
                if (!sd_bus_error_is_set(&error))
                        sd_bus_error_set_errno(&error, r);
                (void) sd_bus_reply_method_error(m, &error);
        }
        sd_bus_error_free(&error);
        return 1;
}

/* polkit_error: NULL when polkit is not on the bus; else why it did not authorize. */
static int deny(sd_bus_message *m, struct device *d, const struct access *a,
                const char *polkit_error) {
        if (!polkit_error)
                (void) sd_bus_reply_method_errorf(m, SD_BUS_ERROR_ACCESS_DENIED,
                                                  "Only root and members of group '%s' may %s "
                                                  "this tunnel",
                                                  device_control_group(d), a->what);
        else
                (void) sd_bus_reply_method_errorf(m, SD_BUS_ERROR_ACCESS_DENIED,
                                                  "Only root, members of group '%s' and users "
                                                  "polkit authorizes for %s may %s this "
                                                  "tunnel (polkit: %s)",
                                                  device_control_group(d), a->action, a->what,
                                                  polkit_error);
        return 1;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        struct auth_request *req = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int authorized = 0, challenge = 0, r;

        if (e) {
                /* No polkit on this system: the group check was the whole check. */
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                           SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        deny(req->m, req->d, req->access, NULL);
                else {
                        log_warning("polkit CheckAuthorization for %s failed: %s",
                                    req->access->action, e->message);
                        deny(req->m, req->d, req->access, e->message);
                }
                return 0;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                deny(req->m, req->d, req->access, "unreadable reply");
                return 0;
        }
        if (authorized)
                run_authorized(req->m, req->d, req->access, false);
        else
                deny(req->m, req->d, req->access,
                     challenge ? "authentication required" : "not authorized");
        return 0;
}

/* CheckAuthorization for the sender of req->m (a system-bus-name subject, as NetworkManager
 * asks it). Interactive only when the caller allowed it on its message. */
static int ask_polkit(struct auth_request *req) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        sd_bus *bus = sd_bus_message_get_bus(req->m);
        bool interactive = sd_bus_message_get_allow_interactive_authorization(req->m) > 0;
        sd_bus_slot *slot;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, POLKIT_SERVICE, POLKIT_PATH,
                                           POLKIT_INTERFACE, "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1,
                                          "name", "s", sd_bus_message_get_sender(req->m),
                                          req->access->action, 0,
                                          interactive ? POLKIT_ALLOW_USER_INTERACTION : 0u, "");
        if (r >= 0)
                r = sd_bus_call_async(bus, &slot, call, on_polkit_reply, req,
                                      interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : 0);
        if (r < 0)
                return r;
        slot_owns_request(slot);
        return 0;
}

static int on_credentials(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        struct auth_request *req = userdata, *next;
        bool allowed = false;
        const char *key;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                deny(req->m, req->d, req->access, NULL);
                return 0;
        }
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        break;
                if (strcmp(key, "UnixGroupIDs") == 0 && req->d->has_control_gid) {
                        const void *gids;
                        size_t size;
                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_read_array(reply, 'u', &gids, &size);
                        for (size_t i = 0; r >= 0 && i < size / sizeof(uint32_t); i++)
                                if (((const uint32_t *) gids)[i] == req->d->control_gid)
                                        allowed = true;
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (allowed) {
                run_authorized(req->m, req->d, req->access, false);
                return 0;
        }
        /* Not a member: polkit may still authorize. A new request, because this one belongs
         * to the slot being answered. */
        next = calloc(1, sizeof(*next));
        if (next) {
                *next = (struct auth_request){ .d = req->d, .m = sd_bus_message_ref(req->m),
                                               .access = req->access };
                if (ask_polkit(next) >= 0)
                        return 0;
                auth_request_free(next);
        }
        deny(req->m, req->d, req->access, NULL);
        return 0; /* the caller got its reply (or will, from the pending call) */
}

/* Run the method now for root; for anyone else ask the bus for the caller's groups first (and
 * then polkit). */
static int authorize(sd_bus_message *m, struct device *d, const struct access *a) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        struct auth_request *req;
        sd_bus_slot *slot;
        uid_t uid;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return deny(m, d, a, NULL);
        if (uid == 0)
                return run_authorized(m, d, a, true);

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        *req = (struct auth_request){ .d = d, .m = sd_bus_message_ref(m), .access = a };
        if (!d->has_control_gid) {
                /* No group to be a member of: polkit alone. */
                if (ask_polkit(req) < 0) {
                        auth_request_free(req);
                        return deny(m, d, a, NULL);
                }
                return 1;
        }
        r = sd_bus_call_method_async(sd_bus_message_get_bus(m), &slot, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetConnectionCredentials", on_credentials, req, "s",
                                     sd_bus_message_get_sender(m));
        if (r < 0) {
                auth_request_free(req);
                return deny(m, d, a, NULL);
        }
        slot_owns_request(slot);
        return 1; /* replied to later */
}

/* Options that change who the peer is need root unless they repeat the configuration:
 * public_key (identity mode: the key pins the peer) and relay_server (the relay chooses whom
 * it introduces and carries the traffic). The peer address does not: in identity mode only
 * the configured key completes a handshake wherever the address points, and in shared-key
 * mode every holder of the shared key may connect to a waiting instance anyway. */
static int check_peer_options(struct device *d, const uint8_t *public_key,
                              const char *relay_server, sd_bus_error *error) {
        const struct config *c = d->config;

        if (public_key && (!config_first_peer(c)->has_public_key ||
                           sodium_memcmp(public_key, config_first_peer(c)->public_key,
                                         NOISE_PUBLIC_KEY_LEN) != 0))
                return sd_bus_error_setf(error, BUS_ERROR_PERMISSION_DENIED,
                                         "Option 'public_key' changes who the peer is: only "
                                         "root may pass a key other than the configured "
                                         "peer.public_key%s",
                                         config_first_peer(c)->has_public_key
                                                 ? ""
                                                 : " (none is configured)");
        if (relay_server) {
                _cleanup_free_ char *host = NULL;
                uint16_t port;

                if (config_parse_host_port(relay_server, RELAY_PORT_DEFAULT, &host, &port) < 0)
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENTS,
                                                 "Option 'relay_server' is not host[:port]: "
                                                 "'%s'",
                                                 relay_server);
                if (!c->relay_host || strcasecmp(host, c->relay_host) != 0 ||
                    port != c->relay_port)
                        return sd_bus_error_setf(error, BUS_ERROR_PERMISSION_DENIED,
                                                 "Option 'relay_server' changes who the peer "
                                                 "is: only root may name a relay other than the "
                                                 "configured relay.server%s",
                                                 c->relay_host ? "" : " (none is configured)");
        }
        return 0;
}

/* ---- Connect / Disconnect ---- */

/* The one place where the connection logic's -errno becomes a D-Bus error: manager.c's table
 * names it (shadowmesh/bus-api.h); a plain system error keeps sd-bus's errno name. */
static int set_error(sd_bus_error *error, int r, const char *message) {
        const char *name = manager_error_name(r);

        if (name)
                return sd_bus_error_set(error, name, message);
        return sd_bus_error_set_errnof(error, -r, "%s", message);
}

/* A Connect call waiting for the tunnel: manager.c calls its waiter when it is up, or cannot
 * be; the reply goes then. */
struct bus_connect {
        struct manager_waiter waiter; /* first: the waiter is the call */
        struct device *d;
        sd_bus_message *request;
};

static void on_connect_done(struct manager_waiter *w, int error, const char *message) {
        struct bus_connect *c = (struct bus_connect *) w;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (error < 0) {
                (void) set_error(&e, error, message);
                (void) sd_bus_reply_method_error(c->request, &e);
        } else
                (void) sd_bus_reply_method_return(c->request, NULL);
        c->d->bus->connect = NULL;
        sd_bus_message_unref(c->request);
        free(c);
}

static int do_connect(sd_bus_message *m, struct device *d, bool root, sd_bus_error *error) {
        struct bus_connect *c;
        struct manager_error err;
        uint32_t timeout_sec = CONNECT_TIMEOUT_DEFAULT_SEC;
        uint8_t public_key[NOISE_PUBLIC_KEY_LEN];
        bool have_key = false, relay = false;
        const char *peer, *key, *relay_server = NULL;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &peer);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *contents = NULL;
                char type;

                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        break;
#define WANT(sig)                                                                                  \
        if (!contents || strcmp(contents, sig) != 0)                                               \
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENTS,               \
                                         "Option '%s' must be of type '%s'", key, sig)
                if (strcmp(key, "timeout_sec") == 0) {
                        WANT("u");
                        r = sd_bus_message_read(m, "v", "u", &timeout_sec);
                        if (r >= 0 && (timeout_sec == 0 || timeout_sec > CONNECT_TIMEOUT_MAX_SEC))
                                return sd_bus_error_setf(
                                        error, BUS_ERROR_INVALID_ARGUMENTS,
                                        "Option 'timeout_sec' must be between 1 and %u",
                                        CONNECT_TIMEOUT_MAX_SEC);
                } else if (strcmp(key, "public_key") == 0) {
                        const char *s;
                        WANT("s");
                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r >= 0 && config_parse_key(s, public_key) < 0)
                                return sd_bus_error_setf(
                                        error, BUS_ERROR_INVALID_ARGUMENTS,
                                        "Option 'public_key' is not a key: expected 44 base64 "
                                        "characters or 64 hex digits");
                        have_key = true;
                } else if (strcmp(key, "relay") == 0) {
                        int b;
                        WANT("b");
                        r = sd_bus_message_read(m, "v", "b", &b);
                        relay = b;
                } else if (strcmp(key, "relay_server") == 0) {
                        WANT("s");
                        r = sd_bus_message_read(m, "v", "s", &relay_server);
                } else
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENTS,
                                                 "Unknown option '%s' (known: timeout_sec, "
                                                 "public_key, relay, relay_server)",
                                                 key);
#undef WANT
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r < 0)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENTS,
                                         "Malformed arguments: expected (s peer, a{sv} options)");
        if (have_key && d->keys.pattern != NOISE_PATTERN_IKPSK2)
                return sd_bus_error_set(error, BUS_ERROR_INVALID_ARGUMENTS,
                                        "Option 'public_key' needs identity mode "
                                        "(identity.private_key_file in the configuration)");
        if (relay_server && !*relay_server)
                relay_server = NULL;
        if (!root) {
                r = check_peer_options(d, have_key ? public_key : NULL, relay_server, error);
                if (r < 0) {
                        sodium_memzero(public_key, sizeof(public_key));
                        return r;
                }
        }
        /* Answered when the tunnel is up, or cannot be (on_connect_done). */
        c = calloc(1, sizeof(*c));
        if (!c) {
                sodium_memzero(public_key, sizeof(public_key));
                return -ENOMEM;
        }
        *c = (struct bus_connect){ .waiter.done = on_connect_done, .d = d };
        r = manager_connect(d,
                            &(const struct manager_connect_request){
                                    .peer = peer,
                                    .public_key = have_key ? public_key : NULL,
                                    .timeout_sec = timeout_sec,
                                    .relay = relay,
                                    .relay_server = relay_server,
                            },
                            &c->waiter, &err);
        sodium_memzero(public_key, sizeof(public_key));
        if (r < 0) {
                free(c);
                return set_error(error, r, err.message);
        }
        c->request = sd_bus_message_ref(m);
        d->bus->connect = c;
        return 0;
}

static const struct access access_connect = {
        .fn = do_connect, .what = "connect", .action = POLKIT_ACTION_CONNECT };

static int method_connect(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return authorize(m, userdata, &access_connect);
}

static int do_disconnect(sd_bus_message *m, struct device *d, bool root, sd_bus_error *error) {
        struct manager_error err;
        int r = manager_disconnect(d, &err);
        if (r < 0)
                return set_error(error, r, err.message);
        return sd_bus_reply_method_return(m, NULL);
}

static const struct access access_disconnect = {
        .fn = do_disconnect, .what = "disconnect", .action = POLKIT_ACTION_CONNECT };

static int method_disconnect(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return authorize(m, userdata, &access_disconnect);
}

void bus_cancel_connect(struct device *d) {
        if (!d->bus || !d->bus->connect)
                return;
        manager_forget_waiter(d, &d->bus->connect->waiter);
        on_connect_done(&d->bus->connect->waiter, -ECANCELED, "The daemon is shutting down");
}

/* NetCheck(): netcheck.c runs the checks; the reply is built here from its report. */
static int append_str(sd_bus_message *m, const char *key, const char *value) {
        return sd_bus_message_append(m, "{sv}", key, "s", value);
}

static void netcheck_reply(struct device *d, sd_bus_message *request,
                           const struct netcheck_report *rep) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char buf[ENDPOINT_STRLEN] = "";
        int r;

        if (rep->has_public)
                endpoint_to_string(&rep->public_endpoint, buf);
        r = sd_bus_message_new_method_return(request, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_str(reply, "PublicEndpoint", buf);
        if (r >= 0)
                r = append_str(reply, "NatType", rep->nat_type);
        if (r >= 0)
                r = append_str(reply, "NatMapping", nat_mapping_to_string(rep->mapping));
        if (r >= 0)
                r = append_str(reply, "NatFiltering", nat_filtering_to_string(rep->filtering));
        if (r >= 0)
                r = append_str(reply, "StunServer", rep->stun_server);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "StunRttUsec", "t", rep->stun_rtt_usec);
        if (r >= 0)
                r = append_str(reply, "StunError", rep->stun_error);
        if (r >= 0)
                r = append_str(reply, "Relay", d->config->relay_host ? relay_client_name(d->relay)
                                                                     : "");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "RelayReachable", "b",
                                          (int) rep->relay_reachable);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "RelayRttUsec", "t",
                                          rep->relay_rtt_usec);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "RelayRegistered", "b",
                                          (int) relay_client_registered(d->relay));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                (void) sd_bus_send(NULL, reply, NULL);
        else
                (void) sd_bus_reply_method_errorf(request, SD_BUS_ERROR_FAILED,
                                                  "Cannot build the reply: %s", strerror(-r));
}

static void on_netcheck_done(struct netcheck_run *run, void *userdata) {
        struct device *d = userdata;
        struct netcheck_report rep;

        netcheck_report(run, &rep);
        netcheck_reply(d, d->bus->netcheck_request, &rep);
        d->bus->netcheck_request = sd_bus_message_unref(d->bus->netcheck_request);
        d->netcheck_api = netcheck_free(run);
}

static int do_netcheck(sd_bus_message *m, struct device *d, bool root, sd_bus_error *error) {
        const struct config *c = d->config;
        int r;

        if (d->netcheck_api)
                return sd_bus_error_set(error, BUS_ERROR_IN_PROGRESS,
                                        "A NetCheck is already running");
        if (!c->stun_host && !c->relay_host)
                return sd_bus_error_set(error, BUS_ERROR_NO_STUN_SERVER,
                                        "No STUN server configured (nat.stun_server or "
                                        "relay.server)");
        d->bus->netcheck_request = sd_bus_message_ref(m);
        r = netcheck_start(&d->netcheck_socket, c->stun_host ? c->stun_host : c->relay_host,
                           c->stun_host ? c->stun_port : c->relay_port, c->relay_host,
                           c->relay_port, on_netcheck_done, d, &d->netcheck_api);
        if (r < 0) {
                d->bus->netcheck_request = sd_bus_message_unref(d->bus->netcheck_request);
                return sd_bus_error_set_errnof(error, -r, "Cannot start the NAT check: %m");
        }
        return 0; /* replied to when the checks are done */
}

/* NetCheck sends STUN requests from the tunnel's socket (and uses the relay's allowance for
 * this node): the same callers as Connect, its own polkit action. */
static const struct access access_netcheck = {
        .fn = do_netcheck, .what = "run NetCheck on", .action = POLKIT_ACTION_NETCHECK };

static int method_netcheck(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return authorize(m, userdata, &access_netcheck);
}

/* Reload: what SIGHUP does (reload.c), with the outcome as the reply. Not marked unprivileged,
 * so sd-bus lets only privileged callers (root) in, as `systemctl reload` needs root too. */
static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct device *d = userdata;
        char msg[1024];
        int r;

        r = reload_config(d, msg, sizeof(msg));
        if (r == -EBUSY)
                return sd_bus_error_set(error, BUS_ERROR_RELOAD_REFUSED, msg);
        if (r < 0)
                return sd_bus_error_set(error, BUS_ERROR_INVALID_CONFIG, msg);
        log_info("%s (D-Bus Reload)", msg);
        return sd_bus_reply_method_return(m, "s", msg);
}

static const sd_bus_vtable tunnel_vtable[] = {
        SD_BUS_VTABLE_START(0),
#define PROPERTY_VTABLE(name, signature, get, flags)                                               \
        SD_BUS_PROPERTY(name, signature, property_get, 0, SD_BUS_VTABLE_PROPERTY_##flags),
        TUNNEL_PROPERTIES(PROPERTY_VTABLE)
#undef PROPERTY_VTABLE
        SD_BUS_METHOD_WITH_ARGS("Connect", SD_BUS_ARGS("s", peer, "a{sv}", options),
                                SD_BUS_NO_RESULT, method_connect, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Disconnect", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_disconnect, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status),
                                method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("NetCheck", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", report),
                                method_netcheck, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", message),
                                method_reload, 0),
        SD_BUS_SIGNAL_WITH_ARGS("PeerAdded", SD_BUS_ARGS("o", peer), 0),
        SD_BUS_SIGNAL_WITH_ARGS("PeerRemoved", SD_BUS_ARGS("o", peer), 0),
        SD_BUS_VTABLE_END,
};

/* ---- org.shadowmesh1.Peer: one object per peer in the device's table ---- */

typedef int (*peer_property_fn)(sd_bus_message *reply, struct device *d, struct peer *p);

/* The peer's pinned key in identity mode (base64); "" in shared-key mode or when none is
 * pinned yet. */
static const char *peer_public_key_string(struct device *d, struct peer *p, char buf[static 45]) {
        buf[0] = 0;
        if (d->keys.pattern == NOISE_PATTERN_IKPSK2 &&
            !sodium_is_zero(p->public_key, sizeof(p->public_key)))
                config_format_key(p->public_key, buf);
        return buf;
}

static int peerprop_name(sd_bus_message *reply, struct device *d, struct peer *p) {
        return sd_bus_message_append(reply, "s", p->name ? p->name : "");
}

static int peerprop_public_key(sd_bus_message *reply, struct device *d, struct peer *p) {
        char key[45];
        return sd_bus_message_append(reply, "s", peer_public_key_string(d, p, key));
}

static int peerprop_endpoint(sd_bus_message *reply, struct device *d, struct peer *p) {
        char buf[ENDPOINT_STRLEN];
        return sd_bus_message_append(reply, "s", peer_endpoint_string(p, buf));
}

static int peerprop_path(sd_bus_message *reply, struct device *d, struct peer *p) {
        return sd_bus_message_append(reply, "s", path_name(p));
}

static int peerprop_state(sd_bus_message *reply, struct device *d, struct peer *p) {
        return sd_bus_message_append(reply, "s", tunnel_state_to_string(p->state));
}

static int peerprop_last_handshake(sd_bus_message *reply, struct device *d, struct peer *p) {
        return sd_bus_message_append(reply, "t", p->last_handshake_realtime_us);
}

static int peerprop_rx_bytes(sd_bus_message *reply, struct device *d, struct peer *p) {
        uint64_t rx, tx;
        device_peer_counters(d, p, &rx, &tx);
        return sd_bus_message_append(reply, "t", rx);
}

static int peerprop_tx_bytes(sd_bus_message *reply, struct device *d, struct peer *p) {
        uint64_t rx, tx;
        device_peer_counters(d, p, &rx, &tx);
        return sd_bus_message_append(reply, "t", tx);
}

static int peerprop_macs(sd_bus_message *reply, struct device *d, struct peer *p) {
        size_t n = device_peer_macs(d, p);
        return sd_bus_message_append(reply, "u", (uint32_t) MIN(n, (size_t) UINT32_MAX));
}

/* Every property of org.shadowmesh1.Peer, once (as TUNNEL_PROPERTIES): the vtable is made from
 * it. The counters (RxBytes, TxBytes, MACs) are invalidated along with the instance's, at
 * most every COUNTERS_EMIT_INTERVAL. */
#define PEER_PROPERTIES(X)                                                                         \
        X("Name", "s", peerprop_name, CONST)                                                       \
        X("PublicKey", "s", peerprop_public_key, EMITS_CHANGE)                                     \
        X("Endpoint", "s", peerprop_endpoint, EMITS_CHANGE)                                        \
        X("Path", "s", peerprop_path, EMITS_CHANGE)                                                \
        X("State", "s", peerprop_state, EMITS_CHANGE)                                              \
        X("LastHandshake", "t", peerprop_last_handshake, EMITS_CHANGE)                             \
        X("RxBytes", "t", peerprop_rx_bytes, EMITS_INVALIDATION)                                   \
        X("TxBytes", "t", peerprop_tx_bytes, EMITS_INVALIDATION)                                   \
        X("MACs", "u", peerprop_macs, EMITS_INVALIDATION)

static const struct {
        const char *name;
        peer_property_fn get;
} peer_properties[] = {
#define PEER_PROPERTY_ENTRY(name, signature, get, flags) { name, get },
        PEER_PROPERTIES(PEER_PROPERTY_ENTRY)
#undef PEER_PROPERTY_ENTRY
};

static int peer_property_get(sd_bus *bus, const char *path, const char *interface,
                             const char *property, sd_bus_message *reply, void *userdata,
                             sd_bus_error *error) {
        struct bus_peer *bp = userdata;

        for (size_t i = 0; i < ELEMENTSOF(peer_properties); i++)
                if (strcmp(property, peer_properties[i].name) == 0)
                        return peer_properties[i].get(reply, bp->d, bp->p);
        return -ENOENT;
}

static struct bus_peer *bus_peer_by_path(struct device *d, const char *path) {
        for (size_t i = 0; path && d->bus && i < d->bus->n_peers; i++)
                if (strcmp(d->bus->peers[i]->path, path) == 0)
                        return d->bus->peers[i];
        return NULL;
}

/* Peer.Disconnect(): leave that peer. The peer is looked up again once the caller is
 * authorized (the check may take a while, and the peer may have gone meanwhile). */
static int do_disconnect_peer(sd_bus_message *m, struct device *d, bool root, sd_bus_error *error) {
        struct bus_peer *bp = bus_peer_by_path(d, sd_bus_message_get_path(m));
        struct manager_error err;
        int r;

        if (!bp)
                return set_error(error, -ENOTCONN, "No peer is connected");
        r = manager_disconnect_peer(d, bp->p, &err);
        if (r < 0)
                return set_error(error, r, err.message);
        return sd_bus_reply_method_return(m, NULL);
}

/* The same callers as the instance's Disconnect, the same polkit action. */
static const struct access access_disconnect_peer = {
        .fn = do_disconnect_peer, .what = "disconnect", .action = POLKIT_ACTION_CONNECT };

static int method_disconnect_peer(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct bus_peer *bp = userdata;
        return authorize(m, bp->d, &access_disconnect_peer);
}

static const sd_bus_vtable peer_vtable[] = {
        SD_BUS_VTABLE_START(0),
#define PEER_PROPERTY_VTABLE(name, signature, get, flags)                                          \
        SD_BUS_PROPERTY(name, signature, peer_property_get, 0, SD_BUS_VTABLE_PROPERTY_##flags),
        PEER_PROPERTIES(PEER_PROPERTY_VTABLE)
#undef PEER_PROPERTY_VTABLE
        SD_BUS_METHOD_WITH_ARGS("Disconnect", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_disconnect_peer, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Remember what the object shows now (its state, endpoint, path, handshake, key, counters);
 * returns the names of the properties that differ from what was remembered (NULL-terminated,
 * in names, at most ELEMENTSOF(peer_properties)). counters: compare the counters too. */
static void peer_snapshot(struct bus_peer *bp, bool counters, const char **names) {
        struct device *d = bp->d;
        struct peer *p = bp->p;
        char endpoint[ENDPOINT_STRLEN], key[45];
        const char *path = path_name(p);
        uint64_t rx, tx;
        size_t n = 0, macs;

        peer_endpoint_string(p, endpoint);
        peer_public_key_string(d, p, key);
        if (bp->state != p->state) {
                bp->state = p->state;
                names[n++] = "State";
        }
        if (strcmp(bp->endpoint, endpoint) != 0) {
                memcpy(bp->endpoint, endpoint, sizeof(endpoint));
                names[n++] = "Endpoint";
        }
        if (bp->path_name != path) {
                bp->path_name = path;
                names[n++] = "Path";
        }
        if (bp->last_handshake != p->last_handshake_realtime_us) {
                bp->last_handshake = p->last_handshake_realtime_us;
                names[n++] = "LastHandshake";
        }
        if (strcmp(bp->public_key, key) != 0) {
                memcpy(bp->public_key, key, sizeof(key));
                names[n++] = "PublicKey";
        }
        if (counters) {
                device_peer_counters(d, p, &rx, &tx);
                macs = device_peer_macs(d, p);
                if (bp->rx_bytes != rx) {
                        bp->rx_bytes = rx;
                        names[n++] = "RxBytes";
                }
                if (bp->tx_bytes != tx) {
                        bp->tx_bytes = tx;
                        names[n++] = "TxBytes";
                }
                if (bp->macs != macs) {
                        bp->macs = macs;
                        names[n++] = "MACs";
                }
        }
        names[n] = NULL;
}

/* PropertiesChanged on each Peer object whose state, endpoint, path, handshake or key moved
 * (and, with counters, whose counters moved): run whenever the instance reports a change,
 * which with today's one peer is whenever that peer's properties change. */
static void emit_peer_changes(struct device *d, bool counters) {
        for (size_t i = 0; i < d->bus->n_peers; i++) {
                struct bus_peer *bp = d->bus->peers[i];
                const char *names[ELEMENTSOF(peer_properties) + 1];

                peer_snapshot(bp, counters, names);
                if (names[0])
                        (void) sd_bus_emit_properties_changed_strv(
                                d->bus->sd, bp->path, BUS_PEER_INTERFACE, (char **) names);
        }
}

static struct bus_peer *bus_peer_free(struct bus_peer *bp) {
        if (!bp)
                return NULL;
        sd_bus_slot_unref(bp->slot);
        free(bp->path);
        free(bp);
        return NULL;
}

/* The device's peer_hooks.added: the peer's object, InterfacesAdded, PeerAdded and Peers. */
static void on_peer_added(struct device *d, struct peer *p) {
        struct bus *b = d->bus;
        struct bus_peer *bp, **peers;
        const char *names[ELEMENTSOF(peer_properties) + 1];
        size_t at;
        int r;

        bp = calloc(1, sizeof(*bp));
        peers = reallocarray(b->peers, b->n_peers + 1, sizeof(*b->peers));
        if (peers)
                b->peers = peers;
        if (!bp || !peers ||
            asprintf(&bp->path, "%s/" BUS_PEER_PATH_ELEMENT "/%" PRIu64, b->path, p->id) < 0) {
                log_warning("out of memory: peer %" PRIu64 " has no D-Bus object", p->id);
                free(bp);
                return;
        }
        *bp = (struct bus_peer){ .d = d, .p = p, .id = p->id, .path = bp->path };
        r = sd_bus_add_object_vtable(b->sd, &bp->slot, bp->path, BUS_PEER_INTERFACE, peer_vtable,
                                     bp);
        if (r < 0) {
                log_warning_errno(r, "cannot serve peer %" PRIu64 " on D-Bus: %m", p->id);
                bus_peer_free(bp);
                return;
        }
        peer_snapshot(bp, true, names); /* what the object starts with */
        for (at = b->n_peers; at > 0 && b->peers[at - 1]->id > bp->id; at--)
                b->peers[at] = b->peers[at - 1];
        b->peers[at] = bp;
        b->n_peers++;
        log_debug("peer %" PRIu64 " on D-Bus at %s", p->id, bp->path);

        (void) sd_bus_emit_interfaces_added(b->sd, bp->path, BUS_PEER_INTERFACE, NULL);
        (void) sd_bus_emit_signal(b->sd, b->path, BUS_INTERFACE, "PeerAdded", "o", bp->path);
        (void) sd_bus_emit_properties_changed(b->sd, b->path, BUS_INTERFACE, "Peers", NULL);
}

/* The device's peer_hooks.removed (the peer is still there): the object goes, then
 * InterfacesRemoved, PeerRemoved and Peers. */
static void on_peer_removed(struct device *d, struct peer *p) {
        struct bus *b = d->bus;
        struct bus_peer *bp = NULL;

        for (size_t i = 0; i < b->n_peers; i++)
                if (b->peers[i]->p == p) {
                        bp = b->peers[i];
                        memmove(b->peers + i, b->peers + i + 1,
                                (b->n_peers - i - 1) * sizeof(*b->peers));
                        b->n_peers--;
                        break;
                }
        if (!bp)
                return; /* it never got an object */
        bp->slot = sd_bus_slot_unref(bp->slot);
        (void) sd_bus_emit_interfaces_removed(b->sd, bp->path, BUS_PEER_INTERFACE, NULL);
        (void) sd_bus_emit_signal(b->sd, b->path, BUS_INTERFACE, "PeerRemoved", "o", bp->path);
        (void) sd_bus_emit_properties_changed(b->sd, b->path, BUS_INTERFACE, "Peers", NULL);
        bus_peer_free(bp);
}

/* ---- org.freedesktop.LogControl1 (systemctl service-log-level) ---- */

static int log_level_get(sd_bus *bus, const char *path, const char *interface,
                         const char *property, sd_bus_message *reply, void *userdata,
                         sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_level_to_string(log_get_max_level()));
}

static int log_level_set(sd_bus *bus, const char *path, const char *interface,
                         const char *property, sd_bus_message *value, void *userdata,
                         sd_bus_error *error) {
        const char *s;
        int r, level;

        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;
        level = log_level_from_string(s);
        if (level < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown log level '%s'", s);
        log_set_max_level(level);
        log_info("log level set to %s", log_level_to_string(level));
        return sd_bus_emit_properties_changed(bus, path, interface, "LogLevel", NULL);
}

static int log_target_get(sd_bus *bus, const char *path, const char *interface,
                          const char *property, sd_bus_message *reply, void *userdata,
                          sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", "console");
}

static int log_target_set(sd_bus *bus, const char *path, const char *interface,
                          const char *property, sd_bus_message *value, void *userdata,
                          sd_bus_error *error) {
        const char *s;
        int r;

        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;
        /* Standard error is the only target: under systemd it is the journal already. */
        if (strcmp(s, "console") != 0 && strcmp(s, "journal") != 0 && strcmp(s, "auto") != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "Log target '%s' is not supported (console only)", s);
        return 0;
}

static int syslog_identifier_get(sd_bus *bus, const char *path, const char *interface,
                                 const char *property, sd_bus_message *reply, void *userdata,
                                 sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", "shadowmeshd");
}

static const sd_bus_vtable log_control_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", log_level_get, log_level_set, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("LogTarget", "s", log_target_get, log_target_set, 0, 0),
        SD_BUS_PROPERTY("SyslogIdentifier", "s", syslog_identifier_get, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

/* ---- life cycle ---- */

/* The device's PropertiesChanged hook (device_emit_changed): the instance's, then the peers'
 * (their counters when the instance's were due). */
static void emit_changed_strv(struct device *d, const char *const *names) {
        bool counters = false;

        if (!d->bus || !d->bus->sd)
                return;
        if (names[0])
                (void) sd_bus_emit_properties_changed_strv(d->bus->sd, d->bus->path,
                                                           BUS_INTERFACE, (char **) names);
        for (size_t i = 0; names[i]; i++)
                if (strcmp(names[i], "RxBytes") == 0)
                        counters = true;
        emit_peer_changes(d, counters);
}

static int on_name_acquired(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct device *d = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        uint32_t result = 0;

        if (e) {
                log_error("cannot own the bus name %s: %s", d->bus->name, e->message);
                d->bus->on_ready(d, -EACCES);
                return 0;
        }
        if (sd_bus_message_read(m, "u", &result) < 0 || result != 1) {
                log_error("instance '%s' is already running (the bus name %s is taken)",
                          d->instance, d->bus->name);
                d->bus->on_ready(d, -EEXIST);
                return 0;
        }
        log_info("serving %s on the system bus at %s", d->bus->name, d->bus->path);
        d->bus->on_ready(d, 0);
        return 0;
}

int bus_open(struct device *d, void (*on_ready)(struct device *d, int r)) {
        _cleanup_free_ char *label = NULL;
        int r;

        d->bus = calloc(1, sizeof(*d->bus));
        if (!d->bus)
                return log_error_errno(ENOMEM, "out of memory");
        d->bus->on_ready = on_ready;
        r = bus_label_escape(d->instance, &label);
        if (r < 0)
                return r;
        if (asprintf(&d->bus->name, BUS_NAME_PREFIX "%s", label) < 0 ||
            asprintf(&d->bus->path, BUS_PATH_PREFIX "/%s", label) < 0)
                return -ENOMEM;

        r = sd_bus_open_system(&d->bus->sd);
        if (r < 0) {
                log_warning_errno(r, "no system bus (%m): running without the D-Bus API");
                d->bus->sd = NULL;
                on_ready(d, -ENOTCONN);
                return 0;
        }
        if ((r = sd_bus_attach_event(d->bus->sd, d->event, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
            (r = sd_bus_add_object_manager(d->bus->sd, NULL, BUS_PATH_ROOT)) < 0 ||
            (r = sd_bus_add_object_vtable(d->bus->sd, NULL, d->bus->path, BUS_INTERFACE, tunnel_vtable,
                                          d)) < 0 ||
            (r = sd_bus_add_object_vtable(d->bus->sd, NULL, LOG_CONTROL_PATH, LOG_CONTROL_INTERFACE,
                                          log_control_vtable, d)) < 0 ||
            (r = sd_bus_request_name_async(d->bus->sd, NULL, d->bus->name, 0, on_name_acquired, d)) < 0)
                return log_error_errno(r, "setting up the D-Bus API: %m");
        d->emit_changed = emit_changed_strv;
        /* Peers already in the table get their objects now; later ones through the hooks. */
        d->peer_hooks.added = on_peer_added;
        d->peer_hooks.removed = on_peer_removed;
        for (size_t i = 0; i < device_listed_peer_count(d); i++)
                on_peer_added(d, device_listed_peer_at(d, i));
        return 0;
}

void bus_close(struct device *d) {
        if (!d->bus)
                return;
        bus_cancel_connect(d);
        if (d->bus->netcheck_request)
                (void) sd_bus_reply_method_errorf(d->bus->netcheck_request, BUS_ERROR_CANCELLED,
                                                  "The daemon is shutting down");
        d->bus->netcheck_request = sd_bus_message_unref(d->bus->netcheck_request);
        d->netcheck_api = netcheck_free(d->netcheck_api);
        d->emit_changed = NULL;
        d->peer_hooks.added = d->peer_hooks.removed = NULL;
        for (size_t i = 0; i < d->bus->n_peers; i++)
                bus_peer_free(d->bus->peers[i]);
        free(d->bus->peers);
        d->bus->sd = sd_bus_flush_close_unref(d->bus->sd);
        free(d->bus->name);
        free(d->bus->path);
        free(d->bus);
        d->bus = NULL;
}
