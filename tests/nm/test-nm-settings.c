/* SPDX-License-Identifier: MIT */
/*
 * The service's view of a connection (nm-plugin/src/settings.c): every vpn.data / vpn.secrets
 * check with the key its message must name, the secret rules shared with the auth dialog, the
 * bus label and endpoint parsing, and the private files: modes 0600/0700, no secret in the YAML,
 * and the daemon itself (`shadowmeshd --check`, $SHADOWMESHD) accepting what was written.
 */
#include <NetworkManager.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nm-shadowmesh-keys.h"
#include "settings.h"
#include "tests.h"

#define UUID "3f2a9c1e-5b7d-4e0f-9a1b-2c3d4e5f6a7b"
#define KEY "273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f"
#define ZERO_KEY "0000000000000000000000000000000000000000000000000000000000000000"

/* conn("k=v", ..., NULL): "k=v" goes to vpn.data, "!k=v" to vpn.secrets. */
static NMConnection *conn(const char *first, ...) {
        NMConnection *c = nm_simple_connection_new();
        NMSettingConnection *s_con = NM_SETTING_CONNECTION(nm_setting_connection_new());
        NMSettingVpn *s_vpn = NM_SETTING_VPN(nm_setting_vpn_new());
        va_list ap;

        g_object_set(s_con, NM_SETTING_CONNECTION_ID, "office", NM_SETTING_CONNECTION_UUID, UUID,
                     NM_SETTING_CONNECTION_TYPE, NM_SETTING_VPN_SETTING_NAME, NULL);
        g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, NM_DBUS_SERVICE_SHADOWMESH, NULL);
        va_start(ap, first);
        for (const char *kv = first; kv; kv = va_arg(ap, const char *)) {
                bool is_secret = kv[0] == '!';
                const char *eq = strchr(kv, '=');
                g_autofree char *k = g_strndup(kv + is_secret, (size_t) (eq - kv - is_secret));

                if (is_secret)
                        nm_setting_vpn_add_secret(s_vpn, k, eq + 1);
                else
                        nm_setting_vpn_add_data_item(s_vpn, k, eq + 1);
        }
        va_end(ap);
        nm_connection_add_setting(c, NM_SETTING(s_con));
        nm_connection_add_setting(c, NM_SETTING(s_vpn));
        return c;
}

/* settings_from_connection must refuse with BAD_ARGUMENTS and a message naming `names`. */
static void refused(NMConnection *c, const char *names, int line) {
        g_autoptr(GError) error = NULL;
        struct settings *s = settings_from_connection(c, &error);

        test_check(!s, __FILE__, line, "refused", "accepted");
        settings_free(s);
        if (!error)
                return;
        test_check(g_error_matches(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_BAD_ARGUMENTS),
                   __FILE__, line, "BAD_ARGUMENTS", "got %s/%d", g_quark_to_string(error->domain),
                   error->code);
        test_check(strstr(error->message, names) != NULL, __FILE__, line, "message names key",
                   "'%s' not in '%s'", names, error->message);
        g_object_unref(c);
}
#define REFUSED(c, names) refused((c), (names), __LINE__)

static struct settings *accepted(NMConnection *c, int line) {
        g_autoptr(GError) error = NULL;
        struct settings *s = settings_from_connection(c, &error);

        test_check(s != NULL, __FILE__, line, "accepted", "%s", error ? error->message : "");
        g_object_unref(c);
        return s;
}
#define ACCEPTED(c) accepted((c), __LINE__)

