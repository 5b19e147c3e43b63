/* SPDX-License-Identifier: MIT */
/* The daemon's YAML <-> a NetworkManager connection (see import-export.h). */
/* The core header first: GLib then replaces util.h's MIN/MAX with its own (same meaning). */
#include "config.h"

#include "import-export.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nm-shadowmesh-utils.h"

/* --- import ----------------------------------------------------------------------------------- */

/* "host:port", "[v6]:port" */
static char *format_host_port(const char *host, uint16_t port) {
        if (strchr(host, ':'))
                return g_strdup_printf("[%s]:%u", host, port);
        return g_strdup_printf("%s:%u", host, port);
}

/*
 * NetworkManager takes one address of each family from a VPN service (local-ip); further
 * addresses of the daemon's network.local_ip go into the connection's ipv4/ipv6.addresses,
 * which NetworkManager adds to the TAP as well.
 */
static gboolean import_addresses(NMConnection *connection, NMSettingVpn *s_vpn,
                                 const struct config *c, GError **error) {
        g_autoptr(GString) local = g_string_new(NULL);
        NMSettingIPConfig *s_ip[2] = {};
        gboolean seen4 = FALSE, seen6 = FALSE;

        for (size_t i = 0; i < c->n_addresses; i++) {
                const struct config_address *a = &c->addresses[i];
                gboolean v6 = a->family == AF_INET6;
                char buf[INET6_ADDRSTRLEN];
                NMIPAddress *ip;

                inet_ntop(a->family, &a->addr, buf, sizeof(buf));
                if (!(v6 ? seen6 : seen4) && a->prefixlen > 0) {
                        g_string_append_printf(local, "%s%s/%u", local->len ? ", " : "", buf,
                                               a->prefixlen);
                        if (v6)
                                seen6 = TRUE;
                        else
                                seen4 = TRUE;
                        continue;
                }
                if (!s_ip[v6]) {
                        s_ip[v6] = v6 ? NM_SETTING_IP_CONFIG(nm_setting_ip6_config_new())
                                      : NM_SETTING_IP_CONFIG(nm_setting_ip4_config_new());
                        g_object_set(s_ip[v6], NM_SETTING_IP_CONFIG_METHOD,
                                     v6 ? NM_SETTING_IP6_CONFIG_METHOD_AUTO
                                        : NM_SETTING_IP4_CONFIG_METHOD_AUTO,
                                     NULL);
                        nm_connection_add_setting(connection, NM_SETTING(s_ip[v6]));
                }
                ip = nm_ip_address_new(a->family, buf, a->prefixlen, error);
                if (!ip)
                        return FALSE;
                nm_setting_ip_config_add_address(s_ip[v6], ip);
                nm_ip_address_unref(ip);
        }
        if (local->len)
                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP, local->str);
        return TRUE;
}

/* "node-a.yaml" -> "node-a" */
static char *connection_id_for(const char *path) {
        g_autofree char *base = g_path_get_basename(path);

        if (g_str_has_suffix(base, ".yaml"))
                base[strlen(base) - 5] = 0;
        else if (g_str_has_suffix(base, ".yml"))
                base[strlen(base) - 4] = 0;
        return g_strdup(*base ? base : "ShadowMesh");
}

static void set_uint(NMSettingVpn *s, const char *key, unsigned v) {
        char buf[16];

        g_snprintf(buf, sizeof(buf), "%u", v);
        nm_setting_vpn_add_data_item(s, key, buf);
}

/* A secret saved by NetworkManager, with its "<name>-flags" item (0) spelled out. */
static void add_secret(NMSettingVpn *s, const char *key, const char *flags_key, char *value) {
        nm_setting_vpn_add_secret(s, key, value);
        nm_setting_vpn_add_data_item(s, flags_key, "0");
        nm_shadowmesh_free_secret(value);
}

