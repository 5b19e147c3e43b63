/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every file: scope cleanup, sizes, little-endian access. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _packed_ __attribute__((packed))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_TO(x, a) (((x) + (a) - 1) / (a) * (a))

/* Hand ownership out of a _cleanup_ scope. */
#define SWAP_PTR(a, b)                                                                             \
        do {                                                                                       \
                __typeof__(a) _t_ = (a);                                                           \
                (a) = (b);                                                                         \
                (b) = _t_;                                                                         \
        } while (0)

#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p_ = (p);                                                           \
                (p) = NULL;                                                                        \
                _p_;                                                                               \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -EBADF;                                                                     \
                _fd_;                                                                              \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* For "T *t_free(T *)" destructors that accept NULL and return NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p) {                                                      \
                if (*p)                                                                            \
                        *p = func(*p);                                                             \
        }

static inline uint16_t get_le16(const void *p) {
        const uint8_t *b = p;
        return (uint16_t) (b[0] | (b[1] << 8));
}
static inline uint32_t get_le32(const void *p) {
        const uint8_t *b = p;
        return (uint32_t) b[0] | ((uint32_t) b[1] << 8) | ((uint32_t) b[2] << 16) |
               ((uint32_t) b[3] << 24);
}
static inline uint64_t get_le64(const void *p) {
        return (uint64_t) get_le32(p) | ((uint64_t) get_le32((const uint8_t *) p + 4) << 32);
}
static inline void put_le32(void *p, uint32_t v) {
        uint8_t *b = p;
        b[0] = (uint8_t) v;
        b[1] = (uint8_t) (v >> 8);
        b[2] = (uint8_t) (v >> 16);
        b[3] = (uint8_t) (v >> 24);
}
static inline void put_le64(void *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32((uint8_t *) p + 4, (uint32_t) (v >> 32));
}
static inline uint16_t get_be16(const void *p) {
        const uint8_t *b = p;
        return (uint16_t) ((b[0] << 8) | b[1]);
}
static inline uint32_t get_be32(const void *p) {
        const uint8_t *b = p;
        return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) | ((uint32_t) b[2] << 8) | b[3];
}
static inline void put_be16(void *p, uint16_t v) {
        uint8_t *b = p;
        b[0] = (uint8_t) (v >> 8);
        b[1] = (uint8_t) v;
}
static inline void put_be32(void *p, uint32_t v) {
        uint8_t *b = p;
        b[0] = (uint8_t) (v >> 24);
        b[1] = (uint8_t) (v >> 16);
        b[2] = (uint8_t) (v >> 8);
        b[3] = (uint8_t) v;
}

#define NSEC_PER_SEC UINT64_C(1000000000)
#define NSEC_PER_MSEC UINT64_C(1000000)
#define USEC_PER_SEC UINT64_C(1000000)

/* Monotonic clock in nanoseconds (CLOCK_BOOTTIME: keeps counting across suspend, so key
 * lifetimes stay honest on a laptop that slept). */
uint64_t now_ns(void);
/* Realtime clock in microseconds, for LastHandshake-style wall clock reports. */
uint64_t now_realtime_us(void);

/* Parse exactly 2*len hex digits into out; -EINVAL on any other input. */
int hex_decode(const char *s, uint8_t *out, size_t len);
void hex_encode(const uint8_t *in, size_t len, char *out /* 2*len+1 */);

/* Read at most max bytes of a whole file (for key files); -EFBIG if larger. */
int read_full_file(const char *path, char **ret, size_t *ret_len, size_t max);
