/* SPDX-License-Identifier: MIT */
#include "state.h"
#include "util.h"

/*
 * The one transition table. A (state, event) pair with no row is ignored: the state stays.
 * Keep dbus/org.shadowmesh1.Tunnel.txt and man/shadowmeshctl.1 in step (tests/unit/test-state.c
 * checks every row and that no pair appears twice).
 */
const struct tunnel_transition tunnel_transitions[] = {
        { TUNNEL_WAITING, TUNNEL_EVENT_CONNECT, TUNNEL_CONNECTING },
        { TUNNEL_WAITING, TUNNEL_EVENT_HANDSHAKE, TUNNEL_CONNECTED },

        { TUNNEL_CONNECTING, TUNNEL_EVENT_HANDSHAKE, TUNNEL_CONNECTED },
        { TUNNEL_CONNECTING, TUNNEL_EVENT_GAVE_UP, TUNNEL_FAILED },
        { TUNNEL_CONNECTING, TUNNEL_EVENT_DISCONNECT, TUNNEL_DISCONNECTED },

        { TUNNEL_CONNECTED, TUNNEL_EVENT_LOST, TUNNEL_RECONNECTING },
        { TUNNEL_CONNECTED, TUNNEL_EVENT_PEER_CLOSED, TUNNEL_WAITING },
        { TUNNEL_CONNECTED, TUNNEL_EVENT_DISCONNECT, TUNNEL_DISCONNECTED },

        { TUNNEL_RECONNECTING, TUNNEL_EVENT_HANDSHAKE, TUNNEL_CONNECTED },
        { TUNNEL_RECONNECTING, TUNNEL_EVENT_PEER_CLOSED, TUNNEL_WAITING },
        { TUNNEL_RECONNECTING, TUNNEL_EVENT_GAVE_UP, TUNNEL_FAILED },
        { TUNNEL_RECONNECTING, TUNNEL_EVENT_DISCONNECT, TUNNEL_DISCONNECTED },

        { TUNNEL_DISCONNECTED, TUNNEL_EVENT_CONNECT, TUNNEL_CONNECTING },

        { TUNNEL_FAILED, TUNNEL_EVENT_CONNECT, TUNNEL_CONNECTING },
        { TUNNEL_FAILED, TUNNEL_EVENT_HANDSHAKE, TUNNEL_CONNECTED },
        { TUNNEL_FAILED, TUNNEL_EVENT_RETRY, TUNNEL_RECONNECTING },
        { TUNNEL_FAILED, TUNNEL_EVENT_DISCONNECT, TUNNEL_DISCONNECTED },
};
const size_t tunnel_transitions_len = ELEMENTSOF(tunnel_transitions);

enum tunnel_state tunnel_state_next(enum tunnel_state state, enum tunnel_event event,
                                    bool *ret_changed) {
        for (size_t i = 0; i < ELEMENTSOF(tunnel_transitions); i++)
                if (tunnel_transitions[i].state == state && tunnel_transitions[i].event == event) {
                        if (ret_changed)
                                *ret_changed = true;
                        return tunnel_transitions[i].next;
                }
        if (ret_changed)
                *ret_changed = false;
        return state;
}

enum tunnel_state tunnel_state_of_instance(const enum tunnel_state *peer_states, size_t n) {
        static const enum tunnel_state order[] = {
                TUNNEL_CONNECTED, TUNNEL_RECONNECTING, TUNNEL_CONNECTING,
                TUNNEL_FAILED,    TUNNEL_WAITING,      TUNNEL_DISCONNECTED,
        };

        for (size_t o = 0; o < ELEMENTSOF(order); o++)
                for (size_t i = 0; i < n; i++)
                        if (peer_states[i] == order[o])
                                return order[o];
        return TUNNEL_WAITING;
}

static const char *const state_names[_TUNNEL_STATE_MAX] = {
        [TUNNEL_WAITING] = "waiting",
        [TUNNEL_CONNECTING] = "connecting",
        [TUNNEL_CONNECTED] = "connected",
        [TUNNEL_RECONNECTING] = "reconnecting",
        [TUNNEL_DISCONNECTED] = "disconnected",
        [TUNNEL_FAILED] = "failed",
};

static const char *const event_names[_TUNNEL_EVENT_MAX] = {
        [TUNNEL_EVENT_CONNECT] = "connect",
        [TUNNEL_EVENT_HANDSHAKE] = "handshake",
        [TUNNEL_EVENT_LOST] = "lost",
        [TUNNEL_EVENT_PEER_CLOSED] = "peer-closed",
        [TUNNEL_EVENT_GAVE_UP] = "gave-up",
        [TUNNEL_EVENT_RETRY] = "retry",
        [TUNNEL_EVENT_DISCONNECT] = "disconnect",
};

const char *tunnel_state_to_string(enum tunnel_state s) {
        return (size_t) s < ELEMENTSOF(state_names) ? state_names[s] : "unknown";
}

const char *tunnel_event_to_string(enum tunnel_event e) {
        return (size_t) e < ELEMENTSOF(event_names) ? event_names[e] : "unknown";
}

bool tunnel_state_accepts_peer(enum tunnel_state s) {
        return s != TUNNEL_DISCONNECTED;
}
