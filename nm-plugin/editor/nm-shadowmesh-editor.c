/* SPDX-License-Identifier: MIT */
/*
 * The ShadowMesh connection editor (NMVpnEditor), one source for two libraries:
 * libnm-vpn-plugin-shadowmesh-editor.so (GTK 3, nm-connection-editor) and
 * libnm-gtk4-vpn-plugin-shadowmesh-editor.so (GTK 4, GNOME Settings). The few calls that differ
 * between the GTK versions are the macros below; the widgets are built in code, so both
 * versions show the same form and there is no .ui file to keep in step.
 *
 * Secrets use libnma's password storage menu (the icon in the key entries): saved by
 * NetworkManager, by the user's keyring (agent-owned), or asked for on every connection.
 * Every widget has a name (gtk_widget_set_name) so tests can find and fill it.
 */
#include <glib/gi18n-lib.h>
#include <gtk/gtk.h>
#include <nma-ui-utils.h>
#include <sodium.h>

#include "nm-shadowmesh-utils.h"

#if GTK_CHECK_VERSION(4, 0, 0)
#define entry_get_text(w) gtk_editable_get_text(GTK_EDITABLE(w))
#define entry_set_text(w, t) gtk_editable_set_text(GTK_EDITABLE(w), (t))
#define check_get_active(w) gtk_check_button_get_active(GTK_CHECK_BUTTON(w))
#define check_set_active(w, a) gtk_check_button_set_active(GTK_CHECK_BUTTON(w), (a))
#define entry_set_width_chars(w, n) gtk_editable_set_width_chars(GTK_EDITABLE(w), (n))
#else
#define entry_get_text(w) gtk_entry_get_text(GTK_ENTRY(w))
#define entry_set_text(w, t) gtk_entry_set_text(GTK_ENTRY(w), (t))
#define check_get_active(w) gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(w))
#define check_set_active(w, a) gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(w), (a))
#define entry_set_width_chars(w, n) gtk_entry_set_width_chars(GTK_ENTRY(w), (n))
#endif

/* The only symbol this library exports (see editor.sym); the plugin looks it up. */
G_MODULE_EXPORT NMVpnEditor *nm_vpn_editor_factory_shadowmesh(NMVpnEditorPlugin *plugin,
                                                              NMConnection *connection,
                                                              GError **error);

#define SHADOWMESH_TYPE_EDITOR (shadowmesh_editor_get_type())
G_DECLARE_FINAL_TYPE(ShadowmeshEditor, shadowmesh_editor, SHADOWMESH, EDITOR, GObject)

struct _ShadowmeshEditor {
        GObject parent;

        GtkWidget *widget; /* the form; owned (ref_sink) */
        GtkWidget *peer, *peers, *local_ip;
        GtkWidget *mode, *key, *key_generate, *private_key, *private_key_generate, *public_key,
                *peer_public_key, *show_keys;
        GtkWidget *tap_device, *mtu, *listen_port;
        GtkWidget *stun_server, *relay_server, *relay;
};

static void editor_interface_init(NMVpnEditorInterface *iface);

G_DEFINE_TYPE_WITH_CODE(ShadowmeshEditor, shadowmesh_editor, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(NM_TYPE_VPN_EDITOR, editor_interface_init))

/* --- building the form ------------------------------------------------------------------------ */

static void stuff_changed(ShadowmeshEditor *self) {
        g_signal_emit_by_name(self, "changed");
}

static void grid_heading(GtkGrid *grid, int row, const char *text) {
        g_autofree char *markup = g_markup_printf_escaped("<b>%s</b>", text);
        GtkWidget *label = gtk_label_new(NULL);

        gtk_label_set_markup(GTK_LABEL(label), markup);
        gtk_label_set_xalign(GTK_LABEL(label), 0.0f);
        if (row > 0)
                gtk_widget_set_margin_top(label, 12);
        gtk_grid_attach(grid, label, 0, row, 3, 1);
}

