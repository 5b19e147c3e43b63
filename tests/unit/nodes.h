/* SPDX-License-Identifier: MIT */
/* Unit tests' devices without a daemon: a struct device set up as device_new()'s setup_keys()
 * does, with a loopback UDP socket the test owns, no TAP and no threads unless the test adds
 * them. */
#pragma once

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "handshake.h"
#include "keys.h"
#include "ratelimit.h"

struct node {
        struct device *d;
        struct endpoint addr; /* its socket's address */
};

static inline int bind_loopback(struct endpoint *ret) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sin);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0 ||
            getsockname(fd, (struct sockaddr *) &sin, &len) < 0) {
                perror("loopback socket");
                exit(1);
        }
        *ret = (struct endpoint){ .len = sizeof(sin) };
        memcpy(&ret->addr.in, &sin, sizeof(sin));
        return fd;
}

/* What setup_keys() in device.c does, for a device without TAP or threads. */
static inline void node_new(struct node *n, bool identity, const uint8_t psk[32],
                     const uint8_t s_priv[32], const uint8_t peer_pub[32]) {
        struct device *d = calloc(1, sizeof(*d));
        uint8_t network_id[NETWORK_ID_LEN];
        size_t off = sizeof(SHADOWMESH_PROLOGUE_LABEL) - 1;
        struct peer *p;

        if (!d)
                abort();
        d->sockets = (struct udp_sockets){ bind_loopback(&n->addr), -EBADF };
        d->udp_family = AF_INET;
        d->dp.sockets = d->sockets;
        d->sender = (struct sender){ .sockets = d->sockets, .stats = &d->dp.stats };
        d->dp.stop_fd = d->dp.wake_fd = -EBADF;
        if (identity) {
                d->keys.pattern = NOISE_PATTERN_IKPSK2;
                memcpy(d->keys.static_private, s_priv, 32);
                if (noise_public_from_private(d->keys.static_public, d->keys.static_private) < 0)
                        abort();
                cookie_checker_init(&d->keys.cookie_checker, d->keys.static_public);
        } else {
                d->keys.pattern = NOISE_PATTERN_NNPSK0;
                memcpy(d->keys.psk, psk, 32);
                cookie_checker_init(&d->keys.cookie_checker, d->keys.psk);
        }
        /* The first peer of the table (device_add_peer, as device_new adds peers: d->peer). */
        if (device_add_peer(d, NULL, &p) < 0 || mactable_init(&d->dp.macs, 1024) < 0)
                abort();
        if (identity) {
                memcpy(p->public_key, peer_pub, 32);
                cookie_maker_init(&p->cookie_maker, p->public_key);
        }
        randombytes_buf(d->keys.own_initiation_key, sizeof(d->keys.own_initiation_key));
        keys_network_id(identity ? NULL : psk, network_id);
        memcpy(d->keys.prologue, SHADOWMESH_PROLOGUE_LABEL, off);
        memcpy(d->keys.prologue + off, network_id, NETWORK_ID_LEN);
        if (ratelimit_new(&d->keys.ratelimit) < 0)
                abort();
        n->d = d;
}

/* A session on p, as a handshake installs one (random keys: nothing is sealed with it here). */
static inline void give_session(struct peer *p) {
        struct keypair *kp = calloc(1, sizeof(*kp));
        uint8_t k[NOISE_SYMMETRIC_KEY_LEN];

        if (!kp)
                abort();
        randombytes_buf(k, sizeof(k));
        keypair_init(kp, k, k, p->slot, 1, true, now_ns());
        peer_install_current(p, kp);
}

static inline void node_free(struct node *n) {
        struct device *d = n->d;

        /* No data thread runs any more, whatever a test left in the markers. */
        for (size_t i = 0; i < d->n_peers; i++) {
                d->by_id[i]->qs = (struct qs_markers){};
                peer_free(d->by_id[i]);
        }
        for (size_t i = 0; i < d->n_dying; i++) {
                d->dying[i].p->qs = (struct qs_markers){};
                peer_free(d->dying[i].p);
        }
        mactable_done(&d->dp.macs);
        close(d->sockets.fd);
        d->keys.ratelimit = ratelimit_free(d->keys.ratelimit);
        free(d);
}
