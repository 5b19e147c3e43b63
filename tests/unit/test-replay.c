/* SPDX-License-Identifier: MIT */
/* The RFC 6479 window against the sequences of WireGuard's counter self-test
 * (vectors/replay/wireguard-rfc6479-counter-sequences.txt), then a few properties of our own. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "tests.h"

struct case_state {
        char name[64];
        struct replay_window w;
        unsigned lines, checks, failed;
};

static void case_end(struct case_state *cs) {
        if (cs->name[0])
                printf("case %s: %u lines, %u nonces checked, %u wrong\n", cs->name, cs->lines,
                       cs->checks, cs->failed);
}

static void check_nonce(struct case_state *cs, uint64_t nonce, bool expect, unsigned lineno) {
        bool got = replay_validate(&cs->w, nonce, REJECT_AFTER_MESSAGES);

        cs->checks++;
        if (got != expect)
                cs->failed++;
        CHECKF(got == expect, "case %s, line %u: nonce %" PRIu64 " -> %d, expected %d", cs->name,
               lineno, nonce, got, expect);
}

static bool parse_u64(const char *s, char **end, uint64_t *ret) {
        errno = 0;
        unsigned long long v = strtoull(s, end, 10);
        if (errno || *end == s)
                return false;
        *ret = v;
        return true;
}

static void test_vectors(void) {
        char *text = test_read_file(
                test_vector_path("replay/wireguard-rfc6479-counter-sequences.txt"), NULL);
        struct case_state *cs = calloc(1, sizeof(*cs));
        unsigned lineno = 0, cases = 0, total = 0;

        if (!cs)
                abort();
        /* strtok_r would skip empty lines and lose line numbers; walk by hand. */
        for (char *line = text, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                lineno++;

                char *hash = strchr(line, '#');
                if (strncmp(line, "## case", 7) == 0) {
                        case_end(cs);
                        total += cs->checks;
                        memset(cs, 0, sizeof(*cs));
                        replay_init(&cs->w);
                        sscanf(line + 7, " %63s", cs->name);
                        cases++;
                        continue;
                }
                if (hash)
                        *hash = 0; /* symbolic comments */
                char *p = line + strspn(line, " \t\r");
                if (!*p)
                        continue;
                CHECKF(cs->name[0], "line %u outside a case", lineno);
                cs->lines++;

                if (strncmp(p, "FOR ", 4) == 0) {
                        uint64_t a = 0, b = 0, e = 0;
                        long long step = 0;
                        char *end;
                        bool ok = parse_u64(p + 4, &end, &a) && strncmp(end, "..", 2) == 0 &&
                                  parse_u64(end + 2, &end, &b) &&
                                  sscanf(end, " step %lld expect %" SCNu64, &step, &e) == 2 &&
                                  step != 0 && e <= 1;
                        CHECKF(ok, "line %u: bad FOR: %s", lineno, p);
                        if (!ok)
                                continue;
                        /* Inclusive of both ends, in either direction, down to 0 included. */
                        for (uint64_t n = a;; n += (uint64_t) step) {
                                if ((step > 0 && n > b) || (step < 0 && n < b))
                                        break;
                                check_nonce(cs, n, e, lineno);
                                if (n == b || (step < 0 && n < (uint64_t) -step))
                                        break;
                        }
                        continue;
                }

                uint64_t nonce = 0, e = 0;
                char *end;
                bool ok = parse_u64(p, &end, &nonce) && sscanf(end, " %" SCNu64, &e) == 1 && e <= 1;
                CHECKF(ok, "line %u: bad line: %s", lineno, p);
                if (!ok)
                        continue;
                check_nonce(cs, nonce, e, lineno);
        }
        case_end(cs);
        total += cs->checks;
        printf("%u cases, %u nonces from the vectors\n", cases, total);
        /* Cases A to G: A has 34 single steps, D one range of 8129, the others a range of 8128
         * and two single steps. */
        CHECK_EQ_INT(cases, 7);
        CHECK_EQ_INT(total, 34 + 8129 + 5 * 8130);
        free(cs);
        free(text);
}

static void test_properties(void) {
        struct replay_window w;

        /* Counters far ahead: the whole ring is cleared at once and nothing old is accepted. */
        replay_init(&w);
        CHECK(replay_validate(&w, 5, REJECT_AFTER_MESSAGES));
        CHECK(replay_validate(&w, 1000000, REJECT_AFTER_MESSAGES));
        CHECK(!replay_validate(&w, 5, REJECT_AFTER_MESSAGES));
        CHECK(!replay_validate(&w, 1000000 - COUNTER_WINDOW_SIZE - 1, REJECT_AFTER_MESSAGES));
        CHECK(replay_validate(&w, 1000000 - COUNTER_WINDOW_SIZE, REJECT_AFTER_MESSAGES));
        CHECK(!replay_validate(&w, 1000000 - COUNTER_WINDOW_SIZE, REJECT_AFTER_MESSAGES));
        CHECK(replay_validate(&w, 999999, REJECT_AFTER_MESSAGES));
        CHECK(!replay_validate(&w, 1000000, REJECT_AFTER_MESSAGES));
        CHECK_EQ_INT(w.counter, 1000001);

        /* A smaller limit is honoured exactly. */
        replay_init(&w);
        CHECK(replay_validate(&w, 99, 100));
        CHECK(!replay_validate(&w, 100, 100));
        CHECK(!replay_validate(&w, UINT64_MAX, 100));
        /* And the largest limit does not overflow near the top of the counter space. */
        replay_init(&w);
        CHECK(replay_validate(&w, UINT64_MAX - 1, UINT64_MAX));
        CHECK(!replay_validate(&w, UINT64_MAX - 1, UINT64_MAX));
        CHECK(replay_validate(&w, UINT64_MAX - 2, UINT64_MAX));
        CHECK(!replay_validate(&w, UINT64_MAX, UINT64_MAX));
        CHECK(!replay_validate(&w, 0, UINT64_MAX));

        /* After a jump ahead, no bit of the old window survives in the ring: every counter
         * of the new window (visited in a scrambled order) is accepted once, then refused. */
        replay_init(&w);
        unsigned accepted = 0, refused = 0;
        for (uint64_t n = 0; n <= 9000; n++)
                accepted += replay_validate(&w, n, REJECT_AFTER_MESSAGES);
        CHECK_EQ_INT(accepted, 9001);
        CHECK(replay_validate(&w, 30000, REJECT_AFTER_MESSAGES));
        accepted = 0;
        for (uint64_t i = 0; i < COUNTER_WINDOW_SIZE; i++) {
                uint64_t n = 30000 - 1 - ((i * 4099) % COUNTER_WINDOW_SIZE);
                accepted += replay_validate(&w, n, REJECT_AFTER_MESSAGES);
        }
        for (uint64_t n = 30000 - COUNTER_WINDOW_SIZE - 100; n <= 30000; n++)
                refused += !replay_validate(&w, n, REJECT_AFTER_MESSAGES);
        CHECK_EQ_INT(accepted, COUNTER_WINDOW_SIZE);
        CHECK_EQ_INT(refused, COUNTER_WINDOW_SIZE + 101);
}

int main(void) {
        test_vectors();
        test_properties();
        return test_summary();
}