/* A labelled row: "label" [widget] [extra]; widget spans two columns when there is no extra. */
static void grid_row(GtkGrid *grid, int row, const char *label_text, GtkWidget *widget,
                     GtkWidget *extra) {
        GtkWidget *label = gtk_label_new_with_mnemonic(label_text);

        gtk_label_set_xalign(GTK_LABEL(label), 1.0f);
        gtk_widget_set_margin_start(label, 12);
        gtk_label_set_mnemonic_widget(GTK_LABEL(label), widget);
        gtk_widget_set_hexpand(widget, TRUE);
        gtk_grid_attach(grid, label, 0, row, 1, 1);
        gtk_grid_attach(grid, widget, 1, row, extra ? 1 : 2, 1);
        if (extra)
                gtk_grid_attach(grid, extra, 2, row, 1, 1);
}

static GtkWidget *new_entry(ShadowmeshEditor *self, const char *name, const char *placeholder,
                            const char *tooltip) {
        GtkWidget *entry = gtk_entry_new();

        gtk_widget_set_name(entry, name);
        if (placeholder)
                gtk_entry_set_placeholder_text(GTK_ENTRY(entry), placeholder);
        if (tooltip)
                gtk_widget_set_tooltip_text(entry, tooltip);
        entry_set_width_chars(entry, 44);
        g_signal_connect_object(entry, "changed", G_CALLBACK(stuff_changed), self,
                                G_CONNECT_SWAPPED);
        return entry;
}

static void set_entry(GtkWidget *entry, NMSettingVpn *s_vpn, const char *key) {
        const char *v = s_vpn ? nm_setting_vpn_get_data_item(s_vpn, key) : NULL;

        entry_set_text(entry, v ? v : "");
}

static gboolean is_identity(ShadowmeshEditor *self) {
        return g_strcmp0(gtk_combo_box_get_active_id(GTK_COMBO_BOX(self->mode)),
                         NM_SHADOWMESH_MODE_IDENTITY) == 0;
}

static void mode_changed(ShadowmeshEditor *self) {
        gboolean identity = is_identity(self);

        gtk_widget_set_sensitive(self->private_key, identity);
        gtk_widget_set_sensitive(self->private_key_generate, identity);
        gtk_widget_set_sensitive(self->public_key, identity);
        gtk_widget_set_sensitive(self->peer_public_key, identity);
        gtk_widget_set_tooltip_text(
                self->key, identity ? _("Optional in identity mode: a key shared by both "
                                        "machines adds a second, post-quantum-safe layer. 64 "
                                        "hexadecimal digits or base64.")
                                    : _("The key both machines share: 64 hexadecimal digits "
                                        "(openssl rand -hex 32) or base64. Anyone who holds "
                                        "it can join this network."));
        stuff_changed(self);
}

static void private_key_changed(ShadowmeshEditor *self) {
        g_autofree char *pub = nm_shadowmesh_public_key_of(entry_get_text(self->private_key));

        entry_set_text(self->public_key, pub ? pub : "");
}

static void show_keys_toggled(ShadowmeshEditor *self) {
        gboolean visible = check_get_active(self->show_keys);

        gtk_entry_set_visibility(GTK_ENTRY(self->key), visible);
        gtk_entry_set_visibility(GTK_ENTRY(self->private_key), visible);
}

static void generate_key(ShadowmeshEditor *self) {
        char *key = nm_shadowmesh_generate_shared_key();

        if (key)
                entry_set_text(self->key, key);
        nm_shadowmesh_free_secret(key);
}

static void generate_private_key(ShadowmeshEditor *self) {
        char *key = nm_shadowmesh_generate_private_key();

        if (key)
                entry_set_text(self->private_key, key);
        nm_shadowmesh_free_secret(key);
}

static GtkWidget *new_secret_entry(ShadowmeshEditor *self, const char *name, NMSettingVpn *s_vpn,
                                   const char *secret, gboolean with_not_required) {
        GtkWidget *entry = new_entry(self, name, NULL, NULL);
        NMSettingSecretFlags flags = NM_SETTING_SECRET_FLAG_NONE;
        const char *v = s_vpn ? nm_setting_vpn_get_secret(s_vpn, secret) : NULL;

        gtk_entry_set_visibility(GTK_ENTRY(entry), FALSE);
        entry_set_text(entry, v ? v : "");
        if (s_vpn)
                nm_setting_get_secret_flags(NM_SETTING(s_vpn), secret, &flags, NULL);
        /* The storage menu: saved for all users, for this user only (keyring), ask each time,
         * and (for the optional key) not required. */
        nma_utils_setup_password_storage(entry, flags, s_vpn ? NM_SETTING(s_vpn) : NULL, secret,
                                         with_not_required, FALSE);
        return entry;
}

