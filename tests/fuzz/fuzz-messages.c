/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for everything that reads a datagram before any handshake state: the
 * classifier, data message opening (against a fixed key pair), mac1/mac2 checks (a fixed
 * checker, IPv4 and IPv6 sources) and cookie replies (a fixed maker that has just sent an
 * initiation). Beyond "no crash", it checks invariants and aborts when one breaks:
 *   - an opened data message's plaintext lies inside the input, and the same message is then
 *     refused as a replay; sealed again under the same counter it gives back the input;
 *   - a handshake message with a valid mac1 gets a cookie reply that the maker opens, after
 *     which the maker's mac2 is accepted from the same source and not from another.
 * The seed corpus (corpus/fuzz-messages/) holds valid messages under these fixed keys, so the
 * success paths are reached from the start.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cookie.h"
#include "discovery.h"
#include "messages.h"
#include "session.h"

/* The seeds are made with these; change them together. */
static const uint8_t fuzz_session_key[32] = "shadowmesh-fuzz-session-key-0001";
static const uint8_t fuzz_key_material[32] = "shadowmesh-fuzz-cookie-material!";
#define FUZZ_INDEX 1
#define FUZZ_NOW (UINT64_C(1000) * NSEC_PER_SEC)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cookie_checker checker;
static bool initialized;

static void initialize(void) {
        if (sodium_init() < 0)
                abort();
        cookie_checker_init(&checker, fuzz_key_material);
        initialized = true;
}

/* The initiation the fixed maker "sent" last: cookie replies must be sealed to its mac1. */
static void maker_after_initiation(struct cookie_maker *m) {
        uint8_t init[sizeof(struct message_handshake_initiation)];

        for (size_t i = 0; i < sizeof(init); i++)
                init[i] = (uint8_t) i;
        memset(init, 0, 4);
        init[0] = MESSAGE_HANDSHAKE_INITIATION;
        cookie_maker_init(m, fuzz_key_material);
        cookie_add_mac_to_packet(m, init, sizeof(init), FUZZ_NOW);
}

static void fuzz_data(const uint8_t *data, size_t size) {
        struct keypair kp;
        uint8_t *msg = malloc(size), *again, *frame;
        size_t frame_len;
        uint64_t counter;

        if (!msg)
                abort();
        memcpy(msg, data, size);
        keypair_init(&kp, fuzz_session_key, fuzz_session_key, FUZZ_INDEX, FUZZ_INDEX, false,
                     FUZZ_NOW);
        if (session_decrypt(&kp, msg, size, FUZZ_NOW, &frame, &frame_len, &counter) == 0) {
                if (frame != msg + sizeof(struct message_data) ||
                    frame_len != size - MESSAGE_DATA_MIN_LEN)
                        abort();
                size_t sealed_len = session_message_len(frame_len);

                again = malloc(MAX(size, sealed_len));
                if (!again)
                        abort();
                memcpy(again, data, size);
                if (session_decrypt(&kp, again, size, FUZZ_NOW, NULL, NULL, NULL) != -EALREADY)
                        abort();
                /* Same key, index and counter: sealing the plaintext reproduces the input when
                 * the sender padded it as we do (other senders may pad differently). */
                atomic_store(&kp.send_counter, counter);
                if (session_encrypt(&kp, frame, frame_len, again, sealed_len, FUZZ_NOW) !=
                            (ssize_t) sealed_len ||
                    (sealed_len == size && memcmp(again, data, size) != 0))
                        abort();
                free(again);
        }
        keypair_wipe(&kp);
        free(msg);
}

/* A path probe (and a closing message) opens like a data message but with its header as
 * associated data; one that opens must be refused when replayed, and must never open as a data
 * message. */
/* A DISCOVERY message: opened on a session as the rx thread does (once, then a replay), and
 * whatever opens goes through the peer-list decoder as the control loop's input. */
