#!/usr/bin/env bash
#
# t_iscsi_multipath: one LUN through two portals (the URL's list form,
# iscsi://A,B/IQN/1), on a real target (tgtd, tests/iscsi/lib.sh).
#
#  1. Bad input: an empty portal in the list (inside or at its end), or
#     more than four, is a clear error saying how to write the URL.
#  2. `vmfs paths URL` logs in through both portals: both reachable, the
#     first in use.  A lock-LU hold cut with its path (build/prfence
#     --cut-in-hold: a host's data and heartbeat handles): the heartbeat
#     handle ends the data handle's hold as soon as its body is over,
#     without waiting for its RELEASE on the lost path or its break time.
#  3. Host 1 mounts through both portals, host 2 through portal B only
#     (default 10 s lease).  fio writes checksummed blocks through host 1's
#     mount and verifies them as it goes (verify_backlog), O_DIRECT, for
#     the whole step; meanwhile host 1's route to portal A becomes a
#     blackhole twice (3 s each, 4 s apart).  fio reports no error and no
#     bad block, host 1's log shows the failovers to B and the failbacks
#     to A, `vmfs paths MOUNT` counts them, nobody fences, host 2 works
#     throughout, and after an unmount and a mount a verify-only pass
#     finds every block.
#  4. Lock changes cut in the middle: host 1 creates files in a directory
#     of its own as fast as it can (each one holds the lock LU briefly)
#     while its path to A is cut three times; meanwhile host 2 writes a
#     file every half second.  None of either fails: a hold that host 1
#     left on its lost session it ends itself once it logged in through
#     B, and a host that waits for the lock LU waits out a hold's break
#     time rather than failing first.  No connection to A keeps a write
#     or a reservation change unsent for longer than a command waits for
#     its answer there.  fsck -n is clean.
#  5. Both portals cut for longer than the fence time: the host fences
#     (all paths gone), as a single-path host does.
#
# shellcheck source=tests/iscsi/lib.sh
source "$(dirname "$0")/../iscsi/lib.sh"

command -v fio >/dev/null || fail "fio is not installed (make deps)"

cut_path() { ip -n "$(cl_ns 1)" route add blackhole "$1/32"; }
# Host 1's connections to portal A with more unsent than one bare command
# header (48 bytes, 52 with a header digest, plus a FIN): a write's data
# or a PERSISTENT RESERVE OUT's parameters, which would change the LUN
# or its reservations if they landed after the cut.
unsent_to_a() {
	ip netns exec "$(cl_ns 1)" ss -tnH state all dst "$IS_PORTAL_A" |
		awk '$1 != "SYN-SENT" && $3 > 53'
}
mend_path() { ip -n "$(cl_ns 1)" route del blackhole "$1/32" 2>/dev/null || true; }

step "a target with two portals; bad path lists are refused"
is_up 2 1G
URL2="iscsi://$IS_PORTAL_A,$IS_PORTAL_B/$IS_IQN/1?lock_lun=2"
URL_B=$(is_url "$IS_PORTAL_B")
expect_fail 1 "iSCSI URL not understood.*up to 4 paths" \
	cl_vmfs 1 info "iscsi://$IS_PORTAL_A,,$IS_PORTAL_B/$IS_IQN/1"
expect_fail 1 "iSCSI URL not understood.*up to 4 paths" \
	cl_vmfs 1 info "iscsi://$IS_PORTAL_A,$IS_PORTAL_B,/$IS_IQN/1"
expect_fail 1 "iSCSI URL not understood.*up to 4 paths" \
	cl_vmfs 1 info "iscsi://$IS_PORTAL_A,$IS_PORTAL_B,$IS_PORTAL_A,$IS_PORTAL_B,$IS_PORTAL_A/$IS_IQN/1"

step "vmfs paths URL: both portals reachable, the first in use"
cl_vmfs 1 paths --json "$URL2" >"$T_DIR/paths.json" || fail "vmfs paths $URL2 failed"
python3 - "$T_DIR/paths.json" "$IS_PORTAL_A" "$IS_PORTAL_B" <<'EOF' || fail "vmfs paths: $(cat "$T_DIR/paths.json")"
import json, sys
j = json.load(open(sys.argv[1]))
p = j["paths"]
assert [x["path"].split(":")[0] for x in p] == sys.argv[2:4], p
assert all(x["reachable"] for x in p), p
assert [x["state"] for x in p] == ["in-use", "standby"], p
EOF