static void test_shared_key_defaults(void) {
        struct settings *s = ACCEPTED(conn("peer=192.0.2.1", "!key=" KEY, NULL));

        if (!s)
                return;
        CHECK(strcmp(s->peer, "192.0.2.1") == 0);
        CHECK(strcmp(s->peer_host, "192.0.2.1") == 0);
        CHECK_EQ_INT(s->peer_port, 9001);
        CHECK(strcmp(s->tap_device, "sm-3f2a9c1e") == 0);
        CHECK(strcmp(s->instance, "nm-3f2a9c1e") == 0);
        CHECK_EQ_INT(s->mtu, 1380);
        CHECK_EQ_INT(s->listen_port, 9001);
        CHECK(!s->identity);
        CHECK(strcmp(s->key, KEY) == 0);
        CHECK(!s->ip4.set && !s->ip6.set);
        CHECK_EQ_INT(s->relay, -1);
        settings_free(s);
}

static void test_peer_forms(void) {
        struct settings *s;

        s = ACCEPTED(conn("peer=vpn.example.org:9002", "!key=" KEY, NULL));
        if (s) {
                CHECK(strcmp(s->peer_host, "vpn.example.org") == 0);
                CHECK_EQ_INT(s->peer_port, 9002);
        }
        settings_free(s);
        s = ACCEPTED(conn("peer=[fd00::1]:9003", "!key=" KEY, NULL));
        if (s) {
                CHECK(strcmp(s->peer_host, "fd00::1") == 0);
                CHECK_EQ_INT(s->peer_port, 9003);
        }
        settings_free(s);
        s = ACCEPTED(conn("peer=fd00::1", "!key=" KEY, NULL));
        if (s) {
                CHECK(strcmp(s->peer_host, "fd00::1") == 0);
                CHECK_EQ_INT(s->peer_port, 9001);
        }
        settings_free(s);

        REFUSED(conn("!key=" KEY, NULL), "'peer' is missing");
        REFUSED(conn("peer=", "!key=" KEY, NULL), "'peer' is missing");
        /* No peer but a relay: the relay introduces the peer (the daemon's Connect with ""). */
        s = ACCEPTED(conn("relay-server=relay.example.org", "!key=" KEY, NULL));
        if (s) {
                CHECK(strcmp(s->peer, "") == 0);
                CHECK(s->relay_server != NULL);
        }
        settings_free(s);
        REFUSED(conn("relay-server=relay.example.org", "relay=no", "!key=" KEY, NULL),
                "'peer' is missing");
        REFUSED(conn("peer=[fd00::1", "!key=" KEY, NULL), "'peer'");
        REFUSED(conn("peer=[10.0.0.1]:9001", "!key=" KEY, NULL), "'peer'");
        REFUSED(conn("peer=host:0", "!key=" KEY, NULL), "'peer'");
        REFUSED(conn("peer=host:70000", "!key=" KEY, NULL), "1 to 65535");
        REFUSED(conn("peer=host:9x", "!key=" KEY, NULL), "'peer'");
        REFUSED(conn("peer=bad host", "!key=" KEY, NULL), "'peer'");
        REFUSED(conn("peer=fd00::zz", "!key=" KEY, NULL), "'peer'");
}

static void test_local_ip(void) {
        struct settings *s;
        char buf[64];

        s = ACCEPTED(conn("peer=h", "local-ip=10.0.0.2/24, fd00::2/64", "!key=" KEY, NULL));
        if (s) {
                CHECK(s->ip4.set && s->ip6.set);
                CHECK_EQ_INT(s->ip4.prefixlen, 24);
                CHECK_EQ_INT(s->ip6.prefixlen, 64);
                CHECK(strcmp(inet_ntop(AF_INET, &s->ip4.addr.in, buf, sizeof(buf)), "10.0.0.2") ==
                      0);
                CHECK(strcmp(inet_ntop(AF_INET6, &s->ip6.addr.in6, buf, sizeof(buf)), "fd00::2") ==
                      0);
        }
        settings_free(s);
        s = ACCEPTED(conn("peer=h", "local-ip=10.0.0.2", "!key=" KEY, NULL));
        if (s)
                CHECK(s->ip4.set && s->ip4.prefixlen == 32 && !s->ip6.set);
        settings_free(s);

        REFUSED(conn("peer=h", "local-ip=10.0.0.2/24,10.0.0.3/24", "!key=" KEY, NULL),
                "'local-ip': more than one IPv4");
        REFUSED(conn("peer=h", "local-ip=fd00::2/64 fd00::3/64", "!key=" KEY, NULL),
                "more than one IPv6");
        REFUSED(conn("peer=h", "local-ip=10.0.0.300/24", "!key=" KEY, NULL), "'local-ip'");
        REFUSED(conn("peer=h", "local-ip=10.0.0.2/33", "!key=" KEY, NULL), "prefix length");
        REFUSED(conn("peer=h", "local-ip=fd00::2/129", "!key=" KEY, NULL), "prefix length");
        REFUSED(conn("peer=h", "local-ip=10.0.0.2/0", "!key=" KEY, NULL), "prefix length");
}

