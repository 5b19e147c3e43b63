/* SPDX-License-Identifier: MIT */
/*
 * The service's failure reasons (nm-plugin/src/failure.c): each D-Bus error name the daemon
 * answers Connect with (include/shadowmesh/bus-api.h) gives its NetworkManager reason and hint,
 * whatever the error's text says; a failure without an error name, or with one the table does
 * not know, is CONNECT_FAILED. tests/nm/nm-reasons.sh shows the same reasons through a real
 * NetworkManager.
 */
#include <string.h>

#include "failure.h"
#include "shadowmesh/bus-api.h"
#include "tests.h"

static void test_by_name(void) {
        static const struct {
                const char *error_name;
                NMVpnPluginFailure reason;
                const char *hint; /* a part of it */
        } cases[] = {
                {BUS_ERROR_HANDSHAKE_TIMEOUT, NM_VPN_PLUGIN_FAILURE_LOGIN_FAILED,
                 "no answer from the peer: wrong address, blocked UDP port or a different key"},
                {BUS_ERROR_INVALID_PEER, NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED,
                 "check vpn.data 'peer' and the DNS servers"},
                {BUS_ERROR_RELAY_UNAVAILABLE, NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED,
                 "the tunnel could not be set up"},
                {BUS_ERROR_ALREADY_CONNECTED, NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED,
                 "the tunnel could not be set up"},
                {"org.freedesktop.DBus.Error.ServiceUnknown", NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED,
                 "the tunnel could not be set up"},
                /* A prefix of a known name is another name. */
                {BUS_ERROR_PREFIX "Handshake", NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED,
                 "the tunnel could not be set up"},
                {NULL, NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED, "the tunnel could not be set up"},
        };

        for (size_t k = 0; k < G_N_ELEMENTS(cases); k++) {
                const struct failure *f = failure_for_error(cases[k].error_name);

                CHECKF(f && f->reason == cases[k].reason, "%s: reason %d, want %d",
                       cases[k].error_name ? cases[k].error_name : "(no name)",
                       f ? (int) f->reason : -1, (int) cases[k].reason);
                CHECKF(f && f->hint && strstr(f->hint, cases[k].hint), "%s: hint '%s' has '%s'",
                       cases[k].error_name ? cases[k].error_name : "(no name)",
                       f && f->hint ? f->hint : "(none)", cases[k].hint);
        }
}

static void test_reason_names(void) {
        CHECK(strcmp(failure_reason_name(NM_VPN_PLUGIN_FAILURE_LOGIN_FAILED), "login-failed") == 0);
        CHECK(strcmp(failure_reason_name(NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG), "bad-ip-config") ==
              0);
        CHECK(strcmp(failure_reason_name(NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED), "connect-failed") ==
              0);
}

int main(void) {
        test_by_name();
        test_reason_names();
        return test_summary();
}
