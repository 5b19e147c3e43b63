/* SPDX-License-Identifier: MIT */
/*
 * nm-shadowmesh-auth-dialog: asks for the secrets of a ShadowMesh connection on behalf of a
 * NetworkManager secret agent. Named by auth-dialog= in the .name file; never run by
 * NetworkManager itself.
 *
 *   nm-shadowmesh-auth-dialog -u UUID -n NAME -s SERVICE [-i] [-r] [--external-ui-mode] [-t HINT]
 *
 * Standard input: the connection's vpn.data and vpn.secrets as DATA_KEY=/DATA_VAL= and
 * SECRET_KEY=/SECRET_VAL= line pairs, then DONE (nm_vpn_service_plugin_read_vpn_details()).
 *
 * --external-ui-mode (nmcli --ask, GNOME Shell): describe the prompt and exit. Standard output
 *   is a key file: group [VPN Plugin UI] (Version=2, Title, Description), then one group per
 *   secret the connection uses (Value, Label, IsSecret, ShouldAsk); the agent draws the prompt,
 *   or takes the value from nmcli's passwd-file.
 * Otherwise (older agents): print "NAME\nVALUE\n" per secret and an empty line pair, then wait
 *   for QUIT on standard input. Without a toolkit, a missing secret is asked for on the
 *   controlling terminal when there is one (-i), else the dialog fails (exit status 1): such
 *   agents cannot prompt for this plugin.
 *
 * Which secrets: shared-key mode the key; identity mode the private key, plus the optional
 * pre-shared key when its flags say it is kept by an agent (settings_secret_required()).
 */
#include <NetworkManager.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "nm-shadowmesh-keys.h"
#include "settings.h"

struct secret_def {
        const char *name;
        const char *flags_key;
        const char *label;       /* N_() */
        const char *description; /* N_() */
};

static const struct secret_def secret_defs[] = {
        {NM_SHADOWMESH_SECRET_KEY, NM_SHADOWMESH_SECRET_KEY_FLAGS, N_("Shared key"),
         N_("the 32-byte shared key as 64 hex digits")},
        {NM_SHADOWMESH_SECRET_PRIVATE_KEY, NM_SHADOWMESH_SECRET_PRIVATE_KEY_FLAGS,
         N_("Private key"), N_("this node's private key as 'shadowmeshd genkey' printed it")},
};

static struct {
        char *uuid, *name, *service;
        gboolean interactive, reprompt, external;
        char **hints;
} arg;

static void free_secret(gpointer p) {
        char *s = p;
        if (s) {
                explicit_bzero(s, strlen(s));
                g_free(s);
        }
}

static bool value_ok(const char *name, const char *v) {
        size_t n = strlen(v);

        if (strcmp(name, NM_SHADOWMESH_SECRET_KEY) == 0) {
                if (n != 64)
                        return false;
                for (const char *p = v; *p; p++)
                        if (!g_ascii_isxdigit(*p))
                                return false;
                return true;
        }
        /* base64 (44) or hex (64); the service checks the rest */
        return n == 44 || n == 64;
}

static char *external_ui(GHashTable *data, GHashTable *secrets) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        const char *mode = g_hash_table_lookup(data, NM_SHADOWMESH_KEY_MODE);
        g_autofree char *title = g_strdup_printf(_("Authenticate VPN %s"), arg.name);
        g_autofree char *descr = NULL;
        g_autoptr(GString) what = g_string_new(NULL);

        /* Agents expect [VPN Plugin UI] as the first group; GKeyFile keeps groups in order. */
        g_key_file_set_integer(kf, "VPN Plugin UI", "Version", 2);
        for (size_t i = 0; i < G_N_ELEMENTS(secret_defs); i++) {
                const struct secret_def *d = &secret_defs[i];
                const char *value = g_hash_table_lookup(secrets, d->name);
                bool ask;

                if (!settings_secret_required(mode, d->name,
                                              g_hash_table_lookup(data, d->flags_key)))
                        continue;
                ask = !value || !*value || arg.reprompt;
                g_key_file_set_string(kf, d->name, "Value", value ? value : "");
                g_key_file_set_string(kf, d->name, "Label", _(d->label));
                g_key_file_set_boolean(kf, d->name, "IsSecret", true);
                g_key_file_set_boolean(kf, d->name, "ShouldAsk", ask);
                if (ask)
                        g_string_append_printf(what, "%s%s", what->len ? "; " : "",
                                               _(d->description));
        }
        descr = g_strdup_printf(_("ShadowMesh VPN “%s” needs %s."), arg.name,
                                what->len ? what->str : _("no secret"));
        g_key_file_set_string(kf, "VPN Plugin UI", "Title", title);
        g_key_file_set_string(kf, "VPN Plugin UI", "Description", descr);
        return g_key_file_to_data(kf, NULL, NULL);
}

/* A line from the terminal without echo; NULL when there is no terminal. */
static char *ask_tty(const char *prompt) {
        struct termios old, quiet;
        char buf[256];
        char *ret = NULL;
        FILE *tty;
        bool restore;

        tty = fopen("/dev/tty", "r+e");
        if (!tty)
                return NULL;
        fprintf(tty, "%s: ", prompt);
        fflush(tty);
        restore = tcgetattr(fileno(tty), &old) == 0;
        if (restore) {
                quiet = old;
                quiet.c_lflag &= (tcflag_t) ~ECHO;
                tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
        }
        if (fgets(buf, sizeof(buf), tty)) {
                buf[strcspn(buf, "\r\n")] = 0;
                ret = g_strdup(buf);
        }
        if (restore)
                tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputc('\n', tty);
        fclose(tty);
        explicit_bzero(buf, sizeof(buf));
        return ret;
}

