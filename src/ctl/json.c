/* SPDX-License-Identifier: MIT */
/*
 * A small JSON writer for --json (RFC 8259), walking D-Bus values generically so a property
 * the daemon adds later shows up without a change here: strings as strings, integers as
 * numbers, booleans as true/false, arrays as arrays, dictionaries as objects, structs as
 * arrays.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0. */
static size_t utf8_sequence(const unsigned char *s) {
        size_t len;
        uint32_t c;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                c = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                c = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                c = s[0] & 0x07;
        } else
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
            (len == 4 && (c < 0x10000 || c > 0x10ffff)))
                return 0;
        return len;
}

void json_string(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        fputc('"', f);
        while (*p) {
                size_t len;

                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\b':
                        fputs("\\b", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f) {
                                fprintf(f, "\\u%04x", *p);
                                break;
                        }
                        len = utf8_sequence(p);
                        if (len == 0) {
                                /* Bus strings are valid UTF-8; an instance name decoded from
                                 * its label need not be. Keep the output valid JSON. */
                                fputs("\\ufffd", f);
                                break;
                        }
                        fwrite(p, 1, len, f);
                        p += len;
                        continue;
                }
                p++;
        }
        fputc('"', f);
}

union basic {
        uint8_t y;
        int b;
        int16_t n;
        uint16_t q;
        int32_t i;
        uint32_t u;
        int64_t x;
        uint64_t t;
        double d;
        const char *s;
};

static int read_basic(sd_bus_message *m, char type, union basic *v) {
        *v = (union basic){};
        return sd_bus_message_read_basic(m, type, v);
}

/* A basic value as JSON; as_key: quoted, for a dictionary key of any basic type. */
static void write_basic(FILE *f, char type, const union basic *v, bool as_key) {
        const char *q = as_key ? "\"" : "";

        switch (type) {
        case 's':
        case 'o':
        case 'g':
                json_string(f, v->s);
                break;
        case 'b':
                fprintf(f, "%s%s%s", q, v->b ? "true" : "false", q);
                break;
        case 'y':
                fprintf(f, "%s%u%s", q, (unsigned) v->y, q);
                break;
        case 'n':
                fprintf(f, "%s%d%s", q, (int) v->n, q);
                break;
        case 'q':
                fprintf(f, "%s%u%s", q, (unsigned) v->q, q);
                break;
        case 'i':
        case 'h':
                fprintf(f, "%s%" PRId32 "%s", q, v->i, q);
                break;
        case 'u':
                fprintf(f, "%s%" PRIu32 "%s", q, v->u, q);
                break;
        case 'x':
                fprintf(f, "%s%" PRId64 "%s", q, v->x, q);
                break;
        case 't':
                fprintf(f, "%s%" PRIu64 "%s", q, v->t, q);
                break;
        case 'd':
                if (isfinite(v->d))
                        fprintf(f, "%s%.17g%s", q, v->d, q);
                else
                        fprintf(f, "%snull%s", q, q);
                break;
        default:
                fputs(as_key ? "\"\"" : "null", f);
        }
}

static int write_value(FILE *f, sd_bus_message *m);

/* Inside an entered container: every element, comma-separated. */
static int write_elements(FILE *f, sd_bus_message *m) {
        bool first = true;
        int r;

        while ((r = sd_bus_message_at_end(m, false)) == 0) {
                if (!first)
                        fputc(',', f);
                first = false;
                r = write_value(f, m);
                if (r < 0)
                        return r;
        }
        return r;
}

/* a{..}: inside the entered array, each dict entry as "key":value. */
static int write_dict(FILE *f, sd_bus_message *m) {
        bool first = true;
        const char *contents;
        char type;
        int r;

        while ((r = sd_bus_message_peek_type(m, &type, &contents)) > 0) {
                union basic key;
                char key_type;

                if (type != SD_BUS_TYPE_DICT_ENTRY)
                        return -EBADMSG;
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                key_type = contents[0];
                r = read_basic(m, key_type, &key);
                if (r < 0)
                        return r;
                if (!first)
                        fputc(',', f);
                first = false;
                write_basic(f, key_type, &key, true);
                fputc(':', f);
                r = write_value(f, m);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return r;
}

static int write_value(FILE *f, sd_bus_message *m) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;

        switch (type) {
        case SD_BUS_TYPE_VARIANT:
                r = sd_bus_message_enter_container(m, type, contents);
                if (r >= 0)
                        r = write_value(f, m);
                break;
        case SD_BUS_TYPE_ARRAY:
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                if (contents[0] == SD_BUS_TYPE_DICT_ENTRY_BEGIN) {
                        fputc('{', f);
                        r = write_dict(f, m);
                        fputc('}', f);
                } else {
                        fputc('[', f);
                        r = write_elements(f, m);
                        fputc(']', f);
                }
                break;
        case SD_BUS_TYPE_STRUCT:
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                fputc('[', f);
                r = write_elements(f, m);
                fputc(']', f);
                break;
        default: {
                union basic v;
                r = read_basic(m, type, &v);
                if (r < 0)
                        return r;
                write_basic(f, type, &v, false);
                return 0;
        }
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* with_peers: close with "peers": [...] (status); without: the reply alone (list, netcheck). */
static int write_status(FILE *f, const char *instance, sd_bus_message *reply, bool with_peers,
                        const struct ctl_peer *peers, size_t n_peers) {
        int r;

        r = sd_bus_message_rewind(reply, true);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        fputs("{\"Instance\":", f);
        json_string(f, instance);
        if (sd_bus_message_at_end(reply, false) == 0)
                fputc(',', f);
        r = write_dict(f, reply);
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (!with_peers) {
                fputc('}', f);
                return r;
        }
        /* The peers, each as its Peer object's properties (machine units: bytes, µs). */
        fputs(",\"peers\":[", f);
        for (size_t i = 0; r >= 0 && i < n_peers; i++) {
                sd_bus_message *m = peers[i].reply;

                fputs(i ? ",{\"Object\":" : "{\"Object\":", f);
                json_string(f, peers[i].object);
                r = sd_bus_message_rewind(m, true);
                if (r >= 0)
                        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
                if (r >= 0 && sd_bus_message_at_end(m, false) == 0)
                        fputc(',', f);
                if (r >= 0)
                        r = write_dict(f, m);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                fputc('}', f);
        }
        fputs("]}", f);
        return r;
}

int json_status(FILE *f, const char *instance, sd_bus_message *reply) {
        return write_status(f, instance, reply, false, NULL, 0);
}

int json_status_peers(FILE *f, const char *instance, sd_bus_message *reply,
                      const struct ctl_peer *peers, size_t n_peers) {
        return write_status(f, instance, reply, true, peers, n_peers);
}
