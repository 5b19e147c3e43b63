/* SPDX-License-Identifier: MIT */
/* RFC 6479 anti-replay window without bit shifting: COUNTER_BITS_TOTAL (8192) bits in words of
 * COUNTER_REDUNDANT_BITS, of which COUNTER_WINDOW_SIZE are usable. Pure; one writer. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "messages.h"

struct replay_window {
        uint64_t counter; /* highest counter accepted + 1 (0: none yet) */
        uint64_t backtrack[COUNTER_BITS_TOTAL / 64];
};

void replay_init(struct replay_window *w);
/* Accept (true) and record counter, or reject (false) a replay, a counter too old for the
 * window, or one >= reject_after. Call only after the packet authenticated. */
bool replay_validate(struct replay_window *w, uint64_t counter, uint64_t reject_after);
