/* SPDX-License-Identifier: MIT */
/* Data messages: round trips over every Ethernet frame length, a known answer computed apart
 * (Python's cryptography package, and libsodium called directly here), tampering, replay and
 * the window, key and index mismatches, the message and time limits, wiping, and counters
 * handed out exactly once to concurrent senders. */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "tests.h"

#define BIRTH (UINT64_C(1000) * NSEC_PER_SEC)
#define NOW (BIRTH + 1)

static const uint8_t key_ab[32] = "session test key, a to b .......";
static const uint8_t key_ba[32] = "session test key, b to a .......";

/* a sends with key_ab to b (index 0x0b0b0b0b), b sends with key_ba to a (index 0x0a0a0a0a). */
static void make_pair(struct keypair *a, struct keypair *b) {
        keypair_init(a, key_ab, key_ba, 0x0a0a0a0a, 0x0b0b0b0b, true, BIRTH);
        keypair_init(b, key_ba, key_ab, 0x0b0b0b0b, 0x0a0a0a0a, false, BIRTH);
}

static void fill(uint8_t *p, size_t n, unsigned seed) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (i * 131 + seed * 7 + 1);
}

static void test_lengths(void) {
        CHECK_EQ_INT(session_message_len(0), 32);
        CHECK_EQ_INT(session_message_len(1), 48);
        CHECK_EQ_INT(session_message_len(16), 48);
        CHECK_EQ_INT(session_message_len(17), 64);
        CHECK_EQ_INT(session_message_len(60), 96);
        CHECK_EQ_INT(session_message_len(1514), 16 + 1520 + 16);
        CHECK_EQ_INT(session_message_len(FRAME_MAX_LEN), DATAGRAM_MAX_LEN);
        CHECK_EQ_INT(session_message_len(0), MESSAGE_DATA_MIN_LEN);
}

static void round_trip_one(struct keypair *a, struct keypair *b, size_t n, uint64_t expect_ctr,
                           unsigned *ok) {
        static uint8_t frame[FRAME_MAX_LEN], msg[DATAGRAM_MAX_LEN + 64];
        uint8_t *got = NULL;
        size_t got_len = 0;
        uint64_t ctr = 0;
        ssize_t len;
        bool good = true;

        fill(frame, n, (unsigned) n);
        memset(msg, 0xee, sizeof(msg));
        len = session_encrypt(a, frame, n, msg, sizeof(msg), NOW);
        good &= len == (ssize_t) session_message_len(n);
        good &= len > 0 && (size_t) len % 16 == 0;
        good &= msg[0] == 4 && msg[1] == 0 && msg[2] == 0 && msg[3] == 0;
        good &= get_le32(msg + 4) == 0x0b0b0b0b;
        good &= get_le64(msg + 8) == expect_ctr;
        good &= len > 0 && message_classify(msg, (size_t) len) == MESSAGE_DATA;
        /* Ciphertext, not the frame, is on the wire. */
        if (n >= 16)
                good &= memcmp(msg + 16, frame, 16) != 0;
        if (len > 0)
                good &= session_decrypt(b, msg, (size_t) len, NOW, &got, &got_len, &ctr) == 0;
        good &= got == msg + 16;
        good &= got_len == ALIGN_TO(n, 16);
        good &= ctr == expect_ctr;
        good &= got && memcmp(got, frame, n) == 0;
        for (size_t i = n; got && i < got_len; i++)
                good &= got[i] == 0;
        CHECKF(good, "round trip of a %zu-byte frame", n);
        *ok += good;
}

