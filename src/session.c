/* SPDX-License-Identifier: MIT */
/*
 * Data messages (type 4): header || ChaCha20-Poly1305-IETF(frame padded to 16), as WireGuard's
 * transport messages. The nonce is 4 zero bytes || the 64-bit little-endian counter of the
 * header, so the counter is bound to the ciphertext without additional data; the type and
 * key_idx are not authenticated but are checked before the tag. Padding to 16 bytes hides the
 * exact frame length a little and costs at most 15 bytes.
 */
#include <limits.h>
#include <sodium.h>

#include "session.h"

_Static_assert(NOISE_SYMMETRIC_KEY_LEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "key");
_Static_assert(NOISE_AUTHTAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "nonce");

void keypair_init(struct keypair *kp, const uint8_t send_key[NOISE_SYMMETRIC_KEY_LEN],
                  const uint8_t recv_key[NOISE_SYMMETRIC_KEY_LEN], uint32_t local_index,
                  uint32_t remote_index, bool initiator, uint64_t birth_ns) {
        memcpy(kp->send_key, send_key, NOISE_SYMMETRIC_KEY_LEN);
        memcpy(kp->recv_key, recv_key, NOISE_SYMMETRIC_KEY_LEN);
        atomic_init(&kp->send_counter, 0);
        replay_init(&kp->replay);
        kp->local_index = local_index;
        kp->remote_index = remote_index;
        kp->birth_ns = birth_ns;
        kp->initiator = initiator;
        atomic_init(&kp->valid, true);
}

void keypair_wipe(struct keypair *kp) {
        atomic_store(&kp->valid, false);
        sodium_memzero(kp->send_key, sizeof(kp->send_key));
        sodium_memzero(kp->recv_key, sizeof(kp->recv_key));
}

size_t session_message_len(size_t frame_len) {
        return sizeof(struct message_data) + ALIGN_TO(frame_len, MESSAGE_PADDING_MULTIPLE) +
               NOISE_AUTHTAG_LEN;
}

/* Usable: marked valid and younger than REJECT_AFTER_TIME. A clock behind the birth (which a
 * monotonic clock never is) is not treated as expiry. */
static bool keypair_usable(const struct keypair *kp, uint64_t now) {
        if (!atomic_load(&kp->valid))
                return false;
        return !(now >= kp->birth_ns &&
                 now - kp->birth_ns >= (uint64_t) REJECT_AFTER_TIME * NSEC_PER_SEC);
}

static void make_nonce(uint8_t nonce[static 12], uint64_t counter) {
        memset(nonce, 0, 4);
        put_le64(nonce + 4, counter);
}

/* Seal plain into out as a message of type: header, key_idx, counter, ciphertext, tag. Data
 * messages are padded and have no associated data (so they match the protocol as WireGuard
 * defines it); every other type authenticates its 4-byte header as associated data, so that a
 * message cannot be retyped into another kind by changing its unauthenticated first byte. */
static ssize_t seal(struct keypair *kp, uint8_t type, const uint8_t *plain, size_t plain_len,
                    size_t padded, uint8_t *out, size_t out_max, uint64_t now) {
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
        size_t len = sizeof(struct message_data) + padded + NOISE_AUTHTAG_LEN;
        bool ad = type != MESSAGE_DATA;
        uint64_t counter;

        if (!keypair_usable(kp, now))
                return -ESTALE;
        if (len > out_max)
                return -ENOBUFS;

        /* Do not burn counters once exhausted (the load keeps fetch_add from ever wrapping);
         * two senders racing past the limit are caught by the check after fetch_add. */
        if (atomic_load(&kp->send_counter) >= REJECT_AFTER_MESSAGES)
                return -ESTALE;
        counter = atomic_fetch_add(&kp->send_counter, 1);
        if (counter >= REJECT_AFTER_MESSAGES)
                return -ESTALE;

        struct message_data *hdr = (struct message_data *) out;
        uint8_t *payload = out + sizeof(struct message_data);

        hdr->header.type = type;
        memset(hdr->header.reserved_zero, 0, sizeof(hdr->header.reserved_zero));
        put_le32(out + offsetof(struct message_data, key_idx), kp->remote_index);
        put_le64(out + offsetof(struct message_data, counter), counter);
        if (plain_len > 0)
                memcpy(payload, plain, plain_len);
        memset(payload + plain_len, 0, padded - plain_len);

        make_nonce(nonce, counter);
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                payload, payload + padded, NULL, payload, padded, ad ? out : NULL,
                ad ? sizeof(struct message_header) : 0, NULL, nonce, kp->send_key);
        return (ssize_t) len;
}

