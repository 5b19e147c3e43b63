/* SPDX-License-Identifier: MIT */
/*
 * The editor as NetworkManager's front ends load it, under a real X server (Xvfb): the .name
 * file -> nm_vpn_plugin_info_load_editor_plugin -> nm_vpn_editor_plugin_get_editor, which
 * loads the GTK 3 or GTK 4 editor library to match this program. Built once per GTK version.
 *
 *   1. a new connection: identity mode with a fresh key pair; no peer is refused;
 *   2. an imported connection (examples/node-a.yaml): every widget shows its value, and
 *      update_connection gives back the same vpn.data and secrets;
 *   3. every widget filled programmatically: update_connection writes exactly those values;
 *   4. wrong input in each field is refused with a message naming the field; libnma's storage
 *      menu set to "ask every time" keeps the key out of the connection;
 *   5. the filled editor in a window, saved as a PNG (GTK's own rendering of the window).
 *
 * usage: editor-probe NAME_FILE OUT_PNG
 * SHADOWMESH_SOURCE_ROOT: the source tree (examples/).
 */
#include <NetworkManager.h>
#include <gtk/gtk.h>
#include <nma-ui-utils.h>
#include <string.h>

#include "nm-shadowmesh-keys.h"
#include "tests.h"

#if GTK_CHECK_VERSION(4, 0, 0)
#define entry_get_text(w) gtk_editable_get_text(GTK_EDITABLE(w))
#define entry_set_text(w, t) gtk_editable_set_text(GTK_EDITABLE(w), (t))
#define check_get_active(w) gtk_check_button_get_active(GTK_CHECK_BUTTON(w))
#define check_set_active(w, a) gtk_check_button_set_active(GTK_CHECK_BUTTON(w), (a))
#else
#define entry_get_text(w) gtk_entry_get_text(GTK_ENTRY(w))
#define entry_set_text(w, t) gtk_entry_set_text(GTK_ENTRY(w), (t))
#define check_get_active(w) gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(w))
#define check_set_active(w, a) gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(w), (a))
#endif

/* examples/identity-a.key and its public key; DIwb... is machine B's public key. */
static const char PRIVATE_A[] = "WFzW6nRh5IinuxG6LOR+zi0OcE+cHwbeT72PbGdM8Gs=";
static const char PUBLIC_A[] = "k819PLG7QyeUQFWPM+3GVZXBGh8cUwGK2uhwgOS3bF8=";
/* Two further peers' public keys (any valid keys). */
#define PUBLIC_C "Wr0aLz8I4yVX2EnV6M/4Ne6V9dfnJBbNU6uUzPmW6yM="
#define PUBLIC_D "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
static const char PUBLIC_B[] = "DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=";
static const char PSK[] = "273084db4483448d759eb9d0148cd039077f7c4c2526a71892c0a8289f51f88f";

static NMVpnEditorPlugin *plugin;
static const char *service;

#define CHECK_STR(a, b)                                                                            \
        do {                                                                                       \
                const char *_a_ = (a), *_b_ = (b);                                                 \
                CHECKF(g_strcmp0(_a_, _b_) == 0, "'%s' != '%s'", _a_ ? _a_ : "(null)",             \
                       _b_ ? _b_ : "(null)");                                                      \
        } while (0)

/* --- finding widgets by name ----------------------------------------------------------------- */

#if !GTK_CHECK_VERSION(4, 0, 0)
static GtkWidget *find_widget(GtkWidget *w, const char *name);
struct find {
        const char *name;
        GtkWidget *found;
};
static void find_cb(GtkWidget *w, gpointer data) {
        struct find *f = data;

        if (!f->found)
                f->found = find_widget(w, f->name);
}
#endif

static GtkWidget *find_widget(GtkWidget *w, const char *name) {
        if (g_strcmp0(gtk_widget_get_name(w), name) == 0)
                return w;
#if GTK_CHECK_VERSION(4, 0, 0)
        for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
                GtkWidget *found = find_widget(c, name);

                if (found)
                        return found;
        }
        return NULL;
