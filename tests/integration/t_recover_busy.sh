#!/usr/bin/env bash
#
# t_recover_busy: a survivor recovers a dead host on time while its own
# operations queue for that host's locks (docs/PROTOCOL.md §5, "The
# watcher waits for nothing an operation holds").
#
# A second host (build/lockhold, a host of its own through the lock
# manager) holds a directory D and a file F EXCLUSIVE.  Host A unlinks F
# (the drop of its link is left pending: A's orphan sweep asks for F's
# lock at every tick), and four of A's operations queue for D's lock, each
# waiting a lease for it while the one before it waits.  Then the other
# host is killed: A must recover it within its dead time plus two renewal
# intervals (and one more of allowance for a loaded machine), after which
# the queued operations and the pending drop go through and fsck -n is
# clean.  Before the sweep ran off the watcher's thread, the watcher
# queued behind those operations, which waited for the recovery only the
# watcher could do.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
LOCKHOLD=$VMFS_BUILD/lockhold
[[ -x $LOCKHOLD ]] || fail "$LOCKHOLD missing: make $VMFS_BUILD/lockhold"
LEASE_MS=10000         # the volume's default, which lockhold advertises
RENEW_MS=$((LEASE_MS / 5))
BOUND_MS=$((LEASE_MS + RENEW_MS + 2 * RENEW_MS + RENEW_MS))
WAITERS=4

step "mkfs; A makes D and F and unmounts (everything home)"
make_lun "$LUN" 1G
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
hmount A
MA=$(mp_of A)
mkdir "$MA/D"
echo "held elsewhere" >"$MA/F"
ino_d=$(stat -c %i "$MA/D")
ino_f=$(stat -c %i "$MA/F")
"$VMFS" umount --state-dir "$(state_of A)" "$MA" || fail "vmfs umount A failed"

step "another host holds D and F; A mounts and shares the volume"
coproc HOLD { exec "$LOCKHOLD" --name far-host "$LUN" "ino:$ino_d=ex" "ino:$ino_f=ex"; }
HOLD_PID_SAVED=$HOLD_PID
T_PIDS+=("$HOLD_PID_SAVED")
read -r -t 20 _ <&"${HOLD[0]}" || fail "lockhold did not get ready"
hmount A
grep -q "sharing the volume with other hosts" "$(log_of A)" ||
	fail "A does not share the volume: $(tail -n 3 "$(log_of A)")"

step "A unlinks F (its drop is left pending); $WAITERS operations queue for D"
rm "$MA/F" || fail "unlink of a file another host holds failed"
[[ ! -e $MA/F ]] || fail "F still has its name after the unlink"
pids=()
for ((i = 1; i <= WAITERS; i++)); do
	# Each try waits a lease for D's lock, then fails with EBUSY.
	(until touch "$MA/D/x$i" 2>/dev/null; do
		mountpoint -q "$MA" || exit 1
		sleep 0.1
	done) &
	pids+=($!)
	T_PIDS+=($!)
done
# Long enough for the sweep to want F at least once and for every
# waiter to have queued (each holds the operation slot for a lease).
sleep $((RENEW_MS * 3 / 1000))
grep -q "inode $ino_d is locked by host far-host" "$(log_of A)" &&
	fail "an operation on D gave up before the others queued"

step "the other host dies: A recovers it within ${BOUND_MS} ms"
t0=$(date +%s%N)
kill -KILL "$HOLD_PID_SAVED"
wait "$HOLD_PID_SAVED" 2>/dev/null || true
until grep -q "recovered host far-host" "$(log_of A)"; do
	ms=$((($(date +%s%N) - t0) / 1000000))
	((ms <= BOUND_MS)) ||
		fail "A did not recover the dead host within ${BOUND_MS} ms of the kill (lease ${LEASE_MS} ms): its watcher waits for something; threads: $(t_threads "$(vmfsd_pid_of "$(cd "$MA" && pwd -P)")")"
	sleep 0.1
done
t_log "recovered $((($(date +%s%N) - t0) / 1000000)) ms after the kill (bound ${BOUND_MS} ms)"

step "the queued operations go through; the pending drop is applied"
for p in "${pids[@]}"; do
	# Each waiter's current try ends within a lease.
	for ((w = 0; w < LEASE_MS / 100 + 50; w++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$p" 2>/dev/null && fail "an operation on D still waits after the recovery"
	wait "$p" || true
done
for ((i = 1; i <= WAITERS; i++)); do
	[[ -e $MA/D/x$i ]] || fail "x$i missing after the recovery"
done
t_wait_grep 30 "freed 1 inodes that were unlinked while open" "$(log_of A)" ||
	fail "the sweep did not free F after the recovery: $(grep -h 'sweep\|freed' "$(log_of A)" | tail -n 3)"

step "unmount; fsck -n is clean"
"$VMFS" umount --state-dir "$(state_of A)" "$MA" || fail "vmfs umount A failed"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n: $(cat "$T_DIR/fsck.out")"
echo "t_recover_busy: ok"
