#!/usr/bin/env bash
#
# t_iscsi_restart: the iSCSI target restarts under mounted hosts (tgtd
# stopped, started again and its target re-created from the same backing
# files: every session breaks, every registration and the fencing
# reservation are gone; tests/iscsi/lib.sh).
#
#  1. Hosts 1 and 2 mount (default 10 s lease) and fsync a file each.
#  2. The target restarts.  Both hosts log in again, register their keys
#     again and go on: writes and fsyncs after the restart succeed on
#     both, nobody fences, one of them made the fencing reservation again,
#     and the target lists both hosts' keys again.
#  3. Fencing works after the restart: host 2 is SIGSTOPped, host 1
#     recovers it and preempts its key.  The target restarts again while
#     host 2 is stopped (its key is gone with the target's state either
#     way); on SIGCONT host 2 logs in again, finds its heartbeat slot
#     taken over and does not register its key again: it fences, nothing
#     it tries to write lands, and only host 1's key is registered.
#  4. A restart that outlasts the fence time: with a 4 s lease and the
#     target down for 5 s, the host fences itself (it could not renew);
#     once the target is back, it unmounts, mounts again and finds every
#     file that was fsync'ed; fsck -n is clean.
#
# shellcheck source=tests/iscsi/lib.sh
source "$(dirname "$0")/../iscsi/lib.sh"

PRFENCE=$VMFS_BUILD/prfence
[[ -x $PRFENCE ]] || fail "no $PRFENCE: make $PRFENCE"

# put FILE TEXT: write and fsync
put() {
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode()); os.fsync(fd); os.close(fd)' "$1" "$2"
}

restart_target() {
	local t0
	t0=$(date +%s%N)
	is_tgtd_stop
	sleep "${1:-0}"
	is_tgtd_start
	is_target_create
	t_log "target down for $((($(date +%s%N) - t0) / 1000000)) ms"
}

step "a target; hosts 1 and 2 mount and fsync a file each"
is_up 2 512M
URL_A=$(is_url "$IS_PORTAL_A")
URL_B=$(is_url "$IS_PORTAL_B")
is_mkfs "$URL_A" --max-hosts 4 --journal-size 4M
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/m1"
cl_vmfsd_mount 2 "$URL_B" "$T_DIR/m2"
LOG1=$T_DIR/vmfsd-h1-m1.log
LOG2=$T_DIR/vmfsd-h2-m2.log
key1=$(grep -o "storage fencing: key 0x[0-9a-f]*" "$LOG1" | awk '{print $4}')
key2=$(grep -o "storage fencing: key 0x[0-9a-f]*" "$LOG2" | awk '{print $4}')
[[ -n $key1 && -n $key2 ]] || fail "the hosts logged no fencing keys"
put "$T_DIR/m1/before1" one || fail "host 1: write before the restart"
put "$T_DIR/m2/before2" two || fail "host 2: write before the restart"

step "the target restarts; both hosts log in again, register again and go on"
restart_target
put "$T_DIR/m1/after1" one || fail "host 1: write after the restart failed: $(grep -E "lun |renewal|fenc" "$LOG1" | tail -n 3)"
put "$T_DIR/m2/after2" two || fail "host 2: write after the restart failed: $(grep -E "lun |renewal|fenc" "$LOG2" | tail -n 3)"
sleep 3	# a renewal or two through the new sessions
for l in "$LOG1" "$LOG2"; do
	! grep -q "fenced" "$l" || fail "a host fenced over the restart: $(grep -E "lun |renewal|fenc" "$l" | tail -n 4)"
	grep -q "logged in again and registered its key again" "$l" ||
		fail "$(basename "$l"): no session restored: $(grep -E "lun |renewal" "$l" | tail -n 3)"
done
grep -qh "the fencing reservation was gone" "$LOG1" "$LOG2" ||
	fail "neither host made the fencing reservation again"
