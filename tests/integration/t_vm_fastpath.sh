#!/usr/bin/env bash
#
# t_vm_fastpath: the VM monitor with the cluster fast path on -- three
# hosts, each with its corosync in its own network namespace
# (tests/cluster/lib.sh), every engine caching its locks.
#
#  - start on host 1; a start on host 2 must fail naming h1;
#  - stop on host 1; start on host 2 works; host 1's start then fails;
#  - everyone unmounts; fsck -n is clean.
#
# It failed (the VM ran on both hosts) while a fresh inode's home write
# wiped the lock record its host had taken meanwhile (fixed: the create's
# sealed transaction now keeps the record on disk, vol/inode.c).
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

t_need_guest
LUN=$T_DIR/lun
QEMU_PIDS=()
mnt() { echo "$T_DIR/mnt-$1"; }

cl_on_exit() {
	local pid
	for pid in "${QEMU_PIDS[@]}"; do
		t_pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	done
}

field() { cl_vm_field "$@"; }

# wait_field I VMPATH KEY VALUE: within 20 s.
wait_field() {
	local i v
	for ((i = 0; i < 100; i++)); do
		v=$(field "$1" "$2" "$3")
		[[ $v == "$4" ]] && return 0
		sleep 0.2
	done
	fail "host $1: $3 of $2 is '$v', expected '$4' (status: $(cl_vmfs "$1" vm status --json "$2" 2>&1); stat: $(stat -c %i "$2/vm.json"); vmfs locks: $("$VMFS" locks "$LUN" 2>&1 | grep -A1 inode))"
}

step "two hosts with corosync mount the LUN; both cache locks"
make_lun "$LUN" 2G
t_mkfs "$LUN"
# Three corosync nodes: two of them alone would not be quorate.
cl_up 3
for i in 1 2 3; do
	cl_vmfsd_mount "$i" "$LUN" "$(mnt "$i")"
done
for i in 1 2 3; do
	for ((w = 0; w < 100; w++)); do
		cl_vmfs "$i" info "$(mnt "$i")" | grep -q 'fast path *caching on' && break
		sleep 0.2
	done
	((w < 100)) || fail "host $i does not cache locks: $(cl_vmfs "$i" info "$(mnt "$i")" 2>&1 | grep -iE -A1 "^cluster|fast path")"
done

step "start on host 1; a start on host 2 fails naming h1"
mkdir "$(mnt 1)/vms"
cl_vmfs 1 vm create "$(mnt 1)/vms/g" --memory 128M --disk 16M --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
	fail "vm create failed"
cl_vmfs 1 vm start "$(mnt 1)/vms/g" >/dev/null || fail "vm start on host 1 failed"
QEMU_PIDS+=("$(field 1 "$(mnt 1)/vms/g" pid)")
expect_fail 1 "runs on .*h1" cl_vmfs 2 vm start "$(mnt 2)/vms/g"

step "stop on host 1: host 2 starts it; host 1 cannot"
cl_vmfs 1 vm stop --force "$(mnt 1)/vms/g" >/dev/null || fail "vm stop on host 1 failed"
cl_vmfs 2 vm start "$(mnt 2)/vms/g" >/dev/null || fail "vm start on host 2 failed"
QEMU_PIDS+=("$(field 2 "$(mnt 2)/vms/g" pid)")
expect_fail 1 "runs on .*h2" cl_vmfs 1 vm start "$(mnt 1)/vms/g"
cl_vmfs 2 vm stop --force "$(mnt 2)/vms/g" >/dev/null || fail "vm stop on host 2 failed"

step "unmount; fsck -n is clean"
for i in 1 2 3; do
	cl_umount "$i" "$(mnt "$i")"
done
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
