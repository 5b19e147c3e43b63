/* SPDX-License-Identifier: MIT */
/*
 * Open addressing with linear probing over slots of two atomic words (see mactable.h for the
 * rules and the threading). A chain ends at an empty slot. An aged or forgotten entry is reused
 * in place by the next address whose chain passes it; at the cap, dead entries at the end of a
 * chain (just before an empty slot) are emptied, which keeps every chain unbroken: no address
 * has an empty slot between its home slot and its own. A reader racing that may miss an entry
 * once (the frame is flooded: correct, only less efficient), and never gets a wrong port.
 *
 * Memory order: the writer marks a slot busy, writes the value, then publishes the key with
 * release; a reader loads the key with acquire, then the value, then the key again, and
 * believes the value only if the key did not change in between. So a reader never pairs an
 * address with another address's port.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>

#include "mactable.h"

#define SLOT_OCCUPIED (UINT64_C(1) << 63)
#define SLOT_BUSY (UINT64_C(1) << 62)
#define MAC_BITS UINT64_C(0xffffffffffff)

static uint64_t mac_pack(const uint8_t mac[6]) {
        return (uint64_t) mac[0] << 40 | (uint64_t) mac[1] << 32 | (uint64_t) mac[2] << 24 |
               (uint64_t) mac[3] << 16 | (uint64_t) mac[4] << 8 | (uint64_t) mac[5];
}

/* Multiply-xorshift over the keyed address: cheap (a lookup must stay well under 50 ns), and a
 * peer that does not know the seed cannot aim many addresses at one chain. */
static size_t slot_of(const struct mactable *t, uint64_t packed) {
        uint64_t h = (packed ^ t->seed) * UINT64_C(0x9e3779b97f4a7c15);
        h ^= h >> 29;
        h *= UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 32;
        return (size_t) h & t->mask;
}

static uint64_t value_make(uint32_t port, uint32_t now_sec) {
        return (uint64_t) port << 32 | now_sec;
}

static bool value_live(uint64_t v, uint32_t now_sec) {
        /* Unsigned difference: correct across the 32-bit seconds wrap. */
        return (uint32_t) (now_sec - (uint32_t) v) < MACTABLE_AGEING_SEC &&
               (uint32_t) (v >> 32) != MACTABLE_PORT_NONE;
}

int mactable_init(struct mactable *t, size_t capacity) {
        size_t n = 1;

        if (capacity == 0 || capacity > MACTABLE_MAX_ENTRIES)
                return -EINVAL;
        /* At most half full: short chains. */
        while (n < capacity * 2)
                n <<= 1;
        *t = (struct mactable){};
        t->slots = calloc(n, sizeof(*t->slots));
        if (!t->slots)
                return -ENOMEM;
        t->mask = n - 1;
        t->capacity = capacity;
        randombytes_buf(&t->seed, sizeof(t->seed));
        t->seed &= MAC_BITS;
        return 0;
}

void mactable_done(struct mactable *t) {
        free(t->slots);
        *t = (struct mactable){};
}

static void slot_publish(struct mactable_slot *s, uint64_t key, uint64_t value) {
        atomic_store_explicit(&s->key, SLOT_BUSY, memory_order_relaxed);
        /* The busy mark must be visible before the value changes: a reader that then sees
         * the new value also sees the mark (or the new key) on its second key load. */
        atomic_thread_fence(memory_order_seq_cst);
        atomic_store_explicit(&s->value, value, memory_order_relaxed);
        atomic_store_explicit(&s->key, key, memory_order_release);
}

static bool slot_dead(const struct mactable_slot *s, uint32_t now_sec) {
        uint64_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
        return (key & SLOT_OCCUPIED) &&
               !value_live(atomic_load_explicit(&s->value, memory_order_relaxed), now_sec);
}

/* Writer only. Empty dead entries that end a chain, walking backwards from slot i, so their
 * slots count against the cap no more. */
static void trim_back(struct mactable *t, size_t i, uint32_t now_sec, unsigned budget) {
        for (; budget > 0; budget--, i = (i - 1) & t->mask) {
                struct mactable_slot *s = &t->slots[i];
                if (atomic_load_explicit(&t->slots[(i + 1) & t->mask].key, memory_order_relaxed) != 0 ||
                    !slot_dead(s, now_sec))
                        return;
                atomic_store_explicit(&s->key, 0, memory_order_release);
                t->used--;
        }
}

/* Writer only, at the cap: a bounded step of a sweep over the whole table (backwards, so a
 * run of dead entries before an empty slot goes in one pass). */
static void sweep(struct mactable *t, uint32_t now_sec, unsigned budget) {
        for (; budget > 0; budget--) {
                size_t i = t->sweep_cursor;
                t->sweep_cursor = (i - 1) & t->mask;
                trim_back(t, i, now_sec, 1);
        }
}

