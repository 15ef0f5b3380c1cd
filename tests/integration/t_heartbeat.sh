#!/usr/bin/env bash
#
# t_heartbeat: a mounted host holds a heartbeat slot and renews it; a
# clean unmount frees it; after vmfsd is killed (-9) the slot stays
# active but stops renewing, and the next mount by the same host takes
# its own slot back with a newer generation; a second host identity (its
# own state dir) is refused while the first is live, and mounts once the
# first host is gone (its slot stays, stale, until it returns).
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

step "a second host identity is refused while the first is live"
STATE2=$T_DIR/state2
mkdir -p "$MP2"
expect_fail 1 "mounted by host .*slot 0, live" \
	"$VMFS" mount --state-dir "$STATE2" --log-file "$T_DIR/vmfsd-2.log" "$LUN" "$MP2"
mountpoint -q "$MP2" && fail "second host mounted the volume"
expect_eq "slots after the refusal" "$(hosts slot)" "0"

step "kill -9: the slot stays active and stops renewing"
pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)")
t_kill_vmfsd "$pid" "$MP"
expect_eq "slot after the crash" "$(hosts slot state)" "0 active"
r1=$(hosts renewals)
sleep 1.5
expect_eq "renewals of a dead host" "$(hosts renewals)" "$r1"

step "with the first host dead, a second host identity may mount"
"$VMFS" mount --state-dir "$STATE2" --log-file "$T_DIR/vmfsd-2.log" "$LUN" "$MP2" ||
	fail "second host could not mount after the first died"
T_MOUNTS+=("$(cd "$MP2" && pwd -P)")
pid2=$(vmfsd_pid_of "$(cd "$MP2" && pwd -P)") || fail "no vmfsd for $MP2"
T_PIDS+=("$pid2")
expect_eq "slots with a dead and a live host" "$(hosts slot state | tr '\n' ' ')" "0 active 1 active "
"$VMFS" umount --state-dir "$STATE2" "$MP2" || fail "umount of the second host failed"

step "the same host mounts again and takes its own slot back"
t_mount "$LUN" "$MP"
expect_eq "slot after remount" "$(hosts slot state generation)" "0 active 2"
echo data >"$MP/f"
t_umount "$MP"
expect_eq "slots after a clean unmount" "$(hosts slot)" ""
t_log "ok"
