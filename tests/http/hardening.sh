#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Each hardening rule of the HTTP API (src/http.c, src/http-api.c, src/sockdiag.c) with a check
# that fails without it, on a running tunnel that must keep carrying traffic through all of it:
#
#   loopback only          a non-loopback daemon.listen_address is refused at start (no TAP)
#   Host                   anything but 127.0.0.1:9090 / localhost:9090 gets 421 (DNS
#                          rebinding), no Host 400
#   Content-Type           a POST body that is not application/json gets 415
#   Origin / CORS          a POST from a web page (Origin) gets 403; no Access-Control-* header
#                          ever, an OPTIONS preflight gets 405
#   limits                 body > 4 KiB: 413; connections per address and in all; idle
#                          connections closed after the timeout
#   authorisation          POST from a user neither root nor in daemon.control_group: 403
#                          (uid from sock_diag); reads stay open; a member may POST
#   bad input              malformed JSON, missing/wrong field, wrong method, unknown path,
#                          binary garbage, huge headers: an error or a closed connection
#   /connect's outcomes    409 when connected, 504 on handshake timeout, 409 when a
#                          /disconnect cancels it, shutdown while it waits
#
#   sm$$-a: tap0 10.0.0.1/24, veth0 10.99.42.1, API 127.0.0.1:9090 (control_group default)
#   sm$$-b: tap0 10.0.0.2/24, veth0 10.99.42.2, API 127.0.0.1:9090
#   sm$$-c: loopback only: start-up refusals, and control_group: nogroup

# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$(dirname "$(readlink -f "$0")")")/netns/lib.sh"
HERE=$(dirname "$(readlink -f "$0")")

netns_init 42
need curl curl
need python3 python3
need setpriv util-linux
setup_pair
setup_single

