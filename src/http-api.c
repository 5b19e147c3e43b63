/* SPDX-License-Identifier: MIT */
/* The prototype's HTTP API: routing, checks and JSON (see http-api.h). Pure: no I/O, no logs. */
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "http-api.h"
#include "shadowmesh/bus-api.h"
#include "util.h"

struct route {
        const char *path;
        enum http_api_call call;
        bool mutating; /* POST with a JSON body (or none), authorised */
        const char *allow;
        const char *what; /* for the 403 message */
};

static const struct route routes[] = {
        {"/connect", HTTP_API_CONNECT, true, "POST", "connect"},
        {"/disconnect", HTTP_API_DISCONNECT, true, "POST", "disconnect"},
        {"/status", HTTP_API_STATUS, false, "GET, HEAD", NULL},
        {"/health", HTTP_API_HEALTH, false, "GET, HEAD", NULL},
};

/* Error messages may quote client bytes (a path, a JSON parser's "near '...'"): keep them
 * printable ASCII so that the reply is valid UTF-8 JSON whatever arrived. */
static void sanitize(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        *s = '?';
}

char *http_api_message_json(bool success, const char *message) {
        _cleanup_free_ char *clean = strdup(message);
        json_t *o;
        char *s;

        if (!clean)
                return NULL;
        sanitize(clean);
        o = json_pack("{s:s, s:s}", "status", success ? "success" : "error", "message", clean);
        if (!o)
                return NULL;
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

_printf_(3, 4) static enum http_api_call
        error(struct http_api_reply *ret, unsigned status, const char *fmt, ...) {
        char text[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        *ret = (struct http_api_reply){.status = status,
                                       .body = http_api_message_json(false, text)};
        return HTTP_API_REPLY;
}

bool http_api_host_ok(const char *host, const char *listen_host, uint16_t listen_port) {
        char want[64];
        const char *port;

        if (!host || !listen_host)
                return false;
        /* The port part: ":9090", or none when we serve on 80 (clients omit the default). */
        port = strrchr(host, ':');
        if (port && strchr(port, ']'))
                port = NULL;
        if (port) {
                char p[8];
                snprintf(p, sizeof(p), ":%u", listen_port);
                if (strcmp(port, p) != 0)
                        return false;
        } else if (listen_port != 80)
                return false;
        size_t name_len = port ? (size_t) (port - host) : strlen(host);

        if (name_len == strlen("localhost") && strncasecmp(host, "localhost", name_len) == 0)
                return true;
        snprintf(want, sizeof(want), strchr(listen_host, ':') ? "[%s]" : "%s", listen_host);
        return name_len == strlen(want) && strncasecmp(host, want, name_len) == 0;
}

/* "application/json", optionally with parameters ("; charset=utf-8"). */
static bool is_json(const char *content_type) {
        size_t n = strlen("application/json");

        if (!content_type)
                return false;
        while (*content_type == ' ' || *content_type == '\t')
                content_type++;
        if (strncasecmp(content_type, "application/json", n) != 0)
                return false;
        content_type += n;
        while (*content_type == ' ' || *content_type == '\t')
                content_type++;
        return *content_type == 0 || *content_type == ';';
}

static enum http_api_call parse_connect(const struct http_api_request *req,
                                        struct http_api_reply *ret_reply, char **ret_peer,
                                        uint32_t *ret_timeout_sec) {
        json_error_t jerr;
        json_t *o, *v;
        enum http_api_call call;

        o = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!o)
                return error(ret_reply, 400, "Invalid JSON body at line %d, column %d: %s",
                             jerr.line, jerr.column, jerr.text);
        if (!json_is_object(o)) {
                call = error(ret_reply, 400,
                             "The body must be a JSON object: {\"peer_address\": \"host:port\"}");
                goto out;
        }
        v = json_object_get(o, "peer_address");
        if (!v) {
                call = error(ret_reply, 400,
                             "Missing field 'peer_address': expected "
                             "{\"peer_address\": \"host:port\"}");
                goto out;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > HTTP_PEER_ADDRESS_MAX ||
            strlen(json_string_value(v)) != json_string_length(v)) {
                call = error(ret_reply, 400,
                             "Field 'peer_address' must be a non-empty string of "
                             "at most %u characters: \"host:port\"",
                             HTTP_PEER_ADDRESS_MAX);
                goto out;
        }
        uint32_t timeout_sec = CONNECT_TIMEOUT_DEFAULT_SEC;
        v = json_object_get(o, "timeout_sec");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > CONNECT_TIMEOUT_MAX_SEC) {
                        call = error(ret_reply, 400,
                                     "Field 'timeout_sec' must be an integer between 1 and %u",
                                     CONNECT_TIMEOUT_MAX_SEC);
                        goto out;
                }
                timeout_sec = (uint32_t) json_integer_value(v);
        }
        *ret_peer = strdup(json_string_value(v = json_object_get(o, "peer_address")));
        if (!*ret_peer) {
                call = error(ret_reply, 500, "Out of memory");
                goto out;
        }
        *ret_timeout_sec = timeout_sec;
        call = HTTP_API_CONNECT;
