#!/usr/bin/env bash
#
# t_cluster_locks: cached locks handed over over CPG, with real corosync
# daemons (tests/cluster/lib.sh: three hosts in network namespaces, each
# with its corosync and a vmfsd mounting one shared LUN file).
#
#  - once every host is in the group, each host keeps the locks it took
#    between operations (`vmfs info`: "caching on"), and `vmfs locks`
#    shows a lock held between operations;
#  - the kernel keeps names and attributes under host 1's cached locks
#    (`vmfs info`: kernel_names), and forgets them as host 2 takes those
#    locks: every change host 2 makes shows on host 1 at once
#    (tests/integration/kcache.sh);
#  - lock ping-pong: hosts 1 and 2 alternately create files in one shared
#    directory, each create taking the directory from the other host over
#    CPG (the asker's requests are answered, none times out); then both
#    create at once; every host lists the same files;
#  - a host that works alone in its own directory keeps its locks: its
#    operations ask nobody;
#  - host 3 mounts again while host 1 creates and removes files: none fails
#    (host 3's HA scan at mount stats no files);
#  - host 3 crashes (kill -9 of its corosync and vmfsd) holding a file
#    open for writing with fsync'ed data: the group drops it in about 2 s,
#    but nobody recovers it before its heartbeat says it is dead (leaving
#    the group never breaks a lock); a survivor recovers it, the time from
#    the kill is printed, and the file opens for writing on host 1 with
#    its data;
#  - everyone unmounts; fsck -n is clean.
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"
# shellcheck source=tests/integration/kcache.sh
source "$(dirname "$0")/kcache.sh"