static void test_round_trips(void) {
        struct keypair a, b;
        unsigned ok = 0;
        uint64_t ctr = 0;

        make_pair(&a, &b);
        for (size_t n = 0; n <= 1514; n++)
                round_trip_one(&a, &b, n, ctr++, &ok);
        round_trip_one(&a, &b, FRAME_MAX_LEN, ctr++, &ok);
        CHECK_EQ_INT(FRAME_MAX_LEN, 9018);
        CHECK_EQ_INT(ok, 1516);
        CHECK_EQ_INT(atomic_load(&a.send_counter), 1516);
        /* And the other direction, with its own key, index and counter. */
        uint8_t msg[64], *got;
        size_t got_len;
        uint64_t c;
        CHECK_EQ_INT(session_encrypt(&b, (const uint8_t *) "hi", 2, msg, sizeof(msg), NOW), 48);
        CHECK_EQ_INT(get_le32(msg + 4), 0x0a0a0a0a);
        CHECK_EQ_INT(get_le64(msg + 8), 0);
        CHECK_EQ_INT(session_decrypt(&a, msg, 48, NOW, &got, &got_len, &c), 0);
        CHECK_EQ_INT(got_len, 16);
        CHECK_EQ_INT(c, 0);
        CHECK_MEM(got, "hi\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
}

static void test_known_answer(void) {
        static const char expect_hex[] =
                "04000000443322110807060504030201a321cc80c44ea77d17c30a87322c41de92679fa1884445"
                "9e5735a75de902a7dd34ae33e187f50e52d2e8eac2504051c1";
        static const char frame[] = "ShadowMesh KAT frame";
        const uint64_t counter = UINT64_C(0x0102030405060708);
        uint8_t key[32], zero[32] = {0}, padded[32] = {0}, nonce[12] = {0}, mine[64], out[64];
        struct keypair kp, rx;
        size_t expect_len;
        uint8_t *expect = test_unhex(expect_hex, &expect_len);

        for (unsigned i = 0; i < 32; i++)
                key[i] = (uint8_t) i;
        keypair_init(&kp, key, zero, 1, 0x11223344, true, BIRTH);
        atomic_store(&kp.send_counter, counter);
        CHECK_EQ_INT(session_encrypt(&kp, (const uint8_t *) frame, 20, out, sizeof(out), NOW), 64);
        CHECK_EQ_INT(expect_len, 64);
        CHECK_MEM(out, expect, 64);

        /* The same, straight from libsodium: header, then ChaCha20-Poly1305-IETF of the frame
         * padded to 32 bytes under nonce 0^4 || LE64(counter). */
        memcpy(mine, "\x04\x00\x00\x00\x44\x33\x22\x11\x08\x07\x06\x05\x04\x03\x02\x01", 16);
        memcpy(padded, frame, 20);
        memcpy(nonce + 4, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
        unsigned long long clen = 0;
        crypto_aead_chacha20poly1305_ietf_encrypt(mine + 16, &clen, padded, 32, NULL, 0, NULL,
                                                  nonce, key);
        CHECK_EQ_INT(clen, 48);
        CHECK_MEM(out, mine, 64);

        /* And it opens with the key as receive key and the index as ours. */
        uint8_t *got;
        size_t got_len;
        uint64_t c;
        keypair_init(&rx, zero, key, 0x11223344, 1, false, BIRTH);
        CHECK_EQ_INT(session_decrypt(&rx, out, 64, NOW, &got, &got_len, &c), 0);
        CHECK_EQ_INT(got_len, 32);
        CHECK(c == counter);
        CHECK_MEM(got, padded, 32);
        free(expect);
}

static void test_tampering(void) {
        struct keypair a, b;
        uint8_t frame[40], msg[96], copy[96], *got = (uint8_t *) &got;
        uint8_t *const sentinel = got;
        size_t got_len = 12345;
        uint64_t c = 777;
        unsigned refused = 0;

        make_pair(&a, &b);
        fill(frame, sizeof(frame), 3);
        CHECK_EQ_INT(session_encrypt(&a, frame, sizeof(frame), msg, sizeof(msg), NOW), 80);

        /* Every single bit of header, ciphertext and tag matters. */
        for (size_t i = 0; i < 80; i++)
                for (unsigned bit = 0; bit < 8; bit++) {
                        memcpy(copy, msg, 80);
                        copy[i] ^= (uint8_t) (1u << bit);
                        refused +=
                                session_decrypt(&b, copy, 80, NOW, &got, &got_len, &c) == -EBADMSG;
                }
        CHECK_EQ_INT(refused, 80 * 8);
        /* Failures leave the outputs alone and the window unmoved. */
        CHECK(got == sentinel);
        CHECK_EQ_INT(got_len, 12345);
        CHECK_EQ_INT(c, 777);
        CHECK_EQ_INT(b.replay.counter, 0);

        /* Truncated or extended. */
        memcpy(copy, msg, 80);
        CHECK_EQ_INT(session_decrypt(&b, copy, 79, NOW, &got, &got_len, &c), -EBADMSG);
        CHECK_EQ_INT(session_decrypt(&b, copy, 64, NOW, &got, &got_len, &c), -EBADMSG);
        CHECK_EQ_INT(session_decrypt(&b, copy, 31, NOW, &got, &got_len, &c), -EBADMSG);
        CHECK_EQ_INT(session_decrypt(&b, copy, 0, NOW, &got, &got_len, &c), -EBADMSG);
        memcpy(copy, msg, 80);
        memset(copy + 80, 0, 16);
        CHECK_EQ_INT(session_decrypt(&b, copy, 96, NOW, &got, &got_len, &c), -EBADMSG);
        /* A key_idx for somebody else (a's own index), and the wrong receive key. */
        memcpy(copy, msg, 80);
        CHECK_EQ_INT(session_decrypt(&a, copy, 80, NOW, &got, &got_len, &c), -EBADMSG);
        struct keypair wrong;
        uint8_t other[32];
        memcpy(other, key_ab, 32);
        other[31] ^= 1;
        keypair_init(&wrong, key_ba, other, 0x0b0b0b0b, 0x0a0a0a0a, false, BIRTH);
        memcpy(copy, msg, 80);
        CHECK_EQ_INT(session_decrypt(&wrong, copy, 80, NOW, &got, &got_len, &c), -EBADMSG);

        /* The untouched message still opens, once. */
        memcpy(copy, msg, 80);
        CHECK_EQ_INT(session_decrypt(&b, copy, 80, NOW, &got, &got_len, &c), 0);
        CHECK(got == copy + 16);
        CHECK_EQ_INT(got_len, 48);
        CHECK_EQ_INT(c, 0);
        CHECK_MEM(got, frame, sizeof(frame));
        memcpy(copy, msg, 80);
        CHECK_EQ_INT(session_decrypt(&b, copy, 80, NOW, &got, &got_len, &c), -EALREADY);
        /* NULL outputs are allowed. */
        CHECK_EQ_INT(session_encrypt(&a, frame, 0, msg, sizeof(msg), NOW), 32);
        CHECK_EQ_INT(session_decrypt(&b, msg, 32, NOW, NULL, NULL, NULL), 0);
}

static ssize_t seal_at(struct keypair *kp, uint64_t counter, uint8_t *out, size_t out_max) {
        atomic_store(&kp->send_counter, counter);
        return session_encrypt(kp, (const uint8_t *) "frame", 5, out, out_max, NOW);
}

static int open_copy(struct keypair *kp, const uint8_t *msg, size_t len, uint64_t now) {
        uint8_t copy[64];
        memcpy(copy, msg, len);
        return session_decrypt(kp, copy, len, now, NULL, NULL, NULL);
}

static void test_window(void) {
        struct keypair a, b;
        uint8_t msgs[100][48], msg[48];
        unsigned ok = 0, again = 0;

        make_pair(&a, &b);
        /* Out of order within the window: all accepted, each only once. */
        for (unsigned i = 0; i < 100; i++)
                CHECK_EQ_INT(session_encrypt(&a, (const uint8_t *) &i, sizeof(i), msgs[i], 48, NOW),
                             48);
        for (unsigned i = 0; i < 100; i++)
                ok += open_copy(&b, msgs[(i * 37) % 100], 48, NOW) == 0;
        for (unsigned i = 0; i < 100; i++)
                again += open_copy(&b, msgs[i], 48, NOW) == -EALREADY;
        CHECK_EQ_INT(ok, 100);
        CHECK_EQ_INT(again, 100);

        /* The edge of the window: 10000 seen, so 10000 - COUNTER_WINDOW_SIZE is the oldest
         * still accepted and one less is too old. */
        CHECK_EQ_INT(seal_at(&a, 10000, msg, 48), 48);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), 0);
        CHECK_EQ_INT(seal_at(&a, 10000 - COUNTER_WINDOW_SIZE - 1, msg, 48), 48);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), -EALREADY);
        CHECK_EQ_INT(seal_at(&a, 10000 - COUNTER_WINDOW_SIZE, msg, 48), 48);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), 0);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), -EALREADY);
        CHECK_EQ_INT(seal_at(&a, 9999, msg, 48), 48);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), 0);
        CHECK_EQ_INT(seal_at(&a, 50, msg, 48), 48);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), -EALREADY);
}

