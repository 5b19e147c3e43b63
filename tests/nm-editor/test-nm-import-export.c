/* SPDX-License-Identifier: MIT */
/*
 * Import and export through the NetworkManager editor plugin, without a display: the plugin
 * is loaded from its file the way libnm loads it (nm_vpn_editor_plugin_load_from_file), the
 * repository's examples are imported, the connection's vpn.data and secrets are checked item by
 * item, exported back, and the exported YAML is parsed again with the daemon's own parser and
 * compared with the original, field by field.
 *
 * SHADOWMESH_NM_PLUGIN: path of libnm-vpn-plugin-shadowmesh.so;
 * SHADOWMESH_SOURCE_ROOT: the source tree (examples/).
 */
#include "config.h"

#include <NetworkManager.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <sys/stat.h>

#include "nm-shadowmesh-keys.h"
#include "tests.h"

static NMVpnEditorPlugin *plugin;

static void expect_import_error(const char *path, const char *what);
static char *tmpdir;

static const char *example(const char *name) {
        static char buf[4096];
        const char *root = getenv("SHADOWMESH_SOURCE_ROOT");

        g_snprintf(buf, sizeof(buf), "%s/examples/%s", root ? root : ".", name);
        return buf;
}

static char *tmp_path(const char *name) {
        return g_build_filename(tmpdir, name, NULL);
}

static void write_text(const char *path, const char *text) {
        GError *err = NULL;

        if (!g_file_set_contents(path, text, -1, &err)) {
                fprintf(stderr, "cannot write %s: %s\n", path, err->message);
                exit(1);
        }
}

static struct config *parse_file(const char *path) {
        g_autofree char *text = NULL, *dir = g_path_get_dirname(path);
        struct config *c = NULL;
        char err[512] = "";
        gsize len = 0;

        if (!g_file_get_contents(path, &text, &len, NULL))
                return NULL;
        if (config_parse_string(text, len, path, dir, &c, err, sizeof(err)) < 0) {
                fprintf(stderr, "# %s does not parse: %s\n--- %s---\n", path, err, text);
                return NULL;
        }
        return c;
}

static const char *data(NMConnection *c, const char *key) {
        return nm_setting_vpn_get_data_item(nm_connection_get_setting_vpn(c), key);
}

static const char *secret(NMConnection *c, const char *key) {
        return nm_setting_vpn_get_secret(nm_connection_get_setting_vpn(c), key);
}

static guint n_data(NMConnection *c) {
        return nm_setting_vpn_get_num_data_items(nm_connection_get_setting_vpn(c));
}

#define CHECK_STR(a, b)                                                                            \
        do {                                                                                       \
                const char *_a_ = (a), *_b_ = (b);                                                 \
                CHECKF(g_strcmp0(_a_, _b_) == 0, "'%s' != '%s'", _a_ ? _a_ : "(null)",             \
                       _b_ ? _b_ : "(null)");                                                      \
        } while (0)

/* What survives the trip YAML -> connection -> YAML: everything but the daemon section's
 * listen host, log level and control group, which a connection does not carry. */
static void check_same_config(const struct config *a, const struct config *b) {
        CHECK_STR(a->tap_device, b->tap_device);
        CHECK_EQ_INT(a->n_addresses, b->n_addresses);
        for (size_t i = 0; i < MIN(a->n_addresses, b->n_addresses); i++) {
                CHECK_EQ_INT(a->addresses[i].family, b->addresses[i].family);
                CHECK_EQ_INT(a->addresses[i].prefixlen, b->addresses[i].prefixlen);
                CHECK_MEM(&a->addresses[i].addr, &b->addresses[i].addr,
                          a->addresses[i].family == AF_INET ? 4 : 16);
        }
        CHECK_EQ_INT(a->mtu, b->mtu);
        CHECK_EQ_INT(a->listen_port, b->listen_port);
        CHECK_EQ_INT(a->has_psk, b->has_psk);
        CHECK(sodium_memcmp(a->psk, b->psk, sizeof(a->psk)) == 0);
        CHECK_EQ_INT(a->has_private_key, b->has_private_key);
        CHECK(sodium_memcmp(a->private_key, b->private_key, sizeof(a->private_key)) == 0);
        CHECK_EQ_INT(config_first_peer(a)->has_public_key, config_first_peer(b)->has_public_key);
        CHECK_EQ_INT(a->n_peers, b->n_peers);
        for (size_t k = 1; k < MIN(a->n_peers, b->n_peers); k++) {
                CHECK_STR(a->peers[k].host, b->peers[k].host);
                CHECK_EQ_INT(a->peers[k].port, b->peers[k].port);
                CHECK_EQ_INT(a->peers[k].has_public_key, b->peers[k].has_public_key);
                CHECK_MEM(a->peers[k].public_key, b->peers[k].public_key, NOISE_PUBLIC_KEY_LEN);
        }
        CHECK_MEM(config_first_peer(a)->public_key, config_first_peer(b)->public_key,
                  NOISE_PUBLIC_KEY_LEN);
        CHECK_STR(config_first_peer(a)->host, config_first_peer(b)->host);
        CHECK_EQ_INT(config_first_peer(a)->port, config_first_peer(b)->port);
        CHECK_EQ_INT(a->nat_enabled, b->nat_enabled);
        CHECK_STR(a->stun_host, b->stun_host);
        CHECK_EQ_INT(a->stun_port, b->stun_port);
        CHECK_EQ_INT(a->relay_enabled, b->relay_enabled);
        CHECK_STR(a->relay_host, b->relay_host);
        CHECK_EQ_INT(a->relay_port, b->relay_port);
}