static void test_numbers_and_names(void) {
        struct settings *s;

        s = ACCEPTED(conn("peer=h", "mtu=1420", "listen-port=9100", "tap-device=smtap0",
                          "!key=" KEY, NULL));
        if (s) {
                CHECK_EQ_INT(s->mtu, 1420);
                CHECK_EQ_INT(s->listen_port, 9100);
                CHECK(strcmp(s->tap_device, "smtap0") == 0);
                /* the instance name follows the UUID, not the TAP name */
                CHECK(strcmp(s->instance, "nm-3f2a9c1e") == 0);
        }
        settings_free(s);
        REFUSED(conn("peer=h", "mtu=575", "!key=" KEY, NULL), "'mtu'");
        REFUSED(conn("peer=h", "mtu=9001", "!key=" KEY, NULL), "576 to 9000");
        REFUSED(conn("peer=h", "mtu=-1", "!key=" KEY, NULL), "'mtu'");
        REFUSED(conn("peer=h", "listen-port=0", "!key=" KEY, NULL), "'listen-port'");
        REFUSED(conn("peer=h", "listen-port=65536", "!key=" KEY, NULL), "'listen-port'");
        REFUSED(conn("peer=h", "tap-device=a23456789012345x", "!key=" KEY, NULL), "'tap-device'");
        REFUSED(conn("peer=h", "tap-device=a/b", "!key=" KEY, NULL), "'tap-device'");
        REFUSED(conn("peer=h", "tap-device=a b", "!key=" KEY, NULL), "'tap-device'");
        REFUSED(conn("peer=h", "tap-device=..", "!key=" KEY, NULL), "'tap-device'");
        REFUSED(conn("peer=h", "mode=psk", "!key=" KEY, NULL), "'mode'");
}

static void test_keys(void) {
        struct settings *s;

        REFUSED(conn("peer=h", NULL), "'key' is missing");
        REFUSED(conn("peer=h", "!key=" ZERO_KEY, NULL), "vpn.secrets 'key': the key is all zeros");
        REFUSED(conn("peer=h", "!key=273084db", NULL),
                "vpn.secrets 'key': expected 64 hex digits, got 8");
        REFUSED(conn("peer=h",
                     "!key=273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f8"
                     "zz",
                     NULL),
                "'key'");

        /* identity mode */
        REFUSED(conn("peer=h", "mode=identity", NULL), "'private-key' is missing");
        REFUSED(conn("peer=h", "mode=identity", "!private-key=abc", NULL), "'private-key'");
        REFUSED(conn("peer=h", "mode=identity",
                     "!private-key=YHhRbSzAxjUfOYPaIzt2c7i6/9A4XsvMcKfKuqjBNmM=", NULL),
                "'peer-public-key' is missing");
        REFUSED(conn("peer=h", "mode=identity", "peer-public-key=AAAA",
                     "!private-key=YHhRbSzAxjUfOYPaIzt2c7i6/9A4XsvMcKfKuqjBNmM=", NULL),
                "'peer-public-key'");
        s = ACCEPTED(conn("peer=h", "mode=identity",
                          "peer-public-key=Wr0aLz8I4yVX2EnV6M/4Ne6V9dfnJBbNU6uUzPmW6yM=",
                          "!private-key=YHhRbSzAxjUfOYPaIzt2c7i6/9A4XsvMcKfKuqjBNmM=", NULL));
        if (s) {
                CHECK(s->identity);
                CHECK(s->key == NULL); /* the psk is optional */
                CHECK(strcmp(s->private_key, "YHhRbSzAxjUfOYPaIzt2c7i6/9A4XsvMcKfKuqjBNmM=") == 0);
        }
        settings_free(s);
}

