/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib/gi18n-lib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "instance.h"
#include "service-log.h"
#include "shadowmesh/bus-api.h"

#define TUNNEL_IFACE BUS_INTERFACE
#define INSTANCE_NAME_PREFIX BUS_NAME_PREFIX
#define INSTANCE_PATH_PREFIX BUS_PATH_PREFIX "/"

enum state {
        STATE_STARTING,   /* spawned, waiting for its bus name */
        STATE_CONNECTING, /* Connect (then GetStatus) pending */
        STATE_CONNECTED,
        STATE_STOPPING, /* SIGTERM sent, waiting for the exit */
        STATE_STOPPED,  /* reaped, files wiped, stopped() called */
};

struct instance {
        enum state state;
        struct instance_callbacks cb;
        void *userdata;

        char *dir;         /* per-connection runtime directory */
        char *config_path; /* inside dir */
        char *peer;
        char **peers;            /* further peers, Connected one by one once peer is up */
        char **peers_public_key; /* identity mode; entries NULL in shared-key mode */
        size_t n_peers, next_peer;
        char *name; /* instance name */
        char *bus_name;
        char *bus_path;
        char *unit; /* the transient unit the daemon runs in (systemd-run), or NULL */
        unsigned connect_timeout_sec;
        unsigned stop_timeout_sec;

        GDBusConnection *bus;
        GSubprocess *process;
        GPid pid;
        GDataInputStream *output;
        GCancellable *cancel;    /* bus calls; cancelled by instance_stop */
        GCancellable *io_cancel; /* output reading and the wait; cancelled by instance_free */
        char *last_line;         /* the daemon's last output line, for error messages */
        bool exited, output_eof, failed_sent;
        int exit_status; /* wait status */

        guint watch_id;
        guint props_sub_id;
        guint start_timer;
        guint kill_timer;
        guint eof_timer;
        guint idle_id;

        char *tap_device;
        uint32_t mtu;
        char *endpoint;
};

static void finish_stop(struct instance *i);

/* error_name: the daemon's D-Bus error that failed it, NULL if none did. */
static void fail_with(struct instance *i, const char *error_name, const char *message) {
        if (i->failed_sent || i->state >= STATE_STOPPING)
                return;
        i->failed_sent = true;
        if (error_name)
                log_error("%s (%s)", message, error_name);
        else
                log_error("%s", message);
        if (i->cb.failed)
                i->cb.failed(i, error_name, message, i->userdata);
}

static void fail(struct instance *i, const char *message) {
        fail_with(i, NULL, message);
}

/* ---- the runtime directory ------------------------------------------------------------------- */

/* The parent directory must be ours and closed to others, else a local user could plant or
 * read files in it. */
static bool make_private_dir(const char *path, GError **error) {
        struct stat st;

        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                goto fail_errno;
        if (lstat(path, &st) < 0)
                goto fail_errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077)) {
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                            _("%s must be a directory owned by root with mode 0700"), path);
                return false;
        }
        return true;

fail_errno:
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                    _("Cannot create %s: %s"), path, g_strerror(errno));
        return false;
}

static bool make_runtime_dir(struct instance *i, const char *base, const char *uuid,
                             GError **error) {
        g_autofree char *parent = g_path_get_dirname(base);

        /* /run/NetworkManager normally exists; create it (0755, as NetworkManager does) if not. */
        if (g_mkdir_with_parents(parent, 0755) < 0) {
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                            _("Cannot create %s: %s"), parent, g_strerror(errno));
                return false;
        }
        if (!make_private_dir(base, error))
                return false;
        i->dir = g_build_filename(base, uuid, NULL);
        /* Left over by a service that was killed: its daemon died with it (PDEATHSIG). */
        int r = settings_wipe_dir(i->dir);
        if (r < 0)
                log_warning("cannot remove the stale %s: %s", i->dir, g_strerror(-r));
        return make_private_dir(i->dir, error);
}

