/* SPDX-License-Identifier: MIT */
/*
 * The configuration: the Go prototype's file loads unchanged with every field right, the
 * examples load, every class of mistake gets its exact one-line message (file:line:column, key
 * path, what is wrong, the near miss for a typo), key files and their permission warning, and
 * the small parsers (host:port, keys) other modules reuse.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "hostport.h"
#include "tests.h"

#define HEX_KEY "273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f"
#define KEY_SECTION "encryption:\n  key: \"" HEX_KEY "\"\n"
/* RFC 7748, section 6.1: Alice's private key and public key. */
#define ALICE_PRIVATE_HEX "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PRIVATE_B64 "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
#define ALICE_PUBLIC_HEX "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define ALICE_PUBLIC_B64 "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
/* The public key of examples/identity-b.key. */
#define EXAMPLE_B_PUBLIC_B64 "DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ="
/* Public keys need not be points for the parser: two more distinct ones. */
#define KEY_1_HEX "0101010101010101010101010101010101010101010101010101010101010101"
#define KEY_2_HEX "0202020202020202020202020202020202020202020202020202020202020202"
/* Identity mode without reading the key file (no base directory). */
#define ID_SECTION "identity:\n  private_key_file: a.key\n"

/* The user's existing /etc/shadowmesh/daemon.yaml from the Go prototype, byte for byte:
 * listen_address is its local HTTP control API, not the tunnel. */
static const char prototype_yaml[] =
        "daemon:\n"
        "  listen_address: \"127.0.0.1:9090\"\n"
        "  log_level: \"info\"\n"
        "network:\n"
        "  tap_device: \"tap0\"\n"
        "  local_ip: \"10.0.0.1/24\"\n"
        "encryption:\n"
        "  key: \"" HEX_KEY "\"\n"
        "peer:\n"
        "  address: \"192.168.1.20:9001\"     # empty string \"\" on the side that waits\n"
        "nat:\n"
        "  enabled: true\n"
        "  stun_server: \"stun.l.google.com:19302\"\n";

static struct config *parse_ok(const char *text, const char *base_dir) {
        struct config *c = NULL;
        char err[512] = "";
        int r = config_parse_string(text, strlen(text), "t.yaml", base_dir, &c, err, sizeof(err));

        CHECKF(r == 0 && c, "r=%d err=%s\n--- input:\n%s", r, err, text);
        return r == 0 ? c : NULL;
}

static void check_address(const struct config_address *a, int family, const char *addr,
                          unsigned prefixlen) {
        uint8_t want[16];

        CHECK_EQ_INT(a->family, family);
        CHECK(inet_pton(family, addr, want) == 1);
        CHECK_MEM(&a->addr, want, family == AF_INET ? 4 : 16);
        CHECK_EQ_INT(a->prefixlen, prefixlen);
}

static void test_prototype_file(void) {
        _cleanup_(config_freep) struct config *c = parse_ok(prototype_yaml, NULL);
        size_t n;
        _cleanup_free_ uint8_t *psk = test_unhex(HEX_KEY, &n);

        if (!c)
                return;
        CHECK(c->control_host && strcmp(c->control_host, "127.0.0.1") == 0);
        CHECK_EQ_INT(c->control_port, 9090);
        CHECK(c->bind_host == NULL); /* the tunnel: every address, port 9001 */
        CHECK_EQ_INT(c->listen_port, 9001);
        CHECK_EQ_INT(c->log_level, LOG_INFO);
        CHECK(c->control_group == NULL);
        CHECK(strcmp(c->tap_device, "tap0") == 0);
        CHECK_EQ_INT(c->n_addresses, 1);
        check_address(&c->addresses[0], AF_INET, "10.0.0.1", 24);
        CHECK_EQ_INT(c->mtu, MTU_DEFAULT);
        CHECK(c->offload); /* network.offload defaults to yes */
        CHECK(c->has_psk);
        CHECK_MEM(c->psk, psk, 32);
        CHECK(c->key_file == NULL);
        CHECK(!c->has_private_key);
        CHECK(!config_identity_mode(c));
        CHECK(config_first_peer(c)->host &&
              strcmp(config_first_peer(c)->host, "192.168.1.20") == 0);
        CHECK_EQ_INT(config_first_peer(c)->port, 9001);
        CHECK(!config_first_peer(c)->has_public_key);
        CHECK(c->nat_enabled);
        CHECK(c->stun_host && strcmp(c->stun_host, "stun.l.google.com") == 0);
        CHECK_EQ_INT(c->stun_port, 19302);
        CHECK(!c->relay_enabled);
        CHECK(c->relay_host == NULL);
}

/* The other machine of the prototype's quick start: same file with address "". */
static void test_prototype_waiting_side(void) {
        char text[2048];
        const char *from = "\"192.168.1.20:9001\"", *at = strstr(prototype_yaml, from);
        _cleanup_(config_freep) struct config *c = NULL;

        snprintf(text, sizeof(text), "%.*s\"\"%s", (int) (at - prototype_yaml), prototype_yaml,
                 at + strlen(from));
        c = parse_ok(text, NULL);
        if (!c)
                return;
        CHECK(config_first_peer(c)->host == NULL);
        CHECK(c->has_psk);
}

static void test_defaults(void) {
        _cleanup_(config_freep) struct config *c = parse_ok(KEY_SECTION, NULL);

        if (!c)
                return;
        CHECK(c->control_host == NULL); /* no HTTP API unless asked for */
        CHECK(c->bind_host == NULL);
        CHECK_EQ_INT(c->listen_port, PORT_DEFAULT);
        CHECK_EQ_INT(c->log_level, LOG_INFO);
        CHECK(c->control_group == NULL);
        CHECK(strcmp(c->tap_device, "tap0") == 0);
        CHECK_EQ_INT(c->n_addresses, 0);
        CHECK_EQ_INT(c->mtu, 1380);
        CHECK(config_first_peer(c)->host == NULL);
        CHECK(!c->nat_enabled);
        CHECK(c->stun_host == NULL);
        CHECK(!c->relay_enabled);
        CHECK(c->relay_host == NULL);
}

static void test_additions(void) {
        _cleanup_(config_freep) struct config *c = parse_ok(
                "daemon:\n"
                "  listen_address: \"[::1]:9100\"\n"
                "  log_level: debug\n"
                "  control_group: vpn-users\n"
                "network:\n"
                "  tap_device: sm-office\n"
                "  local_ip: [10.1.2.3/16, \"fd00::1/64\", 192.168.7.7, \"fd00::7\", 0.0.0.0/0]\n"
                "  mtu: 1420\n"
                "  listen_port: 9100\n"
                "  bind_address: \"2001:db8::1\"\n" KEY_SECTION "peer:\n"
                "  address: \"[2001:db8::5]:7000\"\n"
                "nat:\n"
                "  enabled: yes\n"
                "  stun_server: stun.example.org\n"
                "relay:\n"
                "  enabled: On\n"
                "  server: relay.example.org\n",
                NULL);

        if (!c)
                return;
        CHECK(c->control_host && strcmp(c->control_host, "::1") == 0);
        CHECK_EQ_INT(c->control_port, 9100);
        CHECK(c->bind_host && strcmp(c->bind_host, "2001:db8::1") == 0);
        CHECK_EQ_INT(c->listen_port, 9100);
        CHECK_EQ_INT(c->log_level, LOG_DEBUG);
        CHECK(c->control_group && strcmp(c->control_group, "vpn-users") == 0);
        CHECK(strcmp(c->tap_device, "sm-office") == 0);
        CHECK_EQ_INT(c->n_addresses, 5);
        check_address(&c->addresses[0], AF_INET, "10.1.2.3", 16);
        check_address(&c->addresses[1], AF_INET6, "fd00::1", 64);
        check_address(&c->addresses[2], AF_INET, "192.168.7.7", 32);
        check_address(&c->addresses[3], AF_INET6, "fd00::7", 128);
        check_address(&c->addresses[4], AF_INET, "0.0.0.0", 0);
        CHECK_EQ_INT(c->mtu, 1420);
        CHECK(config_first_peer(c)->host && strcmp(config_first_peer(c)->host, "2001:db8::5") == 0);
        CHECK_EQ_INT(config_first_peer(c)->port, 7000);
        CHECK(c->nat_enabled);
        CHECK(c->stun_host && strcmp(c->stun_host, "stun.example.org") == 0);
        CHECK_EQ_INT(c->stun_port, 3478);
        CHECK(c->relay_enabled);
        CHECK(c->relay_host && strcmp(c->relay_host, "relay.example.org") == 0);
        CHECK_EQ_INT(c->relay_port, 9545);
}

