/* SPDX-License-Identifier: MIT */
/*
 * nm-shadowmesh-service: the NetworkManager VPN service of ShadowMesh (NMVpnServicePlugin).
 *
 * NetworkManager starts it with --bus-name org.freedesktop.NetworkManager.shadowmesh.Connection_N
 * (one process per active connection, supports-multiple-connections in the .name file), asks
 * NeedSecrets, then Connect. Connect starts a shadowmeshd instance for the connection
 * (instance.c) and returns; once the daemon reports the tunnel up, Config (tundev, the peer's
 * underlay address as the external gateway, mtu) and Ip4Config / Ip6Config (local-ip) follow.
 * With further peers (vpn.data "peers") the connection is up, and the gateway set, when the
 * first peer ("peer") is; the others are Connected after it and a failure among them is only
 * logged (with its address, under the connection's NM_CONNECTION in the journal).
 *
 * NetworkManager owns the addresses: the daemon gets no network.local_ip, so what NM shows is
 * what is on the TAP, and NM removes it again. The addresses never make a default route (an L2
 * segment, not an internet gateway). Disconnect, or the daemon's death, stops the instance; a
 * failure is reported with the Failure signal and the NM_VPN_PLUGIN_FAILURE_* reason that fits
 * (failure.c), after which NetworkManager deactivates the connection. Every log line
 * carries NM_CONNECTION=<uuid> in the journal (service-log.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <locale.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failure.h"
#include "instance.h"
#include "nm-shadowmesh-keys.h"
#include "service-log.h"
#include "settings.h"

enum {
        START_TIMEOUT_SEC = 15, /* the daemon's bus name must appear within */
        STOP_TIMEOUT_SEC = 5,   /* SIGTERM -> SIGKILL */
        NM_DEFAULT_VPN_TIMEOUT_SEC = 60,
        /* NMVpnServicePlugin gives up on its own 60 s after Connect: fail before that, with the
         * daemon's reason. */
        PLUGIN_CONNECT_TIMER_SEC = 60,
};

/* GObject needs the typedefs. */
typedef struct {
        NMVpnServicePlugin parent;
        struct instance *instance;
        struct settings *settings;
        bool connected;
        bool quitting;
} SmPlugin;

typedef struct {
        NMVpnServicePluginClass parent;
} SmPluginClass;

GType sm_plugin_get_type(void);
G_DEFINE_TYPE(SmPlugin, sm_plugin, NM_TYPE_VPN_SERVICE_PLUGIN)
#define SM_PLUGIN(o) G_TYPE_CHECK_INSTANCE_CAST((o), sm_plugin_get_type(), SmPlugin)

static struct {
        char *shadowmeshd;
        char *runtime_dir;
        GMainLoop *loop;
} arg;

/* ---- what NetworkManager is told ------------------------------------------------------------- */

static GVariant *ip6_variant(const struct in6_addr *a) {
        return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, a->s6_addr, 16, 1);
}