static void build_form(ShadowmeshEditor *self, NMConnection *connection) {
        NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
        g_autofree char *default_tap = nm_shadowmesh_default_tap_for(connection);
        g_autofree char *tap_hint = NULL;
        gboolean fresh = !s_vpn || (nm_setting_vpn_get_num_data_items(s_vpn) == 0 &&
                                    nm_setting_vpn_get_num_secrets(s_vpn) == 0);
        GtkGrid *grid;
        const char *v;
        int row = 0;

        self->widget = gtk_grid_new();
        g_object_ref_sink(self->widget);
        gtk_widget_set_name(self->widget, "shadowmesh_editor");
        grid = GTK_GRID(self->widget);
        gtk_grid_set_row_spacing(grid, 6);
        gtk_grid_set_column_spacing(grid, 12);
        gtk_widget_set_margin_start(self->widget, 12);
        gtk_widget_set_margin_end(self->widget, 12);
        gtk_widget_set_margin_top(self->widget, 12);
        gtk_widget_set_margin_bottom(self->widget, 12);

        grid_heading(grid, row++, _("General"));
        self->peer = new_entry(self, "peer_entry", _("host or address[:port]"),
                               _("The other machine: a host name or an address, with the UDP port "
                                 "if it is not 9001. An IPv6 address with a port is written "
                                 "[address]:port."));
        set_entry(self->peer, s_vpn, NM_SHADOWMESH_KEY_PEER);
        grid_row(grid, row++, _("_Peer:"), self->peer, NULL);
        self->peers = new_entry(self, "peers_entry", _("host[:port][=public key] …"),
                                _("More machines of the same mesh, connected after the peer: "
                                  "each host[:port], in identity mode followed by “=” and its "
                                  "public key, separated by spaces. Leave empty for one peer."));
        set_entry(self->peers, s_vpn, NM_SHADOWMESH_KEY_PEERS);
        grid_row(grid, row++, _("_Further peers:"), self->peers, NULL);
        self->local_ip = new_entry(self, "local_ip_entry", _("10.0.0.1/24, fd00::1/64"),
                                   _("This machine's addresses on the virtual Ethernet, in CIDR "
                                     "notation and separated by commas. Leave empty for none "
                                     "(for example when the interface joins a bridge)."));
        set_entry(self->local_ip, s_vpn, NM_SHADOWMESH_KEY_LOCAL_IP);
        grid_row(grid, row++, _("_Local addresses:"), self->local_ip, NULL);

        grid_heading(grid, row++, _("Authentication"));
        self->mode = gtk_combo_box_text_new();
        gtk_widget_set_name(self->mode, "mode_combo");
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(self->mode), NM_SHADOWMESH_MODE_IDENTITY,
                                  _("Identity (key pair per machine, recommended)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(self->mode), NM_SHADOWMESH_MODE_SHARED_KEY,
                                  _("Shared key"));
        /* A new connection starts in identity mode, the one new setups should use; one that
         * has settings but no mode is a shared-key connection (the keys' documented default). */
        v = s_vpn ? nm_setting_vpn_get_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE) : NULL;
        if (!v && fresh)
                v = NM_SHADOWMESH_MODE_IDENTITY;
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(self->mode),
                                    g_strcmp0(v, NM_SHADOWMESH_MODE_IDENTITY) == 0
                                            ? NM_SHADOWMESH_MODE_IDENTITY
                                            : NM_SHADOWMESH_MODE_SHARED_KEY);
        grid_row(grid, row++, _("M_ode:"), self->mode, NULL);

        self->key = new_secret_entry(self, "key_entry", s_vpn, NM_SHADOWMESH_SECRET_KEY, TRUE);
        self->key_generate = gtk_button_new_with_mnemonic(_("_Generate"));
        gtk_widget_set_name(self->key_generate, "key_generate_button");
        gtk_widget_set_tooltip_text(self->key_generate,
                                    _("Create a new random key. Give the same key to the other "
                                      "machine."));
        g_signal_connect_object(self->key_generate, "clicked", G_CALLBACK(generate_key), self,
                                G_CONNECT_SWAPPED);
        grid_row(grid, row++, _("Shared _key:"), self->key, self->key_generate);

        self->private_key = new_secret_entry(self, "private_key_entry", s_vpn,
                                             NM_SHADOWMESH_SECRET_PRIVATE_KEY, FALSE);
        gtk_widget_set_tooltip_text(self->private_key,
                                    _("This machine's X25519 private key in base64, as "
                                      "“shadowmeshd genkey” prints it. It never leaves this "
                                      "machine."));
        self->private_key_generate = gtk_button_new_with_mnemonic(_("Ge_nerate"));
        gtk_widget_set_name(self->private_key_generate, "private_key_generate_button");
        gtk_widget_set_tooltip_text(self->private_key_generate,
                                    _("Create a new key pair for this machine."));
        g_signal_connect_object(self->private_key_generate, "clicked",
                                G_CALLBACK(generate_private_key), self, G_CONNECT_SWAPPED);
        grid_row(grid, row++, _("P_rivate key:"), self->private_key, self->private_key_generate);

        self->public_key = gtk_entry_new();
        gtk_widget_set_name(self->public_key, "public_key_entry");
        gtk_editable_set_editable(GTK_EDITABLE(self->public_key), FALSE);
        gtk_widget_set_can_focus(self->public_key, TRUE);
        gtk_widget_set_tooltip_text(self->public_key,
                                    _("Derived from the private key: give it to the other "
                                      "machine as its peer public key."));
        grid_row(grid, row++, _("Your public key:"), self->public_key, NULL);
        g_signal_connect_object(self->private_key, "changed", G_CALLBACK(private_key_changed), self,
                                G_CONNECT_SWAPPED);
        /* A new connection gets its key pair at once, so the public key to give the other
         * machine is there to copy. */
        if (fresh)
                generate_private_key(self);
        private_key_changed(self);

        self->peer_public_key = new_entry(self, "peer_public_key_entry", _("base64, 44 characters"),
                                          _("The other machine's public key (shadowmeshd pubkey). "
                                            "Only the holder of its private key can connect."));
        set_entry(self->peer_public_key, s_vpn, NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY);
        grid_row(grid, row++, _("Peer p_ublic key:"), self->peer_public_key, NULL);

        self->show_keys = gtk_check_button_new_with_mnemonic(_("Sho_w keys"));
        gtk_widget_set_name(self->show_keys, "show_keys_check");
        g_signal_connect_object(self->show_keys, "toggled", G_CALLBACK(show_keys_toggled), self,
                                G_CONNECT_SWAPPED);
        gtk_grid_attach(grid, self->show_keys, 1, row++, 2, 1);

        grid_heading(grid, row++, _("Network"));
        tap_hint = g_strdup_printf(_("default: %s"), default_tap ? default_tap : "");
        self->tap_device = new_entry(self, "tap_device_entry", tap_hint,
                                     _("The name of the TAP interface, at most 15 characters."));
        set_entry(self->tap_device, s_vpn, NM_SHADOWMESH_KEY_TAP_DEVICE);
        grid_row(grid, row++, _("_Interface name:"), self->tap_device, NULL);

        self->mtu = gtk_spin_button_new_with_range(576, 9000, 1);
        gtk_widget_set_name(self->mtu, "mtu_spin");
        gtk_widget_set_tooltip_text(self->mtu,
                                    _("The MTU of the TAP interface; both machines should use the "
                                      "same. 1380 fits PPPoE and IPv6 underlays."));
        v = s_vpn ? nm_setting_vpn_get_data_item(s_vpn, NM_SHADOWMESH_KEY_MTU) : NULL;
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->mtu),
                                  v && nm_shadowmesh_check_number(v, 576, 9000, "", NULL)
                                          ? g_ascii_strtod(v, NULL)
                                          : NM_SHADOWMESH_DEFAULT_MTU);
        g_signal_connect_object(self->mtu, "value-changed", G_CALLBACK(stuff_changed), self,
                                G_CONNECT_SWAPPED);
        grid_row(grid, row++, _("_MTU:"), self->mtu, NULL);

        self->listen_port =
                new_entry(self, "listen_port_entry", G_STRINGIFY(NM_SHADOWMESH_DEFAULT_PORT),
                          _("The local UDP port the peer's packets arrive on."));
        set_entry(self->listen_port, s_vpn, NM_SHADOWMESH_KEY_LISTEN_PORT);
        grid_row(grid, row++, _("Listen por_t:"), self->listen_port, NULL);

        grid_heading(grid, row++, _("NAT traversal"));
        self->stun_server = new_entry(self, "stun_server_entry", _("stun.example.org:3478"),
                                      _("A STUN server to learn this machine's public address and "
                                        "NAT type. Empty: no STUN."));
        set_entry(self->stun_server, s_vpn, NM_SHADOWMESH_KEY_STUN_SERVER);
        grid_row(grid, row++, _("_STUN server:"), self->stun_server, NULL);
        self->relay_server = new_entry(self, "relay_server_entry", _("relay.example.org:9545"),
                                       _("A shadowmesh-relay: it introduces the peers to each "
                                         "other and carries the traffic, still encrypted end to "
                                         "end, when no direct path works."));
        set_entry(self->relay_server, s_vpn, NM_SHADOWMESH_KEY_RELAY_SERVER);
        grid_row(grid, row++, _("R_elay server:"), self->relay_server, NULL);
        self->relay =
                gtk_check_button_new_with_mnemonic(_("Use the relay when no _direct path works"));
        gtk_widget_set_name(self->relay, "relay_check");
        v = s_vpn ? nm_setting_vpn_get_data_item(s_vpn, NM_SHADOWMESH_KEY_RELAY) : NULL;
        check_set_active(self->relay, g_strcmp0(v, NM_SHADOWMESH_YES) == 0);
        g_signal_connect_object(self->relay, "toggled", G_CALLBACK(stuff_changed), self,
                                G_CONNECT_SWAPPED);
        gtk_grid_attach(grid, self->relay, 1, row++, 2, 1);

        g_signal_connect_object(self->mode, "changed", G_CALLBACK(mode_changed), self,
                                G_CONNECT_SWAPPED);
        mode_changed(self);
