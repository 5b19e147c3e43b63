/* SPDX-License-Identifier: MIT */
/* The connection state model (state.c): every row of the written transition table
 * (dbus/org.shadowmesh1.Tunnel.txt, shadowmeshctl(1)) as an expected (state, event, next)
 * triple, every pair not in it leaving the state alone, no pair twice, the names the APIs
 * report, which states accept the peer, and the instance's state from its peers'. The
 * documents' tables are checked against the same rows. */
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "tests.h"
#include "util.h"

#define W TUNNEL_WAITING
#define CI TUNNEL_CONNECTING
#define C TUNNEL_CONNECTED
#define R TUNNEL_RECONNECTING
#define D TUNNEL_DISCONNECTED
#define F TUNNEL_FAILED

/* The table as the documents write it, row by row. */
static const struct {
        enum tunnel_state state;
        const char *event;
        enum tunnel_state next;
} expected[] = {
        { W, "connect", CI },     { W, "handshake", C },
        { CI, "handshake", C },   { CI, "gave-up", F },       { CI, "disconnect", D },
        { C, "lost", R },         { C, "peer-closed", W },    { C, "disconnect", D },
        { R, "handshake", C },    { R, "peer-closed", W },    { R, "gave-up", F },
        { R, "disconnect", D },   { D, "connect", CI },       { F, "connect", CI },
        { F, "handshake", C },    { F, "retry", R },          { F, "disconnect", D },
};

static int event_of(const char *name) {
        for (int e = 0; e < _TUNNEL_EVENT_MAX; e++)
                if (strcmp(tunnel_event_to_string((enum tunnel_event) e), name) == 0)
                        return e;
        return -1;
}

static void test_rows(void) {
        CHECK_EQ_INT(tunnel_transitions_len, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                int e = event_of(expected[i].event);
                bool changed = false;

                CHECKF(e >= 0, "row %zu: event %s", i, expected[i].event);
                if (e < 0)
                        continue;
                CHECKF(tunnel_state_next(expected[i].state, (enum tunnel_event) e, &changed) ==
                                       expected[i].next && changed,
                       "row %zu: %s --%s--> %s", i, tunnel_state_to_string(expected[i].state),
                       expected[i].event, tunnel_state_to_string(expected[i].next));
        }
}

/* Every (state, event) pair: a row, at most one, or no change at all. */
static void test_pairs(void) {
        unsigned rows = 0;

        for (int s = 0; s < _TUNNEL_STATE_MAX; s++)
                for (int e = 0; e < _TUNNEL_EVENT_MAX; e++) {
                        unsigned n = 0;
                        int want = -1;
                        bool changed = true;

                        for (size_t i = 0; i < tunnel_transitions_len; i++)
                                n += tunnel_transitions[i].state == (enum tunnel_state) s &&
                                     tunnel_transitions[i].event == (enum tunnel_event) e;
                        CHECKF(n <= 1, "%s/%s appears %u times",
                               tunnel_state_to_string((enum tunnel_state) s),
                               tunnel_event_to_string((enum tunnel_event) e), n);
                        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                                if (expected[i].state == (enum tunnel_state) s &&
                                    event_of(expected[i].event) == e)
                                        want = (int) expected[i].next;
                        enum tunnel_state next = tunnel_state_next((enum tunnel_state) s,
                                                                   (enum tunnel_event) e,
                                                                   &changed);
                        if (want < 0) {
                                CHECKF(next == (enum tunnel_state) s && !changed,
                                       "%s --%s--> must not change the state",
                                       tunnel_state_to_string((enum tunnel_state) s),
                                       tunnel_event_to_string((enum tunnel_event) e));
                        } else {
                                CHECK(changed);
                                rows++;
                        }
                }
        CHECK_EQ_INT(rows, ELEMENTSOF(expected));
        /* NULL for ret_changed is allowed. */
        CHECK_EQ_INT(tunnel_state_next(W, TUNNEL_EVENT_CONNECT, NULL), CI);
}

/* The promises the documents make, stated once more as properties of the table. */
static void test_promises(void) {
        /* Disconnect from anywhere but disconnected and waiting (there is nothing to
         * disconnect: the call fails with NotConnected) ends in disconnected; only Connect
         * leaves it. */
        for (int s = 0; s < _TUNNEL_STATE_MAX; s++) {
                if (s == D || s == W)
                        continue;
                CHECK_EQ_INT(tunnel_state_next((enum tunnel_state) s, TUNNEL_EVENT_DISCONNECT,
                                               NULL),
                             D);
        }
        for (int e = 0; e < _TUNNEL_EVENT_MAX; e++)
                if (e != TUNNEL_EVENT_CONNECT)
                        CHECK_EQ_INT(tunnel_state_next(D, (enum tunnel_event) e, NULL), D);
        CHECK_EQ_INT(tunnel_state_next(W, TUNNEL_EVENT_DISCONNECT, NULL), W);
        /* The waiting side goes back to waiting when its peer closes. */
        CHECK_EQ_INT(tunnel_state_next(C, TUNNEL_EVENT_PEER_CLOSED, NULL), W);
        /* Only a handshake makes connected. */
        for (size_t i = 0; i < tunnel_transitions_len; i++)
                if (tunnel_transitions[i].next == C)
                        CHECK_EQ_INT(tunnel_transitions[i].event, TUNNEL_EVENT_HANDSHAKE);
        /* Only giving up makes failed. */
        for (size_t i = 0; i < tunnel_transitions_len; i++)
                if (tunnel_transitions[i].next == F)
                        CHECK_EQ_INT(tunnel_transitions[i].event, TUNNEL_EVENT_GAVE_UP);
}

