#!/bin/sh
# /init of the guest initramfs (busybox). Configures eth0 with the addresses
# given on the kernel command line (vg_ip=, and vg_ip6= if the guest has an
# IPv6 address; from the xl config's extra=),
# then serves commands from dom0 over xenstore, independent of the network
# it is testing: dom0 writes "<seq> <command>" to data/cmd, the guest runs
# it and writes "<seq> <exit code>" to data/result.
# Exit codes of the commands: 0 the traffic got through, 1 it did not,
# 2 the guest could not set the test up.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "$m"; done </etc/modules-order

GW=192.0.2.1
GW_MAC=02:00:00:00:00:01
GW6=2001:db8::1
SPOOF_IP=192.0.2.99
SPOOF_IP6=2001:db8::99
SPOOF_MAC=00:16:3e:00:00:99
# Crafted ND frames busybox cannot send (testbed/src/bin/vifguard-e2e-send.rs).
SEND=/usr/bin/vifguard-e2e-send

for _ in $(seq 50); do
    [ -e /sys/class/net/eth0 ] && break
    sleep 0.2
done
ip link set lo up
# No duplicate address detection: addresses are usable at once (the spoof
# commands swap them), and the link-local one needs no waiting either.
sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip link set eth0 up
# The guest's own addresses; after a link down (which drops IPv6
# addresses) or a spoof, again.
own_addrs() {
    ip addr add "$vg_ip/24" dev eth0 2>/dev/null
    [ -z "${vg_ip6:-}" ] || ip -6 addr add "$vg_ip6/64" dev eth0 2>/dev/null
    return 0
}
own_addrs
sysctl -qw net.ipv4.ip_nonlocal_bind=1
MAC=$(cat /sys/class/net/eth0/address)
echo "GUEST up ip=$vg_ip ip6=${vg_ip6:-none} mac=$MAC"

# ping the gateway; 0 if any reply came back
ping_gw() {
    ping -c "${1:-3}" -W 2 "$GW" >/dev/null 2>&1
}

# Legitimate traffic; retries while the vif and the bridge come up.
cmd_ping() {
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        ping_gw 1 && return 0
    done
    return 1
}

# IPv6 to dom0 (Neighbor Discovery first); retries like cmd_ping.
cmd_ping6() {
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        ping6 -c 1 -W 2 "$GW6" >/dev/null 2>&1 && return 0
    done
    return 1
}

# Ping another address on the link ($1): for isolation, judged in dom0.
cmd_pingto() {
    ping -c 2 -W 2 "$1" >/dev/null 2>&1
}

# Send from an address the guest does not own ($1, default $SPOOF_IP; the
# gateway's MAC is set statically, so no ARP from the spoofed address is
# needed first).
cmd_ipspoof() {
    spoof=${1:-$SPOOF_IP}
    ip addr del "$vg_ip/24" dev eth0 || return 2
    ip addr add "$spoof/24" dev eth0 || return 2
    arp -s "$GW" "$GW_MAC" || return 2
    ping_gw 3
    rc=$?
    arp -d "$GW"
    ip addr del "$spoof/24" dev eth0
    own_addrs
    return $rc
}

# Send from a MAC address the guest was not given.
cmd_macspoof() {
    ip link set eth0 down || return 2
    ip link set eth0 address "$SPOOF_MAC" || return 2
    ip link set eth0 up || return 2
    own_addrs
    ping_gw 3
    rc=$?
    ip link set eth0 down
    ip link set eth0 address "$MAC"
    ip link set eth0 up
    own_addrs
    return $rc
}

# Ping dom0 over IPv6 from an address the guest does not own: its Neighbor
# Solicitation and echo requests carry the spoofed source.
cmd_ip6spoof() {
    [ -n "${vg_ip6:-}" ] || return 2
    ip -6 addr del "$vg_ip6/64" dev eth0 || return 2
    ip -6 addr add "$SPOOF_IP6/64" dev eth0 || return 2
    ping6 -c 3 -W 2 "$GW6" >/dev/null 2>&1
    rc=$?
    ip -6 addr del "$SPOOF_IP6/64" dev eth0
    own_addrs
    return $rc
}

# Unsolicited Neighbor Advertisements (override flag) from the guest's own
# address claiming someone else's ($1) is at the guest's MAC; judged in dom0.
cmd_nd() {
    [ -n "${vg_ip6:-}" ] || return 2
    "$SEND" na eth0 "$vg_ip6" "$1" 3
}

# Router Advertisements from the guest's link-local address, announcing
# prefix $1/64 and a default route; judged in dom0.
cmd_ra() {
    "$SEND" ra eth0 "$1" 3
}

# Gratuitous ARP claiming someone else's address ($1); the result is
# judged in dom0 (neighbour table, counters).
cmd_arppoison() {
    for _ in 1 2 3; do
        arping -U -c 3 -I eth0 "$1" 2>&1 | grep -q 'Sent' && return 0
    done
    return 2
}

xenstore-write data/ready 1
last=""
while true; do
    cmd=$(xenstore-read data/cmd 2>/dev/null)
    seq=${cmd%% *}
    if [ -n "$cmd" ] && [ "$seq" != "$last" ]; then
        last=$seq
        # shellcheck disable=SC2086
        set -- ${cmd#* }
        name=$1
        shift
        echo "GUEST $seq $name $* started at $(cut -d' ' -f1 /proc/uptime)"
        "cmd_$name" "$@"
        rc=$?
        echo "GUEST $seq $name $* -> $rc at $(cut -d' ' -f1 /proc/uptime)"
        xenstore-write data/result "$seq $rc"
    fi
    sleep 0.5
done