static void wipe_files(struct instance *i) {
        g_autofree char *key = NULL, *identity = NULL;

        if (!i->dir)
                return;
        key = g_build_filename(i->dir, "shared.key", NULL);
        identity = g_build_filename(i->dir, "identity.key", NULL);
        settings_wipe_file(key);
        settings_wipe_file(identity);
        if (i->config_path)
                settings_wipe_file(i->config_path);
}

/* ---- the process ----------------------------------------------------------------------------- */

static pid_t service_pid;

/* Runs in the child between fork and exec: the daemon gets SIGTERM when the service dies, even by
 * SIGKILL, so no tunnel outlives the service that NetworkManager tracks. Under systemd-run this
 * reaches systemd-run only: the unit then outlives a service killed without a stop, until
 * `systemctl stop shadowmesh-nm-LABEL` (a stop of the service stops the unit). */
static void child_setup(gpointer data) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != service_pid)
                _exit(127);
}

static char *describe_exit(int status) {
        if (WIFEXITED(status))
                switch (WEXITSTATUS(status)) {
                case 1:
                        return g_strdup(
                                _("shadowmeshd rejected its configuration (exit status 1)"));
                case 2:
                        return g_strdup(_("shadowmeshd could not set up the tunnel (exit status "
                                          "2)"));
                default:
                        return g_strdup_printf(_("shadowmeshd exited with status %d"),
                                               WEXITSTATUS(status));
                }
        if (WIFSIGNALED(status))
                return g_strdup_printf(_("shadowmeshd was killed by signal %d (%s)"),
                                       WTERMSIG(status), g_strsignal(WTERMSIG(status)));
        return g_strdup(_("shadowmeshd stopped"));
}

/* Both the exit and the end of its output: the last line usually says why it exited. */
static void process_gone(struct instance *i) {
        g_clear_handle_id(&i->eof_timer, g_source_remove);
        if (i->state == STATE_STOPPING || i->state == STATE_STOPPED) {
                finish_stop(i);
                return;
        }
        {
                g_autofree char *why = describe_exit(i->exit_status);
                g_autofree char *msg = NULL;
                const char *last = i->last_line;

                if (last && g_str_has_prefix(last, "shadowmeshd: "))
                        last += strlen("shadowmeshd: ");
                msg = last ? g_strdup_printf("%s: %s", why, last) : g_steal_pointer(&why);
                fail(i, msg);
        }
        /* The service normally stops the instance from failed(); make sure it ends anyway. */
        instance_stop(i);
}

static gboolean on_eof_timeout(gpointer data) {
        struct instance *i = data;

        i->eof_timer = 0;
        i->output_eof = true;
        process_gone(i);
        return G_SOURCE_REMOVE;
}

static void on_wait(GObject *source, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) error = NULL;
        struct instance *i;

        if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error) &&
            g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* instance_free() */
        i = data;
        i->exited = true;
        i->exit_status = g_subprocess_get_status(i->process);
        g_clear_handle_id(&i->kill_timer, g_source_remove);
        log_info("shadowmeshd[%d] exited (wait status %d)", (int) i->pid, i->exit_status);
        if (i->output_eof)
                process_gone(i);
        else /* a writer other than the daemon would hold the pipe open: do not wait for it */
                i->eof_timer = g_timeout_add(1000, on_eof_timeout, i);
}

static void read_next_line(struct instance *i);

static void on_line(GObject *source, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *line = NULL;
        struct instance *i;
        gsize len;

        line = g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), res, &len,
                                                         &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        i = data;
        if (!line) {
                i->output_eof = true;
                if (i->exited)
                        process_gone(i);
                return;
        }
        /* The daemon never prints a key; its lines go to the service's log as they are. */
        service_log(LOG_INFO, "shadowmeshd[%d]: %s", (int) i->pid,
                    g_str_has_prefix(line, "shadowmeshd: ") ? line + strlen("shadowmeshd: ")
                                                            : line);
        g_free(i->last_line);
        i->last_line = g_steal_pointer(&line);
        read_next_line(i);
}

static void read_next_line(struct instance *i) {
        g_data_input_stream_read_line_async(i->output, G_PRIORITY_DEFAULT, i->io_cancel, on_line,
                                            i);
}

