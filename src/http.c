/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd on sd-event (see http.h).
 *
 * Life of a request: MHD calls on_request once with the headers (we may answer at once: an
 * announced body over HTTP_BODY_MAX, a wrong Host, path or method), then with each piece of
 * the body, then once more with none. /connect then suspends the connection until the manager
 * calls the waiter (tunnel up, timeout, resolution failure, Disconnect) and resumes it; MHD
 * calls on_request again and the stored reply goes out. Nothing here blocks: the uid lookup is
 * one synchronous netlink exchange with the kernel, and the group check reads the local user
 * database (NSS), as sd-bus's credential checks do.
 */
#include <arpa/inet.h>
#include <grp.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "device.h"
#include "http-api.h"
#include "http.h"
#include "log.h"
#include "manager.h"
#include "sockdiag.h"

struct http_server {
        struct device *d;
        struct MHD_Daemon *mhd;
        sd_event_source *io, *timer;
        struct http_request *waiting; /* the /connect suspended until the manager answers */
};

struct http_request {
        struct http_server *server;
        struct MHD_Connection *connection;
        char body[HTTP_BODY_MAX];
        size_t body_len;
        bool body_too_large;
        bool checked_caller, may_mutate;
        bool suspended;
        struct manager_waiter waiter;
        char *peer;
        /* The answer a suspended /connect got. */
        unsigned status;
        char *reply;
};

static void request_free(struct http_request *req) {
        if (!req)
                return;
        if (req->server->waiting == req) {
                manager_forget_waiter(req->server->d, &req->waiter);
                req->server->waiting = NULL;
        }
        free(req->peer);
        free(req->reply);
        free(req);
}

static void schedule(struct http_server *s, uint64_t usec) {
        uint64_t now;

        if (sd_event_now(s->d->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        (void) sd_event_source_set_time(s->timer, now + usec);
        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

static unsigned connections(struct http_server *s) {
        const union MHD_DaemonInfo *info;

        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        return info ? info->num_connections : 0;
}

/* One round of MHD's work, then wake up again when MHD wants (a connection's timeout, or at
 * once when it still has ready connections). */
static void run(struct http_server *s) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;

        /* At HTTP_CONNECTION_LIMIT, MHD takes its listening socket out of its epoll set and
         * puts it back at the start of the next round once a connection has closed; with no
         * further event that round would never come and the queued clients would wait
         * forever. So a round that closed connections is followed by another. */
        for (unsigned i = 0; i < 3; i++) {
                unsigned before = connections(s);
                (void) MHD_run(s->mhd);
                if (connections(s) >= before)
                        break;
        }
        if (MHD_get_timeout(s->mhd, &timeout_ms) == MHD_YES)
                schedule(s, (uint64_t) timeout_ms * 1000);
        else
                (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        run(userdata);
        return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        run(userdata);
        return 0;
}

/* ---- replies ---- */

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *body,
                                 const char *allow) {
        struct MHD_Response *response;
        enum MHD_Result ret;

        if (!body)
                return MHD_NO; /* out of memory: close the connection */
        response = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!response) {
                free(body);
                return MHD_NO;
        }
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (allow)
                (void) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
        ret = MHD_queue_response(c, status, response);
        MHD_destroy_response(response);
        return ret;
}

static enum MHD_Result send_message(struct MHD_Connection *c, unsigned status, bool success,
                                    const char *fmt, ...) _printf_(4, 5);
static enum MHD_Result send_message(struct MHD_Connection *c, unsigned status, bool success,
                                    const char *fmt, ...) {
        char text[600];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        return send_json(c, status, http_api_message_json(success, text), NULL);
}

static enum MHD_Result send_status(struct http_server *s, struct MHD_Connection *c) {
        struct device *d = s->d;
        const struct config *cfg = d->config;
        char local_ip[INET6_ADDRSTRLEN + 8] = "", endpoint[ENDPOINT_STRLEN] = "";
        struct endpoint e;

        if (cfg->n_addresses > 0) {
                inet_ntop(cfg->addresses[0].family, &cfg->addresses[0].addr, local_ip,
                          sizeof(local_ip));
                snprintf(local_ip + strlen(local_ip), 8, "/%u", cfg->addresses[0].prefixlen);
        }
        /* A node that waited (no peer.address, no /connect) names the peer it learnt. */
        peer_get_endpoint(d->peer, &e);
        e.via_relay = false;
        if (e.len)
                endpoint_to_string(&e, endpoint);
        struct http_api_status status = {
                .state = tunnel_state_to_string(d->state),
                .tap_device = d->tap->name,
                .local_ip = local_ip,
                .peer_address = d->peer->address ? d->peer->address : endpoint,
        };
        return send_json(c, 200, http_api_status_json(&status), NULL);
}

/* ---- who is calling ---- */

static bool uid_in_group(uid_t uid, gid_t gid) {
        char buf[4096];
        struct passwd pw, *p = NULL;
        gid_t groups[256];
        int n = ELEMENTSOF(groups);

        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &p) != 0 || !p)
                return false;
        if (p->pw_gid == gid)
                return true;
        if (getgrouplist(p->pw_name, p->pw_gid, groups, &n) < 0)
                return false; /* more than 256 groups: not worth a second, bigger lookup */
        for (int i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

/* Root, or a member of daemon.control_group (resolved by bus.c at start, as for D-Bus). */
static bool caller_may_mutate(struct http_server *s, struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *fd_info, *addr_info;
        struct sockaddr_storage ours;
        socklen_t len = sizeof(ours);
        uid_t uid;
        int r;

        fd_info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        addr_info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!fd_info || !addr_info ||
            getsockname(fd_info->connect_fd, (struct sockaddr *) &ours, &len) < 0)
                return false;
        r = sockdiag_tcp_uid(addr_info->client_addr, (struct sockaddr *) &ours, &uid);
        if (r < 0) {
                log_debug_errno(r, "http: cannot find the client's uid: %m");
                return false;
        }
        if (uid == 0)
                return true;
        return s->d->has_control_gid && uid_in_group(uid, s->d->control_gid);
}

