/* SPDX-License-Identifier: MIT */
/*
 * The daemon's YAML configuration (libyaml). The Go prototype's daemon.yaml loads unchanged:
 *
 *   daemon:     listen_address (loopback "host:port" of the HTTP control API), log_level,
 *               control_group
 *   network:    tap_device, local_ip (CIDR, or a list of CIDRs, IPv4 and IPv6), mtu,
 *               listen_port (the tunnel's UDP port), bind_address, offload (yes/no),
 *               threads (1..8 or auto), rx_workers (0..8 or auto)
 *   encryption: key (64 hex digits, the shared key), key_file (a file holding them)
 *   identity:   private_key_file (base64 X25519 key as `shadowmeshd genkey` prints)
 *   peer:       address ("host[:port]", empty: wait for the peer), public_key (base64), name
 *   peers:      a list of mappings with peer:'s keys; peer: is a list of one. In identity mode
 *               the entry holding this node's own public key is dropped, so one list can be
 *               the same file on every node.
 *   nat:        enabled, stun_server ("host[:port]")
 *   relay:      enabled, server ("host[:port]")
 *
 * Parsing is pure (config_parse_string); config_load adds the file and key files. Every error
 * names file:line:column and the key, and an unknown key suggests the nearest known one.
 */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "messages.h"

/* network.rx_workers: auto (picked from the CPUs when the device starts). */
#define CONFIG_RX_WORKERS_AUTO UINT32_MAX

enum {
        CONFIG_MAX_ADDRESSES = 16,
        /* network.threads: the data path's queues (datapath.h, DATAPATH_MAX_QUEUES). */
        CONFIG_MAX_THREADS = 8,
        /* Entries of peers:. The mesh's scale goal is 1,000 peers; the bound also keeps the
         * duplicate checks (each entry against the ones before it) small. */
        CONFIG_MAX_PEERS = 1024,
        /* peers[].name: letters, digits, '-', '_' and '.', starting with a letter or digit. */
        CONFIG_PEER_NAME_MAX = 32,
};
_Static_assert((long) CONFIG_MAX_PEERS <= (long) MAX_PEERS,
               "a configuration lists more peers than a device holds");

/* One entry of peers: (or the one of peer:). */
struct config_peer {
        char *host; /* address's host, without brackets; NULL: wait for this peer to connect */
        uint16_t port;
        char *name; /* NULL when not given */
        bool has_public_key;
        uint8_t public_key[NOISE_PUBLIC_KEY_LEN];
        size_t line, column; /* where the entry starts in the file (1-based), for messages */
};

struct config_address {
        int family; /* AF_INET or AF_INET6 */
        union {
                struct in_addr in;
                struct in6_addr in6;
        } addr;
        uint8_t prefixlen;
};

struct config {
        char *path;

        /* daemon */
        char *control_host;    /* daemon.listen_address: HTTP API host (loopback); NULL: none */
        uint16_t control_port;
        char *bind_host;       /* network.bind_address; NULL: any address (dual-stack) */
        uint16_t listen_port;  /* network.listen_port: the tunnel's UDP port */
        int log_level; /* syslog level, LOG_INFO by default */
        char *control_group; /* members may Connect/Disconnect over D-Bus; NULL: "netdev" */

        /* network */
        char tap_device[IFNAMSIZ]; /* default "tap0" */
        struct config_address addresses[CONFIG_MAX_ADDRESSES];
        size_t n_addresses;
        uint32_t mtu; /* MTU_DEFAULT */
        bool offload; /* network.offload: TAP TSO/checksum offload, UDP GSO/GRO (default yes) */
        uint32_t threads; /* network.threads: data path queues, 1..CONFIG_MAX_THREADS; 0: auto */
        /* network.rx_workers: the receive thread's crypto workers, 0..CONFIG_MAX_THREADS, or
         * CONFIG_RX_WORKERS_AUTO (the default) */
        uint32_t rx_workers;

        /* encryption (shared key) */
        bool has_psk;
        uint8_t psk[NOISE_PSK_LEN];
        char *key_file;

        /* identity */
        bool has_private_key;
        uint8_t private_key[NOISE_PUBLIC_KEY_LEN];
        char *private_key_file;

        /* peer: / peers:, without this node's own entry (identity mode, key files read).
         * n_peers is 0 when there is none: the node waits for a peer (shared-key mode). */
        struct config_peer *peers;
        size_t n_peers;
        size_t peers_line, peers_column; /* the "peers:" or "peer:" key; 0 when absent */

        /* nat / relay: read and validated now, used by the NAT traversal work */
        bool nat_enabled;
        char *stun_host;
        uint16_t stun_port;
        bool relay_enabled;
        char *relay_host;
        uint16_t relay_port;
};

/* The first peer, or an empty entry (host NULL, no key, default port) when there is none. The
 * code written for one peer reads this until the mesh data plane uses the whole list. */
const struct config_peer *config_first_peer(const struct config *c);

/* Identity mode when a private key is configured, shared-key mode otherwise. */
static inline bool config_identity_mode(const struct config *c) {
        return c->has_private_key;
}

/*
 * Parse YAML text. name is used in messages ("daemon.yaml:3:5: ..."). On error returns -EINVAL
 * (or -ENOMEM) and, if errbuf is given, one line saying what and where. Key files named in the
 * text are read only when base_dir is non-NULL (relative paths resolve against it).
 */
int config_parse_string(const char *text, size_t len, const char *name, const char *base_dir,
                        struct config **ret, char *errbuf, size_t errlen);

/* Read and parse a file; warns (log_warning) when it or a key file is readable by others and
 * holds a key. Errors as config_parse_string, plus -errno from opening the file. */
int config_load(const char *path, struct config **ret, char *errbuf, size_t errlen);

struct config *config_free(struct config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct config *, config_free);

/* "base64 or 64 hex digits" -> 32 bytes (used for keys given on the command line too). */
int config_parse_key(const char *s, uint8_t out[32]);
/* 32 bytes -> base64 (45 bytes with NUL). */
void config_format_key(const uint8_t key[32], char out[45]);
/* "host", "host:port", "[v6]:port", "v6" -> host (malloc'd) and port (default_port if absent). */
int config_parse_host_port(const char *s, uint16_t default_port, char **ret_host,
                           uint16_t *ret_port);
