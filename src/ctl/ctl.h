/* SPDX-License-Identifier: MIT */
/*
 * shadowmeshctl: what the subcommands share. shadowmeshctl.c only parses the global options
 * and dispatches; each command lives in <command>.c and reports failure through ctl_error*()
 * with one of the exit codes below (documented in --help and shadowmeshctl(1)).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "util.h"

enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILURE = 1,     /* the daemon refused (other errors) or a local failure */
        CTL_EXIT_USAGE = 64,      /* bad command line (EX_USAGE, as shadowmeshd's) */
        CTL_EXIT_NOT_RUNNING = 3, /* no such instance on the bus, or no bus */
        CTL_EXIT_ACCESS = 4,      /* org.freedesktop.DBus.Error.AccessDenied */
        CTL_EXIT_TIMEOUT = 5,     /* HandshakeTimeout, or no reply in time */
        CTL_EXIT_STATE = 6,       /* AlreadyConnected, NotConnected */
};

#define CTL_DEFAULT_INSTANCE "daemon"

struct ctl {
        const char *instance; /* -i NAME; NULL: not given */
        bool json;
};

/* One command: argv[0] is "shadowmeshctl COMMAND" (getopt's prefix), options follow. */
struct ctl_command {
        const char *name;
        int (*run)(struct ctl *ctl, int argc, char **argv);
};

int ctl_connect(struct ctl *ctl, int argc, char **argv);
int ctl_disconnect(struct ctl *ctl, int argc, char **argv);
int ctl_status(struct ctl *ctl, int argc, char **argv);
int ctl_list(struct ctl *ctl, int argc, char **argv);
int ctl_genkey(struct ctl *ctl, int argc, char **argv);
int ctl_pubkey(struct ctl *ctl, int argc, char **argv);
int ctl_netcheck(struct ctl *ctl, int argc, char **argv);
int ctl_help(struct ctl *ctl, int argc, char **argv);

/* ---- messages and exit codes (shadowmeshctl.c) ---- */

/* "shadowmeshctl: <message>" on stderr; returns code. */
int ctl_error(int code, const char *fmt, ...) _printf_(2, 3);
/* A usage error followed by the hint to --help; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) _printf_(1, 2);
/* After getopt printed an error: the hint to --help; returns CTL_EXIT_USAGE. */
int ctl_getopt_error(void);
/* Is -h or --help among argv[1..] (before "--")? */
bool ctl_wants_help(int argc, char **argv);
/* The --help text (stdout). */
void ctl_print_help(void);
/* COMMAND --help (stdout), or the general help for an unknown COMMAND; returns the exit code. */
int ctl_command_help(const char *command);
/* The command being run ("connect"), for "Try 'shadowmeshctl connect --help'"; NULL before. */
extern const char *ctl_command_name;
/* Flush stdout; a write error (full disk, closed pipe) is a failure. */
int ctl_finish_stdout(int code);

/* ---- instances on the bus (instance.c) ---- */

struct ctl_instance {
        char *name;     /* the instance name, unescaped */
        char *bus_name; /* org.shadowmesh1.Instance.<label> */
        char *path;     /* /org/shadowmesh1/instance/<label> */
};

/* Name -> bus name and object path. -EINVAL for a name that cannot be one (empty, too long). */
int ctl_instance_new(const char *name, struct ctl_instance **ret);
struct ctl_instance *ctl_instance_free(struct ctl_instance *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ctl_instance *, ctl_instance_free);
/* Every instance that owns its name on the bus, sorted by name. */
int ctl_instance_list(sd_bus *bus, struct ctl_instance ***ret, size_t *ret_n,
                      sd_bus_error *error);
void ctl_instance_list_free(struct ctl_instance **list, size_t n);

/* sd_bus_open_system(), or print why not and return -errno (exit CTL_EXIT_NOT_RUNNING). */
int ctl_bus_open(sd_bus **ret);
/* Print a failed call on inst (error set, or r < 0 without one) in our own words and return
 * its exit code. "Not running" lists the instances that run (bus may be NULL: then it
 * cannot). */
int ctl_bus_error(sd_bus *bus, const struct ctl_instance *inst, const sd_bus_error *error, int r);
/* True when the error says nobody owns the instance's name. */
bool ctl_error_is_not_running(const sd_bus_error *error);

