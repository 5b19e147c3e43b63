/* SPDX-License-Identifier: MIT */
/*
 * Reload: re-read the instance's configuration file while the tunnel keeps running
 * (`systemctl reload shadowmesh@NAME`, which sends SIGHUP).
 *
 * daemon.log_level is applied first, whatever else the file says, so that a refused reload can
 * be debugged at the new level. Then every other key is compared with the running
 * configuration. A change that reload cannot apply to a running tunnel (the TAP device, its
 * addresses and MTU, the UDP port and bind address, the HTTP API's address, the keys; a new
 * relay while the tunnel runs through the relay) refuses the rest of the reload with a message
 * naming each such key; nothing is torn down, and the running values stay until `systemctl
 * restart`. Otherwise the control group, the STUN server (NAT discovery starts again), the
 * relay (a new relay client registers) and the peer (the session with the old one ends; the
 * new one is connected to; an emptied peer.address needs a restart) are applied. A file that does not load (a YAML
 * error, a bad value) changes nothing at all.
 */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

struct device;

/* Re-read d->config->path and apply what can be applied. Returns 0 when the file's values now
 * run (nothing changed counts), -EBUSY when a change needs a restart, or the error of loading
 * the file; in every case buf gets one line for the caller to log or send (a D-Bus Reload). */
int reload_config(struct device *d, char *buf, size_t size);

/* The SIGHUP handler (sd_event_add_signal): reload_config, logged, with RELOADING=1 / READY=1
 * and a STATUS= line for systemd. */
int reload_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata);
