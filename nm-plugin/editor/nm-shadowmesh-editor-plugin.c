/* SPDX-License-Identifier: MIT */
/*
 * libnm-vpn-plugin-shadowmesh.so: the NMVpnEditorPlugin that nmcli, nm-connection-editor and
 * GNOME Settings load through the .name file's [libnm] plugin= line. It links no GTK, so nmcli
 * can import and export without a display; the editor widget lives in a separate library per
 * GTK major version, loaded on demand from the directory of this one:
 *
 *   libnm-vpn-plugin-shadowmesh-editor.so        GTK 3 (nm-connection-editor)
 *   libnm-gtk4-vpn-plugin-shadowmesh-editor.so   GTK 4 (GNOME Settings 43 and later)
 *
 * The host process has one GTK loaded already; loading the other major version into it would
 * abort, so the choice is made by looking for a symbol only GTK 3 has.
 */
#include <dlfcn.h>
#include <glib/gi18n-lib.h>

#include "import-export.h"
#include "nm-shadowmesh-utils.h"

#define EDITOR_LIBRARY_GTK3 "libnm-vpn-plugin-shadowmesh-editor.so"
#define EDITOR_LIBRARY_GTK4 "libnm-gtk4-vpn-plugin-shadowmesh-editor.so"
#define EDITOR_FACTORY "nm_vpn_editor_factory_shadowmesh"

typedef NMVpnEditor *(*editor_factory_t)(NMVpnEditorPlugin *plugin, NMConnection *connection,
                                         GError **error);

/* The only symbol this library exports (see plugin.sym). */
G_MODULE_EXPORT NMVpnEditorPlugin *nm_vpn_editor_plugin_factory(GError **error);

#define SHADOWMESH_TYPE_EDITOR_PLUGIN (shadowmesh_editor_plugin_get_type())
G_DECLARE_FINAL_TYPE(ShadowmeshEditorPlugin, shadowmesh_editor_plugin, SHADOWMESH, EDITOR_PLUGIN,
                     GObject)

struct _ShadowmeshEditorPlugin {
        GObject parent;
};

enum { PROP_0, PROP_NAME, PROP_DESC, PROP_SERVICE };

static void editor_plugin_interface_init(NMVpnEditorPluginInterface *iface);

G_DEFINE_TYPE_WITH_CODE(ShadowmeshEditorPlugin, shadowmesh_editor_plugin, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(NM_TYPE_VPN_EDITOR_PLUGIN,
                                              editor_plugin_interface_init))

/* The directory this library was loaded from: the editors sit beside it. */
static char *plugin_directory(void) {
        Dl_info info;

        if (dladdr((void *) nm_vpn_editor_plugin_factory, &info) == 0 || !info.dli_fname)
                return NULL;
        return g_path_get_dirname(info.dli_fname);
}

static NMVpnEditor *get_editor(NMVpnEditorPlugin *plugin, NMConnection *connection,
                               GError **error) {
        static editor_factory_t factory;
        g_autofree char *dir = NULL, *path = NULL;
        const char *library;
        void *handle;

        g_return_val_if_fail(NM_IS_CONNECTION(connection), NULL);
        if (factory)
                return factory(plugin, connection, error);

        if (dlsym(RTLD_DEFAULT, "gtk_container_add"))
                library = EDITOR_LIBRARY_GTK3;
        else if (dlsym(RTLD_DEFAULT, "gtk_window_set_child"))
                library = EDITOR_LIBRARY_GTK4;
        else {
                g_set_error(error, NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_FAILED,
                            _("The ShadowMesh editor needs GTK 3 or GTK 4 in the calling "
                              "program"));
                return NULL;
        }
        dir = plugin_directory();
        path = dir ? g_build_filename(dir, library, NULL) : g_strdup(library);
        /* Never unloaded: GTK types registered by the editor must outlive every editor. */
        handle = dlopen(path, RTLD_LAZY | RTLD_LOCAL | RTLD_NODELETE);
        if (!handle) {
                g_set_error(error, NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_FAILED,
                            _("Cannot load the ShadowMesh editor %s: %s"), path, dlerror());
                return NULL;
        }
        factory = (editor_factory_t) dlsym(handle, EDITOR_FACTORY);
        if (!factory) {
                g_set_error(error, NM_CONNECTION_ERROR, NM_CONNECTION_ERROR_FAILED,
                            _("Cannot load the ShadowMesh editor %s: %s"), path,
                            _("the library has no editor factory"));
                dlclose(handle);
                return NULL;
        }
        return factory(plugin, connection, error);
}

static NMVpnEditorPluginCapability get_capabilities(NMVpnEditorPlugin *plugin) {
        return NM_VPN_EDITOR_PLUGIN_CAPABILITY_IMPORT | NM_VPN_EDITOR_PLUGIN_CAPABILITY_EXPORT |
               NM_VPN_EDITOR_PLUGIN_CAPABILITY_IPV6;
}

static NMConnection *import_from_file(NMVpnEditorPlugin *plugin, const char *path, GError **error) {
        return nm_shadowmesh_import(path, error);
}

static gboolean export_to_file(NMVpnEditorPlugin *plugin, const char *path,
                               NMConnection *connection, GError **error) {
        return nm_shadowmesh_export(path, connection, error);
}

static char *get_suggested_filename(NMVpnEditorPlugin *plugin, NMConnection *connection) {
        const char *id = connection ? nm_connection_get_id(connection) : NULL;
        g_autofree char *safe = g_strdup(id && *id ? id : "shadowmesh");

        /* A file name, not a path. */
        g_strdelimit(safe, "/\\", '-');
        return g_strconcat(safe, ".yaml", NULL);
}

static void get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
        switch (prop_id) {
        case PROP_NAME:
                g_value_set_string(value, _("ShadowMesh"));
                break;
        case PROP_DESC:
                g_value_set_string(value, _("Encrypted peer-to-peer Layer 2 VPN (Noise protocol, "
                                            "NAT traversal, relay fallback)."));
                break;
        case PROP_SERVICE:
                g_value_set_string(value, NM_DBUS_SERVICE_SHADOWMESH);
                break;
        default:
                G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
                break;
        }
}

static void shadowmesh_editor_plugin_init(ShadowmeshEditorPlugin *plugin) {
}

static void shadowmesh_editor_plugin_class_init(ShadowmeshEditorPluginClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);

        object_class->get_property = get_property;
        g_object_class_override_property(object_class, PROP_NAME, NM_VPN_EDITOR_PLUGIN_NAME);
        g_object_class_override_property(object_class, PROP_DESC, NM_VPN_EDITOR_PLUGIN_DESCRIPTION);
        g_object_class_override_property(object_class, PROP_SERVICE, NM_VPN_EDITOR_PLUGIN_SERVICE);
}

static void editor_plugin_interface_init(NMVpnEditorPluginInterface *iface) {
        iface->get_editor = get_editor;
        iface->get_capabilities = get_capabilities;
        iface->import_from_file = import_from_file;
        iface->export_to_file = export_to_file;
        iface->get_suggested_filename = get_suggested_filename;
}

NMVpnEditorPlugin *nm_vpn_editor_plugin_factory(GError **error) {
        g_return_val_if_fail(!error || !*error, NULL);
        nm_shadowmesh_i18n_init();
        return g_object_new(SHADOWMESH_TYPE_EDITOR_PLUGIN, NULL);
}
