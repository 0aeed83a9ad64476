# netns.sh - a LAN of network namespaces for integration tests (bash, root)
#
#   . "$top_srcdir/tests/lib/netns.sh"
#   netns_lan a b c         # a bridge on 10.232.N.1/24 and one namespace per
#                           # host on it: ${NETNS_IP[a]} = 10.232.N.11, ...
#   netns_exec a cmd...     # runs cmd inside host a's namespace
#   netns_cut a / netns_heal a    # host a's link down / up (a host cut off)
#   netns_partition a b / netns_unpartition a b
#                           # drop everything between a and b (nftables, in
#                           # both namespaces), every other link unharmed
#
# netns_lan sets NETNS_PREFIX (10.232.N) and NETNS_BRIDGE_IP (the bridge's
# own address, reachable from every host). The EXIT trap kills what runs in
# the namespaces, removes them and the bridge, then calls node_cleanup.

NETNS_TAG=$$
NETNS_HOSTS=
declare -A NETNS_IP

netns_name () { echo "dbt$NETNS_TAG$1"; }
_netns_if () { echo "e$NETNS_TAG$1"; }

netns_cleanup () {
    local h pids
    for h in $NETNS_HOSTS; do
        pids=$(ip netns pids "$(netns_name "$h")" 2>/dev/null)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        ip netns del "$(netns_name "$h")" 2>/dev/null
    done
    ip link del "dbtbr$NETNS_TAG" 2>/dev/null
    if type node_cleanup >/dev/null 2>&1; then node_cleanup; fi
}

netns_lan () {
    local h n i=11 bridge="dbtbr$NETNS_TAG"
    NETNS_PREFIX="10.232.$((RANDOM % 200 + 20))"
    NETNS_BRIDGE_IP="$NETNS_PREFIX.1"
    NETNS_HOSTS="$*"
    trap netns_cleanup EXIT
    ip link add "$bridge" type bridge || return 1
    ip addr add "$NETNS_BRIDGE_IP/24" dev "$bridge"
    ip link set "$bridge" up
    for h in "$@"; do
        NETNS_IP[$h]="$NETNS_PREFIX.$i"; i=$((i + 1))
        n=$(netns_name "$h")
        ip netns add "$n" || return 1
        ip link add "v$NETNS_TAG$h" type veth peer name "$(_netns_if "$h")" || return 1
        ip link set "v$NETNS_TAG$h" master "$bridge" up
        ip link set "$(_netns_if "$h")" netns "$n"
        ip netns exec "$n" ip link set lo up
        ip netns exec "$n" ip addr add "${NETNS_IP[$h]}/24" dev "$(_netns_if "$h")"
        ip netns exec "$n" ip link set "$(_netns_if "$h")" up
    done
}

netns_exec () { local h=$1; shift; ip netns exec "$(netns_name "$h")" "$@"; }

#  Both ends of the host's link go down: nothing leaves or reaches it; its
#  own processes still reach each other on its address.
netns_cut () {
    netns_exec "$1" ip link set "$(_netns_if "$1")" down &&
    ip link set "v$NETNS_TAG$1" down
}

netns_heal () {
    ip link set "v$NETNS_TAG$1" up &&
    netns_exec "$1" ip link set "$(_netns_if "$1")" up
}

netns_partition () {    # netns_partition A B: A and B no longer reach each other
    local x y
    for x in "$1" "$2"; do
        y=$([ "$x" = "$1" ] && echo "$2" || echo "$1")
        netns_exec "$x" nft -f - <<NFT || return 1
table inet dbtpart {
    chain in { type filter hook input priority 0; ip saddr ${NETNS_IP[$y]} drop; }
    chain out { type filter hook output priority 0; ip daddr ${NETNS_IP[$y]} drop; }
}
NFT
    done
}

netns_unpartition () {
    netns_exec "$1" nft delete table inet dbtpart &&
    netns_exec "$2" nft delete table inet dbtpart
}