/* GetStatus, parsed. Strings point into reply; every field is set ("" / 0 when absent). */
struct tunnel_status {
        sd_bus_message *reply;
        const char *state, *failure_reason, *path, *peer_address, *endpoint, *public_endpoint;
        const char *nat_type;
        const char *tap_device, *public_key;
        const char **local_address; /* NULL-terminated, array malloc'd */
        const char **peers;         /* the Peer objects, NULL-terminated, array malloc'd */
        uint32_t mtu;
        uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets, last_handshake;
};
int ctl_get_status(sd_bus *bus, const struct ctl_instance *inst, struct tunnel_status *ret,
                   sd_bus_error *error);
void tunnel_status_done(struct tunnel_status *s);

/* One org.shadowmesh1.Peer object's properties (GetAll), parsed. Strings point into reply or
 * into object (the caller's, which must outlive it); every field is set ("" / 0 when
 * absent). */
struct ctl_peer {
        sd_bus_message *reply;
        const char *object; /* its object path */
        const char *id;     /* the last element of object: its id */
        const char *name, *public_key, *endpoint, *path, *state;
        uint64_t last_handshake, rx_bytes, tx_bytes;
        uint32_t macs;
};
int ctl_get_peer(sd_bus *bus, const struct ctl_instance *inst, const char *object,
                 struct ctl_peer *ret, sd_bus_error *error);
void ctl_peer_done(struct ctl_peer *p);
/* Every peer of objects (an instance's Peers); one that left meanwhile is left out. */
int ctl_get_peers(sd_bus *bus, const struct ctl_instance *inst, const char *const *objects,
                  struct ctl_peer **ret, size_t *ret_n, sd_bus_error *error);
void ctl_peers_free(struct ctl_peer *list, size_t n);

/* An instance's status and its peers, read together (status, disconnect PEER). The peers'
 * object paths point into status's reply, which therefore lives as long as they do. */
struct ctl_tunnel {
        struct tunnel_status status;
        struct ctl_peer *peers;
        size_t n_peers;
};
/* GetStatus, then each of its Peers (ctl_get_peers): CTL_EXIT_OK with ret filled in; otherwise
 * the failure is printed (ctl_bus_error: an instance that is not running names it) and its exit
 * code returned, ret untouched. */
int ctl_get_tunnel(sd_bus *bus, const struct ctl_instance *inst, struct ctl_tunnel *ret);
/* Frees what ctl_get_tunnel() filled in; safe on a zero-initialized one, and twice. */
void ctl_tunnel_done(struct ctl_tunnel *t);

/* ---- the daemon's messages in our words (words.c) ---- */

/* The daemon's English message in shadowmeshctl's words and language, in buf; the message
 * itself when it is not one we know. */
const char *ctl_words_for(const char *daemon_message, char *buf, size_t size);

/* ---- JSON (json.c): compact, one document per line ---- */

void json_string(FILE *f, const char *s);
/* {"Instance": name, <every property of a GetStatus reply>} */
int json_status(FILE *f, const char *instance, sd_bus_message *reply);
/* The same with "peers": [{"Object": path, <every property of its GetAll reply>}, ...]. */
int json_status_peers(FILE *f, const char *instance, sd_bus_message *reply,
                      const struct ctl_peer *peers, size_t n_peers);

/* ---- human output (format.c) ---- */

#define FORMAT_BYTES_MAX 32
/* 1536 -> "1.5 KiB"; below 1 KiB "N B". */
const char *format_bytes(char buf[FORMAT_BYTES_MAX], uint64_t bytes);
/* "12 seconds ago", "1 hour, 2 minutes ago", "never" (0); for LastHandshake. */
char *format_ago(uint64_t then_usec, uint64_t now_usec);

/* networkctl-style "Label: value" lines, labels right-aligned to the widest. */
struct table {
        struct table_row {
                const char *label; /* translated; NULL for a continuation line */
                char *value;
        } *rows;
        size_t n, allocated;
};
int table_add(struct table *t, const char *label, const char *fmt, ...) _printf_(3, 4);
void table_print(struct table *t, FILE *f);
void table_done(struct table *t);
/* Display width of a (UTF-8) string in terminal columns. */
size_t text_width(const char *s);
