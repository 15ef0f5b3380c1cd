#!/usr/bin/env bash
#
# bench/cluster.sh: several hosts (vmfsd with their own state
# directories) on one LUN file on this machine.
#
#   1. metadata ops/s (create, stat, unlink of empty files, timed in a
#      python3 loop for SECS seconds per phase): one host alone; three
#      hosts each in its own directory (the total); three hosts in one
#      shared directory (the total and the slowest host, so a livelock
#      shows); both again with --disk-asks off (no lock kept between
#      operations: the protocol of PROTOCOL.md section 3);
#   2. lock costs: the time of an open + close of a file while shared
#      (one acquire and one release of its lock, a compare-and-write each)
#      and the time from kill -9 of a host holding a file open to a
#      survivor opening it for writing;
#   3. many hosts: NHOSTS (default 32) mount at once and stay up for
#      HOLD seconds with a light workload each (one file created and
#      removed per second); reports the time to mount all, the heartbeat
#      I/O per second (renewals, and the watchers' slot reads), and how
#      many hosts fenced themselves (must be 0).
#
# Prints figures; asserts nothing.  Baselines in the same run: phase 1's
# one-host figure is the baseline of the shared figures.
#
#   VMFS_BIN (default <repo>/bin), BENCH_DIR (default /tmp), SECS (10),
#   NHOSTS (32), HOLD (60)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${VMFS_BIN:-$here/../bin}
vmfs=$bin/vmfs
SECS=${SECS:-10}
NHOSTS=${NHOSTS:-32}
HOLD=${HOLD:-60}
dir=$(mktemp -d "${BENCH_DIR:-/tmp}/vmfs-bench-cluster.XXXXXX")
lun=$dir/lun
mounted=()

