#!/bin/bash
# The end-to-end checks, run by dom0's init once the toolstack is up.
# Prints one line per check: "VIFGUARD-E2E PASS <name>" or
# "VIFGUARD-E2E FAIL <name> <detail>" (the xtask requires every name).
# Three PV guests on xenbr0, their vifs plugged by xl with vifguard's
# hotplug wrapper: ga (192.0.2.2, 2001:db8::2, legitimate) and gb
# (192.0.2.3, 2001:db8::3, the attacker), policies from xl's ip=; gc, whose
# policy comes from XAPI keys (192.0.2.5, 198.51.100.5, 2001:db8::5) that
# override its xl ip= (192.0.2.4, 2001:db8::4).
# "Attached" means what `vifguard status` reports (a policy entry and both
# TC hooks), whatever the attach method (TCX links or tc filters).
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
# shellcheck disable=SC1091
[ -f /etc/xen-e2e/env ] && . /etc/xen-e2e/env
BPFFS=/sys/fs/bpf/vifguard
SEQ=0

pass() { echo "VIFGUARD-E2E PASS $1"; }
fail() { echo "VIFGUARD-E2E FAIL $1 ${*:2}"; }
check() { # name detail-if-false command...
    local name=$1 detail=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$detail"; fi
}

# Deliberately broken vifguard, to show that the checks catch it.
case "${VIFGUARD_E2E_BREAK:-}" in
noattach)
    echo "dom0: VIFGUARD_E2E_BREAK=noattach: vifguard hotplug and sync do nothing"
    mv /usr/sbin/vifguard /usr/sbin/vifguard.real
    cat >/usr/sbin/vifguard <<'EOF'
#!/bin/bash
case "$1" in hotplug|sync|attach) exit 0 ;; esac
exec /usr/sbin/vifguard.real "$@"
EOF
    chmod 755 /usr/sbin/vifguard
    ;;
esac

# Watchdog: when a step makes no progress for 90 s, show what dom0 is
# doing (processes and their kernel stacks) on the serial console.
STEP_FILE=/tmp/step
step() { echo "$*" >"$STEP_FILE"; }
step start
(
    last="" since=$SECONDS
    while sleep 15; do
        cur=$(cat "$STEP_FILE" 2>/dev/null)
        if [ "$cur" != "$last" ]; then
            last=$cur since=$SECONDS
        elif [ $((SECONDS - since)) -ge 90 ]; then
            echo "dom0: watchdog: step '$cur' stuck for $((SECONDS - since)) s"
            for d in /proc/[0-9]*; do
                c=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
                [ -n "$c" ] || continue
                echo "dom0: watchdog: ${d#/proc/} $(awk '{print $3}' "$d/stat") $c :: $(tr '\n' ' ' <"$d/stack" 2>/dev/null | cut -c1-300)"
            done
            since=$SECONDS
        fi
    done
) &
WATCHDOG=$!

# A guest's xl config. The kernel command line gives the guest its
# addresses (vg_ip, vg_ip6); the vif's ip= is what xl writes to the backend.
guest_cfg() { # name mac xl-ip-list guest-ip guest-ip6 [uuid]
    cat >"/etc/xen-e2e/$1.cfg" <<EOF
name = "$1"
type = "pv"
kernel = "/guest/vmlinux"
ramdisk = "/guest/initrd.gz"
extra = "console=hvc0 quiet vg_ip=$4 vg_ip6=$5"
memory = 96
vcpus = 1
on_crash = "destroy"
vif = ['mac=$2,bridge=xenbr0,ip=$3,script=/etc/xen/scripts/vif-vifguard']
EOF
    [ -n "${6:-}" ] && echo "uuid = \"$6\"" >>"/etc/xen-e2e/$1.cfg"
    return 0
}

domid() { xl domid "$1" 2>/dev/null; }
vif_of() { echo "vif$(domid "$1").0"; }

