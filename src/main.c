/* SPDX-License-Identifier: MIT */
/* shadowmeshd: parse the command line, load the config, run one tunnel instance. */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "bus.h"
#include "config.h"
#include "device.h"
#include "http.h"
#include "log.h"
#include "manager.h"
#include "noise.h"
#include "reload.h"

enum {
        EXIT_CONFIG = 1,
        EXIT_RUNTIME = 2,
        EXIT_USAGE = 64,
};

#define DEFAULT_CONFIG SYSCONFDIR "/shadowmesh/daemon.yaml"

static void help(void) {
        printf("Usage: shadowmeshd [OPTIONS] [CONFIG]\n"
               "       shadowmeshd genkey\n"
               "       shadowmeshd pubkey < PRIVATE_KEY\n"
               "\n"
               "Run one ShadowMesh tunnel instance in the foreground (default CONFIG:\n"
               "%s).\n"
               "\n"
               "  -i, --instance NAME    instance name (default: the config file's base name)\n"
               "  -l, --log-level LEVEL  " LOG_LEVEL_NAMES " (overrides the config)\n"
               "  -c, --check            validate CONFIG and exit\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version\n"
               "\n"
               "genkey prints a new private key (base64); pubkey prints the public key of the\n"
               "private key read on standard input. See shadowmeshd(8) and shadowmesh.yaml(5).\n"
               "\n"
               "Exit status: 0 clean shutdown, 1 configuration error, 2 run-time error\n"
               "(device, socket, permissions, name resolution), 64 usage error.\n",
               DEFAULT_CONFIG);
}

static int cmd_genkey(void) {
        uint8_t priv[NOISE_PUBLIC_KEY_LEN], pub[NOISE_PUBLIC_KEY_LEN];
        char b64[45];

        noise_generate_keypair(priv, pub);
        config_format_key(priv, b64);
        sodium_memzero(priv, sizeof(priv));
        puts(b64);
        sodium_memzero(b64, sizeof(b64));
        return 0;
}

static int cmd_pubkey(void) {
        uint8_t priv[NOISE_PUBLIC_KEY_LEN], pub[NOISE_PUBLIC_KEY_LEN];
        char line[256], b64[45];
        size_t n;

        if (!fgets(line, sizeof(line), stdin)) {
                fprintf(stderr, "shadowmeshd pubkey: expected a private key on standard input\n");
                return EXIT_USAGE;
        }
        n = strcspn(line, " \t\r\n");
        line[n] = 0;
        if (config_parse_key(line, priv) < 0) {
                sodium_memzero(line, sizeof(line));
                fprintf(stderr, "shadowmeshd pubkey: not a key: expected 44 base64 characters "
                                "or 64 hex digits\n");
                return EXIT_USAGE;
        }
        sodium_memzero(line, sizeof(line));
        if (noise_public_from_private(pub, priv) < 0) {
                sodium_memzero(priv, sizeof(priv));
                fprintf(stderr, "shadowmeshd pubkey: invalid private key\n");
                return EXIT_USAGE;
        }
        sodium_memzero(priv, sizeof(priv));
        config_format_key(pub, b64);
        puts(b64);
        return 0;
}

/* CAP_NET_ADMIN in the effective set, from /proc (no libcap dependency for one bit). */
static bool have_net_admin(void) {
        _cleanup_free_ char *status = NULL;
        const char *p;

        if (read_full_file("/proc/self/status", &status, NULL, 64 * 1024) < 0)
                return geteuid() == 0;
        p = strstr(status, "\nCapEff:");
        if (!p)
                return geteuid() == 0;
        return (strtoull(p + 8, NULL, 16) >> 12) & 1; /* CAP_NET_ADMIN is 12 */
}

