/* SPDX-License-Identifier: MIT */
/* http-api.c over a table of requests: the status (or call) each rule gives, in the order the
 * checks run, and the exact JSON of the prototype's replies. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http-api.h"
#include "tests.h"

#define ALLOWED true
#define DENIED false

static const struct {
        const char *name, *method, *path, *host, *content_type, *origin, *body;
        bool may_mutate, too_large;
        int want; /* HTTP status, or -call */
} cases[] = {
        {"prototype /connect", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL,
         "{\"peer_address\": \"203.0.113.42:9001\"}", ALLOWED, false, -HTTP_API_CONNECT},
        {"prototype /status", "GET", "/status", "127.0.0.1:9090", NULL, NULL, "", DENIED, false,
         -HTTP_API_STATUS},
        {"HEAD /health", "HEAD", "/health", "localhost:9090", NULL, NULL, "", DENIED, false,
         -HTTP_API_HEALTH},
        {"prototype /disconnect: no body, no Content-Type", "POST", "/disconnect", "127.0.0.1:9090",
         NULL, NULL, "", ALLOWED, false, -HTTP_API_DISCONNECT},
        {"Host names another name", "GET", "/status", "rebind.example:9090", NULL, NULL, "",
         ALLOWED, false, 421},
        {"Host names another port", "GET", "/status", "127.0.0.1:80", NULL, NULL, "", ALLOWED,
         false, 421},
        {"Host without port", "GET", "/status", "127.0.0.1", NULL, NULL, "", ALLOWED, false, 421},
        {"Host is checked before the path", "GET", "/nope", "evil:9090", NULL, NULL, "", ALLOWED,
         false, 421},
        {"no Host", "GET", "/status", NULL, NULL, NULL, "", ALLOWED, false, 400},
        {"unknown path", "GET", "/admin", "127.0.0.1:9090", NULL, NULL, "", ALLOWED, false, 404},
        {"a trailing slash is another path", "GET", "/status/", "127.0.0.1:9090", NULL, NULL, "",
         ALLOWED, false, 404},
        {"GET /connect", "GET", "/connect", "127.0.0.1:9090", NULL, NULL, "", ALLOWED, false, 405},
        {"OPTIONS preflight", "OPTIONS", "/connect", "127.0.0.1:9090", NULL, "http://evil.example",
         "", ALLOWED, false, 405},
        {"POST /status", "POST", "/status", "127.0.0.1:9090", NULL, NULL, "", ALLOWED, false, 405},
        {"not authorised", "POST", "/disconnect", "127.0.0.1:9090", NULL, NULL, "", DENIED, false,
         403},
        {"from a web page", "POST", "/disconnect", "127.0.0.1:9090", NULL, "null", "", ALLOWED,
         false, 403},
        {"text/plain body", "POST", "/connect", "127.0.0.1:9090", "text/plain", NULL, "{}", ALLOWED,
         false, 415},
        {"a body without Content-Type", "POST", "/disconnect", "127.0.0.1:9090", NULL, NULL, "{}",
         ALLOWED, false, 415},
        {"application/jsonx", "POST", "/connect", "127.0.0.1:9090", "application/jsonx", NULL, "{}",
         ALLOWED, false, 415},
        {"Content-Type with parameters", "POST", "/connect", "127.0.0.1:9090",
         "Application/JSON ; charset=utf-8", NULL, "{\"peer_address\": \"h:1\"}", ALLOWED, false,
         -HTTP_API_CONNECT},
        {"too large", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL, "", ALLOWED,
         true, 413},
        {"malformed JSON", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL,
         "{\"peer_address\":", ALLOWED, false, 400},
        {"not an object", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL, "\"x\"",
         ALLOWED, false, 400},
        {"missing field", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL, "{}",
         ALLOWED, false, 400},
        {"empty peer_address", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL,
         "{\"peer_address\": \"\"}", ALLOWED, false, 400},
        {"duplicate field", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL,
         "{\"peer_address\": \"a:1\", \"peer_address\": \"b:1\"}", ALLOWED, false, 400},
        {"timeout_sec 0", "POST", "/connect", "127.0.0.1:9090", "application/json", NULL,
         "{\"peer_address\": \"a:1\", \"timeout_sec\": 0}", ALLOWED, false, 400},
        {"unknown fields are ignored", "POST", "/connect", "127.0.0.1:9090", "application/json",
         NULL, "{\"peer_address\": \"a:1\", \"use_relay\": false}", ALLOWED, false,
         -HTTP_API_CONNECT},
};