static void fuzz_discovery(const uint8_t *data, size_t size) {
        struct keypair kp;
        uint8_t *msg = malloc(size), *plain;
        struct discovery_chunk *chunk = malloc(sizeof(*chunk));
        struct discovery_error why;
        size_t plen;

        if (!msg || !chunk)
                abort();
        memcpy(msg, data, size);
        keypair_init(&kp, fuzz_session_key, fuzz_session_key, FUZZ_INDEX, FUZZ_INDEX, false,
                     FUZZ_NOW);
        if (session_decrypt_control(&kp, MESSAGE_DISCOVERY, msg, size, FUZZ_NOW, &plain, &plen,
                                    NULL) == 0) {
                if (plen < DISCOVERY_PLAIN_MIN_LEN || plen > DISCOVERY_PLAIN_MAX_LEN)
                        abort();
                (void) discovery_decode(plain, plen, chunk, &why);
                memcpy(msg, data, size);
                if (session_decrypt_control(&kp, MESSAGE_DISCOVERY, msg, size, FUZZ_NOW, NULL,
                                            NULL, NULL) != -EALREADY)
                        abort();
        }
        /* The plaintext decoder on the raw bytes past the header as well (no key needed). */
        if (size > sizeof(struct message_discovery) &&
            discovery_decode(data + sizeof(struct message_discovery),
                             size - sizeof(struct message_discovery), chunk, &why) == 0 &&
            chunk->n_entries > DISCOVERY_MAX_ENTRIES)
                abort();
        keypair_wipe(&kp);
        free(chunk);
        free(msg);
}

static void fuzz_probe(const uint8_t *data, size_t size) {
        struct keypair kp;
        uint8_t *msg = malloc(size), *plain;
        size_t plen;

        if (!msg)
                abort();
        memcpy(msg, data, size);
        keypair_init(&kp, fuzz_session_key, fuzz_session_key, FUZZ_INDEX, FUZZ_INDEX, false,
                     FUZZ_NOW);
        if (session_decrypt_control(&kp, data[0], msg, size, FUZZ_NOW, &plain, &plen, NULL) == 0) {
                if (plen != 8)
                        abort();
                memcpy(msg, data, size);
                if (session_decrypt_control(&kp, data[0], msg, size, FUZZ_NOW, NULL, NULL,
                                            NULL) != -EALREADY)
                        abort();
                memcpy(msg, data, size);
                msg[0] = MESSAGE_DATA;
                if (session_decrypt(&kp, msg, size, FUZZ_NOW, NULL, NULL, NULL) == 0)
                        abort();
        }
        keypair_wipe(&kp);
        free(msg);
}

static void fuzz_handshake(const uint8_t *data, size_t size) {
        struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(9001)};
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(9001)};
        const struct sockaddr *src4 = (const struct sockaddr *) &v4,
                              *src6 = (const struct sockaddr *) &v6;
        struct message_handshake_cookie reply;
        struct cookie_maker m;
        enum cookie_mac_state s4, s6;
        uint8_t *msg;

        v4.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */
        v6.sin6_addr.s6_addr[0] = 0x20;
        v6.sin6_addr.s6_addr[1] = 0x01;
        v6.sin6_addr.s6_addr[15] = 1;

        s4 = cookie_validate_packet(&checker, data, size, src4, sizeof(v4), true, FUZZ_NOW);
        s6 = cookie_validate_packet(&checker, data, size, src6, sizeof(v6), true, FUZZ_NOW);
        /* mac1 does not depend on the source. */
        if ((s4 == COOKIE_INVALID_MAC) != (s6 == COOKIE_INVALID_MAC))
                abort();
        if (s4 == COOKIE_INVALID_MAC)
                return;

        /* Answer with a cookie, as under load, and check the maker's side of it. */
        msg = malloc(size);
        if (!msg)
                abort();
        memcpy(msg, data, size);
        cookie_maker_init(&m, fuzz_key_material);
        cookie_add_mac_to_packet(&m, msg, size, FUZZ_NOW);
        if (memcmp(msg, data, size - COOKIE_LEN) != 0) /* same key material, same mac1 */
                abort();
        cookie_message_create(&checker, &reply, data, size, 7, src4, sizeof(v4), FUZZ_NOW);
        if (cookie_message_consume(&m, &reply, FUZZ_NOW) != 0)
                abort();
        cookie_add_mac_to_packet(&m, msg, size, FUZZ_NOW);
        if (cookie_validate_packet(&checker, msg, size, src4, sizeof(v4), true, FUZZ_NOW) !=
                    COOKIE_VALID_MAC_WITH_COOKIE ||
            cookie_validate_packet(&checker, msg, size, src6, sizeof(v6), true, FUZZ_NOW) !=
                    COOKIE_VALID_MAC_BUT_NO_COOKIE)
                abort();
        cookie_maker_wipe(&m);
        free(msg);
}

