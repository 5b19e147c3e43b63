/* SPDX-License-Identifier: MIT */
/* The two data-path threads (TAP -> UDP and UDP -> TAP). They move DATAPATH_BATCH packets per
 * system call where the kernel allows it, never allocate, lock or log per packet, and talk to
 * the control loop only through atomics and an eventfd. */
#pragma once

#include "device.h"

/* The parts of network.offload that the environment variable SHADOWMESHD_OFFLOAD_DISABLE (a
 * comma-separated list of "udp-gso", "udp-gro", "tcp-gro") turns off, so that bench/run.sh can
 * measure what each one buys (bench/README.md). Not a configuration key: with offloads on,
 * every part the kernel offers is used. */
enum {
        DATAPATH_NO_UDP_GSO = 1 << 0,
        DATAPATH_NO_UDP_GRO = 1 << 1,
        DATAPATH_NO_TCP_GRO = 1 << 2,
};
/* Parse such a list into DATAPATH_NO_* flags; -EINVAL (and *ret_bad set to the word) for an
 * unknown word. NULL or "" is no flag. */
int datapath_parse_disable(const char *s, unsigned *ret, char *ret_bad, size_t bad_len);

int datapath_start(struct device *d);
/* Signal the threads to exit and join them (bounded: they check stop_fd on every wake-up). */
void datapath_stop(struct device *d);

/* Which data thread reads the TAP (struct device's tap_reader; "Idle hand-over" in
 * datapath.c). */
enum {
        DATAPATH_TAP_TX, /* the tx thread (as the threads start) */
        DATAPATH_TAP_RX, /* the rx thread, while the tx thread is parked on an idle TAP */
};
