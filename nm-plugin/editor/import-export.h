/* SPDX-License-Identifier: MIT */
/*
 * Import and export of the daemon's YAML configuration (shadowmesh.yaml(5)) as a NetworkManager
 * connection. Import parses with the daemon's own parser (config_parse_string), so a file the
 * daemon accepts imports and every error names file:line:column and the key. Key files named
 * in the file are read relative to its directory, and their keys become the connection's
 * secrets.
 *
 * What has no place in a connection is left out on import: daemon.log_level,
 * daemon.control_group and the host part of daemon.listen_address (the port is kept).
 */
#pragma once

#include <NetworkManager.h>

/* A new connection (id: the file name without .yaml/.yml) or NULL with error set. */
NMConnection *nm_shadowmesh_import(const char *path, GError **error);

/*
 * YAML text for connection. Secrets present in the connection are written inline
 * (encryption.key) or, for the identity private key, to the file private_key_file (relative to
 * the YAML file); ret_private_key receives the base64 key to write there, or NULL when the
 * connection does not hold it (the YAML still names the file, with a comment).
 */
char *nm_shadowmesh_export_to_string(NMConnection *connection, const char *private_key_file,
                                     const char *shared_key_file, char **ret_private_key,
                                     GError **error);

/* Writes path (mode 0600 when it holds a key) and, in identity mode, the private key beside it
 * as "<name>.key" (mode 0600). */
gboolean nm_shadowmesh_export(const char *path, NMConnection *connection, GError **error);
