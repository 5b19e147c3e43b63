/* SPDX-License-Identifier: MIT */
/*
 * natcheck against a simulated network: an RFC 5780 server with two IPs and two ports (its
 * answers built with stun_build_binding_success), and a NAT in front of the client whose
 * mapping (none, endpoint-independent, address-dependent, address-and-port-dependent) and
 * filtering (endpoint-independent, address-dependent, address-and-port-dependent) the test
 * picks. Time is simulated: every datagram takes LINK_DELAY each way. Checked: the
 * classification for all twelve combinations, the requests sent and their exact times (RFC
 * 8489 retransmission schedule), a server without OTHER-ADDRESS, UDP blocked, answers with the
 * wrong transaction id or from the wrong address, duplicates, error answers.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "natcheck.h"
#include "stun.h"
#include "tests.h"
#include "util.h"

#define SA_ARGS(x) ((const struct sockaddr *) &(x)), sizeof(x)
#define MS NSEC_PER_MSEC
#define LINK_DELAY (10 * MS)
#define START (UINT64_C(5000) * MS) /* any non-zero clock origin */

enum sim_mapping { SIM_NO_NAT, SIM_MAP_EI, SIM_MAP_AD, SIM_MAP_APD };
enum sim_filtering { SIM_FILTER_EI, SIM_FILTER_AD, SIM_FILTER_APD };

static const char *sim_mapping_name[] = {"no-nat", "EI", "AD", "APD"};
static const char *sim_filtering_name[] = {"EI", "AD", "APD"};

enum {
        MAX_MAPPINGS = 16,
        MAX_CONTACTS = 16,
        MAX_PENDING = 64,
        MAX_SENT = 64,
        SERVER_PORT = 3478,
        SERVER_ALT_PORT = 3479,
        NAT_FIRST_PORT = 40000,
        CLIENT_PORT = 5000,
};

/* Addresses are IPv4 here; host byte order inside the simulation. */
struct ep {
        uint32_t ip;
        uint16_t port;
};

#define IP(a, b, c, d) (((uint32_t) (a) << 24) | ((uint32_t) (b) << 16) | ((c) << 8) | (d))
static const uint32_t SERVER_IP1 = IP(198, 51, 100, 1), SERVER_IP2 = IP(198, 51, 100, 2);
static const uint32_t NAT_IP = IP(203, 0, 113, 1);
static const uint32_t CLIENT_PRIVATE_IP = IP(192, 168, 1, 10);
static const uint32_t CLIENT_PUBLIC_IP = IP(203, 0, 113, 10); /* when there is no NAT */

struct mapping {
        struct ep key; /* the destination part the mapping depends on */
        uint16_t port; /* external port */
        struct ep contacts[MAX_CONTACTS];
        size_t n_contacts;
};

struct pending {
        uint64_t at;
        struct ep from;
        uint8_t buf[STUN_MAX_MESSAGE_LEN];
        size_t len;
};

struct sent {
        uint64_t at;
        struct ep dst;
        uint32_t change_flags;
};

struct sim {
        enum sim_mapping mapping;
        enum sim_filtering filtering;
        bool server_rfc5780;        /* sends OTHER-ADDRESS and honours CHANGE-REQUEST */
        bool server_rejects_change; /* answers CHANGE-REQUEST with 420 */
        bool alt_ip_dead;           /* nothing reaches the server's second IP */
        bool drop_all;
        bool duplicate; /* every answer arrives twice */
        bool decoys;    /* a wrong-tid and a wrong-source copy precede each answer */
        uint64_t now;

        struct mapping maps[MAX_MAPPINGS];
        size_t n_maps;
        struct pending pending[MAX_PENDING];
        size_t n_pending;
        struct sent sent[MAX_SENT];
        size_t n_sent;
        unsigned answers, answers_offered, answers_consumed;
};

static struct sockaddr_in to_sin(struct ep e) {
        return (struct sockaddr_in){
                .sin_family = AF_INET, .sin_port = htons(e.port), .sin_addr.s_addr = htonl(e.ip)};
}

static struct ep from_ss(const struct sockaddr_storage *ss) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
        if (ss->ss_family != AF_INET)
                abort();
        return (struct ep){ntohl(sin->sin_addr.s_addr), ntohs(sin->sin_port)};
}

