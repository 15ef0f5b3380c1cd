#!/usr/bin/env bash
#
# t_multihost_storm: three hosts on one LUN run a metadata storm at once
# (tests/tools/mh_workload.py: create, write, rename within and across
# directories and over existing names, hard links, unlinks, xattrs, each
# host in its own directory and all in one shared directory), with each
# lock primitive.  Afterwards every host sees the same tree, every file
# holds what its writer's log says, and fsck -n is clean.
#
# Then host C is killed (kill -9 of its vmfsd) in the middle of another
# storm, KILLS times: the survivors keep working, one of them recovers C,
# everything C fsync'ed before the kill is there, C mounts again.
#
# STORM_SECS (default 30) and KILLS (default 1) stretch it: `make
# clustertest` runs 20 kills.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
HOSTS=(A B C)
SECS=${STORM_SECS:-30}
KILLS=${KILLS:-1}
WORKLOAD=$(dirname "$0")/../tools/mh_workload.py


# tree H: what host H sees (names, sizes, link counts), sorted.
tree() {
	(cd "$(mp_of "$1")" && find . -path ./lost+found -prune -o -printf '%p %s %n\n' | sort)
}

# check_state H FILE: host H's files and xattrs, as its log says, on A.
check_state() {
	python3 - "$(mp_of A)" "$2" "$1" <<'EOF' || fail "host $1's files are not what its log says"
import json, os, sys
mnt, state, host = sys.argv[1:4]
st = json.load(open(state))
bad = 0
for rel, data in st["files"].items():
    try:
        got = open(os.path.join(mnt, rel)).read()
    except OSError as e:
        print("%s: %s: %s" % (host, rel, e)); bad += 1; continue
    if got != data:
        print("%s: %s holds %r..., its log %r..." % (host, rel, got[:40], data[:40])); bad += 1
for rel, val in st["xattrs"].items():
    try:
        got = os.getxattr(os.path.join(mnt, rel), "user.mh").decode()
    except OSError as e:
        print("%s: xattr of %s: %s" % (host, rel, e)); bad += 1; continue
    if got != val:
        print("%s: xattr of %s is %s, its log %s" % (host, rel, got, val)); bad += 1
# Nothing of ours that the log does not know.
for d in (host, "shared"):
    for name in os.listdir(os.path.join(mnt, d)):
        rel = d + "/" + name
        if name.startswith(host + "-") and rel not in st["files"]:
            print("%s: %s exists, its log removed it" % (host, rel)); bad += 1
sys.exit(1 if bad else 0)
EOF
}

