#!/bin/bash
# Builds the bootable image of the Xen end-to-end test from unpacked Debian
# packages: the dom0 initramfs (busybox, bash, iproute2, the Xen toolstack,
# vifguard), the domU initramfs (busybox, xen-netfront, xenstore client),
# the domU kernel as an uncompressed ELF, and a GRUB ISO that boots
# Xen -> dom0. Called by `cargo xtask xen-e2e`; every input comes in the
# environment:
#   ROOT      the Xen packages unpacked with dpkg-deb -x
#   KROOT     the kernel package (dom0's and the guests') unpacked the same
#             way, in a directory of its own
#   BUSYBOX   a static busybox binary
#   DEB       the vifguard .deb to test (`cargo xtask package`): unpacked
#             as dpkg lays it out, its maintainer scripts in
#             /var/lib/dpkg/info as dpkg keeps them
#   SENDER    vifguard-e2e-send (crafted ND frames, run in the guests)
#   SRC       this directory (init scripts, grub.cfg)
#   OUT       output directory (xen.iso lands here)
set -euo pipefail
: "${ROOT:?}" "${KROOT:?}" "${BUSYBOX:?}" "${DEB:?}" "${SENDER:?}" "${SRC:?}" "${OUT:?}"

KMODS=("$KROOT"/lib/modules/*)
if [ "${#KMODS[@]}" != 1 ] || [ ! -d "${KMODS[0]}" ]; then
    echo "mkimage: want one kernel in $KROOT/lib/modules, found: ${KMODS[*]}" >&2
    exit 1
fi
KVER=$(basename "${KMODS[0]}")
MULTIARCH=usr/lib/x86_64-linux-gnu
XENLIB="$ROOT/$MULTIARCH"
rm -rf "$OUT/dom0" "$OUT/domu" "$OUT/iso"
mkdir -p "$OUT/dom0" "$OUT/domu" "$OUT/iso/boot/grub"

# Copy a host or unpacked file to the same path in a tree.
put() { # tree src dest
    mkdir -p "$1/$(dirname "$3")"
    cp -L "$2" "$1/$3"
}

# Every shared library an ELF file needs (resolved against the unpacked
# Xen libraries first, then the host), copied to its path in the tree.
libs_of() { # tree elf...
    local tree=$1
    shift
    local lib
    for lib in $(LD_LIBRARY_PATH="$XENLIB" ldd "$@" 2>/dev/null |
        awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u); do
        case "$lib" in
        "$XENLIB"/*) put "$tree" "$lib" "$MULTIARCH/${lib##*/}" ;;
        *) [ -e "$tree$lib" ] || put "$tree" "$lib" "$lib" ;;
        esac
    done
}

busybox_into() { # tree
    put "$1" "$BUSYBOX" bin/busybox
    local a
    for a in $("$BUSYBOX" --list-full); do
        if [ ! -e "$1/$a" ] && [ ! -L "$1/$a" ]; then
            mkdir -p "$1/$(dirname "$a")"
            ln -s /bin/busybox "$1/$a"
        fi
    done
}

# Kernel modules and their dependencies, in load order, listed in
# etc/modules-order for the init script to insmod.
modules_into() { # tree module...
    local tree=$1
    shift
    mkdir -p "$tree/etc"
    : >"$tree/etc/modules-order"
    local m path
    for m in "$@"; do
        for path in $(modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'); do
            rel=${path#"$KROOT"/}
            rel=${rel#/}
            case "$rel" in
            *.ko.xz) ko=${rel%.xz} ;;
            *.ko.zst) ko=${rel%.zst} ;;
            *) ko=$rel ;;
            esac
            if [ ! -e "$tree/$ko" ]; then
                mkdir -p "$tree/$(dirname "$ko")"
                case "$rel" in
                *.xz) xz -dc "$KROOT/$rel" >"$tree/$ko" ;;
                *.zst) zstd -qdc "$KROOT/$rel" >"$tree/$ko" ;;
                *) cp "$KROOT/$rel" "$tree/$ko" ;;
                esac
                echo "/$ko" >>"$tree/etc/modules-order"
            fi
        done
    done
}

skeleton() { # tree
    mkdir -p "$1"/{proc,sys,dev,run,tmp,etc,root,var/log,var/lib} "$1/usr/lib"
    ln -sfn /run "$1/var/run"
    mkdir -p "$1/var/lock"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$1/etc/passwd"
    echo 'root:x:0:' >"$1/etc/group"
}