static bool ep_eq(struct ep a, struct ep b) {
        return a.ip == b.ip && a.port == b.port;
}

static struct ep client_local(const struct sim *s) {
        return (struct ep){s->mapping == SIM_NO_NAT ? CLIENT_PUBLIC_IP : CLIENT_PRIVATE_IP,
                           CLIENT_PORT};
}

/* Outbound through the NAT: the mapping to use for dst (made on first use). Without a NAT,
 * one pseudo-mapping with the client's own address stands for the firewall's state. */
static struct mapping *nat_out(struct sim *s, struct ep dst) {
        struct ep key = {0, 0};
        struct mapping *m = NULL;

        if (s->mapping == SIM_MAP_AD)
                key.ip = dst.ip;
        else if (s->mapping == SIM_MAP_APD)
                key = dst;
        for (size_t i = 0; i < s->n_maps; i++)
                if (ep_eq(s->maps[i].key, key))
                        m = &s->maps[i];
        if (!m) {
                if (s->n_maps >= MAX_MAPPINGS)
                        abort();
                m = &s->maps[s->n_maps];
                m->key = key;
                m->port = s->mapping == SIM_NO_NAT ? CLIENT_PORT
                                                   : (uint16_t) (NAT_FIRST_PORT + s->n_maps);
                m->n_contacts = 0;
                s->n_maps++;
        }
        bool known = false;
        for (size_t i = 0; i < m->n_contacts; i++)
                known = known || ep_eq(m->contacts[i], dst);
        if (!known) {
                if (m->n_contacts >= MAX_CONTACTS)
                        abort();
                m->contacts[m->n_contacts++] = dst;
        }
        return m;
}

static struct ep nat_public(const struct sim *s, const struct mapping *m) {
        return (struct ep){s->mapping == SIM_NO_NAT ? CLIENT_PUBLIC_IP : NAT_IP, m->port};
}

/* Inbound: does the filter let a datagram from src to the mapping's external port through? */
static bool nat_in(const struct sim *s, struct ep src, struct ep to) {
        for (size_t i = 0; i < s->n_maps; i++) {
                const struct mapping *m = &s->maps[i];
                if (!ep_eq(nat_public(s, m), to))
                        continue;
                if (s->filtering == SIM_FILTER_EI)
                        return true;
                for (size_t j = 0; j < m->n_contacts; j++) {
                        if (m->contacts[j].ip != src.ip)
                                continue;
                        if (s->filtering == SIM_FILTER_AD || m->contacts[j].port == src.port)
                                return true;
                }
        }
        return false;
}

static void queue(struct sim *s, struct ep from, const uint8_t *buf, size_t len, uint64_t at) {
        if (s->n_pending >= MAX_PENDING)
                abort();
        struct pending *p = &s->pending[s->n_pending++];
        p->at = at;
        p->from = from;
        memcpy(p->buf, buf, len);
        p->len = len;
}

