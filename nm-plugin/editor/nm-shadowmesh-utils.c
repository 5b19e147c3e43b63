/* SPDX-License-Identifier: MIT */
/* Value checks shared by the import/export code and the editors (see nm-shadowmesh-utils.h). */
/* The core headers first: GLib then replaces util.h's MIN/MAX with its own (same meaning). */
#include "config.h"
#include "noise.h"

#include "nm-shadowmesh-peer-id.h"
#include "nm-shadowmesh-utils.h"

#include <arpa/inet.h>
#include <glib/gi18n-lib.h>
#include <net/if.h>
#include <sodium.h>

void nm_shadowmesh_i18n_init(void) {
        static gsize done;

        if (g_once_init_enter(&done)) {
                bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
                bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
                g_once_init_leave(&done, 1);
        }
}

static gboolean invalid(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean invalid(GError **error, const char *fmt, ...) {
        va_list ap;

        if (error) {
                va_start(ap, fmt);
                *error = g_error_new_valist(NM_CONNECTION_ERROR,
                                            NM_CONNECTION_ERROR_INVALID_PROPERTY, fmt, ap);
                va_end(ap);
        }
        return FALSE;
}

gboolean nm_shadowmesh_check_host_port(const char *value, const char *field, GError **error) {
        char *host = NULL;
        uint16_t port;

        if (!value || !*value)
                return invalid(error, _("%s: enter a host name or an address"), field);
        if (config_parse_host_port(value, NM_SHADOWMESH_DEFAULT_PORT, &host, &port) < 0)
                return invalid(error,
                               _("%s: “%s” is not a host[:port] (an IPv6 address with a port is "
                                 "written [address]:port)"),
                               field, value);
        free(host);
        return TRUE;
}

char **nm_shadowmesh_split_local_ip(const char *value) {
        g_auto(GStrv) parts = NULL;
        GPtrArray *out = g_ptr_array_new();

        parts = g_strsplit_set(value ? value : "", ", \t\n", -1);
        for (char **p = parts; *p; p++)
                if (**p)
                        g_ptr_array_add(out, g_strdup(*p));
        g_ptr_array_add(out, NULL);
        return (char **) g_ptr_array_free(out, FALSE);
}

char **nm_shadowmesh_split_peers(const char *value) {
        g_auto(GStrv) parts = g_strsplit_set(value ? value : "", NM_SHADOWMESH_PEERS_SEPARATORS, -1);
        GPtrArray *out = g_ptr_array_new();

        for (char **p = parts; *p; p++)
                if (**p)
                        g_ptr_array_add(out, g_strdup(*p));
        g_ptr_array_add(out, NULL);
        return (char **) g_ptr_array_free(out, FALSE);
}

gboolean nm_shadowmesh_check_peers(const char *value, const char *peer, const char *peer_public_key,
                                   gboolean identity, GError **error) {
        g_auto(GStrv) entries = nm_shadowmesh_split_peers(value);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        /* identity mode: each entry's public key (base64) -> the entry */
        g_autoptr(GHashTable) keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autofree char *peer_id = NULL, *peer_key = NULL;
        char *peer_host = NULL;
        uint16_t peer_port;
        uint8_t k[32];

        /* The first peer's node, when "peer" is a valid address (its own check names it
         * otherwise). */
        if (peer && *peer &&
            config_parse_host_port(peer, NM_SHADOWMESH_DEFAULT_PORT, &peer_host, &peer_port) >= 0) {
                peer_id = nm_shadowmesh_peer_identity(peer_host, peer_port);
                free(peer_host);
        }
        /* Its public key likewise, when valid. */
        if (identity && peer_public_key && *peer_public_key &&
            nm_shadowmesh_parse_key(peer_public_key, "", k, NULL))
                peer_key = nm_shadowmesh_key_to_base64(k);
        for (char **p = entries; *p; p++) {
                g_autofree char *address = NULL, *id = NULL;
                const char *eq = strchr(*p, '=');
                char *host = NULL;
                uint16_t port;

                address = eq ? g_strndup(*p, (size_t) (eq - *p)) : g_strdup(*p);
                if (!*address ||
                    config_parse_host_port(address, NM_SHADOWMESH_DEFAULT_PORT, &host, &port) < 0)
                        return invalid(error,
                                       _("Further peers: “%s” is not host[:port][=PUBLICKEY] "
                                         "(entries are separated by spaces or “;”)"),
                                       *p);
                id = nm_shadowmesh_peer_identity(host, port);
                free(host);
                if (peer_id && strcmp(id, peer_id) == 0)
                        return invalid(error,
                                       _("Further peers: “%s” is the node of Peer (“%s”) again; "
                                         "list only the other nodes here"),
                                       *p, peer);
                if (!g_hash_table_add(seen, g_steal_pointer(&id)))
                        return invalid(error, _("Further peers: “%s” is listed twice"), *p);
                if (identity && !eq)
                        return invalid(error,
                                       _("Further peers: “%s” needs the peer's public key in "
                                         "identity mode (host[:port]=PUBLICKEY)"),
                                       *p);
                if (eq) {
                        g_autofree char *field =
                                g_strdup_printf(_("Further peers: public key of “%s”"), address);

                        if (strlen(eq + 1) != 44)
                                return invalid(error,
                                               _("%s: expected a 44-character base64 key, as "
                                                 "“shadowmeshd pubkey” prints it"),
                                               field);
                        if (!nm_shadowmesh_parse_key(eq + 1, field, k, error))
                                return FALSE;
                }
                if (identity) {
                        g_autofree char *key = nm_shadowmesh_key_to_base64(k);
                        const char *other = g_hash_table_lookup(keys, key);

                        if (peer_key && strcmp(key, peer_key) == 0)
                                return invalid(error,
                                               _("Further peers: “%s” has the same public key "
                                                 "as Peer (Peer public key)"),
                                               *p);
                        if (other)
                                return invalid(error,
                                               _("Further peers: “%s” has the same public key as "
                                                 "“%s”"),
                                               *p, other);
                        g_hash_table_insert(keys, g_steal_pointer(&key), *p);
                }
        }
        return TRUE;
}

/* One "address[/prefix]" item; fills family, address bytes and prefix. */
static gboolean parse_cidr(const char *s, int *ret_family, uint8_t ret_addr[16],
                           guint *ret_prefix) {
        g_autofree char *addr = NULL;
        const char *slash = strchr(s, '/');
        guint max;
        guint64 prefix;
        char *end = NULL;

        addr = g_strndup(s, slash ? (gsize) (slash - s) : strlen(s));
        memset(ret_addr, 0, 16);
        if (inet_pton(AF_INET, addr, ret_addr) == 1) {
                *ret_family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, addr, ret_addr) == 1) {
                *ret_family = AF_INET6;
                max = 128;
        } else
                return FALSE;
        *ret_prefix = max;
        if (slash) {
                if (!g_ascii_isdigit(slash[1]))
                        return FALSE;
                prefix = g_ascii_strtoull(slash + 1, &end, 10);
                if (*end || prefix > max)
                        return FALSE;
                *ret_prefix = (guint) prefix;
        }
        return TRUE;
}