static NMConnection *import(const char *path) {
        GError *err = NULL;
        NMConnection *c = nm_vpn_editor_plugin_import(plugin, path, &err);

        CHECKF(c, "import %s: %s", path, err ? err->message : "");
        g_clear_error(&err);
        if (c) {
                /* What nmcli does before it adds an imported connection. */
                CHECKF(nm_connection_normalize(c, NULL, NULL, &err), "normalize: %s",
                       err ? err->message : "");
                g_clear_error(&err);
        }
        return c;
}

static gboolean export(NMConnection *c, const char *path) {
        GError *err = NULL;
        gboolean ok = nm_vpn_editor_plugin_export(plugin, path, c, &err);

        CHECKF(ok, "export %s: %s", path, err ? err->message : "");
        g_clear_error(&err);
        return ok;
}

/* Export, parse again, compare with the original file's configuration. */
static void round_trip(NMConnection *c, const char *original, const char *name) {
        g_autofree char *path = tmp_path(name);
        _cleanup_(config_freep) struct config *a = parse_file(original);
        _cleanup_(config_freep) struct config *b = NULL;

        CHECK(a);
        if (!export(c, path) || !a)
                return;
        b = parse_file(path);
        CHECKF(b, "exported %s parses", name);
        if (b)
                check_same_config(a, b);
}

static void test_plugin(void) {
        g_autofree char *name = NULL, *desc = NULL, *service = NULL, *file = NULL;
        NMConnection *c = nm_simple_connection_new();
        NMSettingConnection *s_con = NM_SETTING_CONNECTION(nm_setting_connection_new());

        g_object_get(plugin, NM_VPN_EDITOR_PLUGIN_NAME, &name, NM_VPN_EDITOR_PLUGIN_DESCRIPTION,
                     &desc, NM_VPN_EDITOR_PLUGIN_SERVICE, &service, NULL);
        CHECK_STR(name, "ShadowMesh");
        CHECK(desc && strlen(desc) > 10);
        CHECK_STR(service, NM_DBUS_SERVICE_SHADOWMESH);
        CHECK_EQ_INT(nm_vpn_editor_plugin_get_capabilities(plugin),
                     NM_VPN_EDITOR_PLUGIN_CAPABILITY_IMPORT |
                             NM_VPN_EDITOR_PLUGIN_CAPABILITY_EXPORT |
                             NM_VPN_EDITOR_PLUGIN_CAPABILITY_IPV6);

        g_object_set(s_con, NM_SETTING_CONNECTION_ID, "Office/VPN", NULL);
        nm_connection_add_setting(c, NM_SETTING(s_con));
        file = nm_vpn_editor_plugin_get_suggested_filename(plugin, c);
        CHECK_STR(file, "Office-VPN.yaml");

        /* No GTK in this program: the plugin says so instead of loading an editor library
         * that would drag a GTK into it. */
        {
                GError *err = NULL;
                NMVpnEditor *editor = nm_vpn_editor_plugin_get_editor(plugin, c, &err);

                CHECK(!editor);
                CHECKF(err && strstr(err->message, "needs GTK 3 or GTK 4"), "%s",
                       err ? err->message : "(no error)");
                g_clear_error(&err);
        }
        g_object_unref(c);
}

