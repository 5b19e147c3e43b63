/* SPDX-License-Identifier: MIT */
/*
 * A ShadowMesh VPN connection as the service needs it: vpn.data and vpn.secrets read, checked
 * and normalised (settings_from_connection), and the daemon's private files written from it
 * (settings_write_files). Pure: no D-Bus, no processes, no logging; errors are GErrors in
 * NM_VPN_PLUGIN_ERROR that name the offending key, so NetworkManager shows them as they are.
 */
#pragma once

#include <NetworkManager.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* NetworkManager takes one IPv4 and one IPv6 address from a VPN plugin (Ip4Config/Ip6Config have
 * a single "address"), so local-ip holds at most one of each. */
struct settings_address {
        bool set;
        union {
                struct in_addr in;
                struct in6_addr in6;
        } addr;
        uint8_t prefixlen;
};

struct settings {
        char *uuid;
        char *id;

        char *peer;      /* as given ("host[:port]"), passed to the daemon's Connect */
        char *peer_host; /* without brackets */
        uint16_t peer_port;

        char tap_device[16]; /* IFNAMSIZ */
        char instance[32];   /* shadowmeshd --instance NAME */
        uint32_t mtu;
        uint16_t listen_port;
        bool identity;
        char *peer_public_key; /* base64, identity mode */

        /* Further peers ("peers"), Connected after the first: each "host[:port]" as given, and
         * in identity mode its public key (base64; NULL in shared-key mode). */
        size_t n_peers;
        char **peers;
        char **peers_public_key;

        /* Secrets. Wiped by settings_free(). */
        char *key;         /* 64 hex digits; NULL in identity mode without a psk */
        char *private_key; /* identity mode */

        char *relay_server; /* host[:port] or NULL */
        char *stun_server;
        int relay; /* -1 not given, 0 "no", 1 "yes" */

        struct settings_address ip4, ip6;

        uint32_t vpn_timeout_sec; /* vpn.timeout, 0 when unset */
};

struct settings *settings_free(struct settings *s);
static inline void settings_freep(struct settings **s) {
        if (*s)
                *s = settings_free(*s);
}
#define _cleanup_settings_ __attribute__((cleanup(settings_freep)))

/* Reads and checks the connection. Errors: NM_VPN_PLUGIN_ERROR_BAD_ARGUMENTS naming the key
 * (translated message), or NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION without a vpn setting. */
struct settings *settings_from_connection(NMConnection *connection, GError **error);

/* The secrets present are well-formed: the key 64 hex digits (the message says how many there
 * were), the private key (identity mode) 44 base64 characters. Missing ones are not its concern.
 * Errors as settings_from_connection()'s, which checks the same. */
bool settings_check_secrets(NMConnection *connection, GError **error);

/* NeedSecrets: TRUE when a secret the mode requires is missing from the connection (it then
 * must come from an agent). Other problems are left to Connect, which names them. */
bool settings_need_secrets(NMConnection *connection);

/* Whether a connection needs the secret: shared-key mode (mode NULL or "shared-key") the key;
 * identity mode the private key, and the optional pre-shared key only when its flags (the
 * "key-flags" value, flags_value, NULL when absent) say there is one that NetworkManager does not
 * store (agent-owned or not saved). Shared by NeedSecrets and the auth dialog. */
bool settings_secret_required(const char *mode, const char *secret, const char *flags_value);

/* Daemon's YAML (no secrets in it: they go in key files beside it). key_file and
 * private_key_file are the paths the YAML names; NULL when there is no such file. */
char *settings_to_yaml(const struct settings *s, bool debug, const char *key_file,
                       const char *private_key_file);

/* Writes config.yaml, and shared.key / identity.key when there are such secrets, into dir (which
 * must exist, mode 0700), each mode 0600, created exclusively (O_EXCL, O_NOFOLLOW). Returns the
 * config path in *ret_config_path. On error nothing of it is left behind. */
bool settings_write_files(const struct settings *s, bool debug, const char *dir,
                          char **ret_config_path, GError **error);

/* Overwrites a file with zeros (its current size), syncs and unlinks it. Missing is fine.
 * Returns 0 or -errno. */
int settings_wipe_file(const char *path);

/* Removes dir after wiping every regular file in it (not recursive: the service makes no
 * subdirectories). Missing is fine. Returns 0 or -errno. */
int settings_wipe_dir(const char *dir);

/* "nm-3f2a9c1e" -> "nm_2d3f2a9c1e": one path element escaped as sd_bus_path_encode() does (the
 * daemon's bus name and object path use it). */
char *settings_bus_label(const char *name);

/* "ip:port" / "[ip6]:port" (the daemon's Endpoint property) -> the address, IPv4-mapped IPv6
 * turned back into IPv4. Returns AF_INET, AF_INET6, or 0 when it is not an address. */
int settings_parse_endpoint(const char *endpoint, struct in6_addr *ret_addr6,
                            struct in_addr *ret_addr4);