static void test_relay(void) {
        struct settings *s;

        REFUSED(conn("peer=h", "relay=yes", "!key=" KEY, NULL), "'relay-server' is not set");
        REFUSED(conn("peer=h", "relay=maybe", "!key=" KEY, NULL), "'relay'");
        REFUSED(conn("peer=h", "relay-server=a b", "!key=" KEY, NULL), "'relay-server'");
        REFUSED(conn("peer=h", "stun-server=h:99999", "!key=" KEY, NULL), "'stun-server'");
        s = ACCEPTED(conn("peer=h", "relay=yes", "relay-server=relay.example.org:9545",
                          "stun-server=stun.example.org", "!key=" KEY, NULL));
        if (s) {
                CHECK_EQ_INT(s->relay, 1);
                CHECK(strcmp(s->relay_server, "relay.example.org:9545") == 0);
                CHECK(strcmp(s->stun_server, "stun.example.org") == 0);
        }
        settings_free(s);
}

static void test_secret_rules(void) {
        NMConnection *c;

        CHECK(settings_secret_required(NULL, "key", NULL));
        CHECK(settings_secret_required("shared-key", "key", "1"));
        CHECK(!settings_secret_required("shared-key", "private-key", NULL));
        CHECK(settings_secret_required("identity", "private-key", NULL));
        CHECK(!settings_secret_required("identity", "key", NULL));
        CHECK(!settings_secret_required("identity", "key", "0"));
        CHECK(settings_secret_required("identity", "key", "1"));
        CHECK(settings_secret_required("identity", "key", "2"));
        CHECK(!settings_secret_required("identity", "key", "5"));
        CHECK(!settings_secret_required("identity", "other", "1"));

        c = conn("peer=h", "key-flags=1", NULL);
        CHECK(settings_need_secrets(c));
        g_object_unref(c);
        c = conn("peer=h", "!key=" KEY, NULL);
        CHECK(!settings_need_secrets(c));
        g_object_unref(c);
        c = conn("peer=h", "mode=identity", "!key=" KEY, NULL);
        CHECK(settings_need_secrets(c));
        g_object_unref(c);
        c = conn("peer=h", "mode=identity", "!private-key=x", NULL);
        CHECK(!settings_need_secrets(c));
        g_object_unref(c);
        c = conn("peer=h", "mode=identity", "key-flags=1", "!private-key=x", NULL);
        CHECK(settings_need_secrets(c));
        g_object_unref(c);
}

static void test_label_and_endpoint(void) {
        struct in6_addr a6;
        struct in_addr a4;
        char buf[64];
        g_autofree char *l1 = settings_bus_label("nm-3f2a9c1e");
        g_autofree char *l2 = settings_bus_label("1abc");
        g_autofree char *l3 = settings_bus_label("");

        CHECK(strcmp(l1, "nm_2d3f2a9c1e") == 0);
        CHECK(strcmp(l2, "_31abc") == 0);
        CHECK(strcmp(l3, "_") == 0);

        CHECK_EQ_INT(settings_parse_endpoint("192.0.2.1:9001", &a6, &a4), AF_INET);
        CHECK(strcmp(inet_ntop(AF_INET, &a4, buf, sizeof(buf)), "192.0.2.1") == 0);
        CHECK_EQ_INT(settings_parse_endpoint("[2001:db8::7]:9001", &a6, &a4), AF_INET6);
        CHECK(strcmp(inet_ntop(AF_INET6, &a6, buf, sizeof(buf)), "2001:db8::7") == 0);
        CHECK_EQ_INT(settings_parse_endpoint("[::ffff:198.51.100.9]:9001", &a6, &a4), AF_INET);
        CHECK(strcmp(inet_ntop(AF_INET, &a4, buf, sizeof(buf)), "198.51.100.9") == 0);
        CHECK_EQ_INT(settings_parse_endpoint("", &a6, &a4), 0);
        CHECK_EQ_INT(settings_parse_endpoint(NULL, &a6, &a4), 0);
        CHECK_EQ_INT(settings_parse_endpoint("host.example:9001", &a6, &a4), 0);
}