/* The RFC 5780 server: received on `at` from `src` (after the NAT). */
static void server_receive(struct sim *s, struct ep at, struct ep src, const uint8_t *buf,
                           size_t len) {
        struct stun_message m;
        uint8_t out[STUN_MAX_MESSAGE_LEN];
        struct ep origin = at, other;
        int r;

        if (stun_parse(buf, len, &m) < 0 || m.type != STUN_BINDING_REQUEST)
                abort(); /* natcheck sends nothing else */
        if (s->alt_ip_dead && at.ip == SERVER_IP2)
                return;

        /* OTHER-ADDRESS: the receiving address with both IP and port swapped (RFC 5780 7.3). */
        other.ip = at.ip == SERVER_IP1 ? SERVER_IP2 : SERVER_IP1;
        other.port = at.port == SERVER_PORT ? SERVER_ALT_PORT : SERVER_PORT;

        if (m.has_change_request && (!s->server_rfc5780 || s->server_rejects_change)) {
                r = stun_build_binding_error(out, sizeof(out), m.transaction_id, 420,
                                             "Unknown Attribute");
        } else {
                if (m.has_change_request && (m.change_flags & STUN_CHANGE_IP))
                        origin.ip = other.ip;
                if (m.has_change_request && (m.change_flags & STUN_CHANGE_PORT))
                        origin.port = other.port;
                if (s->alt_ip_dead && origin.ip == SERVER_IP2)
                        return;
                struct sockaddr_in mapped = to_sin(src), o = to_sin(origin), oth = to_sin(other);
                r = stun_build_binding_success(out, sizeof(out), m.transaction_id, SA_ARGS(mapped),
                                               SA_ARGS(o),
                                               s->server_rfc5780 ? (struct sockaddr *) &oth : NULL,
                                               s->server_rfc5780 ? sizeof(oth) : 0);
        }
        if (r < 0)
                abort();

        /* Back through the NAT's filter. */
        if (!nat_in(s, origin, src))
                return;
        if (s->decoys) {
                /* Same answer from an address natcheck did not ask (the other server port). */
                struct ep wrong = {origin.ip, (uint16_t) (origin.port ^ 1)};
                queue(s, wrong, out, (size_t) r, s->now + LINK_DELAY);
                /* And an answer for some other transaction. */
                uint8_t tid[STUN_TRANSACTION_ID_LEN], decoy[STUN_MAX_MESSAGE_LEN];
                struct sockaddr_in mapped = to_sin(src);
                randombytes_buf(tid, sizeof(tid));
                int d = stun_build_binding_success(decoy, sizeof(decoy), tid, SA_ARGS(mapped), NULL,
                                                   0, NULL, 0);
                queue(s, origin, decoy, (size_t) d, s->now + LINK_DELAY);
        }
        queue(s, origin, out, (size_t) r, s->now + 2 * LINK_DELAY);
        s->answers++;
        if (s->duplicate)
                queue(s, origin, out, (size_t) r, s->now + 3 * LINK_DELAY);
}

/* Run natcheck to completion against the simulation (or until the simulated clock passes a
 * minute, which would be a bug). */
static void run(struct sim *s, struct natcheck *n) {
        uint8_t buf[STUN_MAX_MESSAGE_LEN];

        s->now = START;
        while (!natcheck_done(n) && s->now < START + 60 * NSEC_PER_SEC) {
                struct sockaddr_storage dst;
                socklen_t dst_len;
                int r;

                /* Deliver what arrives now, in order. */
                for (size_t i = 0; i < s->n_pending;) {
                        if (s->pending[i].at > s->now) {
                                i++;
                                continue;
                        }
                        struct pending p = s->pending[i];
                        memmove(&s->pending[i], &s->pending[i + 1],
                                (s->n_pending - i - 1) * sizeof(p));
                        s->n_pending--;
                        struct sockaddr_in from = to_sin(p.from);
                        bool consumed = natcheck_input(n, p.buf, p.len, SA_ARGS(from), s->now);
                        s->answers_offered++;
                        if (consumed)
                                s->answers_consumed++;
                }

                while ((r = natcheck_next_packet(n, s->now, buf, sizeof(buf), &dst, &dst_len)) >
                       0) {
                        struct stun_message m;
                        struct ep d = from_ss(&dst);

                        CHECK_EQ_INT(dst_len, sizeof(struct sockaddr_in));
                        CHECK_EQ_INT(stun_parse(buf, (size_t) r, &m), 0);
                        CHECK(m.fingerprint_ok);
                        if (s->n_sent >= MAX_SENT)
                                abort();
                        s->sent[s->n_sent++] =
                                (struct sent){s->now, d, m.has_change_request ? m.change_flags : 0};
                        if (s->drop_all)
                                continue;
                        struct mapping *map = nat_out(s, d);
                        server_receive(s, d, nat_public(s, map), buf, (size_t) r);
                }
                CHECK(r == 0);
                if (natcheck_done(n))
                        break;

                uint64_t next = natcheck_next_timeout(n);
                for (size_t i = 0; i < s->n_pending; i++)
                        next = MIN(next, s->pending[i].at);
                CHECK(next > s->now);
                if (next <= s->now)
                        break;
                s->now = next;
        }
        CHECK(natcheck_done(n));
        CHECK_EQ_INT(natcheck_next_timeout(n), UINT64_MAX);

        /* What is still in flight arrives after the end and changes nothing. */
        struct natcheck_result before = *natcheck_result(n);
        for (size_t i = 0; i < s->n_pending; i++) {
                struct sockaddr_in from = to_sin(s->pending[i].from);
                s->answers_offered++;
                if (natcheck_input(n, s->pending[i].buf, s->pending[i].len, SA_ARGS(from),
                                   s->pending[i].at))
                        s->answers_consumed++;
        }
        s->n_pending = 0;
        const struct natcheck_result *after = natcheck_result(n);
        CHECK(before.udp_blocked == after->udp_blocked && before.has_public == after->has_public &&
              before.mapping == after->mapping && before.filtering == after->filtering &&
              before.rtt_ns == after->rtt_ns &&
              memcmp(&before.public_endpoint, &after->public_endpoint,
                     sizeof(struct sockaddr_in)) == 0);
}

