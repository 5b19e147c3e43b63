/* SPDX-License-Identifier: MIT */
/* The two data-path threads (TAP -> UDP and UDP -> TAP). They move DATAPATH_BATCH packets per
 * system call where the kernel allows it, never allocate, lock or log per packet, and talk to
 * the control loop only through atomics and an eventfd. */
#pragma once

#include "device.h"

int datapath_start(struct device *d);
/* Signal the threads to exit and join them (bounded: they check stop_fd on every wake-up). */
void datapath_stop(struct device *d);