/* The prototype's own file: listen_address is its HTTP control API (127.0.0.1:9090), so the
 * connection's listen port is the tunnel's default, 9001, never 9090. */
static void test_import_prototype(void) {
        g_autofree char *path = tmp_path("daemon.yaml");
        g_autoptr(NMConnection) c = NULL;

        write_text(path, "daemon:\n"
                         "  listen_address: \"127.0.0.1:9090\"\n"
                         "  log_level: \"info\"\n"
                         "network:\n"
                         "  tap_device: \"tap0\"\n"
                         "  local_ip: \"10.0.0.2/24\"\n"
                         "encryption:\n"
                         "  key: \"273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f\"\n"
                         "peer:\n"
                         "  address: \"192.0.2.1:9001\"\n"
                         "nat:\n"
                         "  enabled: true\n"
                         "  stun_server: \"stun.l.google.com:19302\"\n");
        c = import(path);
        if (!c)
                return;
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LISTEN_PORT), "9001");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER), "192.0.2.1:9001");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LOCAL_IP), "10.0.0.2/24");
}

static void test_import_shared_key(void) {
        g_autoptr(NMConnection) c = import(example("node-a.yaml"));
        NMSettingSecretFlags flags = 99;

        if (!c)
                return;
        CHECK_STR(nm_connection_get_id(c), "node-a");
        CHECK_STR(nm_connection_get_connection_type(c), NM_SETTING_VPN_SETTING_NAME);
        CHECK_STR(nm_setting_vpn_get_service_type(nm_connection_get_setting_vpn(c)),
                  NM_DBUS_SERVICE_SHADOWMESH);
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER), "192.0.2.2:9001");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LOCAL_IP), "10.0.0.1/24");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_MTU), "1380");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_TAP_DEVICE), "tap0");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LISTEN_PORT), "9001");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_MODE), NM_SHADOWMESH_MODE_SHARED_KEY);
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_STUN_SERVER), "stun.l.google.com:19302");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_RELAY), NM_SHADOWMESH_NO);
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_RELAY_SERVER), NULL);
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY), NULL);
        /* The 8 items above plus key-flags. */
        CHECK_EQ_INT(n_data(c), 9);
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY),
                  "273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f");
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_PRIVATE_KEY), NULL);
        CHECK(nm_setting_get_secret_flags(NM_SETTING(nm_connection_get_setting_vpn(c)),
                                          NM_SHADOWMESH_SECRET_KEY, &flags, NULL));
        CHECK_EQ_INT(flags, NM_SETTING_SECRET_FLAG_NONE);

        round_trip(c, example("node-a.yaml"), "node-a.yaml");
        {
                /* The key is inline: the exported file is private. */
                g_autofree char *path = tmp_path("node-a.yaml");
                struct stat st;

                CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        }
}

static void test_import_identity(void) {
        g_autoptr(NMConnection) c = import(example("identity-a.yaml"));
        g_autofree char *key = NULL, *exported_key = NULL, *key_path = NULL, *yaml_path = NULL;
        struct stat st;

        if (!c)
                return;
        CHECK_STR(nm_connection_get_id(c), "identity-a");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER), "192.0.2.2:9001");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LOCAL_IP), "10.0.0.1/24, fd00:5348:4d::1/64");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_MODE), NM_SHADOWMESH_MODE_IDENTITY);
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY),
                  "DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_STUN_SERVER), "stun.l.google.com:19302");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_RELAY_SERVER), "relay.example.org:9545");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_RELAY), NM_SHADOWMESH_NO);
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY), NULL);
        /* The private key comes from identity-a.key, next to the YAML file. */
        CHECK(g_file_get_contents(example("identity-a.key"), &key, NULL, NULL));
        if (key) /* the key, then a comment line */
                key[strcspn(key, "\n")] = 0;
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_PRIVATE_KEY), key);
        /* 10 items: peer local-ip mtu tap-device listen-port mode peer-public-key stun-server
         * relay-server relay, plus private-key-flags. */
        CHECK_EQ_INT(n_data(c), 11);

        round_trip(c, example("identity-a.yaml"), "id-a.yaml");
        /* The private key went to id-a.key, readable by its owner only; the YAML holds no
         * secret. */
        key_path = tmp_path("id-a.key");
        yaml_path = tmp_path("id-a.yaml");
        CHECK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(stat(yaml_path, &st) == 0 && (st.st_mode & 0777) == 0644);
        CHECK(g_file_get_contents(key_path, &exported_key, NULL, NULL));
        CHECK(exported_key && key && g_str_equal(g_strstrip(exported_key), key));
}