/* shadowmesh@.service's hardening (systemd/shadowmesh@.service, [Service] after "Hardening"),
 * for the transient unit the daemon runs in where systemd is PID 1. tests/nm/sandbox.sh holds
 * this list against the unit file, line for line. */
static const char *const sandbox_properties[] = {
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/net/tun rw",
        "UMask=0077",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@resources @mount",
        "SystemCallErrorNumber=EPERM",
};

/* systemd is PID 1 (what sd_booted() checks) and systemd-run is installed. */
static char *find_systemd_run(void) {
        if (!g_file_test("/run/systemd/system", G_FILE_TEST_IS_DIR))
                return NULL;
        return g_find_program_in_path("systemd-run");
}

/* The command line: the daemon itself, or systemd-run starting it in a transient service with
 * the unit's protections. --pipe hands the daemon this pipe as its output, --wait makes
 * systemd-run exit with the daemon's status, so the output and the exit are seen as for a
 * direct child. */
static GPtrArray *daemon_argv(struct instance *i, const char *shadowmeshd,
                              const char *systemd_run) {
        GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

        if (systemd_run) {
                g_autofree char *label = settings_bus_label(i->name);

                i->unit = g_strdup_printf("shadowmesh-nm-%s.service", label);
                g_ptr_array_add(argv, g_strdup(systemd_run));
                g_ptr_array_add(argv, g_strdup("--quiet"));
                g_ptr_array_add(argv, g_strdup("--pipe"));
                g_ptr_array_add(argv, g_strdup("--wait"));
                g_ptr_array_add(argv, g_strdup("--collect"));
                g_ptr_array_add(argv, g_strdup("--service-type=exec"));
                g_ptr_array_add(argv, g_strdup_printf("--unit=%s", i->unit));
                g_ptr_array_add(argv, g_strdup_printf("--description=ShadowMesh tunnel %s "
                                                      "(NetworkManager)",
                                                      i->name));
                g_ptr_array_add(argv, g_strdup_printf("--property=TimeoutStopSec=%u",
                                                      i->stop_timeout_sec));
                for (size_t k = 0; k < G_N_ELEMENTS(sandbox_properties); k++)
                        g_ptr_array_add(argv,
                                        g_strdup_printf("--property=%s", sandbox_properties[k]));
                g_ptr_array_add(argv, g_strdup("--"));
        }
        g_ptr_array_add(argv, g_strdup(shadowmeshd));
        g_ptr_array_add(argv, g_strdup("--instance"));
        g_ptr_array_add(argv, g_strdup(i->name));
        g_ptr_array_add(argv, g_strdup(i->config_path));
        g_ptr_array_add(argv, NULL);
        return argv;
}

static void on_unit_call(GObject *source, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autofree char *unit = data;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        if (!reply)
                log_warning("systemd could not stop %s: %s", unit, error->message);
}

/* StopUnit (SIGTERM, then SIGKILL after TimeoutStopSec) or KillUnit, without waiting: the
 * process exit comes through systemd-run as for a direct child. Signalling systemd-run itself
 * would only end systemd-run. */
static void unit_call(struct instance *i, const char *method, GVariant *params) {
        log_info("%s %s", method, i->unit);
        g_dbus_connection_call(i->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", method, params, NULL,
                               G_DBUS_CALL_FLAGS_NONE, 30000, NULL, on_unit_call,
                               g_strdup(i->unit));
}