#else
        struct find f = {name, NULL};

        if (GTK_IS_CONTAINER(w))
                gtk_container_forall(GTK_CONTAINER(w), find_cb, &f);
        return f.found;
#endif
}

static GtkWidget *root_widget;

static GtkWidget *W(const char *name) {
        GtkWidget *w = find_widget(root_widget, name);

        if (!w) {
                fprintf(stderr, "editor has no widget named %s\n", name);
                exit(1);
        }
        return w;
}

/* --- connections ------------------------------------------------------------------------------ */

static NMConnection *blank_connection(void) {
        NMConnection *c = nm_simple_connection_new();
        NMSettingConnection *s_con = NM_SETTING_CONNECTION(nm_setting_connection_new());
        NMSettingVpn *s_vpn = NM_SETTING_VPN(nm_setting_vpn_new());

        g_object_set(s_con, NM_SETTING_CONNECTION_ID, "Office", NM_SETTING_CONNECTION_UUID,
                     "5d1e0f6a-8f5b-4b8e-9a53-2f0e8f1c7a11", NM_SETTING_CONNECTION_TYPE,
                     NM_SETTING_VPN_SETTING_NAME, NULL);
        g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, service, NULL);
        nm_connection_add_setting(c, NM_SETTING(s_con));
        nm_connection_add_setting(c, NM_SETTING(s_vpn));
        return c;
}

static NMVpnEditor *editor_for(NMConnection *c) {
        GError *err = NULL;
        NMVpnEditor *e = nm_vpn_editor_plugin_get_editor(plugin, c, &err);

        if (!e) {
                fprintf(stderr, "get_editor: %s\n", err->message);
                exit(1);
        }
        root_widget = GTK_WIDGET(nm_vpn_editor_get_widget(e));
        return e;
}

static const char *data(NMConnection *c, const char *key) {
        return nm_setting_vpn_get_data_item(nm_connection_get_setting_vpn(c), key);
}

static const char *secret(NMConnection *c, const char *key) {
        return nm_setting_vpn_get_secret(nm_connection_get_setting_vpn(c), key);
}

/* update_connection must fail, with a message that contains what. */
static void expect_refused(NMVpnEditor *e, NMConnection *c, const char *what) {
        GError *err = NULL;
        gboolean ok = nm_vpn_editor_update_connection(e, c, &err);

        CHECKF(!ok, "refused: %s", what);
        CHECKF(err && strstr(err->message, what), "message '%s' names '%s'",
               err ? err->message : "(none)", what);
        g_clear_error(&err);
}

static gboolean update(NMVpnEditor *e, NMConnection *c) {
        GError *err = NULL;
        gboolean ok = nm_vpn_editor_update_connection(e, c, &err);

        CHECKF(ok, "update_connection: %s", err ? err->message : "");
        g_clear_error(&err);
        return ok;
}

/* 1. A new connection. */
static void test_new(void) {
        g_autoptr(NMConnection) c = blank_connection();
        g_autoptr(NMVpnEditor) e = editor_for(c);
        const char *priv, *pub;

        CHECK_STR(gtk_combo_box_get_active_id(GTK_COMBO_BOX(W("mode_combo"))),
                  NM_SHADOWMESH_MODE_IDENTITY);
        priv = entry_get_text(W("private_key_entry"));
        pub = entry_get_text(W("public_key_entry"));
        CHECK_EQ_INT(strlen(priv), 44);
        CHECK_EQ_INT(strlen(pub), 44);
        CHECK(strcmp(priv, pub) != 0);
        CHECK(!gtk_entry_get_visibility(GTK_ENTRY(W("private_key_entry"))));
        CHECK_EQ_INT(gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(W("mtu_spin"))),
                     NM_SHADOWMESH_DEFAULT_MTU);
        expect_refused(e, c, "Peer");
        /* The Generate buttons: a new 64-hex shared key, a new key pair. */
        {
                g_autofree char *old_priv = g_strdup(priv), *old_pub = g_strdup(pub);
                const char *key;

                CHECK_STR(entry_get_text(W("key_entry")), "");
                g_signal_emit_by_name(W("key_generate_button"), "clicked");
                key = entry_get_text(W("key_entry"));
                CHECKF(strlen(key) == 64 && strspn(key, "0123456789abcdef") == 64, "key '%s'", key);
                g_signal_emit_by_name(W("private_key_generate_button"), "clicked");
                CHECK(strcmp(entry_get_text(W("private_key_entry")), old_priv) != 0);
                CHECK(strcmp(entry_get_text(W("public_key_entry")), old_pub) != 0);
                CHECK_EQ_INT(strlen(entry_get_text(W("public_key_entry"))), 44);
        }
        /* The public key follows the private key. */
        entry_set_text(W("private_key_entry"), PRIVATE_A);
        CHECK_STR(entry_get_text(W("public_key_entry")), PUBLIC_A);
        entry_set_text(W("private_key_entry"), "not a key");
        CHECK_STR(entry_get_text(W("public_key_entry")), "");
}