NMConnection *nm_shadowmesh_import(const char *path, GError **error) {
        g_autoptr(NMConnection) connection = NULL;
        g_autofree char *text = NULL, *dir = NULL, *id = NULL, *uuid = NULL, *tmp = NULL;
        g_autoptr(GError) local = NULL;
        _cleanup_(config_freep) struct config *c = NULL;
        NMSettingConnection *s_con;
        NMSettingVpn *s_vpn;
        char errbuf[512];
        gsize len = 0;
        int r;

        nm_shadowmesh_i18n_init();
        if (!g_file_get_contents(path, &text, &len, &local)) {
                g_set_error(error, NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_FAILED,
                            _("Cannot read %s: %s"), path, local->message);
                return NULL;
        }
        dir = g_path_get_dirname(path);
        r = config_parse_string(text, len, path, dir, &c, errbuf, sizeof(errbuf));
        sodium_memzero(text, len);
        if (r < 0) {
                /* The parser's message already names file:line:column and the key. */
                g_set_error(error, NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_FAILED,
                            _("Not a valid ShadowMesh configuration: %s"),
                            errbuf[0] ? errbuf : g_strerror(-r));
                return NULL;
        }
        /* Several other nodes: the first becomes "peer", the rest "peers" (Connected by address
         * after it), so every one needs an address. The node's own entry of a shared list is
         * already gone (identity mode), so the same peers: file as the daemon's imports. */
        for (size_t k = 0; c->n_peers > 1 && k < c->n_peers; k++)
                if (!c->peers[k].host) {
                        g_set_error(error, NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_FAILED,
                                    _("%s:%zu: peers: this entry has no address, but a "
                                      "NetworkManager connection with several peers connects "
                                      "to each by its address"),
                                    path, c->peers[k].line);
                        return NULL;
                }
        connection = nm_simple_connection_new();
        s_con = NM_SETTING_CONNECTION(nm_setting_connection_new());
        id = connection_id_for(path);
        uuid = nm_utils_uuid_generate();
        g_object_set(s_con, NM_SETTING_CONNECTION_ID, id, NM_SETTING_CONNECTION_UUID, uuid,
                     NM_SETTING_CONNECTION_TYPE, NM_SETTING_VPN_SETTING_NAME, NULL);
        nm_connection_add_setting(connection, NM_SETTING(s_con));

        s_vpn = NM_SETTING_VPN(nm_setting_vpn_new());
        g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, NM_DBUS_SERVICE_SHADOWMESH, NULL);
        nm_connection_add_setting(connection, NM_SETTING(s_vpn));

        /* An empty peer.address (this node waits) imports as no peer: the editor asks for one,
         * since NetworkManager needs the peer's address as the VPN gateway. */
        if (config_first_peer(c)->host) {
                tmp = format_host_port(config_first_peer(c)->host, config_first_peer(c)->port);
                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER, tmp);
                g_clear_pointer(&tmp, g_free);
        }
        if (c->n_peers > 1) {
                g_autoptr(GString) peers = g_string_new(NULL);

                for (size_t k = 1; k < c->n_peers; k++) {
                        g_autofree char *hp = format_host_port(c->peers[k].host, c->peers[k].port);

                        g_string_append_printf(peers, "%s%s", peers->len ? " " : "", hp);
                        if (c->private_key_file) {
                                char pub[45];

                                config_format_key(c->peers[k].public_key, pub);
                                g_string_append_printf(peers, "=%s", pub);
                        }
                }
                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEERS, peers->str);
        }
        if (!import_addresses(connection, s_vpn, c, error))
                return NULL;
        set_uint(s_vpn, NM_SHADOWMESH_KEY_MTU, c->mtu);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_TAP_DEVICE, c->tap_device);
        set_uint(s_vpn, NM_SHADOWMESH_KEY_LISTEN_PORT, c->listen_port);

        if (c->private_key_file) {
                char pub[45];

                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE,
                                             NM_SHADOWMESH_MODE_IDENTITY);
                config_format_key(config_first_peer(c)->public_key, pub);
                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY, pub);
                if (c->has_private_key)
                        add_secret(s_vpn, NM_SHADOWMESH_SECRET_PRIVATE_KEY,
                                   NM_SHADOWMESH_SECRET_PRIVATE_KEY_FLAGS,
                                   nm_shadowmesh_key_to_base64(c->private_key));
        } else
                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE,
                                             NM_SHADOWMESH_MODE_SHARED_KEY);
        if (c->has_psk)
                add_secret(s_vpn, NM_SHADOWMESH_SECRET_KEY, NM_SHADOWMESH_SECRET_KEY_FLAGS,
                           nm_shadowmesh_key_to_hex(c->psk));

        if (c->nat_enabled && c->stun_host) {
                tmp = format_host_port(c->stun_host, c->stun_port);
                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_STUN_SERVER, tmp);
                g_clear_pointer(&tmp, g_free);
        }
        if (c->relay_host) {
                tmp = format_host_port(c->relay_host, c->relay_port);
                nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_RELAY_SERVER, tmp);
                g_clear_pointer(&tmp, g_free);
        }
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_RELAY,
                                     c->relay_enabled ? NM_SHADOWMESH_YES : NM_SHADOWMESH_NO);

        return g_steal_pointer(&connection);
}

