/* SPDX-License-Identifier: MIT */
#include <netdb.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "log.h"
#include "resolve.h"

/* Owned by the event loop. The worker touches it only until it signals efd, and the loop frees
 * it only after that signal, so sd-event objects are never touched from the worker. */
struct resolve_query {
        char *host;
        uint16_t port;
        int family;
        int efd;
        sd_event_source *source;
        resolve_callback_t callback;
        void *userdata;
        /* Written by the worker before it signals efd. */
        int r, gai_error;
        struct endpoint result;
};

static void query_free(struct resolve_query *q) {
        sd_event_source_disable_unref(q->source);
        safe_close(q->efd);
        free(q->host);
        free(q);
}

static void *worker(void *userdata) {
        struct resolve_query *q = userdata;
        uint64_t one = 1;

        q->r = udp_resolve(q->host, q->port, q->family, &q->result, &q->gai_error);
        (void) !write(q->efd, &one, sizeof(one)); /* last access to q */
        return NULL;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct resolve_query *q = userdata;
        resolve_callback_t cb = q->callback;

        q->callback = NULL;
        if (cb)
                cb(q, q->r, q->gai_error, q->r >= 0 ? &q->result : NULL, q->userdata);
        query_free(q);
        return 0;
}

int resolve_start(sd_event *event, const char *host, uint16_t port, int family,
                  resolve_callback_t callback, void *userdata, struct resolve_query **ret) {
        struct resolve_query *q;
        pthread_attr_t attr;
        pthread_t tid;
        sigset_t all, old;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->efd = -EBADF;
        q->host = strdup(host);
        q->port = port;
        q->family = family;
        q->callback = callback;
        q->userdata = userdata;
        if (!q->host) {
                query_free(q);
                return -ENOMEM;
        }
        q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->efd < 0) {
                r = -errno;
                query_free(q);
                return r;
        }
        r = sd_event_add_io(event, &q->source, q->efd, EPOLLIN, on_done, q);
        if (r < 0) {
                query_free(q);
                return r;
        }

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&tid, &attr, worker, q);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                query_free(q);
                return r;
        }
        *ret = q;
        return 0;
}

struct resolve_query *resolve_cancel(struct resolve_query *q) {
        /* The worker may still be running: let on_done free the query when it signals. */
        if (q)
                q->callback = NULL;
        return NULL;
}