gboolean nm_shadowmesh_check_local_ip(const char *value, GError **error) {
        g_auto(GStrv) items = nm_shadowmesh_split_local_ip(value);
        gboolean have4 = FALSE, have6 = FALSE;

        for (char **p = items; *p; p++) {
                uint8_t a[16];
                int family;
                guint prefix;

                if (!parse_cidr(*p, &family, a, &prefix) || prefix == 0)
                        return invalid(error,
                                       _("Local addresses: “%s” is not an address in CIDR "
                                         "notation such as 10.0.0.1/24 or fd00::1/64"),
                                       *p);
                /* NetworkManager takes one address of each family from a VPN service. */
                if (family == AF_INET ? have4 : have6)
                        return invalid(error,
                                       _("Local addresses: one IPv4 and one IPv6 address at most; "
                                         "add more on the IPv4 and IPv6 tabs"));
                if (family == AF_INET)
                        have4 = TRUE;
                else
                        have6 = TRUE;
        }
        return TRUE;
}

gboolean nm_shadowmesh_check_number(const char *value, guint min, guint max, const char *field,
                                    GError **error) {
        guint64 v;
        char *end = NULL;

        if (!value || !g_ascii_isdigit(value[0]))
                return invalid(error, _("%s: enter a number from %u to %u"), field, min, max);
        v = g_ascii_strtoull(value, &end, 10);
        if (*end || v < min || v > max)
                return invalid(error, _("%s: “%s” is not a number from %u to %u"), field, value,
                               min, max);
        return TRUE;
}