ssize_t session_encrypt(struct keypair *kp, const uint8_t *frame, size_t frame_len, uint8_t *out,
                        size_t out_max, uint64_t now) {
        /* The first test keeps the length sum from wrapping and the result fitting ssize_t. */
        if (frame_len > (size_t) SSIZE_MAX - 2 * MESSAGE_DATA_MIN_LEN)
                return -ENOBUFS;
        return seal(kp, MESSAGE_DATA, frame, frame_len,
                    ALIGN_TO(frame_len, MESSAGE_PADDING_MULTIPLE), out, out_max, now);
}

ssize_t session_encrypt_control(struct keypair *kp, uint8_t type, const uint8_t *plain,
                                size_t plain_len, uint8_t *out, size_t out_max, uint64_t now) {
        if (type == MESSAGE_DATA || plain_len > (size_t) SSIZE_MAX - 2 * MESSAGE_DATA_MIN_LEN)
                return -EINVAL;
        return seal(kp, type, plain, plain_len, plain_len, out, out_max, now);
}

/* The checks and the tag: the window is not touched (any thread may call this). */
static int open_message(struct keypair *kp, uint8_t type, uint8_t *msg, size_t len, uint64_t now,
                        uint8_t **ret_plain, size_t *ret_len, uint64_t *ret_counter) {
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
        bool ad = type != MESSAGE_DATA;
        uint8_t *payload;
        size_t plain_len;
        uint64_t counter;

        if (!msg || len < MESSAGE_DATA_MIN_LEN)
                return -EBADMSG;
        /* Type and key_idx are not covered by the tag of a data message: check them so that a
         * changed header byte is refused like a changed ciphertext byte. */
        if (get_le32(msg) != type ||
            get_le32(msg + offsetof(struct message_data, key_idx)) != kp->local_index)
                return -EBADMSG;
        if (!keypair_usable(kp, now))
                return -ESTALE;

        counter = get_le64(msg + offsetof(struct message_data, counter));
        payload = msg + sizeof(struct message_data);
        plain_len = len - MESSAGE_DATA_MIN_LEN;

        make_nonce(nonce, counter);
        if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                    payload, NULL, payload, plain_len, payload + plain_len, ad ? msg : NULL,
                    ad ? sizeof(struct message_header) : 0, nonce, kp->recv_key) != 0)
                return -EBADMSG;

        *ret_plain = payload;
        *ret_len = plain_len;
        *ret_counter = counter;
        return 0;
}

/* Open, then (only with the counter authenticated, so an attacker cannot move the window) the
 * replay window. */
static int open_accept(struct keypair *kp, uint8_t type, uint8_t *msg, size_t len, uint64_t now,
                       uint8_t **ret_plain, size_t *ret_len, uint64_t *ret_counter) {
        uint8_t *plain;
        size_t plain_len;
        uint64_t counter;
        int r = open_message(kp, type, msg, len, now, &plain, &plain_len, &counter);

        if (r < 0)
                return r;
        if (!session_accept(kp, counter))
                return -EALREADY;
        if (ret_plain)
                *ret_plain = plain;
        if (ret_len)
                *ret_len = plain_len;
        if (ret_counter)
                *ret_counter = counter;
        return 0;
}

int session_open(struct keypair *kp, uint8_t *msg, size_t len, uint64_t now, uint8_t **ret_frame,
                 size_t *ret_len, uint64_t *ret_counter) {
        return open_message(kp, MESSAGE_DATA, msg, len, now, ret_frame, ret_len, ret_counter);
}

bool session_accept(struct keypair *kp, uint64_t counter) {
        return replay_validate(&kp->replay, counter, REJECT_AFTER_MESSAGES);
}

int session_decrypt(struct keypair *kp, uint8_t *msg, size_t len, uint64_t now, uint8_t **ret_frame,
                    size_t *ret_len, uint64_t *ret_counter) {
        return open_accept(kp, MESSAGE_DATA, msg, len, now, ret_frame, ret_len, ret_counter);
}

int session_decrypt_control(struct keypair *kp, uint8_t type, uint8_t *msg, size_t len,
                            uint64_t now, uint8_t **ret_plain, size_t *ret_len,
                            uint64_t *ret_counter) {
        if (type == MESSAGE_DATA)
                return -EINVAL;
        return open_accept(kp, type, msg, len, now, ret_plain, ret_len, ret_counter);
}