step "a lock-LU hold cut with its path: the host's other handle ends it once its body is over"
# A host's data handle holds the lock LU when the path in use is cut;
# its body's write is lost with the path (it times out: 2 s inside a
# hold), and its RELEASE would time out there too (2 s more).  The
# host's heartbeat handle, which fails over to B after 1 s, must not
# wait for that RELEASE nor for the hold's break time (3 s from when it
# first saw it): the body had ended, nothing of it can land any more,
# so the other handle ends the hold at once (lun/iscsi_pr.c,
# isc_ended_mark).  Waiting for either cost a renewal up to 4 s of the
# 4-6 s left of its fence time when the cut came, and host 2 then
# fenced host 1 for having stood still.
cl_exec 1 "$VMFS_BUILD/prfence" --cut-in-hold "$URL2" $((512 << 20)) \
	"ip route add blackhole $IS_PORTAL_A/32" >"$T_DIR/cut.out" 2>&1 ||
	{ mend_path "$IS_PORTAL_A"; fail "prfence --cut-in-hold: $(cat "$T_DIR/cut.out")"; }
mend_path "$IS_PORTAL_A"
read -r w_ms h_ms r_ms < <(sed -n 's/^cut: write \([0-9]*\) ms .*held \([0-9]*\) ms, release \([0-9]*\) ms$/\1 \2 \3/p' "$T_DIR/cut.out")
[[ -n $r_ms ]] || fail "prfence --cut-in-hold: $(cat "$T_DIR/cut.out")"
# The other handle's wait past the end of the body: one poll of the
# mutex and ISC_RELEASE_STUCK_MS, never the RELEASE's half I/O timeout
# on the lost path (2 s).
((h_ms - w_ms < 1000)) ||
	fail "the heartbeat handle waited $((h_ms - w_ms)) ms past the end of the data handle's hold body: $(cat "$T_DIR/cut.out")"
t_log "$(grep '^cut:' "$T_DIR/cut.out")"

step "mkfs; host 1 mounts through both portals, host 2 through B"
is_mkfs "$URL2" --max-hosts 4 --journal-size 4M
cl_vmfsd_mount 1 "$URL2" "$T_DIR/m1"
cl_vmfsd_mount 2 "$URL_B" "$T_DIR/m2"
LOG1=$T_DIR/vmfsd-h1-m1.log
LOG2=$T_DIR/vmfsd-h2-m2.log

step "fio writes and verifies through host 1 while its path to A is cut twice"
JOB=$T_DIR/mp.fio
cat >"$JOB" <<EOF
[global]
directory=$T_DIR/m1
ioengine=libaio
direct=1
bs=4k
size=48M
iodepth=8
verify=crc32c
verify_fatal=1
[mp]
rw=randwrite
time_based=1
runtime=22
verify_backlog=512
EOF
(cd "$T_DIR" && fio --output="$T_DIR/fio.out" "$JOB") &
fio_pid=$!
sleep 4
for round in 1 2; do
	cut_path "$IS_PORTAL_A"
	t_log "round $round: path A cut"
	for ((i = 0; i < 6; i++)); do
		echo "$round.$i" >"$T_DIR/m2/r$round-$i" || fail "host 2 cannot write while host 1's path A is cut"
		sleep 0.5
	done
	mend_path "$IS_PORTAL_A"
	t_log "round $round: path A back"
	sleep 4
done
wait "$fio_pid" || { cat "$T_DIR/fio.out" >&2; fail "fio failed while paths failed over"; }
if grep -qiE "verify: bad|verify failed|err= *[1-9]" "$T_DIR/fio.out"; then
	cat "$T_DIR/fio.out" >&2
	fail "fio found a bad block or an error"
fi
for l in "$LOG1" "$LOG2"; do
	! grep -q "fenced" "$l" || fail "a host fenced: $(grep -E "path|fenc|renewal" "$l" | tail -n 4)"
done
n_over=$(grep -c "path ${IS_PORTAL_A}[^ ]* failed" "$LOG1" || true)
n_back=$(grep -c "path ${IS_PORTAL_A}[^ ]* answers again" "$LOG1" || true)
((n_over >= 2 && n_back >= 2)) ||
	fail "host 1 logged $n_over failovers from A and $n_back failbacks: $(grep -E "path" "$LOG1" | tail -n 6)"
cl_vmfs 1 paths --json "$T_DIR/m1" >"$T_DIR/mpaths.json" || fail "vmfs paths MOUNT failed"
python3 - "$T_DIR/mpaths.json" "$IS_PORTAL_A" <<'EOF' || fail "vmfs paths MOUNT: $(cat "$T_DIR/mpaths.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["failovers"] >= 2, j
use = [x for x in j["paths"] if x["state"] == "in-use"]
assert len(use) == 2 and all(x["path"].startswith(sys.argv[2]) for x in use), j
assert all(x["failed_ago_ms"] >= 0 for x in j["paths"] if x["path"].startswith(sys.argv[2])), j
EOF
t_log "$(grep -o 'WRITE: bw=[^,]*' "$T_DIR/fio.out"); $n_over failovers, $n_back failbacks logged"