#if !GTK_CHECK_VERSION(4, 0, 0)
        gtk_widget_show_all(self->widget);
#endif
}

/* --- NMVpnEditor ------------------------------------------------------------------------------ */

static GObject *get_widget(NMVpnEditor *editor) {
        return G_OBJECT(SHADOWMESH_EDITOR(editor)->widget);
}

static gboolean invalid(GError **error, const char *message) {
        g_set_error_literal(error, NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_INVALID_PROPERTY,
                            message);
        return FALSE;
}

/* An optional host:port entry: NULL when empty, the text when valid. */
static gboolean optional_host_port(GtkWidget *entry, const char *field, const char **ret,
                                   GError **error) {
        const char *v = entry_get_text(entry);

        *ret = NULL;
        if (!*v)
                return TRUE;
        if (!nm_shadowmesh_check_host_port(v, field, error))
                return FALSE;
        *ret = v;
        return TRUE;
}

/* A secret entry and its storage menu: stores the normalized key (as base64 or hex) unless the
 * flags keep it out of NetworkManager. ret_has tells whether a key is set or will be asked. */
static gboolean take_secret(GtkWidget *entry, NMSettingVpn *s_vpn, const char *secret,
                            const char *field, gboolean want_hex, gboolean *ret_has,
                            GError **error) {
        NMSettingSecretFlags flags = nma_utils_menu_to_secret_flags(entry);
        const char *v = entry_get_text(entry);
        _cleanup_secret_ char *normalized = NULL;
        uint8_t k[32];

        nm_setting_vpn_remove_secret(s_vpn, secret);
        /* "<name>-flags", spelled out even for 0 (libnm drops the item for 0). */
        nm_setting_set_secret_flags(NM_SETTING(s_vpn), secret, flags, NULL);
        {
                g_autofree char *flags_key = g_strconcat(secret, "-flags", NULL);
                char flags_value[16];

                g_snprintf(flags_value, sizeof(flags_value), "%u", (unsigned) flags);
                nm_setting_vpn_add_data_item(s_vpn, flags_key, flags_value);
        }
        *ret_has = FALSE;
        if (flags & NM_SETTING_SECRET_FLAG_NOT_REQUIRED)
                return TRUE;
        if (flags & NM_SETTING_SECRET_FLAG_NOT_SAVED) {
                /* Asked for on every connection: whatever is typed here is not kept. */
                *ret_has = TRUE;
                return TRUE;
        }
        if (!*v)
                return TRUE;
        if (!nm_shadowmesh_parse_key(v, field, k, error))
                return FALSE;
        normalized = want_hex ? nm_shadowmesh_key_to_hex(k) : nm_shadowmesh_key_to_base64(k);
        sodium_memzero(k, sizeof(k));
        nm_setting_vpn_add_secret(s_vpn, secret, normalized);
        *ret_has = TRUE;
        return TRUE;
}

