#!/usr/bin/env bash
#
# t_multihost: three hosts (three vmfsd, three state directories, three
# FUSE mounts on this machine) mount one LUN file at once, with each lock
# primitive in turn (ATS, and the SCSI-2 reserve path).
#
#  - visibility: a file created on A is seen on B and C, a rename on B is
#    seen on A, data written on C reads back on A, an unlink on A is gone
#    on B; a cross-directory rename from each host lands once;
#  - open(O_CREAT) without O_EXCL of names other hosts create at the same
#    moment opens the file that is there (never EEXIST);
#  - unlink on C of a file open on A (for reading, then for writing):
#    it succeeds at once, the name is gone on A, B and C, A reads the
#    whole old content (and writes), the space stays in use while A has
#    it open and is free again on every host soon after A closes it;
#  - the VM-disk lock: a file open for writing on A makes B's open for
#    writing AND reading fail with EBUSY, and B's log and `vmfs locks`
#    name A (host name, UUID, slot); read-only opens share; after A closes,
#    B opens it for writing;
#  - multi-writer: `vmfs disk set --multi-writer on` is refused on a thin
#    disk and while the disk is open; on an eagerzeroedthick disk, A and B
#    both open it for writing and write, C reads both, a write past its
#    end fails (EPERM);
#  - `vmfs hosts` and `vmfs locks` given a LUN read the disk: three live
#    slots, no lock held between operations (the volume lock is held only
#    by a host alone);
#  - a host dies (kill -9 of its vmfsd) holding a file open for writing and
#    with fsync'ed data in it: a survivor recovers its slot (exactly one
#    logs the recovery), the file opens for writing on a survivor within
#    the lease plus a few seconds (the time is printed), the fsync'ed data
#    is there; a file it had open that A unlinked is freed after the
#    recovery;
#  - zombie (ATS round): B is stopped (SIGSTOP) past its lease while it
#    holds a file open for writing; A recovers it and writes the file; B
#    continues: nothing it writes reaches the file, its writer and its
#    mount get EIO, its log says it fenced, umount and a new mount work;
#  - the dead host's state directory mounts again (it recovers nothing:
#    its slot is free) and the last two hosts unmount; fsck -n is clean.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
HOSTS=(A B C)


humount() {
	"$VMFS" umount --state-dir "$(state_of "$1")" "$(mp_of "$1")" ||
		fail "host $1: vmfs umount failed"
}

# open_busy FILE MODE: opening FILE ("r" or "w") must fail with EBUSY.
open_busy() {
	python3 - "$1" "$2" <<'EOF' || fail "open($2) of $1 did not fail with EBUSY"
import errno, os, sys
flags = os.O_RDONLY if sys.argv[2] == "r" else os.O_WRONLY
try:
    os.close(os.open(sys.argv[1], flags))
except OSError as e:
    sys.exit(0 if e.errno == errno.EBUSY else 1)
sys.exit(1)
EOF
}

