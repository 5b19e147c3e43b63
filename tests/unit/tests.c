/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

unsigned test_passed, test_failed;

void test_check(bool ok, const char *file, int line, const char *expr, const char *fmt, ...) {
        if (ok) {
                test_passed++;
                return;
        }
        test_failed++;
        fprintf(stderr, "FAIL %s:%d: %s", file, line, expr);
        if (fmt) {
                va_list ap;
                fputs(": ", stderr);
                va_start(ap, fmt);
                vfprintf(stderr, fmt, ap);
                va_end(ap);
        }
        fputc('\n', stderr);
}

static int nibble(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

uint8_t *test_unhex(const char *hex, size_t *ret_len) {
        size_t n = strlen(hex);
        uint8_t *out;

        if (n % 2) {
                fprintf(stderr, "odd-length hex in test data: %s\n", hex);
                abort();
        }
        out = malloc(n / 2 + 1);
        if (!out)
                abort();
        for (size_t i = 0; i < n / 2; i++) {
                int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        fprintf(stderr, "bad hex in test data: %s\n", hex);
                        abort();
                }
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret_len = n / 2;
        return out;
}

const char *test_vector_path(const char *relative) {
        static char buf[4096];
        const char *dir = getenv("SHADOWMESH_VECTORS");

        snprintf(buf, sizeof(buf), "%s/%s", dir ? dir : "tests/vectors", relative);
        return buf;
}

char *test_read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "rb");
        char *buf;
        long n;

        if (!f) {
                perror(path);
                abort();
        }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n)
                abort();
        buf[n] = 0;
        fclose(f);
        if (ret_len)
                *ret_len = (size_t) n;
        return buf;
}

int test_summary(void) {
        printf("%u passed, %u failed\n", test_passed, test_failed);
        return test_failed ? 1 : 0;
}
