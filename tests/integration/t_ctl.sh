#!/usr/bin/env bash
#
# t_ctl: vmfsd's control socket (docs/OPERATIONS.md, "The control socket").
#
#   - `vmfs info MOUNTPOINT` is the live daemon's view: its pid, and
#     journal counters that move after writes and an fsync;
#   - two daemons on one machine (two volumes, two state directories)
#     answer each for its own mount point;
#   - a user other than root and the daemon's is refused, by info and by
#     umount, with "permission denied: only root may talk to vmfsd for MNT",
#     and the mount stays;
#   - umount of a busy mount (a process's working directory inside) fails,
#     says so, and leaves the mount and its daemon serving;
#   - requests the CLI never sends (unknown type, another protocol
#     version, a frame whose sizes disagree) get an error reply, and a
#     client that connects and says nothing does not hold the daemon up;
#   - SIGUSR1 writes the blackbox, never seen half-written, and
#     qb-blackbox prints its records; SIGTERM and umount(8) end the daemon
#     with the volume closed cleanly;
#   - a killed daemon: info says it died;
#   - `vmfs umount` gets a failed close in the daemon's reply (exit 1).
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

RAW=$VMFS_BUILD/vmfsd-ctl-raw
command -v setpriv >/dev/null || skip "no setpriv (util-linux) to run a command as nobody"
[[ -x $RAW ]] || fail "no $RAW: build it with 'make $VMFS_BUILD/vmfsd-ctl-raw'"

LUN1=$T_DIR/lun1
LUN2=$T_DIR/lun2
MP1=$T_DIR/mnt1
MP2=$T_DIR/mnt2
STATE2=$T_DIR/state2
SMALL=$T_DIR/small           # the tmpfs for the close that fails

umount_small() {
	mountpoint -q "$SMALL" 2>/dev/null && umount "$SMALL"
	return 0
}
trap 'umount_small; t_cleanup' EXIT

# info_field MP KEY...: a field of `vmfs info --json MP` (dotted path).
info_field() {
	"$VMFS" info --json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(str(v).lower() if isinstance(v, bool) else v)' "$2"
}

# errno_of NAME: the number of an errno name (replies carry -errno).
errno_of() {
	python3 -c 'import errno, sys; print(getattr(errno, sys.argv[1]))' "$1"
}

# journal_clean LUN: every journal of the volume is clean (closed well).
journal_clean() {
	! t_info_rows "$1" journals state | grep -qv '^clean$'
}

step "info MOUNTPOINT is the live daemon's view"
make_lun "$LUN1" 256M
t_mkfs "$LUN1" --max-hosts 4 --journal-size 1M
# No timed commit in the test's lifetime: the fsync below is what commits.
t_mount "$LUN1" "$MP1" --commit-ms 60000
mp1=$(cd "$MP1" && pwd -P)
pid1=$(vmfsd_pid_of "$mp1")
expect_eq "pid in info" "$(info_field "$mp1" vmfsd.pid)" "$pid1"
expect_eq "LUN in info" "$(info_field "$mp1" lun)" "$LUN1"
"$VMFS" info "$mp1" >"$T_DIR/out"
grep -q "^mounted at .*$mp1 (vmfsd pid $pid1, since " "$T_DIR/out" ||
	fail "text info lacks the mount line: $(head -5 "$T_DIR/out")"
grep -q "^heartbeat .*slot 0 generation " "$T_DIR/out" ||
	fail "text info lacks the heartbeat line: $(head -5 "$T_DIR/out")"
c0=$(info_field "$mp1" vmfsd.journal.commits)
f0=$(info_field "$mp1" vmfsd.journal.forced)
mkdir "$mp1/d"
for i in 1 2 3; do echo "$i" >"$mp1/d/f$i"; done
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$mp1/d/f3"
c1=$(info_field "$mp1" vmfsd.journal.commits)
f1=$(info_field "$mp1" vmfsd.journal.forced)
((c1 > c0)) || fail "journal commits did not move after writes and fsync: $c0 -> $c1"
((f1 > f0)) || fail "forced commits did not move after fsync: $f0 -> $f1"
expect_eq "fenced" "$(info_field "$mp1" vmfsd.heartbeat.fenced)" false