# zombie_round: B stops (SIGSTOP) while it holds a file open for
# writing, past its lease; A recovers B, opens the file and writes it;
# B continues: nothing it writes reaches the LUN, its mount fails with EIO
# and says why, `vmfs umount` ends it and B mounts again.
zombie_round() {
	local a b bpid t0 sum_a w i
	a=$(mp_of A)
	b=$(mp_of B)
	step "zombie: B stops past its lease holding a file open for writing"
	python3 - "$b/shared/zombie" "$T_DIR/zombie.out" <<'EOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n = 0
with open(sys.argv[2], "w") as log:
    while True:
        try:
            os.write(fd, b"B %08d\n" % n)
            os.fsync(fd)
        except OSError as e:
            log.write("error %d after %d writes\n" % (e.errno, n))
            break
        n += 1
        log.write("ok %d\n" % n)
        log.flush()
        time.sleep(0.05)
EOF
	w=$!
	sleep 1
	bpid=$(vmfsd_pid_of "$(cd "$b" && pwd -P)")
	# The writer must be writing when B stops, not already ended (its
	# first write may take a while on a loaded machine).
	t_wait_grep 10 "^ok " "$T_DIR/zombie.out" && ! grep -q "^error" "$T_DIR/zombie.out" ||
		fail "B's writer was not writing before B stopped: $(tail -n 2 "$T_DIR/zombie.out" | tr '\n' ' ')"
	kill -STOP "$bpid"
	t0=$(date +%s%N)
	until (exec 9>>"$a/shared/zombie") 2>/dev/null; do
		(( ($(date +%s%N) - t0) / 1000000000 < 60 )) ||
			fail "A could not take the stopped host's file within 60 s"
		sleep 0.2
	done
	t_log "zombie: A opened B's file for writing $(( ($(date +%s%N) - t0) / 1000000 )) ms after B stopped"
	echo "A owns it now" >>"$a/shared/zombie"
	sync "$a/shared/zombie"
	sum_a=$(sha256sum <"$a/shared/zombie")
	step "zombie: B continues: it writes nothing, its calls fail with EIO"
	kill -CONT "$bpid"
	wait "$w" 2>/dev/null || true
	grep -q "^error 5 " "$T_DIR/zombie.out" ||
		fail "B's writer did not end with EIO: $(tail -n 2 "$T_DIR/zombie.out" | tr '\n' ' '); B's vmfsd: $(t_threads "$bpid")"
	sleep 2
	expect_eq "the file after B woke, as A sees it" "$(sha256sum <"$a/shared/zombie")" "$sum_a"
	[[ $(tail -n 1 "$a/shared/zombie") == "A owns it now" ]] ||
		fail "B wrote after A took the file: $(tail -n 2 "$a/shared/zombie")"
	# The heartbeat's thread logs it as it fences; on a loaded machine
	# that thread may run a moment after the writer's EIO.
	t_wait_grep 10 "fenced" "$(log_of B)" ||
		fail "B's log does not say it fenced itself; B's vmfsd threads: $(t_threads "$bpid")"
	if (echo x >"$b/shared/after-wake") 2>"$T_DIR/wake.err"; then
		fail "a create on the fenced host B succeeded"
	fi
	t_log "zombie: a create on B after it woke: $(cat "$T_DIR/wake.err")"
	# Not only what reaches the LUN: answers B's cache could give fail too.
	stat "$b/shared/zombie" >/dev/null 2>&1 && fail "stat on the fenced host B succeeded"
	ls "$b/shared" >/dev/null 2>&1 && fail "ls on the fenced host B succeeded"
	df "$b" >/dev/null 2>&1 && fail "df on the fenced host B succeeded"
	cat "$b/shared/zombie" >/dev/null 2>&1 && fail "a read on the fenced host B succeeded"
	"$VMFS" umount --state-dir "$(state_of B)" "$b" >/dev/null 2>&1 || true
	mountpoint -q "$b" && fail "B still mounted after vmfs umount"
	hmount B --lock-primitive ats
	[[ $(tail -n 1 "$b/shared/zombie") == "A owns it now" ]] ||
		fail "B does not see A's write after mounting again"
}

# free_bytes H: the free space host H's statfs reports.
free_bytes() {
	python3 -c 'import os, sys; s = os.statvfs(sys.argv[1]); print(s.f_bfree * s.f_frsize)' "$(mp_of "$1")"
}

