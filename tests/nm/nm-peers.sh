#!/bin/bash
# SPDX-License-Identifier: MIT
#
# A NetworkManager connection with several peers (vpn.data "peers", see
# nm-plugin/shared/nm-shadowmesh-keys.h) under a real NetworkManager (see lib.sh for the
# sandbox): two plain shadowmeshd daemons wait in the peer namespace on ports 9001 and 9003;
# one connection names the first as "peer" and the second, plus a port nobody listens on, as
# "peers". After `nmcli connection up` the instance's D-Bus Peers property lists both daemons,
# connected, at their endpoints; the dead further peer is logged with its address and the
# connection stays up; the gateway stays the first peer. Ends with "N passed, N failed".
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=tests/nm/lib.sh
source "$HERE/lib.sh"

nm_init
start_sandbox || { fail "NetworkManager starts in the sandbox"; summary; }
pass "NetworkManager runs in the sandbox on the private bus"

KEY=$(random_hex_key)

# Two peers that wait for any holder of the key (shared-key mode, no peer of their own).
for p in a:9001 b:9003; do
        name=${p%%:*} port=${p##*:}
        cat >"$TMP/peer-$name.yaml" <<EOF
network:
  bind_address: "$PEER_IP"
  listen_port: $port
  tap_device: smp${name}0
encryption:
  key: "$KEY"
EOF
        chmod 600 "$TMP/peer-$name.yaml"
        check "peer $name (shadowmeshd, port $port) starts in the second namespace" \
                start_peer "peer-$name" "$TMP/peer-$name.yaml"
done

nm connection add type ethernet ifname up0 con-name uplink ipv4.method manual \
        ipv4.addresses 192.0.2.2/24 ipv4.gateway 192.0.2.1 ipv6.method disabled
nm connection up uplink
check "uplink profile activates (a VPN needs a base connection)" [ $RC -eq 0 ]

# Port 9005: no daemon there, so that further peer's Connect fails (within the timeout).
DATA="peer=$PEER_IP:9001, peers=$PEER_IP:9003;$PEER_IP:9005, tap-device=smmesh0, key-flags=0"
nm connection add type vpn con-name mesh vpn-type shadowmesh vpn.timeout 10 vpn.data "$DATA" \
        vpn.secrets "key=$KEY"
check "nmcli connection add with vpn.data peers" [ $RC -eq 0 ]
check "the peers item is stored as typed in NetworkManager's keyfile" \
        grep -qx "peers=$PEER_IP:9003;$PEER_IP:9005" "$TMP/etc/system-connections/mesh.nmconnection"
UUID=$(con_uuid mesh)
LABEL="nm_2d${UUID:0:8}"
BUS_NAME="org.shadowmesh1.Instance.$LABEL"
BUS_PATH="/org/shadowmesh1/instance/$LABEL"

nm connection up mesh
check "nmcli connection up mesh (up once the first peer is)" [ $RC -eq 0 ]
check "the service says the connection is up with its first peer" \
        grep -q "the connection is up with its first peer $PEER_IP:9001; connecting 2 further" \
        "$TMP/nm.log"
check "gateway = the first peer: host route to it via the uplink" \
        bash -c "ip -n $NS route show $PEER_IP | grep -q 'via 192.0.2.1 dev up0'"

# "PATH STATE ENDPOINT" of every connected org.shadowmesh1.Peer of the instance, sorted.
connected_peers() {
        local path state endpoint
        for path in $(busctl get-property "$BUS_NAME" "$BUS_PATH" org.shadowmesh1.Tunnel Peers \
                      2>/dev/null | tr -d '"' | cut -d' ' -f3-); do
                state=$(busctl get-property "$BUS_NAME" "$path" org.shadowmesh1.Peer State \
                        2>/dev/null | tr -d '"' | cut -d' ' -f2)
                endpoint=$(busctl get-property "$BUS_NAME" "$path" org.shadowmesh1.Peer \
                           Endpoint 2>/dev/null | tr -d '"' | cut -d' ' -f2)
                [[ $state == connected ]] && echo "$endpoint"
        done | sort | tr '\n' ' '
}
# both_connected [PORT1 PORT2]: exactly the two daemons are connected peers of the instance.
both_connected() {
        [[ $(connected_peers) == "$PEER_IP:${1:-9001} $PEER_IP:${2:-9003} " ]]
}
check "D-Bus Peers lists both peer daemons, connected, at ports 9001 and 9003" \
        wait_until 15 both_connected
note "connected peers: $(connected_peers)"
check "peer a completed a handshake with us" grep -q "handshake complete" "$TMP/peer-a.log"
check "peer b completed a handshake with us" grep -q "handshake complete" "$TMP/peer-b.log"
check "the service logged the second peer connected" \
        grep -q "further peer $PEER_IP:9003 connected" "$TMP/nm.log"

further_failed() { grep -q "further peer $PEER_IP:9005: Connect failed" "$TMP/nm.log"; }
check "a further peer that does not answer is logged with its address" wait_until 20 further_failed
check "... and the connection stays up" active mesh
check "... with both working peers still connected" both_connected

nm connection down mesh
check "nmcli connection down mesh" [ $RC -eq 0 ]
check "down: TAP smmesh0 gone" wait_until 10 link_gone smmesh0
check "down: no shadowmeshd left" wait_until 10 no_daemon

# ---- identity mode: each further peer Connected with its own public key ----------------------
OUR_PRIV=$("$SHADOWMESHD" genkey)
OUR_PUB=$("$SHADOWMESHD" pubkey <<<"$OUR_PRIV")
for p in c:9011 d:9013; do
        name=${p%%:*} port=${p##*:}
        (umask 077 && "$SHADOWMESHD" genkey >"$TMP/peer-$name.key")
        cat >"$TMP/peer-$name.yaml" <<EOF
network:
  bind_address: "$PEER_IP"
  listen_port: $port
  tap_device: smp${name}0
identity:
  private_key_file: "$TMP/peer-$name.key"
peer:
  public_key: "$OUR_PUB"
EOF
        chmod 600 "$TMP/peer-$name.yaml"
        check "peer $name (shadowmeshd, identity mode, port $port) starts" \
                start_peer "peer-$name" "$TMP/peer-$name.yaml"
done
PUB_C=$("$SHADOWMESHD" pubkey <"$TMP/peer-c.key")
PUB_D=$("$SHADOWMESHD" pubkey <"$TMP/peer-d.key")
DATA="peer=$PEER_IP:9011, mode=identity, peer-public-key=$PUB_C, peers=$PEER_IP:9013=$PUB_D"
nm connection add type vpn con-name mesh-id vpn-type shadowmesh \
        vpn.data "$DATA, tap-device=smmeshid0, private-key-flags=0" \
        vpn.secrets "private-key=$OUR_PRIV"
check "identity: nmcli connection add with peers=HOST:PORT=PUBLICKEY" [ $RC -eq 0 ]
UUID=$(con_uuid mesh-id)
LABEL="nm_2d${UUID:0:8}"
BUS_NAME="org.shadowmesh1.Instance.$LABEL"
BUS_PATH="/org/shadowmesh1/instance/$LABEL"
nm connection up mesh-id
check "identity: nmcli connection up mesh-id" [ $RC -eq 0 ]
check "identity: D-Bus Peers lists both identity peers, connected, at ports 9011 and 9013" \
        wait_until 15 both_connected 9011 9013
check "identity: the further peer was Connected with its public key" \
        grep -q "Connect($PEER_IP:9013, timeout_sec=[0-9]*, public_key)" "$TMP/nm.log"
check "identity: peer d completed a handshake with us" \
        grep -q "handshake complete" "$TMP/peer-d.log"
nm connection down mesh-id
check "identity: nmcli connection down mesh-id" [ $RC -eq 0 ]
check "identity, down: no shadowmeshd left" wait_until 10 no_daemon

# Bad entries are refused at Connect, naming the key and the entry.
nm connection add type vpn con-name mesh-bad vpn-type shadowmesh \
        vpn.data "peer=$PEER_IP:9001, peers=$PEER_IP:9003:x, key-flags=0" vpn.secrets "key=$KEY"
nm connection up mesh-bad
check "bad peers entry: nmcli reports the VPN service failed to start" \
        has "The VPN service failed to start"
check "bad peers entry: the service's error names vpn.data 'peers' and the entry" \
        grep -q "vpn.data 'peers': '$PEER_IP:9003:x'" "$TMP/nm.log"
check "bad peers entry: no daemon was started" no_daemon

check "no sanitizer report from the service or the daemon" \
        bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$TMP/nm.log'"

summary
