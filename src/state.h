/* SPDX-License-Identifier: MIT */
/*
 * The connection state model, pure: one transition table (state, event) -> next state, the
 * names the APIs report, and how an instance's state follows from its peers' states. Written
 * out in dbus/org.shadowmesh1.Tunnel.txt and shadowmeshctl(1); tests/unit/test-state.c checks
 * every row.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum tunnel_state {
        TUNNEL_WAITING,      /* no session; accepts the peer's handshake */
        TUNNEL_CONNECTING,   /* handshaking toward an address (Connect, peer.address, relay) */
        TUNNEL_CONNECTED,    /* authenticated traffic within KEEPALIVE_TIMEOUT + REKEY_TIMEOUT */
        TUNNEL_RECONNECTING, /* was connected; the session stopped working; retrying */
        TUNNEL_DISCONNECTED, /* Disconnect was called: refuses the peer until Connect */
        TUNNEL_FAILED,       /* retries gave up (reason kept); accepts the peer; traffic retries */
        _TUNNEL_STATE_MAX,
};

enum tunnel_event {
        /* Connect through an API, peer.address at start-up, or the relay introduced the peer. */
        TUNNEL_EVENT_CONNECT,
        /* A handshake completed and the session carries data both ways. */
        TUNNEL_EVENT_HANDSHAKE,
        /* The session stopped working: nothing authenticated for KEEPALIVE_TIMEOUT +
         * REKEY_TIMEOUT, data unanswered, keys expired, or the peer closed and we hold an
         * address to reach it again. */
        TUNNEL_EVENT_LOST,
        /* The peer's closing message, and we have no address of our own for it (we waited for
         * it): back to waiting for it. */
        TUNNEL_EVENT_PEER_CLOSED,
        /* Handshake retries ran out (REKEY_ATTEMPT_TIME), a Connect timed out, or the peer's
         * name did not resolve. */
        TUNNEL_EVENT_GAVE_UP,
        /* Traffic for the peer needs a session while failed, and its address is known. */
        TUNNEL_EVENT_RETRY,
        /* Disconnect through an API. */
        TUNNEL_EVENT_DISCONNECT,
        _TUNNEL_EVENT_MAX,
};

struct tunnel_transition {
        enum tunnel_state state;
        enum tunnel_event event;
        enum tunnel_state next;
};

/* The table itself (for documentation tests): every row, n rows. */
extern const struct tunnel_transition tunnel_transitions[];
extern const size_t tunnel_transitions_len;

/* The state after event in state; a pair with no row leaves the state as it is (returns
 * state). ret_changed (may be NULL) says whether a row applied. */
enum tunnel_state tunnel_state_next(enum tunnel_state state, enum tunnel_event event,
                                    bool *ret_changed);

/* An instance's state from its peers': the most hopeful one, in the order connected,
 * reconnecting, connecting, failed, waiting, disconnected. No peers: waiting. */
enum tunnel_state tunnel_state_of_instance(const enum tunnel_state *peer_states, size_t n);

/* "waiting", "connecting", ... as D-Bus, shadowmeshctl and NetworkManager see them. */
const char *tunnel_state_to_string(enum tunnel_state s);
const char *tunnel_event_to_string(enum tunnel_event e);
/* Does this state accept a handshake from the peer? Everything but disconnected. */
bool tunnel_state_accepts_peer(enum tunnel_state s);