static void test_import_waiting_peer(void) {
        g_autoptr(NMConnection) c = import(example("node-b.yaml"));

        if (!c)
                return;
        /* peer.address "" (wait for the peer): no peer; the editor asks for one. */
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER), NULL);
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LOCAL_IP), "10.0.0.2/24");
        round_trip(c, example("node-b.yaml"), "node-b.yaml");
}

/* peers: with one entry imports as peer: does. In identity mode the node's own entry of a
 * list shared by every node is dropped first; a list with more than one other node imports as
 * "peer" (the first) and "peers" (the others), and exports as the same peers: list. */
static void test_import_peers_list(void) {
        g_autofree char *one = tmp_path("one.yaml"), *shared = tmp_path("shared.yaml");
        g_autofree char *many = tmp_path("many-peers.yaml"), *text = NULL, *yaml = NULL;
        g_autofree char *key_path = g_strdup(example("identity-a.key"));
        uint8_t priv[32], pub[32];
        char pub_a[45];
        g_autoptr(NMConnection) c1 = NULL;
        g_autoptr(NMConnection) c2 = NULL;
        g_autoptr(NMConnection) c3 = NULL;
        g_autoptr(NMConnection) c4 = NULL;
        g_autofree char *three = tmp_path("three.yaml"), *noaddr = tmp_path("no-address.yaml");
        g_autofree char *many_shared = tmp_path("many-shared.yaml");

        write_text(one, "encryption:\n"
                        "  key: \"273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f\"\n"
                        "peers:\n"
                        "  - name: office\n"
                        "    address: \"192.0.2.7:9004\"\n");
        c1 = import(one);
        if (c1) {
                CHECK_STR(data(c1, NM_SHADOWMESH_KEY_PEER), "192.0.2.7:9004");
                CHECK_STR(data(c1, NM_SHADOWMESH_KEY_MODE), NM_SHADOWMESH_MODE_SHARED_KEY);
                round_trip(c1, one, "one-out.yaml");
        }

        /* identity-a.key's public key, as the list on every node would hold it. */
        CHECK(g_file_get_contents(key_path, &text, NULL, NULL));
        if (!text)
                return;
        text[strcspn(text, "\n")] = 0;
        CHECK(config_parse_key(text, priv) == 0);
        sodium_memzero(text, strlen(text));
        CHECK(crypto_scalarmult_base(pub, priv) == 0);
        sodium_memzero(priv, sizeof(priv));
        config_format_key(pub, pub_a);
        yaml = g_strdup_printf("identity:\n"
                               "  private_key_file: \"%s\"\n"
                               "peers:\n"
                               "  - name: a\n"
                               "    public_key: \"%s\"\n"
                               "  - name: b\n"
                               "    address: \"192.0.2.2:9001\"\n"
                               "    public_key: \"DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=\"\n",
                               key_path, pub_a);
        write_text(shared, yaml);
        c2 = import(shared);
        if (c2) {
                CHECK_STR(data(c2, NM_SHADOWMESH_KEY_PEER), "192.0.2.2:9001");
                CHECK_STR(data(c2, NM_SHADOWMESH_KEY_MODE), NM_SHADOWMESH_MODE_IDENTITY);
                CHECK_STR(data(c2, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY),
                          "DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=");
        }

        /* Several other nodes: the first is "peer", the others "peers" with their keys. */
        g_free(yaml);
        yaml = g_strdup_printf("identity:\n"
                               "  private_key_file: \"%s\"\n"
                               "peers:\n"
                               "  - public_key: \"%s\"\n"
                               "  - address: \"192.0.2.2:9001\"\n"
                               "    public_key: \"DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=\"\n"
                               "  - address: \"[fd00::3]:9003\"\n"
                               "    public_key: \"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\"\n"
                               "  - address: node-d.example\n"
                               "    public_key: \"Wr0aLz8I4yVX2EnV6M/4Ne6V9dfnJBbNU6uUzPmW6yM=\"\n",
                               key_path, pub_a);
        write_text(many, yaml);
        c3 = import(many);
        if (c3) {
                CHECK_STR(data(c3, NM_SHADOWMESH_KEY_PEER), "192.0.2.2:9001");
                CHECK_STR(data(c3, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY),
                          "DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=");
                CHECK_STR(data(c3, NM_SHADOWMESH_KEY_PEERS),
                          "[fd00::3]:9003=hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo= "
                          "node-d.example:9001=Wr0aLz8I4yVX2EnV6M/4Ne6V9dfnJBbNU6uUzPmW6yM=");
                /* Back out as a peers: list of the three other nodes (the own entry is not in
                 * a connection), in the same order. */
                g_free(yaml);
                yaml = g_strdup_printf("identity:\n"
                                       "  private_key_file: \"%s\"\n"
                                       "peers:\n"
                                       "  - address: \"192.0.2.2:9001\"\n"
                                       "    public_key: "
                                       "\"DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=\"\n"
                                       "  - address: \"[fd00::3]:9003\"\n"
                                       "    public_key: "
                                       "\"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\"\n"
                                       "  - address: node-d.example\n"
                                       "    public_key: "
                                       "\"Wr0aLz8I4yVX2EnV6M/4Ne6V9dfnJBbNU6uUzPmW6yM=\"\n",
                                       key_path);
                write_text(three, yaml);
                round_trip(c3, three, "many-out.yaml");
        }

        /* Shared-key mode: addresses only. */
        write_text(many_shared,
                   "encryption:\n"
                   "  key: \"273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f\"\n"
                   "peers:\n"
                   "  - address: \"192.0.2.7:9004\"\n"
                   "  - address: \"192.0.2.8\"\n");
        c4 = import(many_shared);
        if (c4) {
                CHECK_STR(data(c4, NM_SHADOWMESH_KEY_PEER), "192.0.2.7:9004");
                CHECK_STR(data(c4, NM_SHADOWMESH_KEY_PEERS), "192.0.2.8:9001");
                round_trip(c4, many_shared, "many-shared-out.yaml");
        }

        /* A further node without an address cannot be Connected by the service. */
        g_free(yaml);
        yaml = g_strdup_printf("identity:\n"
                               "  private_key_file: \"%s\"\n"
                               "peers:\n"
                               "  - public_key: \"%s\"\n"
                               "  - public_key: \"DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=\"\n"
                               "  - public_key: \"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\"\n",
                               key_path, pub_a);
        write_text(noaddr, yaml);
        g_free(yaml);
        yaml = g_strdup_printf("%s:5: peers: this entry has no address, but a NetworkManager "
                               "connection with several peers connects to each by its address",
                               noaddr);
        expect_import_error(noaddr, yaml);
}