static void test_names(void) {
        static const char *const names[] = { "waiting",      "connecting",   "connected",
                                             "reconnecting", "disconnected", "failed" };

        CHECK_EQ_INT(ELEMENTSOF(names), _TUNNEL_STATE_MAX);
        for (int s = 0; s < _TUNNEL_STATE_MAX; s++)
                CHECKF(strcmp(tunnel_state_to_string((enum tunnel_state) s), names[s]) == 0,
                       "state %d is %s", s, tunnel_state_to_string((enum tunnel_state) s));
        CHECK(strcmp(tunnel_state_to_string(_TUNNEL_STATE_MAX), "unknown") == 0);
        CHECK(strcmp(tunnel_event_to_string(_TUNNEL_EVENT_MAX), "unknown") == 0);
        for (int s = 0; s < _TUNNEL_STATE_MAX; s++)
                CHECK_EQ_INT(tunnel_state_accepts_peer((enum tunnel_state) s), s != D);
}

static void test_instance(void) {
        enum tunnel_state v[4];

        CHECK_EQ_INT(tunnel_state_of_instance(NULL, 0), W);
        v[0] = D;
        CHECK_EQ_INT(tunnel_state_of_instance(v, 1), D);
        v[1] = F;
        CHECK_EQ_INT(tunnel_state_of_instance(v, 2), F);
        v[2] = W;
        CHECK_EQ_INT(tunnel_state_of_instance(v, 3), F);
        v[3] = R;
        CHECK_EQ_INT(tunnel_state_of_instance(v, 4), R);
        v[0] = C;
        CHECK_EQ_INT(tunnel_state_of_instance(v, 4), C);
        v[0] = CI;
        CHECK_EQ_INT(tunnel_state_of_instance(v, 4), R);
        /* One peer: the instance says what the peer says. */
        for (int s = 0; s < _TUNNEL_STATE_MAX; s++) {
                enum tunnel_state one = (enum tunnel_state) s;
                CHECK_EQ_INT(tunnel_state_of_instance(&one, 1), s);
        }
}

/* Each row appears in the documents' tables: "state  event  next" on one line (whitespace
 * and roff escapes aside). */
static bool doc_has_row(const char *text, const char *state, const char *event,
                        const char *next) {
        char want[128];
        snprintf(want, sizeof(want), "%s %s %s", state, event, next);
        /* Collapse runs of blanks and drop roff's "\-" and ".TS" noise per line. */
        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t) (end - line) : strlen(line);
                char buf[256];
                size_t k = 0;
                bool blank = true;

                for (size_t i = 0; i < n && k + 1 < sizeof(buf); i++) {
                        char ch = line[i];
                        if (ch == '\\' && i + 1 < n && line[i + 1] == '-') {
                                buf[k++] = '-';
                                i++;
                                blank = false;
                                continue;
                        }
                        if (ch == ' ' || ch == '\t' || ch == '|') {
                                if (!blank)
                                        buf[k++] = ' ';
                                blank = true;
                                continue;
                        }
                        buf[k++] = ch;
                        blank = false;
                }
                while (k > 0 && buf[k - 1] == ' ')
                        k--;
                buf[k] = 0;
                if (strcmp(buf, want) == 0)
                        return true;
                line = end ? end + 1 : NULL;
        }
        return false;
}

static void test_documents(void) {
        static const char *const docs[] = { "dbus/org.shadowmesh1.Tunnel.txt",
                                            "man/shadowmeshctl.1",
                                            "man/org.shadowmesh1.Tunnel.5" };
        const char *root = getenv("SHADOWMESH_SOURCE_ROOT");

        if (!root)
                return;
        for (size_t d = 0; d < ELEMENTSOF(docs); d++) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", root, docs[d]);
                _cleanup_free_ char *text = test_read_file(path, NULL);
                for (size_t i = 0; i < tunnel_transitions_len; i++) {
                        const char *s = tunnel_state_to_string(tunnel_transitions[i].state);
                        const char *e = tunnel_event_to_string(tunnel_transitions[i].event);
                        const char *n = tunnel_state_to_string(tunnel_transitions[i].next);
                        CHECKF(doc_has_row(text, s, e, n), "%s lacks the row \"%s %s %s\"",
                               docs[d], s, e, n);
                }
        }
}

int main(void) {
        test_rows();
        test_pairs();
        test_promises();
        test_names();
        test_instance();
        test_documents();
        return test_summary();
}
