/* SPDX-License-Identifier: MIT */
/*
 * The daemon's YAML configuration. libyaml composes the document; we walk the tree against a
 * fixed schema (sections -> keys -> scalars, and two lists: network.local_ip and peers, a list
 * of mappings), so the walk is shallow and bounded whatever the input: aliases, even
 * self-referencing ones, cannot make it loop or blow up.
 *
 * Parsing is pure and does not log: every failure becomes one line, "name:line:column: key.path:
 * what is wrong", in the caller's buffer. config_load() adds reading the files and the one
 * warning this module prints, about secrets readable by other users.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <libgen.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config.h"
#include "hostport.h"
#include "log.h"

/* A configuration is a few hundred bytes; the cap keeps a wrong path (a log, a disk image) from
 * being read into memory, and bounds libyaml's work on hostile input. */
#define CONFIG_MAX_SIZE (64 * 1024)
/* A key file holds one key and perhaps a comment. */
#define KEY_FILE_MAX_SIZE 4096
#define RELAY_PORT_DEFAULT 9545
/* The prototype's control API port, when daemon.listen_address names none. */
#define CONTROL_PORT_DEFAULT 9090
#define STUN_PORT_DEFAULT 3478
/* Longest host name (RFC 1035, textual form without the trailing dot). */
/* User text quoted in a message is cut here so that a message stays one readable line. */
#define QUOTE_MAX 48

/* Where one entry of peer:/peers: was written, for the checks made after its keys. */
struct peer_nodes {
        const yaml_node_t *entry;      /* the entry's mapping */
        const yaml_node_t *address;    /* its address (value) */
        const yaml_node_t *public_key; /* its public_key (value) */
        const yaml_node_t *name;       /* its name (value) */
};

struct parser {
        const char *name;
        const char *base_dir;
        yaml_document_t *doc;
        char *errbuf;
        size_t errlen;
        struct config *c;

        /* Nodes remembered for the checks that involve several keys. */
        const yaml_node_t *key_node;              /* encryption.key (value) */
        const yaml_node_t *key_file_node;         /* encryption.key_file (value) */
        const yaml_node_t *private_key_file_node; /* identity.private_key_file (value) */
        const yaml_node_t *peers_key_node;        /* "peer" or "peers" (key) */
        bool peers_is_list;                       /* written as peers: */
        struct peer_nodes *peer_nodes;            /* one per entry of c->peers */
        size_t cur_peer;                          /* the entry whose keys are being read */
        const yaml_node_t *nat_enabled_node;      /* nat.enabled (value) */
        const yaml_node_t *relay_enabled_node;    /* relay.enabled (value) */
        const yaml_node_t *first_section_node;    /* first key of the document */
};

#define streq(a, b) (strcmp((a), (b)) == 0)

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

/* Printable, bounded copy of user text for messages: a key or value from the file may hold
 * newlines or control bytes (quoted YAML scalars can), and a message must stay one line. */
static const char *quote(const char *s, size_t len, char out[static QUOTE_MAX * 4 + 4]) {
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char) s[i];
                if (i == QUOTE_MAX) {
                        memcpy(out + o, "...", 3);
                        o += 3;
                        break;
                }
                if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
                        out[o++] = (char) ch;
                } else {
                        snprintf(out + o, 5, "\\x%02x", ch);
                        o += 4;
                }
        }
        out[o] = 0;
        return out;
}
#define QUOTE(s, len) quote((s), (len), (char[QUOTE_MAX * 4 + 4]){})
#define QUOTE_STR(s) QUOTE((s), strlen(s))

static void format_error(char *errbuf, size_t errlen, const char *name, size_t line, size_t column,
                         const char *path, const char *fmt, va_list ap) _printf_(7, 0);
static void format_error(char *errbuf, size_t errlen, const char *name, size_t line, size_t column,
                         const char *path, const char *fmt, va_list ap) {
        int n;

        if (!errbuf || errlen == 0)
                return;
        if (path)
                n = snprintf(errbuf, errlen, "%s:%zu:%zu: %s: ", name, line, column, path);
        else
                n = snprintf(errbuf, errlen, "%s:%zu:%zu: ", name, line, column);
        if (n < 0 || (size_t) n >= errlen)
                return;
        vsnprintf(errbuf + n, errlen - (size_t) n, fmt, ap);
}

/* Record the error at a node's position (libyaml marks are 0-based, messages 1-based). */
static int fail(struct parser *p, int r, const yaml_node_t *node, const char *path, const char *fmt,
                ...) _printf_(5, 6);
static int fail(struct parser *p, int r, const yaml_node_t *node, const char *path, const char *fmt,
                ...) {
        size_t line = node ? node->start_mark.line + 1 : 1;
        size_t column = node ? node->start_mark.column + 1 : 1;
        va_list ap;

        va_start(ap, fmt);
        format_error(p->errbuf, p->errlen, p->name, line, column, path, fmt, ap);
        va_end(ap);
        return r;
}

static int fail_plain(char *errbuf, size_t errlen, const char *name, size_t line, size_t column,
                      int r, const char *fmt, ...) _printf_(7, 8);
static int fail_plain(char *errbuf, size_t errlen, const char *name, size_t line, size_t column,
                      int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        format_error(errbuf, errlen, name, line, column, NULL, fmt, ap);
        va_end(ap);
        return r;
}

static const char *node_kind(const yaml_node_t *n) {
        switch (n->type) {
        case YAML_MAPPING_NODE:
                return "a mapping";
        case YAML_SEQUENCE_NODE:
                return "a list";
        default:
                return "a value";
        }
}

static yaml_node_t *node_at(struct parser *p, int id) {
        return yaml_document_get_node(p->doc, id);
}

/* "", "~" and "null" written plainly are YAML's null: the key is given without a value. */
static bool node_is_null(const yaml_node_t *n) {
        const char *v = (const char *) n->data.scalar.value;

        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        return n->data.scalar.length == 0 || streq(v, "~") || streq(v, "null") ||
               streq(v, "Null") || streq(v, "NULL");
}

/* The scalar's text, or an error saying what was expected instead. NUL bytes (possible through
 * "\0" escapes) are refused: the value is used as a C string. */
static int get_scalar(struct parser *p, const yaml_node_t *n, const char *path, const char *what,
                      const char **ret) {
        if (n->type != YAML_SCALAR_NODE)
                return fail(p, -EINVAL, n, path, "expected %s, got %s", what, node_kind(n));
        if (strlen((const char *) n->data.scalar.value) != n->data.scalar.length)
                return fail(p, -EINVAL, n, path, "contains a NUL character");
        *ret = (const char *) n->data.scalar.value;
        return 0;
}

static int parse_uint(const char *s, uint32_t max, uint32_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (const char *c = s; *c; c++) {
                if (*c < '0' || *c > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*c - '0');
                if (v > max)
                        return -ERANGE;
        }
        *ret = (uint32_t) v;
        return 0;
}

