/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API's request handling (http-api.c) on arbitrary requests, as libmicrohttpd hands
 * them over. An input is
 *
 *   one flag byte: bit 0 the caller may mutate, 1 the body was too large, 2 no Host header,
 *                  3 no Content-Type, 4 an Origin header, 5 the API listens on ::1
 *   method \n path \n Host \n Content-Type \n Origin \n body (the rest, any bytes)
 *
 * Every request must get either a call or an error reply whose body is valid JSON of the
 * prototype's envelope ({"status":"error","message":...}) with a 4xx/5xx code (405 with an
 * Allow header); a call must be allowed by the rules it passed (Host, method, authorisation,
 * Origin, Content-Type, size). The fields of a request then feed the status and message JSON
 * writers, which must never produce anything but valid JSON (or NULL for bytes that are not
 * UTF-8, which the daemon never passes them).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-api.h"
#include "shadowmesh/bus-api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next \n-terminated field, NUL-terminated in place. */
static char *field(char **p, char *end) {
        char *start = *p, *nl;

        if (start >= end)
                return start; /* the empty string at the terminating NUL */
        nl = memchr(start, '\n', (size_t) (end - start));
        if (!nl)
                nl = end;
        *nl = 0;
        *p = nl < end ? nl + 1 : end;
        return start;
}

static void check_json(const char *text, const char *want_status) {
        json_t *o, *status, *message;

        if (!text)
                abort();
        o = json_loads(text, 0, NULL);
        if (!o)
                abort();
        status = json_object_get(o, "status");
        message = json_object_get(o, "message");
        if (!json_is_string(status) || strcmp(json_string_value(status), want_status) != 0 ||
            !json_is_string(message) || json_object_size(o) != 2)
                abort();
        json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct http_api_reply reply = {};
        uint32_t timeout_sec = 0;
        char *peer = NULL, *buf, *p, *end;
        uint8_t flags;

        if (size < 1)
                return 0;
        flags = data[0];
        buf = malloc(size); /* size - 1 bytes and a NUL */
        if (!buf)
                return 0;
        memcpy(buf, data + 1, size - 1);
        buf[size - 1] = 0;
        p = buf;
        end = buf + size - 1;

        struct http_api_request req = {
                .method = field(&p, end),
                .path = field(&p, end),
                .host = field(&p, end),
                .content_type = field(&p, end),
                .origin = field(&p, end),
                .may_mutate = flags & 1,
                .body_too_large = flags & 2,
                .listen_host = flags & 32 ? "::1" : "127.0.0.1",
                .listen_port = 9090,
                .control_group = "netdev",
        };
        if (flags & 4)
                req.host = NULL;
        if (flags & 8)
                req.content_type = NULL;
        if (!(flags & 16))
                req.origin = NULL;
        req.body = p;
        req.body_len = (size_t) (end - p);

        enum http_api_call call = http_api_route(&req, &reply, &peer, &timeout_sec);
        bool host_ok = http_api_host_ok(req.host, req.listen_host, req.listen_port);
        switch (call) {
        case HTTP_API_REPLY:
                if (reply.status < 400 || reply.status > 599 || peer)
                        abort();
                if ((reply.status == 405) != (reply.allow != NULL))
                        abort();
                check_json(reply.body, "error");
                free(reply.body);
                break;
        case HTTP_API_CONNECT:
                if (!host_ok || strcmp(req.method, "POST") != 0 ||
                    strcmp(req.path, "/connect") != 0 || !req.may_mutate || req.origin ||
                    req.body_too_large || req.body_len > HTTP_BODY_MAX || !req.content_type ||
                    !peer || !*peer || strlen(peer) > HTTP_PEER_ADDRESS_MAX || timeout_sec < 1 ||
                    timeout_sec > CONNECT_TIMEOUT_MAX_SEC)
                        abort();
                free(peer);
                break;
        case HTTP_API_DISCONNECT:
                if (!host_ok || strcmp(req.method, "POST") != 0 ||
                    strcmp(req.path, "/disconnect") != 0 || !req.may_mutate || req.origin ||
                    req.body_too_large || req.body_len > HTTP_BODY_MAX ||
                    ((req.content_type || req.body_len) && !req.content_type))
                        abort();
                break;
        case HTTP_API_STATUS:
        case HTTP_API_HEALTH:
                if (!host_ok || (strcmp(req.method, "GET") != 0 && strcmp(req.method, "HEAD") != 0))
                        abort();
                break;
        default:
                abort();
        }

        /* The writers: any bytes become a valid envelope (they are made printable ASCII). */
        char *text = http_api_message_json(false, req.body);
        check_json(text, "error");
        free(text);
        struct http_api_status st = {
                .state = req.method,
                .tap_device = req.path,
                .local_ip = req.content_type ? req.content_type : "",
                .peer_address = req.body,
        };
        text = http_api_status_json(&st);
        if (text) {
                json_t *o = json_loads(text, 0, NULL);
                if (!o)
                        abort();
                json_decref(o);
                free(text);
        }
        (void) http_api_error_status(req.path);
        free(buf);
        return 0;
}