/* ---- /connect's wait ---- */

static void on_connect_done(struct manager_waiter *w, int error, const char *message) {
        struct http_request *req =
                (struct http_request *) ((char *) w - offsetof(struct http_request, waiter));
        struct http_server *s = req->server;
        char text[600];

        s->waiting = NULL;
        if (error < 0) {
                req->status = http_api_error_status(manager_error_name(error));
                req->reply = http_api_message_json(false, message);
        } else {
                snprintf(text, sizeof(text), "Connected to peer at %s",
                         s->d->peer->address ? s->d->peer->address : req->peer);
                req->status = 200;
                req->reply = http_api_message_json(true, text);
        }
        req->suspended = false;
        MHD_resume_connection(req->connection);
        schedule(s, 0);
}

static enum MHD_Result start_connect(struct http_server *s, struct http_request *req,
                                     uint32_t timeout_sec) {
        struct manager_error error;
        int r;

        req->waiter.done = on_connect_done;
        r = manager_connect(s->d,
                            &(const struct manager_connect_request){
                                    .peer = req->peer,
                                    .timeout_sec = timeout_sec,
                            },
                            &req->waiter, &error);
        if (r < 0)
                return send_message(req->connection, http_api_error_status(manager_error_name(r)),
                                    false, "%s", error.message);
        log_debug("http: connect to %s requested", req->peer); /* manager.c logs it at info */
        s->waiting = req;
        req->suspended = true;
        MHD_suspend_connection(req->connection);
        return MHD_YES;
}

