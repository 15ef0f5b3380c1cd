#!/usr/bin/env bash
#
# t_zombie_gate: a host that stops without dying (SIGSTOP of its vmfsd)
# for longer than its lease, then wakes up, fences itself and writes
# nothing more to the volume.
#
#   1. mkfs; mount with a 4 s lease (--lease-ms: renew 0.8 s, writes stop
#      2.4 s after the start of the last renewal; long enough not to fence
#      a healthy host on a loaded machine) and a 100 ms commit
#      interval; a writer appends 64 KiB blocks with O_DIRECT to a file
#      through the mount (each append writes its data to the LUN at once,
#      from the FUSE thread serving it).
#   2. The writer is paused and its file fsync'ed, vmfsd is given a few
#      commit intervals to go idle, then it is SIGSTOPped and, once every
#      thread of it has stopped (t_stop), the writer resumed: the writer's
#      next append waits in the kernel for the stopped daemon, as a FUSE
#      request of a frozen host does.  A thread not yet stopped could take
#      that append up, pass the gate and stop before its write.  Stopping
#      vmfsd while it is idle keeps the residual window out of the test:
#      a thread stopped between the gate's check and its write system
#      call would still issue that one write on SIGCONT (docs/PROTOCOL.md
#      "Timing"; storage fencing closes that window).
#   3. After the lease and one more second (well past the 2.4 s after
#      which the host may write nothing) the LUN is copied (sparse) and
#      vmfsd is continued.  Then:
#      (a) appends, reads that need the LUN (O_DIRECT of a file's
#          data blocks), creates and mkdirs through the mount fail with
#          EIO, and the writer ended on an error;
#      (b) nothing outside the heartbeat region differs from the copy
#          (the region is left out: a renewal in flight at SIGSTOP may
#          still land, on this host's own slot; the renewal thread itself
#          only reads its slot once the lease ran out).  Without the
#          gate, the queued append's data lands (the FUSE thread usually
#          serves it before the heartbeat thread looks) and this
#          fails;
#      (c) vmfsd's log says it fenced, why (the lease ran out) and what
#          to do (unmount and mount again), and `vmfs info` shows it;
#      (d) `vmfs umount` unmounts (saying the host fenced itself, exit
#          1), a fresh mount works and shows every block fsync'ed before
#          the stop (and no more than were acknowledged, in order), and
#          `vmfs fsck -n` finds no problem.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
LEASE_MS=4000

# The first 4 KiB block (as an offset) that differs between two files,
# outside [skip_off, skip_off + skip_len); nothing when they agree.
first_diff_outside() {
	python3 - "$1" "$2" "$3" "$4" <<'EOF'
import sys
a, b = open(sys.argv[1], 'rb'), open(sys.argv[2], 'rb')
skip_off, skip_len = int(sys.argv[3]), int(sys.argv[4])
off, chunk = 0, 1 << 20
while True:
    x, y = a.read(chunk), b.read(chunk)
    if not x and not y:
        break
    if x != y:
        for i in range(0, max(len(x), len(y)), 4096):
            o = off + i
            if skip_off <= o < skip_off + skip_len:
                continue
            if x[i:i + 4096] != y[i:i + 4096]:
                print(o)
                sys.exit(0)
    off += chunk
EOF
}

step "mkfs and mount with a ${LEASE_MS} ms lease"
make_lun "$LUN" 512M
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
t_mount "$LUN" "$MP" --lease-ms "$LEASE_MS" --commit-ms 100
MPR=$(cd "$MP" && pwd -P)
VPID=$(vmfsd_pid_of "$MPR")
LOG=$T_DIR/vmfsd-mnt.log
grep -q "lease $LEASE_MS ms, renew 800 ms, I/O timeout 800 ms (data 1600 ms), writes stop 2400 ms" "$LOG" ||
	fail "vmfsd did not log the timers derived from a $LEASE_MS ms lease: $(grep heartbeat "$LOG")"
read -r HB_OFF HB_LEN < <("$VMFS" info --json "$LUN" | python3 -c '
import json, sys
d = json.load(sys.stdin)
hb = d["areas"]["heartbeat"]
print(hb["offset"], (1 + d["max_hosts"]) * d["md_block_size"])')
t_log "heartbeat region: $HB_LEN bytes at $HB_OFF"

step "a writer appends through the mount"
dd if=/dev/urandom of="$MP/big" bs=64k count=4 conv=fsync status=none
# O_DIRECT appends of 64 KiB blocks, block i filled with i: each one
# writes its data to the LUN at once, from the FUSE thread that serves
# it, so the append queued while vmfsd is stopped meets the write gate
# (and not only the heartbeat thread, which fences at its first look).
python3 - "$MP/log" "$T_DIR/writer.count" 2>"$T_DIR/writer.err" <<'EOF' &
import mmap, os, struct, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_DIRECT, 0o644)
buf = mmap.mmap(-1, 65536)
i = 0
try:
    while True:
        buf[:] = struct.pack("<Q", i) * 8192
        os.write(fd, buf)
        i += 1
except OSError as e:
    print("append %d: %s" % (i, e.strerror), file=sys.stderr)
open(sys.argv[2], "w").write("%d\n" % i)
EOF
WPID=$!
T_PIDS+=("$WPID")
for ((w = 0; w < 100; w++)); do
	[[ -s $MP/log ]] && (($(stat -c %s "$MP/log") >= 20 * 65536)) && break
	sleep 0.1
