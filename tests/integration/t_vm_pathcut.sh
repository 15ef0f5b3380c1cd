#!/usr/bin/env bash
#
# t_vm_pathcut: a host loses its path to the LUN (a real iSCSI SAN: tgtd,
# tests/iscsi/lib.sh) while its cluster network stays up: it must fence
# itself and stop its VMs, and only then may the survivors restart them.
#
#  - three hosts with corosync mount the iSCSI LUN (4 s lease), each with
#    its persistent-reservation key; host 1 runs an HA VM (the test guest,
#    its counter on its disk);
#  - host 1's route to the target becomes a blackhole (its corosync link
#    is untouched): its heartbeat cannot be renewed, it fences itself and
#    kills its QEMU; a survivor preempts its key, recovers it, and the HA
#    agent restarts the VM on host 2 or 3, which counts on; the time from
#    the cut to the counter advancing is printed;
#  - all along tests/cluster/vmwatch.py reads the guest's counter block
#    from the target's backing file: never two writers, never back;
#  - the path comes back, and with it what host 1 had sent meanwhile;
#    host 1 unmounts (it had fenced: exit 1) and mounts again; the VM
#    stays where it runs; a lease later no other host has fenced and the
#    guest counts on; fsck -n is clean.
#
# shellcheck source=tests/iscsi/lib.sh
source "$(dirname "$0")/../iscsi/lib.sh"

t_need_guest
LEASE_MS=4000
VM=/vms/p
mnt() { cl_mnt "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cl_on_exit() {
	cl_kill_qemus
	ip -n "$(cl_ns 1)" route del blackhole "$IS_PORTAL_A/32" 2>/dev/null || true
}

field() { cl_vm_field "$1" "$(mnt "$1")$VM" "$2"; }
counter() { t_guest_counter "$(mnt "$1")$VM/disk0.img"; }

step "a target; three hosts with corosync mount its LUN (lease $LEASE_MS ms)"
is_up 3 1G
cl_corosync_up 3
URL=$(is_url "$IS_PORTAL_A")
is_mkfs "$URL" --max-hosts 4 --journal-size 4M
cl_mount_all 3 "$URL" --lease-ms "$LEASE_MS"
grep -q "storage fencing: key" "$T_DIR/vmfsd-h1-mnt-1.log" ||
	fail "host 1 registered no persistent-reservation key: $(grep -i fenc "$T_DIR/vmfsd-h1-mnt-1.log")"

step "host 1 runs an HA VM"
mkdir "$(mnt 1)/vms"
cl_vmfs 1 vm create "$(mnt 1)$VM" --memory 96M --disk 16M --accel tcg --ha \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
	fail "vm create failed"
cl_vmfs 1 vm start "$(mnt 1)$VM" >/dev/null || fail "vm start on host 1 failed"
t_wait_counter "$(mnt 1)$VM/disk0.img" 2 60 >/dev/null
cl_vmwatch_start "$IS_DIR/lun.img"
sleep 1

step "host 1's path to the LUN is cut (its cluster link stays)"
qemu1=$(pgrep -f "qemu-system.*$T_DIR/mnt-1$VM" | head -n 1 || true)
[[ -n $qemu1 ]] || fail "no QEMU on host 1"
t0=$(now_ms)
ip -n "$(cl_ns 1)" route add blackhole "$IS_PORTAL_A/32"
# It fences itself and kills its QEMU ...
for ((k = 0; k < 300; k++)); do
	grep -q "fenced" "$T_DIR/vmfsd-h1-mnt-1.log" && ! t_pid_alive "$qemu1" && break
	sleep 0.1
done
((k < 300)) || fail "host 1 did not fence and stop its VM: $(grep -iE "fenc|VM" "$T_DIR/vmfsd-h1-mnt-1.log" | tail -n 3)"
t_fenced=$(now_ms)
t_log "host 1 fenced itself and its QEMU ended $((t_fenced - t0)) ms after the cut"
# ... and a survivor restarts the VM once host 1 is recovered.
host=
for ((k = 0; k < 600; k++)); do
	for i in 2 3; do
		if [[ $(field "$i" state 2>/dev/null) == running &&
			$(field "$i" host 2>/dev/null) =~ ^h([23])$ ]]; then
			host=${BASH_REMATCH[1]}
		fi
	done
	[[ -n $host ]] && break
	sleep 0.1
done
[[ -n $host ]] || fail "no survivor runs the VM 60 s after the cut: $(grep -h "HA" "$T_DIR"/vmfsd-h[23]-*.log | tail -n 5)"
grep -q "preempted" "$T_DIR"/vmfsd-h[23]-*.log ||
	fail "no survivor preempted host 1's key: $(grep -h "recover" "$T_DIR"/vmfsd-h[23]-*.log | tail -n 3)"
last=$(counter "$host")
c=$(t_wait_counter "$(mnt "$host")$VM/disk0.img" "${last:-0}" 60)
t_log "the VM runs on h$host: counter $last -> $c, $(($(now_ms) - t0)) ms from the cut to the counter advancing (lease $LEASE_MS ms)"

step "the path comes back; host 1 mounts again; the VM stays on h$host"
ip -n "$(cl_ns 1)" route del blackhole "$IS_PORTAL_A/32"
pid1=${CL_VMFSD_PID[1]}
cl_vmfs 1 umount --state-dir "$(cl_dir 1)/state" "$(mnt 1)" >"$T_DIR/umount1.out" 2>&1 &&
	fail "host 1's unmount said the volume closed cleanly after it fenced"
grep -q "fenced" "$T_DIR/umount1.out" || fail "host 1's unmount: $(cat "$T_DIR/umount1.out")"
cl__stop_pid "$pid1" 10 || fail "host 1's vmfsd still runs"
cl__shm_cleanup "$pid1"
cl_vmfsd_mount 1 "$URL" "$(mnt 1)" --lease-ms "$LEASE_MS"
seen=""
for ((k = 0; k < 50; k++)); do
	seen=$(field 1 host)
	[[ $seen == "h$host" ]] && break
	sleep 0.2
done
[[ $seen == "h$host" ]] || fail "host 1 says the VM runs on '$seen', not h$host"
# What host 1 sent while its path was gone reaches the target now: none
# of it may stop the other hosts (a lock-LU hold nobody knows of would
# keep their heartbeats from renewing).  A lease later they still run
# and the guest still counts.
sleep $((LEASE_MS / 1000))
for i in 2 3; do
	! grep -q "fenced" "$T_DIR/vmfsd-h$i-mnt-$i.log" ||
		fail "host $i fenced itself after host 1's path came back: $(grep -E "renewal|fenc" "$T_DIR/vmfsd-h$i-mnt-$i.log" | tail -n 3)"
done
last=$(counter "$host")
t_wait_counter "$(mnt "$host")$VM/disk0.img" "${last:-0}" 30 >/dev/null

step "the guest's disk: one writer at a time; stop; unmount; fsck -n"
cl_vmwatch_check 2
cl_vmfs "$host" vm stop --force "$(mnt "$host")$VM" >/dev/null || fail "vm stop failed"
for ((k = 0; k < 50; k++)); do
	[[ $(field "$host" state) == running ]] || break
	sleep 0.2
done
for i in 1 2 3; do
	cl_umount "$i" "$(mnt "$i")"
done
cl_vmfs 1 fsck -n "$URL" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
