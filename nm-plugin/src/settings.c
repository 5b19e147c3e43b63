/* SPDX-License-Identifier: MIT */
/*
 * vpn.data / vpn.secrets -> struct settings -> the daemon's private files.
 *
 * Every check names the key it is about, in the words of nm-shadowmesh-keys.h, because the
 * message is what nmcli prints. The limits are the daemon's (shadowmesh.yaml(5)), checked here
 * too so that a mistake is reported by NetworkManager when the user connects, not as a daemon
 * that exits with status 1.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nm-shadowmesh-keys.h"
#include "nm-shadowmesh-peer-id.h"
#include "settings.h"

enum {
        MTU_MIN = 576, /* the daemon's limits for network.mtu */
        MTU_MAX = 9000,
        HOST_MAX = 253,
        PEERS_MAX = 1023, /* further peers: with "peer", the daemon's 1024-peer table */
};

static void secret_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                g_free(s);
        }
}

struct settings *settings_free(struct settings *s) {
        if (!s)
                return NULL;
        g_free(s->uuid);
        g_free(s->id);
        g_free(s->peer);
        g_free(s->peer_host);
        g_free(s->peer_public_key);
        for (size_t k = 0; k < s->n_peers; k++) {
                g_free(s->peers[k]);
                g_free(s->peers_public_key[k]);
        }
        g_free(s->peers);
        g_free(s->peers_public_key);
        secret_free(s->key);
        secret_free(s->private_key);
        g_free(s->relay_server);
        g_free(s->stun_server);
        explicit_bzero(s, sizeof(*s));
        g_free(s);
        return NULL;
}

static bool bad(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool bad(GError **error, const char *fmt, ...) {
        va_list ap;
        char *msg;

        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_BAD_ARGUMENTS, msg);
        g_free(msg);
        return false;
}

/* An empty value counts as absent, as nmcli writes "key=" for a cleared field. */
static const char *item(NMSettingVpn *s_vpn, const char *key) {
        const char *v = nm_setting_vpn_get_data_item(s_vpn, key);
        return v && *v ? v : NULL;
}

static const char *secret(NMSettingVpn *s_vpn, const char *key) {
        const char *v = nm_setting_vpn_get_secret(s_vpn, key);
        return v && *v ? v : NULL;
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret) {
        unsigned long v = 0;

        if (!s || !*s || strlen(s) > 10)
                return false;
        for (const char *p = s; *p; p++) {
                if (!g_ascii_isdigit(*p))
                        return false;
                v = v * 10 + (unsigned long) (*p - '0');
        }
        if (v < min || v > max)
                return false;
        *ret = v;
        return true;
}

static bool host_name_ok(const char *h) {
        size_t n = strlen(h);

        if (n == 0 || n > HOST_MAX)
                return false;
        for (const char *p = h; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != '_')
                        return false;
        return true;
}

/* "host", "host:port", "[v6]:port", "[v6]", "v6" -> host and port (default_port when absent).
 * Returns false with *ret_why set (a translated phrase) when malformed. */
static bool parse_host_port(const char *s, uint16_t default_port, char **ret_host,
                            uint16_t *ret_port, const char **ret_why) {
        g_autofree char *host = NULL;
        const char *port_s = NULL;
        unsigned long port = default_port;
        struct in6_addr a6;

        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end) {
                        *ret_why = _("missing ']' after the IPv6 address");
                        return false;
                }
                host = g_strndup(s + 1, (size_t) (end - s - 1));
                if (inet_pton(AF_INET6, host, &a6) != 1) {
                        *ret_why = _("not an IPv6 address inside the brackets");
                        return false;
                }
                if (end[1] == ':')
                        port_s = end + 2;
                else if (end[1]) {
                        *ret_why = _("expected ':PORT' after ']'");
                        return false;
                }
        } else {
                const char *colon = strchr(s, ':');
                if (colon && strchr(colon + 1, ':')) {
                        /* Several colons and no brackets: a bare IPv6 address. */
                        if (inet_pton(AF_INET6, s, &a6) != 1) {
                                *ret_why = _("not an IPv6 address (write it in brackets with "
                                             "a port: [2001:db8::1]:9001)");
                                return false;
                        }
                        host = g_strdup(s);
                } else {
                        host = colon ? g_strndup(s, (size_t) (colon - s)) : g_strdup(s);
                        port_s = colon ? colon + 1 : NULL;
                        if (!host_name_ok(host)) {
                                *ret_why = _("not a host name or IP address");
                                return false;
                        }
                }
        }
        if (port_s && !parse_uint(port_s, 1, 65535, &port)) {
                *ret_why = _("the port must be a number from 1 to 65535");
                return false;
        }
        *ret_host = g_steal_pointer(&host);
        *ret_port = (uint16_t) port;
        return true;
}