/* 2. Imported from the shared-key example, shown, written back unchanged. */
static void test_imported(const char *root) {
        g_autofree char *path = g_build_filename(root, "examples", "node-a.yaml", NULL);
        g_autoptr(NMConnection) original = NULL, c = NULL;
        g_autoptr(NMVpnEditor) e = NULL;
        GError *err = NULL;
        NMSettingVpn *a, *b;
        const char **keys;
        guint n = 0;

        original = nm_vpn_editor_plugin_import(plugin, path, &err);
        if (!original) {
                CHECKF(0, "import %s: %s", path, err->message);
                g_clear_error(&err);
                return;
        }
        c = nm_simple_connection_new_clone(original);
        e = editor_for(c);
        CHECK_STR(entry_get_text(W("peer_entry")), "192.0.2.2:9001");
        CHECK_STR(entry_get_text(W("local_ip_entry")), "10.0.0.1/24");
        CHECK_STR(gtk_combo_box_get_active_id(GTK_COMBO_BOX(W("mode_combo"))),
                  NM_SHADOWMESH_MODE_SHARED_KEY);
        CHECK_STR(entry_get_text(W("key_entry")), PSK);
        CHECK_STR(entry_get_text(W("private_key_entry")), "");
        CHECK(!gtk_widget_get_sensitive(W("private_key_entry")));
        CHECK(!gtk_widget_get_sensitive(W("peer_public_key_entry")));
        CHECK_STR(entry_get_text(W("tap_device_entry")), "tap0");
        CHECK_EQ_INT(gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(W("mtu_spin"))), 1380);
        CHECK_STR(entry_get_text(W("listen_port_entry")), "9001");
        CHECK_STR(entry_get_text(W("stun_server_entry")), "stun.l.google.com:19302");
        CHECK_STR(entry_get_text(W("relay_server_entry")), "");
        CHECK(!check_get_active(W("relay_check")));
        if (!update(e, c))
                return;
        a = nm_connection_get_setting_vpn(original);
        b = nm_connection_get_setting_vpn(c);
        CHECK_EQ_INT(nm_setting_vpn_get_num_data_items(b), nm_setting_vpn_get_num_data_items(a));
        keys = nm_setting_vpn_get_data_keys(a, &n);
        for (guint i = 0; i < n; i++)
                CHECK_STR(nm_setting_vpn_get_data_item(b, keys[i]),
                          nm_setting_vpn_get_data_item(a, keys[i]));
        g_free(keys);
        CHECK_EQ_INT(nm_setting_vpn_get_num_secrets(b), 1);
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY), PSK);
}

/* Every field, as a user would fill it for the screenshot. */
static void fill(void) {
        entry_set_text(W("peer_entry"), "vpn.example.org:9001");
        entry_set_text(W("peers_entry"), " 192.0.2.9:9002=" PUBLIC_C ";  [fd00::9]=" PUBLIC_D);
        entry_set_text(W("local_ip_entry"), "10.0.0.2/24,fd00::2/64");
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(W("mode_combo")), NM_SHADOWMESH_MODE_IDENTITY);
        /* base64: stored as hex */
        entry_set_text(W("key_entry"), "JzCE20SDRI11nrnQFIzQOQd/fEwlJqcYksCoKJ9R+I8=");
        entry_set_text(W("private_key_entry"), PRIVATE_A);
        entry_set_text(W("peer_public_key_entry"), PUBLIC_B);
        entry_set_text(W("tap_device_entry"), "sm-office");
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(W("mtu_spin")), 1420);
        entry_set_text(W("listen_port_entry"), "9001");
        entry_set_text(W("stun_server_entry"), "stun.example.org:3478");
        entry_set_text(W("relay_server_entry"), "relay.example.org:9545");
        check_set_active(W("relay_check"), TRUE);
}