/* session_open leaves the window alone (a worker thread may call it); session_accept then
 * records the counter once. Opening twice without accepting is the same counter, which the
 * window takes once. A forged message fails open and so never reaches the window. */
static void test_open_accept(void) {
        struct keypair a, b;
        uint8_t msg[48], copy[48], *frame;
        size_t flen;
        uint64_t counter, c2;
        unsigned i = 7;

        make_pair(&a, &b);
        CHECK_EQ_INT(session_encrypt(&a, (const uint8_t *) &i, sizeof(i), msg, 48, NOW), 48);
        memcpy(copy, msg, sizeof(msg));
        CHECK_EQ_INT(session_open(&b, msg, 48, NOW, &frame, &flen, &counter), 0);
        CHECK_EQ_INT(flen, 16);
        CHECK(memcmp(frame, &i, sizeof(i)) == 0);
        CHECK_EQ_INT(session_open(&b, copy, 48, NOW, &frame, &flen, &c2), 0);
        CHECK_EQ_INT(c2, counter);
        CHECK(session_accept(&b, counter));
        CHECK(!session_accept(&b, counter));
        /* Accepted: the same message through session_decrypt is a replay now. */
        CHECK_EQ_INT(session_encrypt(&a, (const uint8_t *) &i, sizeof(i), msg, 48, NOW), 48);
        memcpy(copy, msg, sizeof(msg));
        CHECK_EQ_INT(session_open(&b, msg, 48, NOW, &frame, &flen, &counter), 0);
        CHECK_EQ_INT(session_decrypt(&b, copy, 48, NOW, &frame, &flen, &c2), 0);
        CHECK(!session_accept(&b, counter));
        /* Tampered: refused by open, with the window (counter 2 unseen) untouched. */
        CHECK_EQ_INT(session_encrypt(&a, (const uint8_t *) &i, sizeof(i), msg, 48, NOW), 48);
        msg[20] ^= 1;
        CHECK_EQ_INT(session_open(&b, msg, 48, NOW, &frame, &flen, &counter), -EBADMSG);
        CHECK(session_accept(&b, 2));
        /* Stale key pair and wrong type refused before the tag. */
        CHECK_EQ_INT(session_encrypt(&a, (const uint8_t *) &i, sizeof(i), msg, 48, NOW), 48);
        CHECK_EQ_INT(session_open(&b, msg, 48, BIRTH + (uint64_t) REJECT_AFTER_TIME * NSEC_PER_SEC,
                                  &frame, &flen, &counter),
                     -ESTALE);
        msg[0] = MESSAGE_PATH_PROBE;
        CHECK_EQ_INT(session_open(&b, msg, 48, NOW, &frame, &flen, &counter), -EBADMSG);
}