static bool is_hex_key(const char *s) {
        if (strlen(s) != 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!g_ascii_isxdigit(*p))
                        return false;
        return true;
}

static bool all_zero(const uint8_t *b, size_t n) {
        uint8_t acc = 0;
        for (size_t i = 0; i < n; i++)
                acc |= b[i];
        return acc == 0;
}

/* 44 base64 characters or 64 hex digits for 32 bytes, not all zero (the daemon refuses those). */
static bool key32_ok(const char *s, bool allow_base64) {
        uint8_t raw[32];
        bool ok = false;

        if (is_hex_key(s)) {
                for (size_t i = 0; i < 32; i++)
                        raw[i] = (uint8_t) (g_ascii_xdigit_value(s[2 * i]) << 4 |
                                            g_ascii_xdigit_value(s[2 * i + 1]));
                ok = !all_zero(raw, 32);
        } else if (allow_base64 && strlen(s) == 44) {
                gsize len = 0;
                guchar *d;

                for (const char *p = s; *p; p++)
                        if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=')
                                goto out;
                d = g_base64_decode(s, &len);
                ok = len == 32 && !all_zero(d, 32);
                explicit_bzero(d, len);
                g_free(d);
        }
out:
        explicit_bzero(raw, sizeof(raw));
        return ok;
}

/* The shared key as given: 64 hex digits (how many there were, or where a non-digit is). */
static bool check_shared_key(const char *v, GError **error) {
        size_t n = strlen(v), digits = strspn(v, "0123456789abcdefABCDEF");

        if (digits != n)
                return bad(error,
                           _("vpn.secrets '%s': expected 64 hex digits, got a character that is "
                             "not one at position %zu"),
                           NM_SHADOWMESH_SECRET_KEY, digits + 1);
        if (n != 64)
                return bad(error, _("vpn.secrets '%s': expected 64 hex digits, got %zu"),
                           NM_SHADOWMESH_SECRET_KEY, n);
        if (!key32_ok(v, false))
                return bad(error, _("vpn.secrets '%s': the key is all zeros"),
                           NM_SHADOWMESH_SECRET_KEY);
        return true;
}

static bool check_private_key(const char *v, GError **error) {
        if (!key32_ok(v, true))
                return bad(error,
                           _("vpn.secrets '%s' must be a key as 'shadowmeshd genkey' prints it "
                             "(44 base64 characters)"),
                           NM_SHADOWMESH_SECRET_PRIVATE_KEY);
        return true;
}

static bool parse_local_ip(struct settings *s, const char *value, GError **error) {
        g_auto(GStrv) parts = g_strsplit_set(value, ", \t", -1);

        for (char **p = parts; *p; p++) {
                g_autofree char *addr = NULL;
                const char *slash;
                struct settings_address *a;
                unsigned long prefix;
                int family;

                if (!**p)
                        continue;
                slash = strchr(*p, '/');
                addr = slash ? g_strndup(*p, (size_t) (slash - *p)) : g_strdup(*p);
                family = strchr(addr, ':') ? AF_INET6 : AF_INET;
                a = family == AF_INET ? &s->ip4 : &s->ip6;
                if (inet_pton(family, addr, &a->addr) != 1)
                        return bad(error,
                                   _("vpn.data '%s': '%s' is not an IP address in CIDR "
                                     "notation (e.g. 10.0.0.2/24 or fd00::2/64)"),
                                   NM_SHADOWMESH_KEY_LOCAL_IP, *p);
                if (!slash)
                        prefix = family == AF_INET ? 32 : 128;
                else if (!parse_uint(slash + 1, 1, family == AF_INET ? 32 : 128, &prefix))
                        return bad(error,
                                   _("vpn.data '%s': '%s' has a bad prefix length "
                                     "(1..%d)"),
                                   NM_SHADOWMESH_KEY_LOCAL_IP, *p, family == AF_INET ? 32 : 128);
                if (a->set)
                        return bad(error,
                                   _("vpn.data '%s': more than one %s address; "
                                     "NetworkManager takes one of each family from a "
                                     "VPN (add more with ipv4.addresses / "
                                     "ipv6.addresses)"),
                                   NM_SHADOWMESH_KEY_LOCAL_IP, family == AF_INET ? "IPv4" : "IPv6");
                a->set = true;
                a->prefixlen = (uint8_t) prefix;
        }
        return true;
}

