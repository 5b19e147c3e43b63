/* SPDX-License-Identifier: MIT */
/* The configuration parser on arbitrary bytes: it must not crash or leak, and it must answer
 * every input with either a configuration or exactly one line naming where the problem is. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct config *c = NULL;
        char err[512];
        int r;

        r = config_parse_string((const char *) data, size, "fuzz", NULL, &c, err, sizeof(err));
        if (r < 0) {
                /* "fuzz:line:column: ...", one line, and no configuration handed out. */
                if (c || strncmp(err, "fuzz:", 5) != 0 || strchr(err, '\n') ||
                    strlen(err) < sizeof("fuzz:1:1: x") - 1) {
                        fprintf(stderr, "bad error report (r=%d): %s\n", r, err);
                        abort();
                }
                return 0;
        }
        if (!c)
                abort();
        /* What a successful parse promises the daemon. */
        if (c->mtu < MTU_MIN || c->mtu > MTU_MAX || c->listen_port == 0 || !c->tap_device[0] ||
            strlen(c->tap_device) >= IFNAMSIZ || c->n_addresses > CONFIG_MAX_ADDRESSES ||
            (c->n_peers > 0 && !c->peers) || c->n_peers > CONFIG_MAX_PEERS ||
            (c->n_peers > 0 && c->peers_line == 0) || (c->stun_host && c->stun_port == 0) ||
            (c->relay_host && c->relay_port == 0) || (c->relay_enabled && !c->relay_host) ||
            (c->nat_enabled && !c->stun_host) ||
            (!c->has_psk && !c->key_file && !c->private_key_file))
                abort();
        /* Every listed peer: reachable or keyed, a port, a valid name, and each node once. */
        for (size_t i = 0; i < c->n_peers; i++) {
                const struct config_peer *e = &c->peers[i];

                if ((!e->host && !e->has_public_key) || e->port == 0 || e->line == 0 ||
                    (e->name && (!*e->name || strlen(e->name) > CONFIG_PEER_NAME_MAX)))
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (e->has_public_key && c->peers[j].has_public_key &&
                            memcmp(e->public_key, c->peers[j].public_key, 32) == 0)
                                abort();
        }
        config_free(c);
        return 0;
}