static void test_small_variants(void) {
        struct config *c;

        /* The control API: default port 9090, "localhost" binds 127.0.0.1, any 127/8. */
        c = parse_ok("daemon:\n  listen_address: localhost\n" KEY_SECTION, NULL);
        if (c) {
                CHECK(c->control_host && strcmp(c->control_host, "127.0.0.1") == 0);
                CHECK_EQ_INT(c->control_port, 9090);
                CHECK_EQ_INT(c->listen_port, 9001);
        }
        config_free(c);
        c = parse_ok("daemon:\n  listen_address: 127.0.0.53:9300\nnetwork:\n  listen_port: 9300\n"
                     KEY_SECTION,
                     NULL);
        if (c) {
                CHECK(c->control_host && strcmp(c->control_host, "127.0.0.53") == 0);
                CHECK_EQ_INT(c->control_port, 9300);
                CHECK_EQ_INT(c->listen_port, 9300); /* TCP and UDP: no conflict */
        }
        config_free(c);
        /* An empty listen_address: no HTTP API; "0.0.0.0" as bind_address: every address. */
        c = parse_ok("daemon:\n  listen_address: \"\"\nnetwork:\n  bind_address: 0.0.0.0\n"
                     KEY_SECTION,
                     NULL);
        if (c) {
                CHECK(c->control_host == NULL);
                CHECK(c->bind_host == NULL);
        }
        config_free(c);
        /* Default peer port, booleans written the YAML 1.1 ways, null values, empty section. */
        c = parse_ok(KEY_SECTION "peer:\n  address: peer.example.org\nnat:\n  enabled: off\n"
                                 "  stun_server: ~\nrelay:\n",
                     NULL);
        if (c) {
                CHECK(config_first_peer(c)->host &&
                      strcmp(config_first_peer(c)->host, "peer.example.org") == 0);
                CHECK_EQ_INT(config_first_peer(c)->port, 9001);
                CHECK(!c->nat_enabled);
                CHECK(c->stun_host == NULL);
        }
        config_free(c);
        /* With NAT on and no STUN server, the relay (which answers STUN) stands in. */
        c = parse_ok(KEY_SECTION "nat:\n  enabled: \"YES\"\nrelay:\n  server: \"198.51.100.9\"\n",
                     NULL);
        if (c) {
                CHECK(c->nat_enabled);
                CHECK(c->relay_enabled); /* a named server is used unless enabled says no */
                CHECK(c->stun_host && strcmp(c->stun_host, "198.51.100.9") == 0);
                CHECK_EQ_INT(c->stun_port, 9545);
        }
        config_free(c);
        /* Servers named without "enabled": used; with "enabled: no": not used. */
        c = parse_ok(KEY_SECTION "nat:\n  stun_server: stun.example.org\nrelay:\n  server: r.example.org\n",
                     NULL);
        if (c) {
                CHECK(c->nat_enabled);
                CHECK(c->relay_enabled);
        }
        config_free(c);
        c = parse_ok(KEY_SECTION "nat:\n  enabled: no\n  stun_server: stun.example.org\n"
                                 "relay:\n  enabled: no\n  server: r.example.org\n",
                     NULL);
        if (c) {
                CHECK(!c->nat_enabled);
                CHECK(!c->relay_enabled);
        }
        config_free(c);
        /* key_file without a base directory: recorded, not read. */
        c = parse_ok("encryption:\n  key_file: psk.hex\n", NULL);
        if (c) {
                CHECK(c->key_file && strcmp(c->key_file, "psk.hex") == 0);
                CHECK(!c->has_psk);
        }
        config_free(c);
        /* Windows line ends and a document start marker. */
        c = parse_ok("---\r\nnetwork:\r\n  mtu: 9000\r\n" KEY_SECTION, NULL);
        if (c)
                CHECK_EQ_INT(c->mtu, 9000);
        config_free(c);
        /* network.offload: no turns the offloads off (a plain TAP, one frame per datagram). */
        c = parse_ok("network:\n  offload: no\n" KEY_SECTION, NULL);
        if (c)
                CHECK(!c->offload);
        config_free(c);
        c = parse_ok("network:\n  offload: yes\n" KEY_SECTION, NULL);
        if (c)
                CHECK(c->offload);
        config_free(c);
        /* network.threads: a number of data path queues, or auto (0, the default). */
        c = parse_ok(KEY_SECTION, NULL);
        if (c)
                CHECK_EQ_INT(c->threads, 0);
        config_free(c);
        c = parse_ok("network:\n  threads: 3\n" KEY_SECTION, NULL);
        if (c)
                CHECK_EQ_INT(c->threads, 3);
        config_free(c);
        c = parse_ok("network:\n  threads: auto\n" KEY_SECTION, NULL);
        if (c)
                CHECK_EQ_INT(c->threads, 0);
        config_free(c);
        /* network.rx_workers: 0..8 crypto workers, or auto (the default). */
        static const struct {
                const char *text;
                uint32_t want;
        } workers[] = {
                { KEY_SECTION, CONFIG_RX_WORKERS_AUTO },
                { "network:\n  rx_workers: 0\n" KEY_SECTION, 0 },
                { "network:\n  rx_workers: 3\n" KEY_SECTION, 3 },
                { "network:\n  rx_workers: 8\n" KEY_SECTION, 8 },
                { "network:\n  rx_workers: auto\n" KEY_SECTION, CONFIG_RX_WORKERS_AUTO },
        };
        for (size_t i = 0; i < ELEMENTSOF(workers); i++) {
                c = parse_ok(workers[i].text, NULL);
                if (c)
                        CHECKF(c->rx_workers == workers[i].want, "rx_workers case %zu: %u", i,
                               c->rx_workers);
                config_free(c);
        }
}

struct bad {
        const char *text;
        const char *error; /* expected substring of the one-line message */
};

