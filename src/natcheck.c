/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour discovery (RFC 5780) as a state machine over the stun.h codec.
 *
 * Order of the tests. RFC 5780 describes the mapping tests (4.3) before the filtering tests
 * (4.4), but on one socket the mapping tests would open the very filters the filtering tests
 * probe: mapping test II sends to OTHER-ADDRESS's IP, after which an address-dependent filter
 * lets filtering test II's answer (from that IP) through, and a restricted cone would look like
 * a full cone. So after test I we run the filtering tests, which only ever send to the primary
 * address, and the mapping tests last:
 *
 *   TEST_I      -> server                          answer: public endpoint, OTHER-ADDRESS
 *   FILTER_II   -> server, CHANGE-REQUEST ip+port  answer expected from OTHER-ADDRESS
 *   FILTER_III  -> server, CHANGE-REQUEST port     answer expected from server IP, other port
 *   MAP_II      -> OTHER-ADDRESS's IP, server port
 *   MAP_III     -> OTHER-ADDRESS
 *
 * Every test is one STUN transaction (its own transaction id) retransmitted as RFC 8489 section
 * 6.2.1 says: requests at 0, RTO, 3 RTO, 7 RTO, ... (RTO doubling after each), at most
 * NATCHECK_RC of them, then NATCHECK_RM * RTO (the initial RTO) of waiting before the
 * transaction has failed. A failed filtering test is a result (the filter dropped the answer);
 * a failed test I means UDP is blocked. Responses count only when their transaction id is the
 * running test's and they come from the address that test expects.
 */
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "natcheck.h"
#include "util.h"

enum {
        /* Hard cap on the interface addresses compared with the mapped address. */
        NATCHECK_MAX_LOCAL_ADDRESSES = 64,
};

enum natcheck_step {
        STEP_TEST_I,
        STEP_FILTER_II,
        STEP_FILTER_III,
        STEP_MAP_II,
        STEP_MAP_III,
        STEP_DONE,
        _STEP_MAX,
};

struct natcheck {
        struct sockaddr_storage server;
        struct sockaddr_storage local; /* AF_UNSPEC when unknown */
        struct sockaddr_storage local_addresses[NATCHECK_MAX_LOCAL_ADDRESSES];
        size_t n_local_addresses;
        bool full;

        struct sockaddr_storage other; /* OTHER-ADDRESS, valid once server_supports_rfc5780 */
        struct sockaddr_storage mapped_map_ii;

        enum natcheck_step step;
        /* Transaction id of every test started so far: late answers to finished tests are
         * recognised as ours and dropped. */
        uint8_t tid[_STEP_MAX][STUN_TRANSACTION_ID_LEN];
        bool tid_used[_STEP_MAX];

        /* The running transaction. */
        struct sockaddr_storage dst;    /* where the requests go */
        struct sockaddr_storage expect; /* where the answer must come from */
        uint32_t change_flags;
        unsigned sent;
        uint64_t rto_ns;
        uint64_t next_ns; /* next request, or after the last one the end of the final wait */
        uint64_t last_sent_ns;

        struct natcheck_result result;
};

static socklen_t sockaddr_len(const struct sockaddr_storage *ss) {
        switch (ss->ss_family) {
        case AF_INET:
                return sizeof(struct sockaddr_in);
        case AF_INET6:
                return sizeof(struct sockaddr_in6);
        default:
                return 0;
        }
}

/* Copy a caller's address, turning an IPv4-mapped IPv6 address (a dual-stack socket's view of
 * an IPv4 peer) into plain IPv4 so comparisons see one form. */
static int sockaddr_import(const struct sockaddr *sa, socklen_t len, struct sockaddr_storage *ret) {
        struct sockaddr_storage ss = {};

        if (!sa)
                return -EINVAL;
        if (sa->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
                memcpy(&ss, sa, sizeof(struct sockaddr_in));
        } else if (sa->sa_family == AF_INET6 && len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

                if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
                        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

                        sin->sin_family = AF_INET;
                        sin->sin_port = sin6->sin6_port;
                        memcpy(&sin->sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
                } else
                        memcpy(&ss, sa, sizeof(struct sockaddr_in6));
        } else
                return -EAFNOSUPPORT;
        *ret = ss;
        return 0;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss) {
        if (ss->ss_family == AF_INET)
                return ntohs(((const struct sockaddr_in *) ss)->sin_port);
        if (ss->ss_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
        return 0;
}

static void sockaddr_set_port(struct sockaddr_storage *ss, uint16_t port) {
        if (ss->ss_family == AF_INET)
                ((struct sockaddr_in *) ss)->sin_port = htons(port);
        else if (ss->ss_family == AF_INET6)
                ((struct sockaddr_in6 *) ss)->sin6_port = htons(port);
}

static bool sockaddr_ip_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
        if (a->ss_family != b->ss_family)
                return false;
        if (a->ss_family == AF_INET)
                return memcmp(&((const struct sockaddr_in *) a)->sin_addr,
                              &((const struct sockaddr_in *) b)->sin_addr, 4) == 0;
        if (a->ss_family == AF_INET6)
                return memcmp(&((const struct sockaddr_in6 *) a)->sin6_addr,
                              &((const struct sockaddr_in6 *) b)->sin6_addr, 16) == 0;
        return false;
}

