#!/bin/sh
# /init of the guest initramfs (busybox). Configures eth0 with the address
# given on the kernel command line (vg_ip=, from the xl config's extra=),
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
SPOOF_IP=192.0.2.99
SPOOF_MAC=00:16:3e:00:00:99

for _ in $(seq 50); do
    [ -e /sys/class/net/eth0 ] && break
    sleep 0.2
done
ip link set lo up
ip link set eth0 up
ip addr add "$vg_ip/24" dev eth0
sysctl -qw net.ipv4.ip_nonlocal_bind=1
MAC=$(cat /sys/class/net/eth0/address)
echo "GUEST up ip=$vg_ip mac=$MAC"

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

# Send from an address the guest does not own (the gateway's MAC is set
# statically, so no ARP from the spoofed address is needed first).
cmd_ipspoof() {
    ip addr flush dev eth0 || return 2
    ip addr add "$SPOOF_IP/24" dev eth0 || return 2
    arp -s "$GW" "$GW_MAC" || return 2
    ping_gw 3
    rc=$?
    arp -d "$GW"
    ip addr flush dev eth0
    ip addr add "$vg_ip/24" dev eth0
    return $rc
}

# Send from a MAC address the guest was not given.
cmd_macspoof() {
    ip link set eth0 down || return 2
    ip link set eth0 address "$SPOOF_MAC" || return 2
    ip link set eth0 up || return 2
    ip addr add "$vg_ip/24" dev eth0 2>/dev/null
    ping_gw 3
    rc=$?
    ip link set eth0 down
    ip link set eth0 address "$MAC"
    ip link set eth0 up
    ip addr add "$vg_ip/24" dev eth0 2>/dev/null
    return $rc
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
