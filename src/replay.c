/* SPDX-License-Identifier: MIT */
/*
 * RFC 6479 anti-replay window, the variant without bit shifting.
 *
 * The bitmap is a ring of COUNTER_BITS_TOTAL / 64 words. A counter c maps to bit (c % 64) of
 * word ((c / 64) % words). When a counter beyond the highest seen arrives, the window does not
 * shift: the words between the old top word and the new one are cleared, and the top moves.
 * One word is always being reused for the newest counters, so only COUNTER_WINDOW_SIZE =
 * COUNTER_BITS_TOTAL - 64 bits of history are guaranteed (RFC 6479, section 2).
 *
 * w->counter holds the highest accepted counter plus one, so that 0 means "nothing accepted" and
 * the window arithmetic below works on counter + 1 throughout.
 */
#include <string.h>

#include "replay.h"

enum {
        WORD_BITS = 64,
        WORD_SHIFT = 6, /* log2(WORD_BITS) */
        WORDS = COUNTER_BITS_TOTAL / WORD_BITS,
};

_Static_assert(COUNTER_REDUNDANT_BITS == WORD_BITS, "one redundant word");
_Static_assert((WORDS & (WORDS - 1)) == 0, "the ring index is a mask");
_Static_assert(sizeof(((struct replay_window *) 0)->backtrack) * 8 == COUNTER_BITS_TOTAL, "bits");

void replay_init(struct replay_window *w) {
        memset(w, 0, sizeof(*w));
}

bool replay_validate(struct replay_window *w, uint64_t counter, uint64_t reject_after) {
        uint64_t c, index, bit;

        if (counter >= reject_after)
                return false;
        /* counter < reject_after <= UINT64_MAX, so this cannot wrap. */
        c = counter + 1;

        /* Older than the window (written so that it cannot overflow). */
        if (w->counter > COUNTER_WINDOW_SIZE && c < w->counter - COUNTER_WINDOW_SIZE)
                return false;

        index = c >> WORD_SHIFT;
        if (c > w->counter) {
                /* A new top: clear every word between the old top word (exclusive) and the new
                 * one (inclusive), at most the whole ring. */
                uint64_t current = w->counter >> WORD_SHIFT;
                uint64_t n = MIN(index - current, (uint64_t) WORDS);

                for (uint64_t i = 1; i <= n; i++)
                        w->backtrack[(current + i) & (WORDS - 1)] = 0;
                w->counter = c;
        }

        index &= WORDS - 1;
        bit = UINT64_C(1) << (c & (WORD_BITS - 1));
        if (w->backtrack[index] & bit)
                return false;
        w->backtrack[index] |= bit;
        return true;
}