static void test_routes(void) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct http_api_reply reply = {};
                uint32_t timeout_sec = 0;
                char *peer = NULL;
                struct http_api_request req = {
                        .method = cases[i].method,
                        .path = cases[i].path,
                        .host = cases[i].host,
                        .content_type = cases[i].content_type,
                        .origin = cases[i].origin,
                        .body = cases[i].body,
                        .body_len = strlen(cases[i].body),
                        .body_too_large = cases[i].too_large,
                        .may_mutate = cases[i].may_mutate,
                        .listen_host = "127.0.0.1",
                        .listen_port = 9090,
                };
                enum http_api_call call = http_api_route(&req, &reply, &peer, &timeout_sec);
                int got = call == HTTP_API_REPLY ? (int) reply.status : -(int) call;
                CHECKF(got == cases[i].want, "%s: got %d, want %d (%s)", cases[i].name, got,
                       cases[i].want, reply.body ? reply.body : "");
                if (call == HTTP_API_REPLY) {
                        json_t *o = json_loads(reply.body, 0, NULL);
                        CHECKF(o && strcmp(json_string_value(json_object_get(o, "status")),
                                           "error") == 0,
                               "%s: error envelope: %s", cases[i].name, reply.body);
                        json_decref(o);
                        CHECKF((reply.status == 405) == (reply.allow != NULL), "%s: Allow",
                               cases[i].name);
                }
                free(reply.body);
                free(peer);
        }
}

static void test_connect_fields(void) {
        struct http_api_reply reply = {};
        uint32_t timeout_sec = 0;
        char *peer = NULL;
        const char *body = "{\"peer_address\": \"[2001:db8::1]:9001\", \"timeout_sec\": 7}";
        struct http_api_request req = {
                .method = "POST",
                .path = "/connect",
                .host = "[::1]:9090",
                .content_type = "application/json",
                .body = body,
                .body_len = strlen(body),
                .may_mutate = true,
                .listen_host = "::1",
                .listen_port = 9090,
        };

        CHECK_EQ_INT(http_api_route(&req, &reply, &peer, &timeout_sec), HTTP_API_CONNECT);
        CHECK(peer && strcmp(peer, "[2001:db8::1]:9001") == 0);
        CHECK_EQ_INT(timeout_sec, 7);
        free(peer);

        /* 403 names the group and what was asked. */
        req.may_mutate = false;
        req.control_group = "vpn";
        CHECK_EQ_INT(http_api_route(&req, &reply, &peer, &timeout_sec), HTTP_API_REPLY);
        CHECKF(strstr(reply.body, "group 'vpn' may connect"), "%s", reply.body);
        free(reply.body);
}

static void test_host(void) {
        CHECK(http_api_host_ok("127.0.0.1:9090", "127.0.0.1", 9090));
        CHECK(http_api_host_ok("LOCALHOST:9090", "127.0.0.1", 9090));
        CHECK(http_api_host_ok("[::1]:9090", "::1", 9090));
        CHECK(http_api_host_ok("localhost:9090", "::1", 9090));
        CHECK(http_api_host_ok("127.0.0.1", "127.0.0.1", 80));
        CHECK(!http_api_host_ok("[::1]:9090", "127.0.0.1", 9090));
        CHECK(!http_api_host_ok("127.0.0.1:9090", "::1", 9090));
        CHECK(!http_api_host_ok("127.0.0.1.evil:9090", "127.0.0.1", 9090));
        CHECK(!http_api_host_ok("localhost.:9090", "127.0.0.1", 9090));
        CHECK(!http_api_host_ok("127.0.0.1:9090:9090", "127.0.0.1", 9090));
        CHECK(!http_api_host_ok("127.0.0.1:09090", "127.0.0.1", 9090));
        CHECK(!http_api_host_ok("", "127.0.0.1", 9090));
        CHECK(!http_api_host_ok(NULL, "127.0.0.1", 9090));
}

static void test_json(void) {
        struct http_api_status s = {
                .state = "connected",
                .tap_device = "tap0",
                .local_ip = "10.0.0.1/24",
                .peer_address = "203.0.113.42:9001",
        };
        char *text = http_api_status_json(&s);

        CHECKF(text && strcmp(text, "{\"status\":\"success\",\"state\":\"Connected\",\"details\":"
                                    "{\"state\":\"connected\",\"tap_device\":\"tap0\","
                                    "\"local_ip\":\"10.0.0.1/24\",\"peer_address\":"
                                    "\"203.0.113.42:9001\",\"connected\":true}}") == 0,
               "%s", text);
        free(text);
        s.state = "reconnecting";
        text = http_api_status_json(&s);
        CHECKF(text && strstr(text, "\"state\":\"Reconnecting\"") &&
                       strstr(text, "\"connected\":false"),
               "%s", text);
        free(text);
        text = http_api_message_json(true, "Connected to peer at 203.0.113.42:9001");
        CHECKF(text && strcmp(text, "{\"status\":\"success\",\"message\":\"Connected to peer at "
                                    "203.0.113.42:9001\"}") == 0,
               "%s", text);
        free(text);
        text = http_api_message_json(false, "bad \xff\x01 bytes");
        CHECKF(text && strcmp(text, "{\"status\":\"error\",\"message\":\"bad ?? bytes\"}") == 0,
               "%s", text);
        free(text);
        CHECK_EQ_INT(http_api_error_status("org.shadowmesh1.Error.AlreadyConnected"), 409);
        CHECK_EQ_INT(http_api_error_status("org.shadowmesh1.Error.HandshakeTimeout"), 504);
        CHECK_EQ_INT(http_api_error_status(""), 500);
}

int main(void) {
        test_routes();
        test_connect_fields();
        test_host();
        test_json();
        return test_summary();
}