/* More addresses than NetworkManager takes from a VPN (one per family): the rest go to
 * ipv4/ipv6.addresses and come back on export. IPv6 peer and servers with ports, relay on. */
static void test_import_many_addresses(void) {
        g_autofree char *path = tmp_path("many.yaml"), *psk = tmp_path("many.psk");
        g_autoptr(NMConnection) c = NULL;
        NMSettingIPConfig *s_ip4, *s_ip6;

        /* A key file in base64 (as wg genpsk prints it) */
        write_text(psk, "# comment\n  KYMk7ByjTsDpWYCxrRx4mlNTNk0dIdXcL0KWiLuj3Ks=  \n");
        write_text(path, "network:\n"
                         "  tap_device: \"sm-lab\"\n"
                         "  local_ip: [\"10.1.0.1/24\", \"10.2.0.1/16\", \"fd01::1/64\", "
                         "\"fd02::1/48\", \"192.168.7.1\"]\n"
                         "  mtu: 1420\n"
                         "  listen_port: 9100\n"
                         "encryption:\n"
                         "  key_file: \"many.psk\"\n"
                         "peer:\n"
                         "  address: \"[fd00::2]:9002\"\n"
                         "nat:\n"
                         "  enabled: yes\n"
                         "relay:\n"
                         "  enabled: on\n"
                         "  server: \"[2001:db8::9]\"\n");
        c = import(path);
        if (!c)
                return;
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER), "[fd00::2]:9002");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LOCAL_IP), "10.1.0.1/24, fd01::1/64");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_TAP_DEVICE), "sm-lab");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_MTU), "1420");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_LISTEN_PORT), "9100");
        /* nat.enabled without a STUN server uses the relay for STUN. */
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_STUN_SERVER), "[2001:db8::9]:9545");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_RELAY_SERVER), "[2001:db8::9]:9545");
        CHECK_STR(data(c, NM_SHADOWMESH_KEY_RELAY), NM_SHADOWMESH_YES);
        /* base64 in the file, 64 hex digits in the connection. */
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY),
                  "298324ec1ca34ec0e95980b1ad1c789a5353364d1d21d5dc2f429688bba3dcab");
        s_ip4 = nm_connection_get_setting_ip4_config(c);
        s_ip6 = nm_connection_get_setting_ip6_config(c);
        CHECK(s_ip4 && nm_setting_ip_config_get_num_addresses(s_ip4) == 2);
        CHECK(s_ip6 && nm_setting_ip_config_get_num_addresses(s_ip6) == 1);
        if (s_ip4 && nm_setting_ip_config_get_num_addresses(s_ip4) == 2) {
                NMIPAddress *a = nm_setting_ip_config_get_address(s_ip4, 1);

                CHECK_STR(nm_ip_address_get_address(a), "192.168.7.1");
                CHECK_EQ_INT(nm_ip_address_get_prefix(a), 32);
        }
        if (s_ip6 && nm_setting_ip_config_get_num_addresses(s_ip6) == 1) {
                NMIPAddress *a = nm_setting_ip_config_get_address(s_ip6, 0);

                CHECK_STR(nm_ip_address_get_address(a), "fd02::1");
                CHECK_EQ_INT(nm_ip_address_get_prefix(a), 48);
        }
        /* The order changes (local-ip first), so compare the sets through a re-import. */
        {
                g_autofree char *out = tmp_path("many-out.yaml");
                _cleanup_(config_freep) struct config *b = NULL;

                if (export(c, out) && (b = parse_file(out))) {
                        CHECK_EQ_INT(b->n_addresses, 5);
                        CHECK_STR(config_first_peer(b)->host, "fd00::2");
                        CHECK_EQ_INT(config_first_peer(b)->port, 9002);
                        CHECK_STR(b->relay_host, "2001:db8::9");
                        CHECK(b->relay_enabled && b->nat_enabled);
                        CHECK_EQ_INT(b->mtu, 1420);
                        CHECK_EQ_INT(b->listen_port, 9100);
                } else
                        CHECK(!"many-out.yaml exported and parsed");
        }
}