static enum MHD_Result answer(struct http_server *s, struct http_request *req, const char *method,
                              const char *url) {
        struct MHD_Connection *c = req->connection;
        const struct config *cfg = s->d->config;
        struct http_api_reply reply = {};
        struct manager_error error;
        int r;
        uint32_t timeout_sec = 0;
        char *peer = NULL;

        if (strcmp(method, "POST") == 0 && !req->checked_caller) {
                req->may_mutate = caller_may_mutate(s, c);
                req->checked_caller = true;
        }
        struct http_api_request api = {
                .method = method,
                .path = url,
                .host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
                .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                            MHD_HTTP_HEADER_CONTENT_TYPE),
                .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN),
                .body = req->body,
                .body_len = req->body_len,
                .body_too_large = req->body_too_large,
                .may_mutate = req->may_mutate,
                .listen_host = cfg->control_host,
                .listen_port = cfg->control_port,
                .control_group = cfg->control_group,
        };
        switch (http_api_route(&api, &reply, &peer, &timeout_sec)) {
        case HTTP_API_REPLY:
                log_debug("http: %s %.64s: %u", method, url, reply.status);
                return send_json(c, reply.status, reply.body, reply.allow);
        case HTTP_API_CONNECT:
                req->peer = peer;
                return start_connect(s, req, timeout_sec);
        case HTTP_API_STATUS:
                return send_status(s, c);
        case HTTP_API_DISCONNECT:
                r = manager_disconnect(s->d, &error);
                if (r < 0)
                        return send_message(c, http_api_error_status(manager_error_name(r)), false,
                                            "%s", error.message);
                return send_message(c, 200, true, "Disconnected from peer");
        case HTTP_API_HEALTH:
                return send_message(c, 200, true, "healthy");
        }
        return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
        struct http_server *s = cls;
        struct http_request *req = *con_cls;

        if (!req) {
                const char *length;

                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->server = s;
                req->connection = c;
                *con_cls = req;
                /* An announced body too big is answered before it is read (the connection
                 * is then closed, the body never read). */
                length = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (length && strtoull(length, NULL, 10) > HTTP_BODY_MAX) {
                        req->body_too_large = true;
                        return answer(s, req, method, url);
                }
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (*upload_data_size > sizeof(req->body) - req->body_len)
                        return MHD_NO; /* chunked past the limit: close, read no more */
                memcpy(req->body + req->body_len, upload_data, *upload_data_size);
                req->body_len += *upload_data_size;
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (req->reply) /* resumed: the manager's answer */
                return send_json(c, req->status, TAKE_PTR(req->reply), NULL);
        if (req->suspended)
                return MHD_YES;
        return answer(s, req, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        request_free(*con_cls);
        *con_cls = NULL;
}

_printf_(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char text[256];

        vsnprintf(text, sizeof(text), fmt, ap);
        text[strcspn(text, "\n")] = 0;
        log_debug("http: %s", text);
}

/* ---- life cycle ---- */

static int open_listener(const char *host, uint16_t port, int *ret_fd, int *ret_family) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } a = {};
        socklen_t len;
        _cleanup_close_ int fd = -EBADF;
        int one = 1;

        if (inet_pton(AF_INET, host, &a.in.sin_addr) == 1) {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(port);
                len = sizeof(a.in);
        } else if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) == 1) {
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                len = sizeof(a.in6);
        } else
                return -EINVAL; /* config.c admits loopback literals only */

        fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, &a.sa, len) < 0 || listen(fd, HTTP_CONNECTION_LIMIT) < 0)
                return -errno;
        *ret_family = a.sa.sa_family;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int http_start(struct device *d) {
        const struct config *cfg = d->config;
        const union MHD_DaemonInfo *info;
        struct http_server *s;
        int fd = -EBADF, family = AF_UNSPEC, r;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

        if (!cfg->control_host)
                return 0;
        r = open_listener(cfg->control_host, cfg->control_port, &fd, &family);
        if (r == -EADDRINUSE)
                return log_error_errno(r,
                                       "%s: daemon.listen_address %s port %u is already in "
                                       "use (another shadowmeshd, or the prototype?)",
                                       cfg->path, cfg->control_host, cfg->control_port);
        if (r < 0)
                return log_error_errno(r, "%s: cannot listen on daemon.listen_address %s:%u: %m",
                                       cfg->path, cfg->control_host, cfg->control_port);
        s = calloc(1, sizeof(*s));
        if (!s) {
                safe_close(fd);
                return log_error_errno(ENOMEM, "out of memory");
        }
        s->d = d;
        d->http = s;
        if (family == AF_INET6)
                flags |= MHD_USE_IPv6;
        /* MHD owns fd from here on and closes it in MHD_stop_daemon. */
        s->mhd = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                s, /* first, or MHD logs to stderr */
                MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                (unsigned) HTTP_CONNECTION_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                (unsigned) HTTP_PER_IP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                (unsigned) HTTP_CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                (size_t) HTTP_CONNECTION_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT, 1,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
        if (!s->mhd) {
                safe_close(fd);
                http_stop(d);
                return log_error_errno(EINVAL, "cannot start the HTTP API on %s:%u",
                                       cfg->control_host, cfg->control_port);
        }
        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                http_stop(d);
                return log_error_errno(EINVAL, "the HTTP library has no epoll fd");
        }
        r = sd_event_add_io(d->event, &s->io, info->epoll_fd, EPOLLIN, on_io, s);
        if (r >= 0)
                r = sd_event_add_time(d->event, &s->timer, CLOCK_MONOTONIC, 0, 0, on_timer, s);
        if (r < 0) {
                http_stop(d);
                return log_error_errno(r, "adding the HTTP API to the event loop: %m");
        }
        run(s);
        log_info("HTTP API on http://%s%s%s:%u/ (connect, status, disconnect, health)",
                 family == AF_INET6 ? "[" : "", cfg->control_host, family == AF_INET6 ? "]" : "",
                 cfg->control_port);
        return 0;
}

void http_stop(struct device *d) {
        struct http_server *s = d->http;

        if (!s)
                return;
        /* MHD may not stop with a suspended connection: hand the waiting /connect its last
         * answer and give MHD a few rounds to send it. */
        if (s->waiting) {
                struct http_request *req = s->waiting;
                manager_forget_waiter(d, &req->waiter);
                req->waiter.done(&req->waiter, -ECANCELED, "The daemon is shutting down");
                req->status = 503;
        }
        if (s->mhd) {
                for (int i = 0; i < 3; i++)
                        (void) MHD_run(s->mhd);
                MHD_stop_daemon(s->mhd);
        }
        s->io = sd_event_source_disable_unref(s->io);
        s->timer = sd_event_source_disable_unref(s->timer);
        free(s);
        d->http = NULL;
}