static bool sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
        return sockaddr_ip_equal(a, b) && sockaddr_port(a) == sockaddr_port(b);
}

static bool sockaddr_is_wildcard(const struct sockaddr_storage *ss) {
        if (ss->ss_family == AF_INET)
                return ((const struct sockaddr_in *) ss)->sin_addr.s_addr == htonl(INADDR_ANY);
        if (ss->ss_family == AF_INET6)
                return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *) ss)->sin6_addr);
        return true;
}

struct natcheck *natcheck_free(struct natcheck *n) {
        free(n);
        return NULL;
}

void natcheck_add_local_address(struct natcheck *n, const struct sockaddr *sa, socklen_t len) {
        struct sockaddr_storage ss;

        if (!n || n->n_local_addresses >= NATCHECK_MAX_LOCAL_ADDRESSES)
                return;
        if (sockaddr_import(sa, len, &ss) < 0)
                return;
        n->local_addresses[n->n_local_addresses++] = ss;
}

/* Is the mapped address one of ours? Then nothing translated it. */
static bool mapped_is_local(const struct natcheck *n, const struct sockaddr_storage *mapped) {
        uint16_t local_port = sockaddr_port(&n->local);

        if (n->local.ss_family != AF_UNSPEC && !sockaddr_is_wildcard(&n->local))
                return sockaddr_equal(&n->local, mapped);

        /* A wildcard-bound socket: the IP must be an interface's and, when the socket's port is
         * known, the port must be unchanged too. */
        if (local_port != 0 && local_port != sockaddr_port(mapped))
                return false;
        for (size_t i = 0; i < n->n_local_addresses; i++)
                if (sockaddr_ip_equal(&n->local_addresses[i], mapped))
                        return true;
        return false;
}

static void step_start(struct natcheck *n, enum natcheck_step step, uint64_t now_ns) {
        n->step = step;
        if (step == STEP_DONE)
                return;

        n->change_flags = 0;
        switch (step) {
        case STEP_FILTER_II:
                n->dst = n->server;
                n->expect = n->other;
                n->change_flags = STUN_CHANGE_IP | STUN_CHANGE_PORT;
                break;
        case STEP_FILTER_III:
                n->dst = n->server;
                n->expect = n->server;
                sockaddr_set_port(&n->expect, sockaddr_port(&n->other));
                n->change_flags = STUN_CHANGE_PORT;
                break;
        case STEP_MAP_II:
                n->dst = n->other;
                sockaddr_set_port(&n->dst, sockaddr_port(&n->server));
                n->expect = n->dst;
                break;
        case STEP_MAP_III:
                n->dst = n->other;
                n->expect = n->other;
                break;
        default:
                n->dst = n->server;
                n->expect = n->server;
                break;
        }
        randombytes_buf(n->tid[step], STUN_TRANSACTION_ID_LEN);
        n->tid_used[step] = true;
        n->sent = 0;
        n->rto_ns = NATCHECK_RTO_MS * NSEC_PER_MSEC;
        n->next_ns = now_ns;
}

int natcheck_new(const struct sockaddr *server, socklen_t server_len, const struct sockaddr *local,
                 socklen_t local_len, bool full, uint64_t now_ns, struct natcheck **ret) {
        struct natcheck *n;
        struct sockaddr_storage srv, loc = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = sockaddr_import(server, server_len, &srv);
        if (r < 0)
                return r;
        if (sockaddr_port(&srv) == 0 || sockaddr_is_wildcard(&srv))
                return -EINVAL;
        if (local) {
                r = sockaddr_import(local, local_len, &loc);
                if (r < 0)
                        return r;
        }

        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->server = srv;
        n->local = loc;
        n->full = full;
        /* Test I: to the primary address, answered from it. */
        step_start(n, STEP_TEST_I, now_ns);

        *ret = n;
        return 0;
}

/* After the filtering tests: the mapping tests, unless there is no NAT to map. */
static enum natcheck_step after_filtering(const struct natcheck *n) {
        return n->result.mapping == NAT_MAPPING_NO_NAT ? STEP_DONE : STEP_MAP_II;
}

