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
                 "  disconnect [PEER]     drop the instance's sessions, or only PEER's (its\n"
                 "                        name, public key or id, as status shows them)\n"
                 "  status                show the instance, or every instance without -i\n"
                 "                        (the default command)\n"
                 "  list                  list the running instances\n"
                 "  netcheck              public endpoint, NAT behaviour, relay reachability\n"
                 "  genkey                print a new private key (base64)\n"
                 "  pubkey                print the public key of the private key on stdin\n"
                 "  help [COMMAND]        show this help, or the help of COMMAND\n"
                 "\n"
                 "Options:\n"
                 "  -i, --instance NAME   the instance (default \"%s\", the instance of\n"
                 "                        /etc/shadowmesh/daemon.yaml)\n"
                 "      --json            machine-readable output (status, list, netcheck)\n"
                 "  -h, --help            show this help\n"
                 "      --version         show the version\n"
                 "\n"
                 "Exit status (1 and 64 mean what they mean for shadowmeshd):\n"
                 "  0  success\n"
                 "  1  failure reported by the daemon, or another error\n"
                 "  3  the instance is not running, or the system bus is unreachable\n"
                 "  4  access denied\n"
                 "  5  timed out (no handshake with the peer in time)\n"
                 "  6  already connected, or not connected\n"
                 "  64 usage error\n"
                 "\n"
                 "'shadowmeshctl COMMAND --help' describes one command. See shadowmeshctl(1).\n"),
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

const char *ctl_command_name = NULL;

/* "Try 'shadowmeshctl connect --help'" once a command runs, the general hint before. */
static void print_try_help(void) {
        if (ctl_command_name)
                fprintf(stderr, _("Try 'shadowmeshctl %s --help' for more information.\n"),
                        ctl_command_name);
        else
                fprintf(stderr, "%s\n", _("Try 'shadowmeshctl --help' for more information."));
}

int ctl_usage_error(const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fputs("shadowmeshctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        print_try_help();
        return CTL_EXIT_USAGE;
}

int ctl_getopt_error(void) {
        /* getopt printed what was wrong. */
        print_try_help();
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

/* Each command's own help: its synopsis, what it does, its options. */
static const struct {
        const char *name;
        const char *text;
} command_help[] = {
        { "connect",
          N_("Usage: shadowmeshctl [-i NAME] connect [ADDR[:PORT]|KEY] [OPTIONS]\n"
             "\n"
             "Connect the instance to a peer and wait until the tunnel carries traffic.\n"
             "ADDR is a host name, an IPv4 address or an [IPv6] address; the port is 9001\n"
             "unless given. Without ADDR, or with the peer's public key in its place, the\n"
             "relay introduces the peer.\n"
             "\n"
             "Options:\n"
             "  -i, --instance NAME         the instance (default \"daemon\")\n"
             "      --timeout SEC           give up after SEC seconds (1..3600, default 30)\n"
             "      --public-key KEY        the peer's public key (identity mode)\n"
             "      --relay                 only through the relay, never directly\n"
             "      --relay-server HOST[:PORT]\n"
             "                              the relay (port 9545 unless given), when the\n"
             "                              configuration names none\n"
             "  -h, --help                  show this help\n") },
        { "disconnect",
          N_("Usage: shadowmeshctl [-i NAME] disconnect [PEER]\n"
             "\n"
             "Drop the instance's sessions with its peers, or with PEER only (its name, its\n"
             "public key or its id, as 'shadowmeshctl status' shows them); the instance keeps\n"
             "running.\n"
             "\n"
             "Options:\n"
             "  -i, --instance NAME   the instance (default \"daemon\")\n"
             "  -h, --help            show this help\n") },
        { "status",
          N_("Usage: shadowmeshctl [-i NAME] [--json] status\n"
             "\n"
             "Show the state, path, peer, device and counters of the instance, or of every\n"
             "running instance without -i, and then each of its peers: endpoint, path,\n"
             "state, latest handshake, transfer and MAC addresses learned.\n"
             "\n"
             "Options:\n"
             "  -i, --instance NAME   the instance\n"
             "      --json            one JSON object per instance, its peers in \"peers\"\n"
             "  -h, --help            show this help\n") },
        { "list",
          N_("Usage: shadowmeshctl [--json] list\n"
             "\n"
             "List the running instances with their state, path and peer.\n"
             "\n"
             "Options:\n"
             "      --json            a JSON array\n"
             "  -h, --help            show this help\n") },
        { "netcheck",
          N_("Usage: shadowmeshctl [-i NAME] [--json] netcheck\n"
             "\n"
             "Ask the instance for its public endpoint, its NAT's behaviour and whether\n"
             "the relay answers.\n"
             "\n"
             "Options:\n"
             "  -i, --instance NAME   the instance (default \"daemon\")\n"
             "      --json            machine-readable output\n"
             "  -h, --help            show this help\n") },
        { "genkey",
          N_("Usage: shadowmeshctl genkey > FILE\n"
             "\n"
             "Print a new private key (base64) for identity.private_key_file. Written to\n"
             "a file that other users may read, it is printed all the same, with a\n"
             "warning: create the file with umask 077 first.\n") },
        { "pubkey",
          N_("Usage: shadowmeshctl pubkey < FILE\n"
             "\n"
             "Print the public key of the private key read on standard input.\n") },
        { "help",
          N_("Usage: shadowmeshctl help [COMMAND]\n"
             "\n"
             "Show the general help, or the help of COMMAND.\n") },
};

int ctl_command_help(const char *command) {
        for (size_t i = 0; i < ELEMENTSOF(command_help); i++)
                if (command && strcmp(command_help[i].name, command) == 0) {
                        fputs(_(command_help[i].text), stdout);
                        return ctl_finish_stdout(CTL_EXIT_OK);
                }
        ctl_print_help();
        return ctl_finish_stdout(CTL_EXIT_OK);
}

bool ctl_wants_help(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        return false;
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
                        return true;
        }
        return false;
}

int ctl_help(struct ctl *ctl, int argc, char **argv) {
        if (argc > 2)
                return ctl_usage_error(_("unexpected argument '%s'"), argv[2]);
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
                return ctl_command_help("help");
        if (argc == 2) {
                for (size_t i = 0; i < ELEMENTSOF(command_help); i++)
                        if (strcmp(command_help[i].name, argv[1]) == 0)
                                return ctl_command_help(argv[1]);
                return ctl_usage_error(_("unknown command '%s'"), argv[1]);
        }
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
                        return ctl_getopt_error();
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
        ctl_command_name = cmd->name;
        for (int i = 1; i < sub_argc; i++)
                sub_argv[i] = argv[optind + i];
        optind = 0; /* glibc: full reinitialisation for the command's own getopt loop */
        /* --help anywhere among a command's arguments is that command's help, before any
         * other check of them (help's own arguments name a command). */
        if (cmd->run != ctl_help && ctl_wants_help(sub_argc, sub_argv))
                return ctl_command_help(cmd->name);
        return cmd->run(&ctl, sub_argc, sub_argv);
}