static bool send_config(SmPlugin *self, GError **error) {
        NMVpnServicePlugin *plugin = NM_VPN_SERVICE_PLUGIN(self);
        const struct settings *s = self->settings;
        struct in6_addr gw6;
        struct in_addr gw4;
        GVariantBuilder b;
        int family;

        family = settings_parse_endpoint(instance_endpoint(self->instance), &gw6, &gw4);
        if (family == 0) /* not expected once connected; the peer as configured, if literal */
                family = inet_pton(AF_INET, s->peer_host, &gw4) == 1    ? AF_INET
                         : inet_pton(AF_INET6, s->peer_host, &gw6) == 1 ? AF_INET6
                                                                        : 0;
        if (family == 0) {
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                            _("The daemon did not report the peer's address"));
                return false;
        }

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_TUNDEV,
                              g_variant_new_string(instance_tap_device(self->instance)));
        /* NetworkManager pins a host route to this address via the underlying connection, so
         * the tunnel's own packets never enter the tunnel. */
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_EXT_GATEWAY,
                              family == AF_INET ? g_variant_new_uint32(gw4.s_addr)
                                                : ip6_variant(&gw6));
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_MTU,
                              g_variant_new_uint32(instance_mtu(self->instance)));
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_HAS_IP4,
                              g_variant_new_boolean(s->ip4.set));
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_HAS_IP6,
                              g_variant_new_boolean(s->ip6.set));
        log_info("Config: tundev %s, gateway %s, mtu %u, ipv4 %s, ipv6 %s",
                 instance_tap_device(self->instance), instance_endpoint(self->instance),
                 instance_mtu(self->instance), s->ip4.set ? "yes" : "no",
                 s->ip6.set ? "yes" : "no");
        nm_vpn_service_plugin_set_config(plugin, g_variant_builder_end(&b));

        if (s->ip4.set) {
                g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_ADDRESS,
                                      g_variant_new_uint32(s->ip4.addr.in.s_addr));
                g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_PREFIX,
                                      g_variant_new_uint32(s->ip4.prefixlen));
                g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_NEVER_DEFAULT,
                                      g_variant_new_boolean(true));
                nm_vpn_service_plugin_set_ip4_config(plugin, g_variant_builder_end(&b));
        }
        if (s->ip6.set) {
                g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_ADDRESS,
                                      ip6_variant(&s->ip6.addr.in6));
                g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_PREFIX,
                                      g_variant_new_uint32(s->ip6.prefixlen));
                g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_NEVER_DEFAULT,
                                      g_variant_new_boolean(true));
                nm_vpn_service_plugin_set_ip6_config(plugin, g_variant_builder_end(&b));
        }
        return true;
}

/* ---- why it failed ----------------------------------------------------------------------------
 *
 * What NetworkManager 1.42 makes of it (src/core/vpn/nm-vpn-connection.c), as nmcli words it:
 *
 *   - Connect/ConnectInteractive answered with an error, whatever its code (BAD_ARGUMENTS,
 *     INVALID_CONNECTION, LAUNCH_FAILED...): connect_cb() and connect_interactive_cb() set
 *     STATE_FAILED with NM_ACTIVE_CONNECTION_STATE_REASON_SERVICE_START_FAILED, "The VPN service
 *     failed to start"; the error's text reaches only NetworkManager's own log ("failed to
 *     connect: '...'").
 *   - Connect succeeded, then the Failure signal and StateChanged(STOPPED): plugin_failed()
 *     keeps LOGIN_FAILED as NM_ACTIVE_CONNECTION_STATE_REASON_LOGIN_FAILED ("Invalid secrets"),
 *     BAD_IP_CONFIG as IP_CONFIG_INVALID ("The VPN service returned invalid configuration"),
 *     and anything else, CONNECT_FAILED included, as REASON_UNKNOWN ("Unknown reason"); the
 *     state change to STOPPED then fails the connection with that reason.
 *
 * No other reason can come from a plugin. So: a malformed secret (the key not 64 hex digits)
 * is a login that failed, "Invalid secrets" (Connect accepts, then the Failure follows from an
 * idle callback, after the reply). A start-up failure the service can see before it launches
 * the daemon (a busy UDP port, a TAP name another device has) is a refused Connect, "The VPN
 * service failed to start": the most specific reason left, and better than the "Unknown
 * reason" that the daemon's own exit would give. What the daemon finds only once it runs (an
 * unresolvable peer, the port or the name taken in between) can only be CONNECT_FAILED,
 * "Unknown reason". In every case the service's error line under NM_CONNECTION=<uuid>, the
 * journal match nmcli's hint prints, names the cause (tests/nm/nm-reasons.sh).
 *
 * Which reason a failure of the daemon's is follows from the D-Bus error name it answered
 * Connect with (failure.c), never from the error's text. */

/* Tell NetworkManager, once, with the reason. While the service is still STARTING libnm's
 * disconnect would add a Failure(CONNECT_FAILED) of its own, which NetworkManager takes as the
 * last word ("Unknown reason"); our reason goes last instead: the plugin is marked started
 * first, so that the disconnect that follows emits nothing more. */
static void report_failure(SmPlugin *self, NMVpnPluginFailure reason, const char *message,
                           const char *hint) {
        NMVpnServiceState state = NM_VPN_SERVICE_STATE_UNKNOWN;

        log_error("connection failed (%s): %s; %s", failure_reason_name(reason), message, hint);
        g_object_get(self, NM_VPN_SERVICE_PLUGIN_STATE, &state, NULL);
        if (state == NM_VPN_SERVICE_STATE_STARTING)
                g_object_set(self, NM_VPN_SERVICE_PLUGIN_STATE, NM_VPN_SERVICE_STATE_STARTED, NULL);
        nm_vpn_service_plugin_failure(NM_VPN_SERVICE_PLUGIN(self), reason);
}