static void test_limits(void) {
        struct keypair a, b;
        uint8_t msg[64];

        /* Message limit on send: the last counter goes out, then nothing, and the counter
         * stops moving. */
        make_pair(&a, &b);
        CHECK_EQ_INT(seal_at(&a, REJECT_AFTER_MESSAGES - 1, msg, 48), 48);
        CHECK(get_le64(msg + 8) == REJECT_AFTER_MESSAGES - 1);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), 0);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, sizeof(msg), NOW), -ESTALE);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, sizeof(msg), NOW), -ESTALE);
        CHECK(atomic_load(&a.send_counter) == REJECT_AFTER_MESSAGES);
        CHECK_EQ_INT(seal_at(&a, UINT64_MAX, msg, 48), -ESTALE);
        CHECK(atomic_load(&a.send_counter) == UINT64_MAX);

        /* On receive: a correctly sealed message with a counter at the limit is refused after
         * its tag checks out. */
        uint8_t padded[16] = {0}, nonce[12] = {0};
        memcpy(msg, "\x04\x00\x00\x00\x0b\x0b\x0b\x0b", 8);
        put_le64(msg + 8, REJECT_AFTER_MESSAGES);
        put_le64(nonce + 4, REJECT_AFTER_MESSAGES);
        crypto_aead_chacha20poly1305_ietf_encrypt(msg + 16, NULL, padded, 16, NULL, 0, NULL, nonce,
                                                  key_ab);
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), -EALREADY);
        msg[20] ^= 1;
        CHECK_EQ_INT(open_copy(&b, msg, 48, NOW), -EBADMSG);

        /* Time limit: usable until REJECT_AFTER_TIME after birth, both ways. */
        const uint64_t last = BIRTH + (uint64_t) REJECT_AFTER_TIME * NSEC_PER_SEC - 1;
        make_pair(&a, &b);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, sizeof(msg), last), 32);
        CHECK_EQ_INT(open_copy(&b, msg, 32, last), 0);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, sizeof(msg), last), 32);
        CHECK_EQ_INT(open_copy(&b, msg, 32, last + 1), -ESTALE);
        CHECK_EQ_INT(open_copy(&b, msg, 32, last + 1000 * NSEC_PER_SEC), -ESTALE);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, sizeof(msg), last + 1), -ESTALE);
        /* A refused or time-expired send burns no counter. */
        CHECK_EQ_INT(atomic_load(&a.send_counter), 2);

        /* Buffer too small: refused before a counter is taken. */
        make_pair(&a, &b);
        CHECK_EQ_INT(session_encrypt(&a, msg, 17, msg + 0, 63, NOW), -ENOBUFS);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, 31, NOW), -ENOBUFS);
        CHECK_EQ_INT(session_encrypt(&a, NULL, SIZE_MAX, msg, sizeof(msg), NOW), -ENOBUFS);
        CHECK_EQ_INT(session_encrypt(&a, NULL, SIZE_MAX - 40, msg, SIZE_MAX, NOW), -ENOBUFS);
        CHECK_EQ_INT(atomic_load(&a.send_counter), 0);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, 32, NOW), 32);
}

