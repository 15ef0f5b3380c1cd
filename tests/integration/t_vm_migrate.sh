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
#    locks never left it, and its counter goes on;
#  - bad input: an unknown host, the host it runs on, a VM that does not
#    run here;
#  - everyone unmounts; fsck -n is clean.
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

t_need_guest
LUN=$T_DIR/lun
mnt() { echo "$T_DIR/mnt-$1"; }
VM=/vms/g

cl_on_exit() {
	local i pid
	for i in 1 2 3; do
		for pid in $(pgrep -f "qemu-system.*$T_DIR/mnt-$i" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
	done
}

field() {
	cl_vmfs "$1" vm status --json "$(mnt "$1")$VM" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# counter I: the guest's counter on disk, read through host I's mount
# (the host that runs the VM: its lock covers the read).
counter() {
	dd if="$(mnt "$1")$VM/disk0.img" bs=512 count=1 iflag=direct 2>/dev/null |
		tr -d '\0' | sed -n 's/^vmfs-guest-counter \([0-9]*\).*/\1/p'
}

# wait_counter I N: the counter read on host I passes N within 30 s.
wait_counter() {
	local k c=""
	for ((k = 0; k < 150; k++)); do
		c=$(counter "$1")
		[[ -n $c ]] && ((c > $2)) && { echo "$c"; return 0; }
		sleep 0.2
	done
	fail "host $1: the guest's counter stays at '${c:-none}' (expected > $2); console: $(tail -c 300 "$(mnt "$1")$VM/console.log" 2>&1)"
}

# runs_on I: status from every host says h<I>, and I's supervisor has it.
runs_on() {
	local j host
	for j in 1 2 3; do
		host=$(field "$j" host)
		[[ $host == "h$1" ]] || fail "host $j says VM runs on '$host', expected h$1"
	done
	[[ $(field "$1" state) == running ]] || fail "host $1: VM state $(field "$1" state)"
}

step "three hosts with corosync mount the LUN"
make_lun "$LUN" 2G
t_mkfs "$LUN"
cl_up 3
for i in 1 2 3; do
	cl_vmfsd_mount "$i" "$LUN" "$(mnt "$i")"
done

step "the guest runs on h1"
mkdir "$(mnt 1)/vms"
cl_vmfs 1 vm create "$(mnt 1)$VM" --memory 128M --disk 16M --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
	fail "vm create failed"
[[ -e $(mnt 1)$VM/disk0.img ]] || fail "no disk0.img in $(ls "$(mnt 1)$VM")"
cl_vmfs 1 vm start "$(mnt 1)$VM" >/dev/null || fail "vm start on host 1 failed"
c=$(wait_counter 1 0)
runs_on 1

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

hop() {
	local from=$1 to=$2 before out after
	before=$(counter "$from")
	out=$(cl_vmfs "$from" vm migrate "$(mnt "$from")$VM" --to "h$to" 2>&1) ||
		fail "migrate h$from -> h$to: $out"
	t_log "$out"
	[[ $out == *"QEMU downtime"*"guest counter gap"* ]] ||
		fail "no pause figures in: $out"
	runs_on "$to"
	after=$(wait_counter "$to" "$before")
	t_log "counter $before -> $after"
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

step "the destination dies before the switchover: the VM stays on h1"
before=$(counter 1)
(
	if cl_vmfs 1 vm migrate "$(mnt 1)$VM" --to h2 --max-bandwidth 4M \
		>"$T_DIR/mig.out" 2>&1; then
		echo 0 >"$T_DIR/mig.rc"
	else
		echo 1 >"$T_DIR/mig.rc"
	fi
) &
mig=$!
qpid=""
for ((k = 0; k < 100; k++)); do
	qpid=$(pgrep -f "qemu-system.*$T_DIR/mnt-2$VM.*-incoming" | head -n 1 || true)
	[[ -n $qpid ]] && break
	sleep 0.2
done
[[ -n $qpid ]] || fail "no incoming QEMU on h2: $(cat "$T_DIR/mig.out")"
sleep 1
kill -KILL "$qpid"
wait "$mig"
[[ $(cat "$T_DIR/mig.rc") == 1 ]] ||
	fail "the migration succeeded although h2's QEMU was killed: $(cat "$T_DIR/mig.out")"
grep -q "failed" "$T_DIR/mig.out" || fail "no failure reported: $(cat "$T_DIR/mig.out")"
t_log "$(cat "$T_DIR/mig.out")"
runs_on 1
wait_counter 1 "$before" >/dev/null
expect_fail 1 "runs on .*h1" cl_vmfs 2 vm start "$(mnt 2)$VM"

step "stop; unmount; fsck -n is clean"
cl_vmfs 1 vm stop --force "$(mnt 1)$VM" >/dev/null || fail "vm stop failed"
for ((k = 0; k < 50; k++)); do
	[[ $(field 1 state) == running ]] || break
	sleep 0.2
done
for i in 1 2 3; do
	cl_umount "$i" "$(mnt "$i")"
done
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