step "lock changes cut in the middle: host 1 creates files while its path A is cut thrice"
mkdir "$T_DIR/m1/own"
: >"$T_DIR/creates.err"
(
	n=0
	while [[ ! -e $T_DIR/creates.stop ]]; do
		touch "$T_DIR/m1/own/f$n" 2>>"$T_DIR/creates.err" ||
			echo "create f$n failed at $(date +%T.%N)" >>"$T_DIR/creates.err"
		n=$((n + 1))
	done
	echo "$n" >"$T_DIR/creates.n"
) &
creates_pid=$!
T_PIDS+=("$creates_pid")
sleep 2
for round in 1 2 3; do
	cut_path "$IS_PORTAL_A"
	sleep 0.2
	unsent_to_a >"$T_DIR/ss1.out"
	t_cut=$(date +%s%N)
	for ((i = 0; i < 6; i++)); do
		echo "$round.$i" 2>"$T_DIR/h2.err" >"$T_DIR/m2/c$round-$i" ||
			fail "host 2 cannot write while host 1's lock changes are cut: $(cat "$T_DIR/h2.err"); host 2: $(grep -E "error|lock LU" "$LOG2" | tail -n 3)"
		sleep 0.5
	done
	# A command given up on (no answer within half its handle's I/O
	# timeout: 1 s on the heartbeat's handle, 2 s on the data handle)
	# takes its connection down with it: a connection to A that still
	# had a write to send 3 s later would send it when the path comes
	# back, after others took over.  (A command issued on A a moment ago
	# is pending legitimately: the same connection in both looks is what
	# counts.)
	while (($(date +%s%N) - t_cut < 3000000000)); do sleep 0.1; done
	unsent_to_a >"$T_DIR/ss2.out"
	stale=$(awk 'NR == FNR { a[$4] = 1; next } $4 in a' "$T_DIR/ss1.out" "$T_DIR/ss2.out")
	[[ -z $stale ]] ||
		fail "host 1 kept a write for portal A unsent for 3 s of the cut: $stale"
	mend_path "$IS_PORTAL_A"
	sleep 3
done
touch "$T_DIR/creates.stop"
wait "$creates_pid"
[[ ! -s $T_DIR/creates.err ]] ||
	fail "host 1's creates failed while its path failed over: $(head -n 4 "$T_DIR/creates.err"); host 1: $(grep -E "error|lock LU" "$LOG1" | tail -n 3)"
for l in "$LOG1" "$LOG2"; do
	! grep -q "fenced" "$l" || fail "a host fenced: $(grep -E "path|fenc|renewal" "$l" | tail -n 4)"
done
# How close host 1 came to fencing: its slowest renewal since the mount
# (vmfs info), which takes no lock-LU hold (PROTOCOL.md §10).
read -r r_last r_max r_fence < <(cl_vmfs 1 info --json "$T_DIR/m1" | python3 -c '
import json, sys
h = json.load(sys.stdin)["vmfsd"]["heartbeat"]
print(h["renew_last_ms"], h["renew_max_ms"], h["fence_ms"])')
((r_max > 0 && r_last <= r_max && r_max < r_fence)) ||
	fail "vmfs info: last renewal $r_last ms, slowest $r_max ms, fence time $r_fence ms"
t_log "host 1's slowest renewal through the cuts: $r_max ms (fence time $r_fence ms)"
n=$(find "$T_DIR/m2/own" -type f | wc -l)
[[ $n == "$(cat "$T_DIR/creates.n")" ]] || fail "host 2 sees $n of host 1's $(cat "$T_DIR/creates.n") files"
t_log "host 1 created $n files through 3 cuts; holds left on a lost session: $(grep -c "ended our hold" "$LOG1" || true) ended by host 1, $(grep -c "broke the hold" "$LOG2" || true) broken by host 2"

step "after an unmount and a mount, a verify-only pass finds every block"
cl_umount 1 "$T_DIR/m1"
cl_vmfsd_mount 1 "$URL2" "$T_DIR/m1"
(cd "$T_DIR" && fio --output="$T_DIR/fio-verify.out" --verify_only "$JOB") ||
	{ cat "$T_DIR/fio-verify.out" >&2; fail "the verify-only pass failed"; }
! grep -qiE "verify: bad|verify failed|err= *[1-9]" "$T_DIR/fio-verify.out" ||
	{ cat "$T_DIR/fio-verify.out" >&2; fail "the verify-only pass found a bad block"; }

step "both paths gone for longer than the fence time: host 1 fences"
cut_path "$IS_PORTAL_A"
cut_path "$IS_PORTAL_B"
for ((w = 0; w < 150; w++)); do
	grep -q "fenced" "$LOG1" 2>/dev/null && break
	grep -qh "fenced" "$T_DIR"/vmfsd-h1-m1*.log 2>/dev/null && break
	sleep 0.1
done
mend_path "$IS_PORTAL_A"
mend_path "$IS_PORTAL_B"
grep -qh "fenced" "$T_DIR"/vmfsd-h1-m1*.log || fail "host 1 did not fence with every path gone for 15 s"
cl_vmfs 1 umount --state-dir "$(cl_dir 1)/state" "$T_DIR/m1" >/dev/null 2>&1 || true
cl_umount 2 "$T_DIR/m2"
cl_vmfs 1 fsck -n "$URL_B" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
