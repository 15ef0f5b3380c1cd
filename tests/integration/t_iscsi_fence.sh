#!/usr/bin/env bash
#
# t_iscsi_fence: storage fencing with persistent reservations on a real
# iSCSI target (tgtd, tests/iscsi/lib.sh).
#
#  1. At the target, without a mount in the way (build/prfence): two
#     handles register host keys; B preempts A; A's next write is refused
#     by the target (RESERVATION CONFLICT), A fences itself (EIO), and
#     what A tried to write after the preempt is not on the LUN.
#  2. A zombie host: hosts 1 and 2 mount (4 s lease); host 2 writes and
#     fsyncs a file, then its vmfsd is SIGSTOPped.  Host 1 recovers it and
#     its log says it preempted host 2's key first; host 1 then writes the
#     file.  SIGCONT: host 2 fences (its log says so), its writes and
#     reads fail with EIO, and the file holds what host 1 wrote.  Host 2
#     unmounts (exit 1: it had fenced), mounts again (a fresh mount
#     registers a fresh key) and sees host 1's data; fsck -n is clean.
#  3. A hold on the lock LU whose holder ended without a release
#     (build/prfence --leave-hold, a tool's handle: its key announces a
#     break time longer than a 4 s-lease host's): a mount waits until it
#     breaks it, instead of failing on the reservation conflict.
#  4. A hold left on the lock LU while hosts 1 and 2 are mounted and
#     working: it is broken before their fence time, neither fences and
#     every operation succeeds.  Then host 1's vmfsd is stopped inside
#     a hold of its own lock changes (on its data handle): host 2 breaks
#     it within 1.75 heartbeat I/O timeouts, goes on, and recovers host 1.
#     Host 1 mounts with --disk-asks off for these two, so that every
#     operation of either host changes locks.
#  5. A killed host is recovered once its slot stood still for its fence
#     time (its key preempted: no need to wait out the dead time), mounts
#     again at once (its preempted key and the reservation's new holder in
#     the way), and the survivor goes on; three times.
#  6. Host 1 crashes (kill -9) while mounted: its registration and the
#     reservation stay on the LUN; `vmfs fsck -y` still writes (every
#     read-write open registers a key of its own) and a read-only mount
#     on host 2 reads what host 1 fsync'ed.
#  7. A handle idle while another takes and releases the lock LU's hold
#     5000 times, with 4 registrations left behind by killed waiters
#     (build/prfence --idle-backlog): it takes the hold, draining the
#     20,000 unit attentions tgt queued for it, with a 100 ms deadline.
#
# shellcheck source=tests/iscsi/lib.sh
source "$(dirname "$0")/../iscsi/lib.sh"

PRFENCE=$VMFS_BUILD/prfence
[[ -x $PRFENCE ]] || fail "no $PRFENCE: make $PRFENCE"

step "a target; two hosts"
is_up 2 512M
URL_A=$(is_url "$IS_PORTAL_A")
URL_B=$(is_url "$IS_PORTAL_B")

step "at the target: a preempted handle's write is refused and fences it"
cl_exec 1 "$PRFENCE" "$URL_A" $((400 << 20)) >"$T_DIR/prfence.out" 2>&1 ||
	fail "prfence: $(cat "$T_DIR/prfence.out")"
grep -q "A's write refused" "$T_DIR/prfence.out" || fail "prfence: $(cat "$T_DIR/prfence.out")"

step "mkfs; hosts 1 and 2 mount with a 4 s lease"
is_mkfs "$URL_A" --max-hosts 4 --journal-size 4M
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/m1" --lease-ms 4000
cl_vmfsd_mount 2 "$URL_B" "$T_DIR/m2" --lease-ms 4000
LOG1=$T_DIR/vmfsd-h1-m1.log
LOG2=$T_DIR/vmfsd-h2-m2.log
key2=$(grep -o "storage fencing: key 0x[0-9a-f]*" "$LOG2" | awk '{print $4}')
[[ -n $key2 ]] || fail "host 2 logged no fencing key"

step "host 2 writes and fsyncs a file, then stops"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"2" * 65536); os.fsync(fd); os.close(fd)' "$T_DIR/m2/f"
sleep 1.5   # a few commit intervals: host 2 goes idle
pid2=${CL_VMFSD_PID[2]}
kill -STOP "$pid2"