static gboolean update_connection(NMVpnEditor *editor, NMConnection *connection, GError **error) {
        ShadowmeshEditor *self = SHADOWMESH_EDITOR(editor);
        NMSettingVpn *s_vpn;
        const char *peer, *local_ip, *tap, *port, *stun = NULL, *relay_server = NULL;
        gboolean identity = is_identity(self), relay = check_get_active(self->relay);
        gboolean has_key = FALSE, has_private_key = FALSE;
        g_autofree char *peer_public = NULL, *own_public = NULL;
        char mtu[16];
        uint8_t k[32];

        peer = entry_get_text(self->peer);
        if (!nm_shadowmesh_check_host_port(peer, _("Peer"), error))
                return FALSE;
        if (!nm_shadowmesh_check_peers(entry_get_text(self->peers), peer,
                                       entry_get_text(self->peer_public_key), identity, error))
                return FALSE;
        local_ip = entry_get_text(self->local_ip);
        if (!nm_shadowmesh_check_local_ip(local_ip, error))
                return FALSE;
        tap = entry_get_text(self->tap_device);
        if (*tap && !nm_shadowmesh_check_tap_device(tap, error))
                return FALSE;
        port = entry_get_text(self->listen_port);
        if (*port && !nm_shadowmesh_check_number(port, 1, 65535, _("Listen port"), error))
                return FALSE;
        if (!optional_host_port(self->stun_server, _("STUN server"), &stun, error) ||
            !optional_host_port(self->relay_server, _("Relay server"), &relay_server, error))
                return FALSE;
        if (relay && !relay_server)
                return invalid(error, _("Relay server: enter the relay to use, or turn the relay "
                                        "off"));
        if (identity) {
                if (!nm_shadowmesh_parse_key(entry_get_text(self->peer_public_key),
                                             _("Peer public key"), k, error))
                        return FALSE;
                peer_public = nm_shadowmesh_key_to_base64(k);
                own_public = nm_shadowmesh_public_key_of(entry_get_text(self->private_key));
                if (own_public && g_str_equal(own_public, peer_public))
                        return invalid(error, _("Peer public key: this is this machine's own "
                                                "public key; enter the other machine's"));
        }

        s_vpn = NM_SETTING_VPN(nm_setting_vpn_new());
        g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, NM_DBUS_SERVICE_SHADOWMESH, NULL);
        /* Keep what other tools put in the setting: replace only our own items. */
        {
                NMSettingVpn *old = nm_connection_get_setting_vpn(connection);
                const char **keys;
                guint n = 0;

                keys = old ? nm_setting_vpn_get_data_keys(old, &n) : NULL;
                for (guint i = 0; i < n; i++)
                        nm_setting_vpn_add_data_item(s_vpn, keys[i],
                                                     nm_setting_vpn_get_data_item(old, keys[i]));
                g_free(keys);
                keys = old ? nm_setting_vpn_get_secret_keys(old, &n) : NULL;
                for (guint i = 0; i < n; i++)
                        nm_setting_vpn_add_secret(s_vpn, keys[i],
                                                  nm_setting_vpn_get_secret(old, keys[i]));
                g_free(keys);
        }

        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_PEER, peer);