static bool spawn(struct instance *i, const char *shadowmeshd, GError **error) {
        g_autoptr(GSubprocessLauncher) launcher = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(GPtrArray) argv = NULL;
        g_autofree char *systemd_run = find_systemd_run();
        const char *id;

        launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                             G_SUBPROCESS_FLAGS_STDERR_MERGE);
        /* Nothing of the service's own service manager: the daemon must not adopt a socket or
         * report readiness on the service's behalf. */
        for (const char *const *v =
                     (const char *const[]){"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                                           "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", NULL};
             *v; v++)
                g_subprocess_launcher_unsetenv(launcher, *v);
        service_pid = getpid();
        g_subprocess_launcher_set_child_setup(launcher, child_setup, NULL, NULL);
        argv = daemon_argv(i, shadowmeshd, systemd_run);
        i->process = g_subprocess_launcher_spawnv(launcher, (const char *const *) argv->pdata,
                                                  &local);
        if (!i->process) {
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                            _("Cannot start %s: %s"), (const char *) argv->pdata[0],
                            local->message);
                return false;
        }
        id = g_subprocess_get_identifier(i->process);
        i->pid = id ? (GPid) atoi(id) : 0;
        if (i->unit)
                log_info("started %s --instance %s %s in %s (systemd-run pid %d)", shadowmeshd,
                         i->name, i->config_path, i->unit, (int) i->pid);
        else
                log_info("started %s --instance %s %s (pid %d)", shadowmeshd, i->name,
                         i->config_path, (int) i->pid);

        i->output = g_data_input_stream_new(g_subprocess_get_stdout_pipe(i->process));
        g_data_input_stream_set_newline_type(i->output, G_DATA_STREAM_NEWLINE_TYPE_LF);
        read_next_line(i);
        g_subprocess_wait_async(i->process, i->io_cancel, on_wait, i);
        return true;
}

/* ---- the bus --------------------------------------------------------------------------------- */

/* A failed call's message without GDBus's "GDBus.Error:NAME: " prefix, and its D-Bus error name
 * in ret_name (NULL when the error is not a remote one: a timeout, a closed connection). */
static char *remote_error_message(GError *error, char **ret_name) {
        g_autofree char *name = g_dbus_error_get_remote_error(error);

        g_dbus_error_strip_remote_error(error);
        if (name)
                log_debug("D-Bus error %s: %s", name, error->message);
        if (ret_name)
                *ret_name = g_steal_pointer(&name);
        return g_strdup(error->message);
}

static const char *lookup_string(GVariant *dict, const char *key) {
        const char *s = NULL;
        return g_variant_lookup(dict, key, "&s", &s) ? s : NULL;
}

static void connect_next_peer(struct instance *i);

/* A further peer's Connect ended: logged with its address, never a failure of the connection
 * (the first peer carries it); then the next one (the daemon takes one Connect at a time). */
static void on_further_connect_reply(GObject *source, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        struct instance *i;
        const char *peer;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        i = data;
        peer = i->peers[i->next_peer - 1];
        if (!reply) {
                g_autofree char *why = remote_error_message(error, NULL);
                log_warning("further peer %s: Connect failed: %s (the connection stays up)", peer,
                            why);
        } else
                log_info("further peer %s connected", peer);
        connect_next_peer(i);
}

static void connect_next_peer(struct instance *i) {
        GVariantBuilder options;
        const char *peer, *key;

        if (i->state != STATE_CONNECTED || i->next_peer >= i->n_peers)
                return;
        peer = i->peers[i->next_peer];
        key = i->peers_public_key[i->next_peer];
        i->next_peer++;
        g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&options, "{sv}", "timeout_sec",
                              g_variant_new_uint32(i->connect_timeout_sec));
        if (key)
                g_variant_builder_add(&options, "{sv}", "public_key", g_variant_new_string(key));
        log_info("Connect(%s, timeout_sec=%u%s) (further peer %zu of %zu)", peer,
                 i->connect_timeout_sec, key ? ", public_key" : "", i->next_peer, i->n_peers);
        g_dbus_connection_call(i->bus, i->bus_name, i->bus_path, TUNNEL_IFACE, "Connect",
                               g_variant_new("(sa{sv})", peer, &options), G_VARIANT_TYPE("()"),
                               G_DBUS_CALL_FLAGS_NONE, (int) (i->connect_timeout_sec + 10) * 1000,
                               i->cancel, on_further_connect_reply, i);
}