/* "peers": further peers, "host[:port][=PUBLICKEY]" separated by spaces or ';' (not commas:
 * nmcli separates vpn.data items with them). In identity mode each needs its public key; in
 * shared-key mode a key is checked but not used, as peer-public-key. No entry may name the node
 * of "peer" or of another entry again. */
static bool parse_peers(struct settings *s, const char *value, GError **error) {
        g_auto(GStrv) parts = g_strsplit_set(value, NM_SHADOWMESH_PEERS_SEPARATORS, -1);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autofree char *first = NULL;
        size_t n = 0;

        if (!*s->peer)
                return bad(error,
                           _("vpn.data '%s' needs '%s': the first peer goes in '%s', further "
                             "ones in '%s'"),
                           NM_SHADOWMESH_KEY_PEERS, NM_SHADOWMESH_KEY_PEER,
                           NM_SHADOWMESH_KEY_PEER, NM_SHADOWMESH_KEY_PEERS);
        first = nm_shadowmesh_peer_identity(s->peer_host, s->peer_port);
        g_hash_table_add(seen, g_steal_pointer(&first));
        for (char **p = parts; *p; p++)
                n += **p != '\0';
        if (n > PEERS_MAX)
                return bad(error, _("vpn.data '%s': %zu entries, at most %d"),
                           NM_SHADOWMESH_KEY_PEERS, n, PEERS_MAX);
        s->peers = g_new0(char *, n + 1);
        s->peers_public_key = g_new0(char *, n + 1);
        for (char **p = parts; *p; p++) {
                g_autofree char *address = NULL, *host = NULL, *id = NULL;
                const char *eq, *key = NULL, *why = NULL;
                uint16_t port;

                if (!**p)
                        continue;
                eq = strchr(*p, '=');
                address = eq ? g_strndup(*p, (size_t) (eq - *p)) : g_strdup(*p);
                key = eq ? eq + 1 : NULL;
                if (!*address)
                        return bad(error, _("vpn.data '%s': '%s': the address is missing "
                                            "(host[:port][=PUBLICKEY])"),
                                   NM_SHADOWMESH_KEY_PEERS, *p);
                if (!parse_host_port(address, NM_SHADOWMESH_DEFAULT_PORT, &host, &port, &why))
                        return bad(error, _("vpn.data '%s': '%s': %s"), NM_SHADOWMESH_KEY_PEERS,
                                   *p, why);
                if (key && (strlen(key) != 44 || !key32_ok(key, true)))
                        return bad(error,
                                   _("vpn.data '%s': '%s': '%s' is not a public key (44 "
                                     "base64 characters, as 'shadowmeshd pubkey' prints it)"),
                                   NM_SHADOWMESH_KEY_PEERS, *p, key);
                if (s->identity && !key)
                        return bad(error,
                                   _("vpn.data '%s': '%s': identity mode needs the peer's "
                                     "public key (host[:port]=PUBLICKEY)"),
                                   NM_SHADOWMESH_KEY_PEERS, *p);
                if (s->identity && g_strcmp0(key, s->peer_public_key) == 0)
                        return bad(error,
                                   _("vpn.data '%s': '%s': the same public key as '%s'"),
                                   NM_SHADOWMESH_KEY_PEERS, *p,
                                   NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY);
                for (size_t k = 0; s->identity && k < s->n_peers; k++)
                        if (strcmp(key, s->peers_public_key[k]) == 0)
                                return bad(error,
                                           _("vpn.data '%s': '%s': the same public key as "
                                             "entry '%s'"),
                                           NM_SHADOWMESH_KEY_PEERS, *p, s->peers[k]);
                id = nm_shadowmesh_peer_identity(host, port);
                if (!g_hash_table_add(seen, g_steal_pointer(&id)))
                        return bad(error,
                                   _("vpn.data '%s': '%s': this address is already a peer of "
                                     "the connection"),
                                   NM_SHADOWMESH_KEY_PEERS, *p);
                s->peers[s->n_peers] = g_steal_pointer(&address);
                s->peers_public_key[s->n_peers] = s->identity ? g_strdup(key) : NULL;
                s->n_peers++;
        }
        return true;
}