/* ---- the instance's callbacks ---------------------------------------------------------------- */

static void on_connected(struct instance *i, void *userdata) {
        SmPlugin *self = userdata;
        g_autoptr(GError) error = NULL;

        self->connected = true;
        if (!send_config(self, &error))
                report_failure(self, NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG, error->message,
                               "the IP configuration cannot be handed to NetworkManager");
}

static void on_failed(struct instance *i, const char *error_name, const char *message,
                      void *userdata) {
        SmPlugin *self = userdata;
        const struct failure *f = failure_for_error(error_name);

        /* Ends in our disconnect(), which stops the instance. */
        report_failure(self, f->reason, message, f->hint);
}

static void on_stopped(struct instance *i, void *userdata) {
        SmPlugin *self = userdata;

        self->instance = instance_free(self->instance);
        self->connected = false;
        if (self->quitting)
                g_main_loop_quit(arg.loop);
}

/* A failure found in Connect, told once Connect's reply is out (else NetworkManager would
 * take the reply after the failure). */
struct pending_failure {
        SmPlugin *self;
        NMVpnPluginFailure reason;
        char *message;
        const char *hint;
};

static gboolean report_pending_failure(gpointer data) {
        struct pending_failure *f = data;

        report_failure(f->self, f->reason, f->message, f->hint);
        g_object_unref(f->self);
        g_free(f->message);
        g_free(f);
        return G_SOURCE_REMOVE;
}

static void fail_after_connect(SmPlugin *self, NMVpnPluginFailure reason, const char *message,
                               const char *hint) {
        struct pending_failure *f = g_new0(struct pending_failure, 1);

        f->self = g_object_ref(self);
        f->reason = reason;
        f->message = g_strdup(message);
        f->hint = hint;
        g_idle_add(report_pending_failure, f);
}

/* Whether the daemon could bind its UDP port: the same socket as its udp_open() (the IPv6
 * wildcard, dual-stack, IPv4 without IPv6), bound and closed again. 0 or -errno. */
static int probe_udp_port(uint16_t port) {
        struct sockaddr_in6 sa6 = {
                .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT, .sin6_port = htons(port)};
        struct sockaddr_in sa4 = {.sin_family = AF_INET, .sin_port = htons(port)};
        int fd, zero = 0, r = 0;

        fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
        if (fd >= 0) {
                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0 ||
                    bind(fd, (struct sockaddr *) &sa6, sizeof(sa6)) < 0)
                        r = -errno;
        } else if (errno == EAFNOSUPPORT) {
                fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
                if (fd < 0 || bind(fd, (struct sockaddr *) &sa4, sizeof(sa4)) < 0)
                        r = -errno;
        } else
                r = -errno;
        if (fd >= 0)
                close(fd);
        return r;
}

/* ---- NMVpnServicePlugin ---------------------------------------------------------------------- */

static unsigned connect_timeout(const struct settings *s) {
        unsigned t = s->vpn_timeout_sec ? s->vpn_timeout_sec : NM_DEFAULT_VPN_TIMEOUT_SEC;

        t = MIN(t, PLUGIN_CONNECT_TIMER_SEC);
        /* Leave NetworkManager's own timer a margin, so our error (with the reason) wins. */
        return t > 6 ? t - 3 : MAX(t, 2u) - 1;
}