cpio_gz() { # tree out
    (cd "$1" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$2"
}

depmod -b "$KROOT" "$KVER"

# --- domU: busybox, xen-netfront, the xenstore client (commands from dom0),
# the ND frame sender.
D=$OUT/domu
skeleton "$D"
busybox_into "$D"
modules_into "$D" xen-netfront
for t in xenstore-read xenstore-write xenstore-exists xenstore-rm; do
    put "$D" "$ROOT/usr/bin/$t" "usr/bin/$t"
done
put "$D" "$SENDER" usr/bin/vifguard-e2e-send
chmod 755 "$D/usr/bin/vifguard-e2e-send"
libs_of "$D" "$D"/usr/bin/xenstore-read "$D"/usr/bin/vifguard-e2e-send
put "$D" "$SRC/domu-init.sh" init
chmod 755 "$D/init"
cpio_gz "$D" "$OUT/domu-initrd.gz"

# The domU kernel as an uncompressed ELF: decompressing the bzImage inside
# the emulated dom0 costs seconds per guest.
K="$KROOT/boot/vmlinuz-$KVER"
# The payload is xz (Debian's 6.1) or zstd (6.12): try each format whose
# magic the bzImage holds until one gives an ELF file. The decompressors
# stop with an error at the data after the payload, which is expected.
# (No `| head -1` in these pipelines: see gcc_s below. grep finding no
# magic is no error: with pipefail it would end the script.)
is_elf() { [ -s "$1" ] && file -b "$1" | grep -q '^ELF'; }
rm -f "$OUT/vmlinux"
for fmt in 'zstd -qdc:\x28\xb5\x2f\xfd' 'xz -dc:\xfd7zXZ\x00'; do
    off=$({ LC_ALL=C grep -aobP "${fmt#*:}" "$K" || true; } | awk -F: 'NR == 1 {print $1}')
    [ -n "$off" ] || continue
    tail -c +"$((off + 1))" "$K" | ${fmt%%:*} >"$OUT/vmlinux" 2>/dev/null || true
    is_elf "$OUT/vmlinux" && break
done
is_elf "$OUT/vmlinux" || { echo "mkimage: cannot extract vmlinux from $K" >&2; exit 1; }

# --- dom0: bash, iproute2, the Xen toolstack, vifguard, the test.
R=$OUT/dom0
skeleton "$R"
for f in /bin/bash /bin/ip /sbin/tc /sbin/bridge; do
    put "$R" "$f" "$f"
done
ln -s /bin/ip "$R/sbin/ip"
ln -s /sbin/tc "$R/usr/sbin/tc" 2>/dev/null || { mkdir -p "$R/usr/sbin"; ln -s /sbin/tc "$R/usr/sbin/tc"; }
busybox_into "$R"
(cd "$ROOT" && tar -c --exclude=./boot --exclude=./usr/share --exclude=./lib/modules \
    --exclude=./usr/lib/xen-common --exclude=./usr/sbin --exclude=./etc/init.d \
    --exclude=./etc/default --exclude=./usr/lib/systemd --exclude=./lib/systemd . ) | tar -x -C "$R"
mkdir -p "$R/usr/sbin"
for t in xl xenstored xenconsoled xen-init-dom0; do
    ln -sfn "/usr/lib/xen-4.17/bin/$t" "$R/usr/sbin/$t"
done
# vifguard as its package installs it: /usr/sbin/vifguard, the xl hook,
# /etc/vifguard/vifguard.toml, ...
dpkg-deb -x "$DEB" "$R"
mkdir -p "$R/var/lib/dpkg/info"
rm -rf "$OUT/deb-control"
dpkg-deb -e "$DEB" "$OUT/deb-control"
for s in postinst prerm postrm; do
    install -m 755 "$OUT/deb-control/$s" "$R/var/lib/dpkg/info/vifguard.$s"
done
# The administrator's edit of the configuration file:
cat >"$R/etc/vifguard/vifguard.toml" <<'EOF'
# vifs on xenbr0 without a vifguard/mode key are locked to their mac= and ip=
[network_default.bridges]
xenbr0 = "locked"
EOF
libs_of "$R" "$R"/bin/bash "$R"/bin/ip "$R"/sbin/tc "$R"/sbin/bridge "$R"/usr/sbin/vifguard \
    "$R"/usr/lib/xen-4.17/bin/* "$R"/usr/bin/xenstore*
# awk reads to the end: leaving early would kill ldconfig with SIGPIPE,
# which pipefail turns into a failed build now and then.
gcc_s=$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ && !found {print $NF; found = 1}')
put "$R" "$gcc_s" "$MULTIARCH/libgcc_s.so.1"
modules_into "$R" xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback bridge \
    sch_ingress cls_bpf
mkdir -p "$R/guest" "$R/etc/xen-e2e"
cp "$OUT/vmlinux" "$R/guest/vmlinux"
cp "$OUT/domu-initrd.gz" "$R/guest/initrd.gz"
put "$R" "$SRC/dom0-init.sh" init
put "$R" "$SRC/dom0-test.sh" etc/xen-e2e/test.sh
chmod 755 "$R/init" "$R/etc/xen-e2e/test.sh"
# Extra environment for the test (e.g. VIFGUARD_E2E_BREAK), from the xtask.
env | grep '^VIFGUARD_E2E_' >"$R/etc/xen-e2e/env" || true
cpio_gz "$R" "$OUT/iso/boot/initrd.gz"

# --- the ISO: GRUB -> Xen -> dom0.
cp "$ROOT/boot/xen-4.17-amd64.gz" "$OUT/iso/boot/xen.gz"
cp "$K" "$OUT/iso/boot/vmlinuz"
cp "$SRC/grub.cfg" "$OUT/iso/boot/grub/grub.cfg"
grub-mkrescue -o "$OUT/xen.iso" "$OUT/iso" >/dev/null 2>&1 || {
    grub-mkrescue -o "$OUT/xen.iso" "$OUT/iso"
    exit 1
}
ls -la "$OUT/xen.iso" "$OUT/iso/boot/initrd.gz" "$OUT/domu-initrd.gz" >&2