static bool parse_tap_device(struct settings *s, const char *value, GError **error) {
        size_t n = strlen(value);

        if (n > 15 || strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
                return bad(error,
                           _("vpn.data '%s': '%s' is not a valid interface name (at most "
                             "15 characters)"),
                           NM_SHADOWMESH_KEY_TAP_DEVICE, value);
        for (const char *p = value; *p; p++)
                if (!g_ascii_isgraph(*p) || *p == '/' || *p == ':')
                        return bad(error,
                                   _("vpn.data '%s': '%s' is not a valid interface name "
                                     "(no '/', ':' or spaces)"),
                                   NM_SHADOWMESH_KEY_TAP_DEVICE, value);
        memcpy(s->tap_device, value, n + 1);
        return true;
}

static bool parse_server(NMSettingVpn *s_vpn, const char *key, char **ret, GError **error) {
        const char *v = item(s_vpn, key), *why = NULL;
        g_autofree char *host = NULL;
        uint16_t port;

        if (!v)
                return true;
        if (!parse_host_port(v, 1, &host, &port, &why))
                return bad(error, _("vpn.data '%s': '%s': %s"), key, v, why);
        *ret = g_strdup(v);
        return true;
}

bool settings_secret_required(const char *mode, const char *secret_name, const char *flags_value) {
        bool identity = g_strcmp0(mode, NM_SHADOWMESH_MODE_IDENTITY) == 0;
        unsigned long flags = 0;

        if (g_strcmp0(secret_name, NM_SHADOWMESH_SECRET_PRIVATE_KEY) == 0)
                return identity;
        if (g_strcmp0(secret_name, NM_SHADOWMESH_SECRET_KEY) != 0)
                return false;
        if (!identity)
                return true;
        /* The optional psk of identity mode: only when the user said one exists elsewhere. */
        if (!flags_value || !parse_uint(flags_value, 0, 0xffff, &flags))
                return false;
        return !(flags & NM_SETTING_SECRET_FLAG_NOT_REQUIRED) &&
               (flags & (NM_SETTING_SECRET_FLAG_AGENT_OWNED | NM_SETTING_SECRET_FLAG_NOT_SAVED));
}

bool settings_need_secrets(NMConnection *connection) {
        NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
        const char *mode, *names[] = {NM_SHADOWMESH_SECRET_KEY, NM_SHADOWMESH_SECRET_PRIVATE_KEY};
        const char *flag_keys[] = {NM_SHADOWMESH_SECRET_KEY_FLAGS,
                                   NM_SHADOWMESH_SECRET_PRIVATE_KEY_FLAGS};

        if (!s_vpn)
                return false;
        mode = item(s_vpn, NM_SHADOWMESH_KEY_MODE);
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                if (settings_secret_required(mode, names[i], item(s_vpn, flag_keys[i])) &&
                    !secret(s_vpn, names[i]))
                        return true;
        return false;
}

bool settings_check_secrets(NMConnection *connection, GError **error) {
        NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
        const char *v;

        if (!s_vpn)
                return true; /* settings_from_connection() says so */
        v = secret(s_vpn, NM_SHADOWMESH_SECRET_KEY);
        if (v && !check_shared_key(v, error))
                return false;
        v = secret(s_vpn, NM_SHADOWMESH_SECRET_PRIVATE_KEY);
        if (v && g_strcmp0(item(s_vpn, NM_SHADOWMESH_KEY_MODE), NM_SHADOWMESH_MODE_IDENTITY) == 0 &&
            !check_private_key(v, error))
                return false;
        return true;
}

static void derive_names(struct settings *s) {
        char tail[16];

        /* "sm-" / "nm-" + the first 8 letters or digits of the UUID. */
        nm_shadowmesh_default_tap_device(s->uuid, tail, sizeof(tail));
        if (!s->tap_device[0])
                g_strlcpy(s->tap_device, tail, sizeof(s->tap_device));
        g_snprintf(s->instance, sizeof(s->instance), "nm-%s",
                   tail + strlen(NM_SHADOWMESH_TAP_DEVICE_PREFIX));
}

struct settings *settings_from_connection(NMConnection *connection, GError **error) {
        _cleanup_settings_ struct settings *s = NULL;
        NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
        const char *v, *why = NULL, *mode;
        unsigned long n;

        if (!s_vpn) {
                g_set_error_literal(error, NM_VPN_PLUGIN_ERROR,
                                    NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                                    _("The connection has no VPN setting"));
                return NULL;
        }
        s = g_new0(struct settings, 1);
        s->uuid = g_strdup(nm_connection_get_uuid(connection));
        s->id = g_strdup(nm_connection_get_id(connection));
        s->vpn_timeout_sec = (uint32_t) MAX(nm_setting_vpn_get_timeout(s_vpn), 0);
        s->listen_port = NM_SHADOWMESH_DEFAULT_PORT;
        s->mtu = NM_SHADOWMESH_DEFAULT_MTU;
        s->relay = -1;
        if (!s->uuid || !*s->uuid) {
                g_set_error_literal(error, NM_VPN_PLUGIN_ERROR,
                                    NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                                    _("The connection has no UUID"));
                return NULL;
        }

        /* Without a peer the relay introduces it (checked once relay-server is read). */
        v = item(s_vpn, NM_SHADOWMESH_KEY_PEER);
        if (v && !parse_host_port(v, NM_SHADOWMESH_DEFAULT_PORT, &s->peer_host, &s->peer_port,
                                  &why)) {
                bad(error, _("vpn.data '%s': '%s': %s"), NM_SHADOWMESH_KEY_PEER, v, why);
                return NULL;
        }
        s->peer = g_strdup(v ? v : "");

        v = item(s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP);
        if (v && !parse_local_ip(s, v, error))
                return NULL;

        v = item(s_vpn, NM_SHADOWMESH_KEY_MTU);
        if (v) {
                if (!parse_uint(v, MTU_MIN, MTU_MAX, &n)) {
                        bad(error, _("vpn.data '%s': '%s' is not a number from %d to %d"),
                            NM_SHADOWMESH_KEY_MTU, v, MTU_MIN, MTU_MAX);
                        return NULL;
                }
                s->mtu = (uint32_t) n;
        }

        v = item(s_vpn, NM_SHADOWMESH_KEY_LISTEN_PORT);
        if (v) {
                if (!parse_uint(v, 1, 65535, &n)) {
                        bad(error, _("vpn.data '%s': '%s' is not a port number (1..65535)"),
                            NM_SHADOWMESH_KEY_LISTEN_PORT, v);
                        return NULL;
                }
                s->listen_port = (uint16_t) n;
        }

        v = item(s_vpn, NM_SHADOWMESH_KEY_TAP_DEVICE);
        if (v && !parse_tap_device(s, v, error))
                return NULL;
        derive_names(s);

        mode = item(s_vpn, NM_SHADOWMESH_KEY_MODE);
        if (mode && strcmp(mode, NM_SHADOWMESH_MODE_SHARED_KEY) != 0 &&
            strcmp(mode, NM_SHADOWMESH_MODE_IDENTITY) != 0) {
                bad(error, _("vpn.data '%s': '%s' is not a mode (use '%s' or '%s')"),
                    NM_SHADOWMESH_KEY_MODE, mode, NM_SHADOWMESH_MODE_SHARED_KEY,
                    NM_SHADOWMESH_MODE_IDENTITY);
                return NULL;
        }
        s->identity = g_strcmp0(mode, NM_SHADOWMESH_MODE_IDENTITY) == 0;

        v = secret(s_vpn, NM_SHADOWMESH_SECRET_KEY);
        if (v) {
                if (!check_shared_key(v, error))
                        return NULL;
                s->key = g_strdup(v);
        } else if (!s->identity) {
                bad(error,
                    _("vpn.secrets '%s' is missing: shared-key mode needs the 64-hex-digit "
                      "shared key"),
                    NM_SHADOWMESH_SECRET_KEY);
                return NULL;
        }

        if (s->identity) {
                v = secret(s_vpn, NM_SHADOWMESH_SECRET_PRIVATE_KEY);
                if (!v) {
                        bad(error,
                            _("vpn.secrets '%s' is missing: identity mode needs this "
                              "node's private key (shadowmeshd genkey)"),
                            NM_SHADOWMESH_SECRET_PRIVATE_KEY);
                        return NULL;
                }
                if (!check_private_key(v, error))
                        return NULL;
                s->private_key = g_strdup(v);

                v = item(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY);
                if (!v) {
                        bad(error,
                            _("vpn.data '%s' is missing: identity mode needs the peer's "
                              "public key"),
                            NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY);
                        return NULL;
                }
                if (strlen(v) != 44 || !key32_ok(v, true)) {
                        bad(error,
                            _("vpn.data '%s': '%s' is not a public key (44 base64 "
                              "characters, as 'shadowmeshd pubkey' prints it)"),
                            NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY, v);
                        return NULL;
                }
                s->peer_public_key = g_strdup(v);
        }

        v = item(s_vpn, NM_SHADOWMESH_KEY_PEERS);
        if (v && !parse_peers(s, v, error))
                return NULL;

        if (!parse_server(s_vpn, NM_SHADOWMESH_KEY_RELAY_SERVER, &s->relay_server, error) ||
            !parse_server(s_vpn, NM_SHADOWMESH_KEY_STUN_SERVER, &s->stun_server, error))
                return NULL;
        v = item(s_vpn, NM_SHADOWMESH_KEY_RELAY);
        if (v) {
                if (strcmp(v, NM_SHADOWMESH_YES) == 0)
                        s->relay = 1;
                else if (strcmp(v, NM_SHADOWMESH_NO) == 0)
                        s->relay = 0;
                else {
                        bad(error, _("vpn.data '%s': '%s' must be '%s' or '%s'"),
                            NM_SHADOWMESH_KEY_RELAY, v, NM_SHADOWMESH_YES, NM_SHADOWMESH_NO);
                        return NULL;
                }
                if (s->relay == 1 && !s->relay_server) {
                        bad(error, _("vpn.data '%s' is '%s' but '%s' is not set"),
                            NM_SHADOWMESH_KEY_RELAY, NM_SHADOWMESH_YES,
                            NM_SHADOWMESH_KEY_RELAY_SERVER);
                        return NULL;
                }
        }
        if (!*s->peer && (!s->relay_server || s->relay == 0)) {
                bad(error, _("vpn.data '%s' is missing: set the peer's address as host[:port], "
                             "or '%s' so that the relay introduces the peer"),
                    NM_SHADOWMESH_KEY_PEER, NM_SHADOWMESH_KEY_RELAY_SERVER);
                return NULL;
        }
        return g_steal_pointer(&s);
}

/* A YAML double-quoted scalar. Values are checked before (no control characters), but quote
 * and backslash can occur in paths. */
static void yaml_quoted(GString *out, const char *v) {
        g_string_append_c(out, '"');
        for (const char *p = v; *p; p++) {
                if (*p == '"' || *p == '\\')
                        g_string_append_c(out, '\\');
                g_string_append_c(out, *p);
        }
        g_string_append_c(out, '"');
}

static void yaml_key(GString *out, const char *key, const char *value) {
        g_string_append_printf(out, "  %s: ", key);
        yaml_quoted(out, value);
        g_string_append_c(out, '\n');
}

char *settings_to_yaml(const struct settings *s, bool debug, const char *key_file,
                       const char *private_key_file) {
        GString *y = g_string_new(NULL);

        g_string_append_printf(y,
                               "# shadowmeshd configuration of NetworkManager connection %s,\n"
                               "# written by nm-shadowmesh-service and removed by it. The peer "
                               "is given\n# to the daemon's Connect method; NetworkManager sets "
                               "the addresses.\n",
                               s->uuid);
        g_string_append(y, "daemon:\n");
        yaml_key(y, "log_level", debug ? "debug" : "info");
        g_string_append(y, "network:\n");
        yaml_key(y, "tap_device", s->tap_device);
        g_string_append_printf(y, "  mtu: %u\n  listen_port: %u\n", s->mtu, s->listen_port);
        if (key_file) {
                g_string_append(y, "encryption:\n");
                yaml_key(y, "key_file", key_file);
        }
        if (private_key_file) {
                g_string_append(y, "identity:\n");
                yaml_key(y, "private_key_file", private_key_file);
                g_string_append(y, "peer:\n");
                yaml_key(y, "public_key", s->peer_public_key);
        }
        if (s->stun_server) {
                g_string_append(y, "nat:\n  enabled: true\n");
                yaml_key(y, "stun_server", s->stun_server);
        }
        if (s->relay_server || s->relay >= 0) {
                g_string_append(y, "relay:\n");
                if (s->relay_server)
                        yaml_key(y, "server", s->relay_server);
                if (s->relay >= 0)
                        g_string_append_printf(y, "  enabled: %s\n", s->relay ? "true" : "false");
        }
        return g_string_free(y, false);
}

static int write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, buf, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Mode 0600 whatever the umask, created here and nowhere else (O_EXCL: no file planted in
 * advance, O_NOFOLLOW: no symlink). */
static int write_private_file(const char *path, const char *a, const char *b) {
        int fd, r;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        r = fchmod(fd, 0600) < 0 ? -errno : 0;
        if (r == 0)
                r = write_all(fd, a, strlen(a));
        if (r == 0 && b)
                r = write_all(fd, b, strlen(b));
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0)
                settings_wipe_file(path);
        return r;
}