static gboolean real_connect(NMVpnServicePlugin *plugin, NMConnection *connection, GError **error) {
        SmPlugin *self = SM_PLUGIN(plugin);
        static const struct instance_callbacks callbacks = {
                .connected = on_connected,
                .failed = on_failed,
                .stopped = on_stopped,
        };
        g_autoptr(GDBusConnection) bus = NULL;
        struct settings *s;
        int r;
        struct instance_options o = {
                .shadowmeshd = arg.shadowmeshd,
                .runtime_dir = arg.runtime_dir,
                .debug = service_log_level() >= LOG_DEBUG,
                .start_timeout_sec = START_TIMEOUT_SEC,
                .stop_timeout_sec = STOP_TIMEOUT_SEC,
        };

        service_log_set_connection(nm_connection_get_uuid(connection), NULL);
        log_info("Connect: connection '%s' (%s)", nm_connection_get_id(connection),
                 nm_connection_get_uuid(connection));
        if (self->instance) {
                g_set_error_literal(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_WRONG_STATE,
                                    _("The previous tunnel of this service is still stopping"));
                return false;
        }
        /* A malformed secret is a failed login ("Invalid secrets"), not a service that failed
         * to start: accept Connect, then fail with LOGIN_FAILED. */
        {
                g_autoptr(GError) bad_secret = NULL;

                if (!settings_check_secrets(connection, &bad_secret)) {
                        fail_after_connect(self, NM_VPN_PLUGIN_FAILURE_LOGIN_FAILED,
                                           bad_secret->message,
                                           "the secret is malformed; no daemon was started");
                        return true;
                }
        }
        s = settings_from_connection(connection, error);
        if (!s) {
                log_error("Connect refused: %s", (*error)->message);
                return false;
        }
        settings_free(self->settings);
        self->settings = s;
        service_log_set_connection(nm_connection_get_uuid(connection), s->instance);
        o.connect_timeout_sec = connect_timeout(s);
        log_info("peer %s, tap %s, instance %s, mode %s, mtu %u, listen port %u", s->peer,
                 s->tap_device, s->instance, s->identity ? "identity" : "shared-key", s->mtu,
                 s->listen_port);

        /* Before the daemon: its own failure to bind, or to create the TAP, would be an
         * "Unknown reason" (see "why it failed" above). */
        r = probe_udp_port(s->listen_port);
        if (r == -EADDRINUSE) {
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                            _("UDP port %u is already in use (set vpn.data '%s' to another "
                              "port)"),
                            s->listen_port, NM_SHADOWMESH_KEY_LISTEN_PORT);
                log_error("Connect refused: %s", (*error)->message);
                return false;
        }
        if (r < 0) /* not the port: the daemon will say what it is */
                log_warning("probing UDP port %u: %s", s->listen_port, g_strerror(-r));
        /* The daemon refuses a name any device already has (src/tap.c). */
        if (if_nametoindex(s->tap_device) != 0) {
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                            _("Network interface '%s' already exists (set vpn.data '%s' to "
                              "another name)"),
                            s->tap_device, NM_SHADOWMESH_KEY_TAP_DEVICE);
                log_error("Connect refused: %s", (*error)->message);
                return false;
        }

        bus = nm_vpn_service_plugin_get_connection(plugin);
        if (!instance_start(s, &o, bus, &callbacks, self, &self->instance, error)) {
                log_error("Connect failed: %s", (*error)->message);
                return false;
        }
        return true;
}

static gboolean real_need_secrets(NMVpnServicePlugin *plugin, NMConnection *connection,
                                  const char **setting_name, GError **error) {
        bool need = settings_need_secrets(connection);

        log_debug("NeedSecrets: %s", need ? "yes" : "no");
        if (need)
                *setting_name = NM_SETTING_VPN_SETTING_NAME;
        return need;
}

static gboolean real_disconnect(NMVpnServicePlugin *plugin, GError **error) {
        SmPlugin *self = SM_PLUGIN(plugin);

        log_info("Disconnect");
        if (self->instance)
                instance_stop(self->instance);
        return true;
}

static void sm_plugin_init(SmPlugin *self) {
}

static void sm_plugin_finalize(GObject *object) {
        SmPlugin *self = SM_PLUGIN(object);

        self->instance = instance_free(self->instance);
        self->settings = settings_free(self->settings);
        G_OBJECT_CLASS(sm_plugin_parent_class)->finalize(object);
}

static void sm_plugin_class_init(SmPluginClass *klass) {
        NMVpnServicePluginClass *plugin_class = NM_VPN_SERVICE_PLUGIN_CLASS(klass);

        G_OBJECT_CLASS(klass)->finalize = sm_plugin_finalize;
        plugin_class->connect = real_connect;
        plugin_class->need_secrets = real_need_secrets;
        plugin_class->disconnect = real_disconnect;
}