static int file_mode(const char *path) {
        struct stat st;
        return lstat(path, &st) < 0 ? -1 : (int) (st.st_mode & 07777);
}

static bool file_has(const char *path, const char *needle) {
        g_autofree char *text = NULL;
        return g_file_get_contents(path, &text, NULL, NULL) && strstr(text, needle);
}

/* shadowmeshd --check CONFIG: "CONFIG: ok" and status 0, else prints what it said. */
static bool daemon_accepts(const char *config) {
        const char *daemon = getenv("SHADOWMESHD");
        g_autofree char *out = NULL, *err = NULL;
        const char *argv[] = {daemon, "--check", config, NULL};
        int status = -1;

        if (!daemon) {
                fprintf(stderr, "SHADOWMESHD is not set\n");
                return false;
        }
        if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                          &status, NULL))
                return false;
        if (status != 0 || !strstr(out, ": ok"))
                fprintf(stderr, "shadowmeshd --check %s: %s%s", config, out, err);
        return status == 0 && strstr(out, ": ok");
}

static char *make_dir(const char *template) {
        g_autofree char *t = g_build_filename(g_get_tmp_dir(), template, NULL);
        char *d = g_mkdtemp_full(t, 0700);
        if (!d)
                abort();
        return g_strdup(d);
}

static void test_files_shared_key(void) {
        /* A quote and a backslash in the directory: the YAML must quote them right. */
        g_autofree char *dir = make_dir("sm-nm-\"q\\-XXXXXX");
        g_autofree char *config = NULL, *key_file = NULL, *identity_file = NULL;
        g_autoptr(GError) error = NULL;
        struct settings *s;
        mode_t old = umask(0);

        s = ACCEPTED(conn("peer=192.0.2.1", "local-ip=10.0.0.2/24", "mtu=1400", "tap-device=smtap9",
                          "listen-port=9111", "stun-server=stun.example.org",
                          "relay-server=relay.example.org:9545", "relay=no", "!key=" KEY, NULL));
        if (!s) {
                umask(old);
                return;
        }
        CHECK(settings_write_files(s, true, dir, &config, &error));
        umask(old);
        if (!config) {
                fprintf(stderr, "%s\n", error ? error->message : "?");
                settings_free(s);
                return;
        }
        key_file = g_build_filename(dir, "shared.key", NULL);
        identity_file = g_build_filename(dir, "identity.key", NULL);
        CHECK_EQ_INT(file_mode(config), 0600);
        CHECK_EQ_INT(file_mode(key_file), 0600);
        CHECK_EQ_INT(file_mode(identity_file), -1);
        CHECK(file_has(key_file, KEY));
        CHECK(!file_has(config, KEY));
        CHECK(file_has(config, "tap_device: \"smtap9\""));
        CHECK(file_has(config, "mtu: 1400"));
        CHECK(file_has(config, "listen_port: 9111"));
        CHECK(file_has(config, "log_level: \"debug\""));
        CHECK(file_has(config, "enabled: false"));
        /* NetworkManager owns the addresses and the service gives the peer to Connect. */
        CHECK(!file_has(config, "local_ip"));
        CHECK(!file_has(config, "address:"));
        CHECK(daemon_accepts(config));

        /* A second write into the same directory must not follow or reuse what is there. */
        {
                g_autofree char *again = NULL;
                g_autoptr(GError) e2 = NULL;
                CHECK(!settings_write_files(s, false, dir, &again, &e2));
                CHECK(e2 && strstr(e2->message, "shared.key"));
                /* ...and a failed write removes what it wrote, but not the first set */
        }
        CHECK_EQ_INT(settings_wipe_dir(dir), 0);
        CHECK(!g_file_test(dir, G_FILE_TEST_EXISTS));
        CHECK_EQ_INT(settings_wipe_dir(dir), 0); /* missing is fine */
        settings_free(s);
}