static const struct bad bad_inputs[] = {
        /* daemon.control_group */
        {KEY_SECTION "daemon:\n  control_group: \"bad group\"\n",
         "t.yaml:4:18: daemon.control_group: 'bad group' is not a valid group name"},
        {KEY_SECTION "daemon:\n  control_group: [a, b]\n",
         "t.yaml:4:18: daemon.control_group:"},
        {KEY_SECTION "daemon:\n  controlgroup: x\n",
         "t.yaml:4:3: daemon.controlgroup: unknown key, did you mean 'control_group'?"},
        /* typos, with the near miss */
        {"encrpytion:\n  key: x\n",
         "t.yaml:1:1: encrpytion: unknown section, did you mean 'encryption'?"},
        {"network:\n  tap_devcie: tap1\n" KEY_SECTION,
         "t.yaml:2:3: network.tap_devcie: unknown key, did you mean 'tap_device'?"},
        {KEY_SECTION "Peer:\n  address: x\n",
         "t.yaml:3:1: Peer: unknown section, did you mean 'peer'?"},
        {KEY_SECTION "daemon:\n  log-level: info\n",
         "t.yaml:4:3: daemon.log-level: unknown key, did you mean 'log_level'?"},
        {KEY_SECTION "nat:\n  stun_sever: x\n",
         "t.yaml:4:3: nat.stun_sever: unknown key, did you mean 'stun_server'?"},
        {"tap_device: tap0\n" KEY_SECTION,
         "t.yaml:1:1: tap_device: unknown section, did you mean 'network.tap_device'?"},
        {"network:\n  key: " HEX_KEY "\n",
         "t.yaml:2:3: network.key: unknown key, did you mean 'encryption.key'?"},
        {KEY_SECTION "vpn:\n  x: 1\n",
         "t.yaml:3:1: vpn: unknown section (known: daemon, network, encryption, identity, peer, "
         "peers, nat, relay)"},
        {KEY_SECTION "network:\n  speed: 10\n",
         "t.yaml:4:3: network.speed: unknown key (network has: tap_device, local_ip, mtu, "
         "listen_port, bind_address, offload, threads, rx_workers)"},
        /* addresses */
        {"network:\n  local_ip: 10.0.0.1/33\n" KEY_SECTION,
         "t.yaml:2:13: network.local_ip: '10.0.0.1/33': prefix length must be 0..32 for IPv4"},
        {"network:\n  local_ip:\n    - 10.0.0.1/24\n    - fd00::1/129\n" KEY_SECTION,
         "t.yaml:4:7: network.local_ip[1]: 'fd00::1/129': prefix length must be 0..128 for IPv6"},
        {"network:\n  local_ip: 10.0.0.256/24\n" KEY_SECTION,
         "t.yaml:2:13: network.local_ip: '10.0.0.256/24': not an IPv4 or IPv6 address"},
        {"network:\n  local_ip: \"10.0.0.1/\"\n" KEY_SECTION,
         "t.yaml:2:13: network.local_ip: '10.0.0.1/': prefix length must be 0..32 for IPv4"},
        {"network:\n  local_ip: [10.0.0.1/24, 10.0.0.1/16]\n" KEY_SECTION,
         "t.yaml:2:27: network.local_ip[1]: '10.0.0.1/16': address listed twice"},
        {"network:\n  local_ip: {a: 1}\n" KEY_SECTION,
         "t.yaml:2:13: network.local_ip: expected an address or a list of addresses, got a "
         "mapping"},
        {"network:\n  local_ip: [[10.0.0.1/24]]\n" KEY_SECTION,
         "t.yaml:2:14: network.local_ip[0]: expected an address in CIDR notation (10.0.0.1/24), "
         "got a list"},
        /* keys */
        {"encryption:\n  key: \"abcd\"\n",
         "t.yaml:2:8: encryption.key: must be exactly 64 hex digits (32 bytes), got 4 characters"},
        {"encryption:\n  key: 273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88\n",
         "t.yaml:2:8: encryption.key: must be exactly 64 hex digits (32 bytes), got 63 characters"},
        {"encryption:\n  key: "
         "\"2730g4db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f\"\n",
         "t.yaml:2:8: encryption.key: character 5 is not a hex digit (0-9, a-f)"},
        {"encryption:\n  key: "
         "\"0000000000000000000000000000000000000000000000000000000000000000\"\n",
         "t.yaml:2:8: encryption.key: the key is all zeros"},
        {"encryption:\n  key: " HEX_KEY "\n  key_file: /etc/shadowmesh/psk\n",
         "t.yaml:3:13: encryption.key_file: encryption.key is also set (line 2); give the key "
         "one way only"},
        {"network:\n  tap_device: tap1\n",
         "t.yaml:1:1: encryption.key: no key configured: set encryption.key (shared-key mode) or "
         "identity.private_key_file (identity mode)"},
        {"encryption:\n  key: \"\"\n", "t.yaml:1:1: encryption.key: no key configured"},
        {"identity:\n  private_key_file: a.key\n",
         "t.yaml:2:21: peer.public_key: missing: identity mode (identity.private_key_file) "
         "needs the peer's public key"},
        {"identity:\n  private_key_file: a.key\npeer:\n  address: x\n",
         "t.yaml:3:1: peer.public_key: missing: identity mode"},
        {KEY_SECTION "peer:\n  public_key: " ALICE_PUBLIC_B64 "\n",
         "t.yaml:4:15: peer.public_key: identity.private_key_file is not set: identity mode "
         "needs both"},
        {"identity:\n  private_key_file: a.key\npeer:\n  public_key: hSDwCYkwp1R0i33ctD73Wg2\n",
         "t.yaml:4:15: peer.public_key: expected a base64 public key (44 characters, as "
         "`shadowmeshd pubkey` prints) or 64 hex digits, got 23 characters"},
        {"identity:\n  private_key_file: a.key\npeer:\n  public_key: "
         "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm!=\n",
         "t.yaml:4:15: peer.public_key: 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm!=' is neither "
         "valid base64 nor 64 hex digits"},
        /* ports, mtu, numbers */
        {"daemon:\n  listen_address: \"127.0.0.1:70000\"\n" KEY_SECTION,
         "t.yaml:2:19: daemon.listen_address: '127.0.0.1:70000' is not host:port: port must be "
         "a number from 1 to 65535 (the local HTTP control API's address"},
        /* This project's 0.1 form, which the prototype never used: say what the key is now. */
        {"daemon:\n  listen_address: \"0.0.0.0:9001\"\n" KEY_SECTION,
         "t.yaml:2:19: daemon.listen_address: '0.0.0.0:9001' is every address, but this key is "
         "the local HTTP control API's address, loopback only (the prototype's "
         "\"127.0.0.1:9090\"); it does not set the tunnel's UDP port: write that as "
         "network.listen_port (default 9001, every address)"},
        {"daemon:\n  listen_address: \"[::]:9001\"\n" KEY_SECTION,
         "t.yaml:2:19: daemon.listen_address: '[::]:9001' is every address, but this key"},
        {"daemon:\n  listen_address: \":9090\"\n" KEY_SECTION,
         "t.yaml:2:19: daemon.listen_address: ':9090' is every address, but this key"},
        {"daemon:\n  listen_address: \"*:9090\"\n" KEY_SECTION,
         "t.yaml:2:19: daemon.listen_address: '*:9090' is every address, but this key"},
        {"daemon:\n  listen_address: \"192.0.2.1:9090\"\n" KEY_SECTION,
         "t.yaml:2:19: daemon.listen_address: '192.0.2.1:9090' is not a loopback address: the "
         "HTTP control API listens only on 127.0.0.1, ::1 or localhost"},
        {"daemon:\n  listen_address: \"example.org:9090\"\n" KEY_SECTION,
         "t.yaml:2:19: daemon.listen_address: 'example.org:9090' is not a loopback address"},
        {"network:\n  bind_address: \"0.0.0.0:9001\"\n" KEY_SECTION,
         "t.yaml:2:17: network.bind_address: '0.0.0.0:9001' is not an IP address (write the port "
         "as network.listen_port)"},
        {"network:\n  listen_port: 0\n" KEY_SECTION,
         "t.yaml:2:16: network.listen_port: 0 is out of range (1..65535)"},
        {"network:\n  mtu: 9001\n" KEY_SECTION,
         "t.yaml:2:8: network.mtu: 9001 is out of range (576..9000)"},
        {"network:\n  mtu: 575\n" KEY_SECTION,
         "t.yaml:2:8: network.mtu: 575 is out of range (576..9000)"},
        {"network:\n  mtu: 99999999999999999999\n" KEY_SECTION,
         "t.yaml:2:8: network.mtu: 99999999999999999999 is out of range (576..9000)"},
        {"network:\n  mtu: -1400\n" KEY_SECTION,
         "t.yaml:2:8: network.mtu: '-1400' is not a number"},
        {"network:\n  mtu: 1.5k\n" KEY_SECTION, "t.yaml:2:8: network.mtu: '1.5k' is not a number"},
        {KEY_SECTION "peer:\n  address: \"[fd00::1:9001\"\n",
         "t.yaml:4:12: peer.address: '[fd00::1:9001' is not host[:port]: missing ']' after the "
         "IPv6 address"},
        {KEY_SECTION "peer:\n  address: \":9001\"\n",
         "t.yaml:4:12: peer.address: ':9001' is not host[:port]: empty host"},
        {KEY_SECTION "nat:\n  stun_server: \"stun.example.org:0\"\n",
         "t.yaml:4:16: nat.stun_server: 'stun.example.org:0' is not host[:port]: port must be a "
         "number from 1 to 65535"},
        {KEY_SECTION "relay:\n  server: \"relay example\"\n",
         "t.yaml:4:11: relay.server: 'relay example' is not host[:port]: invalid character in "
         "the host name"},
        /* tap names */
        {"network:\n  tap_device: shadowmesh-office\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: 'shadowmesh-office' is too long for an interface name "
         "(17 characters, at most 15)"},
        {"network:\n  tap_device: \"tap/0\"\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: 'tap/0' is not a valid interface name (no '/', ':' or "
         "whitespace)"},
        {"network:\n  tap_device: \"tap:0\"\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: 'tap:0' is not a valid interface name"},
        {"network:\n  tap_device: \"tap 0\"\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: 'tap 0' is not a valid interface name"},
        {"network:\n  tap_device: \"..\"\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: '..' is not a valid interface name"},
        {"network:\n  tap_device: \"\"\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: must not be empty"},
        {"network:\n  tap_device: \"tap\\0x\"\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: contains a NUL character"},
        /* other values */
        {"daemon:\n  log_level: loud\n" KEY_SECTION,
         "t.yaml:2:14: daemon.log_level: unknown log level 'loud' (use debug, info, notice, "
         "warning or error)"},
        {KEY_SECTION "nat:\n  enabled: maybe\n",
         "t.yaml:4:12: nat.enabled: 'maybe' is not a boolean (use true/false, yes/no or on/off)"},
        {"network:\n  offload: fast\n" KEY_SECTION,
         "t.yaml:2:12: network.offload: 'fast' is not a boolean (use true/false, yes/no or "
         "on/off)"},
        {"network:\n  threads: many\n" KEY_SECTION,
         "t.yaml:2:12: network.threads: 'many' is neither a number nor auto"},
        {"network:\n  threads: 0\n" KEY_SECTION,
         "t.yaml:2:12: network.threads: '0' is out of range (1..8, or auto)"},
        {"network:\n  threads: 9\n" KEY_SECTION,
         "t.yaml:2:12: network.threads: '9' is out of range (1..8, or auto)"},
        {"network:\n  rx_workers: 9\n" KEY_SECTION,
         "t.yaml:2:15: network.rx_workers: '9' is out of range (0..8, or auto)"},
        {"network:\n  rx_workers: -1\n" KEY_SECTION,
         "t.yaml:2:15: network.rx_workers: '-1' is neither a number nor auto"},
        {KEY_SECTION "relay:\n  enabled: true\n",
         "t.yaml:4:12: relay.enabled: is true but relay.server is not set"},
        {KEY_SECTION "nat:\n  enabled: true\n",
         "t.yaml:4:12: nat.enabled: is true but neither nat.stun_server nor relay.server is set"},
        /* structure */
        {"network:\n  mtu: 1400\n  mtu: 1500\n" KEY_SECTION,
         "t.yaml:3:3: network.mtu: duplicate key (first given at line 2, column 3)"},
        {KEY_SECTION "network:\n  mtu: 1400\nnetwork:\n  mtu: 1500\n",
         "t.yaml:5:1: network: duplicate key (first given at line 3, column 1)"},
        {"network: tap0\n" KEY_SECTION,
         "t.yaml:1:10: network: expected a mapping of keys (tap_device:), got a value"},
        {"network:\n  - tap0\n" KEY_SECTION,
         "t.yaml:2:3: network: expected a mapping of keys (tap_device:), got a list"},
        {"network:\n  mtu:\n    value: 1400\n" KEY_SECTION,
         "t.yaml:3:5: network.mtu: expected a number, got a mapping"},
        {"network:\n  tap_device: [a, b]\n" KEY_SECTION,
         "t.yaml:2:15: network.tap_device: expected an interface name, got a list"},
        {KEY_SECTION "peer:\n  address:\n    host: x\n",
         "t.yaml:5:5: peer.address: expected a string, got a mapping"},
        {"- network\n- encryption\n",
         "t.yaml:1:1: expected a mapping of sections (daemon:, network:, encryption:, ...), got a "
         "list"},
        {"just text\n", "t.yaml:1:1: expected a mapping of sections"},
        {"? [a, b]\n: c\n", "t.yaml:1:3: expected a key name, got a list"},
        {"", "t.yaml:1:1: the configuration is empty (expected sections such as network: and "
             "encryption:)"},
        {"# only a comment\n\n", "t.yaml:1:1: the configuration is empty"},
        {KEY_SECTION "---\nnetwork:\n  mtu: 1400\n",
         "t.yaml:4:1: a second YAML document; a configuration is one document"},
        /* peers: malformed entries */
        {KEY_SECTION "peers:\n  - 192.0.2.1\n",
         "t.yaml:4:5: peers[0]: expected a mapping of keys (address:), got a value"},
        {KEY_SECTION "peers:\n  - [192.0.2.1]\n",
         "t.yaml:4:5: peers[0]: expected a mapping of keys (address:), got a list"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n  - adress: 192.0.2.2\n",
         "t.yaml:5:5: peers[1].adress: unknown key, did you mean 'address'?"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n    port: 9001\n",
         "t.yaml:5:5: peers[0].port: unknown key (peers[0] has: address, public_key, name)"},
        {KEY_SECTION "peers:\n  - address: \"192.0.2.1:70000\"\n",
         "t.yaml:4:14: peers[0].address: '192.0.2.1:70000' is not host[:port]: port must be a "
         "number from 1 to 65535"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n  - address: 192.0.2.300\n",
         "t.yaml:5:14: peers[1].address: '192.0.2.300' is not host[:port]: not an IPv4 address"},
        {KEY_SECTION "peers:\n  - address:\n      host: x\n",
         "t.yaml:5:7: peers[0].address: expected a string, got a mapping"},
        {ID_SECTION "peers:\n  - public_key: hSDwCYkwp1R0i33ctD73Wg2\n",
         "t.yaml:4:17: peers[0].public_key: expected a base64 public key (44 characters, as "
         "`shadowmeshd pubkey` prints) or 64 hex digits, got 23 characters"},
        {ID_SECTION "peers:\n  - public_key: \"" KEY_1_HEX "\"\n  - public_key: "
                    "0000000000000000000000000000000000000000000000000000000000000000\n",
         "t.yaml:5:17: peers[1].public_key: the key is all zeros (a placeholder?)"},
        {KEY_SECTION "peers:\n  - name: office\n",
         "t.yaml:4:5: peers[0]: the entry has neither address nor public_key"},
        {KEY_SECTION "peers:\n  - address: \"\"\n",
         "t.yaml:4:5: peers[0]: the entry has neither address nor public_key"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n  -\n",
         "t.yaml:5:4: peers[1]: empty entry; expected a mapping of keys (address:, public_key:, "
         "name:)"},
        /* peers: the list itself */
        {KEY_SECTION "peers: []\n",
         "t.yaml:3:8: peers: the list is empty; list the other nodes (- address: ...), or leave "
         "peers: out to wait for a peer"},
        {KEY_SECTION "peers:\n", "t.yaml:3:1: peers: the list is empty"},
        {KEY_SECTION "peers: ~\n", "t.yaml:3:1: peers: the list is empty"},
        {KEY_SECTION "peers:\n  address: 192.0.2.1\n",
         "t.yaml:4:3: peers: expected a list of peers (- address: ...), got a mapping"},
        {KEY_SECTION "peers: 192.0.2.1\n",
         "t.yaml:3:8: peers: expected a list of peers (- address: ...), got a value"},
        {KEY_SECTION "pears:\n  - address: 192.0.2.1\n",
         "t.yaml:3:1: pears: unknown section, did you mean 'peers'?"},
        /* peer: and peers: in one file: both lines named */
        {KEY_SECTION "peer:\n  address: 192.0.2.1\npeers:\n  - address: 192.0.2.2\n",
         "t.yaml:5:1: peers: peer: is also given (line 3); write the peers one way only (peer: is "
         "a list of one)"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.2\npeer:\n  address: 192.0.2.1\n",
         "t.yaml:5:1: peer: peers: is also given (line 3); write the peers one way only"},
        /* duplicates: the key (base64 and hex of one key are one key) */
        {ID_SECTION "peers:\n  - public_key: " ALICE_PUBLIC_B64 "\n  - public_key: "
                    ALICE_PUBLIC_HEX "\n",
         "t.yaml:5:17: peers[1].public_key: duplicate key: peers[0] (line 4) has the same public "
         "key; list each node once"},
        {ID_SECTION "peers:\n  - public_key: " ALICE_PUBLIC_B64 "\n    address: 192.0.2.1\n"
                    "  - public_key: " KEY_1_HEX "\n    address: 192.0.2.2\n"
                    "  - address: 192.0.2.3\n    public_key: " ALICE_PUBLIC_B64 "\n",
         "t.yaml:9:17: peers[2].public_key: duplicate key: peers[0] (line 4)"},
        /* duplicates: the address, compared as an address for literals... */
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n  - address: \"192.0.2.1:9001\"\n",
         "t.yaml:5:14: peers[1].address: duplicate address: peers[0] (line 4) has the same "
         "address and port; list each node once"},
        {KEY_SECTION "peers:\n  - address: \"[fd00::1]:9001\"\n  - address: \"fd00:0:0::1\"\n",
         "t.yaml:5:14: peers[1].address: duplicate address: peers[0] (line 4)"},
        {KEY_SECTION "peers:\n  - address: \"192.0.2.1:7000\"\n"
                     "  - address: \"[::ffff:192.0.2.1]:7000\"\n",
         "t.yaml:5:14: peers[1].address: duplicate address: peers[0] (line 4)"},
        /* ... and without case or a trailing dot for host names */
        {KEY_SECTION "peers:\n  - address: Node-B.example.org\n"
                     "  - address: \"node-b.example.org.:9001\"\n",
         "t.yaml:5:14: peers[1].address: duplicate address: peers[0] (line 4)"},
        /* names */
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n    name: office\n"
                     "  - address: 192.0.2.2\n    name: Office\n",
         "t.yaml:7:11: peers[1].name: duplicate name: peers[0] (line 4) is called 'office' too"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n    name: \"home server\"\n",
         "t.yaml:5:11: peers[0].name: 'home server' is not a valid peer name (letters, digits, "
         "'-', '_' and '.', starting with a letter or digit)"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n    name: -pi\n",
         "t.yaml:5:11: peers[0].name: '-pi' is not a valid peer name"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n    name: \"caf\xc3\xa9\"\n",
         "t.yaml:5:11: peers[0].name: 'caf\\xc3\\xa9' is not a valid peer name"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n    name: "
                     "abcdefghijklmnopqrstuvwxyz0123456\n",
         "t.yaml:5:11: peers[0].name: 'abcdefghijklmnopqrstuvwxyz0123456' is too long for a peer "
         "name (33 characters, at most 32)"},
        {KEY_SECTION "peer:\n  address: 192.0.2.1\n  name: [a]\n",
         "t.yaml:5:9: peer.name: expected a string, got a list"},
        /* keys and the mode */
        {ID_SECTION "peers:\n  - public_key: " ALICE_PUBLIC_B64 "\n  - address: 192.0.2.2\n",
         "t.yaml:5:5: peers[1].public_key: missing: identity mode (identity.private_key_file) "
         "admits only listed keys, so each entry needs one"},
        {KEY_SECTION "peers:\n  - address: 192.0.2.1\n  - public_key: " ALICE_PUBLIC_B64 "\n",
         "t.yaml:5:17: peers[1].public_key: identity.private_key_file is not set: identity mode "
         "needs both (remove peers[1].public_key for shared-key mode)"},
        /* libyaml's own errors, at the position it gives */
        {"network:\n  mtu: 1400\n bad\n",
         "t.yaml:3:2: syntax error: did not find expected key (while parsing a block mapping at "
         "line 1, column 1)"},
        {"network:\n\ttap_device: tap0\n",
         "t.yaml:2:1: syntax error: found character that cannot start any token (while scanning "
         "for the next token at line 2, column 1)"},
        {"network:\n  local_ip: [10.0.0.1/24\n",
         "t.yaml:3:1: syntax error: did not find expected ',' or ']' (while parsing a flow "
         "sequence at line 2, column 13)"},
        {"network:\n  tap_device: *x\n", "t.yaml:2:15: syntax error: found undefined alias"},
        {"network:\n  tap_device: \"t\xff\"\n",
         "t.yaml:2:17: not valid text: invalid leading UTF-8 octet"},
};

