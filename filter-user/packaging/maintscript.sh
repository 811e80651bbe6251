# vifguard's package scripts: the functions the .deb's maintainer scripts
# and the .rpm's scriptlets run. `cargo xtask package` puts this text in
# front of each, followed by a few lines that map dpkg's or rpm's arguments
# onto these functions (xtask/src/package.rs), so both formats do the same.
# POSIX sh. Nothing here fails the install or removal: a dom0 whose kernel
# cannot load the programs (XCP-ng 8.x's 4.19) must still be able to install
# and remove the package, and a failed step says what to run by hand.
#
# DPKG_ROOT: set when dpkg installs into another root without chroot (the
# package tests: dpkg --root=DIR --force-script-chrootless). Then only
# files below it change: nothing runs against this host's vifs, bpffs or
# systemd.

vg_root=${DPKG_ROOT:-}
vg_bin=$vg_root/usr/sbin/vifguard
vg_units="vifguard-sync.service vifguard-watch.service"

vg_say() {
    echo "vifguard: $*" >&2
}

# Whether a running systemd manages this host (not a chroot, not dpkg --root).
vg_systemd() {
    [ -z "$vg_root" ] && [ -d /run/systemd/system ]
}

# Whether the host has vifs vifguard filters: the names `vifguard sync`
# attaches (vifN.M, vifN.M-emu, tapN.M).
vg_has_vifs() {
    for vg_i in /sys/class/net/vif* /sys/class/net/tap*; do
        case ${vg_i##*/} in
        vif[0-9]*.[0-9]* | tap[0-9]*.[0-9]*) return 0 ;;
        esac
    done
    return 1
}

# First install: the boot-time sync on (it loads and verifies the programs
# before xendomains starts guests). Not on an upgrade, so an administrator
# who disabled it keeps it disabled. The watch service is left to the
# administrator: hosts whose toolstack calls a hook on every policy change
# (XAPI) do not need it.
vg_enable() {
    command -v systemctl >/dev/null 2>&1 || return 0
    systemctl --root="${vg_root:-/}" enable vifguard-sync.service >/dev/null 2>&1 ||
        vg_say "could not enable vifguard-sync.service: run systemctl enable vifguard-sync.service"
    return 0
}

vg_reload() {
    vg_systemd || return 0
    systemctl daemon-reload >/dev/null 2>&1 || true
}

# Install and upgrade: every vif present gets this version's programs
# (`vifguard sync` swaps each vif's programs atomically and then removes the
# older program pins). Only where there are vifs: without any (no Xen, a
# guest, a build machine) there is nothing to filter, and sync would load
# programs for nothing or fail for want of xenstore. A failed sync leaves
# each vif with the filter it had: say so rather than fail the package.
vg_sync() {
    [ -z "$vg_root" ] || return 0
    vg_has_vifs || return 0
    if "$vg_bin" sync; then
        vg_say "vifguard sync: every vif runs this version's programs"
    else
        vg_say "vifguard sync failed (above): vifs keep the filters they had; fix the cause, then run: vifguard sync"
    fi
    return 0
}

# Upgrade: a running `vifguard watch` restarted on the new binary.
vg_restart_watch() {
    vg_systemd || return 0
    systemctl try-restart vifguard-watch.service >/dev/null 2>&1 ||
        vg_say "could not restart vifguard-watch.service: run systemctl restart vifguard-watch.service"
    return 0
}

# Removal (not upgrade): stop the services, detach vifguard from every
# interface it filters, then unpin its maps and programs. The pins go only
# once every detach worked: a tc filter left on a vif keeps running its
# program, and unpinning the maps under it would leave it enforcing a
# policy no command can change or remove any more.
vg_remove() {
    [ -z "$vg_root" ] || return 0
    if vg_systemd; then
        # shellcheck disable=SC2086 # two unit names
        systemctl stop $vg_units >/dev/null 2>&1 || true
    fi
    [ -x "$vg_bin" ] || return 0
    # `status` starts each interface with "NAME (ifindex N): ...".
    if ! vg_status=$("$vg_bin" status 2>&1); then
        vg_say "vifguard status failed, nothing detached: $vg_status"
        vg_say "detach by hand (vifguard detach IFACE), then remove the pins below the configured bpffs"
        return 0
    fi
    vg_names=$(printf '%s\n' "$vg_status" | sed -n 's/^\([^ (][^ ]*\) (ifindex [0-9]*):.*/\1/p')
    vg_failed=0
    vg_count=0
    for vg_n in $vg_names; do
        if "$vg_bin" detach "$vg_n"; then
            vg_count=$((vg_count + 1))
        else
            vg_failed=1
            vg_say "detach $vg_n failed: it keeps its filter"
        fi
    done
    [ "$vg_count" = 0 ] || vg_say "detached from $vg_count interface(s): their guests are no longer filtered"
    if [ "$vg_failed" = 0 ]; then
        vg_unpin
    fi
    rm -rf /run/vifguard
    return 0
}

# The pins below the configured bpffs root: vifguard's own layout
# directories (v<N>) only, then the root if that left it empty, so a
# `bpffs` set to a directory shared with other programs loses nothing else.
vg_unpin() {
    vg_conf=/etc/vifguard/vifguard.toml
    vg_bpffs=$(sed -n 's/^[[:space:]]*bpffs[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$vg_conf" 2>/dev/null | head -n 1)
    vg_bpffs=${vg_bpffs:-/sys/fs/bpf/vifguard}
    for vg_d in "$vg_bpffs"/v[0-9]*; do
        [ -d "$vg_d" ] && rm -rf "$vg_d"
    done
    rmdir "$vg_bpffs" 2>/dev/null || true
}

# rpm removal: the services off while their unit files still exist.
vg_disable() {
    command -v systemctl >/dev/null 2>&1 || return 0
    # shellcheck disable=SC2086 # two unit names
    systemctl --root="${vg_root:-/}" disable $vg_units >/dev/null 2>&1 || true
    return 0
}

# dpkg purge: the units' enable links (kept on a mere removal, as Debian's
# own helpers do, so reinstalling keeps the administrator's choice).
vg_purge() {
    for vg_u in $vg_units; do
        rm -f "$vg_root/etc/systemd/system/multi-user.target.wants/$vg_u"
    done
    [ -n "$vg_root" ] || rm -rf /run/vifguard
    return 0
}