static void on_status(GObject *source, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL, dict = NULL;
        struct instance *i;
        const char *tap, *endpoint;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        i = data;
        if (!reply) {
                g_autofree char *name = NULL;
                g_autofree char *why = remote_error_message(error, &name);
                g_autofree char *msg = g_strdup_printf(_("Cannot read the tunnel status: %s"), why);
                fail_with(i, name, msg);
                return;
        }
        dict = g_variant_get_child_value(reply, 0);
        tap = lookup_string(dict, "TapDevice");
        endpoint = lookup_string(dict, "Endpoint");
        if (!g_variant_lookup(dict, "Mtu", "u", &i->mtu) || !tap || !*tap) {
                fail(i, _("The daemon's status lacks TapDevice or Mtu"));
                return;
        }
        i->tap_device = g_strdup(tap);
        i->endpoint = g_strdup(endpoint ? endpoint : "");
        i->state = STATE_CONNECTED;
        log_info("connected: %s, mtu %u, peer endpoint %s", i->tap_device, i->mtu, i->endpoint);
        if (i->n_peers)
                log_info("the connection is up with its first peer %s; connecting %zu further "
                         "peer(s)",
                         i->peer, i->n_peers);
        if (i->cb.connected)
                i->cb.connected(i, i->userdata);
        /* After connected(): Config carries the first peer's endpoint as the gateway. */
        connect_next_peer(i);
}

static void on_connect_reply(GObject *source, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        struct instance *i;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        i = data;
        if (!reply) {
                g_autofree char *name = NULL;
                g_autofree char *why = remote_error_message(error, &name);
                g_autofree char *msg = g_strdup_printf(_("Cannot connect to %s: %s"), i->peer, why);
                fail_with(i, name, msg);
                return;
        }
        g_dbus_connection_call(i->bus, i->bus_name, i->bus_path, TUNNEL_IFACE, "GetStatus", NULL,
                               G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 10000, i->cancel,
                               on_status, i);
}

/* The daemon's State (dbus/org.shadowmesh1.Tunnel.txt) as NetworkManager must see it, in one
 * place: "connecting", "connected" and "reconnecting" are the daemon at work (handshake, rekey,
 * roaming, a peer restarting); "disconnected" (someone called Disconnect), "failed" (retries
 * gave up) and "waiting" (the peer sent its closing message to an instance that has no address
 * for it) mean the tunnel is gone, and NetworkManager must know. */
static bool tunnel_state_is_gone(const char *state) {
        static const char *const gone[] = { "disconnected", "failed", "waiting" };

        for (size_t k = 0; k < G_N_ELEMENTS(gone); k++)
                if (strcmp(state, gone[k]) == 0)
                        return true;
        return false;
}

static void on_properties_changed(GDBusConnection *bus, const char *sender, const char *path,
                                  const char *iface, const char *signal, GVariant *params,
                                  gpointer data) {
        struct instance *i = data;
        g_autoptr(GVariant) changed = NULL;
        const char *iface_name, *state = NULL;

        if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
                return;
        g_variant_get(params, "(&s@a{sv}@as)", &iface_name, &changed, NULL);
        if (strcmp(iface_name, TUNNEL_IFACE) != 0 ||
            !g_variant_lookup(changed, "State", "&s", &state))
                return;
        log_info("tunnel state: %s", state);
        if (i->state == STATE_CONNECTED && tunnel_state_is_gone(state))
                fail(i, _("The tunnel was disconnected"));
}

static void on_name_appeared(GDBusConnection *bus, const char *name, const char *owner,
                             gpointer data) {
        struct instance *i = data;
        GVariantBuilder options;

        if (i->state != STATE_STARTING)
                return;
        g_clear_handle_id(&i->start_timer, g_source_remove);
        log_info("%s appeared on the system bus (%s)", name, owner);
        /* The daemon read its configuration and keys before it asked for the name. */
        wipe_files(i);
        i->state = STATE_CONNECTING;

        i->props_sub_id = g_dbus_connection_signal_subscribe(
                bus, owner, "org.freedesktop.DBus.Properties", "PropertiesChanged", i->bus_path,
                TUNNEL_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, i, NULL);

        g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&options, "{sv}", "timeout_sec",
                              g_variant_new_uint32(i->connect_timeout_sec));
        log_info("Connect(%s, timeout_sec=%u)", i->peer, i->connect_timeout_sec);
        g_dbus_connection_call(bus, i->bus_name, i->bus_path, TUNNEL_IFACE, "Connect",
                               g_variant_new("(sa{sv})", i->peer, &options), G_VARIANT_TYPE("()"),
                               G_DBUS_CALL_FLAGS_NONE, (int) (i->connect_timeout_sec + 10) * 1000,
                               i->cancel, on_connect_reply, i);
}

