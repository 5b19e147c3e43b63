/* SPDX-License-Identifier: MIT */
/*
 * The keys of a ShadowMesh VPN connection in NetworkManager (setting "vpn", vpn-type
 * "shadowmesh"): one list shared by the service (nm-shadowmesh-service), the auth dialog and
 * the editor plugins, so the three always agree on names and defaults.
 *
 * All vpn.data values are strings. Secrets live in vpn.secrets; each secret has a matching
 * "<name>-flags" item in vpn.data (NMSettingSecretFlags as a decimal string: 0 = saved by
 * NetworkManager, 1 = owned by an agent, 2 = not saved).
 */
#pragma once

#include <stddef.h>

/* D-Bus name of the service (also the vpn.service-type of the connection). */
#define NM_DBUS_SERVICE_SHADOWMESH "org.freedesktop.NetworkManager.shadowmesh"
/* Short name used by nmcli ("vpn-type shadowmesh") and in the .name file. */
#define NM_SHADOWMESH_VPN_TYPE "shadowmesh"

/* --- vpn.data ------------------------------------------------------------------------------ */

/* Required. The peer, "host[:port]" (port NM_SHADOWMESH_DEFAULT_PORT when omitted; IPv6
 * literals as "[2001:db8::1]:9001"). */
#define NM_SHADOWMESH_KEY_PEER "peer"

/* Optional. Further peers of the same connection, each "host[:port][=PUBLICKEY]", separated by
 * spaces or ';' (never commas: nmcli separates vpn.data items with them), e.g.
 * "192.0.2.7 [2001:db8::9]:9002" or, in identity mode, where every entry needs the peer's
 * public key, "192.0.2.7=BASE64KEY; node-c.example:9002=BASE64KEY". Needs "peer". The service
 * Connects "peer" first (the connection is up when that one is), then each of these in order;
 * one that fails is logged and does not fail the connection. No node may be named twice (same
 * host and port, or in identity mode the same key). Written with one space between entries. */
#define NM_SHADOWMESH_KEY_PEERS "peers"
#define NM_SHADOWMESH_PEERS_SEPARATORS "; \t\n"

/* Optional. This node's addresses on the TAP, CIDR, separated by commas or spaces, at most one
 * IPv4 and one IPv6 address (NetworkManager takes one of each from a VPN service):
 * "10.0.0.2/24, fd00::2/64". NetworkManager (not the daemon) puts them on the TAP. Without it
 * the connection is pure Layer 2 (addresses can still come from ipv4.* / ipv6.*). */
#define NM_SHADOWMESH_KEY_LOCAL_IP "local-ip"

/* Optional. The TAP's MTU, 576..9000 as the daemon's network.mtu. */
#define NM_SHADOWMESH_KEY_MTU "mtu"
#define NM_SHADOWMESH_DEFAULT_MTU 1380

/* Optional. The TAP interface name, at most 15 characters. Default: "sm-" followed by the
 * first 8 characters of the connection UUID (nm_shadowmesh_default_tap_device()). */
#define NM_SHADOWMESH_KEY_TAP_DEVICE "tap-device"
#define NM_SHADOWMESH_TAP_DEVICE_PREFIX "sm-"

/* Optional. Local UDP port, 1..65535. */
#define NM_SHADOWMESH_KEY_LISTEN_PORT "listen-port"
#define NM_SHADOWMESH_DEFAULT_PORT 9001

/* Optional. NM_SHADOWMESH_MODE_SHARED_KEY (default) or NM_SHADOWMESH_MODE_IDENTITY. */
#define NM_SHADOWMESH_KEY_MODE "mode"
#define NM_SHADOWMESH_MODE_SHARED_KEY "shared-key"
#define NM_SHADOWMESH_MODE_IDENTITY "identity"

/* Identity mode: the peer's X25519 public key (base64, 44 characters). Required there, ignored
 * in shared-key mode. */
#define NM_SHADOWMESH_KEY_PEER_PUBLIC_KEY "peer-public-key"

/* Optional NAT traversal / relay settings (the daemon's nat.stun_server, relay.server and
 * relay.enabled). "relay" = "yes" needs "relay-server"; absent, naming a relay server enables it
 * (as in the daemon's file). */
#define NM_SHADOWMESH_KEY_RELAY_SERVER "relay-server" /* host[:port] */
#define NM_SHADOWMESH_KEY_STUN_SERVER "stun-server"   /* host[:port] */
#define NM_SHADOWMESH_KEY_RELAY "relay"               /* "yes" | "no" */

/* --- vpn.secrets (each with "<name>-flags" in vpn.data) ------------------------------------ */

/* The 32-byte shared key as 64 hex digits. Required in shared-key mode; optional in identity
 * mode, where it is the Noise psk (asked for by the auth dialog only when "key-flags" says an
 * agent keeps it or it is not saved). */
#define NM_SHADOWMESH_SECRET_KEY "key"
#define NM_SHADOWMESH_SECRET_KEY_FLAGS "key-flags"

/* Identity mode: this node's X25519 private key, base64 (output of `shadowmeshd genkey`). */
#define NM_SHADOWMESH_SECRET_PRIVATE_KEY "private-key"
#define NM_SHADOWMESH_SECRET_PRIVATE_KEY_FLAGS "private-key-flags"

/* Values of yes/no items. */
#define NM_SHADOWMESH_YES "yes"
#define NM_SHADOWMESH_NO "no"

/* The default TAP name of a connection: "sm-" + the first 8 characters of its UUID that are
 * letters or digits ("sm-3f2a9c1e"), so two profiles rarely collide. ret must hold at least
 * 16 bytes (IFNAMSIZ). Returns ret. */
static inline char *nm_shadowmesh_default_tap_device(const char *uuid, char *ret, size_t size) {
        size_t n = 0;
        const char *prefix = NM_SHADOWMESH_TAP_DEVICE_PREFIX;

        if (size < 16)
                return NULL;
        while (*prefix)
                ret[n++] = *prefix++;
        for (; uuid && *uuid && n < 11; uuid++)
                if ((*uuid >= '0' && *uuid <= '9') || (*uuid >= 'a' && *uuid <= 'z') ||
                    (*uuid >= 'A' && *uuid <= 'Z'))
                        ret[n++] = *uuid;
        ret[n] = '\0';
        return ret;
}