done
(($(stat -c %s "$MP/log") >= 20 * 65536)) || fail "the writer made no progress in 10 s"

step "pause the writer, let vmfsd go idle, SIGSTOP vmfsd, resume the writer"
kill -STOP "$WPID"
sync "$MP/log"
SYNCED=$(($(stat -c %s "$MP/log") / 65536))
sleep 0.5
t_stop "$VPID" || { kill -CONT "$VPID"; fail "vmfsd's threads did not all stop within 5 s: $(t_threads "$VPID")"; }
kill -CONT "$WPID"

step "vmfsd stays stopped for the lease and a second; copy the LUN"
# A failure here continues vmfsd first, so that the cleanup can unmount.
sleep $((LEASE_MS / 1000 + 1))
t_pid_alive "$WPID" || { kill -CONT "$VPID"; fail "the writer ended while vmfsd was stopped: $(cat "$T_DIR/writer.err")"; }
cp --sparse=always "$LUN" "$T_DIR/lun.frozen" || { kill -CONT "$VPID"; fail "cannot copy $LUN"; }

step "SIGCONT: the host must fence itself"
kill -CONT "$VPID"

step "(b) nothing outside the heartbeat region changed after SIGCONT"
# Give what a host without the gate would write (the queued append,
# a journal commit every 100 ms) time to land before comparing.
sleep 1.5
diff_at=$(first_diff_outside "$LUN" "$T_DIR/lun.frozen" "$HB_OFF" "$HB_LEN")
[[ -z $diff_at ]] ||
	fail "the fenced host wrote to the LUN after SIGCONT: block at offset $diff_at differs"

step "(a) the writer ended on EIO"
for ((w = 0; w < 100; w++)); do
	t_pid_alive "$WPID" || break
	sleep 0.1
done
t_pid_alive "$WPID" && fail "the writer still runs 10 s after vmfsd was continued"
wait "$WPID" || true
grep -qi "input/output error" "$T_DIR/writer.err" ||
	fail "the writer did not end on EIO: $(cat "$T_DIR/writer.err")"

step "(a) other calls through the mount fail with EIO"
# The read bypasses the page cache and needs the LUN: reads answered
# from caches (the log's inline data, attributes) may still succeed.
expect_fail 1 "input/output error" bash -c "echo more >>'$MP/log'"
expect_fail 1 "input/output error" dd if="$MP/big" of=/dev/null iflag=direct bs=64k count=1
expect_fail 1 "input/output error" touch "$MP/new"
expect_fail 1 "input/output error" mkdir "$MP/dir"

step "(c) vmfsd logged the fence, why and what to do"
for ((w = 0; w < 100; w++)); do
	grep -q "crit: .*fenced: .*lease ran out.*unmount and mount again" "$LOG" && break
	sleep 0.1
done
((w < 100)) || fail "no fence message with its reason and remedy in $LOG within 10 s; vmfsd's threads: $(t_threads "$VPID")"
# The renewal watchdog woke after the stop and said the process had not
# run (not a slow LUN), for about as long as it was stopped.
for ((w = 0; w < 50; w++)); do
	grep -Eq "warning: .*hb: slot [0-9]+: this process did not run for [0-9]{4,} ms" "$LOG" && break
	sleep 0.1
done
((w < 50)) ||
	fail "vmfsd did not log that it had not run for seconds: $(grep 'hb:' "$LOG" | tail -5)"
"$VMFS" info --json "$MP" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["vmfsd"]["heartbeat"]["fenced"] is True, d["vmfsd"]["heartbeat"]' ||
	fail "vmfs info does not show the mount fenced"

step "(d) vmfs umount, a fresh mount and fsck -n"
rc=0
"$VMFS" umount --state-dir "$T_STATE" "$MP" >"$T_DIR/umount.out" 2>&1 || rc=$?
expect_eq "vmfs umount exit status of a fenced mount" "$rc" 1
grep -q "fenced itself.*mount it again" "$T_DIR/umount.out" ||
	fail "vmfs umount did not say the host fenced itself: $(cat "$T_DIR/umount.out")"
mountpoint -q "$MP" && fail "$MP still mounted after vmfs umount"
t_pid_alive "$VPID" && fail "vmfsd $VPID still runs after vmfs umount"
t_mount "$LUN" "$MP"
# What was fsync'ed before the stop is there.  Appends acknowledged after
# SIGCONT but before the fence (if any) are lost like any change of the
# last commit interval before a crash; the log is a gapless run of
# blocks 0, 1, ... either way.
n=$(cat "$T_DIR/writer.count")
python3 - "$MP/log" "$SYNCED" "$n" <<'EOF' || fail "the log after the remount is wrong (above)"
import struct, sys
data = open(sys.argv[1], "rb").read()
synced, acked = int(sys.argv[2]), int(sys.argv[3])
got, rest = divmod(len(data), 65536)
if rest or not synced <= got <= acked:
    sys.exit("%d bytes after the remount: expected %d (fsync'ed) to %d "
             "(acknowledged) blocks of 64 KiB" % (len(data), synced, acked))
for i in range(got):
    if data[i * 65536:(i + 1) * 65536] != struct.pack("<Q", i) * 8192:
        sys.exit("block %d of the log does not hold its index" % i)
EOF
t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the remount: $(cat "$T_DIR/fsck.out")"
grep -q " 0 problems found" "$T_DIR/fsck.out" || fail "fsck -n: $(cat "$T_DIR/fsck.out")"
t_log "ok"