# check_fsynced FILE: every "rel<TAB>hex" line of FILE holds on A.
check_fsynced() {
	python3 - "$(mp_of A)" "$1" <<'EOF' || fail "a file the dead host fsync'ed is not intact"
import os, sys
mnt, log = sys.argv[1:3]
n = bad = 0
for line in open(log):
    rel, hexdata = line.rstrip("\n").split("\t")
    n += 1
    try:
        got = open(os.path.join(mnt, rel), "rb").read()
    except OSError as e:
        print("%s: %s" % (rel, e)); bad += 1; continue
    if got != bytes.fromhex(hexdata):
        print("%s: %d bytes, %d fsync'ed" % (rel, len(got), len(hexdata) // 2)); bad += 1
print("%d fsync'ed files of the dead host checked, %d bad" % (n, bad))
sys.exit(1 if bad else 0)
EOF
}

round() {
	local prim=$1 h k pids=() t0 t1 cpid before n
	step "[$prim] mkfs; A, B and C mount"
	for h in "${HOSTS[@]}"; do
		rm -rf "$(state_of "$h")"
	done
	make_lun "$LUN" 2G
	t_mkfs "$LUN" --max-hosts 8 --journal-size 4M
	for h in "${HOSTS[@]}"; do
		hmount "$h" --lock-primitive "$prim"
	done

	step "[$prim] a ${SECS} s metadata storm from three hosts"
	for h in "${HOSTS[@]}"; do
		python3 "$WORKLOAD" "$(mp_of "$h")" "$h" "$SECS" "$RANDOM" \
			"$T_DIR/state-$h.json" &
		pids+=($!)
	done
	for k in "${pids[@]}"; do
		wait "$k" || fail "[$prim] a host's workload failed"
	done
	step "[$prim] every host sees the same tree; every file is what its writer wrote"
	tree A >"$T_DIR/tree-A"
	for h in B C; do
		tree "$h" >"$T_DIR/tree-$h"
		cmp -s "$T_DIR/tree-A" "$T_DIR/tree-$h" ||
			fail "host $h sees another tree than A: $(diff "$T_DIR/tree-A" "$T_DIR/tree-$h" | head)"
	done
	for h in "${HOSTS[@]}"; do
		check_state "$h" "$T_DIR/state-$h.json"
	done

	for ((k = 1; k <= KILLS; k++)); do
		step "[$prim] kill $k/$KILLS: C dies in the middle of a storm"
		pids=()
		for h in A B; do
			python3 "$WORKLOAD" "$(mp_of "$h")" "$h-k$k" 25 "$RANDOM" \
				"$T_DIR/state-$h-k$k.json" &
			pids+=($!)
		done
		: >"$T_DIR/fsynced-$k"
		python3 "$WORKLOAD" "$(mp_of C)" "C-k$k" 600 "$RANDOM" \
			"$T_DIR/fsynced-$k" --fsync-only 2>/dev/null &
		cpid=$!
		sleep 5
		before=$(cat "$(log_of A)" "$(log_of B)" | grep -c "recovered host C" || true)
		t0=$(date +%s%N)
		t_kill_vmfsd_only "$(vmfsd_pid_of "$(cd "$(mp_of C)" && pwd -P)")"
		wait "$cpid" 2>/dev/null || true
		fusermount3 -u -z "$(mp_of C)" 2>/dev/null || umount -l "$(mp_of C)" 2>/dev/null
		# The survivors go on working meanwhile.
		until [[ $(cat "$(log_of A)" "$(log_of B)" | grep -c "recovered host C" || true) -gt $before ]]; do
			(( ($(date +%s%N) - t0) / 1000000000 < 60 )) ||
				fail "nobody recovered C within 60 s"
			sleep 0.2
		done
		t1=$(date +%s%N)
		for h in "${pids[@]}"; do
			wait "$h" || fail "[$prim] a survivor's workload failed after C died"
		done
		n=$(cat "$(log_of A)" "$(log_of B)" | grep -c "recovered host C" || true)
		[[ $((n - before)) == 1 ]] || fail "$((n - before)) survivors recovered C"
		t_log "[$prim] kill $k: C recovered $(( (t1 - t0) / 1000000 )) ms after the kill"
		check_state "A-k$k" "$T_DIR/state-A-k$k.json"
		check_state "B-k$k" "$T_DIR/state-B-k$k.json"
		check_fsynced "$T_DIR/fsynced-$k"
		# Room for the next round (the volume holds a few thousand
		# small files, and each round leaves about as many): the
		# round's files go, from a survivor, once checked.
		rm -rf "$(mp_of A)/A-k$k" "$(mp_of A)/B-k$k" "$(mp_of A)/C-k$k" ||
			fail "removing round $k's directories"
		find "$(mp_of A)/shared" -maxdepth 1 -name "[ABC]-k$k-*" -delete ||
			fail "removing round $k's files in shared/"
		hmount C --lock-primitive "$prim"
	done

	step "[$prim] unmount all; fsck -n is clean"
	for h in "${HOSTS[@]}"; do
		"$VMFS" umount --state-dir "$(state_of "$h")" "$(mp_of "$h")" ||
			fail "host $h: vmfs umount failed"
	done
	"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
		fail "fsck -n after the $prim storm: $(cat "$T_DIR/fsck.out")"
	t_log "[$prim] $(tail -n 1 "$T_DIR/fsck.out")"
	# Resource clusters were taken in the order of PROTOCOL §3.
	for h in "${HOSTS[@]}"; do
		! grep "out of lock order" "$(log_of "$h")" ||
			fail "host $h took resource clusters out of order"
	done
}

round ats
round reserve
echo "t_multihost_storm: ok"