# Create guests (at the same time: their hotplugs run concurrently, as on a
# real host) and wait until each serves commands.
start_guest() { # name...
    local t0=$SECONDS g d rc=0
    local -A pid
    for g in "$@"; do
        xl create "/etc/xen-e2e/$g.cfg" >"/tmp/xl-create-$g.log" 2>&1 &
        pid[$g]=$!
    done
    for g in "$@"; do
        wait "${pid[$g]}" && continue
        echo "dom0: xl create $g failed:"
        cat "/tmp/xl-create-$g.log"
        rc=1
    done
    [ "$rc" = 0 ] || return 1
    for g in "$@"; do
        d=$(domid "$g")
        while [ "$(xenstore-read "/local/domain/$d/data/ready" 2>/dev/null)" != 1 ]; do
            if [ $((SECONDS - t0)) -ge 240 ]; then
                echo "dom0: $g (domain $d) never became ready; its console:"
                cat "/var/log/xen/console/guest-$g.log" 2>/dev/null
                return 1
            fi
            sleep 0.5
        done
        echo "dom0: $g is domain $d, ready after $((SECONDS - t0)) s"
    done
}

# Run a guest command (see domu-init.sh); returns its exit code, 255 on timeout.
gcmd() { # name command args...
    local d r
    d=$(domid "$1")
    shift
    SEQ=$((SEQ + 1))
    step "command $SEQ to domain $d: $*"
    timeout 30 xenstore-write "/local/domain/$d/data/cmd" "$SEQ $*"
    local deadline=$((SECONDS + 240))
    while [ "$SECONDS" -lt "$deadline" ]; do
        r=$(timeout 30 xenstore-read "/local/domain/$d/data/result" 2>/dev/null)
        if [ "${r%% *}" = "$SEQ" ]; then
            return "${r#* }"
        fi
        sleep 0.5
    done
    echo "dom0: domain $d did not answer command $SEQ ($*) within 240 s"
    return 255
}

# The guests' consoles (xenconsoled logs them), for the serial log.
dump_consoles() {
    local f
    for f in /var/log/xen/console/guest-*.log; do
        [ -e "$f" ] || continue
        sed "s/^/dom0: console $(basename "$f" .log): /" "$f" | tr -d '\r'
    done
}

ifindex_of() { cat "/sys/class/net/$1/ifindex" 2>/dev/null; }

# `vifguard status VIF --json` without white space, empty when the vif has
# no policy entry.
status_json() { # vif
    timeout 60 vifguard status "$1" --json 2>/dev/null | tr -d ' \n'
}

