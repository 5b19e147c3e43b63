/* SPDX-License-Identifier: MIT */
/* Reload on SIGHUP: see reload.h for what is applied and what needs a restart. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "device.h"
#include "log.h"
#include "reload.h"

static bool str_eq(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The keys whose change reload cannot apply to a running tunnel, as a comma-separated list in
 * buf (empty when there is none). Secrets are compared in constant time and never printed. */
static void restart_only_changes(const struct config *old, const struct config *new, char *buf,
                                 size_t size) {
        size_t off = 0;

#define CHANGED(cond, key)                                                                         \
        do {                                                                                       \
                if ((cond) && off < size)                                                          \
                        off += (size_t) snprintf(buf + off, size - off, "%s%s", off ? ", " : "",   \
                                                 key);                                             \
        } while (0)

        buf[0] = 0;
        CHANGED(strcmp(old->tap_device, new->tap_device) != 0, "network.tap_device");
        CHANGED(old->n_addresses != new->n_addresses ||
                        memcmp(old->addresses, new->addresses,
                               old->n_addresses * sizeof(old->addresses[0])) != 0,
                "network.local_ip");
        CHANGED(old->mtu != new->mtu, "network.mtu");
        CHANGED(old->offload != new->offload, "network.offload");
        CHANGED(old->listen_port != new->listen_port, "network.listen_port");
        CHANGED(old->has_psk != new->has_psk ||
                        (old->has_psk && sodium_memcmp(old->psk, new->psk, sizeof(old->psk)) != 0),
                "encryption.key");
        CHANGED(old->has_private_key != new->has_private_key ||
                        (old->has_private_key && sodium_memcmp(old->private_key, new->private_key,
                                                               sizeof(old->private_key)) != 0),
                "identity.private_key_file");
        CHANGED(!str_eq(old->peer_host, new->peer_host) || old->peer_port != new->peer_port,
                "peer.address");
        CHANGED(old->has_peer_public_key != new->has_peer_public_key ||
                        memcmp(old->peer_public_key, new->peer_public_key,
                               sizeof(old->peer_public_key)) != 0,
                "peer.public_key");
        CHANGED(old->nat_enabled != new->nat_enabled, "nat.enabled");
        CHANGED(!str_eq(old->stun_host, new->stun_host) || old->stun_port != new->stun_port,
                "nat.stun_server");
        CHANGED(old->relay_enabled != new->relay_enabled, "relay.enabled");
        CHANGED(!str_eq(old->relay_host, new->relay_host) || old->relay_port != new->relay_port,
                "relay.server");
        CHANGED(!str_eq(old->control_group, new->control_group), "daemon.control_group");
#undef CHANGED
}

int reload_config(struct device *d, char *buf, size_t size) {
        _cleanup_(config_freep) struct config *new = NULL;
        char errbuf[512] = "", changed[512];
        int r;

        r = config_load(d->config->path, &new, errbuf, sizeof(errbuf));
        if (r < 0) {
                snprintf(buf, size, "reload failed, the running configuration stays: %s",
                         errbuf[0] ? errbuf : strerror(-r));
                return r;
        }

        /* First, whatever else changed. */
        if (new->log_level != d->config->log_level) {
                log_set_max_level(new->log_level);
                d->config->log_level = new->log_level;
                log_info("reload: log level %s", log_level_to_string(new->log_level));
        }

        restart_only_changes(d->config, new, changed, sizeof(changed));
        if (changed[0]) {
                snprintf(buf, size,
                         "reload refused: %s changed in %s, which needs a restart "
                         "(systemctl restart shadowmesh@%s); the tunnel keeps running with the "
                         "values it started with",
                         changed, d->config->path, d->instance);
                return -EBUSY;
        }
        snprintf(buf, size, "reloaded %s", d->config->path);
        return 0;
}

int reload_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct device *d = userdata;
        char msg[1024];
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading the configuration");
        r = reload_config(d, msg, sizeof(msg));
        if (r < 0)
                log_error("%s", msg);
        else {
                log_info("%s", msg);
                log_debug("reload: the log level in force is %s",
                          log_level_to_string(log_get_max_level()));
        }
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", r < 0 ? "Reload refused, see the log"
                                                              : "Configuration reloaded");
        return 0;
}