/* 3. Filled widgets -> exactly these vpn.data items and secrets. */
static void test_filled(NMVpnEditor *e, NMConnection *c) {
        static const char *const expected[][2] = {
                {NM_SHADOWMESH_KEY_PEER, "vpn.example.org:9001"},
                {NM_SHADOWMESH_KEY_PEERS, "192.0.2.9:9002=" PUBLIC_C " [fd00::9]=" PUBLIC_D},
                {NM_SHADOWMESH_KEY_LOCAL_IP, "10.0.0.2/24, fd00::2/64"},
                {NM_SHADOWMESH_KEY_MODE, NM_SHADOWMESH_MODE_IDENTITY},
                {NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY, PUBLIC_B},
                {NM_SHADOWMESH_KEY_TAP_DEVICE, "sm-office"},
                {NM_SHADOWMESH_KEY_MTU, "1420"},
                {NM_SHADOWMESH_KEY_LISTEN_PORT, "9001"},
                {NM_SHADOWMESH_KEY_STUN_SERVER, "stun.example.org:3478"},
                {NM_SHADOWMESH_KEY_RELAY_SERVER, "relay.example.org:9545"},
                {NM_SHADOWMESH_KEY_RELAY, NM_SHADOWMESH_YES},
                {NM_SHADOWMESH_SECRET_KEY_FLAGS, "0"},
                {NM_SHADOWMESH_SECRET_PRIVATE_KEY_FLAGS, "0"},
        };

        fill();
        CHECK_STR(entry_get_text(W("public_key_entry")), PUBLIC_A);
        if (!update(e, c))
                return;
        for (size_t i = 0; i < G_N_ELEMENTS(expected); i++)
                CHECK_STR(data(c, expected[i][0]), expected[i][1]);
        CHECK_EQ_INT(nm_setting_vpn_get_num_data_items(nm_connection_get_setting_vpn(c)),
                     G_N_ELEMENTS(expected));
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY), PSK);
        CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_PRIVATE_KEY), PRIVATE_A);
        CHECK_STR(nm_setting_vpn_get_service_type(nm_connection_get_setting_vpn(c)), service);

        /* Shared-key mode drops the identity items. */
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(W("mode_combo")), NM_SHADOWMESH_MODE_SHARED_KEY);
        CHECK(!gtk_widget_get_sensitive(W("private_key_entry")));
        if (update(e, c)) {
                CHECK_STR(data(c, NM_SHADOWMESH_KEY_MODE), NM_SHADOWMESH_MODE_SHARED_KEY);
                CHECK_STR(data(c, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY), NULL);
                CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_PRIVATE_KEY), NULL);
                CHECK_STR(data(c, NM_SHADOWMESH_SECRET_PRIVATE_KEY_FLAGS), NULL);
                CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY), PSK);
        }
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(W("mode_combo")), NM_SHADOWMESH_MODE_IDENTITY);
}