step "two daemons on one machine answer each for its own mount point"
make_lun "$LUN2" 256M
t_mkfs "$LUN2" --max-hosts 4 --journal-size 1M
mkdir -p "$MP2" "$STATE2"
mp2=$(cd "$MP2" && pwd -P)
T_MOUNTS+=("$mp2")
"$VMFS" mount --state-dir "$STATE2" --log-file "$T_DIR/vmfsd-mnt2.log" \
	"$LUN2" "$mp2" || fail "second mount failed"
pid2=$(vmfsd_pid_of "$mp2")
T_PIDS+=("$pid2")
[[ $pid1 != "$pid2" ]] || fail "one vmfsd serves both mounts"
expect_eq "pid of mount 2" "$(info_field "$mp2" vmfsd.pid)" "$pid2"
expect_eq "LUN of mount 2" "$(info_field "$mp2" lun)" "$LUN2"
expect_eq "state dir of mount 2" "$(info_field "$mp2" vmfsd.state_dir)" "$STATE2"
expect_eq "pid of mount 1" "$(info_field "$mp1" vmfsd.pid)" "$pid1"
expect_eq "state dir of mount 1" "$(info_field "$mp1" vmfsd.state_dir)" "$T_STATE"

step "a user other than root is refused, and the mount stays"
chmod 711 "$T_DIR"       # so that nobody can reach the mount point
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}
expect_fail 1 "permission denied: only root may talk to vmfsd for $mp1" \
	as_nobody "$VMFS" info "$mp1"
expect_fail 1 "permission denied: only root may talk to vmfsd for $mp1" \
	as_nobody "$VMFS" umount "$mp1"
mountpoint -q "$mp1" || fail "$mp1 was unmounted by a refused user"
grep -q "refused pid [0-9]* (uid 65534" "$T_DIR/vmfsd-mnt1.log" ||
	fail "the daemon did not log the refusal"

step "unknown, old and broken requests get an error reply"
"$RAW" "$mp1" 99 >"$T_DIR/out" || fail "no reply to an unknown request type"
grep -q "^error -$(errno_of EOPNOTSUPP)\$" "$T_DIR/out" &&
	grep -q 'unknown request type 99' "$T_DIR/out" ||
	fail "unknown type: $(cat "$T_DIR/out")"
"$RAW" "$mp1" --version 2 >"$T_DIR/out" || fail "no reply to protocol version 2"
grep -q "^error -$(errno_of EPROTONOSUPPORT)\$" "$T_DIR/out" &&
	grep -q 'control protocol version 2 is not spoken' "$T_DIR/out" ||
	fail "version 2: $(cat "$T_DIR/out")"
"$RAW" "$mp1" --short >"$T_DIR/out" || fail "no reply to a broken frame"
grep -q "^error -$(errno_of EBADMSG)\$" "$T_DIR/out" ||
	fail "broken frame: $(cat "$T_DIR/out")"
"$RAW" "$mp1" 1 'not json' >"$T_DIR/out" || fail "no reply to a body that is not JSON"
grep -q "^error -$(errno_of EBADMSG)\$" "$T_DIR/out" ||
	fail "body that is not JSON: $(cat "$T_DIR/out")"
expect_eq "pid after bad requests" "$(info_field "$mp1" vmfsd.pid)" "$pid1"

step "a silent client does not hold the daemon up"
"$RAW" "$mp1" --hold 30 >"$T_DIR/hold" &
holder=$!
t_wait_grep 10 connected "$T_DIR/hold" || fail "the silent client did not connect"
expect_eq "pid while a client is silent" "$(info_field "$mp1" vmfsd.pid)" "$pid1"
kill -0 "$holder" 2>/dev/null || fail "the silent client ended before the check"
kill "$holder"
wait "$holder" 2>/dev/null || true

step "umount of a busy mount fails, names the cause and keeps the mount"
(cd "$mp1/d" && exec sleep 60) &
busy=$!
for ((w = 0; w < 100; w++)); do
	[[ $(readlink "/proc/$busy/cwd" 2>/dev/null) == "$mp1/d" ]] && break
	sleep 0.1
done
expect_fail 1 "$mp1 is busy: .*fuser -vm $mp1" "$VMFS" umount "$mp1"
mountpoint -q "$mp1" || fail "a busy umount unmounted $mp1"
t_pid_alive "$pid1" || fail "vmfsd $pid1 exited after a busy umount"
expect_eq "pid after a busy umount" "$(info_field "$mp1" vmfsd.pid)" "$pid1"
kill "$busy"
wait "$busy" 2>/dev/null || true