static void test_wipe(void) {
        struct keypair a, b;
        uint8_t msg[48], zero[32] = {0};

        make_pair(&a, &b);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, sizeof(msg), NOW), 32);
        keypair_wipe(&b);
        CHECK_MEM(b.send_key, zero, 32);
        CHECK_MEM(b.recv_key, zero, 32);
        CHECK(!atomic_load(&b.valid));
        CHECK_EQ_INT(open_copy(&b, msg, 32, NOW), -ESTALE);
        CHECK_EQ_INT(session_encrypt(&b, NULL, 0, msg, sizeof(msg), NOW), -ESTALE);
        /* Invalid without wiping (what the control loop does when it retires a key pair). */
        atomic_store(&a.valid, false);
        CHECK_EQ_INT(session_encrypt(&a, NULL, 0, msg, sizeof(msg), NOW), -ESTALE);
}

enum { PER_THREAD = 20000 };

static void *sender(void *arg) {
        struct keypair *kp = arg;
        uint64_t *seen = calloc(PER_THREAD, sizeof(uint64_t));
        uint8_t msg[32];

        for (unsigned i = 0; seen && i < PER_THREAD; i++) {
                if (session_encrypt(kp, NULL, 0, msg, sizeof(msg), NOW) != 32)
                        abort();
                seen[i] = get_le64(msg + 8);
        }
        return seen;
}