static struct natcheck *start(struct sim *s, bool full) {
        struct sockaddr_in server = to_sin((struct ep){SERVER_IP1, SERVER_PORT});
        struct sockaddr_in local = to_sin(client_local(s));
        struct natcheck *n = NULL;

        CHECK_EQ_INT(natcheck_new(SA_ARGS(server), SA_ARGS(local), full, START, &n), 0);
        if (!n)
                abort();
        return n;
}

static bool sent_is(const struct sim *s, size_t i, uint64_t at_ms, struct ep dst, uint32_t flags) {
        return i < s->n_sent && s->sent[i].at == START + at_ms * MS && ep_eq(s->sent[i].dst, dst) &&
               s->sent[i].change_flags == flags;
}

static void test_combinations(void) {
        static const enum nat_mapping want_mapping[] = {
                [SIM_NO_NAT] = NAT_MAPPING_NO_NAT,
                [SIM_MAP_EI] = NAT_MAPPING_ENDPOINT_INDEPENDENT,
                [SIM_MAP_AD] = NAT_MAPPING_ADDRESS_DEPENDENT,
                [SIM_MAP_APD] = NAT_MAPPING_ADDRESS_PORT_DEPENDENT,
        };
        static const enum nat_filtering want_filtering[] = {
                [SIM_FILTER_EI] = NAT_FILTERING_ENDPOINT_INDEPENDENT,
                [SIM_FILTER_AD] = NAT_FILTERING_ADDRESS_DEPENDENT,
                [SIM_FILTER_APD] = NAT_FILTERING_ADDRESS_PORT_DEPENDENT,
        };
        static const char *want_type[4][3] = {
                [SIM_NO_NAT] = {"no-nat", "no-nat", "no-nat"},
                [SIM_MAP_EI] = {"full-cone", "restricted-cone", "port-restricted-cone"},
                [SIM_MAP_AD] = {"symmetric", "symmetric", "symmetric"},
                [SIM_MAP_APD] = {"symmetric", "symmetric", "symmetric"},
        };

        for (int mi = SIM_NO_NAT; mi <= SIM_MAP_APD; mi++)
                for (int fi = SIM_FILTER_EI; fi <= SIM_FILTER_APD; fi++)
                        for (int variant = 0; variant < 2; variant++) {
                                struct sim *s = calloc(1, sizeof(*s));
                                if (!s)
                                        abort();
                                s->mapping = mi;
                                s->filtering = fi;
                                s->server_rfc5780 = true;
                                /* Variant 1: every answer twice, decoys first. */
                                s->duplicate = s->decoys = variant == 1;
                                struct natcheck *n = start(s, true);
                                run(s, n);

                                const struct natcheck_result *r = natcheck_result(n);
                                const char *type = natcheck_type_string(r);
                                struct ep pub = from_ss(&r->public_endpoint);
                                struct ep want_pub = mi == SIM_NO_NAT
                                                             ? client_local(s)
                                                             : (struct ep){NAT_IP, NAT_FIRST_PORT};

                                printf("mapping %-6s filtering %-3s%s -> %s (%s, %s), %zu "
                                       "requests, %.3f s\n",
                                       sim_mapping_name[mi], sim_filtering_name[fi],
                                       variant ? " dup" : "    ", type,
                                       nat_mapping_to_string(r->mapping),
                                       nat_filtering_to_string(r->filtering), s->n_sent,
                                       (double) (s->now - START) / NSEC_PER_SEC);
                                CHECKF(strcmp(type, want_type[mi][fi]) == 0,
                                       "mapping %s filtering %s: %s", sim_mapping_name[mi],
                                       sim_filtering_name[fi], type);
                                CHECK_EQ_INT(r->mapping, want_mapping[mi]);
                                CHECK_EQ_INT(r->filtering, want_filtering[fi]);
                                CHECK(!r->udp_blocked);
                                CHECK(r->has_public);
                                CHECK(r->server_supports_rfc5780);
                                CHECK(ep_eq(pub, want_pub));
                                CHECK_EQ_INT(r->rtt_ns, 2 * LINK_DELAY);
                                if (variant == 1)
                                        /* Decoys (2 per answer) are refused, duplicates taken. */
                                        CHECK_EQ_INT(s->answers_offered - s->answers_consumed,
                                                     2 * s->answers);
                                CHECK_EQ_INT(s->answers_offered, (variant ? 4 : 1) * s->answers);

                                /* The tests in order: I, filtering (II, then III if II got no
                                 * answer), mapping (II, then III if the mapping changed). */
                                struct ep primary = {SERVER_IP1, SERVER_PORT};
                                size_t i = 0;
                                CHECK(sent_is(s, i++, 0, primary, 0));
                                uint64_t t = 2 * LINK_DELAY / MS;
                                CHECK(sent_is(s, i++, t, primary, 6));
                                if (fi != SIM_FILTER_EI) {
                                        CHECK(sent_is(s, i++, t + 250, primary, 6));
                                        CHECK(sent_is(s, i++, t + 750, primary, 6));
                                        CHECK(sent_is(s, i++, t + 1750, primary, 6));
                                        t += 2750;
                                        CHECK(sent_is(s, i++, t, primary, 2));
                                        if (fi == SIM_FILTER_APD) {
                                                CHECK(sent_is(s, i++, t + 250, primary, 2));
                                                CHECK(sent_is(s, i++, t + 750, primary, 2));
                                                CHECK(sent_is(s, i++, t + 1750, primary, 2));
                                                t += 2750;
                                        } else
                                                t += 2 * LINK_DELAY / MS;
                                } else
                                        t += 2 * LINK_DELAY / MS;
                                if (mi != SIM_NO_NAT) {
                                        CHECK(sent_is(s, i++, t,
                                                      (struct ep){SERVER_IP2, SERVER_PORT}, 0));
                                        t += 2 * LINK_DELAY / MS;
                                        if (mi != SIM_MAP_EI)
                                                CHECK(sent_is(
                                                        s, i++, t,
                                                        (struct ep){SERVER_IP2, SERVER_ALT_PORT},
                                                        0));
                                }
                                CHECK_EQ_INT(s->n_sent, i);
                                natcheck_free(n);
                                free(s);
                        }
}

