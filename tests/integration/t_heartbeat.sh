#!/usr/bin/env bash
#
# t_heartbeat: a mounted host holds a heartbeat slot and renews it; a
# clean unmount frees it; after vmfsd is killed (-9) the slot stays
# active but stops renewing; a read-only second host identity (its own
# state dir) is refused while the first is live; a read-write second
# host mounts once the first is dead, after recovering its slot (the dead
# host held the volume lock); the first host then mounts again with a
# newer generation.  (Read-write hosts sharing a live volume: t_multihost.)
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
MP2=$T_DIR/mnt2

# hosts FIELD...: one line per slot of `vmfs info --json`'s "hosts".
hosts() {
	t_info_rows "$LUN" hosts "$@"
}

step "mkfs and mount"
make_lun "$LUN" 2G
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
t_mount "$LUN" "$MP"
expect_eq "slots in use after mount" "$(hosts slot state generation)" "0 active 1"

step "the heartbeat renews"
r1=$(hosts renewals)
sleep 4.5
r2=$(hosts renewals)
((r2 >= r1 + 2)) || fail "renewals went from $r1 to $r2 in 4.5 s (renewal every 2 s)"

step "a read-only second host is refused while the first is live"
STATE2=$T_DIR/state2
mkdir -p "$MP2"
expect_fail 1 "mounted by host .*slot 0, live.*read-only mount cannot share" \
	"$VMFS" mount --ro --state-dir "$STATE2" --log-file "$T_DIR/vmfsd-2.log" "$LUN" "$MP2"
mountpoint -q "$MP2" && fail "second host mounted the volume"
expect_eq "slots after the refusal" "$(hosts slot)" "0"

step "kill -9: the slot stays active and stops renewing"
pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)")
t_kill_vmfsd "$pid" "$MP"
expect_eq "slot after the crash" "$(hosts slot state)" "0 active"
r1=$(hosts renewals)
sleep 1.5
expect_eq "renewals of a dead host" "$(hosts renewals)" "$r1"

step "with the first host dead, a second host mounts and recovers it"
"$VMFS" mount --state-dir "$STATE2" --log-file "$T_DIR/vmfsd-2.log" "$LUN" "$MP2" ||
	fail "second host could not mount after the first died"
T_MOUNTS+=("$(cd "$MP2" && pwd -P)")
pid2=$(vmfsd_pid_of "$(cd "$MP2" && pwd -P)") || fail "no vmfsd for $MP2"
T_PIDS+=("$pid2")
# The dead host held the volume lock: the second host waited for its
# lease to run out, recovered its slot (free now) and took the lock.
expect_eq "slots after the recovery" "$(hosts slot state | tr '\n' ' ')" "1 active "
grep -q "recovered host .*slot 0" "$T_DIR/vmfsd-2.log" ||
	fail "the second host did not log recovering slot 0"
"$VMFS" umount --state-dir "$STATE2" "$MP2" || fail "umount of the second host failed"

step "the same host mounts again and takes its own slot back"
t_mount "$LUN" "$MP"
expect_eq "slot after remount" "$(hosts slot state generation)" "0 active 2"
echo data >"$MP/f"
t_umount "$MP"
expect_eq "slots after a clean unmount" "$(hosts slot)" ""
t_log "ok"