cleanup() {
	set +e
	for mp in "${mounted[@]}"; do
		"$vmfs" umount "$mp" >/dev/null 2>&1 || fusermount3 -u -z "$mp" 2>/dev/null
	done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hmount() { # NAME [vmfs mount options...]
	local h=$1
	shift
	mkdir -p "$dir/mnt-$h" "$dir/state-$h"
	"$vmfs" mount --state-dir "$dir/state-$h" --host-name "$h" \
		--log-file "$dir/vmfsd-$h.log" "$@" "$lun" "$dir/mnt-$h"
	mounted+=("$dir/mnt-$h")
}
humount() {
	"$vmfs" umount "$dir/mnt-$1"
}

# ops MP SUBDIR SECS TAG: create/stat/unlink loop; prints "TAG ops/s"
ops() {
	python3 - "$1/$2" "$3" "$4" <<'EOF'
import os, sys, time
d, secs, tag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
os.makedirs(d, exist_ok=True)
n = 0
end = time.time() + secs
t0 = time.time()
while time.time() < end:
    p = "%s/%s-%d" % (d, tag, n)
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.stat(p)
    os.unlink(p)
    n += 3
print("%s %.0f" % (tag, n / (time.time() - t0)))
EOF
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), LUN file on $(df --output=source,fstype "${BENCH_DIR:-/tmp}" | tail -n 1)"
truncate -s 8G "$lun"
"$vmfs" mkfs --max-hosts 64 --journal-size 4M "$lun" >/dev/null

echo "== 1. metadata ops/s (create + stat + unlink), $SECS s per phase"
hmount A
alone=$(ops "$dir/mnt-A" alone "$SECS" A | awk '{print $2}')
echo "one host alone:                     $alone ops/s"
# settle TAG: after the mounts, each host's directories made, then 8 s:
# every host's HA agent walks the datastore once after its mount (which
# asks for what the others keep), and a lock asked for on the disk is let
# go after each operation for 5 s (PROTOCOL.md section 9a).  The phases
# measure the steady state after that.
settle() {
	for h in A B C; do
		mkdir -p "$dir/mnt-$h/own-$h$1"
	done
	mkdir -p "$dir/mnt-A/shared$1"
	sleep 8
}
hmount B
hmount C
settle ""
# shared_phases WHAT: three hosts in their own directories, then in one.
shared_phases() {
	local own shr shr_total shr_min shr_rest
	for h in A B C; do ops "$dir/mnt-$h" "own-$h$1" "$SECS" "$h" >"$dir/ops-$h" & done
	wait
	own=$(cat "$dir"/ops-[ABC] | awk '{t += $2; s = s " " $1 "=" $2} END {print t, s}')
	echo "three hosts, each in its own dir$2: ${own%% *} ops/s total (${own#* }), $(python3 -c "print('%.2f' % (${own%% *} / $alone))") x one host"
	for h in A B C; do ops "$dir/mnt-$h" "shared$1" "$SECS" "$h" >"$dir/ops-$h" & done
	wait
	shr=$(cat "$dir"/ops-[ABC] | awk '{t += $2; s = s " " $1 "=" $2; if (min == "" || $2 < min) min = $2} END {print t, min, s}')
	read -r shr_total shr_min shr_rest <<<"$shr"
	echo "three hosts, one shared dir$2:      $shr_total ops/s total (slowest host $shr_min;$shr_rest), $(python3 -c "print('%.2f' % ($shr_total / $alone))") x one host"
}
shared_phases "" ""
# The disk-only protocol without asks (PROTOCOL.md §3): every operation
# lets go of its locks at its end.
for h in A B C; do humount "$h"; done
mounted=()
for h in A B C; do hmount "$h" --disk-asks off; done
settle -off
shared_phases "-off" ", --disk-asks off"

echo "== 2. lock costs"
t0=$(date +%s%N)
python3 - "$dir/mnt-A/costs" <<'EOF'
import os, sys, time
os.makedirs(sys.argv[1], exist_ok=True)
paths = ["%s/f%d" % (sys.argv[1], i) for i in range(50)]
for p in paths:
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
t0 = time.perf_counter_ns()
for p in paths:
    os.close(os.open(p, os.O_WRONLY))   # open lock: acquire + release
t1 = time.perf_counter_ns()
print("open + close of a file (one acquire and one release of its lock, shared): %.2f ms" % ((t1 - t0) / 50 / 1e6))
EOF
python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x"); os.fsync(fd)
open(sys.argv[2], "w").close()
time.sleep(600)' "$dir/mnt-C/vmdisk" "$dir/ready" &
holder=$!
until [[ -e $dir/ready ]]; do sleep 0.1; done
cpid=
for d in /proc/[0-9]*; do
	[[ $(readlink "$d/exe" 2>/dev/null) == */vmfsd ]] || continue
	tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -qxF -- "$dir/mnt-C" && cpid=${d#/proc/}
done
t0=$(date +%s%N)
kill -9 "$cpid"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
fusermount3 -u -z "$dir/mnt-C" 2>/dev/null || true
rm -f "/dev/shm/qb-vmfsd-$cpid-"*
until (exec 9>>"$dir/mnt-A/vmdisk") 2>/dev/null; do sleep 0.05; done
echo "kill -9 of a host holding a file open -> a survivor opens it for writing: $(( ($(date +%s%N) - t0) / 1000000 )) ms (lease 10 s: aim lease + 2 s)"
mounted=("${mounted[@]/$dir\/mnt-C}")
humount A
humount B
mounted=()

echo "== 3. $NHOSTS hosts at once for $HOLD s"
t0=$(date +%s%N)
for ((i = 0; i < NHOSTS; i++)); do
	hmount "h$i" &
done
wait
for ((i = 0; i < NHOSTS; i++)); do
	mounted+=("$dir/mnt-h$i")
done
echo "mount of $NHOSTS hosts (in parallel): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
for ((i = 0; i < NHOSTS; i++)); do
	python3 -c '
import os, sys, time
end = time.time() + float(sys.argv[2])
n = 0
while time.time() < end:
    p = "%s/light-%s-%d" % (sys.argv[1], sys.argv[3], n)
    with open(p, "w") as f:
        f.write("x")
    os.unlink(p)
    n += 1
    time.sleep(1)' "$dir/mnt-h$i" "$HOLD" "h$i" &
done
wait
fenced=$(cat "$dir"/vmfsd-h*.log | grep -c "fenced" || true)
echo "heartbeat I/O: $NHOSTS renewals every 2 s = $(( NHOSTS / 2 )) compare-and-writes/s, plus each host's watcher reading all 64 slots every 0.5 s = $(( NHOSTS * 2 )) reads of 256 KiB/s (its HA agent takes those reads)"
echo "log lines about fencing during $HOLD s, all $NHOSTS hosts: $fenced"
t0=$(date +%s%N)
for ((i = 0; i < NHOSTS; i++)); do
	humount "h$i" &
done
wait
mounted=()
echo "unmount of $NHOSTS hosts: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
"$vmfs" fsck -n "$lun" | tail -n 1