/* A socket bound to the wildcard: no NAT is recognised from the interface addresses. */
static void test_no_nat_wildcard(void) {
        struct sim *s = calloc(1, sizeof(*s));
        struct sockaddr_in server = to_sin((struct ep){SERVER_IP1, SERVER_PORT});
        struct sockaddr_in any = to_sin((struct ep){0, CLIENT_PORT});
        struct sockaddr_in lo = to_sin((struct ep){IP(127, 0, 0, 1), 0});
        struct sockaddr_in own = to_sin((struct ep){CLIENT_PUBLIC_IP, 0});
        struct sockaddr_in6 own6 = {.sin6_family = AF_INET6};
        struct natcheck *n = NULL;

        if (!s)
                abort();
        s->mapping = SIM_NO_NAT;
        s->filtering = SIM_FILTER_EI;
        s->server_rfc5780 = true;
        CHECK_EQ_INT(natcheck_new(SA_ARGS(server), SA_ARGS(any), true, START, &n), 0);
        natcheck_add_local_address(n, SA_ARGS(lo));
        natcheck_add_local_address(n, SA_ARGS(own6));
        natcheck_add_local_address(n, SA_ARGS(own));
        run(s, n);
        CHECK_EQ_INT(natcheck_result(n)->mapping, NAT_MAPPING_NO_NAT);
        CHECK(strcmp(natcheck_type_string(natcheck_result(n)), "no-nat") == 0);
        natcheck_free(n);

        /* Without the interface address it is just an unknown public endpoint... */
        memset(s, 0, sizeof(*s));
        s->mapping = SIM_NO_NAT;
        s->filtering = SIM_FILTER_EI;
        s->server_rfc5780 = true;
        CHECK_EQ_INT(natcheck_new(SA_ARGS(server), SA_ARGS(any), true, START, &n), 0);
        natcheck_add_local_address(n, SA_ARGS(lo));
        run(s, n);
        /* ...whose mapping tests then find endpoint-independent mapping. */
        CHECK_EQ_INT(natcheck_result(n)->mapping, NAT_MAPPING_ENDPOINT_INDEPENDENT);
        CHECK(strcmp(natcheck_type_string(natcheck_result(n)), "full-cone") == 0);
        natcheck_free(n);
        free(s);
}