/* The running test failed: no (usable) answer within the retransmission schedule. */
static void step_failed(struct natcheck *n, uint64_t now_ns) {
        switch (n->step) {
        case STEP_TEST_I:
                n->result.udp_blocked = true;
                step_start(n, STEP_DONE, now_ns);
                break;
        case STEP_FILTER_II:
                step_start(n, STEP_FILTER_III, now_ns);
                break;
        case STEP_FILTER_III:
                n->result.filtering = NAT_FILTERING_ADDRESS_PORT_DEPENDENT;
                step_start(n, after_filtering(n), now_ns);
                break;
        case STEP_MAP_II:
        case STEP_MAP_III:
                /* The alternate address does not answer: the mapping stays unknown. */
                n->result.mapping = NAT_MAPPING_UNKNOWN;
                step_start(n, STEP_DONE, now_ns);
                break;
        default:
                break;
        }
}

/* A server error answer ends the test: the server cannot do what we asked (e.g. 420 for a
 * CHANGE-REQUEST it does not support), so the property stays unknown. */
static void step_error(struct natcheck *n, uint64_t now_ns) {
        switch (n->step) {
        case STEP_FILTER_II:
        case STEP_FILTER_III:
                n->result.filtering = NAT_FILTERING_UNKNOWN;
                step_start(n, after_filtering(n), now_ns);
                break;
        default:
                n->result.mapping = n->result.mapping == NAT_MAPPING_NO_NAT ? NAT_MAPPING_NO_NAT
                                                                            : NAT_MAPPING_UNKNOWN;
                step_start(n, STEP_DONE, now_ns);
                break;
        }
}

static void test_i_answered(struct natcheck *n, const struct stun_message *m, uint64_t now_ns) {
        struct sockaddr_storage other;

        n->result.has_public = true;
        n->result.public_endpoint = m->mapped;
        /* Karn: with retransmissions the answer may belong to any request; the last one gives
         * the lower bound, which is the safer figure for timers derived from it. */
        n->result.rtt_ns = now_ns - n->last_sent_ns;
        if (mapped_is_local(n, &m->mapped))
                n->result.mapping = NAT_MAPPING_NO_NAT;

        /* The tests of RFC 5780 sections 4.3 and 4.4 need an alternate IP and an alternate
         * port; same family, as they reuse this socket. */
        if (m->has_other_address &&
            sockaddr_import((const struct sockaddr *) &m->other_address,
                            sockaddr_len(&m->other_address), &other) == 0 &&
            other.ss_family == n->server.ss_family && !sockaddr_ip_equal(&other, &n->server) &&
            sockaddr_port(&other) != sockaddr_port(&n->server) && sockaddr_port(&other) != 0 &&
            !sockaddr_is_wildcard(&other)) {
                n->other = other;
                n->result.server_supports_rfc5780 = true;
        }

        if (!n->full || !n->result.server_supports_rfc5780)
                step_start(n, STEP_DONE, now_ns);
        else
                step_start(n, STEP_FILTER_II, now_ns);
}

static void step_answered(struct natcheck *n, const struct stun_message *m, uint64_t now_ns) {
        switch (n->step) {
        case STEP_TEST_I:
                test_i_answered(n, m, now_ns);
                break;
        case STEP_FILTER_II:
                n->result.filtering = NAT_FILTERING_ENDPOINT_INDEPENDENT;
                step_start(n, after_filtering(n), now_ns);
                break;
        case STEP_FILTER_III:
                n->result.filtering = NAT_FILTERING_ADDRESS_DEPENDENT;
                step_start(n, after_filtering(n), now_ns);
                break;
        case STEP_MAP_II:
                if (sockaddr_equal(&m->mapped, &n->result.public_endpoint)) {
                        n->result.mapping = NAT_MAPPING_ENDPOINT_INDEPENDENT;
                        step_start(n, STEP_DONE, now_ns);
                } else {
                        n->mapped_map_ii = m->mapped;
                        step_start(n, STEP_MAP_III, now_ns);
                }
                break;
        case STEP_MAP_III:
                n->result.mapping = sockaddr_equal(&m->mapped, &n->mapped_map_ii)
                                            ? NAT_MAPPING_ADDRESS_DEPENDENT
                                            : NAT_MAPPING_ADDRESS_PORT_DEPENDENT;
                step_start(n, STEP_DONE, now_ns);
                break;
        default:
                break;
        }
}