static int learn_once(struct mactable *t, uint64_t packed, uint32_t port, uint32_t now_sec) {
        uint64_t want = SLOT_OCCUPIED | packed;
        struct mactable_slot *reuse = NULL;
        size_t i = slot_of(t, packed);

        for (unsigned probe = 0; probe < MACTABLE_MAX_PROBES; probe++, i = (i + 1) & t->mask) {
                struct mactable_slot *s = &t->slots[i];
                /* The only writer: relaxed loads see our own stores. */
                uint64_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
                uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);

                if (key == want) {
                        uint32_t old = (uint32_t) (v >> 32);
                        if (old == port) {
                                /* Refresh: the same port, a new time; key unchanged. */
                                if ((uint32_t) v != now_sec)
                                        atomic_store_explicit(&s->value,
                                                              value_make(port, now_sec),
                                                              memory_order_relaxed);
                                return value_live(v, now_sec) ? 0 : 1;
                        }
                        atomic_store_explicit(&s->value, value_make(port, now_sec),
                                              memory_order_relaxed);
                        if (old == MACTABLE_PORT_NONE || !value_live(v, now_sec)) {
                                atomic_fetch_add_explicit(&t->stats.learned, 1,
                                                          memory_order_relaxed);
                                return 1;
                        }
                        atomic_fetch_add_explicit(&t->stats.moved, 1, memory_order_relaxed);
                        return 2;
                }
                if (key == 0) {
                        /* End of the chain: the address is not in the table. */
                        if (reuse) {
                                slot_publish(reuse, want, value_make(port, now_sec));
                        } else {
                                if (t->used >= t->capacity) {
                                        /* Dead entries ending this chain free room. */
                                        trim_back(t, (i - 1) & t->mask, now_sec,
                                                  MACTABLE_MAX_PROBES);
                                        return -EAGAIN;
                                }
                                slot_publish(s, want, value_make(port, now_sec));
                                t->used++;
                        }
                        atomic_fetch_add_explicit(&t->stats.learned, 1, memory_order_relaxed);
                        return 1;
                }
                if (!reuse && !value_live(v, now_sec))
                        reuse = s;
        }
        if (reuse) {
                /* A full probe window without the address: take the aged slot in it. */
                slot_publish(reuse, want, value_make(port, now_sec));
                atomic_fetch_add_explicit(&t->stats.learned, 1, memory_order_relaxed);
                return 1;
        }
        return -ENOSPC;
}

int mactable_learn(struct mactable *t, const uint8_t mac[6], uint32_t port, uint32_t now_sec) {
        uint64_t packed = mac_pack(mac);
        int r;

        if (mac_is_group(mac) || packed == 0 || port == MACTABLE_PORT_NONE)
                return 0;
        r = learn_once(t, packed, port, now_sec);
        if (r == -EAGAIN) {
                /* At the cap: reclaim what ageing left behind, a bounded amount per frame. */
                sweep(t, now_sec, MACTABLE_SWEEP_STEP);
                r = t->used < t->capacity ? learn_once(t, packed, port, now_sec) : -ENOSPC;
        }
        if (r == -EAGAIN || r == -ENOSPC) {
                atomic_fetch_add_explicit(&t->stats.refused_full, 1, memory_order_relaxed);
                return -ENOSPC;
        }
        return r;
}

uint32_t mactable_lookup(const struct mactable *t, const uint8_t mac[6], uint32_t now_sec) {
        uint64_t packed = mac_pack(mac), want = SLOT_OCCUPIED | packed;
        size_t i = slot_of(t, packed);

        if (mac_is_group(mac))
                return MACTABLE_PORT_NONE;
        for (unsigned probe = 0; probe < MACTABLE_MAX_PROBES; probe++, i = (i + 1) & t->mask) {
                const struct mactable_slot *s = &t->slots[i];
                uint64_t key = atomic_load_explicit(&s->key, memory_order_acquire), v;

                if (key == 0)
                        return MACTABLE_PORT_NONE;
                if (key != want)
                        continue;
                v = atomic_load_explicit(&s->value, memory_order_relaxed);
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&s->key, memory_order_relaxed) != want)
                        return MACTABLE_PORT_NONE; /* rewritten under us: flood this once */
                return value_live(v, now_sec) ? (uint32_t) (v >> 32) : MACTABLE_PORT_NONE;
        }
        return MACTABLE_PORT_NONE;
}

size_t mactable_count_port(const struct mactable *t, uint32_t port, uint32_t now_sec) {
        size_t n = 0;

        for (size_t i = 0; i <= t->mask; i++) {
                uint64_t key = atomic_load_explicit(&t->slots[i].key, memory_order_acquire);
                uint64_t v = atomic_load_explicit(&t->slots[i].value, memory_order_relaxed);
                if ((key & SLOT_OCCUPIED) && (uint32_t) (v >> 32) == port && value_live(v, now_sec))
                        n++;
        }
        return n;
}

void mactable_forget_port(struct mactable *t, uint32_t port) {
        for (size_t i = 0; i <= t->mask; i++) {
                struct mactable_slot *s = &t->slots[i];
                uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
                if ((atomic_load_explicit(&s->key, memory_order_relaxed) & SLOT_OCCUPIED) &&
                    (uint32_t) (v >> 32) == port)
                        atomic_store_explicit(&s->value, value_make(MACTABLE_PORT_NONE, 0),
                                              memory_order_relaxed);
        }
}
