/* SPDX-License-Identifier: MIT */
/* shadowmesh-relay: parse the command line and run the relay (see shadowmesh-relay(8)). */
#include <arpa/inet.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>

#include "build-config.h"
#include "log.h"
#include "relay.h"

enum {
        EXIT_RUNTIME = 2,
        EXIT_USAGE = 64,
};

enum {
        DEFAULT_MAX_PEERS = 1024,
        DEFAULT_RATE = 2000,
};

static void help(void) {
        printf("Usage: shadowmesh-relay [OPTIONS]\n"
               "\n"
               "Rendezvous, relay and STUN responder for ShadowMesh nodes, in the foreground.\n"
               "\n"
               "  -L, --listen HOST:PORT      UDP address (default [::]:%u, IPv4 and IPv6)\n"
               "  -m, --max-peers N           most registrations held at once (default %u)\n"
               "  -r, --rate PPS              datagrams per second per source address, burst\n"
               "                              twice that (default %u; 0: no limit); relayed\n"
               "                              traffic of registered nodes is not counted\n"
               "  -b, --relay-rate BYTES/S    forwarded bytes per second per registration,\n"
               "                              burst twice that (default 0: no limit)\n"
               "  -a, --allow-network HEX32   only this network id may register (repeatable;\n"
               "                              default: any network)\n"
               "  -l, --log-level LEVEL       debug, info, warning or error (default info)\n"
               "  -h, --help                  show this help\n"
               "  -V, --version               show the version\n"
               "\n"
               "SIGUSR1 logs the counters; SIGINT and SIGTERM stop the relay. See\n"
               "shadowmesh-relay(8).\n"
               "\n"
               "Exit status: 0 clean shutdown, 2 run-time error (socket, permissions),\n"
               "64 usage error.\n",
               RELAY_PORT_DEFAULT, DEFAULT_MAX_PEERS, DEFAULT_RATE);
}