static NMConnection *new_connection(const char *id);

/* The daemon takes at most 16 addresses: export refuses more. */
static void test_export_too_many_addresses(void) {
        g_autoptr(NMConnection) c = new_connection("many");
        NMSettingIPConfig *s_ip4 = NM_SETTING_IP_CONFIG(nm_setting_ip4_config_new());
        g_autofree char *path = tmp_path("too-many.yaml");
        GError *err = NULL;

        g_object_set(s_ip4, NM_SETTING_IP_CONFIG_METHOD, NM_SETTING_IP4_CONFIG_METHOD_AUTO, NULL);
        for (int i = 1; i <= 16; i++) {
                char a[32];
                NMIPAddress *ip;

                g_snprintf(a, sizeof(a), "10.9.%d.1", i);
                ip = nm_ip_address_new(AF_INET, a, 24, NULL);
                nm_setting_ip_config_add_address(s_ip4, ip);
                nm_ip_address_unref(ip);
        }
        nm_connection_add_setting(c, NM_SETTING(s_ip4));
        nm_setting_vpn_add_data_item(nm_connection_get_setting_vpn(c), NM_SHADOWMESH_KEY_PEER,
                                     "peer.example.org");
        nm_setting_vpn_add_data_item(nm_connection_get_setting_vpn(c), NM_SHADOWMESH_KEY_LOCAL_IP,
                                     "10.0.0.1/24");
        CHECK(!nm_vpn_editor_plugin_export(plugin, path, c, &err));
        CHECKF(err && strstr(err->message, "at most 16"), "%s", err ? err->message : "");
        g_clear_error(&err);
        /* 16 are fine. */
        nm_setting_vpn_remove_data_item(nm_connection_get_setting_vpn(c),
                                        NM_SHADOWMESH_KEY_LOCAL_IP);
        CHECK(export(c, path));
}

static NMConnection *new_connection(const char *id) {
        NMConnection *c = nm_simple_connection_new();
        NMSettingConnection *s_con = NM_SETTING_CONNECTION(nm_setting_connection_new());
        NMSettingVpn *s_vpn = NM_SETTING_VPN(nm_setting_vpn_new());

        g_object_set(s_con, NM_SETTING_CONNECTION_ID, id, NM_SETTING_CONNECTION_UUID,
                     "3f2a9c1e-0000-4000-8000-000000000001", NM_SETTING_CONNECTION_TYPE,
                     NM_SETTING_VPN_SETTING_NAME, NULL);
        g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, NM_DBUS_SERVICE_SHADOWMESH, NULL);
        nm_connection_add_setting(c, NM_SETTING(s_con));
        nm_connection_add_setting(c, NM_SETTING(s_vpn));
        return c;
}