static void on_name_vanished(GDBusConnection *bus, const char *name, gpointer data) {
        struct instance *i = data;

        /* The process exit says why, with the daemon's last line; wait for that. */
        if (i->state == STATE_CONNECTING || i->state == STATE_CONNECTED)
                log_info("%s left the system bus", name);
}

static gboolean on_start_timeout(gpointer data) {
        struct instance *i = data;
        g_autofree char *msg = NULL;

        i->start_timer = 0;
        msg = g_strdup_printf(_("shadowmeshd did not register %s on the system bus"), i->bus_name);
        fail(i, msg);
        return G_SOURCE_REMOVE;
}

/* ---- start / stop ---------------------------------------------------------------------------- */

bool instance_start(const struct settings *s, const struct instance_options *o,
                    GDBusConnection *bus, const struct instance_callbacks *cb, void *userdata,
                    struct instance **ret, GError **error) {
        struct instance *i = g_new0(struct instance, 1);
        g_autofree char *label = NULL;

        i->state = STATE_STARTING;
        i->cb = *cb;
        i->userdata = userdata;
        i->peer = g_strdup(s->peer);
        i->n_peers = s->n_peers;
        i->peers = g_new0(char *, s->n_peers + 1);
        i->peers_public_key = g_new0(char *, s->n_peers + 1);
        for (size_t k = 0; k < s->n_peers; k++) {
                i->peers[k] = g_strdup(s->peers[k]);
                i->peers_public_key[k] = g_strdup(s->peers_public_key[k]);
        }
        i->name = g_strdup(s->instance);
        label = settings_bus_label(i->name);
        i->bus_name = g_strconcat(INSTANCE_NAME_PREFIX, label, NULL);
        i->bus_path = g_strconcat(INSTANCE_PATH_PREFIX, label, NULL);
        i->connect_timeout_sec = o->connect_timeout_sec;
        i->stop_timeout_sec = o->stop_timeout_sec;
        i->bus = g_object_ref(bus);
        i->cancel = g_cancellable_new();
        i->io_cancel = g_cancellable_new();

        if (!make_runtime_dir(i, o->runtime_dir, s->uuid, error) ||
            !settings_write_files(s, o->debug, i->dir, &i->config_path, error))
                goto fail;

        /* Watch before spawning, so the name cannot appear unseen. */
        i->watch_id =
                g_bus_watch_name_on_connection(bus, i->bus_name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                               on_name_appeared, on_name_vanished, i, NULL);
        if (!spawn(i, o->shadowmeshd, error))
                goto fail;
        i->start_timer = g_timeout_add_seconds(o->start_timeout_sec, on_start_timeout, i);
        *ret = i;
        return true;

fail:
        i->state = STATE_STOPPED;
        instance_free(i);
        return false;
}

static gboolean on_kill_timeout(gpointer data) {
        struct instance *i = data;

        i->kill_timer = 0;
        log_warning("shadowmeshd[%d] did not stop within %u s: killing it", (int) i->pid,
                    i->stop_timeout_sec);
        if (i->unit)
                unit_call(i, "KillUnit", g_variant_new("(ssi)", i->unit, "all", SIGKILL));
        g_subprocess_force_exit(i->process);
        return G_SOURCE_REMOVE;
}

static gboolean emit_stopped(gpointer data) {
        struct instance *i = data;

        i->idle_id = 0;
        if (i->cb.stopped)
                i->cb.stopped(i, i->userdata);
        return G_SOURCE_REMOVE;
}

