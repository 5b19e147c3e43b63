/* SPDX-License-Identifier: MIT */
/*
 * The Go prototype's HTTP control API, as pure functions: a request's method, path, headers and
 * body in; either the call to make (connect, status, disconnect, health) or an error reply out;
 * and the JSON of every reply. No sockets, no clocks, no daemon state, so that fuzz-http drives
 * exactly what a client reaches. http.c is the libmicrohttpd glue around it.
 *
 *   POST /connect {"peer_address": "host:port"}
 *        -> {"status":"success","message":"Connected to peer at host:port"}
 *   GET /status -> {"status":"success","state":"Connected","details":{...}}
 *   POST /disconnect -> {"status":"success","message":"Disconnected from peer"}
 *   GET /health -> {"status":"success","message":"healthy"}
 *   errors: {"status":"error","message":"..."} with a 4xx/5xx code.
 *
 * Checks, in this order: Host (DNS rebinding: 400 without one, 421 when it names anything but
 * the loopback address and port we serve), path (404), method (405 with Allow; OPTIONS too, so
 * a CORS preflight fails), then for POST: authorisation (403), no Origin header (403: a web
 * page's request, which may carry no body and no Content-Type at all), Content-Type
 * application/json whenever there is a body or a Content-Type (415; the prototype's body-less
 * `curl -X POST .../disconnect` sends neither), body size (413), JSON and its fields (400).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The API's limits (src/messages.h's limits enum points here). */
enum http_limits {
        HTTP_BODY_MAX = 4096,             /* bytes of a request body; 413 beyond */
        HTTP_CONNECTION_LIMIT = 16,       /* concurrent connections, all clients together */
        HTTP_PER_IP_CONNECTION_LIMIT = 8, /* ... from one address (127.0.0.1 is every local user) */
        HTTP_CONNECTION_TIMEOUT = 10,     /* s: an idle or slow connection is closed */
        HTTP_CONNECTION_MEMORY = 16384,   /* bytes per connection for headers: bigger ones fail */
        HTTP_PEER_ADDRESS_MAX = 262,      /* "[" 253-byte name "]:65535" fits */
};

enum http_api_call {
        HTTP_API_REPLY,   /* answer with the reply given (an error) */
        HTTP_API_CONNECT, /* manager_connect(peer, timeout_sec) */
        HTTP_API_STATUS,
        HTTP_API_DISCONNECT,
        HTTP_API_HEALTH,
};

struct http_api_request {
        const char *method;       /* "GET", "POST", ... */
        const char *path;         /* without the query string */
        const char *host;         /* the Host header; NULL: none */
        const char *content_type; /* NULL: none */
        const char *origin;       /* the Origin header (browsers send it); NULL: none */
        const char *body;         /* not NUL-terminated */
        size_t body_len;
        bool body_too_large; /* more than HTTP_BODY_MAX arrived or was announced */
        bool may_mutate;     /* the caller is root or in the control group */

        /* What we serve on, for the Host check. */
        const char *listen_host; /* a loopback literal: "127.0.0.1", "::1" */
        uint16_t listen_port;
        const char *control_group; /* for the 403 message */
};

struct http_api_reply {
        unsigned status;   /* HTTP status code */
        char *body;        /* JSON, malloc'd; NULL when out of memory */
        const char *allow; /* the Allow header of a 405; NULL otherwise */
};

/* Route and check a request. Returns the call to make; HTTP_API_REPLY fills ret_reply (the
 * caller frees its body). HTTP_API_CONNECT sets ret_peer (a copy of peer_address, malloc'd)
 * and ret_timeout_sec (the optional "timeout_sec" field; 30 s without it). */
enum http_api_call http_api_route(const struct http_api_request *req,
                                  struct http_api_reply *ret_reply, char **ret_peer,
                                  uint32_t *ret_timeout_sec);

/* Is host (a Host header) listen_host:listen_port, or localhost:listen_port? */
bool http_api_host_ok(const char *host, const char *listen_host, uint16_t listen_port);

/* The JSON envelope {"status":"success"|"error","message":message}, malloc'd (NULL: no memory). */
char *http_api_message_json(bool success, const char *message);

struct http_api_status {
        const char *state; /* the D-Bus State: "connected", "disconnected", ... */
        const char *tap_device;
        const char *local_ip;     /* "10.0.0.1/24" (the first address), or "" */
        const char *peer_address; /* "host:port", or "" */
};
/* {"status":"success","state":"Connected","details":{"state":"connected","tap_device":...,
 * "local_ip":...,"peer_address":...,"connected":true}} (malloc'd). */
char *http_api_status_json(const struct http_api_status *s);

/* The HTTP status for a manager error name (org.shadowmesh1.Error.AlreadyConnected: 409, ...). */
unsigned http_api_error_status(const char *error_name);
