#!/usr/bin/env bash
#
# bench/iscsi.sh: the data path over iSCSI (tgtd in a namespace, tests/
# iscsi/lib.sh) through a vmfs mount, against the same LUN read directly
# by a reference userspace initiator (libiscsi-bin's iscsi-perf) in the
# same run.
#
#   1. 1 MiB sequential reads: iscsi-perf (8 in flight) on the raw LUN;
#      fio on a 256 MiB file through the mount (O_DIRECT, iodepth 8).
#   2. 4 KiB random reads: the same, 32 in flight.
#   3. 1 MiB sequential and 4 KiB random writes through the mount,
#      against build/bench/iscsiwrite on the raw LUN (before mkfs: it
#      overwrites it): WRITE(16) through libiscsi, one session, the same
#      commands in flight, as iscsi-perf reads.  iscsi-perf only reads and
#      Debian's fio has no libiscsi engine, so the write reference is that
#      small libiscsi loop: the target and the initiator library with
#      nothing above them.
#   4. Lock cost (build/bench/lockcost): an uncontended change and a
#      handover on the reserve path through the lock LU, against
#      compare-and-write on a LUN file in the same run.
#   5. Recovery of a dead host: kill -9 of host 1 (two hosts mounted, lease
#      LEASE_MS) to host 2's log saying it recovered it, ROUNDS times, on
#      the iSCSI LUN (the target fences: the dead host's key is preempted
#      and it is recovered once its slot stood still for its fence time)
#      and on a LUN file (no fencing: after the whole dead time).
#
# Prints figures; asserts nothing.  VMFS_BIN (default <repo>/bin),
# VMFS_BUILD (default <repo>/build), SECS (10 per figure), LEASE_MS
# (10000), ROUNDS (3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export VMFS_BIN=${VMFS_BIN:-$here/../bin}
export VMFS_BUILD=${VMFS_BUILD:-$here/../build}
SECS=${SECS:-10}
LEASE_MS=${LEASE_MS:-10000}
ROUNDS=${ROUNDS:-3}
# shellcheck source=tests/iscsi/lib.sh
source "$here/../tests/iscsi/lib.sh"
set +e

is_up 2 2G
URL=$(is_url "$IS_PORTAL_A")
RAW=${URL%%\?*}

# Before mkfs: lockcost writes lock records in the LUN's first MiB.
echo "lock cost on the iSCSI LUN (reserve path, lock LU):"
cl_exec 1 "$VMFS_BUILD/bench/lockcost" --lun "$URL" | sed 's/^/  /'
echo "lock cost on a LUN file (same run):"
"$VMFS_BUILD/bench/lockcost" "$T_DIR" | sed 's/^/  /'

# figures: "IOPS MB/s" from the last "iops average N (M MB/s)" line read
figures() {
	grep -o "iops average [0-9]* ([0-9]* MB/s)" | tail -1 |
		awk '{ gsub("\\(", "", $4); print $3, $4 }'
}

# wperf BLOCKS_PER_REQ INFLIGHT [-r]: "IOPS MB/s" of raw WRITE(16)s
wperf() {
	cl_exec 1 timeout $((SECS + 10)) "$VMFS_BUILD/bench/iscsiwrite" "$RAW" "$1" "$2" "$SECS" "${@:3}" 2>&1 | figures
}
read -r w_seq_iops w_seq_mbs < <(wperf 2048 8)
read -r w_rand_iops w_rand_mbs < <(wperf 8 32 -r)
[[ -n $w_seq_mbs && -n $w_rand_iops ]] || fail "iscsiwrite gave no figures"
cl_vmfs 1 mkfs --max-hosts 4 --journal-size 4M "$URL" >/dev/null || fail "mkfs failed"
cl_vmfsd_mount 1 "$URL" "$T_DIR/m"
F=$T_DIR/m/bench.img
cl_vmfs 1 disk create --size 256M --type eagerzeroedthick "$F" >/dev/null ||
	fail "disk create failed"