#define SET_OR_REMOVE(key, value)                                                                  \
        do {                                                                                       \
                if ((value) && *(value))                                                           \
                        nm_setting_vpn_add_data_item(s_vpn, (key), (value));                       \
                else                                                                               \
                        nm_setting_vpn_remove_data_item(s_vpn, (key));                             \
        } while (0)
        {
                g_auto(GStrv) items = nm_shadowmesh_split_local_ip(local_ip);
                g_autofree char *joined = g_strjoinv(", ", items);

                SET_OR_REMOVE(NM_SHADOWMESH_KEY_LOCAL_IP, joined);
        }
        {
                g_auto(GStrv) entries = nm_shadowmesh_split_peers(entry_get_text(self->peers));
                g_autofree char *joined = g_strjoinv(" ", entries);

                SET_OR_REMOVE(NM_SHADOWMESH_KEY_PEERS, joined);
        }
        g_snprintf(mtu, sizeof(mtu), "%d",
                   gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->mtu)));
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MTU, mtu);
        SET_OR_REMOVE(NM_SHADOWMESH_KEY_TAP_DEVICE, tap);
        SET_OR_REMOVE(NM_SHADOWMESH_KEY_LISTEN_PORT, port);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_MODE,
                                     identity ? NM_SHADOWMESH_MODE_IDENTITY
                                              : NM_SHADOWMESH_MODE_SHARED_KEY);
        SET_OR_REMOVE(NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY, identity ? peer_public : NULL);
        SET_OR_REMOVE(NM_SHADOWMESH_KEY_STUN_SERVER, stun);
        SET_OR_REMOVE(NM_SHADOWMESH_KEY_RELAY_SERVER, relay_server);
        nm_setting_vpn_add_data_item(s_vpn, NM_SHADOWMESH_KEY_RELAY,
                                     relay ? NM_SHADOWMESH_YES : NM_SHADOWMESH_NO);
