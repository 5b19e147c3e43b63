/* SPDX-License-Identifier: MIT */
/* Human output: sizes, "12 seconds ago", and networkctl-style aligned "Label: value" lines. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "ctl.h"
#include "i18n.h"

const char *format_bytes(char buf[FORMAT_BYTES_MAX], uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double) bytes;
        size_t u = 0;

        if (bytes < 1024) {
                snprintf(buf, FORMAT_BYTES_MAX, "%llu B", (unsigned long long) bytes);
                return buf;
        }
        v /= 1024;
        /* Move up a unit once the one-decimal rendering would read 1024.0. */
        while (v >= 1023.95 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        snprintf(buf, FORMAT_BYTES_MAX, "%.1f %s", v, units[u]);
        return buf;
}

char *format_ago(uint64_t then_usec, uint64_t now_usec) {
        uint64_t s = then_usec < now_usec ? (now_usec - then_usec) / USEC_PER_SEC : 0;
        unsigned long long days = s / 86400, hours = s / 3600 % 24, minutes = s / 60 % 60,
                           seconds = s % 60;
        char buf[256] = "", *result;
        size_t len = 0;

        if (then_usec == 0)
                return strdup(_("never"));

        /* Every non-zero unit, biggest first, as wg(8) shows handshakes; the seconds also
         * when nothing bigger did ("0 seconds ago"). ngettext: plural rules differ by language. */
#define APPEND(fmt, v)                                                                             \
        do {                                                                                       \
                if (len > 0 && len < sizeof(buf))                                                  \
                        len += snprintf(buf + len, sizeof(buf) - len, ", ");                       \
                if (len < sizeof(buf))                                                             \
                        len += snprintf(buf + len, sizeof(buf) - len, fmt, v);                     \
        } while (0)
        if (days > 0)
                APPEND(ngettext("%llu day", "%llu days", days), days);
        if (hours > 0)
                APPEND(ngettext("%llu hour", "%llu hours", hours), hours);
        if (minutes > 0)
                APPEND(ngettext("%llu minute", "%llu minutes", minutes), minutes);
        if (seconds > 0 || len == 0)
                APPEND(ngettext("%llu second", "%llu seconds", seconds), seconds);
#undef APPEND
        if (asprintf(&result, _("%s ago"), buf) < 0)
                return NULL;
        return result;
}

size_t text_width(const char *s) {
        size_t n = mbstowcs(NULL, s, 0);
        wchar_t *w;
        int width;

        if (n == (size_t) -1)
                return strlen(s);
        w = calloc(n + 1, sizeof(wchar_t));
        if (!w)
                return strlen(s);
        mbstowcs(w, s, n + 1);
        width = wcswidth(w, n);
        free(w);
        return width < 0 ? strlen(s) : (size_t) width;
}

int table_add(struct table *t, const char *label, const char *fmt, ...) {
        va_list ap;
        char *value;
        int r;

        if (t->n == t->allocated) {
                size_t a = t->allocated ? t->allocated * 2 : 16;
                struct table_row *rows = reallocarray(t->rows, a, sizeof(*rows));
                if (!rows)
                        return -ENOMEM;
                t->rows = rows;
                t->allocated = a;
        }
        va_start(ap, fmt);
        r = vasprintf(&value, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        t->rows[t->n++] = (struct table_row){ .label = label, .value = value };
        return 0;
}

void table_print(struct table *t, FILE *f) {
        size_t width = 0;

        for (size_t i = 0; i < t->n; i++)
                if (t->rows[i].label)
                        width = MAX(width, text_width(t->rows[i].label));
        for (size_t i = 0; i < t->n; i++) {
                const char *label = t->rows[i].label;
                size_t w = label ? text_width(label) : 0;

                fprintf(f, "%*s%s%s %s\n", (int) (width - w), "", label ? label : "",
                        label ? ":" : " ", t->rows[i].value);
        }
}

void table_done(struct table *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->rows[i].value);
        free(t->rows);
        *t = (struct table){};
}