# perf BLOCKS_PER_REQ INFLIGHT [-r]: MB/s and IOPS of iscsi-perf
perf() {
	local opt=("${@:3}")
	cl_exec 1 timeout $((SECS + 5)) iscsi-perf -b "$1" -m "$2" -t "$SECS" "${opt[@]}" "$RAW" 2>&1 |
		tr '\r' '\n' | figures
}

# fiorun RW BS DEPTH: "IOPS MB/s" of fio on $F through the mount
fiorun() {
	fio --name=b --filename="$F" --rw="$1" --bs="$2" --iodepth="$3" \
		--ioengine=libaio --direct=1 --size=256M --time_based \
		--runtime="$SECS" --output-format=json 2>/dev/null |
		python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
k = "read" if j["read"]["io_bytes"] else "write"
print(int(j[k]["iops"]), int(j[k]["bw"] / 1024))'
}

read -r p_iops p_mbs < <(perf 2048 8)
read -r f_iops f_mbs < <(fiorun read 1M 8)
printf '1 MiB sequential read:  iscsi-perf %s MB/s, vmfs mount %s MB/s (%.2fx)\n' \
	"$p_mbs" "$f_mbs" "$(echo "$f_mbs / $p_mbs" | bc -l)"
read -r p_iops p_mbs < <(perf 8 32 -r)
read -r f_iops f_mbs < <(fiorun randread 4k 32)
printf '4 KiB random read:      iscsi-perf %s IOPS, vmfs mount %s IOPS (%.2fx)\n' \
	"$p_iops" "$f_iops" "$(echo "$f_iops / $p_iops" | bc -l)"
read -r f_iops f_mbs < <(fiorun write 1M 8)
printf '1 MiB sequential write: iscsiwrite %s MB/s, vmfs mount %s MB/s (%.2fx)\n' \
	"$w_seq_mbs" "$f_mbs" "$(echo "$f_mbs / $w_seq_mbs" | bc -l)"
read -r f_iops f_mbs < <(fiorun randwrite 4k 32)
printf '4 KiB random write:     iscsiwrite %s IOPS, vmfs mount %s IOPS (%.2fx)\n' \
	"$w_rand_iops" "$f_iops" "$(echo "$f_iops / $w_rand_iops" | bc -l)"
cl_umount 1 "$T_DIR/m"

# recovery NAME LUN_H1 LUN_H2: kill -9 of host 1 to host 2 logging that it
# recovered it, ROUNDS times; the times in REC_TIMES (not a subshell: the
# mounts must stay known to the cleanup).
recovery() {
	local name=$1 l1=$2 l2=$3 round t0 n ms times=()
	cl_vmfs 1 mkfs --force --max-hosts 4 --journal-size 4M "$l1" >/dev/null 2>&1 || fail "mkfs failed"
	cl_vmfsd_mount 2 "$l2" "$T_DIR/r2-$name" --lease-ms "$LEASE_MS"
	for ((round = 1; round <= ROUNDS; round++)); do
		cl_vmfsd_mount 1 "$l1" "$T_DIR/r1-$name" --lease-ms "$LEASE_MS"
		echo x >"$T_DIR/r1-$name/f$round"
		sleep 1
		t0=$(date +%s%N)
		cl_kill_host 1
		while :; do
			n=$(grep -c "recovered host h1" "$T_DIR/vmfsd-h2-r2-$name.log" || true)
			((n >= round)) && break
			(( ($(date +%s%N) - t0) / 1000000 > 4 * LEASE_MS )) && fail "$name: no recovery"
			sleep 0.05
		done
		ms=$((($(date +%s%N) - t0) / 1000000))
		times+=("$ms")
	done
	cl_umount 2 "$T_DIR/r2-$name"
	REC_TIMES="${times[*]}"
}

printf 'recovery of a dead host, lease %d ms, %d rounds (kill -9 to recovered):\n' "$LEASE_MS" "$ROUNDS"
recovery iscsi "$URL" "$(is_url "$IS_PORTAL_B")"
printf '  iSCSI, the target fences (PR): %s ms\n' "$REC_TIMES"
truncate -s 2G "$T_DIR/lun"
recovery file "$T_DIR/lun" "$T_DIR/lun"
printf '  LUN file, no fencing:          %s ms\n' "$REC_TIMES"