int natcheck_next_packet(struct natcheck *n, uint64_t now_ns, uint8_t *buf, size_t max,
                         struct sockaddr_storage *dst, socklen_t *dst_len) {
        int r;

        if (!n || !buf || !dst || !dst_len)
                return -EINVAL;

        /* A failed test starts the next one at once, whose first request is then due. */
        while (n->step != STEP_DONE && now_ns >= n->next_ns && n->sent >= NATCHECK_RC)
                step_failed(n, now_ns);
        if (n->step == STEP_DONE || now_ns < n->next_ns)
                return 0;

        r = stun_build_binding_request(buf, max, n->tid[n->step], n->change_flags);
        if (r < 0)
                return r;

        n->sent++;
        n->last_sent_ns = now_ns;
        if (n->sent < NATCHECK_RC) {
                n->next_ns = now_ns + n->rto_ns;
                n->rto_ns *= 2;
        } else
                n->next_ns = now_ns + (uint64_t) NATCHECK_RM * NATCHECK_RTO_MS * NSEC_PER_MSEC;

        *dst = n->dst;
        *dst_len = sockaddr_len(&n->dst);
        return r;
}

uint64_t natcheck_next_timeout(const struct natcheck *n) {
        if (!n || n->step == STEP_DONE)
                return UINT64_MAX;
        return n->next_ns;
}

bool natcheck_input(struct natcheck *n, const uint8_t *buf, size_t len, const struct sockaddr *from,
                    socklen_t from_len, uint64_t now_ns) {
        struct stun_message m;
        struct sockaddr_storage src;
        int step = -1;

        if (!n || !buf)
                return false;
        if (stun_parse(buf, len, &m) < 0)
                return false;
        if (m.type != STUN_BINDING_SUCCESS && m.type != STUN_BINDING_ERROR)
                return false;
        for (int i = 0; i < _STEP_MAX; i++)
                if (n->tid_used[i] &&
                    memcmp(n->tid[i], m.transaction_id, STUN_TRANSACTION_ID_LEN) == 0) {
                        step = i;
                        break;
                }
        if (step < 0)
                return false;

        /* Ours, but late (a finished test) or a duplicate: nothing left to learn from it. */
        if ((enum natcheck_step) step != n->step || n->sent == 0)
                return true;
        if (sockaddr_import(from, from_len, &src) < 0)
                return false;
        /* An error answer (420 for a CHANGE-REQUEST the server cannot honour) comes from where
         * the request went, whatever CHANGE-REQUEST asked for. */
        if (!sockaddr_equal(&src, &n->expect) &&
            !(m.type == STUN_BINDING_ERROR && sockaddr_equal(&src, &n->dst)))
                return false;

        if (m.type == STUN_BINDING_ERROR) {
                step_error(n, now_ns);
                return true;
        }
        /* RFC 8489 section 6.3.3 discards a success answer with unknown comprehension-required
         * attributes; so do we with one that lacks the mapped address. The retransmissions go
         * on: the test fails at the end of the schedule unless a usable answer comes. */
        if (m.unknown_required || !m.has_mapped)
                return true;
        step_answered(n, &m, now_ns);
        return true;
}

bool natcheck_done(const struct natcheck *n) {
        return !n || n->step == STEP_DONE;
}

const struct natcheck_result *natcheck_result(const struct natcheck *n) {
        return n ? &n->result : NULL;
}

const char *natcheck_type_string(const struct natcheck_result *r) {
        if (!r)
                return "unknown";
        if (r->udp_blocked)
                return "udp-blocked";
        switch (r->mapping) {
        case NAT_MAPPING_NO_NAT:
                return "no-nat";
        case NAT_MAPPING_ADDRESS_DEPENDENT:
        case NAT_MAPPING_ADDRESS_PORT_DEPENDENT:
                return "symmetric";
        case NAT_MAPPING_ENDPOINT_INDEPENDENT:
                switch (r->filtering) {
                case NAT_FILTERING_ENDPOINT_INDEPENDENT:
                        return "full-cone";
                case NAT_FILTERING_ADDRESS_DEPENDENT:
                        return "restricted-cone";
                case NAT_FILTERING_ADDRESS_PORT_DEPENDENT:
                        return "port-restricted-cone";
                default:
                        return "unknown";
                }
        default:
                return "unknown";
        }
}

const char *nat_mapping_to_string(enum nat_mapping m) {
        switch (m) {
        case NAT_MAPPING_NO_NAT:
                return "no-nat";
        case NAT_MAPPING_ENDPOINT_INDEPENDENT:
                return "endpoint-independent";
        case NAT_MAPPING_ADDRESS_DEPENDENT:
                return "address-dependent";
        case NAT_MAPPING_ADDRESS_PORT_DEPENDENT:
                return "address-and-port-dependent";
        default:
                return "unknown";
        }
}

const char *nat_filtering_to_string(enum nat_filtering f) {
        switch (f) {
        case NAT_FILTERING_ENDPOINT_INDEPENDENT:
                return "endpoint-independent";
        case NAT_FILTERING_ADDRESS_DEPENDENT:
                return "address-dependent";
        case NAT_FILTERING_ADDRESS_PORT_DEPENDENT:
                return "address-and-port-dependent";
        default:
                return "unknown";
        }
}