/* YAML 1.1 booleans, as the prototype's parser (Go yaml.v2) accepted them. */
static int parse_bool(const char *s) {
        static const char *const yes[] = {"true", "yes", "on", "y"};
        static const char *const no[] = {"false", "no", "off", "n"};

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

/* host[:port] values go through hostport.c: one parser, so the configuration and
 * shadowmeshctl give the same reasons. */
int config_parse_host_port(const char *s, uint16_t default_port, char **ret_host,
                           uint16_t *ret_port) {
        const char *why;

        return hostport_parse(s, default_port, ret_host, ret_port, &why);
}

int config_parse_key(const char *s, uint8_t out[32]) {
        uint8_t k[32];
        size_t len, bin_len = 0;
        const char *end = NULL;
        int r = -EINVAL;

        if (!s)
                return -EINVAL;
        len = strlen(s);
        if (len == 64) {
                r = hex_decode(s, k, sizeof(k));
        } else if (len == 44) {
                /* libsodium refuses non-canonical encodings (non-zero trailing bits). */
                if (sodium_base642bin(k, sizeof(k), s, len, NULL, &bin_len, &end,
                                      sodium_base64_VARIANT_ORIGINAL) == 0 &&
                    bin_len == sizeof(k) && end == s + len)
                        r = 0;
        }
        if (r == 0)
                memcpy(out, k, sizeof(k));
        sodium_memzero(k, sizeof(k));
        return r;
}

void config_format_key(const uint8_t key[32], char out[45]) {
        sodium_bin2base64(out, 45, key, 32, sodium_base64_VARIANT_ORIGINAL);
}

static bool is_all_zero(const uint8_t *b, size_t n) {
        return sodium_is_zero(b, n) == 1;
}

/* --- distance for "did you mean" ------------------------------------------------------------ */

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions), ignoring case:
 * "encrpytion" is one step from "encryption". Names longer than the table never match. */
static unsigned edit_distance(const char *a, size_t la, const char *b) {
        enum { N = 32 };
        unsigned d[N + 1][N + 1];
        size_t lb = strlen(b);

        if (la > N || lb > N)
                return UINT32_MAX;
        for (size_t i = 0; i <= la; i++)
                d[i][0] = (unsigned) i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        char x = (char) tolower((unsigned char) a[i - 1]);
                        char y = (char) tolower((unsigned char) b[j - 1]);
                        unsigned v = d[i - 1][j - 1] + (x != y);
                        v = MIN(v, d[i - 1][j] + 1);
                        v = MIN(v, d[i][j - 1] + 1);
                        if (i > 1 && j > 1 && x == tolower((unsigned char) b[j - 2]) &&
                            tolower((unsigned char) a[i - 2]) == y)
                                v = MIN(v, d[i - 2][j - 2] + 1);
                        d[i][j] = v;
                }
        return d[la][lb];
}

/* Close enough to be a typo: one edit for short names, two for longer ones. */
static bool near_miss(const char *typed, size_t len, const char *known, unsigned *best) {
        unsigned limit = strlen(known) <= 4 ? 1 : 2;
        unsigned d = edit_distance(typed, len, known);

        if (d > limit || d >= *best)
                return false;
        *best = d;
        return true;
}

/* --- schema -------------------------------------------------------------------------------- */

typedef int (*key_parser_t)(struct parser *p, const char *path, const yaml_node_t *value);

struct key_def {
        const char *name;
        key_parser_t parse;
};

struct section_def {
        const char *name;
        const struct key_def *keys;
        size_t n_keys;
};

/* A string setting: NULL when written as null or "". */
static int get_string(struct parser *p, const char *path, const yaml_node_t *value,
                      const char **ret) {
        const char *s = NULL;
        int r;

        if (node_is_null(value)) {
                *ret = NULL;
                return 0;
        }
        r = get_scalar(p, value, path, "a string", &s);
        if (r < 0)
                return r;
        *ret = *s ? s : NULL;
        return 0;
}

static int get_bool(struct parser *p, const char *path, const yaml_node_t *value, bool *ret) {
        const char *s = NULL;
        int r;

        r = get_scalar(p, value, path, "true or false", &s);
        if (r < 0)
                return r;
        r = parse_bool(s);
        if (r < 0)
                return fail(p, -EINVAL, value, path,
                            "'%s' is not a boolean (use true/false, yes/no or on/off)",
                            QUOTE_STR(s));
        *ret = r;
        return 0;
}

static int get_number(struct parser *p, const char *path, const yaml_node_t *value, uint32_t min,
                      uint32_t max, uint32_t *ret) {
        const char *s = NULL;
        uint32_t v;
        int r;

        r = get_scalar(p, value, path, "a number", &s);
        if (r < 0)
                return r;
        r = parse_uint(s, max, &v);
        if (r == -EINVAL)
                return fail(p, -EINVAL, value, path, "'%s' is not a number", QUOTE_STR(s));
        if (r < 0 || v < min)
                return fail(p, -EINVAL, value, path,
                            "%s is out of range (%" PRIu32 "..%" PRIu32 ")", QUOTE_STR(s), min,
                            max);
        *ret = v;
        return 0;
}

static int get_host_port(struct parser *p, const char *path, const yaml_node_t *value,
                         uint16_t default_port, char **ret_host, uint16_t *ret_port) {
        const char *s = NULL, *why = NULL;
        char *host = NULL;
        uint16_t port;
        int r;

        r = get_string(p, path, value, &s);
        if (r < 0)
                return r;
        free(*ret_host);
        *ret_host = NULL;
        if (!s)
                return 0;
        r = hostport_parse(s, default_port, &host, &port, &why);
        if (r == -ENOMEM)
                return fail(p, r, value, path, "out of memory");
        if (r < 0)
                return fail(p, r, value, path, "'%s' is not host[:port]: %s", QUOTE_STR(s), why);
        *ret_host = host;
        *ret_port = port;
        return 0;
}

/* Is this numeric host a loopback address (127.0.0.0/8 or ::1)? "localhost" counts too: the
 * control API binds 127.0.0.1 for it, never a name that a resolver could point elsewhere. */