step "SIGUSR1 writes the blackbox, whole, and qb-blackbox reads it"
bb=$T_STATE/vmfsd-$pid1.blackbox
rm -f "$bb"
# Watch the file from the signal on: every size it is seen with must be
# its final one (a file that grows in place is read half-written by
# whoever waits for it, and qb-blackbox then says "Invalid word size").
python3 - "$bb" "$pid1" >"$T_DIR/bb.sizes" 2>&1 <<'EOF' || fail "blackbox: $(cat "$T_DIR/bb.sizes")"
import os, signal, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
seen = []
os.kill(pid, signal.SIGUSR1)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        continue
    if not seen:
        deadline = time.monotonic() + 0.5   # watch it a while longer
    if not seen or seen[-1] != size:
        seen.append(size)
if not seen:
    sys.exit("no blackbox file after SIGUSR1")
if len(seen) > 1 or seen[0] == 0:
    sys.exit("the blackbox file was seen with sizes %s before it was whole" % seen)
EOF
ls "$T_STATE" | grep -q 'partial$' && fail "a temporary blackbox file was left: $(ls "$T_STATE")"
command -v qb-blackbox >/dev/null ||
	fail "no qb-blackbox: install libqb-tools ('make deps' does)"
qb-blackbox "$bb" >"$T_DIR/bb.txt" 2>&1 || fail "qb-blackbox $bb failed: $(tail -n 5 "$T_DIR/bb.txt")"
! grep -q "Invalid word size" "$T_DIR/bb.txt" || fail "qb-blackbox: $(grep "Invalid word size" "$T_DIR/bb.txt")"
grep -q "mounted volume .* on $mp1" "$T_DIR/bb.txt" ||
	fail "qb-blackbox $bb does not show the mount message: $(tail -n 5 "$T_DIR/bb.txt")"

step "SIGTERM and umount(8) end the daemons with the volumes closed"
kill -TERM "$pid1"
for ((w = 0; w < 300; w++)); do
	t_pid_alive "$pid1" || break
	sleep 0.1
done
t_pid_alive "$pid1" && fail "vmfsd $pid1 still runs 30 s after SIGTERM"
mountpoint -q "$mp1" && fail "$mp1 still mounted after SIGTERM"
journal_clean "$LUN1" || fail "volume 1 not closed cleanly after SIGTERM"
umount "$mp2"
for ((w = 0; w < 300; w++)); do
	t_pid_alive "$pid2" || break
	sleep 0.1
done
t_pid_alive "$pid2" && fail "vmfsd $pid2 still runs 30 s after umount(8)"
journal_clean "$LUN2" || fail "volume 2 not closed cleanly after umount(8)"

step "a killed daemon: info says it died"
t_mount "$LUN1" "$MP1"
pid1=$(vmfsd_pid_of "$mp1")
t_kill_vmfsd_only "$pid1"
expect_fail 1 "vmfsd serving $mp1 has died.*vmfs umount $mp1" \
	"$VMFS" info "$mp1"
expect_fail 1 "vmfsd serving $mp1 had died" "$VMFS" umount "$mp1"

step "umount gets a failed close in the daemon's reply"
mkdir -p "$SMALL"
mount -t tmpfs -o size=64M tmpfs "$SMALL" || skip "cannot mount a tmpfs here"
make_lun "$SMALL/lun" 256M
t_mkfs "$SMALL/lun" --max-hosts 4 --journal-size 1M
t_mount "$SMALL/lun" "$MP1" --commit-ms 60000
pid1=$(vmfsd_pid_of "$mp1")
for i in $(seq 1 20); do echo "$i" >"$mp1/g$i"; done
# Free every page of the LUN file, then take them all (t_umount.sh).
fallocate -p -o 0 -l 256M "$SMALL/lun"
dd if=/dev/zero of="$SMALL/filler" bs=1M status=none 2>/dev/null || true
expect_fail 1 "unmounted $mp1, but the volume did not close cleanly: closing volume [0-9a-f-]+ failed" \
	"$VMFS" umount "$mp1"
t_pid_alive "$pid1" && fail "vmfsd $pid1 still runs after its failed close"
grep -q "unmount of $mp1 asked by pid" "$T_DIR/vmfsd-mnt1.log" ||
	fail "the unmount did not go through the control socket"
rm -f "$SMALL/filler"
umount_small

t_log "PASS"