/* --- export ----------------------------------------------------------------------------------- */

/* A YAML double-quoted scalar: safe whatever the value holds. */
static void append_quoted(GString *out, const char *s) {
        g_string_append_c(out, '"');
        for (; s && *s; s++) {
                unsigned char ch = (unsigned char) *s;

                if (ch == '"' || ch == '\\')
                        g_string_append_printf(out, "\\%c", ch);
                else if (ch < 0x20 || ch == 0x7f)
                        g_string_append_printf(out, "\\x%02x", ch);
                else
                        g_string_append_c(out, (char) ch);
        }
        g_string_append_c(out, '"');
}

/* A number checked by the caller: written plain, as a user would. */
static void append_number(GString *out, const char *key, const char *value) {
        g_string_append_printf(out, "  %s: %s\n", key, value);
}

static void append_item(GString *out, const char *key, const char *value) {
        g_string_append_printf(out, "  %s: ", key);
        append_quoted(out, value);
        g_string_append_c(out, '\n');
}

/* A comment line; the connection name may hold anything, so keep it on one line. */
static void append_comment(GString *out, const char *text) {
        g_string_append(out, "# ");
        for (; *text; text++)
                g_string_append_c(out, (*text == '\n' || *text == '\r') ? ' ' : *text);
        g_string_append_c(out, '\n');
}

static const char *data(NMSettingVpn *s, const char *key) {
        const char *v = nm_setting_vpn_get_data_item(s, key);

        return v && *v ? v : NULL;
}

/* local-ip, then the static addresses of the ipv4/ipv6 settings (see import_addresses). */
static char **export_addresses(NMConnection *connection, NMSettingVpn *s_vpn) {
        g_auto(GStrv) local = nm_shadowmesh_split_local_ip(data(s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP));
        NMSettingIPConfig *s_ip[2] = {nm_connection_get_setting_ip4_config(connection),
                                      nm_connection_get_setting_ip6_config(connection)};
        GPtrArray *out = g_ptr_array_new();

        for (char **a = local; *a; a++)
                g_ptr_array_add(out, g_strdup(*a));
        for (size_t f = 0; f < G_N_ELEMENTS(s_ip); f++) {
                const char *method = s_ip[f] ? nm_setting_ip_config_get_method(s_ip[f]) : NULL;
                guint n = s_ip[f] ? nm_setting_ip_config_get_num_addresses(s_ip[f]) : 0;

                if (g_strcmp0(method, "disabled") == 0 || g_strcmp0(method, "ignore") == 0)
                        continue;
                for (guint i = 0; i < n; i++) {
                        NMIPAddress *ip = nm_setting_ip_config_get_address(s_ip[f], i);
                        char *item = g_strdup_printf("%s/%u", nm_ip_address_get_address(ip),
                                                     nm_ip_address_get_prefix(ip));

                        if (g_ptr_array_find_with_equal_func(out, item, g_str_equal, NULL))
                                g_free(item);
                        else
                                g_ptr_array_add(out, item);
                }
        }
        g_ptr_array_add(out, NULL);
        return (char **) g_ptr_array_free(out, FALSE);
}