static void test_no_other_address(void) {
        struct sim *s = calloc(1, sizeof(*s));
        if (!s)
                abort();
        s->mapping = SIM_MAP_EI;
        s->filtering = SIM_FILTER_APD;
        s->server_rfc5780 = false;
        struct natcheck *n = start(s, true);
        run(s, n);
        const struct natcheck_result *r = natcheck_result(n);
        CHECK(r->has_public);
        CHECK(ep_eq(from_ss(&r->public_endpoint), (struct ep){NAT_IP, NAT_FIRST_PORT}));
        CHECK(!r->server_supports_rfc5780);
        CHECK(!r->udp_blocked);
        CHECK_EQ_INT(r->mapping, NAT_MAPPING_UNKNOWN);
        CHECK_EQ_INT(r->filtering, NAT_FILTERING_UNKNOWN);
        CHECK(strcmp(natcheck_type_string(r), "unknown") == 0);
        CHECK_EQ_INT(s->n_sent, 1);
        CHECK_EQ_INT(s->now, START + 2 * LINK_DELAY);
        natcheck_free(n);
        free(s);
}

/* full = false: test I only, even against an RFC 5780 server. */
static void test_public_only(void) {
        struct sim *s = calloc(1, sizeof(*s));
        if (!s)
                abort();
        s->mapping = SIM_MAP_APD;
        s->filtering = SIM_FILTER_APD;
        s->server_rfc5780 = true;
        struct natcheck *n = start(s, false);
        run(s, n);
        const struct natcheck_result *r = natcheck_result(n);
        CHECK(r->has_public);
        CHECK(r->server_supports_rfc5780);
        CHECK_EQ_INT(r->mapping, NAT_MAPPING_UNKNOWN);
        CHECK_EQ_INT(r->filtering, NAT_FILTERING_UNKNOWN);
        CHECK_EQ_INT(s->n_sent, 1);
        natcheck_free(n);
        free(s);
}

static void test_udp_blocked(void) {
        struct sim *s = calloc(1, sizeof(*s));
        uint8_t buf[STUN_MAX_MESSAGE_LEN];
        struct sockaddr_storage dst;
        socklen_t dst_len;
        struct ep primary = {SERVER_IP1, SERVER_PORT};

        if (!s)
                abort();
        s->mapping = SIM_MAP_EI;
        s->drop_all = true;
        struct natcheck *n = start(s, true);

        /* Step by step: a request at 0, 250, 750, 1750 ms (RTO 250 doubling, Rc = 4), then
         * Rm * RTO = 1000 ms of waiting: failure at 2750 ms. */
        static const uint64_t due_ms[] = {0, 250, 750, 1750};
        uint8_t tid[STUN_TRANSACTION_ID_LEN];
        for (size_t i = 0; i < ELEMENTSOF(due_ms); i++) {
                struct stun_message m;
                CHECK_EQ_INT(natcheck_next_timeout(n), START + due_ms[i] * MS);
                if (i > 0)
                        CHECK_EQ_INT(natcheck_next_packet(n, START + due_ms[i] * MS - 1, buf,
                                                          sizeof(buf), &dst, &dst_len),
                                     0);
                int r = natcheck_next_packet(n, START + due_ms[i] * MS, buf, sizeof(buf), &dst,
                                             &dst_len);
                CHECK_EQ_INT(r, 28);
                CHECK(ep_eq(from_ss(&dst), primary));
                CHECK_EQ_INT(stun_parse(buf, (size_t) r, &m), 0);
                /* Retransmissions keep the transaction id. */
                if (i == 0)
                        memcpy(tid, m.transaction_id, sizeof(tid));
                else
                        CHECK_MEM(m.transaction_id, tid, sizeof(tid));
                CHECK_EQ_INT(natcheck_next_packet(n, START + due_ms[i] * MS, buf, sizeof(buf), &dst,
                                                  &dst_len),
                             0);
                CHECK(!natcheck_done(n));
        }
        CHECK_EQ_INT(natcheck_next_timeout(n), START + 2750 * MS);
        CHECK_EQ_INT(
                natcheck_next_packet(n, START + 2750 * MS - 1, buf, sizeof(buf), &dst, &dst_len),
                0);
        CHECK(!natcheck_done(n));
        CHECK_EQ_INT(natcheck_next_packet(n, START + 2750 * MS, buf, sizeof(buf), &dst, &dst_len),
                     0);
        CHECK(natcheck_done(n));
        CHECK_EQ_INT(natcheck_next_timeout(n), UINT64_MAX);
        const struct natcheck_result *r = natcheck_result(n);
        CHECK(r->udp_blocked);
        CHECK(!r->has_public);
        CHECK(strcmp(natcheck_type_string(r), "udp-blocked") == 0);
        natcheck_free(n);

        /* The same through the simulation loop: exactly four requests. */
        memset(s, 0, sizeof(*s));
        s->mapping = SIM_MAP_EI;
        s->drop_all = true;
        n = start(s, true);
        run(s, n);
        CHECK_EQ_INT(s->n_sent, 4);
        for (size_t i = 0; i < ELEMENTSOF(due_ms); i++)
                CHECK(sent_is(s, i, due_ms[i], primary, 0));
        CHECK_EQ_INT(s->now, START + 2750 * MS);
        CHECK(natcheck_result(n)->udp_blocked);
        natcheck_free(n);
        free(s);
}