static void test_bad_inputs(void) {
        for (size_t i = 0; i < ELEMENTSOF(bad_inputs); i++) {
                struct config *c = NULL;
                char err[512] = "";
                const char *text = bad_inputs[i].text;
                int r = config_parse_string(text, strlen(text), "t.yaml", NULL, &c, err,
                                            sizeof(err));

                CHECKF(r == -EINVAL, "input %zu: r=%d", i, r);
                CHECK(c == NULL);
                CHECKF(strstr(err, bad_inputs[i].error) != NULL,
                       "input %zu:\n  want: %s\n  got:  %s", i, bad_inputs[i].error, err);
                CHECKF(strchr(err, '\n') == NULL, "input %zu: message spans lines: %s", i, err);
                config_free(c);
        }
        CHECKF(ELEMENTSOF(bad_inputs) >= 30, "%zu bad inputs", ELEMENTSOF(bad_inputs));
}

/* The fields of two peers, as a reader of struct config sees them. */
static void check_same_peer(const struct config_peer *a, const struct config_peer *b) {
        CHECKF((!a->host && !b->host) || (a->host && b->host && strcmp(a->host, b->host) == 0),
               "host %s != %s", a->host ? a->host : "(null)", b->host ? b->host : "(null)");
        CHECK_EQ_INT(a->port, b->port);
        CHECKF((!a->name && !b->name) || (a->name && b->name && strcmp(a->name, b->name) == 0),
               "name %s != %s", a->name ? a->name : "(null)", b->name ? b->name : "(null)");
        CHECK_EQ_INT(a->has_public_key, b->has_public_key);
        CHECK_MEM(a->public_key, b->public_key, sizeof(a->public_key));
}

