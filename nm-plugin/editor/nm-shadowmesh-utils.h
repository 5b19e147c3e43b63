/* SPDX-License-Identifier: MIT */
/*
 * Checks and conversions of a ShadowMesh connection's vpn.data values, shared by the editor
 * plugin (import/export, no GTK) and the GTK 3 / GTK 4 editors, so that a value the editor
 * accepts is one the import writes and the daemon's configuration parser takes.
 *
 * Every check returns TRUE, or FALSE with a translated GError (NM_CONNECTION_ERROR,
 * NM_CONNECTION_ERROR_INVALID_PROPERTY) that names the field as the editor labels it.
 */
#pragma once

#include <NetworkManager.h>
#include <stdint.h>

#include "nm-shadowmesh-keys.h"

/* Binds the "shadowmesh" text domain to LOCALEDIR (UTF-8) once per process. */
void nm_shadowmesh_i18n_init(void);

/* "host[:port]": a host name, an IPv4 address or "[IPv6]:port" (a bare IPv6 has no port).
 * field is the label shown in the message (translated by the caller). */
gboolean nm_shadowmesh_check_host_port(const char *value, const char *field, GError **error);

/* Comma- (or space-) separated addresses in CIDR notation: at most one IPv4 and one IPv6
 * (NetworkManager takes one of each from a VPN service; more go in ipv4/ipv6.addresses), prefix
 * length at least 1. An empty string is valid (no address). */
gboolean nm_shadowmesh_check_local_ip(const char *value, GError **error);

/* Splits a local-ip value into its CIDR items (NULL-terminated; never NULL). */
char **nm_shadowmesh_split_local_ip(const char *value);

/* The "peers" value: "host[:port][=PUBLICKEY]" entries separated by spaces or ';', each address
 * once and none the node of peer (the connection's "peer"; NULL or "" for none); in identity
 * mode each with a valid public key, each key once and none peer_public_key (NULL or "" for
 * none). An empty string is valid (no further peer). The service checks the same. */
gboolean nm_shadowmesh_check_peers(const char *value, const char *peer, const char *peer_public_key,
                                   gboolean identity, GError **error);

/* Splits a "peers" value into its entries (NULL-terminated; never NULL). */
char **nm_shadowmesh_split_peers(const char *value);

/* Decimal number in [min, max]. */
gboolean nm_shadowmesh_check_number(const char *value, guint min, guint max, const char *field,
                                    GError **error);

/* An interface name the kernel accepts: 1..15 characters, no '/', ':' or whitespace. */
gboolean nm_shadowmesh_check_tap_device(const char *value, GError **error);

/* A 32-byte key given as 64 hex digits or 44 characters of base64 (as `wg genpsk` and
 * `shadowmeshd genkey` print); an all-zero key is refused. On success ret (32 bytes) holds it. */
gboolean nm_shadowmesh_parse_key(const char *value, const char *field, uint8_t ret[32],
                                 GError **error);

/* 32 bytes -> 64 lower-case hex digits / 44 characters of base64 (newly allocated). */
char *nm_shadowmesh_key_to_hex(const uint8_t key[32]);
char *nm_shadowmesh_key_to_base64(const uint8_t key[32]);

/* The X25519 public key (base64) of a private key given as base64 or hex; NULL if invalid. */
char *nm_shadowmesh_public_key_of(const char *private_key);

/* New random keys: a shared key as 64 hex digits; a clamped X25519 private key in base64. */
char *nm_shadowmesh_generate_shared_key(void);
char *nm_shadowmesh_generate_private_key(void);

/* The TAP name used when tap-device is empty: "sm-" and 8 characters of the UUID. */
char *nm_shadowmesh_default_tap_for(NMConnection *connection);

/* g_free for strings that held a key: wipes them first. */
void nm_shadowmesh_free_secret(char *s);
static inline void nm_shadowmesh_free_secretp(char **s) {
        nm_shadowmesh_free_secret(*s);
        *s = NULL;
}
#define _cleanup_secret_ __attribute__((cleanup(nm_shadowmesh_free_secretp)))