/* Answers with a wrong transaction id, from the wrong address, or not STUN are refused and
 * change nothing; the right one is then taken. */
static void test_foreign_answers(void) {
        struct sockaddr_in server = to_sin((struct ep){SERVER_IP1, SERVER_PORT});
        struct sockaddr_in elsewhere = to_sin((struct ep){SERVER_IP2, SERVER_PORT});
        struct sockaddr_in local = to_sin((struct ep){CLIENT_PRIVATE_IP, CLIENT_PORT});
        struct sockaddr_in mapped = to_sin((struct ep){NAT_IP, 41000});
        uint8_t buf[STUN_MAX_MESSAGE_LEN], answer[STUN_MAX_MESSAGE_LEN];
        uint8_t tid[STUN_TRANSACTION_ID_LEN];
        struct sockaddr_storage dst;
        socklen_t dst_len;
        struct stun_message m;
        struct natcheck *n = NULL;
        int r, a;

        CHECK_EQ_INT(natcheck_new(SA_ARGS(server), SA_ARGS(local), false, START, &n), 0);
        r = natcheck_next_packet(n, START, buf, sizeof(buf), &dst, &dst_len);
        CHECK_EQ_INT(stun_parse(buf, (size_t) r, &m), 0);

        memcpy(tid, m.transaction_id, sizeof(tid));
        tid[11] ^= 1;
        a = stun_build_binding_success(answer, sizeof(answer), tid, SA_ARGS(mapped), NULL, 0, NULL,
                                       0);
        CHECK(!natcheck_input(n, answer, (size_t) a, SA_ARGS(server), START + MS));
        a = stun_build_binding_success(answer, sizeof(answer), m.transaction_id, SA_ARGS(mapped),
                                       NULL, 0, NULL, 0);
        CHECK(!natcheck_input(n, answer, (size_t) a, SA_ARGS(elsewhere), START + MS));
        /* Our own request echoed back (a request, not a response). */
        CHECK(!natcheck_input(n, buf, (size_t) r, SA_ARGS(server), START + MS));
        /* Truncated answer. */
        CHECK(!natcheck_input(n, answer, (size_t) a - 4, SA_ARGS(server), START + MS));
        CHECK(!natcheck_done(n));
        CHECK(!natcheck_result(n)->has_public);

        /* An IPv4-mapped IPv6 source (a dual-stack socket) is the same server. */
        struct sockaddr_in6 server6 = {.sin6_family = AF_INET6, .sin6_port = htons(SERVER_PORT)};
        inet_pton(AF_INET6, "::ffff:198.51.100.1", &server6.sin6_addr);
        CHECK(natcheck_input(n, answer, (size_t) a, SA_ARGS(server6), START + 3 * MS));
        CHECK(natcheck_done(n));
        CHECK(ep_eq(from_ss(&natcheck_result(n)->public_endpoint), (struct ep){NAT_IP, 41000}));
        CHECK_EQ_INT(natcheck_result(n)->rtt_ns, 3 * MS);
        /* A duplicate after the end: ours, harmless. */
        CHECK(natcheck_input(n, answer, (size_t) a, SA_ARGS(server), START + 4 * MS));
        CHECK_EQ_INT(natcheck_result(n)->rtt_ns, 3 * MS);
        natcheck_free(n);

        /* Bad arguments. */
        struct sockaddr_in zero_port = to_sin((struct ep){SERVER_IP1, 0});
        n = (struct natcheck *) 1;
        CHECK_EQ_INT(natcheck_new(SA_ARGS(zero_port), NULL, 0, true, START, &n), -EINVAL);
        CHECK_EQ_INT(natcheck_new(NULL, 0, NULL, 0, true, START, &n), -EINVAL);
        CHECK(n == (struct natcheck *) 1);
        CHECK(natcheck_free(NULL) == NULL);
}