out:
        json_decref(o);
        return call;
}

enum http_api_call http_api_route(const struct http_api_request *req,
                                  struct http_api_reply *ret_reply, char **ret_peer,
                                  uint32_t *ret_timeout_sec) {
        const struct route *route = NULL;

        if (!req->host)
                return error(ret_reply, 400, "Missing Host header");
        if (!http_api_host_ok(req->host, req->listen_host, req->listen_port)) {
                /* Names only what we expect: the Host is the client's, a rebinding attacker's. */
                if (strchr(req->listen_host, ':'))
                        return error(ret_reply, 421, "Host header must be [%s]:%u or localhost:%u",
                                     req->listen_host, req->listen_port, req->listen_port);
                return error(ret_reply, 421, "Host header must be %s:%u or localhost:%u",
                             req->listen_host, req->listen_port, req->listen_port);
        }
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                if (strcmp(req->path, routes[i].path) == 0)
                        route = &routes[i];
        if (!route) {
                char path[64];
                snprintf(path, sizeof(path), "%s", req->path);
                return error(ret_reply, 404,
                             "Unknown path '%s%s' (known: /connect, /status, /disconnect, "
                             "/health)",
                             path, strlen(req->path) >= sizeof(path) ? "..." : "");
        }
        if (route->mutating ? strcmp(req->method, "POST") != 0
                            : strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
                char method[16];
                snprintf(method, sizeof(method), "%s", req->method);
                error(ret_reply, 405, "Method %s not allowed on %s (use %s)", method, route->path,
                      route->allow);
                ret_reply->allow = route->allow;
                return HTTP_API_REPLY;
        }
        if (!route->mutating)
                return route->call;

        if (!req->may_mutate)
                return error(ret_reply, 403,
                             "Only root and members of group '%s' may %s this "
                             "tunnel",
                             req->control_group ? req->control_group : "netdev", route->what);
        if (req->origin)
                return error(ret_reply, 403,
                             "Requests from web pages (with an Origin header) "
                             "may not %s this tunnel",
                             route->what);
        if ((req->content_type || req->body_len > 0 || req->body_too_large) &&
            !is_json(req->content_type))
                return error(ret_reply, 415, "Content-Type must be application/json");
        if (req->body_too_large || req->body_len > HTTP_BODY_MAX)
                return error(ret_reply, 413, "Request body larger than %u bytes", HTTP_BODY_MAX);
        if (route->call == HTTP_API_CONNECT)
                return parse_connect(req, ret_reply, ret_peer, ret_timeout_sec);
        return route->call; /* /disconnect: any JSON body is ignored, as the prototype did */
}

/* The one map from the D-Bus State (state.c's names) to the prototype's "state" strings. A
 * State this table does not know is passed on as it is, never guessed. */
static const char *prototype_state(const char *state) {
        static const struct {
                const char *state, *prototype;
        } map[] = {
                { "waiting", "Waiting" },       { "connecting", "Connecting" },
                { "connected", "Connected" },   { "reconnecting", "Reconnecting" },
                { "disconnected", "Disconnected" }, { "failed", "Failed" },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcmp(state, map[i].state) == 0)
                        return map[i].prototype;
        return state;
}

char *http_api_status_json(const struct http_api_status *s) {
        const char *state = prototype_state(s->state);
        json_t *o;
        char *text;

        o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:b}}", "status", "success", "state",
                      state, "details", "state", s->state, "tap_device", s->tap_device, "local_ip",
                      s->local_ip, "peer_address", s->peer_address, "connected",
                      strcmp(s->state, "connected") == 0);
        if (!o)
                return NULL;
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return text;
}

static const struct {
        const char *name;
        unsigned status;
} error_statuses[] = {
        {BUS_ERROR_ALREADY_CONNECTED, 409}, {BUS_ERROR_NOT_CONNECTED, 409},
        {BUS_ERROR_CANCELLED, 409},        {BUS_ERROR_INVALID_PEER, 400},
        {BUS_ERROR_INVALID_ARGUMENTS, 400}, {BUS_ERROR_HANDSHAKE_TIMEOUT, 504},
        {BUS_ERROR_RELAY_UNAVAILABLE, 503},
};

unsigned http_api_error_status(const char *error_name) {
        for (size_t i = 0; error_name && i < ELEMENTSOF(error_statuses); i++)
                if (strcmp(error_name, error_statuses[i].name) == 0)
                        return error_statuses[i].status;
        return 500;
}
