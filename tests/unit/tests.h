/* SPDX-License-Identifier: MIT */
/* The unit tests' small harness: checks that count and report with file:line, hex helpers and
 * the path of the vectors directory. A test program ends with "return test_summary();" which
 * prints "N passed, N failed" and returns non-zero on any failure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern unsigned test_passed, test_failed;

void test_check(bool ok, const char *file, int line, const char *expr, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

#define CHECK(expr) test_check(!!(expr), __FILE__, __LINE__, #expr, NULL)
#define CHECKF(expr, ...) test_check(!!(expr), __FILE__, __LINE__, #expr, __VA_ARGS__)
#define CHECK_EQ_INT(a, b)                                                                          \
        do {                                                                                       \
                long long _a_ = (long long) (a), _b_ = (long long) (b);                            \
                test_check(_a_ == _b_, __FILE__, __LINE__, #a " == " #b, "%lld != %lld", _a_, _b_); \
        } while (0)
#define CHECK_MEM(a, b, n) test_check(memcmp((a), (b), (n)) == 0, __FILE__, __LINE__, #a " == " #b, NULL)

/* Hex string to freshly malloc'd bytes; *ret_len gets the length. Aborts on bad hex (test data). */
uint8_t *test_unhex(const char *hex, size_t *ret_len);
/* Path of a file under the vectors directory ($SHADOWMESH_VECTORS), in a static buffer. */
const char *test_vector_path(const char *relative);
/* Whole file into a NUL-terminated malloc'd buffer; aborts if it cannot be read. */
char *test_read_file(const char *path, size_t *ret_len);
int test_summary(void);