/* A server that answers CHANGE-REQUEST with 420: filtering unknown, mapping still found. */
static void test_change_request_rejected(void) {
        struct sim *s = calloc(1, sizeof(*s));
        if (!s)
                abort();
        s->mapping = SIM_MAP_APD;
        s->filtering = SIM_FILTER_EI;
        s->server_rfc5780 = true;
        s->server_rejects_change = true;
        struct natcheck *n = start(s, true);
        run(s, n);
        const struct natcheck_result *r = natcheck_result(n);
        CHECK_EQ_INT(r->filtering, NAT_FILTERING_UNKNOWN);
        CHECK_EQ_INT(r->mapping, NAT_MAPPING_ADDRESS_PORT_DEPENDENT);
        CHECK(strcmp(natcheck_type_string(r), "symmetric") == 0);
        CHECK_EQ_INT(s->n_sent, 4); /* I, filtering II (420), mapping II, mapping III */
        natcheck_free(n);
        free(s);
}

/* OTHER-ADDRESS advertised but its IP unreachable: filtering II times out, filtering III
 * (same IP, other port) answers, the mapping tests time out: mapping unknown. */
static void test_alternate_ip_dead(void) {
        struct sim *s = calloc(1, sizeof(*s));
        if (!s)
                abort();
        s->mapping = SIM_MAP_EI;
        s->filtering = SIM_FILTER_EI;
        s->server_rfc5780 = true;
        s->alt_ip_dead = true;
        struct natcheck *n = start(s, true);
        run(s, n);
        const struct natcheck_result *r = natcheck_result(n);
        CHECK_EQ_INT(r->filtering, NAT_FILTERING_ADDRESS_DEPENDENT);
        CHECK_EQ_INT(r->mapping, NAT_MAPPING_UNKNOWN);
        CHECK(strcmp(natcheck_type_string(r), "unknown") == 0);
        CHECK_EQ_INT(s->n_sent, 1 + 4 + 1 + 4);
        natcheck_free(n);
        free(s);
}

static void test_strings(void) {
        struct natcheck_result r = {.mapping = NAT_MAPPING_ENDPOINT_INDEPENDENT};
        CHECK(strcmp(natcheck_type_string(&r), "unknown") == 0);
        r.udp_blocked = true;
        CHECK(strcmp(natcheck_type_string(&r), "udp-blocked") == 0);
        CHECK(strcmp(natcheck_type_string(NULL), "unknown") == 0);
        CHECK(strcmp(nat_mapping_to_string(NAT_MAPPING_ADDRESS_PORT_DEPENDENT),
                     "address-and-port-dependent") == 0);
        CHECK(strcmp(nat_mapping_to_string(NAT_MAPPING_NO_NAT), "no-nat") == 0);
        CHECK(strcmp(nat_filtering_to_string(NAT_FILTERING_ADDRESS_DEPENDENT),
                     "address-dependent") == 0);
        CHECK(strcmp(nat_filtering_to_string((enum nat_filtering) 99), "unknown") == 0);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        test_combinations();
        test_no_nat_wildcard();
        test_no_other_address();
        test_public_only();
        test_udp_blocked();
        test_foreign_answers();
        test_change_request_rejected();
        test_alternate_ip_dead();
        test_strings();
        return test_summary();
}