static void test_peers(void) {
        size_t n;
        _cleanup_free_ uint8_t *alice = test_unhex(ALICE_PUBLIC_HEX, &n);
        _cleanup_free_ uint8_t *k1 = test_unhex(KEY_1_HEX, &n);
        struct config *c, *d;

        /* A list: every form of address, names, lines and columns of each entry. */
        c = parse_ok(KEY_SECTION "peers:\n"
                                 "  - address: 192.0.2.1\n"
                                 "    name: home-server\n"
                                 "  - {address: \"[2001:db8::5]:7000\", name: pi.4_b}\n"
                                 "  - address: vpn.example.org:9002\n",
                     NULL);
        if (c) {
                CHECK_EQ_INT(c->n_peers, 3);
                CHECK_EQ_INT(c->peers_line, 3);
                CHECK_EQ_INT(c->peers_column, 1);
                check_same_peer(&c->peers[0],
                                &(struct config_peer){.host = (char *) "192.0.2.1",
                                                      .port = 9001,
                                                      .name = (char *) "home-server"});
                check_same_peer(&c->peers[1], &(struct config_peer){.host = (char *) "2001:db8::5",
                                                                    .port = 7000,
                                                                    .name = (char *) "pi.4_b"});
                check_same_peer(&c->peers[2],
                                &(struct config_peer){.host = (char *) "vpn.example.org",
                                                      .port = 9002});
                CHECK_EQ_INT(c->peers[0].line, 4);
                CHECK_EQ_INT(c->peers[0].column, 5);
                CHECK_EQ_INT(c->peers[1].line, 6);
                CHECK_EQ_INT(c->peers[2].line, 7);
                CHECK(config_first_peer(c) == &c->peers[0]);
                /* Every entry is a peer of the mesh: all three are kept. */
                CHECK_EQ_INT(c->n_peers, 3);
        }
        config_free(c);

        /* Not duplicates: one host on two ports (two nodes behind one NAT), and a host name
         * against an address it may resolve to (nothing is resolved). */
        c = parse_ok(KEY_SECTION "peers:\n"
                                 "  - address: 192.0.2.1\n"
                                 "  - address: \"192.0.2.1:9002\"\n"
                                 "  - address: localhost\n"
                                 "  - address: 127.0.0.1\n"
                                 "  - address: fd00::1\n"
                                 "  - address: fd00::2\n",
                     NULL);
        if (c)
                CHECK_EQ_INT(c->n_peers, 6);
        config_free(c);

        /* peer: is a list of one: the same as a one-entry peers:, name included. */
        static const char *const one[][2] = {
                {KEY_SECTION "peer:\n  address: \"[fd00::7]:9005\"\n  name: b\n",
                 KEY_SECTION "peers:\n  - address: \"[fd00::7]:9005\"\n    name: b\n"},
                {ID_SECTION "peer:\n  public_key: " ALICE_PUBLIC_B64 "\n",
                 ID_SECTION "peers:\n  - public_key: " ALICE_PUBLIC_B64 "\n"},
                {ID_SECTION "peer:\n  address: peer.example.org\n  public_key: " KEY_1_HEX "\n",
                 ID_SECTION "peers: [{address: peer.example.org, public_key: " KEY_1_HEX "}]\n"},
        };
        for (size_t i = 0; i < ELEMENTSOF(one); i++) {
                c = parse_ok(one[i][0], NULL);
                d = parse_ok(one[i][1], NULL);
                if (c && d) {
                        CHECK_EQ_INT(c->n_peers, 1);
                        CHECK_EQ_INT(d->n_peers, 1);
                        check_same_peer(&c->peers[0], &d->peers[0]);
                        CHECK_EQ_INT(c->peers_line, d->peers_line);
                }
                config_free(c);
                config_free(d);
        }
        c = parse_ok(ID_SECTION "peers:\n  - public_key: " ALICE_PUBLIC_B64 "\n", NULL);
        if (c && c->n_peers == 1) {
                CHECK(c->peers[0].has_public_key);
                CHECK_MEM(c->peers[0].public_key, alice, 32);
                CHECK(c->peers[0].host == NULL); /* waits for that key */
        }
        config_free(c);

        /* No peer (the prototype's waiting side): config_first_peer is an empty entry. */
        c = parse_ok(KEY_SECTION "peer:\n  address: \"\"\n", NULL);
        if (c) {
                CHECK_EQ_INT(c->n_peers, 0);
                CHECK(config_first_peer(c)->host == NULL);
                CHECK(!config_first_peer(c)->has_public_key);
                CHECK_EQ_INT(config_first_peer(c)->port, 9001);
                CHECK_EQ_INT(c->peers_line, 3);
        }
        config_free(c);
        c = parse_ok(KEY_SECTION "peer:\n", NULL);
        if (c)
                CHECK_EQ_INT(c->n_peers, 0);
        config_free(c);

        /* Without the key file (no base directory) the node's own entry cannot be known: the
         * list stays whole, and the order of the file is kept. */
        c = parse_ok(ID_SECTION "peers:\n  - public_key: " ALICE_PUBLIC_B64 "\n"
                                "  - public_key: " KEY_1_HEX "\n    address: 192.0.2.9\n",
                     NULL);
        if (c && c->n_peers == 2) {
                CHECK_MEM(c->peers[0].public_key, alice, 32);
                CHECK_MEM(c->peers[1].public_key, k1, 32);
                CHECK(c->peers[1].host && strcmp(c->peers[1].host, "192.0.2.9") == 0);
        }
        config_free(c);
}