cl_exec 1 "$PRFENCE" --keys "$URL_A" >"$T_DIR/keys" 2>&1 || fail "prfence --keys: $(cat "$T_DIR/keys")"
grep -q "key $key1" "$T_DIR/keys" || fail "host 1's key $key1 is not registered after the restart: $(cat "$T_DIR/keys")"
grep -q "key $key2" "$T_DIR/keys" || fail "host 2's key $key2 is not registered after the restart: $(cat "$T_DIR/keys")"
t_log "after the restart: $(grep -ch "logged in again" "$LOG1" "$LOG2" | paste -sd+ | bc) sessions restored, keys $key1 and $key2 registered again"

step "fencing still works: host 2 stops, host 1 preempts it and recovers it"
pid2=${CL_VMFSD_PID[2]}
kill -STOP "$pid2"
t_wait_grep 30 "recovered host h2" "$LOG1" || true
grep -q "its persistent-reservation key $key2 is preempted" "$LOG1" ||
	{ kill -CONT "$pid2"; fail "host 1 did not preempt host 2's key: $(grep -E "recover|preempt" "$LOG1" | tail -n 3)"; }
cl_exec 1 "$PRFENCE" --keys "$URL_A" >"$T_DIR/keys2" 2>&1
! grep -q "key $key2" "$T_DIR/keys2" || { kill -CONT "$pid2"; fail "host 2's key is still registered after the preempt"; }
put "$T_DIR/m1/after2" one-wins || { kill -CONT "$pid2"; fail "host 1 cannot write host 2's file after recovering it"; }

step "the target restarts while host 2 is stopped; host 2 wakes up: it must not register again"
restart_target
put "$T_DIR/m1/after3" three || { kill -CONT "$pid2"; fail "host 1: write after the second restart failed"; }
kill -CONT "$pid2"
t_wait_grep 10 "fenced" "$LOG2" || fail "host 2 did not fence within 10 s of SIGCONT"
put "$T_DIR/m2/after2" zombie 2>/dev/null && fail "host 2's write after its recovery succeeded"
[[ $(cat "$T_DIR/m1/after2") == one-wins ]] || fail "host 1's data was overwritten by the zombie"
cl_exec 1 "$PRFENCE" --keys "$URL_A" >"$T_DIR/keys3" 2>&1 || fail "prfence --keys: $(cat "$T_DIR/keys3")"
grep -q "key $key1" "$T_DIR/keys3" || fail "host 1's key is not registered: $(cat "$T_DIR/keys3")"
! grep -q "key $key2" "$T_DIR/keys3" || fail "host 2, recovered by host 1, registered its key again after the restart"
grep -q "no longer owns its heartbeat slot" "$LOG2" ||
	fail "host 2 did not log refusing to register again: $(grep -E "lun |fenc" "$LOG2" | tail -n 3)"
cl_vmfs 2 umount --state-dir "$(cl_dir 2)/state" "$T_DIR/m2" >/dev/null 2>&1 || true
cl_umount 1 "$T_DIR/m1"

step "a restart longer than the fence time: the host fences, then mounts again"
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/m1b" --lease-ms 4000
LOG1B=$T_DIR/vmfsd-h1-m1b.log
put "$T_DIR/m1b/long" fsynced || fail "host 1: write before the long restart"
restart_target 5
t_wait_grep 10 "fenced" "$LOG1B" || fail "host 1 did not fence while the target was down for longer than its fence time"
cl_vmfs 1 umount --state-dir "$(cl_dir 1)/state" "$T_DIR/m1b" >/dev/null 2>&1 || true
mountpoint -q "$T_DIR/m1b" && fail "host 1 still mounted after vmfs umount"
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/m1c"
for f in before1:one before2:two after1:one after2:one-wins after3:three long:fsynced; do
	[[ $(cat "$T_DIR/m1c/${f%%:*}" 2>/dev/null) == "${f#*:}" ]] ||
		fail "${f%%:*} does not hold '${f#*:}' after the remount: '$(cat "$T_DIR/m1c/${f%%:*}" 2>&1)'"
done
cl_umount 1 "$T_DIR/m1c"
cl_vmfs 1 fsck -n "$URL_A" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n: $(tail -5 "$T_DIR/fsck.out")"
t_log "ok"
