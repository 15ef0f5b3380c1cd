#!/usr/bin/env bash
#
# t_vm_ha: HA restart after a host's death (vmfsd/ha.c) -- three hosts,
# each with its corosync in its own network namespace (tests/cluster/
# lib.sh), the test guest writing its counter to its disk.
#
#  - `vmfs vm set` turns HA on and sets a restart priority; bad values and
#    a VM running elsewhere are refused with a clear message;
#  - host 1 runs two HA VMs and a non-HA one; one of them (ha2) as if just
#    migrated in from host 2, its run record not yet rewritten (it still
#    names host 2, "migrating to" host 1); kill -9 of its corosync and
#    vmfsd: its QEMUs die with the vmfsd (PR_SET_PDEATHSIG), the
#    survivors recover it, and each HA VM runs again on exactly one
#    survivor (one QEMU per VM across the hosts, its counter rising from
#    where it stood), the restart shown by `vmfs vm status`; the non-HA VM
#    is not restarted; the time from the kill to the counter advancing is
#    printed;
#  - placement: host 2 gives VMs 400 MiB (--vm-memory), host 3 its whole
#    memory; each advertises what is left in its heartbeat (`vmfs hosts`
#    shows it, less what its VMs take), and both HA VMs go to host 3,
#    although host 2's lower slot would try first without the figures;
#  - host 2's cluster link is cut (it keeps heartbeating on the LUN): its
#    VM keeps running there and nobody restarts it;
#  - host 3 is cut off and host 2 killed: host 3 recovers host 2 (the disk
#    needs no quorum) but restarts nothing without quorum; once host 1's
#    corosync returns (quorum: 2 of 3) host 3 restarts host 2's HA VMs.
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