/* ---- main ------------------------------------------------------------------------------------ */

static gboolean quit_now(gpointer data) {
        g_main_loop_quit(arg.loop);
        return G_SOURCE_REMOVE;
}

/* Quit once the daemon is gone (it is never left running), within a bound. */
static void quit(SmPlugin *self) {
        if (self->quitting)
                return;
        self->quitting = true;
        if (!self->instance) {
                g_main_loop_quit(arg.loop);
                return;
        }
        instance_stop(self->instance);
        g_timeout_add_seconds(STOP_TIMEOUT_SEC + 2, quit_now, NULL);
}

static void on_quit(NMVpnServicePlugin *plugin, gpointer data) {
        log_debug("quit");
        quit(SM_PLUGIN(plugin));
}

static gboolean on_signal(gpointer data) {
        log_info("signal received: stopping");
        quit(data);
        return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv) {
        g_autofree char *bus_name = NULL;
        gboolean debug = false;
        GOptionEntry entries[] = {
                {"bus-name", 0, 0, G_OPTION_ARG_STRING, &bus_name, N_("D-Bus name to use"),
                 N_("NAME")},
                {"debug", 0, 0, G_OPTION_ARG_NONE, &debug,
                 N_("Log at debug level to standard error (the daemon too)"), NULL},
                {"shadowmeshd", 0, 0, G_OPTION_ARG_FILENAME, &arg.shadowmeshd,
                 N_("Path of the shadowmeshd program"), N_("PATH")},
                {"runtime-dir", 0, 0, G_OPTION_ARG_FILENAME, &arg.runtime_dir,
                 N_("Directory for the daemons' private files"), N_("DIR")},
                {},
        };
        g_autoptr(GOptionContext) ctx = NULL;
        g_autoptr(GError) error = NULL;
        SmPlugin *plugin;

        setlocale(LC_ALL, "");
        bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
        bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
        textdomain(GETTEXT_PACKAGE);

        ctx = g_option_context_new(NULL);
        g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
        g_option_context_set_summary(ctx, _("NetworkManager VPN service of ShadowMesh: runs a "
                                            "shadowmeshd instance per connection."));
        g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                g_printerr("nm-shadowmesh-service: %s\n", error->message);
                return 64;
        }
        if (!arg.shadowmeshd)
                arg.shadowmeshd = g_strdup(SHADOWMESHD_PATH);
        if (!arg.runtime_dir)
                arg.runtime_dir = g_strdup(RUNTIME_DIR);
        service_log_setup(debug);
        log_info("nm-shadowmesh-service %s starting, bus name %s, daemon %s", PACKAGE_VERSION,
                 bus_name ? bus_name : NM_DBUS_SERVICE_SHADOWMESH, arg.shadowmeshd);

        plugin = g_initable_new(sm_plugin_get_type(), NULL, &error,
                                NM_VPN_SERVICE_PLUGIN_DBUS_SERVICE_NAME,
                                bus_name ? bus_name : NM_DBUS_SERVICE_SHADOWMESH,
                                NM_VPN_SERVICE_PLUGIN_DBUS_WATCH_PEER, true, NULL);
        if (!plugin) {
                log_error("cannot start: %s", error->message);
                return 1;
        }
        arg.loop = g_main_loop_new(NULL, false);
        g_signal_connect(plugin, "quit", G_CALLBACK(on_quit), NULL);
        /* Replaces libnm's own handlers, which only emit "quit" (from a signal handler). */
        g_unix_signal_add(SIGTERM, on_signal, plugin);
        g_unix_signal_add(SIGINT, on_signal, plugin);

        g_main_loop_run(arg.loop);

        /* Replies still queued (the error of a refused Connect) must reach NetworkManager before
         * the bus connection goes with the process. */
        {
                g_autoptr(GDBusConnection) bus =
                        nm_vpn_service_plugin_get_connection(NM_VPN_SERVICE_PLUGIN(plugin));
                if (bus)
                        g_dbus_connection_flush_sync(bus, NULL, NULL);
        }
        log_info("exiting");
        g_object_unref(plugin); /* stops and waits for a daemon still running */
        g_main_loop_unref(arg.loop);
        g_free(arg.shadowmeshd);
        g_free(arg.runtime_dir);
        return 0;
}
