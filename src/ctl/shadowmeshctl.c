/* SPDX-License-Identifier: MIT */
/*
 * shadowmeshctl: the global options, then one subcommand per file (connect.c, status.c, ...).
 * Talks to shadowmeshd instances over org.shadowmesh1.Tunnel on the system bus
 * (dbus/org.shadowmesh1.Tunnel.txt).
 */
#include <getopt.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "build-config.h"
#include "ctl.h"
#include "i18n.h"

static const struct ctl_command commands[] = {
        { "connect", ctl_connect }, { "disconnect", ctl_disconnect }, { "status", ctl_status },
        { "list", ctl_list },       { "genkey", ctl_genkey },         { "pubkey", ctl_pubkey },
        { "netcheck", ctl_netcheck }, { "help", ctl_help },
};

void ctl_print_help(void) {
        printf(_("Usage: shadowmeshctl [-i NAME] [--json] COMMAND [OPTIONS]\n"
                 "\n"
                 "Control ShadowMesh tunnel instances (shadowmeshd) over the system bus.\n"
                 "\n"
                 "Commands:\n"
                 "  connect [ADDR[:PORT]|KEY]\n"
                 "                        connect the instance to a peer (port 9001 by default);\n"
                 "                        without ADDR, or with the peer's public key, the\n"
                 "                        relay introduces the peer\n"
                 "      --timeout SEC       give up after SEC seconds (1..3600, default 30)\n"
                 "      --public-key KEY    the peer's public key (identity mode)\n"
                 "      --relay             only through the relay, never directly\n"
                 "      --relay-server HOST[:PORT]  the relay, when the config names none\n"
                 "  disconnect            drop the instance's session\n"
                 "  status                show the instance, or every instance without -i\n"
                 "                        (the default command)\n"
                 "  list                  list the running instances\n"
                 "  netcheck              public endpoint, NAT behaviour, relay reachability\n"
                 "  genkey                print a new private key (base64)\n"
                 "  pubkey                print the public key of the private key on stdin\n"
                 "  help                  show this help\n"
                 "\n"
                 "Options:\n"
                 "  -i, --instance NAME   the instance (default \"%s\", the instance of\n"
                 "                        /etc/shadowmesh/daemon.yaml)\n"
                 "      --json            machine-readable output (status, list, netcheck)\n"
                 "  -h, --help            show this help\n"
                 "      --version         show the version\n"
                 "\n"
                 "Exit status:\n"
                 "  0  success\n"
                 "  1  failure reported by the daemon, or another error\n"
                 "  2  usage error\n"
                 "  3  the instance is not running, or the system bus is unreachable\n"
                 "  4  access denied\n"
                 "  5  timed out (no handshake with the peer in time)\n"
                 "  6  already connected, or not connected\n"
                 "\n"
                 "See shadowmeshctl(1).\n"),
               CTL_DEFAULT_INSTANCE);
}

int ctl_error(int code, const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fputs("shadowmeshctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

int ctl_usage_error(const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fputs("shadowmeshctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n%s\n", _("Try 'shadowmeshctl --help' for more information."));
        return CTL_EXIT_USAGE;
}

int ctl_finish_stdout(int code) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                int e = errno;
                if (code == CTL_EXIT_OK)
                        return ctl_error(CTL_EXIT_FAILURE, _("cannot write to standard output: %s"),
                                         strerror(e ? e : EIO));
        }
        return code;
}

int ctl_help(struct ctl *ctl, int argc, char **argv) {
        ctl_print_help();
        return ctl_finish_stdout(CTL_EXIT_OK);
}

int main(int argc, char **argv) {
        enum { ARG_JSON = 0x100, ARG_VERSION };
        static const struct option options[] = {
                { "instance", required_argument, NULL, 'i' },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        struct ctl ctl = {};
        const struct ctl_command *cmd = NULL;
        _cleanup_free_ char *prefix = NULL;
        _cleanup_free_ char **sub_argv = NULL;
        const char *name;
        int c, sub_argc;

        setlocale(LC_ALL, "");
        bindtextdomain("shadowmesh", LOCALEDIR);
        textdomain("shadowmesh");

        /* '+': stop at the command, whose own options follow it. */
        while ((c = getopt_long(argc, argv, "+hi:", options, NULL)) >= 0) {
                switch (c) {
                case 'i':
                        ctl.instance = optarg;
                        break;
                case ARG_JSON:
                        ctl.json = true;
                        break;
                case 'h':
                        ctl_print_help();
                        return ctl_finish_stdout(CTL_EXIT_OK);
                case ARG_VERSION:
                        printf("shadowmeshctl %s\n", PACKAGE_VERSION);
                        return ctl_finish_stdout(CTL_EXIT_OK);
                default:
                        /* getopt printed what was wrong. */
                        fprintf(stderr, "%s\n", _("Try 'shadowmeshctl --help' for more information."));
                        return CTL_EXIT_USAGE;
                }
        }

        name = optind < argc ? argv[optind] : "status";
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(commands[i].name, name) == 0)
                        cmd = &commands[i];
        if (!cmd)
                return ctl_usage_error(_("unknown command '%s'"), name);

        /* The command sees argv[0] = "shadowmeshctl COMMAND", so getopt's messages name it. */
        sub_argc = optind < argc ? argc - optind : 1;
        sub_argv = calloc(sub_argc + 1, sizeof(char *));
        if (!sub_argv || asprintf(&prefix, "shadowmeshctl %s", cmd->name) < 0)
                return ctl_error(CTL_EXIT_FAILURE, "%s", strerror(ENOMEM));
        sub_argv[0] = prefix;
        for (int i = 1; i < sub_argc; i++)
                sub_argv[i] = argv[optind + i];
        optind = 0; /* glibc: full reinitialisation for the command's own getopt loop */
        return cmd->run(&ctl, sub_argc, sub_argv);
}