/* 4. Each wrong value is refused and named; then the storage menu. */
static void test_refused(NMVpnEditor *e, NMConnection *c) {
        static const struct {
                const char *widget, *value, *message;
        } cases[] = {
                {"peer_entry", "bad host!", "Peer"},
                {"peer_entry", "fd00::2:9001:x", "Peer"},
                {"peers_entry", "192.0.2.9", "Further peers: “192.0.2.9” needs"},
                {"peers_entry", "192.0.2.9=" PUBLIC_C ", 192.0.2.10", "Further peers"},
                {"peers_entry", "192.0.2.9=" PUBLIC_C " 192.0.2.9:9001=" PUBLIC_D, "twice"},
                {"peers_entry", "192.0.2.9=AAAA", "public key of “192.0.2.9”"},
                /* The node of Peer (vpn.example.org:9001) again, spelled otherwise. */
                {"peers_entry", "192.0.2.9=" PUBLIC_C " VPN.Example.org.=" PUBLIC_D,
                 "Further peers: “VPN.Example.org.=" PUBLIC_D "” is the node of Peer "
                 "(“vpn.example.org:9001”) again"},
                /* Identity mode: a key that is Peer's, or another entry's, again. */
                {"peers_entry", "192.0.2.9=DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=",
                 "Further peers: “192.0.2.9=DIwbyr5tczFDxgTsL9B23WeA3riNib5fcBO5TymatiQ=” has "
                 "the same public key as Peer"},
                {"peers_entry", "192.0.2.9=" PUBLIC_C " 192.0.2.10=" PUBLIC_C,
                 "“192.0.2.10=" PUBLIC_C "” has the same public key as “192.0.2.9=" PUBLIC_C "”"},
                {"local_ip_entry", "10.0.0.300/24", "10.0.0.300/24"},
                {"local_ip_entry", "10.0.0.2/24, 10.1.0.2/24", "one IPv4"},
                {"tap_device_entry", "a-name-far-too-long", "Interface name"},
                {"listen_port_entry", "65536", "Listen port"},
                {"stun_server_entry", "stun.example.org:0", "STUN server"},
                {"relay_server_entry", "", "Relay server"},
                {"key_entry", "abcd", "Shared key"},
                {"private_key_entry", "", "Private key"},
                {"peer_public_key_entry", "", "Peer public key"},
                {"peer_public_key_entry", PUBLIC_A, "own public key"},
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *saved = g_strdup(entry_get_text(W(cases[i].widget)));

                entry_set_text(W(cases[i].widget), cases[i].value);
                expect_refused(e, c, cases[i].message);
                entry_set_text(W(cases[i].widget), saved);
        }
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(W("mode_combo")), NM_SHADOWMESH_MODE_SHARED_KEY);
        entry_set_text(W("key_entry"), "");
        expect_refused(e, c, "Shared key");
        /* Asked for on every connection: nothing stored, flags say so, no key needed here. */
        nma_utils_update_password_storage(W("key_entry"), NM_SETTING_SECRET_FLAG_NOT_SAVED,
                                          NM_SETTING(nm_connection_get_setting_vpn(c)),
                                          NM_SHADOWMESH_SECRET_KEY);
        entry_set_text(W("key_entry"), PSK);
        if (update(e, c)) {
                CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY), NULL);
                CHECK_STR(data(c, NM_SHADOWMESH_SECRET_KEY_FLAGS), "2");
        }
        nma_utils_update_password_storage(W("key_entry"), NM_SETTING_SECRET_FLAG_AGENT_OWNED,
                                          NM_SETTING(nm_connection_get_setting_vpn(c)),
                                          NM_SHADOWMESH_SECRET_KEY);
        if (update(e, c)) {
                CHECK_STR(secret(c, NM_SHADOWMESH_SECRET_KEY), PSK);
                CHECK_STR(data(c, NM_SHADOWMESH_SECRET_KEY_FLAGS), "1");
        }
        nma_utils_update_password_storage(W("key_entry"), NM_SETTING_SECRET_FLAG_NONE,
                                          NM_SETTING(nm_connection_get_setting_vpn(c)),
                                          NM_SHADOWMESH_SECRET_KEY);
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(W("mode_combo")), NM_SHADOWMESH_MODE_IDENTITY);
        CHECK(update(e, c));
}

/* --- 5. the window and its picture ----------------------------------------------------------- */

static gboolean drawn;

#if GTK_CHECK_VERSION(4, 0, 0)
static void after_paint(GdkFrameClock *clock, gpointer data) {
        drawn = TRUE;
}
#else
static gboolean on_draw(GtkWidget *w, cairo_t *cr, gpointer data) {
        drawn = TRUE;
        return FALSE;
}
#endif

static gboolean timed_out(gpointer data) {
        *(gboolean *) data = TRUE;
        return G_SOURCE_REMOVE;
}