static char *run_daemon(const char *cmd, const char *input) {
        const char *daemon = getenv("SHADOWMESHD");
        g_autofree char *line = NULL;
        g_autofree char *q_daemon = NULL, *q_input = NULL;
        char *out = NULL;
        int status = -1;

        if (!daemon)
                return NULL;
        q_daemon = g_shell_quote(daemon);
        q_input = g_shell_quote(input ? input : "");
        line = input ? g_strdup_printf("sh -c 'printf %%s\\\\n \"$1\" | \"$0\" %s' %s %s", cmd,
                                       q_daemon, q_input)
                     : g_strdup_printf("%s %s", q_daemon, cmd);
        if (!g_spawn_command_line_sync(line, &out, NULL, &status, NULL) || status != 0) {
                g_free(out);
                return NULL;
        }
        g_strstrip(out);
        return out;
}

static void test_files_identity(void) {
        g_autofree char *dir = make_dir("sm-nm-id-XXXXXX");
        g_autofree char *priv = run_daemon("genkey", NULL);
        g_autofree char *peer_priv = run_daemon("genkey", NULL);
        g_autofree char *peer_pub = peer_priv ? run_daemon("pubkey", peer_priv) : NULL;
        g_autofree char *config = NULL, *identity_file = NULL, *key_file = NULL;
        g_autofree char *pk_item = NULL, *priv_item = NULL;
        g_autoptr(GError) error = NULL;
        struct settings *s;

        CHECKF(priv && peer_pub, "shadowmeshd genkey/pubkey failed");
        if (!priv || !peer_pub)
                return;
        pk_item = g_strconcat("peer-public-key=", peer_pub, NULL);
        priv_item = g_strconcat("!private-key=", priv, NULL);
        s = ACCEPTED(conn("peer=[fd00::9]:9001", "mode=identity", pk_item, priv_item, NULL));
        if (!s)
                return;
        CHECK(settings_write_files(s, false, dir, &config, &error));
        if (!config) {
                settings_free(s);
                return;
        }
        identity_file = g_build_filename(dir, "identity.key", NULL);
        key_file = g_build_filename(dir, "shared.key", NULL);
        CHECK_EQ_INT(file_mode(identity_file), 0600);
        CHECK_EQ_INT(file_mode(key_file), -1); /* no psk */
        CHECK(file_has(identity_file, priv));
        CHECK(!file_has(config, priv));
        CHECK(file_has(config, peer_pub));
        CHECK(file_has(config, "log_level: \"info\""));
        CHECK(daemon_accepts(config));

        /* wiping overwrites before unlinking: an open descriptor sees zeros */
        {
                int fd = open(identity_file, O_RDONLY);
                char buf[64] = {1};
                ssize_t n;

                CHECK_EQ_INT(settings_wipe_file(identity_file), 0);
                CHECK(!g_file_test(identity_file, G_FILE_TEST_EXISTS));
                n = fd >= 0 ? pread(fd, buf, sizeof(buf), 0) : -1;
                CHECK_EQ_INT(n, (ssize_t) strlen(priv) + 1);
                CHECK(n > 0 && buf[0] == 0 && buf[n - 1] == 0);
                if (fd >= 0)
                        close(fd);
        }
        CHECK_EQ_INT(settings_wipe_dir(dir), 0);
        settings_free(s);
}