static void fuzz_cookie(const uint8_t *data, size_t size) {
        struct message_handshake_cookie reply;
        struct cookie_maker m;

        memcpy(&reply, data, sizeof(reply));
        maker_after_initiation(&m);
        if (cookie_message_consume(&m, &reply, FUZZ_NOW) == 0) {
                if (!m.have_cookie || m.have_sent_mac1)
                        abort();
                if (cookie_message_consume(&m, &reply, FUZZ_NOW) != -ENOENT)
                        abort();
        } else if (m.have_cookie) {
                abort();
        }
        cookie_maker_wipe(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!initialized)
                initialize();

        switch (message_classify(data, size)) {
        case MESSAGE_DATA:
                fuzz_data(data, size);
                break;
        case MESSAGE_RELAY_DATA:
                /* What the receive thread does: classify the wrapped message once. */
                if (size < MESSAGE_RELAY_DATA_MIN_LEN || size > RELAYED_DATAGRAM_MAX_LEN)
                        abort();
                (void) LLVMFuzzerTestOneInput(data + sizeof(struct message_relay_data),
                                              size - sizeof(struct message_relay_data));
                break;
        case MESSAGE_RELAY_REGISTER:
                /* 424 bytes, or with a want list (messages.h): 428 + 32 n, 1 <= n <= 24. */
                if (size != sizeof(struct message_relay_register) &&
                    !RELAY_REGISTER_WANTS_LEN_OK(size))
                        abort();
                break;
        case MESSAGE_RELAY_CHALLENGE:
        case MESSAGE_RELAY_REGISTERED:
        case MESSAGE_RELAY_PEER:
                /* Fixed sizes: the relay and the relay client read them as structs. */
                if (size != sizeof(struct message_relay_register) &&
                    size != sizeof(struct message_relay_challenge) &&
                    size != sizeof(struct message_relay_registered) &&
                    size != sizeof(struct message_relay_peer))
                        abort();
                break;
        case MESSAGE_PATH_PROBE:
        case MESSAGE_PATH_PROBE_REPLY:
                if (size != sizeof(struct message_path_probe))
                        abort();
                fuzz_probe(data, size);
                break;
        case MESSAGE_CLOSE:
                /* Sealed like a probe (its header as associated data, an 8-byte marker). */
                if (size != sizeof(struct message_close))
                        abort();
                fuzz_probe(data, size);
                break;
        case MESSAGE_DISCOVERY:
                if (!DISCOVERY_MESSAGE_LEN_OK(size))
                        abort();
                fuzz_discovery(data, size);
                break;
        case MESSAGE_HANDSHAKE_INITIATION:
        case MESSAGE_HANDSHAKE_RESPONSE:
                fuzz_handshake(data, size);
                break;
        case MESSAGE_HANDSHAKE_COOKIE:
                if (size != sizeof(struct message_handshake_cookie))
                        abort();
                fuzz_cookie(data, size);
                break;
        case MESSAGE_INVALID:
                break;
        default:
                abort(); /* the classifier returned a type it does not define */
        }
        return 0;
}
