/* SPDX-License-Identifier: MIT */
/* The daemon's error names -> NetworkManager's failure reasons (see failure.h). */
#include <string.h>

#include "failure.h"
#include "shadowmesh/bus-api.h"

static const struct {
        const char *error_name;
        struct failure failure;
} failures[] = {
        /* Connect's timeout passed without a handshake. A handshake that got no answer is the
         * login of this VPN failing: the handshake is its only authentication, and a wrong key
         * looks exactly like silence (the peer drops what it cannot authenticate, and says
         * nothing), so it cannot fail faster than the timeout, nor tell a wrong key from a wrong
         * address or a blocked port; the hint says all three. */
        {BUS_ERROR_HANDSHAKE_TIMEOUT,
         {NM_VPN_PLUGIN_FAILURE_LOGIN_FAILED,
          "no answer from the peer: wrong address, blocked UDP port or a different key"}},
        /* The service checked the address's form before it started the daemon, so what the
         * daemon still refuses is in practice a host name that does not resolve. */
        {BUS_ERROR_INVALID_PEER,
         {NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED,
          "the peer's host name does not resolve or its address is refused: check vpn.data "
          "'peer' and the DNS servers"}},
};

static const struct failure other = {
        NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED,
        "the tunnel could not be set up",
};

const struct failure *failure_for_error(const char *error_name) {
        for (size_t k = 0; error_name && k < G_N_ELEMENTS(failures); k++)
                if (strcmp(error_name, failures[k].error_name) == 0)
                        return &failures[k].failure;
        return &other;
}

const char *failure_reason_name(NMVpnPluginFailure reason) {
        switch (reason) {
        case NM_VPN_PLUGIN_FAILURE_LOGIN_FAILED:
                return "login-failed";
        case NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG:
                return "bad-ip-config";
        default:
                return "connect-failed";
        }
}
