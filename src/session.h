/* SPDX-License-Identifier: MIT */
/*
 * A session key pair after a handshake and the data messages it seals and opens. Pure: no
 * sockets, the caller gives the clock. The send counter is atomic so the control loop
 * (keepalives) and the data thread may both send; the replay window has one writer, the
 * receive thread.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "messages.h"
#include "replay.h"

struct keypair {
        uint8_t send_key[NOISE_SYMMETRIC_KEY_LEN];
        uint8_t recv_key[NOISE_SYMMETRIC_KEY_LEN];
        _Atomic uint64_t send_counter;
        struct replay_window replay;
        uint32_t local_index;  /* what the peer puts in key_idx of data sent to us */
        uint32_t remote_index; /* what we put in key_idx of data sent to the peer */
        uint64_t birth_ns;
        bool initiator;
        _Atomic bool valid;
};

/* Fill kp from split keys; wipes nothing of the caller's. */
void keypair_init(struct keypair *kp, const uint8_t send_key[NOISE_SYMMETRIC_KEY_LEN],
                  const uint8_t recv_key[NOISE_SYMMETRIC_KEY_LEN], uint32_t local_index,
                  uint32_t remote_index, bool initiator, uint64_t birth_ns);
/* sodium_memzero the keys and mark invalid. */
void keypair_wipe(struct keypair *kp);

/* Size of the data message that carries a frame of frame_len bytes (padded to 16). */
size_t session_message_len(size_t frame_len);

/*
 * Seal one frame (frame_len may be 0: a keepalive) into out as a data message. out and frame
 * must not overlap. Returns the message length, -ENOBUFS if out_max is too small, -ESTALE when
 * the key pair is invalid, too old (REJECT_AFTER_TIME) or out of counters (REJECT_AFTER_MESSAGES).
 */
ssize_t session_encrypt(struct keypair *kp, const uint8_t *frame, size_t frame_len, uint8_t *out,
                        size_t out_max, uint64_t now);

/*
 * Open a data message in place. On success *ret_frame points into msg at the plaintext,
 * *ret_len is its padded length (0 for a keepalive) and *ret_counter the counter. Errors:
 * -EBADMSG (too short, bad tag), -EALREADY (replayed or outside the window; checked after the
 * tag, so an attacker cannot move the window), -ESTALE (key pair invalid or too old).
 */
int session_decrypt(struct keypair *kp, uint8_t *msg, size_t len, uint64_t now,
                    uint8_t **ret_frame, size_t *ret_len, uint64_t *ret_counter);

/*
 * session_decrypt in two steps, for opening on several threads (datapath.c, "Crypto workers"):
 * session_open checks the header and the tag and decrypts in place (the same errors but
 * -EALREADY) without touching the replay window, so any thread may call it; session_accept
 * then records the counter in the window (false: replayed or outside it), on the window's one
 * writer, and only for a message session_open opened. On a failed tag the message's payload is
 * left zeroed (libsodium), so it cannot be opened again.
 */
int session_open(struct keypair *kp, uint8_t *msg, size_t len, uint64_t now, uint8_t **ret_frame,
                 size_t *ret_len, uint64_t *ret_counter);
bool session_accept(struct keypair *kp, uint64_t counter);

/* The same for session-bound control messages (path probes): message type `type` (not
 * MESSAGE_DATA), no padding, and the 4-byte header authenticated as associated data so that
 * neither kind can be turned into the other. They share the key pair's counter and window. */
ssize_t session_encrypt_control(struct keypair *kp, uint8_t type, const uint8_t *plain,
                                size_t plain_len, uint8_t *out, size_t out_max, uint64_t now);
int session_decrypt_control(struct keypair *kp, uint8_t type, uint8_t *msg, size_t len,
                            uint64_t now, uint8_t **ret_plain, size_t *ret_len,
                            uint64_t *ret_counter);