# A vif's packet counter for a reason (direction from_guest unless given),
# from the "counters" list of `vifguard status --json`; 0 when absent.
counter() { # vif reason [direction]
    local j obj
    j=$(status_json "$1")
    j=${j#*\"counters\":\[}
    j=${j%%\]*}
    # One object a line. (No `< <(...)`: dom0 has no /dev/fd.)
    while read -r obj; do
        if [[ "$obj" == *"\"direction\":\"${3:-from_guest}\""* ]] &&
            [[ "$obj" == *"\"reason\":\"$2\""* ]] &&
            [[ "$obj" =~ \"packets\":([0-9]+) ]]; then
            echo "${BASH_REMATCH[1]}"
            return
        fi
    done <<<"${j//\},\{/$'\n'}"
    echo 0
}

# The vif's "hooks" list as status reports it, e.g. ["tc-ingress","tc-egress"].
hooks_of() { # vif
    status_json "$1" | grep -o '"hooks":\[[^]]*\]'
}

attached() { # vif: a policy entry in locked mode and both TC hooks
    local j
    j=$(status_json "$1")
    [[ "$j" == *'"mode":"locked"'* ]] &&
        [[ "$j" =~ \"hooks\":\[[^]]*\"tc-ingress\" ]] &&
        [[ "$j" =~ \"hooks\":\[[^]]*\"tc-egress\" ]]
}

# What tc sees on a vif (classic tc attaches show up here; TCX links do not).
tc_filters() { # vif
    echo "ingress: $(tc filter show dev "$1" ingress 2>&1 | tr '\n' ' ')"
    echo "egress: $(tc filter show dev "$1" egress 2>&1 | tr '\n' ' ')"
}

# Whether tc lists a bpf filter on either hook of the vif.
tc_has_bpf() { # vif
    tc filter show dev "$1" ingress 2>/dev/null | grep -q bpf ||
        tc filter show dev "$1" egress 2>/dev/null | grep -q bpf
}

# Run a spoofing command in guest $1 and require that its traffic did not
# get through and that the counter $reason of its vif moved.
spoof_check() { # check-name guest reason command args...
    local name=$1 g=$2 reason=$3 vif before after rc
    shift 3
    step "$name"
    vif=$(vif_of "$g")
    before=$(counter "$vif" "$reason")
    gcmd "$g" "$@"
    rc=$?
    after=$(counter "$vif" "$reason")
    echo "dom0: $name: guest $g ($vif) '$*' -> $rc, $reason $before -> $after"
    if [ "$rc" = 1 ] && [ "$after" -gt "$before" ]; then
        pass "$name"
    elif [ "$rc" = 0 ]; then
        fail "$name" "spoofed traffic from $g got through ($reason $before -> $after)"
    else
        fail "$name" "guest command rc=$rc, $reason $before -> $after"
    fi
}

GA_MAC=00:16:3e:00:00:02
GB_MAC=00:16:3e:00:00:03
guest_cfg ga $GA_MAC "192.0.2.2 2001:db8::2" 192.0.2.2 2001:db8::2
guest_cfg gb $GB_MAC "192.0.2.3 2001:db8::3" 192.0.2.3 2001:db8::3

# gc: an XAPI-managed VIF. xenopsd keeps the VIF's locking mode and allowed
# addresses in /xapi/<vm-uuid>/private/vif/<devid>/, owned by dom0 with no
# access for others; xl writes /local/domain/<domid>/vm = /vm/<uuid> from
# the uuid= of the config. The guest uses 192.0.2.5, which only XAPI
# allows; xl's ip= (192.0.2.4) is what the XAPI list replaces.
GC_UUID=6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b77
GC_XAPI=/xapi/$GC_UUID/private/vif/0
guest_cfg gc 00:16:3e:00:00:04 "192.0.2.4 2001:db8::4" 192.0.2.5 "" "$GC_UUID"
xenstore-write "$GC_XAPI/locking-mode" locked \
    "$GC_XAPI/ipv4-allowed" 192.0.2.5,198.51.100.5 \
    "$GC_XAPI/ipv6-allowed" 2001:db8::5 &&
    xenstore-chmod -r "/xapi/$GC_UUID" n0 ||
    echo "dom0: writing the XAPI keys failed"

# As vifguard-sync.service does at boot (before xendomains): load, verify
# and pin the programs once, so no guest's hotplug pays for it (under
# QEMU's emulation the verifier takes many seconds, and three concurrent
# hotplugs queue behind the first one's load within libxl's timeout).
t_sync=$SECONDS
timeout 120 vifguard sync || echo "dom0: vifguard sync at boot failed ($?)"
echo "dom0: vifguard sync at boot took $((SECONDS - t_sync)) s"

if start_guest ga gb gc; then
    pass guests-up
else
    fail guests-up "xl create or guest start failed"
    xl list
    dump_consoles
    exit 0
fi
VA=$(vif_of ga)
VB=$(vif_of gb)
VC=$(vif_of gc)
echo "dom0: vifs $VA $VB $VC"
xenstore-ls "/local/domain/0/backend/vif/$(domid gb)/0" 2>/dev/null | sed 's/^/dom0: /'
vifguard status
tc_filters "$VA" | sed "s/^/dom0: tc $VA /"

both_attached() { attached "$VA" && attached "$VB"; }
check hotplug-attached "$VA or $VB has no locked policy with both TC hooks (hooks: $(hooks_of "$VA") $(hooks_of "$VB"))" both_attached

gcmd ga ping
rc_a=$?
gcmd gb ping
rc_b=$?
ping -c 2 -W 2 192.0.2.2 >/dev/null 2>&1
rc_d=$?
check legit-ping "ga->dom0 rc=$rc_a gb->dom0 rc=$rc_b dom0->ga rc=$rc_d" \
    test "$rc_a$rc_b$rc_d" = 000

spoof_check ipv4-spoof gb ipv4_spoof ipspoof
spoof_check mac-spoof gb mac_spoof macspoof

# ARP poisoning: gb claims ga's address (dom0 has a neighbour entry for it
# from the ping above; a gratuitous ARP that got through would rewrite it)
# and the gateway's.
before=$(counter "$VB" arp_spa_spoof)
gcmd gb arppoison 192.0.2.2
rc1=$?
gcmd gb arppoison 192.0.2.1
rc2=$?
after=$(counter "$VB" arp_spa_spoof)
neigh=$(ip neigh show 192.0.2.2 dev xenbr0)
echo "dom0: arp-poison: rc $rc1 $rc2, arp_spa_spoof $before -> $after, neighbour: $neigh"
if [ "$rc1$rc2" != 00 ]; then
    fail arp-poison "guest could not send ARP (rc $rc1 $rc2)"
elif [[ "$neigh" == *00:16:3e:00:00:03* ]]; then
    fail arp-poison "dom0's neighbour entry for 192.0.2.2 now points at gb: $neigh"
elif [ "$after" -lt "$((before + 6))" ]; then
    fail arp-poison "arp_spa_spoof $before -> $after, expected 6 drops"
else
    pass arp-poison
fi

# --- IPv6 on the real vifs. Legitimate traffic needs Neighbor Discovery
# in both directions; the pass counter shows that vifguard looked at it.
step ipv6-legit-ping
pass_before=$(counter "$VA" pass)
gcmd ga ping6
rc_a=$?
ping6 -c 2 -W 2 2001:db8::2 >/dev/null 2>&1
rc_d=$?
pass_after=$(counter "$VA" pass)
neigh6=$(ip -6 neigh show 2001:db8::2 dev xenbr0)
echo "dom0: ipv6-legit-ping: ga->dom0 rc $rc_a, dom0->ga rc $rc_d, $VA from_guest pass $pass_before -> $pass_after, neighbour: $neigh6"
if [ "$rc_a$rc_d" != 00 ]; then
    fail ipv6-legit-ping "ga->dom0 rc=$rc_a dom0->ga rc=$rc_d"
elif [ "$pass_after" -le "$pass_before" ]; then
    fail ipv6-legit-ping "$VA from_guest pass $pass_before -> $pass_after: vifguard did not see the traffic"
elif [[ "$neigh6" != *$GA_MAC* ]]; then
    fail ipv6-legit-ping "dom0 has no neighbour entry for 2001:db8::2 at $GA_MAC: $neigh6"
else
    pass ipv6-legit-ping
fi

spoof_check ipv6-spoof gb ipv6_spoof ip6spoof

# A forged Neighbor Advertisement: gb, from its own address, claims ga's
# 2001:db8::2 is at gb's MAC. Through, it would rewrite dom0's neighbour
# entry for ga (the override flag is set).
step nd-spoof
before=$(counter "$VB" nd_spoof)
gcmd gb nd 2001:db8::2
rc=$?
after=$(counter "$VB" nd_spoof)
neigh6=$(ip -6 neigh show 2001:db8::2 dev xenbr0)
echo "dom0: nd-spoof: rc $rc, nd_spoof $before -> $after, neighbour: $neigh6"
if [ "$rc" != 0 ]; then
    fail nd-spoof "guest could not send the NA (rc $rc)"
elif [[ "$neigh6" == *$GB_MAC* ]]; then
    fail nd-spoof "dom0's neighbour entry for 2001:db8::2 now points at gb: $neigh6"
elif [ "$after" -lt "$((before + 3))" ]; then
    fail nd-spoof "nd_spoof $before -> $after, expected 3 drops"
else
    pass nd-spoof
fi

# A Router Advertisement from gb (prefix 2001:db8:bad::/64, router
# lifetime 1800 s). Through, dom0 (accept_ra on xenbr0) would add a
# default route via gb and an address in the prefix.
step ra-guard
before=$(counter "$VB" ra_guard)
gcmd gb ra 2001:db8:bad::
rc=$?
after=$(counter "$VB" ra_guard)
learnt=$( (ip -6 route show; ip -6 addr show dev xenbr0) | grep -E 'proto ra|2001:db8:bad' | tr '\n' ' ')
echo "dom0: ra-guard: rc $rc, ra_guard $before -> $after, learnt from RAs: [$learnt]"
if [ "$rc" != 0 ]; then
    fail ra-guard "guest could not send the RA (rc $rc)"
elif [ -n "$learnt" ]; then
    fail ra-guard "dom0 took gb's RA: $learnt"
elif [ "$after" -lt "$((before + 3))" ]; then
    fail ra-guard "ra_guard $before -> $after, expected 3 drops"
else
    pass ra-guard
fi

# --- Live change through `vifguard watch`: ga switched to isolated while
# it runs (xl writes no hook for that); only dom0 stays reachable.
step watch-isolated
vifguard watch >/tmp/vifguard-watch.log 2>&1 &
WATCH_PID=$!
sleep 1
BE_A="/local/domain/0/backend/vif/$(domid ga)/0"
# Milliseconds since boot, in steps of 10 (busybox date has no %N).
now_ms() { local u _; read -r u _ </proc/uptime; u=${u/./}; echo $((10#$u * 10)); }
t0=$(now_ms)
xenstore-write "$BE_A/vifguard/destinations" "192.0.2.1/32 2001:db8::1/128" "$BE_A/vifguard/mode" isolated
applied=""
for _ in $(seq 200); do
    if [[ "$(status_json "$VA")" == *'"mode":"isolated"'* ]]; then
        applied=$(($(now_ms) - t0))
        break
    fi
    sleep 0.01
done
iso_before=$(counter "$VA" isolation)
gcmd ga ping
rc_gw=$?
gcmd ga pingto 192.0.2.3
rc_gb=$?
iso_after=$(counter "$VA" isolation)
echo "dom0: watch-isolated: applied after ${applied:-never} ms; ga->dom0 rc $rc_gw, ga->gb rc $rc_gb, isolation $iso_before -> $iso_after"
sed 's/^/dom0: watch log: /' /tmp/vifguard-watch.log
if [ -z "$applied" ]; then
    fail watch-isolated "vifguard watch did not apply ga's isolated mode within 2 s"
elif [ "$rc_gw" != 0 ]; then
    fail watch-isolated "isolated ga could not reach its destination dom0 (rc $rc_gw)"
elif [ "$rc_gb" = 0 ] || [ "$iso_after" -le "$iso_before" ]; then
    fail watch-isolated "isolated ga reached gb (rc $rc_gb) or nothing was counted as isolation ($iso_before -> $iso_after)"
else
    pass watch-isolated
fi
xenstore-write "$BE_A/vifguard/mode" locked
xenstore-rm "$BE_A/vifguard/destinations"
for _ in $(seq 200); do
    [[ "$(status_json "$VA")" == *'"mode":"locked"'* ]] && break
    sleep 0.01
done
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null

# --- XAPI: gc's policy is the XAPI list, not its xl ip=.
step xapi-policy
pol=$(timeout 60 vifguard policy "$VC" 2>&1)
echo "$pol" | sed 's/^/dom0: policy: /'
jc=$(status_json "$VC")
echo "dom0: status $VC: $jc"
if [[ "$pol" != *", source xapi"* ]]; then
    fail xapi-policy "vifguard policy $VC does not name the xapi source"
elif ! grep -qE "^ +ipv4 +192\.0\.2\.5 198\.51\.100\.5 +<- xenstore $GC_XAPI/ipv4-allowed\$" <<<"$pol" ||
    ! grep -qE "^ +ipv6 +2001:db8::5 +<- xenstore $GC_XAPI/ipv6-allowed\$" <<<"$pol"; then
    fail xapi-policy "vifguard policy $VC does not show the XAPI address lists and their keys"
elif ! attached "$VC"; then
    fail xapi-policy "$VC has no locked policy with both TC hooks"
elif [[ "$jc" != *'"addresses":["192.0.2.5","198.51.100.5","2001:db8::5"]'* ]]; then
    fail xapi-policy "$VC's installed addresses are not the XAPI ones: $jc"
else
    pass xapi-policy
fi

step xapi-allowed
pass_before=$(counter "$VC" pass)
gcmd gc ping
rc=$?
pass_after=$(counter "$VC" pass)
echo "dom0: xapi-allowed: gc (192.0.2.5) -> dom0 rc $rc, $VC from_guest pass $pass_before -> $pass_after"
if [ "$rc" != 0 ]; then
    fail xapi-allowed "gc could not ping from 192.0.2.5, which XAPI allows (rc $rc)"
elif [ "$pass_after" -le "$pass_before" ]; then
    fail xapi-allowed "$VC from_guest pass $pass_before -> $pass_after: vifguard did not see the traffic"
else
    pass xapi-allowed
fi
# xl's ip= for gc is 192.0.2.4: not allowed, XAPI's list replaces it.
spoof_check xapi-xl-ip-spoof gc ipv4_spoof ipspoof 192.0.2.4

# --- A live XAPI change of gc's allowed addresses, as xenopsd makes it
# (xenops_server_xen.ml set_locking_mode): delete the three keys, write
# them back one by one, then run setup-vif-rules (vifguard's drop-in).
step xapi-live-update
xapi_keys() { # ipv4-list
    xenstore-rm "$GC_XAPI/locking-mode" "$GC_XAPI/ipv4-allowed" "$GC_XAPI/ipv6-allowed"
    xenstore-write "$GC_XAPI/locking-mode" locked
    xenstore-write "$GC_XAPI/ipv4-allowed" "$1"
    xenstore-write "$GC_XAPI/ipv6-allowed" 2001:db8::5
    timeout 60 vifguard setup-vif-rules classic "$VC" "$GC_UUID" 0 filter
}
xapi_keys 192.0.2.4
rc_svr=$?
# The old address's ARP or IP, whichever the guest sends first, is dropped.
spoofs() { echo $(($(counter "$VC" ipv4_spoof) + $(counter "$VC" arp_spa_spoof))); }
spoof_before=$(spoofs)
gcmd gc ipspoof 192.0.2.4
rc_new=$?
gcmd gc ping
rc_old=$?
spoof_after=$(spoofs)
echo "dom0: xapi-live-update: setup-vif-rules rc $rc_svr; from 192.0.2.4 (new) rc $rc_new, from 192.0.2.5 (old) rc $rc_old, ipv4_spoof+arp_spa_spoof $spoof_before -> $spoof_after; $(status_json "$VC")"
if [ "$rc_svr" != 0 ]; then
    fail xapi-live-update "vifguard setup-vif-rules ... filter failed (rc $rc_svr)"
elif [ "$rc_new" != 0 ]; then
    fail xapi-live-update "gc could not send from its new address 192.0.2.4 (rc $rc_new)"
elif [ "$rc_old" = 0 ] || [ "$spoof_after" -le "$spoof_before" ]; then
    fail xapi-live-update "gc's old address 192.0.2.5 still passes (rc $rc_old, ipv4_spoof+arp_spa_spoof $spoof_before -> $spoof_after)"
else
    pass xapi-live-update
fi
xapi_keys 192.0.2.5,198.51.100.5 || echo "dom0: restoring gc's XAPI keys failed"

step destroy-cleanup
# xl destroy: the vif is gone and no policy entry is left for it.
IDX_B=$(ifindex_of "$VB")
xl destroy gb
for _ in $(seq 60); do
    [ -e "/sys/class/net/$VB" ] || break
    sleep 0.5
done
sleep 1
entries=$(vifguard status --json 2>/dev/null | grep -c "\"ifindex\": $IDX_B,")
echo "dom0: after xl destroy gb: status entries for ifindex $IDX_B: $entries"
vifguard status
if [ -e "/sys/class/net/$VB" ]; then
    fail destroy-cleanup "$VB still exists"
elif [ "$entries" != 0 ]; then
    fail destroy-cleanup "left behind: $entries policy entries for ifindex $IDX_B"
elif ! attached "$VA"; then
    fail destroy-cleanup "ga's $VA lost its filter"
else
    pass destroy-cleanup
fi

step restart-new-domid
# Restarted with a new domid: filtered again.
old=$VB
if start_guest gb; then
    VB=$(vif_of gb)
    echo "dom0: gb restarted: $old -> $VB"
    if [ "$VB" = "$old" ]; then
        fail restart-new-domid "same vif name $VB"
    elif ! attached "$VB"; then
        fail restart-new-domid "$VB not attached"
    elif ! gcmd gb ping; then
        fail restart-new-domid "legitimate ping from restarted gb failed"
    else
        pass restart-new-domid
    fi
    spoof_check restart-ipv4-spoof gb ipv4_spoof ipspoof
else
    fail restart-new-domid "gb did not start again"
fi

step save-restore
# What a migration does to a host: the domain leaves (xl save) and comes
# back (xl restore) with a new domid and new vifs, same MAC: filtered
# again, its traffic flows, nothing of the old domid left.
old=$VA
IDX_OLD=$(ifindex_of "$VA")
t_sr=$SECONDS
if timeout 300 xl save ga /tmp/ga.save >/tmp/xl-save.log 2>&1 &&
    timeout 300 xl restore /tmp/ga.save >/tmp/xl-restore.log 2>&1; then
    rm -f /tmp/ga.save
    VA=$(vif_of ga)
    sleep 2
    left=$(vifguard status --json 2>/dev/null | grep -c "\"ifindex\": $IDX_OLD,")
    echo "dom0: save-restore: $old -> $VA in $((SECONDS - t_sr)) s; status entries left for ifindex $IDX_OLD: $left"
    if [ "$VA" = "$old" ] || [ -z "$(domid ga)" ]; then
        fail save-restore "ga did not come back with a new domid ($old -> $VA)"
    elif ! attached "$VA"; then
        fail save-restore "$VA is not attached after the restore"
    elif [ -e "/sys/class/net/$old" ] || [ "$left" != 0 ]; then
        fail save-restore "the old $old is still there (or its policy entry: $left)"
    elif ! gcmd ga ping; then
        fail save-restore "restored ga cannot reach dom0"
    else
        pass save-restore
    fi
else
    cat /tmp/xl-save.log /tmp/xl-restore.log
    fail save-restore "xl save or xl restore failed"
    VA=$(vif_of ga)
fi

step sync-after-wipe
# What a reboot leaves: no pins (bpffs is empty again) and no tc filters
# (new interfaces). The filter is gone (spoofing works), then vifguard sync
# restores it on every running guest.
rm -rf "$BPFFS"
for v in /sys/class/net/vif*; do
    tc qdisc del dev "${v##*/}" clsact 2>/dev/null
done
wiped_attached=no
attached "$VB" && wiped_attached=yes
tc_has_bpf "$VB" && wiped_attached="$wiped_attached, tc filter"
gcmd gb ipspoof
rc_wiped=$?
echo "dom0: pins and filters wiped: $VB attached: $wiped_attached; spoof from gb -> $rc_wiped (0 = got through, expected without a filter)"
vifguard sync
rc_sync=$?
vifguard status
if [ "$rc_sync" != 0 ]; then
    fail sync-after-wipe "vifguard sync exited $rc_sync"
elif ! attached "$VA" || ! attached "$VB" || ! attached "$VC"; then
    fail sync-after-wipe "after sync $VA, $VB or $VC is not attached (hooks: $(hooks_of "$VA") $(hooks_of "$VB") $(hooks_of "$VC"))"
elif [ "$wiped_attached" != no ]; then
    fail sync-after-wipe "after the wipe $VB still looked attached ($wiped_attached): the check cannot tell"
elif [ "$rc_wiped" != 0 ]; then
    fail sync-after-wipe "spoofing was blocked with the pins and filters wiped (rc $rc_wiped): the check cannot tell"
elif [[ "$(status_json "$VC")" != *'"addresses":["192.0.2.5","198.51.100.5","2001:db8::5"]'* ]]; then
    fail sync-after-wipe "after sync $VC lost its XAPI addresses: $(status_json "$VC")"
else
    pass sync-attached
    spoof_check sync-ipv4-spoof gb ipv4_spoof ipspoof
    spoof_check sync-mac-spoof ga mac_spoof macspoof
    gcmd ga ping
    check sync-legit-ping "ga->dom0 failed after sync" test $? = 0
    pass sync-after-wipe
fi

# --- The package's maintainer scripts on the real vifs. dom0 has no dpkg:
# mkimage.sh unpacked the .deb as dpkg does and put its scripts where dpkg
# keeps them; they run here with the arguments dpkg gives them.
INFO=/var/lib/dpkg/info
step package-postinst-sync
# An upgrade (configure, from an older version) on a host whose vifs have
# lost their filters, so the check can tell: the postinst's sync must
# attach every vif again.
rm -rf "$BPFFS"
for v in /sys/class/net/vif*; do
    tc qdisc del dev "${v##*/}" clsact 2>/dev/null
done
sh "$INFO/vifguard.postinst" configure 0.0.1 >/tmp/postinst.log 2>&1
rc_postinst=$?
sed 's/^/dom0: postinst: /' /tmp/postinst.log
if [ "$rc_postinst" != 0 ]; then
    fail package-postinst-sync "postinst configure exited $rc_postinst"
elif ! attached "$VA" || ! attached "$VB" || ! attached "$VC"; then
    fail package-postinst-sync "after the postinst $VA, $VB or $VC is not attached (hooks: $(hooks_of "$VA") $(hooks_of "$VB") $(hooks_of "$VC"))"
else
    pass package-postinst-sync
fi

step package-prerm-detach
# Removal: every vif detached (no policy entry, no tc filter), the pins gone.
sh "$INFO/vifguard.prerm" remove >/tmp/prerm.log 2>&1
rc_prerm=$?
sed 's/^/dom0: prerm: /' /tmp/prerm.log
left=$(vifguard status 2>&1)
filtered=""
for v in "$VA" "$VB" "$VC"; do
    tc_has_bpf "$v" && filtered="$filtered $v"
done
if [ "$rc_prerm" != 0 ]; then
    fail package-prerm-detach "prerm remove exited $rc_prerm"
elif [ -n "$filtered" ]; then
    fail package-prerm-detach "tc filters left on$filtered"
elif [ -e "$BPFFS" ]; then
    fail package-prerm-detach "pins left: $(ls -R "$BPFFS" | head -20 | tr '\n' ' ')"
elif [[ "$left" != "no interfaces"* ]]; then
    fail package-prerm-detach "vifguard status after removal: $left"
else
    pass package-prerm-detach
fi

step end
dump_consoles
kill "$WATCHDOG" 2>/dev/null
xl destroy ga
xl destroy gb
xl destroy gc