# unlink_open_round MODE: A holds a file open ("r" reading, "w" writing)
# while C unlinks it: the unlink succeeds at once, the name is gone on
# every host, A still reads the whole old content (and writes it, "w"),
# the space stays in use while A has it open and comes back on every
# host once A closes it.  "w" gives the file a second name first: its
# removal on C while the first one waits fails with EBUSY, and once A
# closed the file that name has one link and goes normally.
unlink_open_round() {
	local mode=$1 a c h free0 held holder t0 i
	a=$(mp_of A)
	c=$(mp_of C)
	rm -f "$T_DIR"/uo.*
	dd if=/dev/urandom of="$T_DIR/uo.blob" bs=1M count=8 status=none
	free0=$(free_bytes A)
	cp "$T_DIR/uo.blob" "$a/shared/uo"
	[[ $mode == w ]] && ln "$a/shared/uo" "$a/shared/uo.link"
	python3 - "$a/shared/uo" "$mode" "$T_DIR/uo" <<'PYEOF' &
import hashlib, os, sys, time
path, mode, base = sys.argv[1:4]
fd = os.open(path, os.O_RDONLY if mode == "r" else os.O_RDWR)
open(base + ".ready", "w").close()
while not os.path.exists(base + ".go"):
    time.sleep(0.05)
want = open(base + ".blob", "rb").read()
got = os.pread(fd, len(want) + 1, 0)
res = "ok" if got == want else "read %d bytes, other than written" % len(got)
if res == "ok" and mode == "w":
    os.pwrite(fd, b"A writes", 0)
    os.fsync(fd)
    if os.pread(fd, 8, 0) != b"A writes":
        res = "A's write to the unlinked file does not read back"
with open(base + ".res", "w") as f:
    f.write(res)
while not os.path.exists(base + ".close"):
    time.sleep(0.05)
os.close(fd)
PYEOF
	holder=$!
	for ((i = 0; i < 100; i++)); do
		[[ -e $T_DIR/uo.ready ]] && break
		sleep 0.1
	done
	[[ -e $T_DIR/uo.ready ]] || fail "A's holder of the file did not start"
	held=$(free_bytes A)
	(( held < free0 )) || fail "the 8 MiB file took no space ($free0 free before, $held after)"
	rm "$c/shared/uo" || fail "C could not unlink a file open ($mode) on A"
	for h in A B C; do
		[[ ! -e $(mp_of "$h")/shared/uo ]] ||
			fail "host $h still sees the name C unlinked"
	done
	if [[ $mode == w ]]; then
		if rm "$c/shared/uo.link" 2>"$T_DIR/uo.err"; then
			fail "C removed a second name of a file whose first removal waits for A"
		fi
		grep -q "busy" "$T_DIR/uo.err" ||
			fail "the second removal did not fail with EBUSY: $(cat "$T_DIR/uo.err")"
		grep -q "remove this name once the file is closed there" "$(log_of C)" ||
			fail "C's log does not say why the second removal failed"
	fi
	touch "$T_DIR/uo.go"
	for ((i = 0; i < 300; i++)); do
		[[ -e $T_DIR/uo.res ]] && break
		sleep 0.1
	done
	expect_eq "A's reads of the file C unlinked ($mode)" "$(cat "$T_DIR/uo.res" 2>/dev/null)" ok
	for h in A B C; do
		expect_eq "free space on $h while A has the unlinked file open" \
			"$(free_bytes "$h")" "$held"
	done
	touch "$T_DIR/uo.close"
	wait "$holder" || fail "A's holder of the unlinked file failed"
	t0=$(date +%s%N)
	if [[ $mode == w ]]; then
		until [[ $(stat -c %h "$c/shared/uo.link") == 1 ]]; do
			(( ($(date +%s%N) - t0) / 1000000000 < 30 )) ||
				fail "the second name has $(stat -c %h "$c/shared/uo.link") links 30 s after A closed the file"
			sleep 0.2
		done
		rm "$c/shared/uo.link" || fail "C cannot remove the second name after A closed the file"
	fi
	for h in A B C; do
		until [[ $(free_bytes "$h") == "$free0" ]]; do
			(( ($(date +%s%N) - t0) / 1000000000 < 30 )) ||
				fail "host $h: $(free_bytes "$h") bytes free 30 s after A closed the unlinked file, $free0 before it existed; the locks on the volume: $("$VMFS" locks "$LUN" 2>&1 | tail -n 12 | tr '\n' ';') fsck -n: $("$VMFS" fsck -n "$LUN" 2>&1 | grep -iE "inode|link|orphan|unlinked" | head -n 8 | tr '\n' ';')"
			sleep 0.2
		done
	done
	t_log "unlink on C of a file open ($mode) on A: space back on every host $(( ($(date +%s%N) - t0) / 1000000 )) ms after A closed it"
}