static void test_limits(void) {
        char text[4096], err[256];
        struct config *c = NULL;
        int n, r;

        /* CONFIG_MAX_ADDRESSES addresses fit, one more does not. */
        n = snprintf(text, sizeof(text), "%snetwork:\n  local_ip:\n", KEY_SECTION);
        for (int i = 0; i < CONFIG_MAX_ADDRESSES; i++)
                n += snprintf(text + n, sizeof(text) - (size_t) n, "    - 10.0.0.%d/24\n", i + 1);
        c = parse_ok(text, NULL);
        if (c)
                CHECK_EQ_INT(c->n_addresses, CONFIG_MAX_ADDRESSES);
        c = config_free(c);
        snprintf(text + n, sizeof(text) - (size_t) n, "    - fd00::99/64\n");
        r = config_parse_string(text, strlen(text), "t.yaml", NULL, &c, err, sizeof(err));
        CHECK_EQ_INT(r, -EINVAL);
        CHECKF(strstr(err, "t.yaml:21:7: network.local_ip[16]: too many addresses (at most 16)"),
               "%s", err);

        /* CONFIG_MAX_PEERS entries fit (in flow style, so that the file stays under its cap),
         * one more does not. */
        {
                size_t size = 64 * 1024;
                _cleanup_free_ char *list = malloc(size);
                int m = snprintf(list, size, "%speers: [", KEY_SECTION);

                for (int i = 0; i < CONFIG_MAX_PEERS; i++)
                        m += snprintf(list + m, size - (size_t) m, "%s{address: h%d}",
                                      i ? "," : "", i);
                snprintf(list + m, size - (size_t) m, "]\n");
                c = parse_ok(list, NULL);
                if (c)
                        CHECK_EQ_INT(c->n_peers, CONFIG_MAX_PEERS);
                c = config_free(c);
                snprintf(list + m, size - (size_t) m, ",{address: x}]\n");
                r = config_parse_string(list, strlen(list), "t.yaml", NULL, &c, err, sizeof(err));
                CHECK_EQ_INT(r, -EINVAL);
                CHECKF(strstr(err, ": peers: too many peers (at most 1024)"), "%s", err);
        }

        /* A key's value never appears in a message; odd bytes in names are escaped. */
        r = config_parse_string("\"a\\nb\": 1\n", 10, "t.yaml", NULL, &c, err, sizeof(err));
        CHECK_EQ_INT(r, -EINVAL);
        CHECKF(strstr(err, "t.yaml:1:1: a\\x0ab: unknown section"), "%s", err);

        /* Too large for a configuration. */
        _cleanup_free_ char *big = malloc(70000);
        if (big) {
                memset(big, '#', 70000);
                r = config_parse_string(big, 70000, "t.yaml", NULL, &c, err, sizeof(err));
                CHECK_EQ_INT(r, -EFBIG);
        }

        /* A tiny error buffer is cut, never overrun. */
        char tiny[8];
        r = config_parse_string("x: 1\n", 5, "t.yaml", NULL, &c, tiny, sizeof(tiny));
        CHECK_EQ_INT(r, -EINVAL);
        CHECK(strcmp(tiny, "t.yaml:") == 0);
}