/* settings_check_secrets: the secrets' form alone, before any other setting (a malformed one is
 * reported as a failed login); what is missing is not its business. */
static void check_secrets(NMConnection *c, const char *want, int line) {
        g_autoptr(GError) error = NULL;
        bool ok = settings_check_secrets(c, &error);

        if (!want)
                test_check(ok, __FILE__, line, "secrets well-formed", "%s",
                           error ? error->message : "");
        else {
                test_check(!ok, __FILE__, line, "secrets refused", "accepted");
                test_check(error && strstr(error->message, want), __FILE__, line,
                           "message says why", "'%s' not in '%s'", want,
                           error ? error->message : "(no error)");
        }
        g_object_unref(c);
}
#define CHECK_SECRETS(c, want) check_secrets((c), (want), __LINE__)

static void test_check_secrets(void) {
        CHECK_SECRETS(conn("peer=h", "!key=" KEY, NULL), NULL);
        /* no peer, no key: other checks' and NeedSecrets' business */
        CHECK_SECRETS(conn(NULL), NULL);
        CHECK_SECRETS(conn("!key=" KEY, NULL), NULL);
        /* 63 and 65 digits, a non-digit, zeros: even with another setting wrong too */
        CHECK_SECRETS(conn("peer=",
                           "!key=273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f8"
                           "8",
                           NULL),
                      "vpn.secrets 'key': expected 64 hex digits, got 63");
        CHECK_SECRETS(conn("peer=h", "!key=" KEY "0", NULL),
                      "vpn.secrets 'key': expected 64 hex digits, got 65");
        CHECK_SECRETS(conn("peer=h",
                           "!key=273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f8"
                           "zz",
                           NULL),
                      "vpn.secrets 'key': expected 64 hex digits, got a character that is not "
                      "one at position 63");
        CHECK_SECRETS(conn("peer=h", "!key=" ZERO_KEY, NULL), "the key is all zeros");
        /* identity mode: the private key's form */
        CHECK_SECRETS(conn("peer=h", "mode=identity", "!private-key=abc", NULL),
                      "vpn.secrets 'private-key'");
        CHECK_SECRETS(conn("peer=h", "mode=identity",
                           "!private-key=YHhRbSzAxjUfOYPaIzt2c7i6/9A4XsvMcKfKuqjBNmM=", NULL),
                      NULL);
}

#define PUB1 "Wr0aLz8I4yVX2EnV6M/4Ne6V9dfnJBbNU6uUzPmW6yM="
#define PUB2 "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define PUB3 "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
#define PRIV "!private-key=YHhRbSzAxjUfOYPaIzt2c7i6/9A4XsvMcKfKuqjBNmM="

