#!/usr/bin/env bash
#
# t_vm_migrate: live migration with lock handover between three hosts,
# each with its corosync in its own network namespace.
#
#  - the guest (writing its counter to its disk every 100 ms) moves
#    h1 -> h2 -> h3 -> h1; after every hop the VM runs on the new host
#    only (vmfs vm status from another host names it; a start elsewhere
#    fails naming it), the counter on disk went on from where it was
#    (never back), the pause is printed;
#  - the destination dies before the switchover (its incoming QEMU is
#    killed during a slow copy): the VM keeps running on the source, whose
#    locks never left it, and its counter goes on; during the copy the
#    run record names the destination as where the VM goes, and after
#    the failure no longer;
#  - the destination is cut off from the cluster network before the
#    switchover: the same, and the destination discards its QEMU;
#  - the destination refuses to take the VM over at the switchover (its
#    config changed on the source during the copy): the source takes
#    its locks back and the guest goes on there; the next migration
#    goes through;
#  - the source host dies (corosync, vmfsd, QEMU killed) during the copy:
#    the destination discards its incoming QEMU; once the dead host is
#    recovered the VM starts on h2 as after a crash and counts on;
#  - bad input: an unknown host, the host it runs on, a VM that does not
#    run here; a destination without room for the guest's memory (its
#    --vm-memory) refuses it before starting a QEMU;
#  - the survivors unmount; fsck -n is clean;
#  - all along, tests/cluster/vmwatch.py reads the guest's counter block
#    from the LUN file itself (no mount, no lock): the counter never went
#    back and no boot of the guest wrote again after another took over
#    (never two copies running).
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

t_need_guest
LUN=$T_DIR/lun
mnt() { cl_mnt "$1"; }
VM=/vms/g

cl_on_exit() { cl_kill_qemus; }

field() { cl_vm_field "$1" "$(mnt "$1")$VM" "$2"; }

# counter I: the guest's counter on disk, read through host I's mount
# (the host that runs the VM: its lock covers the read).
counter() { t_guest_counter "$(mnt "$1")$VM/disk0.img"; }

# wait_counter I N: the counter read on host I passes N within 30 s.
wait_counter() { t_wait_counter "$(mnt "$1")$VM/disk0.img" "$2" 30; }

# record_names I [J]: the VM's run record (HA) names host hI, and a
# migration under way to hJ (none without J).
record_names() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d.get("host_name") != sys.argv[2] or d.get("migrating_to_name", "") != sys.argv[3])' \
		"$(mnt "$1")$VM/ha-state.json" "h$1" "${2:+h$2}" ||
		fail "the run record does not name h$1${2:+, migrating to h$2}: $(cat "$(mnt "$1")$VM/ha-state.json" 2>&1)"
}

# The VM's config's lock and the heartbeat slots, as the LUN has them
# now, the supervisors' last word on a QEMU's end and the guest's last
# console lines: what a wrong answer in runs_on saw.  (A TCG guest was
# once seen to panic right after a migration between two plain QEMUs,
# no vmfs involved: a QEMU that ended would show here.)
lock_view() {
	echo "locks: $("$VMFS" locks --path "$(mnt 1)$VM/vm.json" "$LUN" 2>&1 | tail -n 3)"
	echo "hosts: $("$VMFS" hosts --no-watch "$LUN" 2>&1 | tail -n 4)"
	echo "ends: $(grep -h "VM $VM .*ended:" "$T_DIR"/vmfsd-h*.log 2>/dev/null | tail -n 2)"
	echo "console: $(tail -n 4 "$(mnt 1)$VM/console.log" 2>&1)"
}