static void test_concurrent_senders(void) {
        struct keypair a, b;
        pthread_t t[2];
        uint64_t *seen[2];
        uint8_t *hits = calloc(2 * PER_THREAD, 1);
        unsigned distinct = 0;

        make_pair(&a, &b);
        for (int i = 0; i < 2; i++)
                CHECK_EQ_INT(pthread_create(&t[i], NULL, sender, &a), 0);
        for (int i = 0; i < 2; i++)
                CHECK_EQ_INT(pthread_join(t[i], (void **) &seen[i]), 0);
        for (int i = 0; i < 2; i++)
                for (unsigned j = 0; seen[i] && j < PER_THREAD; j++)
                        if (seen[i][j] < 2 * PER_THREAD && !hits[seen[i][j]]++)
                                distinct++;
        CHECK_EQ_INT(distinct, 2 * PER_THREAD);
        CHECK_EQ_INT(atomic_load(&a.send_counter), 2 * PER_THREAD);
        free(seen[0]);
        free(seen[1]);
        free(hits);
}

/* Probes are sealed with their header as associated data: neither a data message nor a probe
 * can be turned into the other by rewriting the unauthenticated type byte. */
static void test_control_messages(void) {
        struct keypair a, b;
        uint8_t msg[128], *plain = NULL;
        const uint8_t nonce[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        size_t plen = 0;
        uint64_t counter = 99;
        ssize_t n;

        make_pair(&a, &b);
        n = session_encrypt_control(&a, MESSAGE_PATH_PROBE, nonce, sizeof(nonce), msg, sizeof(msg),
                                    BIRTH);
        CHECK_EQ_INT(n, sizeof(struct message_path_probe));
        CHECK_EQ_INT(msg[0], MESSAGE_PATH_PROBE);
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_PATH_PROBE, msg, (size_t) n, BIRTH, &plain,
                                             &plen, &counter),
                     0);
        CHECK_EQ_INT(plen, sizeof(nonce));
        CHECK(plain && memcmp(plain, nonce, sizeof(nonce)) == 0);
        CHECK_EQ_INT(counter, 0);

        /* Retyped probe -> data, and retyped as the other probe kind: refused. */
        n = session_encrypt_control(&a, MESSAGE_PATH_PROBE_REPLY, nonce, sizeof(nonce), msg,
                                    sizeof(msg), BIRTH);
        msg[0] = MESSAGE_DATA;
        CHECK_EQ_INT(session_decrypt(&b, msg, (size_t) n, BIRTH, NULL, NULL, NULL), -EBADMSG);
        msg[0] = MESSAGE_PATH_PROBE;
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_PATH_PROBE, msg, (size_t) n, BIRTH, NULL,
                                             NULL, NULL),
                     -EBADMSG);
        /* Retyped data -> probe: refused. */
        n = session_encrypt(&a, nonce, sizeof(nonce), msg, sizeof(msg), BIRTH);
        msg[0] = MESSAGE_PATH_PROBE;
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_PATH_PROBE, msg, (size_t) n, BIRTH, NULL,
                                             NULL, NULL),
                     -EBADMSG);
        /* Counters are shared with data: a replayed probe is caught by the same window. */
        n = session_encrypt_control(&a, MESSAGE_PATH_PROBE, nonce, sizeof(nonce), msg, sizeof(msg),
                                    BIRTH);
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_PATH_PROBE, msg, (size_t) n, BIRTH, NULL,
                                             NULL, NULL),
                     0);
        n = session_encrypt_control(&a, MESSAGE_PATH_PROBE, nonce, sizeof(nonce), msg, sizeof(msg),
                                    BIRTH);
        uint8_t copy[128];
        memcpy(copy, msg, (size_t) n);
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_PATH_PROBE, msg, (size_t) n, BIRTH, NULL,
                                             NULL, NULL),
                     0);
        CHECK_EQ_INT(session_decrypt_control(&b, MESSAGE_PATH_PROBE, copy, (size_t) n, BIRTH, NULL,
                                             NULL, NULL),
                     -EALREADY);
        CHECK_EQ_INT(session_encrypt_control(&a, MESSAGE_DATA, nonce, 8, msg, sizeof(msg), BIRTH),
                     -EINVAL);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_control_messages();
        test_lengths();
        test_round_trips();
        test_known_answer();
        test_tampering();
        test_window();
        test_open_accept();
        test_limits();
        test_wipe();
        test_concurrent_senders();
        return test_summary();
}