/* "peers": further peers beside "peer", "host[:port][=PUBLICKEY]" separated by spaces or ';'. */
static void test_peers(void) {
        static const struct {
                const char *peers;
                const char *names; /* NULL: accepted */
        } shared[] = {
                {"192.0.2.7", NULL},
                {"192.0.2.7 [2001:db8::9]:9002;node-c.example:9003", NULL},
                {" ; 192.0.2.7 ;; ", NULL},
                {"192.0.2.7=" PUB2, NULL}, /* a key is checked, not used, in shared-key mode */
                {"192.0.2.7, 192.0.2.8", "vpn.data 'peers': '192.0.2.7,'"},
                {"192.0.2.7:0", "vpn.data 'peers': '192.0.2.7:0': the port"},
                {"bad/host", "vpn.data 'peers': 'bad/host'"},
                {"[fd00::1", "vpn.data 'peers': '[fd00::1'"},
                {"=" PUB2, "vpn.data 'peers': '=" PUB2 "': the address is missing"},
                {"192.0.2.7=AAAA", "vpn.data 'peers': '192.0.2.7=AAAA': 'AAAA' is not a public"},
                {"h", "vpn.data 'peers': 'h': this address is already a peer"},
                {"H.:9001", "vpn.data 'peers': 'H.:9001': this address is already a peer"},
                {"192.0.2.7 192.0.2.7:9001", "'192.0.2.7:9001': this address is already"},
                {"[::ffff:192.0.2.7] 192.0.2.7", "'192.0.2.7': this address is already"},
        };
        struct settings *s;

        for (size_t k = 0; k < G_N_ELEMENTS(shared); k++) {
                g_autofree char *item = g_strconcat("peers=", shared[k].peers, NULL);

                if (shared[k].names)
                        REFUSED(conn("peer=h", item, "!key=" KEY, NULL), shared[k].names);
                else
                        settings_free(ACCEPTED(conn("peer=h", item, "!key=" KEY, NULL)));
        }

        /* One peer: as before, no further ones. */
        s = ACCEPTED(conn("peer=h", "!key=" KEY, NULL));
        if (s)
                CHECK_EQ_INT(s->n_peers, 0);
        settings_free(s);
        s = ACCEPTED(conn("peer=h", "peers=", "!key=" KEY, NULL));
        if (s)
                CHECK_EQ_INT(s->n_peers, 0);
        settings_free(s);

        s = ACCEPTED(conn("peer=h", "peers=192.0.2.7 [2001:db8::9]:9002;node-c.example:9003",
                          "!key=" KEY, NULL));
        if (s) {
                CHECK_EQ_INT(s->n_peers, 3);
                CHECK(strcmp(s->peers[0], "192.0.2.7") == 0);
                CHECK(strcmp(s->peers[1], "[2001:db8::9]:9002") == 0);
                CHECK(strcmp(s->peers[2], "node-c.example:9003") == 0);
                CHECK(s->peers_public_key[0] == NULL);
                CHECK(strcmp(s->peer, "h") == 0); /* the first peer stays the gateway */
        }
        settings_free(s);

        /* "peers" needs "peer", also with a relay to introduce the first one. */
        REFUSED(conn("peers=192.0.2.7", "relay-server=relay.example.org", "!key=" KEY, NULL),
                "vpn.data 'peers' needs 'peer'");

        /* identity mode: every entry carries its public key, each key once. */
        s = ACCEPTED(conn("peer=h", "mode=identity", "peer-public-key=" PUB1,
                          "peers=192.0.2.7=" PUB2 "; [fd00::2]:9002=" PUB3, PRIV, NULL));
        if (s) {
                CHECK_EQ_INT(s->n_peers, 2);
                CHECK(strcmp(s->peers[0], "192.0.2.7") == 0);
                CHECK(strcmp(s->peers_public_key[0], PUB2) == 0);
                CHECK(strcmp(s->peers[1], "[fd00::2]:9002") == 0);
                CHECK(strcmp(s->peers_public_key[1], PUB3) == 0);
        }
        settings_free(s);
        REFUSED(conn("peer=h", "mode=identity", "peer-public-key=" PUB1, "peers=192.0.2.7", PRIV,
                     NULL),
                "vpn.data 'peers': '192.0.2.7': identity mode needs the peer's public key");
        REFUSED(conn("peer=h", "mode=identity", "peer-public-key=" PUB1,
                     "peers=192.0.2.7=" PUB1, PRIV, NULL),
                "the same public key as 'peer-public-key'");
        REFUSED(conn("peer=h", "mode=identity", "peer-public-key=" PUB1,
                     "peers=192.0.2.7=" PUB2 " 192.0.2.8=" PUB2, PRIV, NULL),
                "the same public key as entry '192.0.2.7'");
}

int main(void) {
        test_shared_key_defaults();
        test_peer_forms();
        test_local_ip();
        test_numbers_and_names();
        test_keys();
        test_peers();
        test_check_secrets();
        test_relay();
        test_secret_rules();
        test_label_and_endpoint();
        test_files_shared_key();
        test_files_identity();
        return test_summary();
}