static void wait_for_quit(void) {
        char line[64];

        /* Agents write QUIT once they have read the answer; EOF counts as well. */
        while (fgets(line, sizeof(line), stdin))
                if (strncmp(line, "QUIT", 4) == 0)
                        break;
}

static int classic(GHashTable *data, GHashTable *secrets) {
        const char *mode = g_hash_table_lookup(data, NM_SHADOWMESH_KEY_MODE);
        g_autoptr(GString) out = g_string_new(NULL);
        int printed = 0;

        for (size_t i = 0; i < G_N_ELEMENTS(secret_defs); i++) {
                const struct secret_def *d = &secret_defs[i];
                const char *have = g_hash_table_lookup(secrets, d->name);
                char *value = NULL;

                if (!settings_secret_required(mode, d->name,
                                              g_hash_table_lookup(data, d->flags_key)))
                        continue;
                if (have && *have && !arg.reprompt)
                        value = g_strdup(have);
                for (int tries = 0; !value && arg.interactive && tries < 3; tries++) {
                        g_autofree char *prompt = g_strdup_printf(
                                _("%s for VPN %s (%s)"), _(d->label), arg.name, _(d->description));
                        value = ask_tty(prompt);
                        if (!value)
                                break; /* no terminal */
                        if (!value_ok(d->name, value)) {
                                fprintf(stderr, _("That is not %s.\n"), _(d->description));
                                free_secret(value);
                                value = NULL;
                        }
                }
                if (!value) {
                        fprintf(stderr,
                                _("nm-shadowmesh-auth-dialog: cannot ask for the %s of VPN %s "
                                  "here: use a secret agent with external UI support (nmcli "
                                  "--ask, GNOME Shell) or store the secret\n"),
                                d->name, arg.name);
                        explicit_bzero(out->str, out->len);
                        return 1;
                }
                g_string_append_printf(out, "%s\n%s\n", d->name, value);
                free_secret(value);
                printed++;
        }
        /* An answer without any secret still has to say so (as other VPN plugins do). */
        if (printed == 0)
                g_string_append(out, "no-secret\ntrue\n");
        g_string_append(out, "\n\n");
        fwrite(out->str, 1, out->len, stdout);
        fflush(stdout);
        explicit_bzero(out->str, out->len);
        wait_for_quit();
        return 0;
}

int main(int argc, char **argv) {
        GOptionEntry entries[] = {
                {"uuid", 'u', 0, G_OPTION_ARG_STRING, &arg.uuid, N_("UUID of the connection"),
                 N_("UUID")},
                {"name", 'n', 0, G_OPTION_ARG_STRING, &arg.name, N_("Name of the connection"),
                 N_("NAME")},
                {"service", 's', 0, G_OPTION_ARG_STRING, &arg.service, N_("VPN service type"),
                 N_("SERVICE")},
                {"allow-interaction", 'i', 0, G_OPTION_ARG_NONE, &arg.interactive,
                 N_("The user may be asked"), NULL},
                {"reprompt", 'r', 0, G_OPTION_ARG_NONE, &arg.reprompt,
                 N_("Ask again even for secrets already known"), NULL},
                {"external-ui-mode", 0, 0, G_OPTION_ARG_NONE, &arg.external,
                 N_("Describe the prompt for the agent to draw"), NULL},
                {"hint", 't', 0, G_OPTION_ARG_STRING_ARRAY, &arg.hints, N_("Secret hint"),
                 N_("HINT")},
                {},
        };
        g_autoptr(GOptionContext) ctx = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) data = NULL, secrets = NULL;
        int r;

        setlocale(LC_ALL, "");
        bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
        bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
        textdomain(GETTEXT_PACKAGE);

        ctx = g_option_context_new(NULL);
        g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
        g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                fprintf(stderr, "nm-shadowmesh-auth-dialog: %s\n", error->message);
                return 1;
        }
        if (!arg.uuid || !arg.name || !arg.service) {
                fprintf(stderr, _("nm-shadowmesh-auth-dialog: -u UUID, -n NAME and -s SERVICE "
                                  "are required\n"));
                return 1;
        }
        if (strcmp(arg.service, NM_DBUS_SERVICE_SHADOWMESH) != 0) {
                fprintf(stderr, _("nm-shadowmesh-auth-dialog: this dialog is for %s, not %s\n"),
                        NM_DBUS_SERVICE_SHADOWMESH, arg.service);
                return 1;
        }
        if (!nm_vpn_service_plugin_read_vpn_details(STDIN_FILENO, &data, &secrets)) {
                fprintf(stderr, _("nm-shadowmesh-auth-dialog: no connection details on standard "
                                  "input\n"));
                return 1;
        }
        /* libnm's table wipes the secrets when it goes. */
        if (arg.external) {
                g_autofree char *kf = external_ui(data, secrets);
                fputs(kf, stdout);
                fflush(stdout);
                explicit_bzero(kf, strlen(kf));
                r = 0;
        } else
                r = classic(data, secrets);
        return r;
}