step "host 1 preempts host 2's key, recovers it and writes the file"
t_wait_grep 30 "recovered host h2" "$LOG1" || { kill -CONT "$pid2"; fail "host 1 did not recover host 2 within 30 s"; }
grep -q "its persistent-reservation key $key2 is preempted" "$LOG1" ||
	{ kill -CONT "$pid2"; fail "host 1 did not log preempting host 2's key $key2"; }
for ((w = 0; w < 100; w++)); do
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"1" * 65536); os.fsync(fd); os.close(fd)' "$T_DIR/m1/f" 2>/dev/null && break
	sleep 0.2
done
cmp -s <(head -c 65536 "$T_DIR/m1/f") <(head -c 65536 /dev/zero | tr '\0' '1') ||
	{ kill -CONT "$pid2"; fail "host 1 could not write the recovered host's file"; }

step "host 2 continues: it fences, its I/O fails with EIO"
kill -CONT "$pid2"
t_wait_grep 10 "fenced" "$LOG2" || fail "host 2 did not fence within 10 s of SIGCONT"
python3 -c '
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY); os.write(fd, b"Z" * 4096); os.fsync(fd)
except OSError as e:
    sys.exit(0 if e.errno == errno.EIO else 1)
sys.exit(1)' "$T_DIR/m2/f" || fail "host 2's write did not fail with EIO"
cmp -s <(head -c 65536 "$T_DIR/m1/f") <(head -c 65536 /dev/zero | tr '\0' '1') ||
	fail "the file does not hold what host 1 wrote after the recovery"

step "host 2 unmounts and mounts again; fsck -n is clean"
cl_vmfs 2 umount --state-dir "$(cl_dir 2)/state" "$T_DIR/m2" >/dev/null 2>&1 || true
mountpoint -q "$T_DIR/m2" && fail "host 2 still mounted after vmfs umount"
cl_vmfsd_mount 2 "$URL_B" "$T_DIR/m2b" --lease-ms 4000
cmp -s <(head -c 65536 "$T_DIR/m2b/f") <(head -c 65536 /dev/zero | tr '\0' '1') ||
	fail "host 2's new mount does not see host 1's data"
cl_umount 2 "$T_DIR/m2b"
cl_umount 1 "$T_DIR/m1"
cl_vmfs 1 fsck -n "$URL_A" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n: $(tail -5 "$T_DIR/fsck.out")"

step "a lock-LU hold whose holder ended: a mount waits it out"
cl_exec 1 "$PRFENCE" --leave-hold "$URL_A" >"$T_DIR/hold.out" 2>&1 ||
	fail "prfence --leave-hold: $(cat "$T_DIR/hold.out")"