#undef SET_OR_REMOVE

        if (!take_secret(self->key, s_vpn, NM_SHADOWMESH_SECRET_KEY, _("Shared key"), TRUE,
                         &has_key, error))
                goto fail;
        if (!identity && !has_key) {
                invalid(error, _("Shared key: enter the key both machines share, or choose "
                                 "identity mode"));
                goto fail;
        }
        if (identity) {
                if (!take_secret(self->private_key, s_vpn, NM_SHADOWMESH_SECRET_PRIVATE_KEY,
                                 _("Private key"), FALSE, &has_private_key, error))
                        goto fail;
                if (!has_private_key) {
                        invalid(error, _("Private key: enter this machine's private key or "
                                         "generate one"));
                        goto fail;
                }
        } else {
                nm_setting_vpn_remove_secret(s_vpn, NM_SHADOWMESH_SECRET_PRIVATE_KEY);
                nm_setting_vpn_remove_data_item(s_vpn, NM_SHADOWMESH_SECRET_PRIVATE_KEY_FLAGS);
        }

        nm_connection_add_setting(connection, NM_SETTING(s_vpn));
        return TRUE;
fail:
        g_object_unref(s_vpn);
        return FALSE;
}

static void editor_interface_init(NMVpnEditorInterface *iface) {
        iface->get_widget = get_widget;
        iface->update_connection = update_connection;
}

static void shadowmesh_editor_init(ShadowmeshEditor *self) {
}

static void dispose(GObject *object) {
        ShadowmeshEditor *self = SHADOWMESH_EDITOR(object);

        g_clear_object(&self->widget);
        G_OBJECT_CLASS(shadowmesh_editor_parent_class)->dispose(object);
}

static void shadowmesh_editor_class_init(ShadowmeshEditorClass *klass) {
        G_OBJECT_CLASS(klass)->dispose = dispose;
}

NMVpnEditor *nm_vpn_editor_factory_shadowmesh(NMVpnEditorPlugin *plugin, NMConnection *connection,
                                              GError **error) {
        ShadowmeshEditor *self;

        g_return_val_if_fail(NM_IS_CONNECTION(connection), NULL);
        nm_shadowmesh_i18n_init();
        self = g_object_new(SHADOWMESH_TYPE_EDITOR, NULL);
        build_form(self, connection);
        return NM_VPN_EDITOR(self);
}