# seen_on J: "<status's host> | <list's state and host>" on host J.
seen_on() {
	local st ls
	st=$(field "$1" host)
	ls=$(cl_vmfs "$1" vm list --json "$(mnt "$1")" | python3 -c '
import json, sys
for v in json.load(sys.stdin)["vms"]:
    if v["volume_path"] == sys.argv[1]:
        print(v["state"], v["host"])' "$VM")
	echo "$st | $ls"
}

# runs_on I: status and list from every host say h<I>, and I's
# supervisor has it.  A host that says otherwise right after a migration
# returned is asked again for up to 3 s; what it said first is printed
# with the LUN's view (a flake seen twice, not understood yet), and only
# an answer that stays wrong fails.
runs_on() {
	local j k seen first
	for j in 1 2 3; do
		first=
		for ((k = 0; k < 15; k++)); do
			seen=$(seen_on "$j")
			[[ $seen == "h$1 | running h$1" ]] && break
			[[ -n $first ]] || first="$seen; $(lock_view)"
			sleep 0.2
		done
		((k < 15)) ||
			fail "host $j says '$seen' (status | list), expected h$1 | running h$1; at first: $first"
		[[ -z $first ]] ||
			t_log "NOTE: host $j said '$first' right after the migration, then 'h$1 | running h$1'"
	done
	[[ $(field "$1" state) == running ]] || fail "host $1: VM state $(field "$1" state)"
}

step "three hosts with corosync mount the LUN"
make_lun "$LUN" 2G
t_mkfs "$LUN"
cl_up 3
cl_mount_all 3 "$LUN"

step "the guest runs on h1"
mkdir "$(mnt 1)/vms"
cl_vmfs 1 vm create "$(mnt 1)$VM" --memory 128M --disk 16M --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
	fail "vm create failed"
[[ -e $(mnt 1)$VM/disk0.img ]] || fail "no disk0.img in $(ls "$(mnt 1)$VM")"
cl_vmfs 1 vm start "$(mnt 1)$VM" >/dev/null || fail "vm start on host 1 failed"
c=$(wait_counter 1 0)
runs_on 1
cl_vmwatch_start "$LUN"

step "bad input is refused, the VM keeps running"
expect_fail 1 "not in volume .* cluster group" \
	cl_vmfs 1 vm migrate "$(mnt 1)$VM" --to nosuchhost
expect_fail 1 "runs on h1 already" cl_vmfs 1 vm migrate "$(mnt 1)$VM" --to h1
expect_fail 1 "does not run on this host" \
	cl_vmfs 2 vm migrate "$(mnt 2)$VM" --to h3
expect_fail 2 "--to" cl_vmfs 1 vm migrate "$(mnt 1)$VM"
expect_fail 2 "max-bandwidth" cl_vmfs 1 vm migrate "$(mnt 1)$VM" --to h2 \
	--max-bandwidth lots
runs_on 1

step "a destination without room for the guest's memory refuses it"
# The incoming QEMU takes the guest's whole memory at once
# (-mem-prealloc); h3 gives VMs 64 MiB, the guest has 128.
cl_umount 3 "$(mnt 3)"
cl_wait_in_group 1 h3 30 out || fail "h1 still sees h3's old vmfsd in the group"
cl_vmfsd_mount 3 "$LUN" "$(mnt 3)" --vm-memory 64M
cl_wait_in_group 1 h3 30 || fail "h1 does not see h3 in the group again"
expect_fail 1 "host h3 has 64 MiB for more VMs .* VM $VM needs 128 MiB" \
	cl_vmfs 1 vm migrate "$(mnt 1)$VM" --to h3
runs_on 1
[[ -z $(pgrep -f "qemu-system.*$T_DIR/mnt-3$VM" || true) ]] ||
	fail "h3 started a QEMU for a VM it refused"
cl_umount 3 "$(mnt 3)"
cl_wait_in_group 1 h3 30 out || fail "h1 still sees h3's old vmfsd in the group"
cl_vmfsd_mount 3 "$LUN" "$(mnt 3)"
cl_wait_in_group 1 h3 30 || fail "h1 does not see h3 in the group again"

hop() {
	local from=$1 to=$2 before out after qpid
	before=$(counter "$from")
	out=$(cl_vmfs "$from" vm migrate "$(mnt "$from")$VM" --to "h$to" 2>&1) ||
		fail "migrate h$from -> h$to: $out"
	t_log "$out"
	# (The guest's counter gap is printed when the source saw the guest
	# write again within 3 s of the switchover: not on a loaded machine.)
	[[ $out == *"guest paused "*" ms, QEMU downtime"*"lock handover"* ]] ||
		fail "no pause figures in: $out"
	# The guest's whole pause holds QEMU's downtime (the source's part).
	# The pause is pieced together from both hosts' clocks with the
	# "switch" message's one-way trip taken as half its round trip
	# (vmfsd/migrate.c pause_ms), so it may come out short by up to that
	# half: at most half the lock handover, which holds the round trip.
	[[ $out =~ guest\ paused\ ([0-9]+)\ ms,\ QEMU\ downtime\ ([0-9]+)\ ms,\ lock\ handover\ ([0-9]+)\ ms ]] &&
		((BASH_REMATCH[1] + BASH_REMATCH[3] / 2 + 1 >= BASH_REMATCH[2])) ||
		fail "the guest's pause is shorter than QEMU's downtime by more than half the handover: $out"
	runs_on "$to"
	# The run record (HA) names the new host.
	record_names "$to"
	after=$(wait_counter "$to" "$before")
	# The guest goes on on the destination: past what it wrote by the
	# time the migration returned (those writes may be the source's).
	after=$(wait_counter "$to" "$after")
	t_log "counter $before -> $after"
	# Its QEMU answers the supervisor's QMP (the socket serves one
	# client: the migration's session ended with it) and runs.
	qpid=$(pgrep -f "qemu-system.*$T_DIR/mnt-$to$VM" | head -n 1 || true)
	[[ $(t_qmp_status "$qpid") == *'"status": "running"'* ]] ||
		fail "QEMU on h$to (pid $qpid) after the migration: $(t_qmp_status "$qpid")"
	# The source's QEMU is gone.
	for ((k = 0; k < 50; k++)); do
		pgrep -f "qemu-system.*$T_DIR/mnt-$from$VM" >/dev/null || break
		sleep 0.2
	done
	((k < 50)) || fail "the QEMU on host $from still runs after the migration"
	expect_fail 1 "runs on .*h$to" cl_vmfs "$from" vm start "$(mnt "$from")$VM"
}

step "h1 -> h2 -> h3 -> h1 under load"
hop 1 2
hop 2 3
hop 3 1

# bg_migrate FROM TO [OPTION...]: a migration in the background (MIG: its
# pid; its output and status in $T_DIR/mig.out, mig.rc).
bg_migrate() {
	local from=$1 to=$2
	shift 2
	rm -f "$T_DIR/mig.rc"
	(
		if cl_vmfs "$from" vm migrate "$(mnt "$from")$VM" --to "h$to" \
			"$@" >"$T_DIR/mig.out" 2>&1; then
			echo 0 >"$T_DIR/mig.rc"
		else
			echo 1 >"$T_DIR/mig.rc"
		fi
	) &
	MIG=$!
}

# slow_migrate FROM TO: bg_migrate at 4 MiB/s (a copy this guest never
# finishes) and wait for the destination's incoming QEMU (QPID).
slow_migrate() {
	local from=$1 to=$2 k
	bg_migrate "$from" "$to" --max-bandwidth 4M
	QPID=""
	for ((k = 0; k < 100; k++)); do
		QPID=$(pgrep -f "qemu-system.*$T_DIR/mnt-$to$VM.*-incoming" | head -n 1 || true)
		[[ -n $QPID ]] && break
		sleep 0.2
	done
	[[ -n $QPID ]] || fail "no incoming QEMU on h$to: $(cat "$T_DIR/mig.out")"
	sleep 1
}

# mig_failed: the background migration ended and said it failed.
mig_failed() {
	wait "$MIG" || true
	[[ $(cat "$T_DIR/mig.rc" 2>/dev/null) == 1 ]] ||
		fail "the migration did not fail: $(cat "$T_DIR/mig.out")"
	t_log "$(cat "$T_DIR/mig.out")"
}

# gone PID: the process ends within 20 s.
gone() {
	local k
	for ((k = 0; k < 100; k++)); do
		t_pid_alive "$1" || return 0
		sleep 0.2
	done
	fail "pid $1 ($2) still runs"
}

step "the destination dies before the switchover: the VM stays on h1"
before=$(counter 1)
slow_migrate 1 2
# While the copy runs the record says where the VM goes: a destination
# that died after the switchover, before it rewrote the record, would
# leave the VM to HA (t_vm_ha.sh).
record_names 1 2
kill -KILL "$QPID"
mig_failed
runs_on 1
wait_counter 1 "$before" >/dev/null
expect_fail 1 "runs on .*h1" cl_vmfs 2 vm start "$(mnt 2)$VM"

# The run record (HA) still names h1: the destination's end left it.
record_names 1

step "the destination is cut off before the switchover: the VM stays on h1"
before=$(counter 1)
slow_migrate 1 2
cl_link_down 2
mig_failed
gone "$QPID" "h2's incoming QEMU, cut off from the source"
wait_counter 1 "$before" >/dev/null
cl_link_up 2
for i in 1 2 3; do
	cl_wait_members "$i" 3 30 || fail "host $i does not see 3 members after the link came back"
done
runs_on 1
record_names 1

step "the destination refuses at the switchover: h1 takes its locks back"
# The admin changes the VM's settings on h1 while the migration is under
# way: the config on disk is no longer the one h1 sent, and h2 finds that
# out only at the switchover, once h1 let go of the locks and h2 took
# them.  h2 gives them back, h1 takes them again and its guest goes on.
# (h2's vmfsd is stopped for the moment of the change, so that the change
# comes after h1 sent the config and before the copy could end; a first
# change before that makes h1 hold every lock the change needs, so that
# it asks nothing of the stopped host.)
h1log() { cat "$T_DIR"/vmfsd-h1-*.log; }
kept=$(h1log | grep -c "keeps running on this host")
begun=$(h1log | grep -c "migration to host h2 begins")
before=$(counter 1)
cl_vmfs 1 vm set "$(mnt 1)$VM" --restart-priority 6 >/dev/null ||
	fail "vm set on h1 failed"
h2pid=$(vmfsd_pid_of "$(mnt 2)") || fail "no vmfsd serves $(mnt 2)"
t_stop=$(date +%s%N)
kill -STOP "$h2pid"
bg_migrate 1 2
for ((k = 0; k < 100; k++)); do
	(($(h1log | grep -c "migration to host h2 begins") > begun)) && break
	sleep 0.1
done
if ((k == 100)); then
	kill -CONT "$h2pid"
	fail "h1 did not begin the migration: $(cat "$T_DIR/mig.out")"
fi
set_ok=1
cl_vmfs 1 vm set "$(mnt 1)$VM" --restart-priority 7 >"$T_DIR/set.out" 2>&1 || set_ok=0
kill -CONT "$h2pid"
t_log "h2's vmfsd stopped for $((($(date +%s%N) - t_stop) / 1000000)) ms"
((set_ok)) || fail "vm set on h1 during the migration failed: $(cat "$T_DIR/set.out")"
mig_failed
grep -q "not the config host h1 sent" "$T_DIR/mig.out" ||
	fail "the failure does not say why: $(cat "$T_DIR/mig.out")"
for ((k = 0; k < 100; k++)); do
	pgrep -f "qemu-system.*$T_DIR/mnt-2$VM.*-incoming" >/dev/null || break
	sleep 0.2
done
((k < 100)) || fail "h2's incoming QEMU still runs after it refused"
for ((k = 0; k < 50; k++)); do
	(($(h1log | grep -c "keeps running on this host") > kept)) && break
	sleep 0.1
done
((k < 50)) || fail "h1 does not say it keeps the VM"
wait_counter 1 "$before" >/dev/null
runs_on 1
record_names 1
[[ $(field 1 restart_priority) == 7 ]] ||
	fail "restart priority on h1: $(field 1 restart_priority)"
# With the same config on both sides the next migration goes through.
hop 1 3
hop 3 1

step "the source dies during the copy: h2 discards its incoming QEMU"
before=$(counter 1)
slow_migrate 1 2
h1_qemu=$(pgrep -f "qemu-system.*$T_DIR/mnt-1$VM" | head -n 1 || true)
cl_kill_host 1
[[ -n $h1_qemu ]] && kill -KILL "$h1_qemu" 2>/dev/null
wait "$MIG" || true
gone "$QPID" "h2's incoming QEMU, its source dead"
# A crash, recovered as one: once h1 is recovered its locks are broken
# and h2 starts the VM, which counts on from the disk.
for ((k = 0; k < 150; k++)); do
	cl_vmfs 2 vm start "$(mnt 2)$VM" >/dev/null 2>&1 && break
	sleep 0.2
done
((k < 150)) || fail "h2 cannot start the VM after h1 died: $(cl_vmfs 2 vm start "$(mnt 2)$VM" 2>&1)"
# The dead copy's last write, then the new boot's.
last=$(counter 2)
wait_counter 2 "${last:-$before}" >/dev/null
[[ $(field 2 host) == h2 ]] || fail "h2 says the VM runs on $(field 2 host)"

step "stop; unmount; fsck -n is clean"
cl_vmfs 2 vm stop --force "$(mnt 2)$VM" >/dev/null || fail "vm stop failed"
for ((k = 0; k < 50; k++)); do
	[[ $(field 2 state) == running ]] || break
	sleep 0.2
done
cl_vmwatch_check 2
# The checker itself catches two copies: a boot that writes again after
# another took over.
printf '%s\n' '{"t":1,"off":0,"n":5,"boot":"a"}' '{"t":2,"off":0,"n":6,"boot":"b"}' \
	'{"t":3,"off":0,"n":7,"boot":"a"}' >"$T_DIR/twice.jsonl"
"$CL_LIB_DIR/vmwatch.py" check "$T_DIR/twice.jsonl" >/dev/null &&
	fail "vmwatch check passed two interleaved boots"
for i in 2 3; do
	cl_umount "$i" "$(mnt "$i")"
done
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
