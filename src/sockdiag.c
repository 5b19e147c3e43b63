/* SPDX-License-Identifier: MIT */
/*
 * One SOCK_DIAG_BY_FAMILY request for one exact 4-tuple (see sockdiag.h). The kernel finds the
 * socket with the same hash lookup it uses for an incoming segment (inet_diag_find_one_icsk),
 * so idiag_src/sport is the socket's own side and idiag_dst/dport its peer; the cookie is left
 * as INET_DIAG_NOCOOKIE, so any socket with that 4-tuple matches. The reply's idiag_uid is the
 * uid that created the socket (sock_i_uid), exactly what `ss -e` prints as uid:.
 */
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>

#include "sockdiag.h"
#include "util.h"

/* A reply to one exact lookup is one inet_diag_msg with no attributes requested. */
enum { SOCKDIAG_BUFFER_SIZE = 8192 };

struct lookup {
        uint32_t seq, portid;
        uid_t uid;
        bool found;
};

static int on_message(const struct nlmsghdr *nlh, void *data) {
        struct lookup *l = data;
        const struct inet_diag_msg *msg;

        if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY || mnl_nlmsg_get_payload_len(nlh) < sizeof(*msg))
                return MNL_CB_OK;
        msg = mnl_nlmsg_get_payload(nlh);
        l->uid = msg->idiag_uid;
        l->found = true;
        return MNL_CB_OK;
}

static int fill_id(struct inet_diag_req_v2 *req, const struct sockaddr *local,
                   const struct sockaddr *remote) {
        if (local->sa_family != remote->sa_family)
                return -EAFNOSUPPORT;
        if (local->sa_family == AF_INET) {
                const struct sockaddr_in *l = (const void *) local, *r = (const void *) remote;
                req->id.idiag_sport = l->sin_port;
                req->id.idiag_dport = r->sin_port;
                memcpy(req->id.idiag_src, &l->sin_addr, sizeof(l->sin_addr));
                memcpy(req->id.idiag_dst, &r->sin_addr, sizeof(r->sin_addr));
        } else if (local->sa_family == AF_INET6) {
                const struct sockaddr_in6 *l = (const void *) local, *r = (const void *) remote;
                req->id.idiag_sport = l->sin6_port;
                req->id.idiag_dport = r->sin6_port;
                memcpy(req->id.idiag_src, &l->sin6_addr, sizeof(l->sin6_addr));
                memcpy(req->id.idiag_dst, &r->sin6_addr, sizeof(r->sin6_addr));
        } else
                return -EAFNOSUPPORT;
        req->sdiag_family = (uint8_t) local->sa_family;
        return 0;
}

static void mnl_socket_closep(struct mnl_socket **s) {
        if (*s)
                mnl_socket_close(*s);
}

int sockdiag_tcp_uid(const struct sockaddr *local, const struct sockaddr *remote, uid_t *ret_uid) {
        _cleanup_(mnl_socket_closep) struct mnl_socket *sock = NULL;
        uint8_t buf[SOCKDIAG_BUFFER_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
        struct lookup l = {.seq = (uint32_t) time(NULL)};
        struct inet_diag_req_v2 *req;
        struct nlmsghdr *nlh;
        ssize_t n;
        int r;

        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
        nlh->nlmsg_flags = NLM_F_REQUEST;
        nlh->nlmsg_seq = l.seq;
        req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
        req->sdiag_protocol = IPPROTO_TCP;
        req->idiag_states = ~0u;
        req->id.idiag_cookie[0] = req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
        r = fill_id(req, local, remote);
        if (r < 0)
                return r;

        sock = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
        if (!sock)
                return -errno;
        if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0)
                return -errno;
        l.portid = mnl_socket_get_portid(sock);
        if (mnl_socket_sendto(sock, nlh, nlh->nlmsg_len) < 0)
                return -errno;
        /* The kernel answers an exact lookup synchronously: the reply (or the error) is queued
         * on our socket before sendto returns, so this read does not wait. */
        for (;;) {
                n = mnl_socket_recvfrom(sock, buf, sizeof(buf));
                if (n < 0)
                        return -errno;
                r = mnl_cb_run(buf, (size_t) n, l.seq, l.portid, on_message, &l);
                if (r < 0)
                        return -errno; /* NLMSG_ERROR: ENOENT when there is no such socket */
                if (l.found || r == MNL_CB_STOP)
                        break;
        }
        if (!l.found)
                return -ENOENT;
        *ret_uid = l.uid;
        return 0;
}