/* Secrets kept out of NetworkManager (agent-owned or asked for): the YAML names key files for
 * the user to fill, and is otherwise complete. Unset items take the documented defaults. */
static void test_export_without_secrets(void) {
        g_autoptr(NMConnection) c = new_connection("Lab \"west\"\nsecond line");
        NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(c);
        g_autofree char *path = tmp_path("nosecret.yaml"), *text = NULL;
        _cleanup_(config_freep) struct config *b = NULL;
        char err[256] = "";
        int r;

        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER, "peer.example.org");
        nm_setting_set_secret_flags(NM_SETTING(s_vpn), NM_SHADOWMESH_SECRET_KEY,
                                    NM_SETTING_SECRET_FLAG_AGENT_OWNED, NULL);
        if (!export(c, path))
                return;
        CHECK(g_file_get_contents(path, &text, NULL, NULL));
        /* Parsed without reading key files: the file itself is valid. */
        r = text ? config_parse_string(text, strlen(text), path, NULL, &b, err, sizeof(err)) : -EIO;
        CHECKF(r == 0, "%s", err);
        if (!b)
                return;
        CHECK_STR(b->key_file, "nosecret.psk");
        CHECK_STR(b->tap_device, "sm-3f2a9c1e");
        CHECK_EQ_INT(b->mtu, 1380);
        CHECK_EQ_INT(b->listen_port, 9001);
        CHECK_STR(config_first_peer(b)->host, "peer.example.org");
        CHECK_EQ_INT(config_first_peer(b)->port, 9001);
        CHECK(!b->nat_enabled && !b->relay_enabled);
        /* The connection name went into a comment on one line. */
        CHECK(text && g_str_has_prefix(text, "# ShadowMesh configuration exported from the "
                                             "NetworkManager connection “Lab \"west\" second "
                                             "line”.\n"));

        /* Identity mode without the private key: the YAML names the key file it expects. */
        config_free(TAKE_PTR(b));
        g_free(text);
        text = NULL;
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE, NM_SHADOWMESH_MODE_IDENTITY);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY,
                                     "DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=");
        if (!export(c, path))
                return;
        CHECK(g_file_get_contents(path, &text, NULL, NULL));
        r = text ? config_parse_string(text, strlen(text), path, NULL, &b, err, sizeof(err)) : -EIO;
        CHECKF(r == 0, "%s", err);
        if (b) {
                CHECK_STR(b->private_key_file, "nosecret.key");
                CHECK(!b->key_file && !b->has_psk);
        }
        {
                g_autofree char *key_path = tmp_path("nosecret.key");

                CHECK(!g_file_test(key_path, G_FILE_TEST_EXISTS));
        }
}

static void expect_export_error(NMConnection *c, const char *what) {
        g_autofree char *path = tmp_path("refused.yaml");
        GError *err = NULL;

        CHECKF(!nm_vpn_editor_plugin_export(plugin, path, c, &err), "export refused: %s", what);
        CHECKF(err && err->message && strstr(err->message, what), "message '%s' names '%s'",
               err ? err->message : "(none)", what);
        g_clear_error(&err);
}

/* Two public keys (any valid keys). */
#define KEY_B "DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ="
#define KEY_C "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="

/* A connection made with nmcli is not checked by the editor: export refuses what the daemon
 * would refuse, and names it. */
