/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus API's names and limits, shared by the daemon (src/bus.c), shadowmeshctl and the
 * NetworkManager plugin. Documented in dbus/org.shadowmesh1.Tunnel.txt and
 * dbus/org.shadowmesh1.Peer.txt.
 */
#pragma once

#define BUS_NAME_PREFIX "org.shadowmesh1.Instance."
#define BUS_PATH_ROOT "/org/shadowmesh1"
#define BUS_PATH_PREFIX "/org/shadowmesh1/instance"
#define BUS_INTERFACE "org.shadowmesh1.Tunnel"
/* Each peer of an instance: <instance path>/peer/<id> (dbus/org.shadowmesh1.Peer.txt). */
#define BUS_PEER_INTERFACE "org.shadowmesh1.Peer"
#define BUS_PEER_PATH_ELEMENT "peer"
#define BUS_ERROR_PREFIX "org.shadowmesh1.Error."

/* The API's errors (each with a human message), as dbus/org.shadowmesh1.Tunnel.txt lists them. */
#define BUS_ERROR_INVALID_PEER BUS_ERROR_PREFIX "InvalidPeer"
#define BUS_ERROR_INVALID_ARGUMENTS BUS_ERROR_PREFIX "InvalidArguments"
#define BUS_ERROR_ALREADY_CONNECTED BUS_ERROR_PREFIX "AlreadyConnected"
#define BUS_ERROR_NOT_CONNECTED BUS_ERROR_PREFIX "NotConnected"
#define BUS_ERROR_HANDSHAKE_TIMEOUT BUS_ERROR_PREFIX "HandshakeTimeout"
#define BUS_ERROR_RELAY_UNAVAILABLE BUS_ERROR_PREFIX "RelayUnavailable"
#define BUS_ERROR_CANCELLED BUS_ERROR_PREFIX "Cancelled"
#define BUS_ERROR_IN_PROGRESS BUS_ERROR_PREFIX "InProgress"
#define BUS_ERROR_NO_STUN_SERVER BUS_ERROR_PREFIX "NoStunServer"
#define BUS_ERROR_PERMISSION_DENIED BUS_ERROR_PREFIX "PermissionDenied"
#define BUS_ERROR_RELOAD_REFUSED BUS_ERROR_PREFIX "ReloadRefused"
#define BUS_ERROR_INVALID_CONFIG BUS_ERROR_PREFIX "InvalidConfig"

/* Connect's timeout_sec option: the default when absent, and the largest accepted. */
#define CONNECT_TIMEOUT_DEFAULT_SEC 30
#define CONNECT_TIMEOUT_MAX_SEC 3600