static bool host_is_loopback(const char *host) {
        struct in_addr a4;
        struct in6_addr a6;

        if (streq(host, "localhost"))
                return true;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

static bool host_is_unspecified(const char *host) {
        return !*host || streq(host, "0.0.0.0") || streq(host, "::") || streq(host, "*");
}

/*
 * daemon.listen_address: as in the Go prototype, the host:port of the local HTTP control API
 * ("127.0.0.1:9090"). It never was the tunnel's address there; this project's 0.1 read it as the
 * tunnel's UDP address, so a file of that form ("0.0.0.0:9001") gets an error that says what the
 * key means now and what to write instead, rather than a silent guess either way.
 */
static int parse_listen_address(struct parser *p, const char *path, const yaml_node_t *value) {
        struct config *c = p->c;
        const char *s = NULL, *why = NULL;
        _cleanup_free_ char *host = NULL;
        uint16_t port = 0;
        int r;

        r = get_string(p, path, value, &s);
        if (r < 0)
                return r;
        c->control_host = mfree(c->control_host);
        if (!s || !*s)
                return 0; /* no HTTP API */
        if (s[0] == ':' || s[0] == '*') {
                /* Go's ":9090" or "*:9090": every address. */
                host = strdup("");
                if (!host)
                        return fail(p, -ENOMEM, value, path, "out of memory");
        } else {
                r = hostport_parse(s, CONTROL_PORT_DEFAULT, &host, &port, &why);
                if (r == -ENOMEM)
                        return fail(p, r, value, path, "out of memory");
                if (r < 0)
                        return fail(p, r, value, path,
                                    "'%s' is not host:port: %s (the local HTTP control API's "
                                    "address, e.g. \"127.0.0.1:9090\")",
                                    QUOTE_STR(s), why);
        }
        if (host_is_unspecified(host))
                return fail(p, -EINVAL, value, path,
                            "'%s' is every address, but this key is the local HTTP control "
                            "API's address, loopback only (the prototype's \"127.0.0.1:9090\"); "
                            "it does not set the tunnel's UDP port: write that as "
                            "network.listen_port (default 9001, every address)",
                            QUOTE_STR(s));
        if (!host_is_loopback(host))
                return fail(p, -EINVAL, value, path,
                            "'%s' is not a loopback address: the HTTP control API listens only "
                            "on 127.0.0.1, ::1 or localhost (e.g. \"127.0.0.1:9090\"); the "
                            "tunnel's UDP port is network.listen_port and its address "
                            "network.bind_address",
                            QUOTE_STR(s));
        if (streq(host, "localhost")) {
                free(host);
                host = strdup("127.0.0.1");
                if (!host)
                        return fail(p, -ENOMEM, value, path, "out of memory");
        }
        c->control_host = TAKE_PTR(host);
        c->control_port = port;
        return 0;
}

/* network.bind_address: an IP literal the tunnel's UDP socket binds to (default: every local
 * address, IPv4 and IPv6). */
static int parse_bind_address(struct parser *p, const char *path, const yaml_node_t *value) {
        struct config *c = p->c;
        const char *s = NULL;
        struct in_addr a4;
        struct in6_addr a6;
        int r;

        r = get_string(p, path, value, &s);
        if (r < 0)
                return r;
        c->bind_host = mfree(c->bind_host);
        if (!s || !*s || host_is_unspecified(s))
                return 0;
        if (inet_pton(AF_INET, s, &a4) != 1 && inet_pton(AF_INET6, s, &a6) != 1)
                return fail(p, -EINVAL, value, path,
                            "'%s' is not an IP address (write the port as network.listen_port)",
                            QUOTE_STR(s));
        c->bind_host = strdup(s);
        if (!c->bind_host)
                return fail(p, -ENOMEM, value, path, "out of memory");
        return 0;
}

static int parse_log_level(struct parser *p, const char *path, const yaml_node_t *value) {
        const char *s = NULL;
        int r;

        r = get_scalar(p, value, path, "a log level", &s);
        if (r < 0)
                return r;
        r = log_level_from_string(s);
        if (r < 0)
                return fail(p, -EINVAL, value, path,
                            "unknown log level '%s' (use " LOG_LEVEL_NAMES ")",
                            QUOTE_STR(s));
        p->c->log_level = r;
        return 0;
}

/* A group name as useradd/groupadd accept them (NAME_REGEX of Debian's adduser, loosely). */
static int parse_control_group(struct parser *p, const char *path, const yaml_node_t *value) {
        const char *s = NULL;
        size_t len;
        int r;

        r = get_scalar(p, value, path, "a group name", &s);
        if (r < 0)
                return r;
        len = strlen(s);
        if (len == 0 || node_is_null(value))
                return fail(p, -EINVAL, value, path, "must not be empty");
        if (len > 32)
                return fail(p, -EINVAL, value, path, "'%s' is too long for a group name",
                            QUOTE_STR(s));
        for (size_t i = 0; i < len; i++)
                if (!(isalnum((unsigned char) s[i]) || s[i] == '_' || s[i] == '-' ||
                      s[i] == '.') ||
                    (i == 0 && s[i] == '-'))
                        return fail(p, -EINVAL, value, path,
                                    "'%s' is not a valid group name", QUOTE_STR(s));
        free(p->c->control_group);
        p->c->control_group = strdup(s);
        if (!p->c->control_group)
                return fail(p, -ENOMEM, value, path, "out of memory");
        return 0;
}

static int parse_tap_device(struct parser *p, const char *path, const yaml_node_t *value) {
        const char *s = NULL;
        size_t len;
        int r;

        r = get_scalar(p, value, path, "an interface name", &s);
        if (r < 0)
                return r;
        len = strlen(s);
        /* The kernel's rules for interface names (dev_valid_name()). */
        if (len == 0 || node_is_null(value))
                return fail(p, -EINVAL, value, path, "must not be empty");
        if (len >= IFNAMSIZ)
                return fail(p, -EINVAL, value, path,
                            "'%s' is too long for an interface name (%zu characters, at most %d)",
                            QUOTE_STR(s), len, IFNAMSIZ - 1);
        if (streq(s, ".") || streq(s, ".."))
                return fail(p, -EINVAL, value, path, "'%s' is not a valid interface name", s);
        for (size_t i = 0; i < len; i++)
                if (s[i] == '/' || s[i] == ':' || isspace((unsigned char) s[i]) ||
                    (unsigned char) s[i] < 0x20 || (unsigned char) s[i] == 0x7f)
                        return fail(p, -EINVAL, value, path,
                                    "'%s' is not a valid interface name (no '/', ':' or "
                                    "whitespace)",
                                    QUOTE_STR(s));
        memcpy(p->c->tap_device, s, len + 1);
        return 0;
}

static int parse_cidr(const char *s, struct config_address *ret, const char **ret_why) {
        char buf[INET6_ADDRSTRLEN];
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t) (slash - s) : strlen(s);
        struct config_address a = {};
        uint32_t max, prefix;

        *ret_why = "not an IPv4 or IPv6 address";
        if (len == 0 || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = 0;
        if (inet_pton(AF_INET, buf, &a.addr.in) == 1) {
                a.family = AF_INET;
                max = 32;
                *ret_why = "prefix length must be 0..32 for IPv4";
        } else if (inet_pton(AF_INET6, buf, &a.addr.in6) == 1) {
                a.family = AF_INET6;
                max = 128;
                *ret_why = "prefix length must be 0..128 for IPv6";
        } else
                return -EINVAL;
        /* A bare address is a host address: /32 or /128. */
        prefix = max;
        if (slash && parse_uint(slash + 1, max, &prefix) < 0)
                return -EINVAL;
        a.prefixlen = (uint8_t) prefix;
        *ret = a;
        *ret_why = NULL;
        return 0;
}

static int add_address(struct parser *p, const char *path, const yaml_node_t *item) {
        struct config *c = p->c;
        struct config_address a;
        const char *s = NULL, *why = NULL;
        int r;

        r = get_scalar(p, item, path, "an address in CIDR notation (10.0.0.1/24)", &s);
        if (r < 0)
                return r;
        if (parse_cidr(s, &a, &why) < 0)
                return fail(p, -EINVAL, item, path, "'%s': %s", QUOTE_STR(s), why);
        for (size_t i = 0; i < c->n_addresses; i++)
                if (c->addresses[i].family == a.family &&
                    memcmp(&c->addresses[i].addr, &a.addr,
                           a.family == AF_INET ? sizeof(a.addr.in) : sizeof(a.addr.in6)) == 0)
                        return fail(p, -EINVAL, item, path, "'%s': address listed twice",
                                    QUOTE_STR(s));
        if (c->n_addresses >= CONFIG_MAX_ADDRESSES)
                return fail(p, -EINVAL, item, path, "too many addresses (at most %d)",
                            CONFIG_MAX_ADDRESSES);
        c->addresses[c->n_addresses++] = a;
        return 0;
}

static int parse_local_ip(struct parser *p, const char *path, const yaml_node_t *value) {
        char item_path[64];
        int r;

        p->c->n_addresses = 0;
        if (node_is_null(value))
                return 0;
        if (value->type == YAML_SCALAR_NODE) {
                if (value->data.scalar.length == 0)
                        return 0;
                return add_address(p, path, value);
        }
        if (value->type != YAML_SEQUENCE_NODE)
                return fail(p, -EINVAL, value, path,
                            "expected an address or a list of addresses, got %s", node_kind(value));
        for (yaml_node_item_t *i = value->data.sequence.items.start;
             i < value->data.sequence.items.top; i++) {
                snprintf(item_path, sizeof(item_path), "%s[%td]", path,
                         i - value->data.sequence.items.start);
                r = add_address(p, item_path, node_at(p, *i));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_mtu(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_number(p, path, value, MTU_MIN, MTU_MAX, &p->c->mtu);
}

static int parse_offload(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_bool(p, path, value, &p->c->offload);
}

/* A number of threads from min to CONFIG_MAX_THREADS, or "auto" (*ret = auto_value). */
static int get_threads(struct parser *p, const char *path, const yaml_node_t *value, uint32_t min,
                       uint32_t auto_value, uint32_t *ret) {
        const char *s = NULL;
        uint32_t v;
        int r;

        r = get_scalar(p, value, path, "a number of threads or auto", &s);
        if (r < 0)
                return r;
        if (strcmp(s, "auto") == 0) {
                *ret = auto_value;
                return 0;
        }
        r = parse_uint(s, CONFIG_MAX_THREADS, &v);
        if (r == -EINVAL)
                return fail(p, -EINVAL, value, path, "'%s' is neither a number nor auto",
                            QUOTE_STR(s));
        if (r < 0 || v < min)
                return fail(p, -EINVAL, value, path, "'%s' is out of range (%u..%d, or auto)",
                            QUOTE_STR(s), min, CONFIG_MAX_THREADS);
        *ret = v;
        return 0;
}

/* network.threads: the data path's queues (datapath.h); "auto" (0) picks them from the CPUs the
 * process may run on when the device starts. */
static int parse_threads(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_threads(p, path, value, 1, 0, &p->c->threads);
}

/* network.rx_workers: the receive thread's crypto workers (datapath.c); "auto" picks them from
 * the CPUs when the device starts. */
static int parse_rx_workers(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_threads(p, path, value, 0, CONFIG_RX_WORKERS_AUTO, &p->c->rx_workers);
}

static int parse_listen_port(struct parser *p, const char *path, const yaml_node_t *value) {
        uint32_t v;
        int r;

        r = get_number(p, path, value, 1, 65535, &v);
        if (r < 0)
                return r;
        p->c->listen_port = (uint16_t) v;
        return 0;
}

static int parse_psk(struct parser *p, const char *path, const yaml_node_t *value) {
        struct config *c = p->c;
        const char *s = NULL;
        size_t len;
        int r;

        r = get_string(p, path, value, &s);
        if (r < 0)
                return r;
        c->has_psk = false;
        p->key_node = NULL;
        if (!s)
                return 0;
        /* Never quote the key itself in a message: it is the secret. */
        len = strlen(s);
        if (len != 2 * NOISE_PSK_LEN)
                return fail(p, -EINVAL, value, path,
                            "must be exactly 64 hex digits (32 bytes), got %zu characters", len);
        for (size_t i = 0; i < len; i++)
                if (!isxdigit((unsigned char) s[i]))
                        return fail(p, -EINVAL, value, path,
                                    "character %zu is not a hex digit (0-9, a-f)", i + 1);
        r = hex_decode(s, c->psk, sizeof(c->psk));
        if (r < 0)
                return fail(p, r, value, path, "not 64 hex digits");
        if (is_all_zero(c->psk, sizeof(c->psk)))
                return fail(p, -EINVAL, value, path,
                            "the key is all zeros; generate a random one (openssl rand -hex 32)");
        c->has_psk = true;
        p->key_node = value;
        return 0;
}

/* A path relative to the configuration's directory; as written when there is none. */
static int resolve_path(struct parser *p, const char *s, char **ret) {
        char *r;

        if (s[0] == '/' || !p->base_dir)
                r = strdup(s);
        else if (asprintf(&r, "%s/%s", p->base_dir, s) < 0)
                r = NULL;
        if (!r)
                return -ENOMEM;
        *ret = r;
        return 0;
}

static int get_path(struct parser *p, const char *path, const yaml_node_t *value, char **ret,
                    const yaml_node_t **ret_node) {
        const char *s = NULL;
        int r;

        r = get_string(p, path, value, &s);
        if (r < 0)
                return r;
        *ret = mfree(*ret);
        *ret_node = NULL;
        if (!s)
                return 0;
        r = resolve_path(p, s, ret);
        if (r < 0)
                return fail(p, r, value, path, "out of memory");
        *ret_node = value;
        return 0;
}

static int parse_key_file(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_path(p, path, value, &p->c->key_file, &p->key_file_node);
}

static int parse_private_key_file(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_path(p, path, value, &p->c->private_key_file, &p->private_key_file_node);
}

/* The keys of one entry of peer:/peers: fill c->peers[p->cur_peer]. */
static int parse_peer_address(struct parser *p, const char *path, const yaml_node_t *value) {
        struct config_peer *e = &p->c->peers[p->cur_peer];
        int r;

        r = get_host_port(p, path, value, PORT_DEFAULT, &e->host, &e->port);
        p->peer_nodes[p->cur_peer].address = r >= 0 && e->host ? value : NULL;
        return r;
}

static int parse_peer_public_key(struct parser *p, const char *path, const yaml_node_t *value) {
        struct config_peer *e = &p->c->peers[p->cur_peer];
        const char *s = NULL;
        int r;

        r = get_string(p, path, value, &s);
        if (r < 0)
                return r;
        e->has_public_key = false;
        p->peer_nodes[p->cur_peer].public_key = NULL;
        if (!s)
                return 0;
        if (config_parse_key(s, e->public_key) < 0 && (strlen(s) == 44 || strlen(s) == 64))
                return fail(p, -EINVAL, value, path,
                            "'%s' is neither valid base64 nor 64 hex digits", QUOTE_STR(s));
        if (config_parse_key(s, e->public_key) < 0)
                return fail(p, -EINVAL, value, path,
                            "expected a base64 public key (44 characters, as `shadowmeshd "
                            "pubkey` prints) or 64 hex digits, got %zu characters",
                            strlen(s));
        if (is_all_zero(e->public_key, sizeof(e->public_key)))
                return fail(p, -EINVAL, value, path, "the key is all zeros (a placeholder?)");
        e->has_public_key = true;
        p->peer_nodes[p->cur_peer].public_key = value;
        return 0;
}

/* A peer's name, for people and for the peer's D-Bus object later: a short identifier that
 * needs no quoting anywhere (log lines, object paths once mapped, shell). "" means no name. */
static int parse_peer_name(struct parser *p, const char *path, const yaml_node_t *value) {
        struct config_peer *e = &p->c->peers[p->cur_peer];
        const char *s = NULL;
        size_t len;
        int r;

        r = get_string(p, path, value, &s);
        if (r < 0)
                return r;
        e->name = mfree(e->name);
        p->peer_nodes[p->cur_peer].name = NULL;
        if (!s)
                return 0;
        len = strlen(s);
        if (len > CONFIG_PEER_NAME_MAX)
                return fail(p, -EINVAL, value, path,
                            "'%s' is too long for a peer name (%zu characters, at most %d)",
                            QUOTE_STR(s), len, CONFIG_PEER_NAME_MAX);
        for (size_t i = 0; i < len; i++)
                if (!(isascii((unsigned char) s[i]) && isalnum((unsigned char) s[i])) &&
                    (i == 0 || (s[i] != '-' && s[i] != '_' && s[i] != '.')))
                        return fail(p, -EINVAL, value, path,
                                    "'%s' is not a valid peer name (letters, digits, '-', '_' "
                                    "and '.', starting with a letter or digit)",
                                    QUOTE_STR(s));
        e->name = strdup(s);
        if (!e->name)
                return fail(p, -ENOMEM, value, path, "out of memory");
        p->peer_nodes[p->cur_peer].name = value;
        return 0;
}

static int parse_nat_enabled(struct parser *p, const char *path, const yaml_node_t *value) {
        p->nat_enabled_node = value;
        return get_bool(p, path, value, &p->c->nat_enabled);
}

static int parse_stun_server(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_host_port(p, path, value, STUN_PORT_DEFAULT, &p->c->stun_host, &p->c->stun_port);
}

static int parse_relay_enabled(struct parser *p, const char *path, const yaml_node_t *value) {
        p->relay_enabled_node = value;
        return get_bool(p, path, value, &p->c->relay_enabled);
}

static int parse_relay_server(struct parser *p, const char *path, const yaml_node_t *value) {
        return get_host_port(p, path, value, RELAY_PORT_DEFAULT, &p->c->relay_host,
                             &p->c->relay_port);
}

static const struct key_def daemon_keys[] = {
        {"listen_address", parse_listen_address},
        {"log_level", parse_log_level},
        {"control_group", parse_control_group},
};
static const struct key_def network_keys[] = {
        {"tap_device", parse_tap_device},
        {"local_ip", parse_local_ip},
        {"mtu", parse_mtu},
        {"listen_port", parse_listen_port},
        {"bind_address", parse_bind_address},
        {"offload", parse_offload},
        {"threads", parse_threads},
        {"rx_workers", parse_rx_workers},
};
static const struct key_def encryption_keys[] = {
        {"key", parse_psk},
        {"key_file", parse_key_file},
};
static const struct key_def identity_keys[] = {
        {"private_key_file", parse_private_key_file},
};
/* peer: and each entry of peers: */
static const struct key_def peer_keys[] = {
        {"address", parse_peer_address},
        {"public_key", parse_peer_public_key},
        {"name", parse_peer_name},
};
#define peers_keys peer_keys
static const struct key_def nat_keys[] = {
        {"enabled", parse_nat_enabled},
        {"stun_server", parse_stun_server},
};
static const struct key_def relay_keys[] = {
        {"enabled", parse_relay_enabled},
        {"server", parse_relay_server},
};

#define SECTION(n)                                                                                 \
        { #n, n##_keys, ELEMENTSOF(n##_keys) }
static const struct section_def sections[] = {
        SECTION(daemon), SECTION(network), SECTION(encryption), SECTION(identity),
        SECTION(peer),   SECTION(peers),   SECTION(nat),        SECTION(relay),
};
enum { MAX_SECTION_KEYS = 8 };
_Static_assert(ELEMENTSOF(daemon_keys) <= MAX_SECTION_KEYS &&
                       ELEMENTSOF(network_keys) <= MAX_SECTION_KEYS &&
                       ELEMENTSOF(encryption_keys) <= MAX_SECTION_KEYS &&
                       ELEMENTSOF(identity_keys) <= MAX_SECTION_KEYS &&
                       ELEMENTSOF(peer_keys) <= MAX_SECTION_KEYS &&
                       ELEMENTSOF(nat_keys) <= MAX_SECTION_KEYS &&
                       ELEMENTSOF(relay_keys) <= MAX_SECTION_KEYS,
               "a section has more keys than parse_section() tracks");

/* "unknown key" with the nearest known name at this level, else the same name (or a near miss)
 * in another section: "did you mean 'network.tap_device'?". */
static int fail_unknown(struct parser *p, const yaml_node_t *key, const char *path,
                        const struct section_def *in) {
        const char *typed = (const char *) key->data.scalar.value;
        size_t len = key->data.scalar.length;
        const char *what = in ? "unknown key" : "unknown section";
        char candidate[64], best_name[64] = "";
        unsigned best = UINT32_MAX;

        if (in) {
                for (size_t k = 0; k < in->n_keys; k++)
                        if (near_miss(typed, len, in->keys[k].name, &best))
                                snprintf(best_name, sizeof(best_name), "%s", in->keys[k].name);
        } else {
                for (size_t s = 0; s < ELEMENTSOF(sections); s++)
                        if (near_miss(typed, len, sections[s].name, &best))
                                snprintf(best_name, sizeof(best_name), "%s", sections[s].name);
        }
        if (!*best_name)
                for (size_t s = 0; s < ELEMENTSOF(sections); s++) {
                        if (&sections[s] == in)
                                continue;
                        for (size_t k = 0; k < sections[s].n_keys; k++) {
                                snprintf(candidate, sizeof(candidate), "%s.%s", sections[s].name,
                                         sections[s].keys[k].name);
                                if (near_miss(typed, len, sections[s].keys[k].name, &best))
                                        memcpy(best_name, candidate, sizeof(best_name));
                        }
                }
        if (*best_name)
                return fail(p, -EINVAL, key, path, "%s, did you mean '%s'?", what, best_name);
        if (in) {
                char known[128] = "";
                for (size_t k = 0; k < in->n_keys; k++)
                        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
                                 k ? ", " : "", in->keys[k].name);
                return fail(p, -EINVAL, key, path, "%s (%s has: %s)", what, in->name, known);
        }
        return fail(p, -EINVAL, key, path,
                    "%s (known: daemon, network, encryption, identity, peer, peers, nat, relay)",
                    what);
}

/* A mapping's key: a plain name. Returns its text. */
static int get_key_name(struct parser *p, const yaml_node_t *key, const char *parent,
                        const char **ret) {
        if (key->type != YAML_SCALAR_NODE || node_is_null(key) ||
            strlen((const char *) key->data.scalar.value) != key->data.scalar.length)
                return fail(p, -EINVAL, key, parent, "expected a key name, got %s",
                            key->type == YAML_SCALAR_NODE ? "an empty or invalid key"
                                                          : node_kind(key));
        *ret = (const char *) key->data.scalar.value;
        return 0;
}

static int fail_duplicate(struct parser *p, const yaml_node_t *key, const char *path,
                          const yaml_node_t *first) {
        return fail(p, -EINVAL, key, path, "duplicate key (first given at line %zu, column %zu)",
                    first->start_mark.line + 1, first->start_mark.column + 1);
}

static int parse_section(struct parser *p, const struct section_def *sec,
                         const yaml_node_t *value) {
        const yaml_node_t *seen[MAX_SECTION_KEYS] = {};
        char path[256];
        int r;

        /* "nat:" with nothing under it is an empty section. */
        if (node_is_null(value))
                return 0;
        if (value->type != YAML_MAPPING_NODE)
                return fail(p, -EINVAL, value, sec->name,
                            "expected a mapping of keys (%s:), got %s", sec->keys[0].name,
                            node_kind(value));
        for (yaml_node_pair_t *pair = value->data.mapping.pairs.start;
             pair < value->data.mapping.pairs.top; pair++) {
                const yaml_node_t *k = node_at(p, pair->key), *v = node_at(p, pair->value);
                const struct key_def *def = NULL;
                const char *name;
                size_t i;

                r = get_key_name(p, k, sec->name, &name);
                if (r < 0)
                        return r;
                for (i = 0; i < sec->n_keys; i++)
                        if (streq(name, sec->keys[i].name)) {
                                def = &sec->keys[i];
                                break;
                        }
                snprintf(path, sizeof(path), "%s.%s", sec->name, QUOTE_STR(name));
                if (!def)
                        return fail_unknown(p, k, path, sec);
                if (seen[i])
                        return fail_duplicate(p, k, path, seen[i]);
                seen[i] = k;
                r = def->parse(p, path, v);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* An IP literal as 16 bytes (IPv4 as IPv4-mapped IPv6), so that "fd00::1" and "fd00:0::1", or
 * "192.0.2.1" and "::ffff:192.0.2.1", are one address. */
static bool host_literal(const char *host, struct in6_addr *ret) {
        struct in_addr a4;

        if (inet_pton(AF_INET6, host, ret) == 1)
                return true;
        if (inet_pton(AF_INET, host, &a4) != 1)
                return false;
        memset(ret, 0, sizeof(*ret));
        ret->s6_addr[10] = ret->s6_addr[11] = 0xff;
        memcpy(&ret->s6_addr[12], &a4, sizeof(a4));
        return true;
}

/* Two entries name the same address: the same port, and the same IP (compared as addresses)
 * or the same host name (compared without case and without a trailing dot). A name and a
 * literal never match: --check resolves nothing, and a name may point elsewhere tomorrow. */
static bool same_address(const struct config_peer *a, const struct config_peer *b) {
        struct in6_addr x, y;
        bool lx, ly;
        size_t na, nb;

        if (!a->host || !b->host || a->port != b->port)
                return false;
        lx = host_literal(a->host, &x);
        ly = host_literal(b->host, &y);
        if (lx || ly)
                return lx && ly && memcmp(&x, &y, sizeof(x)) == 0;
        na = strlen(a->host);
        nb = strlen(b->host);
        if (na > 1 && a->host[na - 1] == '.')
                na--;
        if (nb > 1 && b->host[nb - 1] == '.')
                nb--;
        return na == nb && strncasecmp(a->host, b->host, na) == 0;
}

static void peer_path(struct parser *p, size_t i, char *buf, size_t size) {
        if (p->peers_is_list)
                snprintf(buf, size, "peers[%zu]", i);
        else
                snprintf(buf, size, "peer");
}

/* Each node appears once in the list: its key, its address and its name. */
static int check_duplicates(struct parser *p, size_t i) {
        const struct config_peer *e = &p->c->peers[i];
        const struct peer_nodes *n = &p->peer_nodes[i];
        char path[64], other[32];

        for (size_t j = 0; j < i; j++) {
                const struct config_peer *o = &p->c->peers[j];

                peer_path(p, j, other, sizeof(other));
                if (e->has_public_key && o->has_public_key &&
                    memcmp(e->public_key, o->public_key, sizeof(e->public_key)) == 0) {
                        snprintf(path, sizeof(path), "peers[%zu].public_key", i);
                        return fail(p, -EINVAL, n->public_key, path,
                                    "duplicate key: %s (line %zu) has the same public key; "
                                    "list each node once",
                                    other, o->line);
                }
                if (same_address(e, o)) {
                        snprintf(path, sizeof(path), "peers[%zu].address", i);
                        return fail(p, -EINVAL, n->address, path,
                                    "duplicate address: %s (line %zu) has the same address "
                                    "and port; list each node once",
                                    other, o->line);
                }
                if (e->name && o->name && strcasecmp(e->name, o->name) == 0) {
                        snprintf(path, sizeof(path), "peers[%zu].name", i);
                        return fail(p, -EINVAL, n->name, path,
                                    "duplicate name: %s (line %zu) is called '%s' too", other,
                                    o->line, o->name);
                }
        }
        return 0;
}

/* One entry: c->peers[i], zeroed by the caller. It counts in n_peers before its keys are read,
 * so that config_free() releases whatever a failing entry held. */
static int parse_peer_entry(struct parser *p, const struct section_def *sec, size_t i,
                            const yaml_node_t *node) {
        struct config *c = p->c;
        struct config_peer *e = &c->peers[i];
        struct section_def def = *sec;
        char path[32];
        int r;

        peer_path(p, i, path, sizeof(path));
        if (p->peers_is_list && node_is_null(node))
                return fail(p, -EINVAL, node, path,
                            "empty entry; expected a mapping of keys (address:, public_key:, "
                            "name:)");
        c->n_peers = i + 1;
        e->port = PORT_DEFAULT;
        e->line = node->start_mark.line + 1;
        e->column = node->start_mark.column + 1;
        p->peer_nodes[i] = (struct peer_nodes){.entry = node};
        p->cur_peer = i;
        def.name = path;
        r = parse_section(p, &def, node);
        if (r < 0)
                return r;
        if (!e->host && !e->has_public_key) {
                /* peer: with an empty address (and no key) is the prototype's waiting side: no
                 * peer at all. In a list such an entry says nothing: a mistake. */
                if (p->peers_is_list)
                        return fail(p, -EINVAL, node, path,
                                    "the entry has neither address nor public_key");
                e->name = mfree(e->name);
                c->n_peers = i;
                return 0;
        }
        return check_duplicates(p, i);
}

/* peer: (a mapping, a list of one) or peers: (a list of mappings). */
static int parse_peers(struct parser *p, const struct section_def *sec, const yaml_node_t *key,
                       const yaml_node_t *value) {
        struct config *c = p->c;
        size_t n;
        int r;

        if (p->peers_key_node)
                return fail(p, -EINVAL, key, sec->name,
                            "%s: is also given (line %zu); write the peers one way only "
                            "(peer: is a list of one)",
                            p->peers_is_list ? "peers" : "peer",
                            p->peers_key_node->start_mark.line + 1);
        p->peers_key_node = key;
        p->peers_is_list = streq(sec->name, "peers");
        c->peers_line = key->start_mark.line + 1;
        c->peers_column = key->start_mark.column + 1;
        if (!p->peers_is_list) {
                if (node_is_null(value))
                        return 0; /* "peer:" with nothing under it: waiting, as before */
                n = 1;
        } else {
                if (node_is_null(value) ||
                    (value->type == YAML_SEQUENCE_NODE &&
                     value->data.sequence.items.top == value->data.sequence.items.start))
                        return fail(p, -EINVAL, node_is_null(value) ? key : value, "peers",
                                    "the list is empty; list the other nodes (- address: ...), "
                                    "or leave peers: out to wait for a peer");
                if (value->type != YAML_SEQUENCE_NODE)
                        return fail(p, -EINVAL, value, "peers",
                                    "expected a list of peers (- address: ...), got %s",
                                    node_kind(value));
                n = (size_t) (value->data.sequence.items.top - value->data.sequence.items.start);
                if (n > CONFIG_MAX_PEERS)
                        return fail(p, -EINVAL,
                                    node_at(p, value->data.sequence.items.start[CONFIG_MAX_PEERS]),
                                    "peers", "too many peers (at most %d)", CONFIG_MAX_PEERS);
        }
        c->peers = calloc(n, sizeof(c->peers[0]));
        p->peer_nodes = calloc(n, sizeof(p->peer_nodes[0]));
        if (!c->peers || !p->peer_nodes)
                return fail(p, -ENOMEM, key, sec->name, "out of memory");
        if (!p->peers_is_list)
                return parse_peer_entry(p, sec, 0, value);
        for (size_t i = 0; i < n; i++) {
                r = parse_peer_entry(p, sec, i, node_at(p, value->data.sequence.items.start[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_root(struct parser *p) {
        const yaml_node_t *seen[ELEMENTSOF(sections)] = {};
        const yaml_node_t *root = yaml_document_get_root_node(p->doc);
        int r;

        if (!root || node_is_null(root))
                return fail(p, -EINVAL, root, NULL,
                            "the configuration is empty (expected sections such as network: "
                            "and encryption:)");
        if (root->type != YAML_MAPPING_NODE)
                return fail(p, -EINVAL, root, NULL,
                            "expected a mapping of sections (daemon:, network:, encryption:, "
                            "...), got %s",
                            node_kind(root));
        for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
             pair < root->data.mapping.pairs.top; pair++) {
                const yaml_node_t *k = node_at(p, pair->key), *v = node_at(p, pair->value);
                const struct section_def *sec = NULL;
                const char *name;
                size_t i;

                r = get_key_name(p, k, NULL, &name);
                if (r < 0)
                        return r;
                if (!p->first_section_node)
                        p->first_section_node = k;
                for (i = 0; i < ELEMENTSOF(sections); i++)
                        if (streq(name, sections[i].name)) {
                                sec = &sections[i];
                                break;
                        }
                if (!sec)
                        return fail_unknown(p, k, QUOTE_STR(name), NULL);
                if (seen[i])
                        return fail_duplicate(p, k, sec->name, seen[i]);
                seen[i] = k;
                if (sec->keys == peer_keys)
                        r = parse_peers(p, sec, k, v);
                else
                        r = parse_section(p, sec, v);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --- key files ----------------------------------------------------------------------------- */

/* The one key line of a key file: surrounding whitespace and "#" comment lines are ignored, so
 * `wg genkey > file` output and an annotated file both work. Copies it into out (NUL-ended). */
static int key_file_token(const char *buf, size_t len, char *out, size_t outlen, size_t *ret_len,
                          const char **ret_why) {
        size_t n = 0;
        bool found = false;

        for (size_t i = 0; i < len;) {
                size_t start, end;

                while (i < len && buf[i] != '\n' && isspace((unsigned char) buf[i]))
                        i++;
                start = i;
                while (i < len && buf[i] != '\n')
                        i++;
                end = i;
                if (i < len)
                        i++;
                while (end > start && isspace((unsigned char) buf[end - 1]))
                        end--;
                if (end == start || buf[start] == '#')
                        continue;
                *ret_why = "holds more than one key line";
                if (found)
                        return -EINVAL;
                found = true;
                n = end - start;
                for (size_t j = start; j < end; j++)
                        if (isspace((unsigned char) buf[j]) || buf[j] == 0) {
                                *ret_why = "the key line contains whitespace or NUL bytes";
                                return -EINVAL;
                        }
                if (n < outlen)
                        memcpy(out, buf + start, n);
        }
        *ret_why = "holds no key";
        if (!found)
                return -EINVAL;
        out[n < outlen ? n : 0] = 0;
        *ret_len = n;
        return 0;
}

static int load_key_file(struct parser *p, const char *path, const yaml_node_t *node,
                         const char *file, uint8_t out[32], const char *expected) {
        _cleanup_free_ char *buf = NULL;
        char token[128];
        size_t len = 0, n = 0;
        const char *why = NULL;
        int r;

        r = read_full_file(file, &buf, &len, KEY_FILE_MAX_SIZE);
        if (r == -EFBIG)
                return fail(p, -EINVAL, node, path, "'%s' is too large for a key file",
                            QUOTE_STR(file));
        if (r == -ENOMEM)
                return fail(p, r, node, path, "out of memory");
        if (r < 0)
                return fail(p, r, node, path, "cannot read '%s': %s", QUOTE_STR(file),
                            strerror(-r));
        r = key_file_token(buf, len, token, sizeof(token), &n, &why);
        if (r == 0 && (n >= sizeof(token) || config_parse_key(token, out) < 0)) {
                r = -EINVAL;
                why = NULL;
        }
        sodium_memzero(buf, len);
        sodium_memzero(token, sizeof(token));
        if (r < 0 && why)
                return fail(p, r, node, path, "'%s' %s (expected %s)", QUOTE_STR(file), why,
                            expected);
        if (r < 0 && (n == 44 || n == 64))
                return fail(
                        p, r, node, path,
                        "'%s' must hold %s; its %zu characters are neither valid base64 nor hex",
                        QUOTE_STR(file), expected, n);
        if (r < 0)
                return fail(p, r, node, path, "'%s' must hold %s, found %zu characters",
                            QUOTE_STR(file), expected, n);
        if (is_all_zero(out, 32))
                return fail(p, -EINVAL, node, path, "'%s' holds an all-zero key", QUOTE_STR(file));
        return 0;
}

/* --- checks across keys --------------------------------------------------------------------- */

/* Identity mode pins every listed peer by its key; shared-key mode has no keys to pin. */
static int validate_peers(struct parser *p) {
        struct config *c = p->c;
        char path[64];

        if (p->private_key_file_node && c->n_peers == 0)
                return fail(p, -EINVAL,
                            p->peers_key_node ? p->peers_key_node : p->private_key_file_node,
                            "peer.public_key",
                            "missing: identity mode (identity.private_key_file) needs the "
                            "peer's public key");
        for (size_t i = 0; i < c->n_peers; i++) {
                const struct peer_nodes *n = &p->peer_nodes[i];

                peer_path(p, i, path, sizeof(path));
                if (p->private_key_file_node && !c->peers[i].has_public_key) {
                        /* peer: points at its key, as it always did; a list at the entry. */
                        if (!p->peers_is_list)
                                return fail(p, -EINVAL, p->peers_key_node, "peer.public_key",
                                            "missing: identity mode (identity.private_key_file) "
                                            "needs the peer's public key");
                        strcat(path, ".public_key");
                        return fail(p, -EINVAL, n->entry, path,
                                    "missing: identity mode (identity.private_key_file) "
                                    "admits only listed keys, so each entry needs one");
                }
                if (!p->private_key_file_node && c->peers[i].has_public_key) {
                        strcat(path, ".public_key");
                        return fail(p, -EINVAL, n->public_key, path,
                                    "identity.private_key_file is not set: identity mode needs "
                                    "both (remove %s for shared-key mode)",
                                    path);
                }
        }
        return 0;
}

/*
 * The node's own entry, recognised by its public key (derived from the private key), leaves
 * the list: one list can then be the same file on every node. A list of nothing but the node
 * itself is the copy-paste slip of pinning one's own key.
 */
static int drop_own_entry(struct parser *p, const uint8_t pub[static NOISE_PUBLIC_KEY_LEN]) {
        struct config *c = p->c;
        char path[64];

        for (size_t i = 0; i < c->n_peers; i++) {
                struct config_peer *e = &c->peers[i];

                /* Public keys: an ordinary compare is fine. */
                if (!e->has_public_key || memcmp(e->public_key, pub, NOISE_PUBLIC_KEY_LEN) != 0)
                        continue;
                if (c->n_peers == 1) {
                        peer_path(p, i, path, sizeof(path));
                        strcat(path, ".public_key");
                        return fail(p, -EINVAL, p->peer_nodes[i].public_key, path, "%s",
                                    p->peers_is_list
                                            ? "is this node's own public key, and the list "
                                              "names no other node"
                                            : "is this node's own public key; put the other "
                                              "node's key here");
                }
                free(e->host);
                free(e->name);
                memmove(e, e + 1, (c->n_peers - i - 1) * sizeof(*e));
                memmove(&p->peer_nodes[i], &p->peer_nodes[i + 1],
                        (c->n_peers - i - 1) * sizeof(p->peer_nodes[0]));
                c->n_peers--;
                memset(&c->peers[c->n_peers], 0, sizeof(c->peers[0]));
                return 0; /* keys are unique (check_duplicates) */
        }
        return 0;
}

static int validate(struct parser *p) {
        struct config *c = p->c;
        int r;

        if (p->key_node && p->key_file_node)
                return fail(p, -EINVAL, p->key_file_node, "encryption.key_file",
                            "encryption.key is also set (line %zu); give the key one way only",
                            p->key_node->start_mark.line + 1);
        if (!p->key_node && !p->key_file_node && !p->private_key_file_node)
                return fail(p, -EINVAL, p->first_section_node, "encryption.key",
                            "no key configured: set encryption.key (shared-key mode) or "
                            "identity.private_key_file (identity mode)");
        r = validate_peers(p);
        if (r < 0)
                return r;
        /* Naming a server and saying nothing else means using it. */
        if (c->relay_host && !p->relay_enabled_node)
                c->relay_enabled = true;
        if (c->stun_host && !p->nat_enabled_node)
                c->nat_enabled = true;
        if (c->relay_enabled && !c->relay_host)
                return fail(p, -EINVAL, p->relay_enabled_node, "relay.enabled",
                            "is true but relay.server is not set");
        /* The relay answers STUN too, so it stands in for a missing STUN server. */
        if (c->nat_enabled && !c->stun_host) {
                if (!c->relay_host)
                        return fail(p, -EINVAL, p->nat_enabled_node, "nat.enabled",
                                    "is true but neither nat.stun_server nor relay.server is set");
                c->stun_host = strdup(c->relay_host);
                if (!c->stun_host)
                        return fail(p, -ENOMEM, p->nat_enabled_node, "nat.enabled",
                                    "out of memory");
                c->stun_port = c->relay_port;
        }

        /* Key files are read only when the caller gave a directory to resolve them in. */
        if (!p->base_dir)
                return 0;
        if (c->key_file) {
                r = load_key_file(p, "encryption.key_file", p->key_file_node, c->key_file, c->psk,
                                  "64 hex digits or a base64 key");
                if (r < 0)
                        return r;
                c->has_psk = true;
        }
        if (c->private_key_file) {
                uint8_t pub[NOISE_PUBLIC_KEY_LEN];

                r = load_key_file(p, "identity.private_key_file", p->private_key_file_node,
                                  c->private_key_file, c->private_key,
                                  "a base64 X25519 private key (44 characters, as `shadowmeshd "
                                  "genkey` prints) or 64 hex digits");
                if (r < 0)
                        return r;
                c->has_private_key = true;
                if (crypto_scalarmult_base(pub, c->private_key) == 0) {
                        r = drop_own_entry(p, pub);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* --- entry points --------------------------------------------------------------------------- */

const struct config_peer *config_first_peer(const struct config *c) {
        static const struct config_peer none = {.port = PORT_DEFAULT};

        return c->n_peers > 0 ? &c->peers[0] : &none;
}

static int fail_yaml(const yaml_parser_t *y, const char *text, size_t len, const char *name,
                     char *errbuf, size_t errlen) {
        size_t line = y->problem_mark.line + 1, column = y->problem_mark.column + 1;
        const char *problem = y->problem ? y->problem : "unknown error";

        if (y->error == YAML_MEMORY_ERROR)
                return fail_plain(errbuf, errlen, name, 1, 1, -ENOMEM, "out of memory");
        if (y->error == YAML_READER_ERROR) {
                /* Reader errors carry a byte offset, not a mark. */
                size_t off = MIN(y->problem_offset, len);
                line = 1;
                column = 1;
                for (size_t i = 0; i < off; i++) {
                        if (text[i] == '\n') {
                                line++;
                                column = 1;
                        } else
                                column++;
                }
                return fail_plain(errbuf, errlen, name, line, column, -EINVAL, "not valid text: %s",
                                  problem);
        }
        if (y->context)
                return fail_plain(errbuf, errlen, name, line, column, -EINVAL,
                                  "syntax error: %s (%s at line %zu, column %zu)", problem,
                                  y->context, y->context_mark.line + 1, y->context_mark.column + 1);
        return fail_plain(errbuf, errlen, name, line, column, -EINVAL, "syntax error: %s", problem);
}

/* libyaml frees its buffers without clearing them, and they held the file's text, the key
 * included. We clear the input buffers and every scalar (the key's value lives in one); the
 * scanner's short-lived scratch strings are out of our reach. */
static void wipe_document(yaml_document_t *doc) {
        for (yaml_node_t *n = doc->nodes.start; n && n < doc->nodes.top; n++)
                if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
                        sodium_memzero(n->data.scalar.value, n->data.scalar.length);
}

static void wipe_parser(yaml_parser_t *y) {
        if (y->raw_buffer.start)
                sodium_memzero(y->raw_buffer.start,
                               (size_t) (y->raw_buffer.end - y->raw_buffer.start));
        if (y->buffer.start)
                sodium_memzero(y->buffer.start, (size_t) (y->buffer.end - y->buffer.start));
}

static struct config *config_new(void) {
        struct config *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->listen_port = PORT_DEFAULT;
        c->log_level = LOG_INFO;
        memcpy(c->tap_device, "tap0", sizeof("tap0"));
        c->mtu = MTU_DEFAULT;
        c->offload = true;
        c->rx_workers = CONFIG_RX_WORKERS_AUTO;
        c->stun_port = STUN_PORT_DEFAULT;
        c->relay_port = RELAY_PORT_DEFAULT;
        return c;
}

int config_parse_string(const char *text, size_t len, const char *name, const char *base_dir,
                        struct config **ret, char *errbuf, size_t errlen) {
        _cleanup_(config_freep) struct config *c = NULL;
        yaml_parser_t y;
        yaml_document_t doc, extra;
        struct parser p;
        int r;

        if (!name)
                name = "<config>";
        if (errbuf && errlen)
                errbuf[0] = 0;
        if (!text)
                return fail_plain(errbuf, errlen, name, 1, 1, -EINVAL, "no text");
        if (len > CONFIG_MAX_SIZE)
                return fail_plain(errbuf, errlen, name, 1, 1, -EFBIG,
                                  "too large for a configuration (%zu bytes, at most %d)", len,
                                  CONFIG_MAX_SIZE);
        if (sodium_init() < 0)
                return fail_plain(errbuf, errlen, name, 1, 1, -EIO,
                                  "libsodium failed to initialize");
        c = config_new();
        if (!c || !yaml_parser_initialize(&y))
                return fail_plain(errbuf, errlen, name, 1, 1, -ENOMEM, "out of memory");
        yaml_parser_set_input_string(&y, (const unsigned char *) text, len);
        if (!yaml_parser_load(&y, &doc)) {
                r = fail_yaml(&y, text, len, name, errbuf, errlen);
                wipe_parser(&y);
                yaml_parser_delete(&y);
                return r;
        }
        p = (struct parser){
                .name = name,
                .base_dir = base_dir,
                .doc = &doc,
                .errbuf = errbuf,
                .errlen = errlen,
                .c = c,
        };
        r = parse_root(&p);
        if (r >= 0)
                r = validate(&p);
        /* One document per file: a second one would be silently ignored otherwise. */
        if (r >= 0) {
                if (!yaml_parser_load(&y, &extra))
                        r = fail_yaml(&y, text, len, name, errbuf, errlen);
                else {
                        const yaml_node_t *root = yaml_document_get_root_node(&extra);
                        if (root)
                                r = fail(&p, -EINVAL, root, NULL,
                                         "a second YAML document; a configuration is one "
                                         "document");
                        wipe_document(&extra);
                        yaml_document_delete(&extra);
                }
        }
        free(p.peer_nodes);
        wipe_document(&doc);
        yaml_document_delete(&doc);
        wipe_parser(&y);
        yaml_parser_delete(&y);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static bool readable_by_others(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH));
}

static void warn_readable(const char *path) {
        log_warning(
                "WARNING: %s holds a secret key and is readable by other users; run: chmod 600 %s",
                path, path);
}

int config_load(const char *path, struct config **ret, char *errbuf, size_t errlen) {
        _cleanup_free_ char *text = NULL, *copy = NULL, *owned_path = NULL;
        struct config *c = NULL;
        size_t len = 0;
        int r;

        if (errbuf && errlen)
                errbuf[0] = 0;
        if (!path)
                return -EINVAL;
        r = read_full_file(path, &text, &len, CONFIG_MAX_SIZE);
        if (r == -EFBIG)
                return fail_plain(errbuf, errlen, path, 1, 1, r,
                                  "too large for a configuration (more than %d bytes)",
                                  CONFIG_MAX_SIZE);
        if (r < 0)
                return fail_plain(errbuf, errlen, path, 1, 1, r, "cannot read: %s", strerror(-r));
        copy = strdup(path);
        owned_path = strdup(path);
        if (!copy || !owned_path) {
                sodium_memzero(text, len);
                return fail_plain(errbuf, errlen, path, 1, 1, -ENOMEM, "out of memory");
        }
        r = config_parse_string(text, len, path, dirname(copy), &c, errbuf, errlen);
        sodium_memzero(text, len);
        if (r < 0)
                return r;
        c->path = TAKE_PTR(owned_path);

        /* An inline key makes the configuration itself a secret. */
        if (c->has_psk && !c->key_file && readable_by_others(path))
                warn_readable(path);
        if (c->key_file && readable_by_others(c->key_file))
                warn_readable(c->key_file);
        if (c->private_key_file && readable_by_others(c->private_key_file))
                warn_readable(c->private_key_file);
        *ret = c;
        return 0;
}

struct config *config_free(struct config *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->control_host);
        free(c->bind_host);
        free(c->control_group);
        free(c->key_file);
        free(c->private_key_file);
        for (size_t i = 0; i < c->n_peers; i++) {
                free(c->peers[i].host);
                free(c->peers[i].name);
        }
        free(c->peers);
        free(c->stun_host);
        free(c->relay_host);
        sodium_memzero(c, sizeof(*c));
        free(c);
        return NULL;
}
