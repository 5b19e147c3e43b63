/* SPDX-License-Identifier: MIT */
/*
 * Direct syscalls (capget/capset, prctl) rather than libcap or libcap-ng: the daemon needs one
 * fixed operation, "keep CAP_NET_ADMIN", which takes some forty lines without a new run-time
 * dependency; the format of the sets (_LINUX_CAPABILITY_VERSION_3, two 32-bit words) is a
 * stable kernel ABI.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

/* The capabilities the running daemon keeps. */
#define CAPS_KEEP (UINT64_C(1) << CAP_NET_ADMIN)

static int get_sets(struct __user_cap_data_struct data[2]) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };

        if (syscall(SYS_capget, &header, data) < 0)
                return -errno;
        return 0;
}

static uint64_t mask(uint32_t low, uint32_t high) {
        return (uint64_t) high << 32 | low;
}

int caps_get(uint64_t *ret_effective, uint64_t *ret_permitted) {
        struct __user_cap_data_struct data[2] = {};
        int r;

        r = get_sets(data);
        if (r < 0)
                return r;
        *ret_effective = mask(data[0].effective, data[1].effective);
        *ret_permitted = mask(data[0].permitted, data[1].permitted);
        return 0;
}

int caps_drop(void) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2] = {};
        uint64_t keep;
        bool can_setpcap;
        int r;

        r = get_sets(data);
        if (r < 0)
                return r;
        keep = mask(data[0].permitted, data[1].permitted) & CAPS_KEEP;
        can_setpcap = mask(data[0].effective, data[1].effective) & (UINT64_C(1) << CAP_SETPCAP);

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        /* The kernel may know more capabilities than this header: PR_CAPBSET_READ says
         * EINVAL past the last one. */
        for (unsigned long cap = 0; cap < 64; cap++) {
                r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
                if (r < 0) {
                        if (errno == EINVAL)
                                break;
                        return -errno;
                }
                if (r == 0 || (CAPS_KEEP & (UINT64_C(1) << cap)))
                        continue;
                if (!can_setpcap)
                        continue; /* the service manager's bounding set stays as it is */
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                        return -errno;
        }

        data[0].effective = data[0].permitted = (uint32_t) keep;
        data[1].effective = data[1].permitted = (uint32_t) (keep >> 32);
        data[0].inheritable = data[1].inheritable = 0;
        if (syscall(SYS_capset, &header, data) < 0)
                return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}
