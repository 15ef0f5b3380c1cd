#!/usr/bin/env bash
#
# t_selfmount_kill9: vmfsd killed (SIGKILL) while a request of its own
# waits on its own mount still ends.
#
# vmfsd reads VM configs and run records through its own mount.  A thread
# of vmfsd waiting there for its own FUSE threads' answer would keep the
# process from ever ending after a kill -9 (the kernel waits for an answer
# nobody gives, and the /dev/fuse descriptors stay open, so the connection
# is never aborted).  vmfsd makes those requests in a child process
# (vmfsd --mount-io, vmfsd/mntio.c) instead.
#
#   1. Host A mounts; a VM is created, with a run record (ha-state.json)
#      whose lock another host holds exclusive (build/lockhold, a live
#      host): A's `vmfs vm start` reads the record before it writes its
#      own, and that open waits for the lock (2 s for a live holder).
#   2. That read runs in a `vmfsd --mount-io ha-read` child of A's vmfsd;
#      kill -9 of the vmfsd: it and the child are gone within 5 s (the
#      CLI's start fails).
#   3. A mounts again (taking its own slot back) and reads the VM's
#      config; `vmfsd --mount-io` run by hand refuses, saying it is
#      vmfsd's own helper; fsck -n is clean after A unmounts.
#
# Needs no QEMU: the VM never gets as far as starting it.

set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
LOCKHOLD=$VMFS_BUILD/lockhold
[[ -x $LOCKHOLD ]] || fail "$LOCKHOLD missing: make $VMFS_BUILD/lockhold"

# The kernel's FUSE connection of mount point $1 aborted, so that a
# vmfsd stuck in a request on its own mount can end (what OPERATIONS
# tells an admin to do); only on the failure path.
# Its device from mountinfo: anything that looks at the path itself would
# wait for the stuck daemon too.
abort_conn() {
	local dev
	dev=$(awk -v mp="$1" '$5 == mp { print $3 }' /proc/self/mountinfo)
	[[ -n $dev ]] || return 0
	grep -qs " /sys/fs/fuse/connections fusectl " /proc/self/mounts ||
		mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null
	echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null || true
}

# The children of process $1 whose command line contains $2.
children_with() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -qF -- "$2" &&
			echo "$c"
	done
	return 0
}

step "mkfs; A mounts; a VM whose run record another live host holds locked"
make_lun "$LUN" 1G
t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
hmount A --no-cluster
a=$(mp_of A)
mkdir "$a/vms"
echo kernel >"$T_DIR/vmlinuz"
echo initrd >"$T_DIR/initrd.img"
VMFS_STATE_DIR=$(state_of A) "$VMFS" vm create "$a/vms/v1" --memory 128M \
	--disk 8M --accel tcg --kernel "$T_DIR/vmlinuz" \
	--initrd "$T_DIR/initrd.img" >/dev/null || fail "vmfs vm create failed"
# A run record another host holds open: reading it waits for its lock.
echo '{ "ha": false }' >"$a/vms/v1/ha-state.json"
ino=$(stat -c %i "$a/vms/v1/ha-state.json")
coproc HOLD { exec "$LOCKHOLD" --name far-host "$LUN" "ino:$ino=ex"; }
T_PIDS+=("$HOLD_PID")
read -r -t 20 _ <&"${HOLD[0]}" || fail "lockhold did not get ready"
# Until A shares the volume it works under its volume lock alone.
t_wait_grep 20 "another host mounted the volume: sharing it" "$(log_of A)" ||
	fail "A did not start sharing the volume with lockhold"

step "vm start on A waits to read the run record, in a child of vmfsd"
a_real=$(cd "$a" && pwd -P)
pid=$(vmfsd_pid_of "$a_real")
VMFS_STATE_DIR=$(state_of A) "$VMFS" vm start "$a/vms/v1" \
	>"$T_DIR/start.out" 2>&1 &
start_pid=$!
helper=
for ((i = 0; i < 100; i++)); do
	helper=$(children_with "$pid" "--mount-io")
	[[ -n $helper ]] && break
	sleep 0.05
done
[[ -n $helper ]] ||
	fail "no 'vmfsd --mount-io config-load' child of vmfsd $pid while vm start waits"
sleep 0.5
t_pid_alive "$helper" ||
	fail "the run record's read did not wait for its lock (helper $helper ended)"
t_log "vmfsd $pid, its helper $helper ($(tr '\0' ' ' <"/proc/$helper/cmdline")) waits for the lock"

step "kill -9 of vmfsd: it ends, and so does its helper"
kill -KILL "$pid"
for ((i = 0; i < 100; i++)); do
	t_pid_alive "$pid" || t_pid_alive "$helper" || break
	sleep 0.05
done
if t_pid_alive "$pid"; then
	state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	abort_conn "$a_real"
	fail "vmfsd $pid survived SIGKILL for 5 s (state $state), stuck in a request on its own mount"
fi
for ((i = 0; i < 100; i++)); do
	t_pid_alive "$helper" || break
	sleep 0.05
done
t_pid_alive "$helper" && fail "the helper $helper outlived its vmfsd by 5 s"
t_shm_cleanup "$pid"
wait "$start_pid" && fail "vm start succeeded on a killed vmfsd: $(cat "$T_DIR/start.out")"
t_log "vm start said: $(head -c 300 "$T_DIR/start.out")"
fusermount3 -u -z "$a" 2>/dev/null || umount -l "$a" 2>/dev/null || true

step "A mounts again and reads the config; the helper refuses by hand"
kill -TERM "$HOLD_PID"
wait "$HOLD_PID" || fail "lockhold did not end cleanly"
hmount A --no-cluster
VMFS_STATE_DIR=$(state_of A) "$VMFS" vm status --json "$a/vms/v1" |
	grep -q '"state"' || fail "vm status after the remount failed"
expect_fail 2 "vmfsd's own helper" "$VMFSD" --mount-io
t_umount "$a"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the kill: $(tail -n 5 "$T_DIR/fsck.out")"

t_log "PASS"