static void test_host_port(void) {
        static const struct {
                const char *in;
                int r;
                const char *host;
                uint16_t port;
        } cases[] = {
                {"example.org", 0, "example.org", 9001},
                {"example.org:1", 0, "example.org", 1},
                {"192.0.2.1:65535", 0, "192.0.2.1", 65535},
                {"[2001:db8::1]:443", 0, "2001:db8::1", 443},
                {"[2001:db8::1]", 0, "2001:db8::1", 9001},
                {"fd00::1", 0, "fd00::1", 9001},
                {"::1", 0, "::1", 9001},
                {"stun_1.example-host.org:3478", 0, "stun_1.example-host.org", 3478},
                {"", -EINVAL, NULL, 0},
                {":9001", -EINVAL, NULL, 0},
                {"host:0", -EINVAL, NULL, 0},
                {"host:65536", -EINVAL, NULL, 0},
                {"host:", -EINVAL, NULL, 0},
                {"host:+80", -EINVAL, NULL, 0},
                {"host:80x", -EINVAL, NULL, 0},
                {"[fd00::1", -EINVAL, NULL, 0},
                {"[fd00::1]x", -EINVAL, NULL, 0},
                {"[]:80", -EINVAL, NULL, 0},
                {"[example.org]:80", -EINVAL, NULL, 0},
                {"fd00::1::2", -EINVAL, NULL, 0},
                {"a b", -EINVAL, NULL, 0},
                {"user@host", -EINVAL, NULL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *host = (char *) "untouched";
                uint16_t port = 7;
                int r = config_parse_host_port(cases[i].in, 9001, &host, &port);

                CHECKF(r == cases[i].r, "'%s': r=%d", cases[i].in, r);
                if (cases[i].r == 0) {
                        CHECKF(strcmp(host, cases[i].host) == 0, "'%s': host %s", cases[i].in,
                               host);
                        CHECKF(port == cases[i].port, "'%s': port %u", cases[i].in, port);
                        free(host);
                } else {
                        CHECK(strcmp(host, "untouched") == 0);
                        CHECK_EQ_INT(port, 7);
                }
        }
        char *host = NULL;
        uint16_t port = 0;
        CHECK_EQ_INT(config_parse_host_port(NULL, 1, &host, &port), -EINVAL);
}

static void test_keys(void) {
        uint8_t k[32], k2[32], want[32];
        char b64[45];
        size_t n;
        _cleanup_free_ uint8_t *alice = test_unhex(ALICE_PRIVATE_HEX, &n);

        CHECK_EQ_INT(config_parse_key(ALICE_PRIVATE_HEX, k), 0);
        CHECK_MEM(k, alice, 32);
        config_format_key(k, b64);
        CHECK(strcmp(b64, ALICE_PRIVATE_B64) == 0);
        CHECK_EQ_INT(config_parse_key(ALICE_PRIVATE_B64, k2), 0);
        CHECK_MEM(k2, alice, 32);

        /* Round trip over random keys, edge bytes included. */
        for (int i = 0; i < 64; i++) {
                for (int j = 0; j < 32; j++)
                        want[j] = (uint8_t) (i == 0 ? 0xff : i == 1 ? 0 : rand());
                config_format_key(want, b64);
                CHECK_EQ_INT(strlen(b64), 44);
                CHECK(b64[43] == '=');
                memset(k, 0xaa, sizeof(k));
                CHECK_EQ_INT(config_parse_key(b64, k), 0);
                CHECK_MEM(k, want, 32);
        }

        /* Refused, and the output left alone. */
        static const char *const bad[] = {
                "",
                "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo",   /* no padding */
                "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo==", /* 45 */
                "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=",  /* non-canonical last bits */
                "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC-=",  /* URL-safe alphabet */
                "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25L o=",
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2",
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2g",
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a0",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(k, 0x55, sizeof(k));
                CHECKF(config_parse_key(bad[i], k) == -EINVAL, "'%s'", bad[i]);
                for (int j = 0; j < 32; j++)
                        CHECK(k[j] == 0x55);
        }
        CHECK_EQ_INT(config_parse_key(NULL, k), -EINVAL);
}

/* --- files --------------------------------------------------------------------------------- */

static char tmpdir[] = "/tmp/test-config-XXXXXX";

static const char *tmp_path(const char *name) {
        static char buf[4][256];
        static int next;
        char *b = buf[next++ % 4];

        snprintf(b, sizeof(buf[0]), "%s/%s", tmpdir, name);
        return b;
}

static void write_file(const char *name, const char *text, mode_t mode) {
        const char *path = tmp_path(name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        CHECK(fd >= 0);
        if (fd < 0)
                return;
        CHECK(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
        CHECK(fchmod(fd, mode) == 0);
        close(fd);
}

/* Run config_load with stderr captured into a file; returns what it printed. (returns_nonnull:
 * gcc's -Wformat-overflow under UBSan otherwise fears a NULL in the failure messages.) */
static char *load_capturing(const char *path, struct config **ret, int *ret_r, char *err,
                            size_t errlen) __attribute__((returns_nonnull));
static char *load_capturing(const char *path, struct config **ret, int *ret_r, char *err,
                            size_t errlen) {
        const char *capture = tmp_path("stderr.txt");
        char *out;
        int saved, fd;

        fflush(stderr);
        saved = dup(STDERR_FILENO);
        fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (saved < 0 || fd < 0)
                abort();
        dup2(fd, STDERR_FILENO);
        close(fd);
        *ret_r = config_load(path, ret, err, errlen);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        out = test_read_file(capture, NULL);
        if (!out)
                abort();
        return out;
}

/* What config_load printed: holds want (or, without want, nothing at all). */
static void check_output(const char *out, const char *want, bool present) {
        bool ok = want ? (strstr(out, want) != NULL) == present : out[0] == 0;

        CHECKF(ok, "%s \"%s\" in stderr: %s", present ? "expected" : "unexpected",
               want ? want : "any output", out);
}

static void test_examples(void) {
        const char *root = getenv("SHADOWMESH_SOURCE_ROOT");
        static const char *const names[] = {"node-a.yaml", "node-b.yaml", "identity-a.yaml",
                                            "identity-b.yaml", "peers-a.yaml"};
        struct config *cfg[ELEMENTSOF(names)] = {};
        char path[4096], err[512];

        CHECKF(root != NULL, "SHADOWMESH_SOURCE_ROOT is not set");
        if (!root)
                return;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                int r;
                snprintf(path, sizeof(path), "%s/examples/%s", root, names[i]);
                free(load_capturing(path, &cfg[i], &r, err, sizeof(err)));
                CHECKF(r == 0, "%s: %s", names[i], err);
        }
        struct config *a = cfg[0], *b = cfg[1], *ia = cfg[2], *ib = cfg[3];
        if (a && b) {
                CHECK(!config_identity_mode(a) && !config_identity_mode(b));
                CHECK(a->has_psk && b->has_psk && sodium_memcmp(a->psk, b->psk, 32) == 0);
                CHECK(strcmp(a->tap_device, "tap0") == 0 && strcmp(b->tap_device, "tap0") == 0);
                check_address(&a->addresses[0], AF_INET, "10.0.0.1", 24);
                check_address(&b->addresses[0], AF_INET, "10.0.0.2", 24);
                CHECK(config_first_peer(a)->host &&
                      strcmp(config_first_peer(a)->host, "192.0.2.2") == 0);
                CHECK_EQ_INT(config_first_peer(a)->port, 9001);
                CHECK(config_first_peer(b)->host == NULL);
                CHECK_EQ_INT(a->listen_port, 9001);
        }
        if (ia && ib) {
                uint8_t pub_a[32], pub_b[32];
                CHECK(config_identity_mode(ia) && config_identity_mode(ib));
                CHECK(!ia->has_psk && !ib->has_psk);
                /* Each pins the other's real public key. */
                CHECK(crypto_scalarmult_base(pub_a, ia->private_key) == 0);
                CHECK(crypto_scalarmult_base(pub_b, ib->private_key) == 0);
                CHECK_MEM(config_first_peer(ia)->public_key, pub_b, 32);
                CHECK_MEM(config_first_peer(ib)->public_key, pub_a, 32);
                CHECK_EQ_INT(ia->n_addresses, 2);
                check_address(&ia->addresses[1], AF_INET6, "fd00:5348:4d::1", 64);
                check_address(&ib->addresses[0], AF_INET, "10.0.0.2", 24);
                snprintf(path, sizeof(path), "%s/examples/identity-a.key", root);
                CHECK(ia->private_key_file && strcmp(ia->private_key_file, path) == 0);
                CHECK(config_first_peer(ib)->host == NULL);
        }
        /* The shared list: A drops its own entry and keeps b, as identity-a.yaml's peer:. */
        struct config *la = cfg[4];
        if (ia && la) {
                CHECK(config_identity_mode(la));
                CHECK_EQ_INT(la->n_peers, 1);
                CHECK(config_first_peer(la)->name &&
                      strcmp(config_first_peer(la)->name, "b") == 0);
                CHECK(config_first_peer(la)->host &&
                      strcmp(config_first_peer(la)->host, "192.0.2.2") == 0);
                CHECK_EQ_INT(config_first_peer(la)->port, 9001);
                CHECK(config_first_peer(la)->has_public_key);
                CHECK_MEM(config_first_peer(la)->public_key, config_first_peer(ia)->public_key,
                          32);
                CHECK_MEM(la->private_key, ia->private_key, 32);
        }
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                config_free(cfg[i]);
}

static void test_key_files(void) {
        struct config *c = NULL;
        char err[512], yaml[1024];
        char *out;
        int r;

        /* A key file readable by others: loads, with the loud warning naming it. */
        write_file("psk.hex", "  " HEX_KEY "\n\n", 0644);
        write_file("a.yaml", "encryption:\n  key_file: psk.hex\n", 0644);
        out = load_capturing(tmp_path("a.yaml"), &c, &r, err, sizeof(err));
        CHECKF(r == 0, "%s", err);
        if (c) {
                size_t n;
                _cleanup_free_ uint8_t *psk = test_unhex(HEX_KEY, &n);
                CHECK(c->has_psk);
                CHECK_MEM(c->psk, psk, 32);
                CHECK(c->key_file && strcmp(c->key_file, tmp_path("psk.hex")) == 0);
                CHECK(c->path && strcmp(c->path, tmp_path("a.yaml")) == 0);
        }
        c = config_free(c);
        snprintf(yaml, sizeof(yaml),
                 "WARNING: %s holds a secret key and is readable by other users; run: chmod 600 %s",
                 tmp_path("psk.hex"), tmp_path("psk.hex"));
        check_output(out, yaml, true);
        check_output(out, "a.yaml", false); /* the configuration itself holds no key */
        free(out);

        /* 0600: silent. A base64 key (`wg genpsk`) is accepted in a key file. */
        write_file("psk.b64", "# example only\n" ALICE_PRIVATE_B64 "\n", 0600);
        write_file("b.yaml", "encryption:\n  key_file: psk.b64\n", 0644);
        out = load_capturing(tmp_path("b.yaml"), &c, &r, err, sizeof(err));
        CHECKF(r == 0, "%s", err);
        check_output(out, NULL, false);
        if (c) {
                size_t n;
                _cleanup_free_ uint8_t *alice = test_unhex(ALICE_PRIVATE_HEX, &n);
                CHECK_MEM(c->psk, alice, 32);
        }
        c = config_free(c);
        free(out);

        /* An inline key in a world-readable configuration warns about the configuration. */
        write_file("c.yaml", KEY_SECTION, 0644);
        out = load_capturing(tmp_path("c.yaml"), &c, &r, err, sizeof(err));
        CHECK_EQ_INT(r, 0);
        snprintf(yaml, sizeof(yaml),
                 "WARNING: %s holds a secret key and is readable by other users",
                 tmp_path("c.yaml"));
        check_output(out, yaml, true);
        c = config_free(c);
        free(out);
        chmod(tmp_path("c.yaml"), 0600);
        out = load_capturing(tmp_path("c.yaml"), &c, &r, err, sizeof(err));
        CHECK_EQ_INT(r, 0);
        check_output(out, NULL, false);
        c = config_free(c);
        free(out);

        /* Identity mode with an absolute key path, hex in the file. */
        write_file("id.key", ALICE_PRIVATE_HEX "\n", 0600);
        snprintf(yaml, sizeof(yaml), "identity:\n  private_key_file: %s\npeer:\n  public_key: %s\n",
                 tmp_path("id.key"), EXAMPLE_B_PUBLIC_B64);
        write_file("d.yaml", yaml, 0600);
        out = load_capturing(tmp_path("d.yaml"), &c, &r, err, sizeof(err));
        CHECKF(r == 0, "%s", err);
        if (c) {
                size_t n;
                _cleanup_free_ uint8_t *alice = test_unhex(ALICE_PRIVATE_HEX, &n);
                CHECK(config_identity_mode(c));
                CHECK_MEM(c->private_key, alice, 32);
                CHECK(!c->has_psk);
        }
        c = config_free(c);
        free(out);

        /* Our own public key where the peer's belongs. */
        snprintf(yaml, sizeof(yaml),
                 "identity:\n  private_key_file: id.key\npeer:\n  public_key: %s\n",
                 ALICE_PUBLIC_HEX);
        write_file("e.yaml", yaml, 0600);
        r = config_load(tmp_path("e.yaml"), &c, err, sizeof(err));
        CHECK_EQ_INT(r, -EINVAL);
        snprintf(yaml, sizeof(yaml),
                 "%s:4:15: peer.public_key: is this node's own public key; put the other node's "
                 "key here",
                 tmp_path("e.yaml"));
        CHECKF(strcmp(err, yaml) == 0, "%s", err);

        /* Key file problems name the file, the line and the key. */
        static const struct {
                const char *content;
                const char *error;
        } bad_files[] = {
                {HEX_KEY "0\n", "must hold 64 hex digits or a base64 key, found 65 characters"},
                {"# nothing\n\n", "holds no key (expected 64 hex digits or a base64 key)"},
                {HEX_KEY "\n" HEX_KEY "\n",
                 "holds more than one key line (expected 64 hex digits or a base64 key)"},
                {ALICE_PRIVATE_B64 "x\n",
                 "must hold 64 hex digits or a base64 key, found 45 characters"},
                {"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=\n",
                 "must hold 64 hex digits or a base64 key; its 44 characters are neither valid "
                 "base64 nor hex"},
                {"27308 4db\n",
                 "the key line contains whitespace or NUL bytes (expected 64 hex digits or a "
                 "base64 key)"},
                {"0000000000000000000000000000000000000000000000000000000000000000\n",
                 "holds an all-zero key"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_files); i++) {
                write_file("bad.key", bad_files[i].content, 0600);
                write_file("f.yaml", "network:\n  mtu: 1400\nencryption:\n  key_file: bad.key\n",
                           0600);
                r = config_load(tmp_path("f.yaml"), &c, err, sizeof(err));
                CHECK_EQ_INT(r, -EINVAL);
                snprintf(yaml, sizeof(yaml), "%s:4:13: encryption.key_file: '%s' %s",
                         tmp_path("f.yaml"), tmp_path("bad.key"), bad_files[i].error);
                CHECKF(strcmp(err, yaml) == 0, "\n  want: %s\n  got:  %s", yaml, err);
        }
        write_file(
                "g.yaml",
                "identity:\n  private_key_file: missing.key\npeer:\n  public_key: " ALICE_PUBLIC_B64
                "\n",
                0600);
        r = config_load(tmp_path("g.yaml"), &c, err, sizeof(err));
        CHECK_EQ_INT(r, -ENOENT);
        snprintf(yaml, sizeof(yaml),
                 "%s:2:21: identity.private_key_file: cannot read '%s': No such file or directory",
                 tmp_path("g.yaml"), tmp_path("missing.key"));
        CHECKF(strcmp(err, yaml) == 0, "\n  want: %s\n  got:  %s", yaml, err);

        /* The configuration file itself. */
        r = config_load(tmp_path("nonexistent.yaml"), &c, err, sizeof(err));
        CHECK_EQ_INT(r, -ENOENT);
        CHECKF(strstr(err, "nonexistent.yaml:1:1: cannot read: No such file or directory"), "%s",
               err);
        {
                _cleanup_free_ char *big = malloc(65 * 1024 + 1);
                memset(big, '#', 65 * 1024);
                big[65 * 1024] = 0;
                write_file("big.yaml", big, 0600);
        }
        r = config_load(tmp_path("big.yaml"), &c, err, sizeof(err));
        CHECK_EQ_INT(r, -EFBIG);
        CHECK(c == NULL);

        /* One list on every node: each node drops its own entry, found by the public key of
         * its private key, and keeps the others in the file's order. */
        {
                uint8_t priv_b[32], pub_b[32];
                char b64[45], pub_b64[45];
                size_t n;
                _cleanup_free_ uint8_t *alice = test_unhex(ALICE_PUBLIC_HEX, &n);
                _cleanup_free_ uint8_t *k1 = test_unhex(KEY_1_HEX, &n);
                struct config *cb = NULL;

                randombytes_buf(priv_b, sizeof(priv_b));
                CHECK(crypto_scalarmult_base(pub_b, priv_b) == 0);
                config_format_key(priv_b, b64);
                config_format_key(pub_b, pub_b64);
                snprintf(yaml, sizeof(yaml), "%s\n", b64);
                write_file("b.key", yaml, 0600);
                sodium_memzero(b64, sizeof(b64));
                sodium_memzero(priv_b, sizeof(priv_b));
                /* peers.list is the shared part; a.yaml and b.yaml differ only in the key. */
                snprintf(yaml, sizeof(yaml),
                         "peers:\n"
                         "  - name: alice\n    address: 192.0.2.1\n    public_key: %s\n"
                         "  - name: bob\n    address: 192.0.2.2\n    public_key: %s\n"
                         "  - name: carol\n    public_key: %s\n",
                         ALICE_PUBLIC_B64, pub_b64, KEY_1_HEX);
                char own_a[1100], own_b[1100];
                snprintf(own_a, sizeof(own_a), "identity:\n  private_key_file: id.key\n%s", yaml);
                snprintf(own_b, sizeof(own_b), "identity:\n  private_key_file: b.key\n%s", yaml);
                write_file("list-a.yaml", own_a, 0600);
                write_file("list-b.yaml", own_b, 0600);
                r = config_load(tmp_path("list-a.yaml"), &c, err, sizeof(err));
                CHECKF(r == 0, "%s", err);
                r = config_load(tmp_path("list-b.yaml"), &cb, err, sizeof(err));
                CHECKF(r == 0, "%s", err);
                if (c && c->n_peers == 2) {
                        CHECK(strcmp(c->peers[0].name, "bob") == 0);
                        CHECK_MEM(c->peers[0].public_key, pub_b, 32);
                        CHECK_EQ_INT(c->peers[0].line, 7);
                        CHECK(strcmp(c->peers[1].name, "carol") == 0);
                        CHECK_MEM(c->peers[1].public_key, k1, 32);
                        CHECK(config_first_peer(c) == &c->peers[0]);
                } else
                        CHECKF(false, "a: %zu peers", c ? c->n_peers : 0);
                if (cb && cb->n_peers == 2) {
                        CHECK(strcmp(cb->peers[0].name, "alice") == 0);
                        CHECK_MEM(cb->peers[0].public_key, alice, 32);
                        CHECK(cb->peers[0].host && strcmp(cb->peers[0].host, "192.0.2.1") == 0);
                        CHECK(strcmp(cb->peers[1].name, "carol") == 0);
                        CHECK(cb->peers[1].host == NULL);
                } else
                        CHECKF(false, "b: %zu peers", cb ? cb->n_peers : 0);
                /* Two other nodes: both are peers (the node's own entry left out). */
                if (c)
                        CHECK_EQ_INT(c->n_peers, 2);
                c = config_free(c);
                cb = config_free(cb);

                /* The node and one other: one peer, accepted at start. */
                snprintf(yaml, sizeof(yaml),
                         "identity:\n  private_key_file: b.key\npeers:\n"
                         "  - public_key: %s\n    address: 192.0.2.1\n  - public_key: %s\n",
                         ALICE_PUBLIC_B64, pub_b64);
                write_file("list-c.yaml", yaml, 0600);
                r = config_load(tmp_path("list-c.yaml"), &c, err, sizeof(err));
                CHECKF(r == 0, "%s", err);
                if (c) {
                        CHECK_EQ_INT(c->n_peers, 1);
                        CHECK_MEM(config_first_peer(c)->public_key, alice, 32);
                        CHECK(strcmp(config_first_peer(c)->host, "192.0.2.1") == 0);
                }
                c = config_free(c);

                /* A list of nothing but the node itself admits no one: an error. */
                snprintf(yaml, sizeof(yaml),
                         "identity:\n  private_key_file: b.key\npeers:\n"
                         "  - name: me\n    public_key: %s\n",
                         pub_b64);
                write_file("list-d.yaml", yaml, 0600);
                r = config_load(tmp_path("list-d.yaml"), &c, err, sizeof(err));
                CHECK_EQ_INT(r, -EINVAL);
                CHECK(c == NULL);
                snprintf(yaml, sizeof(yaml),
                         "%s:5:17: peers[0].public_key: is this node's own public key, and the "
                         "list names no other node",
                         tmp_path("list-d.yaml"));
                CHECKF(strcmp(err, yaml) == 0, "\n  want: %s\n  got:  %s", yaml, err);
        }

        static const char *const files[] = {
                "psk.hex",     "psk.b64",     "id.key",     "bad.key", "a.yaml",
                "b.yaml",      "c.yaml",      "d.yaml",     "e.yaml",  "f.yaml",
                "g.yaml",      "big.yaml",    "stderr.txt", "b.key",   "list-a.yaml",
                "list-b.yaml", "list-c.yaml", "list-d.yaml"};
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                unlink(tmp_path(files[i]));
}

/* hostport_format/hostport_join write what hostport_parse reads back. */
static void test_hostport_format(void) {
        static const struct {
                const char *host;
                uint16_t port;
                const char *text;
        } cases[] = {
                { "192.0.2.7", 9001, "192.0.2.7:9001" },
                { "2001:db8::1", 443, "[2001:db8::1]:443" },
                { "relay.example.org", 9545, "relay.example.org:9545" },
        };
        char buf[HOSTPORT_STRLEN];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *joined = hostport_join(cases[i].host, cases[i].port),
                                    *host = NULL;
                const char *why = NULL;
                uint16_t port = 0;

                CHECK_EQ_INT(hostport_format(cases[i].host, cases[i].port, buf, sizeof(buf)), 0);
                CHECK(strcmp(buf, cases[i].text) == 0);
                CHECK(joined && strcmp(joined, cases[i].text) == 0);
                CHECK_EQ_INT(hostport_parse(buf, 1, &host, &port, &why), 0);
                CHECK(host && strcmp(host, cases[i].host) == 0 && port == cases[i].port);
        }
        CHECK_EQ_INT(hostport_format("192.0.2.7", 9001, buf, 8), -ENAMETOOLONG);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_hostport_format();
        test_prototype_file();
        test_prototype_waiting_side();
        test_defaults();
        test_additions();
        test_small_variants();
        test_bad_inputs();
        test_peers();
        test_limits();
        test_host_port();
        test_keys();
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        test_key_files();
        test_examples();
        unlink(tmp_path("stderr.txt"));
        CHECK(rmdir(tmpdir) == 0);
        return test_summary();
}