round() {
	local prim=$1 h a b c t0 t1 holder_pid before n i free0 pids=()
	step "[$prim] mkfs; hosts A, B and C mount the volume"
	for h in "${HOSTS[@]}"; do
		rm -rf "$(state_of "$h")"
	done
	make_lun "$LUN" 2G
	t_mkfs "$LUN" --max-hosts 8 --journal-size 4M
	for h in "${HOSTS[@]}"; do
		hmount "$h" --lock-primitive "$prim"
	done
	a=$(mp_of A)
	b=$(mp_of B)
	c=$(mp_of C)

	step "[$prim] vmfs hosts and vmfs locks from the disk"
	"$VMFS" hosts --json "$LUN" >"$T_DIR/hosts.json"
	python3 - "$T_DIR/hosts.json" <<'EOF' || fail "vmfs hosts: not three live hosts A, B, C"
import json, sys
h = json.load(open(sys.argv[1]))["hosts"]
names = sorted(x["hostname"] for x in h if x["liveness"] == "live")
sys.exit(0 if names == ["A", "B", "C"] else 1)
EOF
	# Shared: nobody holds the volume lock (a lone host holds it
	# exclusive), and no operation is running, so no lock at all.
	"$VMFS" locks "$LUN" >"$T_DIR/locks.txt"
	grep -q "^no lock is held" "$T_DIR/locks.txt" ||
		fail "locks held by three idle sharing hosts: $(cat "$T_DIR/locks.txt")"

	step "[$prim] create on A is seen on B and C; rename on B seen on A"
	mkdir "$a/shared" "$a/da" "$a/db"
	echo "from A" >"$a/shared/f"
	[[ $(cat "$b/shared/f") == "from A" ]] || fail "B does not see A's file"
	[[ $(cat "$c/shared/f") == "from A" ]] || fail "C does not see A's file"
	mv "$b/shared/f" "$b/shared/g"
	[[ -e $a/shared/g && ! -e $a/shared/f ]] || fail "A does not see B's rename"
	dd if=/dev/urandom of="$T_DIR/blob" bs=64k count=16 status=none
	cp "$T_DIR/blob" "$c/shared/blob"
	cmp -s "$T_DIR/blob" "$a/shared/blob" || fail "A reads other data than C wrote"
	rm "$a/shared/g"
	[[ ! -e $b/shared/g ]] || fail "B still sees the file A unlinked"
	step "[$prim] crossing renames between directories from three hosts"
	for h in A B C; do
		touch "$(mp_of "$h")/da/$h"
	done
	mv "$a/da/A" "$a/db/A" &
	mv "$b/da/B" "$b/db/B" &
	mv "$c/db/A" "$c/da/A2" 2>/dev/null &
	wait
	mv "$c/da/C" "$c/db/C"
	n=$(find "$b/da" "$b/db" -type f | wc -l)
	[[ $n == 3 ]] || fail "after crossing renames $n files, not 3: $(find "$b/da" "$b/db")"

	step "[$prim] open(O_CREAT) of the same names from three hosts at once never fails"
	for h in A B C; do
		python3 - "$(mp_of "$h")/shared" <<'EOF' &
import os, sys
for n in range(150):
    fd = os.open("%s/race-%d" % (sys.argv[1], n), os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
EOF
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || fail "an open(O_CREAT) of a name another host created failed"
	done
	pids=()
	rm -f "$a"/shared/race-*

	step "[$prim] files unlinked while shared are freed by the next sweep, not left to the next mount"
	for i in $(seq 1 20); do
		echo x >"$b/shared/tmp$i"
		rm "$b/shared/tmp$i"
	done
	# The watchers sweep every renewal (2 s); on a loaded machine the
	# hosts may take a few ticks to work through them (14-15 s seen on a
	# quiet one, over 30 s in one run of this test alone), never a
	# remount.
	t0=$(date +%s)
	while :; do
		sleep 2
		"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck-live.out" 2>&1 || true
		grep -qE "unlinked while open|has no links" "$T_DIR/fsck-live.out" || break
		(( $(date +%s) - t0 < 60 )) ||
			fail "unlinked files still wait after 60 s: $(grep -E "unlinked while open|has no links" "$T_DIR/fsck-live.out")"
	done
	t_log "[$prim] unlinked files freed by the sweeps within $(( $(date +%s) - t0 )) s"

	step "[$prim] unlink on C of a file open for reading on A; A keeps reading; freed at A's close"
	unlink_open_round r
	step "[$prim] the same with the file open for writing on A"
	unlink_open_round w

	step "[$prim] a file open for writing on A is locked against B"
	echo "disk" >"$a/shared/disk"
	exec 7>>"$a/shared/disk"
	open_busy "$b/shared/disk" w
	open_busy "$b/shared/disk" r
	grep -q "open of inode [0-9]* for writing refused: it is locked exclusive by host A (" "$(log_of B)" ||
		fail "B's log does not name A as the owner"
	"$VMFS" locks --path /shared/disk "$LUN" >"$T_DIR/locks.txt"
	grep -q "owner A, uuid" "$T_DIR/locks.txt" ||
		fail "vmfs locks --path does not name A: $(cat "$T_DIR/locks.txt")"
	# A metadata change waits for a live holder for one lease, then
	# fails with EBUSY and B's log names the holder (PROTOCOL.md §3).
	if chmod 600 "$b/shared/disk" 2>"$T_DIR/chmod.err"; then
		fail "B changed the mode of a file A holds open for writing"
	fi
	grep -q "Device or resource busy" "$T_DIR/chmod.err" ||
		fail "chmod on B: not EBUSY: $(cat "$T_DIR/chmod.err")"
	grep -q "inode [0-9]* is locked by host A (.*); the operation fails with EBUSY" "$(log_of B)" ||
		fail "B's log does not name A as the holder that made the chmod fail"
	exec 7>&-
	step "[$prim] read-only opens share; a writer then waits for them"
	exec 7<"$a/shared/disk"
	exec 8<"$b/shared/disk"
	open_busy "$c/shared/disk" w
	exec 7<&- 8<&-
	echo "B writes" >>"$b/shared/disk" || fail "B cannot write after A closed"
	[[ $(tail -n 1 "$a/shared/disk") == "B writes" ]] || fail "A does not see B's write"

	step "[$prim] multi-writer: refused on a thin disk and while open; then A and B write at once"
	"$VMFS" disk create --size 1M --type thin "$a/shared/thin.vmdk" >/dev/null
	expect_fail 1 "only an eagerzeroedthick disk" \
		"$VMFS" disk set --multi-writer on "$a/shared/thin.vmdk"
	"$VMFS" disk create --size 1M --type eagerzeroedthick "$a/shared/mw.vmdk" >/dev/null
	exec 7>>"$b/shared/mw.vmdk"
	expect_fail 1 "is open on a host" \
		"$VMFS" disk set --multi-writer on "$a/shared/mw.vmdk"
	exec 7>&-
	"$VMFS" disk set --multi-writer on "$a/shared/mw.vmdk" >/dev/null ||
		fail "disk set --multi-writer on failed"
	"$VMFS" disk info "$c/shared/mw.vmdk" | grep -q "^multi-writer on" ||
		fail "disk info on C does not say multi-writer on"
	python3 - "$a/shared/mw.vmdk" "$b/shared/mw.vmdk" "$c/shared/mw.vmdk" <<'EOF' ||
import mmap, os, sys
fa = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
fb = os.open(sys.argv[2], os.O_RDWR | os.O_DIRECT)   # both open for writing
for fd, byte, off in ((fa, b"A", 0), (fb, b"B", 65536)):
    buf = mmap.mmap(-1, 4096)
    buf.write(byte * 4096)
    assert os.pwrite(fd, buf, off) == 4096
    os.fsync(fd)
fc = os.open(sys.argv[3], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
for byte, off in ((b"A", 0), (b"B", 65536)):
    assert os.preadv(fc, [buf], off) == 4096 and buf[:] == byte * 4096, (byte, off)
# Growing it would change metadata the hosts share: refused.
try:
    os.pwrite(fa, buf, 1 << 20)
    sys.exit("a write past the end of a shared multi-writer disk went through")
except OSError as e:
    assert e.errno == 1, e
for fd in (fa, fb, fc):
    os.close(fd)
EOF
		fail "multi-writer writes from A and B did not both land"

	step "[$prim] kill -9 of C while it holds a file open for writing (and one A unlinked)"
	holder_pid=$(vmfsd_pid_of "$(cd "$c" && pwd -P)")
	free0=$(free_bytes A)
	dd if=/dev/urandom of="$c/shared/doomed" bs=1M count=4 status=none
	python3 - "$c/shared/vmdisk" "$c/shared/doomed" <<'EOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
doomed = os.open(sys.argv[2], os.O_RDONLY)
os.write(fd, b"fsynced by C\n")
os.fsync(fd)
open(sys.argv[1] + ".ready", "w").close()
time.sleep(3600)
EOF
	local writer=$!
	for ((i = 0; i < 100; i++)); do
		[[ -e $c/shared/vmdisk.ready ]] && break
		sleep 0.1
	done
	[[ -e $c/shared/vmdisk.ready ]] || fail "C's writer did not start"
	open_busy "$a/shared/vmdisk" w
	rm "$a/shared/doomed" || fail "A could not unlink a file open on C"
	before=$(cat "$(log_of A)" "$(log_of B)" | grep -c "recovered host C" || true)
	t0=$(date +%s%N)
	t_kill_vmfsd_only "$holder_pid"
	kill "$writer" 2>/dev/null
	wait "$writer" 2>/dev/null || true
	fusermount3 -u -z "$c" 2>/dev/null || umount -l "$c" 2>/dev/null
	# (A subshell: a failed redirection of exec ends the shell itself.)
	until (exec 9>>"$a/shared/vmdisk") 2>/dev/null; do
		(( ($(date +%s%N) - t0) / 1000000000 < 60 )) ||
			fail "A could not open the dead host's file within 60 s"
		sleep 0.2
	done
	t1=$(date +%s%N)
	t_log "[$prim] kill -9 to the dead host's file open for writing on a survivor: $(( (t1 - t0) / 1000000 )) ms (lease 10 s)"
	[[ $(head -n 1 "$a/shared/vmdisk") == "fsynced by C" ]] ||
		fail "the dead host's fsync'ed data is gone: $(od -c "$a/shared/vmdisk" | head)"
	n=$(cat "$(log_of A)" "$(log_of B)" | grep -c "recovered host C" || true)
	n=$((n - before))
	[[ $n == 1 ]] || fail "$n survivors logged recovering C, not exactly one"
	until [[ $(free_bytes A) == "$free0" ]]; do
		(( ($(date +%s%N) - t1) / 1000000000 < 30 )) ||
			fail "the file A unlinked while the dead host had it open still holds its space 30 s after the recovery"
		sleep 0.2
	done

	if [[ $prim == ats ]]; then
		zombie_round
	fi

	step "[$prim] C mounts again; everyone unmounts; fsck -n is clean"
	hmount C --lock-primitive "$prim"
	[[ $(head -n 1 "$c/shared/vmdisk") == "fsynced by C" ]] || fail "C lost its file"
	for h in "${HOSTS[@]}"; do
		humount "$h"
	done
	"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
		fail "fsck -n after the $prim round: $(cat "$T_DIR/fsck.out")"
}

for prim in ${PRIMS:-ats reserve}; do
	round "$prim"
done
echo "t_multihost: ok"