static void finish_stop(struct instance *i) {
        int r;

        if (i->state == STATE_STOPPED)
                return;
        i->state = STATE_STOPPED;
        g_clear_handle_id(&i->kill_timer, g_source_remove);
        if (i->dir) {
                r = settings_wipe_dir(i->dir);
                if (r < 0)
                        log_warning("cannot remove %s: %s", i->dir, g_strerror(-r));
        }
        log_info("instance %s stopped", i->name);
        i->idle_id = g_idle_add(emit_stopped, i);
}

void instance_stop(struct instance *i) {
        if (i->state == STATE_STOPPING || i->state == STATE_STOPPED)
                return;
        i->state = STATE_STOPPING;
        g_cancellable_cancel(i->cancel);
        g_clear_handle_id(&i->start_timer, g_source_remove);
        g_clear_handle_id(&i->watch_id, g_bus_unwatch_name);
        if (i->props_sub_id) {
                g_dbus_connection_signal_unsubscribe(i->bus, i->props_sub_id);
                i->props_sub_id = 0;
        }
        wipe_files(i);
        if (i->exited && i->output_eof) {
                finish_stop(i);
                return;
        }
        if (!i->exited) {
                log_info("stopping shadowmeshd[%d]", (int) i->pid);
                if (i->unit)
                        unit_call(i, "StopUnit", g_variant_new("(ss)", i->unit, "replace"));
                else
                        g_subprocess_send_signal(i->process, SIGTERM);
                i->kill_timer = g_timeout_add_seconds(i->stop_timeout_sec, on_kill_timeout, i);
        }
        /* finish_stop() runs from process_gone() once it exited and its output ended. */
}

bool instance_is_stopped(const struct instance *i) {
        return i->state == STATE_STOPPED;
}

const char *instance_tap_device(const struct instance *i) {
        return i->tap_device;
}

uint32_t instance_mtu(const struct instance *i) {
        return i->mtu;
}

const char *instance_endpoint(const struct instance *i) {
        return i->endpoint;
}

const char *instance_bus_name(const struct instance *i) {
        return i->bus_name;
}

GPid instance_pid(const struct instance *i) {
        return i->pid;
}

struct instance *instance_free(struct instance *i) {
        if (!i)
                return NULL;
        g_cancellable_cancel(i->cancel);
        g_cancellable_cancel(i->io_cancel);
        g_clear_handle_id(&i->start_timer, g_source_remove);
        g_clear_handle_id(&i->kill_timer, g_source_remove);
        g_clear_handle_id(&i->eof_timer, g_source_remove);
        g_clear_handle_id(&i->idle_id, g_source_remove);
        g_clear_handle_id(&i->watch_id, g_bus_unwatch_name);
        if (i->props_sub_id)
                g_dbus_connection_signal_unsubscribe(i->bus, i->props_sub_id);
        if (i->process && !i->exited) {
                /* Last resort (the service is exiting without a stop): no tunnel may outlive it.
                 * Synchronous, as the wait below: the service is on its way out. */
                if (i->unit) {
                        g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
                                i->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "KillUnit",
                                g_variant_new("(ssi)", i->unit, "all", SIGKILL), NULL,
                                G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
                }
                g_subprocess_force_exit(i->process);
                g_subprocess_wait(i->process, NULL, NULL);
                log_info("killed shadowmeshd[%d]", (int) i->pid);
        }
        if (i->dir)
                settings_wipe_dir(i->dir);
        g_clear_object(&i->output);
        g_clear_object(&i->process);
        g_clear_object(&i->cancel);
        g_clear_object(&i->io_cancel);
        g_clear_object(&i->bus);
        g_free(i->dir);
        g_free(i->config_path);
        g_free(i->peer);
        for (size_t k = 0; k < i->n_peers; k++) {
                g_free(i->peers[k]);
                g_free(i->peers_public_key[k]);
        }
        g_free(i->peers);
        g_free(i->peers_public_key);
        g_free(i->name);
        g_free(i->bus_name);
        g_free(i->bus_path);
        g_free(i->unit);
        g_free(i->last_line);
        g_free(i->tap_device);
        g_free(i->endpoint);
        g_free(i);
        return NULL;
}