/* Runs the main loop until cond is true or seconds have passed. */
static gboolean wait_for(gboolean *cond, unsigned seconds) {
        gboolean expired = FALSE;
        guint id = g_timeout_add_seconds(seconds, timed_out, &expired);

        while (!*cond && !expired)
                g_main_context_iteration(NULL, TRUE);
        if (!expired)
                g_source_remove(id);
        /* Let pending layout and redraws settle. */
        while (g_main_context_iteration(NULL, FALSE))
                ;
        return *cond;
}

static GdkPixbuf *window_picture(GtkWidget *window) {
#if GTK_CHECK_VERSION(4, 0, 0)
        int width = gtk_widget_get_width(window), height = gtk_widget_get_height(window);
        g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new(window);
        GtkSnapshot *snapshot = gtk_snapshot_new();
        g_autoptr(GskRenderNode) node = NULL;
        g_autoptr(GdkTexture) texture = NULL;
        g_autoptr(GBytes) bytes = NULL;
        g_autofree guchar *pixels = NULL;
        gsize stride = (gsize) width * 4;

        gdk_paintable_snapshot(paintable, GDK_SNAPSHOT(snapshot), width, height);
        node = gtk_snapshot_free_to_node(snapshot);
        if (!node || width <= 0 || height <= 0)
                return NULL;
        texture = gsk_renderer_render_texture(gtk_native_get_renderer(GTK_NATIVE(window)), node,
                                              &GRAPHENE_RECT_INIT(0, 0, width, height));
        pixels = g_malloc(stride * (gsize) height);
        gdk_texture_download(texture, pixels, stride);
        /* GDK hands out premultiplied BGRA (Cairo's ARGB32 on little-endian); the window is
         * opaque, so only the byte order changes. */
        for (gsize i = 0; i < stride * (gsize) height; i += 4) {
                guchar t = pixels[i];

                pixels[i] = pixels[i + 2];
                pixels[i + 2] = t;
        }
        bytes = g_bytes_new_take(g_steal_pointer(&pixels), stride * (gsize) height);
        return gdk_pixbuf_new_from_bytes(bytes, GDK_COLORSPACE_RGB, TRUE, 8, width, height,
                                         (int) stride);
#else
        GdkWindow *win = gtk_widget_get_window(window);

        gdk_display_sync(gdk_window_get_display(win));
        return gdk_pixbuf_get_from_window(win, 0, 0, gdk_window_get_width(win),
                                          gdk_window_get_height(win));
#endif
}

/* Not a blank or one-colour image: count the distinct colours of a sample. */
static unsigned colours(GdkPixbuf *pb) {
        int w = gdk_pixbuf_get_width(pb), h = gdk_pixbuf_get_height(pb);
        int n = gdk_pixbuf_get_n_channels(pb), stride = gdk_pixbuf_get_rowstride(pb);
        const guchar *px = gdk_pixbuf_read_pixels(pb);
        g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);

        for (int y = 0; y < h; y += 2)
                for (int x = 0; x < w; x += 2) {
                        const guchar *p = px + y * stride + x * n;

                        g_hash_table_add(seen, GUINT_TO_POINTER(p[0] << 16 | p[1] << 8 | p[2]));
                }
        return g_hash_table_size(seen);
}