static gboolean fail_export(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean fail_export(GError **error, const char *fmt, ...) {
        va_list ap;

        if (error) {
                va_start(ap, fmt);
                *error = g_error_new_valist(NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_FAILED, fmt,
                                            ap);
                va_end(ap);
        }
        return FALSE;
}

char *nm_shadowmesh_export_to_string(NMConnection *connection, const char *private_key_file,
                                     const char *shared_key_file, char **ret_private_key,
                                     GError **error) {
        g_autoptr(GString) out = g_string_new(NULL);
        g_autofree char *tap = NULL, *comment = NULL;
        _cleanup_secret_ char *psk_hex = NULL;
        g_auto(GStrv) addresses = NULL, peers = NULL;
        NMSettingVpn *s_vpn;
        const char *v, *mode;
        gboolean identity;
        uint8_t k[32];

        nm_shadowmesh_i18n_init();
        s_vpn = connection ? nm_connection_get_setting_vpn(connection) : NULL;
        if (!s_vpn ||
            g_strcmp0(nm_setting_vpn_get_service_type(s_vpn), NM_DBUS_SERVICE_SHADOWMESH) != 0) {
                fail_export(error, _("Not a ShadowMesh VPN connection"));
                return NULL;
        }
        mode = data(s_vpn, NM_SHADOWMESH_KEY_MODE);
        identity = g_strcmp0(mode, NM_SHADOWMESH_MODE_IDENTITY) == 0;
        if (mode && !identity && !g_str_equal(mode, NM_SHADOWMESH_MODE_SHARED_KEY)) {
                fail_export(error, _("Unknown mode “%s”"), mode);
                return NULL;
        }

        /* Values were checked by the editor, but a connection may come from nmcli: refuse
         * what the daemon would refuse rather than write a file that does not load. */
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_PEER)) &&
            !nm_shadowmesh_check_host_port(v, _("Peer"), error))
                return NULL;
        if (!nm_shadowmesh_check_local_ip(data(s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP), error))
                return NULL;
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_MTU)) &&
            !nm_shadowmesh_check_number(v, 576, 9000, _("MTU"), error))
                return NULL;
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_LISTEN_PORT)) &&
            !nm_shadowmesh_check_number(v, 1, 65535, _("Listen port"), error))
                return NULL;
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_TAP_DEVICE)) &&
            !nm_shadowmesh_check_tap_device(v, error))
                return NULL;
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_STUN_SERVER)) &&
            !nm_shadowmesh_check_host_port(v, _("STUN server"), error))
                return NULL;
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_RELAY_SERVER)) &&
            !nm_shadowmesh_check_host_port(v, _("Relay server"), error))
                return NULL;
        if (!data(s_vpn, NM_SHADOWMESH_KEY_RELAY_SERVER) &&
            g_strcmp0(data(s_vpn, NM_SHADOWMESH_KEY_RELAY), NM_SHADOWMESH_YES) == 0) {
                fail_export(error, _("The relay is enabled but no relay server is set"));
                return NULL;
        }
        if (identity && !nm_shadowmesh_parse_key(data(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY),
                                                 _("Peer public key"), k, error))
                return NULL;
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_PEERS))) {
                if (!data(s_vpn, NM_SHADOWMESH_KEY_PEER)) {
                        fail_export(error, _("Further peers are set but no peer"));
                        return NULL;
                }
                if (!nm_shadowmesh_check_peers(v, data(s_vpn, NM_SHADOWMESH_KEY_PEER),
                                               data(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY),
                                               identity, error))
                        return NULL;
                peers = nm_shadowmesh_split_peers(v);
                if (!peers[0])
                        g_clear_pointer(&peers, g_strfreev);
        }
        if ((v = nm_setting_vpn_get_secret(s_vpn, NM_SHADOWMESH_SECRET_KEY)) && *v) {
                if (!nm_shadowmesh_parse_key(v, _("Shared key"), k, error))
                        return NULL;
                psk_hex = nm_shadowmesh_key_to_hex(k);
                sodium_memzero(k, sizeof(k));
        }

        comment = g_strdup_printf(
                _("ShadowMesh configuration exported from the NetworkManager "
                  "connection “%s”."),
                nm_connection_get_id(connection) ? nm_connection_get_id(connection) : "");
        append_comment(out, comment);
        append_comment(out, _("See shadowmesh.yaml(5) for every key."));
        if (psk_hex)
                append_comment(out, _("This file holds a secret key: keep it private (chmod "
                                      "600)."));
        g_string_append_c(out, '\n');

        g_string_append(out, "network:\n");
        tap = g_strdup(data(s_vpn, NM_SHADOWMESH_KEY_TAP_DEVICE));
        if (!tap)
                tap = nm_shadowmesh_default_tap_for(connection);
        append_item(out, "tap_device", tap);
        addresses = export_addresses(connection, s_vpn);
        if (g_strv_length(addresses) > CONFIG_MAX_ADDRESSES) {
                fail_export(error, _("Too many addresses for the daemon (at most %d)"),
                            CONFIG_MAX_ADDRESSES);
                return NULL;
        }
        if (addresses[0]) {
                g_string_append(out, "  local_ip:\n");
                for (char **a = addresses; *a; a++) {
                        g_string_append(out, "    - ");
                        append_quoted(out, *a);
                        g_string_append_c(out, '\n');
                }
        }
        append_number(out, "mtu",
                      data(s_vpn, NM_SHADOWMESH_KEY_MTU) ? data(s_vpn, NM_SHADOWMESH_KEY_MTU)
                                                         : G_STRINGIFY(NM_SHADOWMESH_DEFAULT_MTU));
        append_number(out, "listen_port",
                      data(s_vpn, NM_SHADOWMESH_KEY_LISTEN_PORT)
                              ? data(s_vpn, NM_SHADOWMESH_KEY_LISTEN_PORT)
                              : G_STRINGIFY(NM_SHADOWMESH_DEFAULT_PORT));

        if (psk_hex) {
                g_string_append(out, "\nencryption:\n");
                append_item(out, "key", psk_hex);
                nm_shadowmesh_free_secret(g_steal_pointer(&psk_hex));
        } else if (!identity) {
                /* Shared-key mode needs the key; NetworkManager does not hold it (an agent
                 * does, or it is asked for each time). Name a file for it. */
                g_string_append(out, "\nencryption:\n  ");
                append_comment(out,
                               _("The shared key was not exported (NetworkManager did not hand "
                                 "it over): put its 64 hex digits in this file (chmod 600)."));
                append_item(out, "key_file", shared_key_file);
        }

        if (identity) {
                const char *priv =
                        nm_setting_vpn_get_secret(s_vpn, NM_SHADOWMESH_SECRET_PRIVATE_KEY);

                g_string_append(out, "\nidentity:\n");
                if (priv && *priv) {
                        if (!nm_shadowmesh_parse_key(priv, _("Private key"), k, error))
                                return NULL;
                        if (ret_private_key)
                                *ret_private_key = nm_shadowmesh_key_to_base64(k);
                        sodium_memzero(k, sizeof(k));
                } else {
                        g_string_append(out, "  ");
                        append_comment(out,
                                       _("The private key was not exported (NetworkManager did "
                                         "not hand it over): put it in this file (chmod "
                                         "600)."));
                }
                append_item(out, "private_key_file", private_key_file);
        }

        if (!peers) {
                g_string_append(out, "\npeer:\n");
                append_item(out, "address", data(s_vpn, NM_SHADOWMESH_KEY_PEER));
                if (identity)
                        append_item(out, "public_key",
                                    data(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY));
        } else {
                /* "peer" first, then "peers" in their order: the daemon's peers: list. */
                g_string_append(out, "\npeers:\n  - address: ");
                append_quoted(out, data(s_vpn, NM_SHADOWMESH_KEY_PEER));
                g_string_append_c(out, '\n');
                if (identity) {
                        g_string_append(out, "  ");
                        append_item(out, "public_key",
                                    data(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY));
                }
                for (char **p = peers; *p; p++) {
                        char *eq = strchr(*p, '=');

                        if (eq)
                                *eq = '\0';
                        g_string_append(out, "  - address: ");
                        append_quoted(out, *p);
                        g_string_append_c(out, '\n');
                        if (identity) {
                                g_string_append(out, "  ");
                                append_item(out, "public_key", eq + 1);
                        }
                }
        }

        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_STUN_SERVER))) {
                g_string_append(out, "\nnat:\n  enabled: true\n");
                append_item(out, "stun_server", v);
        }
        if ((v = data(s_vpn, NM_SHADOWMESH_KEY_RELAY_SERVER))) {
                g_string_append_printf(
                        out, "\nrelay:\n  enabled: %s\n",
                        g_strcmp0(data(s_vpn, NM_SHADOWMESH_KEY_RELAY), NM_SHADOWMESH_YES) == 0
                                ? "true"
                                : "false");
                append_item(out, "server", v);
        }
        return g_string_free(g_steal_pointer(&out), FALSE);
}