t0=$(date +%s%N)
# A wait shorter than the hold's break time (15 s) ends without it and
# names the hold that stood in the way.
left=$(cl_exec 1 "$PRFENCE" --holder "$URL_A" 2>&1)
[[ $left == "holder 0x"* ]] || fail "no hold left on the lock LU: $left"
left=${left#holder }
left=${left%% *}
cl_exec 1 "$PRFENCE" --wait "$URL_A" 1000 >"$T_DIR/wait.out" 2>"$T_DIR/wait.err" ||
	fail "prfence --wait: $(cat "$T_DIR/wait.out" "$T_DIR/wait.err")"
grep -q "^not held: " "$T_DIR/wait.out" ||
	fail "a 1 s wait got the mutex past a hold with a 15 s break time: $(cat "$T_DIR/wait.out")"
grep -q "waited [0-9]* ms for the mutex without getting it: [0-9]* tries, 1 holds in the way; the longest seen, key $left " "$T_DIR/wait.err" ||
	fail "the failed wait did not name the hold in its way ($left): $(cat "$T_DIR/wait.err")"
t_log "$(sed 's/.*lock LU/lock LU/' "$T_DIR/wait.err" | head -n 1)"
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/m1h" --lease-ms 4000
t_log "mounted $((($(date +%s%N) - t0) / 1000000)) ms after a hold was left on the lock LU"
cl_umount 1 "$T_DIR/m1h"

step "a hold left on the lock LU while two hosts are mounted: it is broken, nobody fences"
# As when a host dies inside a lock change's hold (a hold with the
# heartbeat handle's I/O timeout): every operation of the mounted hosts
# changes on-disk locks through that mutex (host 1 mounts with
# --disk-asks off, so that neither keeps its locks between operations),
# and the hold must be broken before they give up.  Their renewals take
# no reservation (PROTOCOL.md §10) and must not even notice.
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/mk1" --lease-ms 4000 --disk-asks off
cl_vmfsd_mount 2 "$URL_B" "$T_DIR/mk2" --lease-ms 4000
LOGK1=$T_DIR/vmfsd-h1-mk1.log
LOGK=$T_DIR/vmfsd-h2-mk2.log
# The hold is left by a handle with a 4 s-lease host's I/O timeout.
cl_exec 1 "$PRFENCE" --leave-hold "$URL_A" 800 >"$T_DIR/hold2.out" 2>&1 ||
	fail "prfence --leave-hold: $(cat "$T_DIR/hold2.out")"
t0=$(date +%s%N)
# Three leases of metadata work on both hosts; every operation must succeed.
for ((i = 0; i < 60; i++)); do
	echo "$i" >"$T_DIR/mk1/h1-$i" || fail "host 1: creating a file failed $((($(date +%s%N) - t0) / 1000000)) ms after the hold was left"
	echo "$i" >"$T_DIR/mk2/h2-$i" || fail "host 2: creating a file failed $((($(date +%s%N) - t0) / 1000000)) ms after the hold was left"
	sleep 0.2
done
for l in "$LOGK1" "$LOGK"; do
	! grep -q "fenced" "$l" ||
		fail "a host fenced behind the hold: $(grep -E "fenc|renewal|lock LU" "$l" | tail -n 4)"
done
grep -qh "broke the hold of key" "$LOGK1" "$LOGK" ||
	fail "neither host logged breaking the hold: $(grep -hE "renewal|lock LU" "$LOGK1" "$LOGK" | tail -n 4)"
t_log "$(grep -h "broke the hold of key" "$LOGK1" "$LOGK" | head -n 1 | sed 's/.*lock LU/lock LU/')"
rm -f "$T_DIR"/mk1/h1-* "$T_DIR"/mk2/h2-*

step "host 1 stopped inside a lock change's hold: host 2 breaks it in time, does not fence, recovers host 1"
# The real thing, not a tool's hold: host 1's vmfsd changes on-disk
# locks through its data handle (a longer I/O timeout than the
# heartbeat's), at every operation as it keeps none between them
# (--disk-asks off above: a host that keeps its locks makes too few
# holds for a stop to land in one), and is SIGSTOPped until a hold of the
# lock LU stays put.
# Its key must announce a break within 1.75 heartbeat I/O timeouts (the
# budget renewals had when they took the mutex, which still bounds how
# long a lock change waits for a dead holder), and host 2 must break it
# and go on; host 2 then recovers host 1.
pid1=${CL_VMFSD_PID[1]}
mkdir "$T_DIR/mk1/storm" || fail "host 1: mkdir failed"
(
	i=0
	while echo x >"$T_DIR/mk1/storm/f$((i % 8))" &&
		rm -f "$T_DIR/mk1/storm/f$(((i + 4) % 8))"; do
		i=$((i + 1))
	done
) 2>/dev/null &
storm=$!
caught=
for ((try = 0; try < 60; try++)); do
	sleep "0.$((RANDOM % 3 + 1))"
	kill -STOP "$pid1"
	h1=$(cl_exec 1 "$PRFENCE" --holder "$URL_A" 2>&1)
	sleep 0.2
	h2=$(cl_exec 1 "$PRFENCE" --holder "$URL_A" 2>&1)
	if [[ $h1 == "holder 0x"* && $h1 == "$h2" ]]; then
		caught=$h1
		break
	fi
	kill -CONT "$pid1"
done
[[ -n $caught ]] || { kill -CONT "$pid1"; fail "no hold of host 1 caught in $try stops (last: '$h1', '$h2')"; }
t0=$(date +%s%N)
t_log "caught after $((try + 1)) stops: $caught"
brk=${caught##* break }
brk=${brk% ms}
# 4 s lease: heartbeat I/O timeout 800 ms.
((brk <= 1400)) || fail "host 1's hold announces a break after $brk ms, beyond 1.75 heartbeat I/O timeouts (1400 ms)"
base=$(grep -c "recovered host h1" "$LOGK" || true)
for ((i = 0; i < 15; i++)); do
	echo "$i" >"$T_DIR/mk2/k-$i" || fail "host 2: creating a file failed $((($(date +%s%N) - t0) / 1000000)) ms after host 1 stopped in its hold"
	sleep 0.2
done
for ((w = 0; w < 300; w++)); do
	n=$(grep -c "recovered host h1" "$LOGK" || true)
	((n > base)) && break
	sleep 0.1
done
((w < 300)) || fail "host 2 did not recover the stopped host 1 within 30 s"
! grep -q "fenced" "$LOGK" ||
	fail "host 2 fenced behind host 1's hold: $(grep -E "fenc|renewal|lock LU" "$LOGK" | tail -n 4)"
key=${caught#holder }
key=${key%% *}
# The key names its handle: host 1's data handle, as its mount logged.
bits=$(printf '0x%07x' $(((key >> 24) & 0xfffffff)))
grep -q "handle bits 0x[0-9a-f]* (heartbeat) and $bits (data)" "$LOGK1" ||
	fail "host 1's hold $key (handle bits $bits) is not its data handle's: $(grep "handle bits" "$LOGK1")"
grep -q "broke the hold of key $key" "$LOGK" ||
	fail "host 2 did not log breaking host 1's hold $key: $(grep -E "renewal|lock LU" "$LOGK" | tail -n 4)"
t_log "$(grep "broke the hold of key $key" "$LOGK" | sed 's/.*lock LU/lock LU/')"
cl_kill_host 1
wait "$storm" 2>/dev/null || true
rm -f "$T_DIR"/mk2/k-*
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/mk1" --lease-ms 4000

step "a killed host mounts again once recovered, three times; the survivor goes on"
base=$(grep -c "recovered host h1" "$LOGK" || true)
early0=$(grep -c "so it is recovered now rather than after" "$LOGK" || true)
for round in 1 2 3; do
	cl_kill_host 1
	for ((w = 0; w < 300; w++)); do
		n=$(grep -c "recovered host h1" "$LOGK" || true)
		((n >= base + round)) && break
		sleep 0.1
	done
	((w < 300)) || fail "round $round: host 2 did not recover host 1 within 30 s"
	cl_vmfsd_mount 1 "$URL_A" "$T_DIR/mk1" --lease-ms 4000
	echo "$round" >"$T_DIR/mk1/r$round" || fail "round $round: host 1 cannot write after its new mount"
	echo "$round" >"$T_DIR/mk2/s$round" || fail "round $round: host 2 cannot write"
done
! grep -q "fenced" "$LOGK" || fail "host 2 fenced itself: $(grep -E "fenc|renewal" "$LOGK" | tail -n 3)"
# With the target fencing, host 1 was recovered once its slot stood still
# for its fence time, not after the whole dead time.
n=$(($(grep -c "so it is recovered now rather than after" "$LOGK" || true) - early0))
((n == 3)) || fail "host 2 recovered host 1 early $n times of 3: $(grep -E "recover|preempt" "$LOGK" | tail -n 4)"
cl_umount 1 "$T_DIR/mk1"
cl_umount 2 "$T_DIR/mk2"

step "a crash leaves the reservation behind: fsck -y and a read-only mount work"
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/m1c"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"crash\n"); os.fsync(fd); os.close(fd)' "$T_DIR/m1c/g"
cl_kill_host 1
rc=0
cl_vmfs 2 fsck -y "$URL_B" >"$T_DIR/fsck-y.out" 2>&1 || rc=$?
((rc <= 1)) || fail "fsck -y after the crash exited $rc: $(tail -5 "$T_DIR/fsck-y.out")"
cl_vmfsd_mount 2 "$URL_B" "$T_DIR/m2ro" --ro
[[ $(cat "$T_DIR/m2ro/g") == crash ]] || fail "the crashed host's fsync'ed file is not there"
cl_umount 2 "$T_DIR/m2ro"

step "a handle idle while others' holds come and go gets the lock LU behind tgt's unit attentions"
# tgt queues a RESERVATIONS RELEASED unit attention on every nexus for
# every other registrant at each RELEASE, and registrations that lost
# waits leave behind stay: 4 of them and 5000 holds queue 20,000 on the
# idle handle's nexus.  Drained at one command each, that outlasts its
# 100 ms deadline many times over; each such answer is progress
# (lun/iscsi.c lun_isc_run_raw), so the hold is taken.  Before, the
# command timed out ("Connection timed out").  Last in this test: the
# registrations stay behind.
cl_exec 1 "$PRFENCE" --idle-backlog "$URL_A" 5000 4 100 >"$T_DIR/backlog.out" 2>&1 ||
	fail "prfence --idle-backlog: $(cat "$T_DIR/backlog.out")"
t_log "$(cat "$T_DIR/backlog.out")"
t_log "ok"