gboolean nm_shadowmesh_check_tap_device(const char *value, GError **error) {
        size_t len = value ? strlen(value) : 0;

        if (len == 0)
                return invalid(error, _("Interface name: must not be empty"));
        if (len >= IFNAMSIZ)
                return invalid(error, _("Interface name: “%s” is longer than %d characters"), value,
                               IFNAMSIZ - 1);
        if (g_str_equal(value, ".") || g_str_equal(value, ".."))
                return invalid(error, _("Interface name: “%s” is not allowed"), value);
        for (size_t i = 0; i < len; i++)
                if (value[i] == '/' || value[i] == ':' || g_ascii_isspace(value[i]) ||
                    (unsigned char) value[i] < 0x20 || (unsigned char) value[i] >= 0x7f)
                        return invalid(error,
                                       _("Interface name: “%s” may not contain “/”, “:”, spaces "
                                         "or special characters"),
                                       value);
        return TRUE;
}

gboolean nm_shadowmesh_parse_key(const char *value, const char *field, uint8_t ret[32],
                                 GError **error) {
        uint8_t k[32];

        if (!value || !*value)
                return invalid(error, _("%s: enter a key"), field);
        if (config_parse_key(value, k) < 0)
                return invalid(error,
                               _("%s: expected 64 hexadecimal digits or a 44-character base64 "
                                 "key"),
                               field);
        if (sodium_is_zero(k, sizeof(k))) {
                sodium_memzero(k, sizeof(k));
                return invalid(error, _("%s: a key of all zeros is not allowed"), field);
        }
        memcpy(ret, k, sizeof(k));
        sodium_memzero(k, sizeof(k));
        return TRUE;
}

char *nm_shadowmesh_key_to_hex(const uint8_t key[32]) {
        char *out = g_malloc(65);

        sodium_bin2hex(out, 65, key, 32);
        return out;
}

char *nm_shadowmesh_key_to_base64(const uint8_t key[32]) {
        char *out = g_malloc(45);

        config_format_key(key, out);
        return out;
}

char *nm_shadowmesh_public_key_of(const char *private_key) {
        uint8_t priv[32], pub[32];
        char *out = NULL;

        if (private_key && config_parse_key(private_key, priv) == 0 &&
            !sodium_is_zero(priv, sizeof(priv)) && noise_public_from_private(pub, priv) == 0)
                out = nm_shadowmesh_key_to_base64(pub);
        sodium_memzero(priv, sizeof(priv));
        return out;
}

char *nm_shadowmesh_generate_shared_key(void) {
        uint8_t k[32];
        char *out;

        if (sodium_init() < 0)
                return NULL;
        randombytes_buf(k, sizeof(k));
        out = nm_shadowmesh_key_to_hex(k);
        sodium_memzero(k, sizeof(k));
        return out;
}

char *nm_shadowmesh_generate_private_key(void) {
        uint8_t priv[32], pub[32];
        char *out;

        if (sodium_init() < 0)
                return NULL;
        noise_generate_keypair(priv, pub);
        out = nm_shadowmesh_key_to_base64(priv);
        sodium_memzero(priv, sizeof(priv));
        return out;
}

char *nm_shadowmesh_default_tap_for(NMConnection *connection) {
        char buf[IFNAMSIZ];
        const char *uuid = connection ? nm_connection_get_uuid(connection) : NULL;

        return g_strdup(nm_shadowmesh_default_tap_device(uuid, buf, sizeof(buf)));
}

void nm_shadowmesh_free_secret(char *s) {
        if (!s)
                return;
        sodium_memzero(s, strlen(s));
        g_free(s);
}