static void test_export_refuses(void) {
        g_autoptr(NMConnection) c = new_connection("bad");
        NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(c);

        nm_setting_vpn_add_secret(s_vpn, NM_SHADOWMESH_SECRET_KEY, "00");
        expect_export_error(c, "Shared key");
        nm_setting_vpn_add_secret(
                s_vpn, NM_SHADOWMESH_SECRET_KEY,
                "273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f");
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MTU, "100");
        expect_export_error(c, "MTU");
        nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_KEY_MTU);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP, "10.0.0.1/24, 10.0.0.300");
        expect_export_error(c, "10.0.0.300");
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP, "10.0.0.1/24, 10.9.0.1/24");
        expect_export_error(c, "one IPv4");
        nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_RELAY, NM_SHADOWMESH_YES);
        expect_export_error(c, "relay server");
        nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_KEY_RELAY);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_TAP_DEVICE, "tap/0");
        expect_export_error(c, "tap/0");
        nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_KEY_TAP_DEVICE);
        /* A further peer that is the node of "peer" again (a v4-mapped spelling, default port):
         * the service would refuse the connection. */
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER, "192.0.2.1");
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEERS, "192.0.2.7 ::ffff:192.0.2.1");
        expect_export_error(c, "Further peers: “::ffff:192.0.2.1” is the node of Peer "
                               "(“192.0.2.1”) again");
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEERS, "192.0.2.7 192.0.2.1:9002");
        {
                g_autofree char *ok = tmp_path("peers-ok.yaml");

                CHECK(export(c, ok));
        }
        /* Identity mode: a further peer's key that is Peer's, or another entry's, again. */
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE, NM_SHADOWMESH_MODE_IDENTITY);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY, KEY_B);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEERS, "192.0.2.7=" KEY_B);
        expect_export_error(c, "Further peers: “192.0.2.7=" KEY_B "” has the same public key as "
                               "Peer");
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEERS,
                                     "192.0.2.7=" KEY_C " 192.0.2.8=" KEY_C);
        expect_export_error(c, "Further peers: “192.0.2.8=" KEY_C "” has the same public key as "
                               "“192.0.2.7=" KEY_C "”");
        nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY);
        nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_KEY_PEERS);
        nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE, NM_SHADOWMESH_MODE_IDENTITY);
        expect_export_error(c, "Peer public key");
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE, "psk");
        expect_export_error(c, "psk");
        g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, "org.freedesktop.NetworkManager.openvpn",
                     NULL);
        expect_export_error(c, "Not a ShadowMesh");
}

static void expect_import_error(const char *path, const char *what) {
        GError *err = NULL;
        NMConnection *c = nm_vpn_editor_plugin_import(plugin, path, &err);

        CHECKF(!c, "import of %s refused", path);
        CHECKF(err && strstr(err->message, what), "message '%s' names '%s'",
               err ? err->message : "(none)", what);
        g_clear_error(&err);
        g_clear_object(&c);
}

/* The daemon parser's messages come through: file:line:column, the key, the near miss. */
static void test_import_errors(void) {
        g_autofree char *typo = tmp_path("typo.yaml"), *nokey = tmp_path("nokey.yaml");
        g_autofree char *missing = tmp_path("does-not-exist.yaml");
        g_autofree char *other = tmp_path("client.ovpn");

        write_text(typo, "network:\n  tap_devcie: \"tap0\"\nencryption:\n  key: \"x\"\n");
        expect_import_error(typo, "typo.yaml:2:3: network.tap_devcie: unknown key, did you mean "
                                  "'tap_device'?");
        write_text(nokey, "identity:\n  private_key_file: \"absent.key\"\npeer:\n  public_key: "
                          "\"DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=\"\n");
        expect_import_error(nokey, "absent.key");
        expect_import_error(missing, "does-not-exist.yaml");
        write_text(other, "client\ndev tun\nremote vpn.example.org 1194\n");
        expect_import_error(other, "client.ovpn");
}

static void remove_tree(const char *dir) {
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(dir, name, NULL);

                g_unlink(p);
        }
        if (d)
                g_dir_close(d);
        g_rmdir(dir);
}

int main(void) {
        const char *path = getenv("SHADOWMESH_NM_PLUGIN");
        GError *err = NULL;

        if (!path) {
                fprintf(stderr, "SHADOWMESH_NM_PLUGIN is not set\n");
                return 1;
        }
        /* Messages are compared in English. */
        g_setenv("LANGUAGE", "C", TRUE);
        plugin = nm_vpn_editor_plugin_load_from_file(path, NM_DBUS_SERVICE_SHADOWMESH, -1, NULL,
                                                     NULL, &err);
        if (!plugin) {
                fprintf(stderr, "cannot load %s: %s\n", path, err->message);
                return 1;
        }
        tmpdir = g_dir_make_tmp("nm-editor-XXXXXX", &err);
        if (!tmpdir) {
                fprintf(stderr, "tmpdir: %s\n", err->message);
                return 1;
        }
        umask(022);

        test_plugin();
        test_import_shared_key();
        test_import_prototype();
        test_import_identity();
        test_import_waiting_peer();
        test_import_peers_list();
        test_import_many_addresses();
        test_export_without_secrets();
        test_export_too_many_addresses();
        test_export_refuses();
        test_import_errors();

        remove_tree(tmpdir);
        g_free(tmpdir);
        g_object_unref(plugin);
        return test_summary();
}
