#!/bin/bash
# /init of the dom0 initramfs: bring up the Xen toolstack by hand (no udev,
# no systemd; xl runs the vif hotplug scripts itself), then run the test
# and power off. bash, not busybox sh: busybox sh would run its own ip/tc
# applets instead of iproute2's.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo "VIFGUARD-E2E dom0 init started ($(uname -r))"

fatal() {
    echo "VIFGUARD-E2E FAIL $1 ${2:-}"
    echo "VIFGUARD-E2E DONE"
    sync
    poweroff -f
}

while read -r m; do
    insmod "$m" || echo "dom0: insmod $m failed"
done </etc/modules-order

mkdir -p /proc/xen /run/xen /run/xenstored /var/lib/xen /var/log/xen/console /var/lib/xenstored
mount -t xenfs xenfs /proc/xen || fatal boot "mount xenfs"
mount -t bpf bpf /sys/fs/bpf || fatal boot "mount bpffs"

xenstored --pid-file /run/xenstored.pid || fatal boot "xenstored"
for _ in $(seq 50); do
    [ -S /run/xenstored/socket ] && break
    sleep 0.2
done
xen-init-dom0 || fatal boot "xen-init-dom0"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console ||
    fatal boot "xenconsoled"

ip link set lo up
ip link add xenbr0 type bridge forward_delay 0 stp_state 0
ip link set xenbr0 address 02:00:00:00:00:01
ip addr add 192.0.2.1/24 dev xenbr0
ip -6 addr add 2001:db8::1/64 dev xenbr0 nodad
# dom0 is a host on xenbr0 that would take a guest's Router Advertisement
# (the ra-guard check looks for its effect).
sysctl -qw net.ipv6.conf.xenbr0.accept_ra=1
ip link set xenbr0 up
echo "VIFGUARD-E2E PASS boot"

/etc/xen-e2e/test.sh
echo "VIFGUARD-E2E DONE"
sync
poweroff -f