/* A decimal number in [min, max], nothing else. */
static bool parse_number(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != 0 || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

/* HOST:PORT, [IPV6]:PORT or PORT alone (every address); numeric only. host points into buf. */
static bool parse_listen(const char *arg, char *buf, size_t size, const char **ret_host,
                         uint16_t *ret_port) {
        const char *colon, *port;
        uint8_t tmp[16];
        uint64_t p;
        size_t n;

        if (arg[0] == '[') {
                const char *close = strchr(arg, ']');
                if (!close || close[1] != ':')
                        return false;
                n = (size_t) (close - arg - 1);
                port = close + 2;
                if (n == 0 || n >= size)
                        return false;
                memcpy(buf, arg + 1, n);
                buf[n] = 0;
                if (inet_pton(AF_INET6, buf, tmp) != 1)
                        return false;
        } else if ((colon = strrchr(arg, ':'))) {
                if (strchr(arg, ':') != colon) /* a bare IPv6 address needs brackets */
                        return false;
                n = (size_t) (colon - arg);
                port = colon + 1;
                if (n == 0 || n >= size)
                        return false;
                memcpy(buf, arg, n);
                buf[n] = 0;
                if (inet_pton(AF_INET, buf, tmp) != 1)
                        return false;
        } else {
                port = arg;
                strcpy(buf, "::");
        }
        if (!parse_number(port, 0, 65535, &p))
                return false;
        *ret_host = buf;
        *ret_port = (uint16_t) p;
        return true;
}

int main(int argc, char **argv) {
        log_set_program_name("shadowmesh-relay");
        static const struct option options[] = {
                { "listen", required_argument, NULL, 'L' },
                { "max-peers", required_argument, NULL, 'm' },
                { "rate", required_argument, NULL, 'r' },
                { "relay-rate", required_argument, NULL, 'b' },
                { "allow-network", required_argument, NULL, 'a' },
                { "log-level", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        static uint8_t allowed[RELAY_MAX_ALLOWED_NETWORKS][NETWORK_ID_LEN];
        _cleanup_(relay_freep) struct relay *relay = NULL;
        struct relay_options o = {
                .listen_host = "::",
                .listen_port = RELAY_PORT_DEFAULT,
                .core = {
                        .max_registrations = DEFAULT_MAX_PEERS,
                        .rate = DEFAULT_RATE,
                        .allowed_networks = allowed,
                },
        };
        char hostbuf[INET6_ADDRSTRLEN + 1];
        int c, r, level = LOG_INFO;
        uint64_t v;

        if (sodium_init() < 0) {
                fprintf(stderr, "shadowmesh-relay: libsodium failed to initialise\n");
                return EXIT_RUNTIME;
        }

        while ((c = getopt_long(argc, argv, "L:m:r:b:a:l:hV", options, NULL)) >= 0)
                switch (c) {
                case 'L':
                        if (!parse_listen(optarg, hostbuf, sizeof(hostbuf), &o.listen_host,
                                          &o.listen_port)) {
                                fprintf(stderr, "shadowmesh-relay: --listen: expected "
                                                "ADDRESS:PORT, [IPV6]:PORT or PORT with a "
                                                "numeric address, got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'm':
                        if (!parse_number(optarg, 1, RELAY_MAX_REGISTRATIONS_LIMIT, &v)) {
                                fprintf(stderr, "shadowmesh-relay: --max-peers: expected a "
                                                "number from 1 to %u, got '%s'\n",
                                        RELAY_MAX_REGISTRATIONS_LIMIT, optarg);
                                return EXIT_USAGE;
                        }
                        o.core.max_registrations = (unsigned) v;
                        break;
                case 'r':
                        if (!parse_number(optarg, 0, RELAY_RATE_MAX, &v)) {
                                fprintf(stderr, "shadowmesh-relay: --rate: expected packets per "
                                                "second from 0 to %u, got '%s'\n",
                                        RELAY_RATE_MAX, optarg);
                                return EXIT_USAGE;
                        }
                        o.core.rate = (unsigned) v;
                        break;
                case 'b':
                        if (!parse_number(optarg, 0, RELAY_BANDWIDTH_MAX, &v)) {
                                fprintf(stderr, "shadowmesh-relay: --relay-rate: expected bytes "
                                                "per second from 0 to %u, got '%s'\n",
                                        RELAY_BANDWIDTH_MAX, optarg);
                                return EXIT_USAGE;
                        }
                        o.core.bandwidth = v;
                        break;
                case 'a':
                        if (o.core.n_allowed_networks >= RELAY_MAX_ALLOWED_NETWORKS) {
                                fprintf(stderr, "shadowmesh-relay: --allow-network: at most %u "
                                                "networks\n", RELAY_MAX_ALLOWED_NETWORKS);
                                return EXIT_USAGE;
                        }
                        if (hex_decode(optarg, allowed[o.core.n_allowed_networks],
                                       NETWORK_ID_LEN) < 0) {
                                fprintf(stderr, "shadowmesh-relay: --allow-network: expected a "
                                                "network id of 32 hex digits, got '%s'\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        o.core.n_allowed_networks++;
                        break;
                case 'l':
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                fprintf(stderr, "shadowmesh-relay: --log-level: unknown level "
                                                "'%s' (debug, info, warning, error)\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("shadowmesh-relay %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'shadowmesh-relay --help'.\n");
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "shadowmesh-relay: unexpected argument '%s'. Try "
                                "'shadowmesh-relay --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }

        log_set_max_level(level);
        log_info("starting (version %s): at most %u registrations, %u datagrams/s per source "
                 "(0: no limit), %s",
                 PACKAGE_VERSION, o.core.max_registrations, o.core.rate,
                 o.core.n_allowed_networks ? "only the allowed networks" : "any network");
        if (o.core.bandwidth)
                log_info("forwarding at most %llu bytes/s per registration",
                         (unsigned long long) o.core.bandwidth);

        r = relay_new(&o, &relay);
        if (r < 0)
                return EXIT_RUNTIME;
        r = relay_run(relay);
        relay = relay_free(relay);
        if (r < 0)
                return EXIT_RUNTIME;
        log_info("stopped");
        return 0;
}