/* Replaces path with text, created with mode 0600 when secret (and the mode fixed if the file
 * existed with a wider one). */
static gboolean write_file(const char *path, const char *text, gboolean secret, GError **error) {
        size_t len = strlen(text), done = 0;
        int fd, saved;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                  secret ? 0600 : 0644);
        if (fd < 0)
                goto fail;
        if (secret && fchmod(fd, 0600) < 0)
                goto fail;
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        goto fail;
                done += (size_t) n;
        }
        if (close(fd) < 0) {
                fd = -1;
                goto fail;
        }
        return TRUE;
fail:
        saved = errno;
        if (fd >= 0)
                close(fd);
        return fail_export(error, _("Cannot write %s: %s"), path, g_strerror(saved));
}

gboolean nm_shadowmesh_export(const char *path, NMConnection *connection, GError **error) {
        g_autofree char *dir = NULL, *base = NULL, *key_name = NULL, *psk_name = NULL;
        g_autofree char *key_path = NULL, *text = NULL;
        char *private_key = NULL;
        NMSettingVpn *s_vpn;
        gboolean secret, ok;

        nm_shadowmesh_i18n_init();
        dir = g_path_get_dirname(path);
        base = connection_id_for(path);
        key_name = g_strconcat(base, ".key", NULL);
        psk_name = g_strconcat(base, ".psk", NULL);
        text = nm_shadowmesh_export_to_string(connection, key_name, psk_name, &private_key, error);
        if (!text)
                return FALSE;
        s_vpn = nm_connection_get_setting_vpn(connection);
        secret = !!nm_setting_vpn_get_secret(s_vpn, NM_SHADOWMESH_SECRET_KEY);
        if (private_key) {
                g_autofree char *line = g_strconcat(private_key, "\n", NULL);

                key_path = g_build_filename(dir, key_name, NULL);
                ok = write_file(key_path, line, TRUE, error);
                sodium_memzero(line, strlen(line));
                nm_shadowmesh_free_secret(private_key);
                if (!ok)
                        return FALSE;
        }
        ok = write_file(path, text, secret, error);
        sodium_memzero(text, strlen(text));
        return ok;
}
