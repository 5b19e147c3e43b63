/* SPDX-License-Identifier: MIT */
/* Handshake messages on the control loop: building and consuming initiations, responses and
 * cookie replies with noise.c, cookie.c and tai64n.c, and installing the key pairs they yield. */
#pragma once

#include "device.h"

/* Start (or retry) a handshake with the peer's endpoint. */
int handshake_send_initiation(struct device *d);
/* The rx thread saw data for a session we do not know from `from`, which earned an
 * initiation's worth of byte credit: initiate a handshake there (restart recovery; the rules
 * are at the function). */
void handshake_answer_unknown_session(struct device *d, const struct endpoint *from);
/* The closing message (CLOSE_COPIES of them) on the current session; -ENOKEY without one. */
int handshake_send_close(struct device *d);
/* Handle one queued handshake message. under_load: require mac2 (cookies). */
void handshake_process(struct device *d, const struct queued_handshake *q, bool under_load);
/* An empty data message on the current key pair (keepalive, and the initiator's confirmation). */
int handshake_send_keepalive(struct device *d);
/* The responder's next key pair carried data: make it current. */
void handshake_confirm_next(struct device *d);

/* Our own initiations' timestamps carry a per-run tag (see handshake.c): set it, and tell it. */
void handshake_mark_own_timestamp(const struct device *d, uint8_t ts[NOISE_TIMESTAMP_LEN]);
bool handshake_is_own_timestamp(const struct device *d, const uint8_t ts[NOISE_TIMESTAMP_LEN]);