LUN=$T_DIR/lun
LEASE_MS=4000
mnt() { echo "$T_DIR/mnt-$1"; }
vlog() { echo "$T_DIR/vmfsd-h$1-mnt-$1.log"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# info_field I KEY: a number of host I's fast path (vmfs info --json).
info_field() {
	cl_vmfs "$1" info --json "$(mnt "$1")" |
		python3 -c 'import json,sys
d = json.load(sys.stdin)
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            r = find(v, k)
            if r is not None: return r
    if isinstance(o, list):
        for v in o:
            r = find(v, k)
            if r is not None: return r
    return None
v = find(d, sys.argv[1])
print(str(v).lower() if v is not None else "missing")' "$2"
}

# wait_caching I: host I's engine caches locks within 20 s.
wait_caching() {
	local t0
	t0=$(now_ms)
	until [[ $(info_field "$1" caching) == true ]]; do
		(($(now_ms) - t0 < 20000)) ||
			fail "host $1 does not cache locks 20 s after every host joined: $(cl_vmfs "$1" info "$(mnt "$1")" 2>&1 | tail -5)"
		sleep 0.2
	done
}

step "three hosts with corosync mount the shared LUN"
make_lun "$LUN" 2G
t_mkfs "$LUN"
cl_up 3
for i in 1 2 3; do
	mkdir -p "$(mnt "$i")"
	cl_vmfsd_mount "$i" "$LUN" "$(mnt "$i")" --lease-ms "$LEASE_MS"
done
for i in 1 2 3; do
	wait_caching "$i"
done
# Each host's HA agent looks once through the datastore after its mount
# (for VMs whose host went away meanwhile), reading directories and so
# taking their locks: let that pass before counting asks.
for i in 1 2 3; do
	t0=$(now_ms)
	until grep -q "HA: .*when h$i mounted the volume" "$(vlog "$i")" 2>/dev/null; do
		(($(now_ms) - t0 < 30000)) ||
			fail "host $i's HA agent did not look through the datastore after its mount"
		sleep 0.2
	done
done

step "a host keeps the locks it took between operations"
mkdir "$(mnt 1)/own1"
for n in $(seq 1 20); do
	: >"$(mnt 1)/own1/f$n"
done
asked0=$(info_field 1 asked)
for n in $(seq 21 60); do
	: >"$(mnt 1)/own1/f$n"
	stat "$(mnt 1)/own1/f$n" >/dev/null
done
asked1=$(info_field 1 asked)
[[ $asked0 == "$asked1" ]] ||
	fail "host 1 asked other hosts for locks ($asked0 -> $asked1) while working alone in its own directory"
cached=$(info_field 1 cached)
((cached > 0)) || fail "host 1 keeps no lock between operations (cached: $cached)"
"$VMFS" locks "$LUN" >"$T_DIR/locks.out" 2>&1 ||
	fail "vmfs locks: $(cat "$T_DIR/locks.out")"
grep -q "h1" "$T_DIR/locks.out" ||
	fail "vmfs locks shows no lock held by h1 between operations: $(cat "$T_DIR/locks.out")"
t_log "host 1 keeps $cached locks between operations; 40 creates and stats asked nobody"

step "the kernel keeps what host 1's cached locks cover; host 2's changes show on host 1 at once"
kc_prepare "$(mnt 1)/kc"
names=$(info_field 1 kernel_names)
((names > 0)) || fail "host 1's kernel keeps no name under its cached locks (kernel_names: $names)"
f0=$(info_field 1 kernel_forgotten)
KC_FRESH_S=1.6 kc_changes "cached locks" "$(mnt 1)/kc" "$(mnt 2)/kc"
f1=$(info_field 1 kernel_forgotten)
((f1 > f0)) || fail "host 1's kernel was told to forget nothing as host 2 took its locks ($f0 -> $f1)"
t_log "host 1's kernel kept $names names under its cached locks and forgot $((f1 - f0)) names and inodes as host 2 took them; every change showed on host 1 at once"

step "lock ping-pong: hosts 1 and 2 alternately create in one directory"
mkdir "$(mnt 1)/shared"
a1=$(info_field 1 asked)
a2=$(info_field 2 asked)
t0=$(now_ms)
for n in $(seq 1 40); do
	h=$((1 + n % 2))
	: >"$(mnt "$h")/shared/p$n" || fail "host $h: create p$n failed"
done
ms=$(($(now_ms) - t0))
b1=$(info_field 1 asked)
b2=$(info_field 2 asked)
((b1 > a1 && b2 > a2)) ||
	fail "the hosts did not ask each other for the directory (host 1 $a1 -> $b1, host 2 $a2 -> $b2)"
for i in 1 2; do
	to=$(info_field "$i" ask_timeouts)
	[[ $to == 0 ]] || fail "host $i: $to requests over CPG went unanswered"
done
t_log "40 alternating creates in $ms ms ($((b1 - a1 + b2 - a2)) requests over CPG, all answered)"

step "both hosts create in the shared directory at once"
pids=()
for h in 1 2; do
	python3 - "$(mnt "$h")/shared" "$h" <<'EOF' &
import os, sys
for n in range(150):
    fd = os.open("%s/c%s-%d" % (sys.argv[1], sys.argv[2], n),
                 os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, b"x" * n)
    os.close(fd)
EOF
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a create in the shared directory failed"
done
pids=()
for i in 1 2 3; do
	ls "$(mnt "$i")/shared" | sort >"$T_DIR/ls-$i"
done
n=$(wc -l <"$T_DIR/ls-1")
[[ $n == 340 ]] || fail "host 1 lists $n files in the shared directory, not 340"
cmp -s "$T_DIR/ls-1" "$T_DIR/ls-2" && cmp -s "$T_DIR/ls-1" "$T_DIR/ls-3" ||
	fail "the hosts list different files: $(diff "$T_DIR/ls-1" "$T_DIR/ls-2" | head; diff "$T_DIR/ls-1" "$T_DIR/ls-3" | head)"
sz=$(stat -c %s "$(mnt 3)/shared/c2-149")
[[ $sz == 149 ]] || fail "host 3 reads size $sz of a file host 2 wrote 149 bytes to"

step "host 3 mounts again while host 1 creates and removes files as fast as it can: host 3's HA scan takes nothing from host 1"
# The scan at mount walks the top directories for VMs. It once stat()ed
# every file there, each stat taking the directory's lock from host 1,
# which then waited on host 3 and failed creates with EBUSY.
cl_umount 3 "$(mnt 3)"
mkdir "$(mnt 1)/busy"
# For 4 leases (the scan comes about a lease after the mount), keeping
# 1,500 files in the directory: create one, remove the oldest.
python3 - "$(mnt 1)/busy" $((4 * LEASE_MS)) >"$T_DIR/busy.out" 2>&1 <<'PY' &
import os, sys, time
d, end = sys.argv[1], time.time() + int(sys.argv[2]) / 1000
n = 0
while time.time() < end:
    os.close(os.open("%s/f%d" % (d, n), os.O_CREAT | os.O_WRONLY, 0o644))
    if n >= 1500:
        os.unlink("%s/f%d" % (d, n - 1500))
    n += 1
print(n)
PY
busy=$!
T_PIDS+=("$busy")
sleep 0.5
cl_vmfsd_mount 3 "$LUN" "$(mnt 3)" --lease-ms "$LEASE_MS"
wait "$busy" || fail "host 1's creates failed while host 3 mounted: $(tail -n 2 "$T_DIR/busy.out"; grep -h "EBUSY" "$(vlog 1)" | tail -n 2)"
wait_caching 3
t_log "host 1 created $(cat "$T_DIR/busy.out") files in $((4 * LEASE_MS)) ms while host 3 mounted and scanned for HA VMs; none failed"

step "host 3 dies holding a file open for writing; recovered only once its heartbeat is dead"
echo "fsynced by h3" >"$(mnt 3)/disk3"
exec 7>>"$(mnt 3)/disk3"
python3 -c 'import os; os.fsync(7)'
t0=$(now_ms)
cl_kill_host 3
exec 7>&-
cl_wait_members 1 2 20 || fail "host 1 still counts host 3 as a member"
left_ms=$CL_WAITED_MS
while ! grep -q "recovered host h3" "$(vlog 1)" "$(vlog 2)" 2>/dev/null; do
	(($(now_ms) - t0 < 60000)) || fail "nobody recovered host 3 within 60 s of its kill"
	sleep 0.1
done
rec_ms=$(($(now_ms) - t0))
t_log "host 3 left the group ${left_ms} ms after its kill -9; recovered ${rec_ms} ms after it (lease $LEASE_MS ms)"
# A host is dead only when its counter stood still for its lease: a
# recovery earlier than that would have been decided on the group alone.
((rec_ms >= LEASE_MS)) ||
	fail "host 3 was recovered $rec_ms ms after its kill, before its lease ($LEASE_MS ms) ran out"
n=$(grep -h "recovered host h3" "$(vlog 1)" "$(vlog 2)" | wc -l)
[[ $n == 1 ]] || fail "$n recoveries of host 3 logged, not exactly one"
exec 8>>"$(mnt 1)/disk3" || fail "host 1 cannot open host 3's file for writing after the recovery"
exec 8>&-
[[ $(cat "$(mnt 1)/disk3") == "fsynced by h3" ]] ||
	fail "host 3's fsync'ed data is not there: $(cat "$(mnt 1)/disk3")"

step "everyone unmounts; fsck -n is clean"
cl_umount 1 "$(mnt 1)"
cl_umount 2 "$(mnt 2)"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(cat "$T_DIR/fsck.out")"
t_log "PASS"