static void screenshot(GtkWidget *widget, const char *out) {
        static const char *const entries[] = {
                "peer_entry",         "local_ip_entry",    "key_entry",
                "private_key_entry",  "public_key_entry",  "peer_public_key_entry",
                "tap_device_entry",   "listen_port_entry", "stun_server_entry",
                "relay_server_entry",
        };
        g_autoptr(GdkPixbuf) pb = NULL;
        GError *err = NULL;
        GtkWidget *window;

#if GTK_CHECK_VERSION(4, 0, 0)
        window = gtk_window_new();
        gtk_window_set_title(GTK_WINDOW(window), "ShadowMesh VPN (GTK 4)");
        gtk_window_set_child(GTK_WINDOW(window), widget);
        gtk_window_present(GTK_WINDOW(window));
        g_signal_connect(gtk_widget_get_frame_clock(window), "after-paint", G_CALLBACK(after_paint),
                         NULL);
#else
        window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
        gtk_window_set_title(GTK_WINDOW(window), "ShadowMesh VPN (GTK 3)");
        gtk_container_add(GTK_CONTAINER(window), widget);
        g_signal_connect_after(window, "draw", G_CALLBACK(on_draw), NULL);
        gtk_widget_show_all(window);
#endif
        CHECKF(wait_for(&drawn, 20), "the window was drawn within 20 s");
        /* GTK selects the text of the entry it focuses first: no focus, no selection, and one
         * more frame, so that the picture shows the form as a user first sees it. */
        gtk_window_set_focus(GTK_WINDOW(window), NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(entries); i++)
                gtk_editable_select_region(GTK_EDITABLE(W(entries[i])), 0, 0);
        drawn = FALSE;
        gtk_widget_queue_draw(window);
        CHECKF(wait_for(&drawn, 20), "the window was drawn again within 20 s");
        pb = window_picture(window);
        CHECK(pb);
        if (pb) {
                printf("# %s: %dx%d, %u colours\n", out, gdk_pixbuf_get_width(pb),
                       gdk_pixbuf_get_height(pb), colours(pb));
                /* A real form: wider than tall is not guaranteed, but it is large and has text. */
                CHECK(gdk_pixbuf_get_width(pb) >= 400 && gdk_pixbuf_get_height(pb) >= 400);
                CHECK(colours(pb) >= 16);
                CHECKF(gdk_pixbuf_save(pb, out, "png", &err, NULL), "save %s: %s", out,
                       err ? err->message : "");
                g_clear_error(&err);
        }
#if GTK_CHECK_VERSION(4, 0, 0)
        gtk_window_destroy(GTK_WINDOW(window));
#else
        gtk_widget_destroy(window);
#endif
}

int main(int argc, char **argv) {
        const char *root = getenv("SHADOWMESH_SOURCE_ROOT");
        g_autoptr(NMVpnPluginInfo) info = NULL;
        g_autoptr(NMConnection) c = NULL;
        g_autoptr(NMVpnEditor) e = NULL;
        GError *err = NULL;

        if (argc != 3 || !root) {
                fprintf(stderr, "usage: SHADOWMESH_SOURCE_ROOT=DIR %s NAME_FILE OUT_PNG\n",
                        argv[0]);
                return 64;
        }
#if GTK_CHECK_VERSION(4, 0, 0)
        if (!gtk_init_check()) {
#else
        if (!gtk_init_check(&argc, &argv)) {
#endif
                /* The wrapper skips when Xvfb cannot start; a display that is there but
                 * cannot be opened is a failure. */
                fprintf(stderr, "cannot open the display %s\n", g_getenv("DISPLAY"));
                return 1;
        }
        printf("# GTK %u.%u.%u, libnm %u.%u.%u\n", gtk_get_major_version(), gtk_get_minor_version(),
               gtk_get_micro_version(), nm_utils_version() >> 16, (nm_utils_version() >> 8) & 0xff,
               nm_utils_version() & 0xff);

        info = nm_vpn_plugin_info_new_from_file(argv[1], &err);
        if (!info) {
                fprintf(stderr, "%s: %s\n", argv[1], err->message);
                return 1;
        }
        plugin = nm_vpn_plugin_info_load_editor_plugin(info, &err);
        if (!plugin) {
                fprintf(stderr, "load_editor_plugin: %s\n", err->message);
                return 1;
        }
        service = nm_vpn_plugin_info_get_service(info);
        CHECK_STR(service, NM_DBUS_SERVICE_SHADOWMESH);
        CHECK_STR(nm_vpn_plugin_info_get_name(info), NM_SHADOWMESH_VPN_TYPE);

        test_new();
        test_imported(root);

        c = blank_connection();
        e = editor_for(c);
        test_filled(e, c);
        test_refused(e, c);
        /* What the picture shows: the filled form, keys hidden. */
        fill();
        entry_set_text(W("local_ip_entry"), "10.0.0.2/24, fd00::2/64");
        screenshot(root_widget, argv[2]);
        return test_summary();
}