KEY=$(random_hex_key)
# yaml LOCAL_IP LISTEN_ADDRESS [CONTROL_GROUP] [TAP]
yaml() {
        cat <<YAML
daemon:
  listen_address: "$2"
  log_level: "debug"
${3:+  control_group: "$3"}
network:
  tap_device: "${4:-tap0}"
  local_ip: "$1"
encryption:
  key: "$KEY"
peer:
  address: ""
YAML
}
yaml 10.0.0.1/24 127.0.0.1:9090 >"$TMP/a.yaml"
yaml 10.0.0.2/24 127.0.0.1:9090 >"$TMP/b.yaml"
chmod 600 "$TMP"/*.yaml

URL=http://127.0.0.1:9090
# req NAME NS [CURL-ARGS...]: one request; CODE is the status, BODY the body; the response
# headers are in $TMP/NAME.headers.
CODE="" BODY=""
req() {
        local name=$1 ns=$2
        shift 2
        CODE=$(ip netns exec "$ns" curl -s --max-time 20 -o "$TMP/$name.body" -D "$TMP/$name.headers" \
                -w '%{http_code}' "$@" 2>/dev/null || true)
        BODY=$(cat "$TMP/$name.body" 2>/dev/null || true)
}
# as_user UID NS CMD...: CMD as UID with only its own primary group.
as_user() {
        local uid=$1 ns=$2
        shift 2
        ip netns exec "$ns" setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$BODY" "$1" 2>/dev/null || true; }
state_of() {
        req state "$1" "$URL/status"
        json_field state
}
state_is() { [[ $(state_of "$1") == "$2" ]]; }
connected() { state_is "$NS_A" Connected; }
tunnel_ok() { alive a && connected && ping_ok "$NS_A" 10.0.0.2; }
api_up() { ip netns exec "$1" curl -s -o /dev/null "$URL/health"; }

# ---- loopback only: refused at start -------------------------------------------------------------
# 10.99.42.9 is an address of c's own, so that only the rule, not a failing bind, refuses it.
ip -n "$NS_C" addr add 10.99.42.9/32 dev lo
for addr in 10.99.42.9:9090 0.0.0.0:9090; do
        yaml 10.0.0.3/24 "$addr" "" tapx >"$TMP/c-bad.yaml"
        chmod 600 "$TMP/c-bad.yaml"
        if run_daemon_to_exit c-bad "$NS_C" 10 "$SHADOWMESHD" "$TMP/c-bad.yaml"; then
                check "listen_address $addr: start fails" test "$EXIT_CODE" -ne 0
        else
                fail "listen_address $addr: start fails" "still running after 10 s"
                stop_daemon c-bad TERM 5 || true
        fi
        check "listen_address $addr: the error says loopback" log_has c-bad "loopback"
        check "listen_address $addr: no TAP left" link_gone "$NS_C" tapx
        check_not "listen_address $addr: nothing listens on 9090" \
                ip netns exec "$NS_C" curl -s -o /dev/null --max-time 2 "http://${addr%:*}:9090/health"
done

# ---- a tunnel that must survive everything below --------------------------------------------------
start_daemon a "$NS_A" "$TMP/a.yaml"
start_daemon b "$NS_B" "$TMP/b.yaml"
check "a: API up" wait_until 10 api_up "$NS_A"
check "b: API up" wait_until 10 api_up "$NS_B"
req connect "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" \
        -d "{\"peer_address\": \"$UNDER_B:9001\"}"
check_eq "connect: 200" "$CODE" 200
check "ping a->b" wait_ping 10 "$NS_A" 10.0.0.2

# ---- Host: DNS rebinding ------------------------------------------------------------------------
req host-evil "$NS_A" -H "Host: rebind.example:9090" "$URL/status"
check_eq "Host rebind.example:9090: 421" "$CODE" 421
check_not "Host rebind.example:9090: no state in the answer" contains "$BODY" "tap0"
req host-port "$NS_A" -H "Host: 127.0.0.1:9091" "$URL/status"
check_eq "Host 127.0.0.1:9091 (wrong port): 421" "$CODE" 421
req host-v6 "$NS_A" -H "Host: [::1]:9090" "$URL/status"
check_eq "Host [::1]:9090 on a 127.0.0.1 listener: 421" "$CODE" 421
req host-post "$NS_A" -X POST -H "Host: rebind.example:9090" "$URL/disconnect"
check_eq "POST /disconnect with Host rebind.example: 421" "$CODE" 421
req host-none "$NS_A" --http1.0 -H "Host:" "$URL/status"
check_eq "no Host header: 400" "$CODE" 400
req host-localhost "$NS_A" -H "Host: localhost:9090" "$URL/status"
check_eq "Host localhost:9090: 200" "$CODE" 200
req host-ok "$NS_A" "$URL/status"
check_eq "Host 127.0.0.1:9090: 200" "$CODE" 200
check "tunnel still up after the Host checks" tunnel_ok

# ---- Content-Type, Origin, CORS -----------------------------------------------------------------
req ct-plain "$NS_A" -X POST "$URL/disconnect" -H "Content-Type: text/plain" -d '{}'
check_eq "POST text/plain: 415" "$CODE" 415
req ct-form "$NS_A" -X POST "$URL/connect" -d "{\"peer_address\": \"$UNDER_B:9001\"}"
check_eq "POST application/x-www-form-urlencoded (curl -d's default): 415" "$CODE" 415
req ct-json-charset "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json; charset=utf-8" \
        -d "{\"peer_address\": \"$UNDER_B:9001\"}"
check_eq "POST application/json; charset=utf-8 is JSON (409: already connected)" "$CODE" 409
req origin "$NS_A" -X POST "$URL/disconnect" -H "Origin: http://evil.example"
check_eq "POST /disconnect from a web page (Origin): 403" "$CODE" 403
req preflight "$NS_A" -X OPTIONS "$URL/connect" -H "Origin: http://evil.example" \
        -H "Access-Control-Request-Method: POST" -H "Access-Control-Request-Headers: content-type"
check_eq "OPTIONS preflight: 405" "$CODE" 405
check_not "OPTIONS preflight: no Access-Control-* header" grep -qi '^access-control-' "$TMP/preflight.headers"
req cors-get "$NS_A" -H "Origin: http://evil.example" "$URL/status"
check_not "GET with Origin: no Access-Control-* header" grep -qi '^access-control-' "$TMP/cors-get.headers"
check "tunnel still up after the Content-Type and Origin checks" tunnel_ok

# ---- limits -----------------------------------------------------------------------------------
big=$(python3 -c 'print("{\"peer_address\": \"x:1\", \"pad\": \"" + "a" * 5000 + "\"}")')
req body-big "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" -d "$big"
check_eq "body over 4 KiB: 413" "$CODE" 413
fits=$(python3 -c 'p = "{\"peer_address\": \"x:1\", \"pad\": \"\"}"; print(p[:-2] + "a" * (4096 - len(p)) + "\"}")')
req body-4k "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" -d "$fits"
# Read, not refused for its size: Connect to another address adds a peer (the mesh), and x does
# not resolve.
check_eq "body of exactly 4 KiB is read (400: x does not resolve)" "$CODE" 400
req body-chunked "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" \
        -H "Transfer-Encoding: chunked" -d "$big"
check "chunked body over 4 KiB: 413 or closed" test "$CODE" = 413 -o "$CODE" = 000
ip netns exec "$NS_A" python3 "$HERE/rawclient.py" limits 127.0.0.1 9090 8 16 >"$TMP/limits.out" 2>&1 || true
check_has "limits: another address still served" "$(cat "$TMP/limits.out")" "per-ip-other-address 200"
check_has "limits: 9th connection from one address closed" "$(cat "$TMP/limits.out")" "per-ip-extra closed"
check_has "limits: 17th connection in all not served (waits in the backlog)" "$(cat "$TMP/limits.out")" "total-extra timeout"
check_has "limits: served again once released" "$(cat "$TMP/limits.out")" "after-release 200"
secs=$(ip netns exec "$NS_A" python3 "$HERE/rawclient.py" idle 127.0.0.1 9090 25 2>&1 || true)
note "a half-sent request was closed after $secs s"
check "a half-sent request is closed after 10 s (HTTP_CONNECTION_TIMEOUT)" \
        python3 -c "import sys; sys.exit(not 8 <= float('$secs') <= 15)"
check "tunnel still up after the limits" tunnel_ok

# ---- authorisation ----------------------------------------------------------------------------
CODE="" BODY=""
# as_req UID NS CURL-ARGS...: one request as UID (which cannot write to $TMP): CODE and BODY.
as_req() {
        local uid=$1 ns=$2 out
        shift 2
        out=$(as_user "$uid" "$ns" curl -s --max-time 10 -w '\n%{http_code}' "$@" 2>/dev/null || true)
        CODE=${out##*$'\n'}
        BODY=${out%$'\n'*}
}
as_req 65534 "$NS_A" -X POST "$URL/disconnect"
check_eq "POST /disconnect as nobody (not in netdev): 403" "$CODE" 403
check_has "403 names the group" "$BODY" "group 'netdev'"
as_req 65534 "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" \
        -d '{"peer_address": "10.99.42.2:9001"}'
check_eq "POST /connect as nobody: 403" "$CODE" 403
as_req 65534 "$NS_A" "$URL/status"
check_eq "GET /status as nobody: 200 (reads stay open)" "$CODE" 200
check_has "GET /status as nobody: the state" "$BODY" '"state":"Connected"'
check "tunnel still up after nobody's calls" tunnel_ok
# A member of daemon.control_group may: nobody's primary group is nogroup.
yaml 10.0.0.3/24 127.0.0.1:9090 nogroup tapc >"$TMP/c.yaml"
chmod 600 "$TMP/c.yaml"
start_daemon c "$NS_C" "$TMP/c.yaml"
check "c: API up" wait_until 10 api_up "$NS_C"
as_req 65534 "$NS_C" -X POST "$URL/disconnect"
check_eq "POST /disconnect as nobody, control_group nogroup: 409 (allowed; not connected)" "$CODE" 409
as_req 1 "$NS_C" -X POST "$URL/disconnect"
check_eq "POST /disconnect as daemon (uid 1, not in nogroup): 403" "$CODE" 403
check "c: exits on SIGINT" stop_daemon c INT 10

# ---- bad input --------------------------------------------------------------------------------
req bad-json "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" -d '{"peer_address": '
check_eq "malformed JSON: 400" "$CODE" 400
check_has "malformed JSON: says so" "$BODY" "Invalid JSON"
check_eq "malformed JSON: error envelope" "$(json_field status)" error
req no-field "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" -d '{"peer": "x:1"}'
check_eq "missing peer_address: 400" "$CODE" 400
check_has "missing peer_address: names the field" "$BODY" "peer_address"
req bad-type "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" -d '{"peer_address": 42}'
check_eq "peer_address not a string: 400" "$CODE" 400
check_has "peer_address not a string: names the field" "$BODY" "peer_address"
req not-object "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" -d '[1, 2]'
check_eq "JSON array: 400" "$CODE" 400
req get-connect "$NS_A" "$URL/connect"
check_eq "GET /connect: 405" "$CODE" 405
check "GET /connect: Allow: POST" grep -qi '^allow: POST' "$TMP/get-connect.headers"
req post-status "$NS_A" -X POST "$URL/status"
check_eq "POST /status: 405" "$CODE" 405
check "POST /status: Allow: GET, HEAD" grep -qi '^allow: GET, HEAD' "$TMP/post-status.headers"
req unknown "$NS_A" "$URL/admin"
check_eq "unknown path: 404" "$CODE" 404
check_eq "unknown path: error envelope" "$(json_field status)" error
r=$(ip netns exec "$NS_A" python3 "$HERE/rawclient.py" send 127.0.0.1 9090 garbage 2>&1 || true)
check "binary garbage: 400 or closed (got $r)" test "$r" = 400 -o "$r" = closed
start=$(now_ms)
r=$(ip netns exec "$NS_A" python3 "$HERE/rawclient.py" send 127.0.0.1 9090 huge-header 2>&1 || true)
note "64 KiB header: $r after $(($(now_ms) - start)) ms"
check "64 KiB header: 431/413/400, or closed by the connection timeout (got $r)" test "$r" = 431 -o "$r" = 413 -o "$r" = 400 -o "$r" = closed
r=$(ip netns exec "$NS_A" python3 "$HERE/rawclient.py" send 127.0.0.1 9090 \
        "$(printf 'POST /connect HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n\xff\xfe\x00\x01\x80' | od -An -tx1 | tr -d ' \n')" 2>&1 || true)
check_eq "invalid UTF-8 body: 400" "$r" 400
check "daemon a alive" alive a
check "tunnel still up after the bad input" tunnel_ok
check_eq "state still Connected" "$(state_of "$NS_A")" Connected

# ---- /connect's outcomes -----------------------------------------------------------------------
req again "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" -d "{\"peer_address\": \"$UNDER_B:9001\"}"
check_eq "connect while connected: 409" "$CODE" 409
check_has "409 says already connected" "$BODY" "Already connected"
req disc "$NS_A" -X POST "$URL/disconnect"
check_eq "disconnect: 200" "$CODE" 200
start=$(now_ms)
req timeout "$NS_A" -X POST "$URL/connect" -H "Content-Type: application/json" \
        -d "{\"peer_address\": \"$UNDER_B:9002\", \"timeout_sec\": 12}"
elapsed=$(($(now_ms) - start))
# 12 s: longer than HTTP_CONNECTION_TIMEOUT, which must not close a waiting /connect.
check_eq "connect to a port nobody answers: 504" "$CODE" 504
check_has "504 says no handshake" "$BODY" "No handshake"
check "504 after the 12 s timeout ($elapsed ms)" test "$elapsed" -ge 11900 -a "$elapsed" -lt 16000
# A /disconnect cancels a waiting /connect.
ip netns exec "$NS_A" curl -s -o "$TMP/pending.body" -w '%{http_code}' --max-time 20 -X POST "$URL/connect" \
        -H "Content-Type: application/json" -d "{\"peer_address\": \"$UNDER_B:9002\"}" >"$TMP/pending.code" &
pending=$!
OWN_PIDS+=("$pending")
check "the waiting /connect shows as Connecting" wait_until 5 state_is "$NS_A" Connecting
req cancel "$NS_A" -X POST "$URL/disconnect"
check_eq "disconnect while connecting: 200" "$CODE" 200
wait_pid_exit "$pending" 5 || true
check_eq "the cancelled /connect: 409" "$(cat "$TMP/pending.code")" 409
check_has "the cancelled /connect: says why" "$(cat "$TMP/pending.body")" "Disconnected before the handshake"
# Shutdown while a /connect waits: the daemon exits cleanly (MHD may not stop with a
# suspended connection) and the client gets 503 or a closed connection.
ip netns exec "$NS_A" curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST "$URL/connect" \
        -H "Content-Type: application/json" -d "{\"peer_address\": \"$UNDER_B:9002\"}" >"$TMP/pending2.code" &
pending=$!
OWN_PIDS+=("$pending")
check "a second /connect waits" wait_until 5 state_is "$NS_A" Connecting
pid_a=${DAEMON_PID[a]}
check "a: exits on SIGINT while a /connect waits" stop_daemon a INT 10
check_eq "a: exit status 0" "$EXIT_CODE" 0
wait_pid_exit "$pending" 5 || true
r=$(cat "$TMP/pending2.code")
note "the /connect waiting at shutdown got: $r (000: connection closed)"
check "the waiting /connect got 503 or a closed connection (got $r)" test "$r" = 503 -o "$r" = 000
check "a: tap0 removed" link_gone "$NS_A" tap0
check "a: process gone" has_exited "$pid_a"
check "b: exits on SIGINT" stop_daemon b INT 10

summary