static const char *instance_from_path(const char *path, char *buf, size_t size) {
        const char *base = strrchr(path, '/');
        size_t n;

        base = base ? base + 1 : path;
        n = strcspn(base, ".");
        snprintf(buf, size, "%.*s", (int) MIN(n, size - 1), base);
        return buf;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct device *d = userdata;

        log_info("received %s, shutting down", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        manager_shutdown(d); /* the peer hears of it (closing message) */
        /* Now, not in bus_close(): sd-bus closes its connection from an exit handler of the
         * event loop, so a reply queued after the loop ends would never leave. */
        bus_cancel_connect(d);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* READY=1 only once the TAP is up and the bus name is ours (or there is no bus at all). */
static void on_bus_ready(struct device *d, int r) {
        if (r == -EEXIST || r == -EACCES) {
                sd_event_exit(d->event, r);
                return;
        }
        sd_notify(false, "READY=1");
        manager_notify_status(d);
}

/* The device is up: the connection logic takes its peer, then the front ends start (the
 * signals, D-Bus, the HTTP API). Logged; -errno. */
static int start(struct device *d) {
        int r;

        r = manager_start(d);
        if (r < 0)
                return r;
        if ((r = sd_event_add_signal(d->event, NULL, SIGINT, on_exit_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGTERM, on_exit_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, reload_on_sighup, d)) < 0)
                return log_error_errno(r, "setting up the event loop: %m");
        r = bus_open(d, on_bus_ready);
        if (r < 0)
                return r;
        return http_start(d);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "instance", required_argument, NULL, 'i' },
                { "log-level", required_argument, NULL, 'l' },
                { "check", no_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        _cleanup_(config_freep) struct config *config = NULL;
        _cleanup_(device_freep) struct device *device = NULL;
        const char *instance = NULL, *path = DEFAULT_CONFIG, *level_arg = NULL;
        char errbuf[512], instbuf[64];
        bool check = false;
        int c, r;

        if (sodium_init() < 0) {
                fprintf(stderr, "shadowmeshd: libsodium failed to initialise\n");
                return EXIT_RUNTIME;
        }

        while ((c = getopt_long(argc, argv, "+i:l:chV", options, NULL)) >= 0)
                switch (c) {
                case 'i':
                        instance = optarg;
                        break;
                case 'l':
                        level_arg = optarg;
                        if (log_level_from_string(optarg) < 0) {
                                fprintf(stderr, "shadowmeshd: --log-level: unknown level '%s' "
                                                "(" LOG_LEVEL_NAMES ")\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'c':
                        check = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("shadowmeshd %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'shadowmeshd --help'.\n");
                        return EXIT_USAGE;
                }

        if (optind < argc) {
                if (strcmp(argv[optind], "genkey") == 0 && optind + 1 == argc)
                        return cmd_genkey();
                if (strcmp(argv[optind], "pubkey") == 0 && optind + 1 == argc)
                        return cmd_pubkey();
                path = argv[optind++];
        }
        if (optind < argc) {
                fprintf(stderr, "shadowmeshd: unexpected argument '%s'. Try 'shadowmeshd --help'.\n",
                        argv[optind]);
                return EXIT_USAGE;
        }

        if (!check && !have_net_admin()) {
                log_error("needs CAP_NET_ADMIN to create its TAP device (run as root)");
                return EXIT_RUNTIME;
        }

        r = config_load(path, &config, errbuf, sizeof(errbuf));
        if (r < 0) {
                if (errbuf[0])
                        log_error("%s", errbuf);
                else
                        log_error_errno(r, "cannot read %s: %m", path);
                return EXIT_CONFIG;
        }
        if (check) {
                printf("%s: ok\n", path);
                return 0;
        }
        log_set_max_level(level_arg ? log_level_from_string(level_arg) : config->log_level);
        if (!instance)
                instance = instance_from_path(path, instbuf, sizeof(instbuf));

        log_set_instance(instance);
        log_info("starting instance '%s' from %s (version %s)", instance, path, PACKAGE_VERSION);
        r = device_new(config, instance, &device);
        if (r < 0)
                return EXIT_RUNTIME;
        r = start(device);
        if (r >= 0)
                r = device_run(device);
        http_stop(device);
        bus_close(device);
        manager_stop(device);
        device = device_free(device);
        if (r < 0)
                return EXIT_RUNTIME;
        log_info("stopped");
        return 0;
}