bool settings_write_files(const struct settings *s, bool debug, const char *dir,
                          char **ret_config_path, GError **error) {
        g_autofree char *config = g_build_filename(dir, "config.yaml", NULL);
        g_autofree char *key_file = g_build_filename(dir, "shared.key", NULL);
        g_autofree char *private_key_file = g_build_filename(dir, "identity.key", NULL);
        g_autofree char *yaml = NULL;
        const char *failed = NULL;
        int r;

        if (s->key && (r = write_private_file(key_file, s->key, "\n")) < 0) {
                failed = key_file;
                goto fail;
        }
        if (s->identity && (r = write_private_file(private_key_file, s->private_key, "\n")) < 0) {
                failed = private_key_file;
                goto fail;
        }
        yaml = settings_to_yaml(s, debug, s->key ? key_file : NULL,
                                s->identity ? private_key_file : NULL);
        if ((r = write_private_file(config, yaml, NULL)) < 0) {
                failed = config;
                goto fail;
        }
        *ret_config_path = g_steal_pointer(&config);
        return true;

fail:
        settings_wipe_file(key_file);
        settings_wipe_file(private_key_file);
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                    _("Cannot write %s: %s"), failed, g_strerror(-r));
        return false;
}

int settings_wipe_file(const char *path) {
        static const char zeros[4096];
        struct stat st;
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                for (off_t left = st.st_size; left > 0 && r == 0;) {
                        size_t n = (size_t) MIN(left, (off_t) sizeof(zeros));
                        r = write_all(fd, zeros, n);
                        left -= (off_t) n;
                }
                if (r == 0)
                        (void) fdatasync(fd);
        }
        close(fd);
        if (unlink(path) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

int settings_wipe_dir(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                g_autofree char *path = NULL;
                int k;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                path = g_build_filename(dir, de->d_name, NULL);
                k = settings_wipe_file(path);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (rmdir(dir) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

char *settings_bus_label(const char *name) {
        GString *out = g_string_new(NULL);

        if (!*name)
                g_string_append_c(out, '_');
        for (const char *p = name; *p; p++) {
                if (g_ascii_isalpha(*p) || (g_ascii_isdigit(*p) && p != name))
                        g_string_append_c(out, *p);
                else
                        g_string_append_printf(out, "_%02x", (unsigned char) *p);
        }
        return g_string_free(out, false);
}

int settings_parse_endpoint(const char *endpoint, struct in6_addr *ret_addr6,
                            struct in_addr *ret_addr4) {
        g_autofree char *host = NULL;
        const char *why = NULL;
        uint16_t port;
        struct in6_addr a6;
        struct in_addr a4;

        if (!endpoint || !*endpoint || !parse_host_port(endpoint, 1, &host, &port, &why))
                return 0;
        if (inet_pton(AF_INET, host, &a4) == 1) {
                *ret_addr4 = a4;
                return AF_INET;
        }
        if (inet_pton(AF_INET6, host, &a6) != 1)
                return 0;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
                memcpy(&ret_addr4->s_addr, &a6.s6_addr[12], 4);
                return AF_INET;
        }
        *ret_addr6 = a6;
        return AF_INET6;
}