t_need_guest
LUN=$T_DIR/lun
LEASE_MS=4000
mnt() { cl_mnt "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cl_on_exit() { cl_kill_qemus; }

# qemu_pids VM: the QEMUs of this test running VM (any host; "" all).
qemu_pids() {
	local pid args
	while read -r pid args; do
		[[ $args == qemu-system* && $args == *"$T_DIR/mnt-"*"/vms/$1"* ]] &&
			echo "$pid"
	done < <(ps -eo pid=,args=)
	return 0
}

# qemu_of VM: "PID HOST" of a QEMU of this test running VM, or nothing.
qemu_of() {
	local pid args
	while read -r pid args; do
		if [[ $args == qemu-system* && $args =~ $T_DIR/mnt-([0-9])/vms/$1/ ]]; then
			echo "$pid ${BASH_REMATCH[1]}"
			break
		fi
	done < <(ps -eo pid=,args=)
	return 0
}

field() { cl_vm_field "$@"; }
counter() { t_guest_counter "$1"; }
wait_counter() { t_wait_counter "$1" "$2"; }

# host_of VM: the survivor running VM (from host 2's or 3's view; until
# its recovery, dead host 1 still holds the VM's lock: not an answer).
host_of() {
	local i h
	for i in 2 3; do
		[[ -n ${CL_CS_PID[$i]:-} ]] || continue
		h=$(field "$i" "$(mnt "$i")/vms/$1" host 2>/dev/null)
		[[ $h =~ ^h([23])$ && $(field "$i" "$(mnt "$i")/vms/$1" state) == running ]] &&
			{ echo "${BASH_REMATCH[1]}"; return 0; }
	done
	return 1
}

step "three hosts with corosync mount the LUN"
make_lun "$LUN" 2G
t_mkfs "$LUN"
cl_up 3
expect_fail 2 "--vm-memory 12Q: must be a size of at least 1M" \
	cl_vmfs 2 mount --vm-memory 12Q "$LUN" "$(mnt 2)"
cl_vmfsd_mount 1 "$LUN" "$(mnt 1)" --lease-ms "$LEASE_MS"
cl_vmfsd_mount 2 "$LUN" "$(mnt 2)" --lease-ms "$LEASE_MS" --vm-memory 400M
cl_vmfsd_mount 3 "$LUN" "$(mnt 3)" --lease-ms "$LEASE_MS"

# vm_free I: the memory host I advertises for more VMs (MiB), as `vmfs
# hosts --json` reads it from host I's heartbeat slot on the LUN.
vm_free() {
	"$VMFS" hosts --no-watch --json "$LUN" | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    if h["hostname"] == sys.argv[1]:
        print(h["vm_free_mib"])' "h$1"
}
# wait_vm_free I WANT: until host I advertises WANT MiB (a renewal away).
wait_vm_free() {
	local w f
	for ((w = 0; w < 50; w++)); do
		f=$(vm_free "$1")
		[[ $f == "$2" ]] && return 0
		sleep 0.2
	done
	fail "host $1 advertises ${f:-nothing} MiB for VMs, not $2"
}
wait_vm_free 2 400
for ((w = 0; w < 50; w++)); do
	f3=$(vm_free 3)
	((f3 > 1024)) && break
	sleep 0.2
done
((f3 > 1024)) || fail "host 3 advertises $f3 MiB for VMs (its MemAvailable is more)"
t_log "advertised for VMs: host 2 400 MiB (--vm-memory 400M), host 3 $f3 MiB"

step "create two HA VMs and one without HA; vmfs vm set"
mkdir "$(mnt 1)/vms"
for v in ha1 ha2 noha; do
	cl_vmfs 1 vm create "$(mnt 1)/vms/$v" --memory 128M --disk 64M:thin --accel tcg \
		--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
		fail "vm create $v failed"
done
cl_vmfs 1 vm set "$(mnt 1)/vms/ha1" --ha on --restart-priority 10 >/dev/null ||
	fail "vm set ha1 failed"
cl_vmfs 2 vm set "$(mnt 2)/vms/ha2" --ha on >/dev/null || fail "vm set ha2 failed"
expect_fail 2 "give on or off" cl_vmfs 1 vm set "$(mnt 1)/vms/ha1" --ha maybe
expect_fail 2 "0 to 1000" cl_vmfs 1 vm set "$(mnt 1)/vms/ha1" --restart-priority 5000
expect_fail 2 "nothing to set" cl_vmfs 1 vm set "$(mnt 1)/vms/ha1"
expect_eq "ha1's config" "$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["ha"], c["restart_priority"])' "$(mnt 3)/vms/ha1/vm.json")" "True 10"

step "host 1 starts the three VMs; a set on host 2 is refused"
for v in ha1 ha2 noha; do
	cl_vmfs 1 vm start "$(mnt 1)/vms/$v" >"$T_DIR/start.out" 2>&1 ||
		fail "vm start $v on host 1 failed: $(cat "$T_DIR/start.out")"
done
expect_fail 1 "runs on host h1" cl_vmfs 2 vm set "$(mnt 2)/vms/ha1" --ha off
declare -A C0
for v in ha1 ha2 noha; do
	C0[$v]=$(wait_counter "$(mnt 1)/vms/$v/disk0.img" 2)
done
expect_eq "ha1 should run, HA" "$(field 2 "$(mnt 2)/vms/ha1" should_run) $(field 2 "$(mnt 2)/vms/ha1" ha)" "True True"
mapfile -t QPIDS < <(qemu_pids "")
expect_eq "QEMUs running" "${#QPIDS[@]}" 3

step "ha2 as if just migrated in from host 2: its run record still names host 2"
# A migration's destination rewrites the run record once the guest runs
# there; the source wrote it naming the destination as where the VM goes
# (migrating_to) before the copy began.  Host 1 is put in the state of a
# destination that resumed ha2 and has not rewritten the record yet: the
# record names host 2 (alive) and "migrating to h1".  When host 1 dies
# the survivors must restart ha2, although the host the record names is
# alive (the lock, held by the dead host 1, decides).
h2_uuid=$(cl_vmfs 1 hosts --json --no-watch "$LUN" | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    if h["hostname"] == "h2":
        print(h["host_uuid"])')
h1_uuid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host_uuid"])' \
	"$(mnt 1)/vms/ha2/ha-state.json")
[[ -n $h2_uuid && -n $h1_uuid ]] || fail "no host uuids (h1 '$h1_uuid', h2 '$h2_uuid')"
python3 - "$(mnt 1)/vms/ha2/ha-state.json" "$h2_uuid" "$h1_uuid" <<'PYEOF' ||
import json, os, sys
p, h2, h1 = sys.argv[1:4]
r = json.load(open(p))
r.update(host_uuid=h2, host_name="h2", migrating_to_uuid=h1, migrating_to_name="h1")
with open(p + ".new", "w") as f:
    json.dump(r, f)
    f.flush()
    os.fsync(f.fileno())
os.rename(p + ".new", p)
PYEOF
	fail "cannot rewrite ha2's run record"

step "kill -9 host 1 (corosync, vmfsd): its QEMUs die with its vmfsd"
for v in ha1 ha2; do
	C0[$v]=$(counter "$(mnt 1)/vms/$v/disk0.img")
done
t_kill=$(now_ms)
cl_kill_host 1
# SIGKILL reaches them at once; exiting waits for their I/O on the dead
# mount to be aborted, which a loaded machine may take a while to do.
for ((w = 0; w < 300; w++)); do
	alive=0
	for p in "${QPIDS[@]}"; do
		t_pid_alive "$p" && alive=$((alive + 1))
	done
	((alive == 0)) && break
	sleep 0.1
done
((alive == 0)) || fail "$alive QEMU(s) of host 1 outlived its vmfsd by 30 s: $(for p in "${QPIDS[@]}"; do ps -o pid=,stat=,wchan=,args= -p "$p" | cut -c1-120; done)"
t_log "host 1's QEMUs died with its vmfsd ($(($(now_ms) - t_kill)) ms after the kill)"

step "both HA VMs run again on survivors, each exactly once"
declare -A HOST T_RUN SEEN
t_end=$(($(now_ms) + 180000))
pending=2
while ((pending > 0)); do
	(($(now_ms) < t_end)) ||
		fail "HA VMs not running again 180 s after host 1's death (${!T_RUN[*]} do); logs: $(grep -h 'HA:' "$T_DIR"/vmfsd-h[23]-*.log | tail -n 8)"
	for v in ha1 ha2; do
		[[ -n ${T_RUN[$v]:-} ]] && continue
		# The new QEMU (host 1's died with its vmfsd), seen from ps:
		# `vmfs vm status` would lag while the dead host's lock is broken.
		h=""
		read -r _ h < <(qemu_of "$v") || true
		[[ -n ${h:-} && $h != 1 ]] || continue
		HOST[$v]=$h
		c=$(counter "$(mnt "${HOST[$v]}")/vms/$v/disk0.img")
		# At first sight the new guest has not booted yet: what the
		# disk holds is the old guest's last write (it may have written
		# after C0 was read, before it died).
		if [[ -z ${SEEN[$v]:-} ]]; then
			SEEN[$v]=1
			[[ -n $c && $c -gt ${C0[$v]} ]] && C0[$v]=$c
			continue
		fi
		if [[ -n $c && $c -gt ${C0[$v]} ]]; then
			T_RUN[$v]=$(($(now_ms) - t_kill))
			pending=$((pending - 1))
			t_log "$v runs again on h${HOST[$v]}: counter ${C0[$v]} -> $c, ${T_RUN[$v]} ms from the kill to the counter advancing (lease $LEASE_MS ms)"
		fi
	done
	sleep 0.2
done
for v in ha1 ha2; do
	expect_eq "$v's host in vmfs vm status" "$(host_of "$v")" "${HOST[$v]}"
	# Placement: host 3 advertises far more memory than host 2.
	expect_eq "$v restarted on the host with the most memory" "${HOST[$v]}" 3
	grep -q "HA: placement: VM /vms/$v (128 MiB) to host h3" "$T_DIR"/vmfsd-h3-*.log ||
		fail "host 3 did not log $v's placement: $(grep -h 'HA:' "$T_DIR"/vmfsd-h3-*.log | tail -n 5)"
done
for ((k = 0; k < 10; k++)); do
	for v in ha1 ha2; do
		n=$(qemu_pids "$v/" | wc -l)
		((n == 1)) || fail "$n QEMUs run $v (want exactly 1)"
	done
	sleep 0.3
done
for v in ha1 ha2; do
	n=$(cat "$T_DIR"/vmfsd-h[23]-*.log | grep -c "HA: restarted VM /vms/$v " || true)
	((n == 1)) || fail "$v was restarted $n times (want 1): $(grep -h 'HA:' "$T_DIR"/vmfsd-h[23]-*.log)"
	why=$(field "${HOST[$v]}" "$(mnt "${HOST[$v]}")/vms/$v" restart)
	[[ $why == *"from h1"*"host h1"*died* ]] || fail "vm status of $v does not tell the restart: '$why'"
	c=$(counter "$(mnt "${HOST[$v]}")/vms/$v/disk0.img")
	wait_counter "$(mnt "${HOST[$v]}")/vms/$v/disk0.img" "$c" >/dev/null
done
t_log "restart: $(field "${HOST[ha1]}" "$(mnt "${HOST[ha1]}")/vms/ha1" restart)"
h=${HOST[ha1]}
cl_vmfs "$h" hosts --no-watch "$(mnt "$h")" >"$T_DIR/hosts.out" 2>&1 ||
	fail "vmfs hosts on host $h failed: $(tail -n 3 "$T_DIR/hosts.out")"
if ! grep -q "HA events on host h$h" "$T_DIR/hosts.out" ||
	! grep -q "restarted VM /vms/ha1 " "$T_DIR/hosts.out"; then
	fail "vmfs hosts on host $h does not show the restart: $(tail -n 8 "$T_DIR/hosts.out")"
fi

step "the VM without HA is not restarted"
n=$(qemu_pids "noha/" | wc -l)
((n == 0)) || fail "the non-HA VM runs again ($n QEMUs)"
expect_eq "noha's state" "$(field 2 "$(mnt 2)/vms/noha" state)" stopped
grep -q "restarted VM /vms/noha" "$T_DIR"/vmfsd-h[23]-*.log && fail "noha was restarted"

step "cut host 2's cluster link: its VMs keep running, nobody restarts them"
# Both HA VMs run on host 3 (placement, above): start one on host 2; what
# host 2 advertises drops by its memory.
cl_vmfs 2 vm start "$(mnt 2)/vms/noha" >/dev/null || fail "start noha on host 2 failed"
cl_vmfs 2 vm set "$(mnt 2)/vms/noha" --ha on >/dev/null || fail "set noha HA on host 2 failed"
v2=noha
wait_vm_free 2 $((400 - 128))
cl_link_down 2
sleep $((3 * LEASE_MS / 1000))
c=$(counter "$(mnt 2)/vms/$v2/disk0.img")
wait_counter "$(mnt 2)/vms/$v2/disk0.img" "$c" >/dev/null
n=$(qemu_pids "$v2/" | wc -l)
((n == 1)) || fail "$n QEMUs run $v2 after host 2's link cut (want 1, on host 2)"
grep -q "HA: restarted VM /vms/$v2 " "$T_DIR"/vmfsd-h3-*.log &&
	[[ ${HOST[$v2]:-2} != 3 ]] && fail "host 3 restarted $v2 while host 2 still heartbeats"
cl_link_up 2
t_log "host 2 kept $v2 through its link cut"

step "no quorum, no restart: host 3 cut off, then host 2 killed"
on2=()
for v in ha1 ha2 noha; do
	[[ $(host_of "$v") == 2 ]] && on2+=("$v")
done
((${#on2[@]})) || fail "no VM runs on host 2 before its kill"
cl_link_down 3
cl_wait_members 3 1 60 || fail "host 3 still sees $(cl_members 3) with its link cut"
cl_kill_host 2
t_wait_grep 60 "HA: the cluster has no quorum here" "$T_DIR"/vmfsd-h3-*.log || fail "host 3 did not hold back for want of quorum within 60 s: $(grep -h 'HA:\|recovered host' "$T_DIR"/vmfsd-h3-*.log | tail -n 5)"
grep -q "recovered host h2" "$T_DIR"/vmfsd-h3-*.log ||
	fail "host 3 has not recovered host 2 (the disk needs no quorum)"
sleep 2
for v in "${on2[@]}"; do
	n=$(qemu_pids "$v/" | wc -l)
	((n == 0)) || fail "$v runs again ($n QEMUs) on a host without quorum"
done
t_log "host 3 recovered host 2 but restarted none of ${on2[*]} without quorum"

step "quorum back (host 1's corosync returns): host 3 restarts them"
cl_link_up 3
cl_corosync_start 1
cl_wait_members 3 2 60 || fail "host 3 sees $(cl_members 3), not hosts 1 and 3"
for v in "${on2[@]}"; do
	for ((w = 0; w < 600; w++)); do
		[[ $(field 3 "$(mnt 3)/vms/$v" host) == h3 &&
		   $(field 3 "$(mnt 3)/vms/$v" state) == running ]] && break
		sleep 0.2
	done
	((w < 600)) || fail "$v does not run on host 3 120 s after quorum came back: $(grep -h 'HA:' "$T_DIR"/vmfsd-h3-*.log | tail -n 5)"
	c=$(counter "$(mnt 3)/vms/$v/disk0.img")
	wait_counter "$(mnt 3)/vms/$v/disk0.img" "${c:-0}" >/dev/null
	n=$(qemu_pids "$v/" | wc -l)
	((n == 1)) || fail "$n QEMUs run $v (want 1, on host 3)"
done
t_log "host 3 restarted ${on2[*]} once quorum was back"

step "stop the VMs; unmount; fsck -n is clean"
for v in ha1 ha2 noha; do
	[[ $(field 3 "$(mnt 3)/vms/$v" state) == running ]] || continue
	cl_vmfs 3 vm stop --force "$(mnt 3)/vms/$v" >/dev/null || fail "vm stop $v failed"
done
cl_umount 3 "$(mnt 3)"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
