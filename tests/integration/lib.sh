# shellcheck shell=bash
#
# Helpers for the integration scripts: source it first thing.
#
#   VMFS_BIN     directory holding vmfs and vmfsd (default: <repo>/bin)
#   VMFS_BUILD   directory holding the test programs, crashsim and
#                vmfs-corrupt (default: <repo>/build)
#   VMFS_KEEP=1  keep the scratch directory (LUNs, logs) after the script
#
# Every script gets a scratch directory under /tmp (T_DIR), a private
# host state directory (T_STATE) so it never touches /var/lib/vmfs nor
# another script's mounts, and an EXIT trap that unmounts what the script
# mounted and kills only the vmfsd processes it started, by PID.
#
# Exit status 77 means "skipped" (no FUSE here); tests/run.sh counts it.

set -Eeuo pipefail

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VMFS_BIN=${VMFS_BIN:-$T_ROOT/bin}
case $VMFS_BIN in /*) ;; *) VMFS_BIN=$PWD/$VMFS_BIN ;; esac
VMFS=$VMFS_BIN/vmfs
VMFSD=$VMFS_BIN/vmfsd
VMFSD_REAL=$(readlink -f "$VMFSD" 2>/dev/null || echo "$VMFSD")
VMFS_BUILD=${VMFS_BUILD:-$T_ROOT/build}
case $VMFS_BUILD in /*) ;; *) VMFS_BUILD=$PWD/$VMFS_BUILD ;; esac
# The corruption tool (tools/corrupt/): a test program, not in VMFS_BIN.
VMFS_CORRUPT=$VMFS_BUILD/vmfs-corrupt
T_NAME=$(basename "$0" .sh)
T_SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
T_DIR=$(mktemp -d "/tmp/vmfs-$T_NAME.XXXXXX")
T_STATE=$T_DIR/state
T_MOUNTS=()
T_PIDS=()
T_EXTRA_DIRS=()   # scratch outside T_DIR (e.g. on /dev/shm), removed with it
T_STEP="setup"

t_log() {
	echo "[$T_NAME] $*" >&2
}

# Name what the script is doing so a failure says where it was.
step() {
	T_STEP=$*
	t_log "--- $*"
}

# Show the end of every vmfsd log: engine messages explain most failures.
t_dump_logs() {
	local f
	for f in "$T_DIR"/vmfsd-*.log; do
		[[ -e $f ]] || continue
		echo "----- last lines of $f -----" >&2
		tail -n 25 "$f" >&2 || true
	done
}

fail() {
	echo "FAIL [$T_NAME] step '$T_STEP' (line ${BASH_LINENO[0]}): $*" >&2
	t_dump_logs
	echo "rerun alone: VMFS_BIN=$VMFS_BIN VMFS_KEEP=1 $T_SCRIPT" >&2
	exit 1
}

skip() {
	t_log "SKIP: $*"
	exit 77
}

# An unexpected command failure (set -e) gets the same context as fail().
t_on_err() {
	local rc=$? line=$1 cmd=$2
	echo "FAIL [$T_NAME] step '$T_STEP' (line $line): command failed" \
		"with status $rc: $cmd" >&2
	t_dump_logs
	echo "rerun alone: VMFS_BIN=$VMFS_BIN VMFS_KEEP=1 $T_SCRIPT" >&2
}
trap 't_on_err "$LINENO" "$BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# Alive and not a zombie: a daemon that exited is dead even before its
# parent (init or a subreaper) reaps it.
t_pid_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ -n $stat && ${stat:0:1} != Z ]]
}

# libqb's blackbox ring lives in /dev/shm; a daemon that was killed
# (not unmounted) leaves it behind.  Remove those of dead PIDs.
t_shm_cleanup() {
	local pid
	for pid in "$@"; do
		t_pid_alive "$pid" && continue
		rm -f /dev/shm/qb-vmfsd-"$pid"-* 2>/dev/null
	done
}

t_cleanup() {
	local rc=$? mp pid i
	trap - ERR
	set +e
	cd / || true
	for mp in "${T_MOUNTS[@]}"; do
		if mountpoint -q "$mp" 2>/dev/null || grep -qs " $mp fuse" /proc/self/mounts; then
			"$VMFS" umount --state-dir "$T_STATE" "$mp" >/dev/null 2>&1 ||
				umount -l "$mp" 2>/dev/null
		fi
	done
	for pid in "${T_PIDS[@]}"; do
		t_pid_alive "$pid" || continue
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			t_pid_alive "$pid" || break
			sleep 0.1
		done
		t_pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	t_shm_cleanup "${T_PIDS[@]}"
	if [[ ${VMFS_KEEP:-0} == 1 ]]; then
		t_log "kept $T_DIR ${T_EXTRA_DIRS[*]}"
	else
		rm -rf "$T_DIR" "${T_EXTRA_DIRS[@]}"
	fi
	exit "$rc"
}
trap t_cleanup EXIT

[[ -x $VMFS && -x $VMFSD ]] ||
	fail "no $VMFS or $VMFSD: build with 'make' or set VMFS_BIN"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
mkdir -p "$T_STATE"

# t_need_guest: skip without QEMU or the test guest (make guest); GUEST is
# the directory holding its vmlinuz and initrd.img.
t_need_guest() {
	GUEST=$VMFS_BUILD/guest
	command -v qemu-system-x86_64 >/dev/null ||
		skip "no qemu-system-x86_64 (make deps)"
	[[ -r $GUEST/vmlinuz && -r $GUEST/initrd.img ]] ||
		skip "no test guest in $GUEST (make guest)"
}

# t_guest_counter FILE: the test guest's counter on its disk FILE (the
# line "vmfs-guest-counter N" at offset 0, read with O_DIRECT); nothing
# when it cannot be read (e.g. the disk is locked by another host).
t_guest_counter() {
	{ dd if="$1" bs=512 count=1 iflag=direct 2>/dev/null | head -c 64 |
		tr -d '\0' | sed -n 's/^vmfs-guest-counter \([0-9]*\)$/\1/p' |
		head -1; } || true
}

# t_wait_counter FILE ABOVE [SECS]: until the guest's counter on FILE
# exceeds ABOVE (within SECS, default 120): prints it, or fails with the
# end of the VM's console.
t_wait_counter() {
	local i c="" n=$((${3:-120} * 10))
	for ((i = 0; i < n; i++)); do
		c=$(t_guest_counter "$1")
		[[ -n $c && $c -gt $2 ]] && { echo "$c"; return 0; }
		sleep 0.1
	done
	fail "the guest's counter in $1 stayed at '${c:-none}' (want > $2); console: $(tail -n 5 "$(dirname "$1")/console.log" 2>/dev/null); its QEMUs: $(t_qemu_threads "$(dirname "$1")")"
}

# t_wait_grep SECONDS PATTERN FILE...: wait until a line of one of the
# files matches PATTERN (grep's basic syntax); 1 if none did in time.
t_wait_grep() {
	local secs=$1 pat=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		grep -qh -- "$pat" "$@" 2>/dev/null && return 0
		sleep 0.1
	done
	grep -qh -- "$pat" "$@" 2>/dev/null
}

# t_stop PID: SIGSTOP PID and wait up to 5 s until every one of its
# threads has stopped.  A stop sent to a process reaches its threads one
# at a time (the first to take the signal stops the others, and one in
# the kernel stops only on its way out), so the others run on for a
# moment after kill returns: long enough to take up a request queued
# right after it.
t_stop() {
	local t w all
	kill -STOP "$1" || return 1
	for ((w = 0; w < 100; w++)); do
		all=1
		for t in /proc/"$1"/task/*/stat; do
			[[ $(sed 's/.*) //' "$t" 2>/dev/null | cut -d' ' -f1) == T ]] ||
				{ all=0; break; }
		done
		((all)) && return 0
		sleep 0.05
	done
	return 1
}

# t_threads PID: what each thread of PID waits in (its name and kernel
# wait channel), on one line; or that it is gone, with what the kernel
# logged about it (a crash: "segfault at ...").
t_threads() {
	local t
	if [[ ! -d /proc/$1/task ]]; then
		printf 'pid %s is gone; kernel: %s' "$1" \
			"$({ dmesg 2>/dev/null | grep -a "\[$1\]" || true; } | tail -n 2 | tr '\n' ' ')"
		return 0
	fi
	for t in /proc/"$1"/task/*; do
		printf '%s(%s):%s ' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" \
			"$(cat "$t/wchan" 2>/dev/null)"
	done
}

# t_hb_warnings LOG [N]: the last N (20) heartbeat warnings in a vmfsd log
# (failed or slow renewals, the renewal watchdog), with the vmfsd frames
# of a renewal thread stack named by addr2line.
t_hb_warnings() {
	local line frame off fn
	{ grep -E '(warning|crit): .*hb: slot' "$1" || true; } | tail -n "${2:-20}" |
	while IFS= read -r line; do
		if [[ $line == *"renewal thread stack"* ]]; then
			for frame in $(grep -oE 'vmfsd\(\+0x[0-9a-f]+\)' <<<"$line"); do
				off=${frame#vmfsd(+}
				off=${off%)}
				fn=$(addr2line -f -e "$VMFSD" "$off" 2>/dev/null | head -n 1)
				line=${line/"$frame"/"vmfsd:${fn:-?}"}
			done
		fi
		printf '%s\n' "$line"
	done
}

# t_qmp_status PID: QEMU PID's run state and migration status, asked on
# its QMP socket (the -qmp unix:PATH of its command line).
t_qmp_status() {
	local sock
	sock=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null |
		sed -n 's/^unix:\([^,]*\.qmp\),server.*/\1/p' | head -n 1)
	[[ -S $sock ]] || { echo "no QMP socket"; return 0; }
	python3 - "$sock" <<'EOF' 2>&1 || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
out = []
for c in ("qmp_capabilities", "query-status", "query-migrate"):
    f.write(json.dumps({"execute": c}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            break
    if c != "qmp_capabilities":
        out.append("%s %s" % (c, json.dumps(r.get("return", r.get("error")))[:300]))
print("; ".join(out))
EOF
}

# t_qemu_threads DIR: the QEMUs running the VM in DIR, with what each of
# their threads waits in (a guest stuck on a FUSE call, or paused) and
# their run state by QMP; then where the threads of the vmfsd serving
# the mount that holds DIR wait (a FUSE request stuck there).
t_qemu_threads() {
	local p d=$1
	for p in $(pgrep -f "qemu-system.*$1" || true); do
		echo "pid $p: $(t_threads "$p"); QMP: $(t_qmp_status "$p")"
	done
	while [[ $d != / && $d != . ]] && ! mountpoint -q "$d" 2>/dev/null; do
		d=$(dirname "$d")
	done
	p=$(vmfsd_pid_of "$d" 2>/dev/null) &&
		echo "vmfsd of $d (pid $p): $(t_threads "$p")"
	return 0
}

# make_lun PATH SIZE: a sparse LUN file.
make_lun() {
	rm -f "$1"
	truncate -s "$2" "$1"
}

# The vmfsd serving mount point $1: found by its command line, so it does
# not depend on the daemon's own state DB being right.
vmfsd_pid_of() {
	local mp=$1 d
	for d in /proc/[0-9]*; do
		[[ $(readlink "$d/exe" 2>/dev/null) == "$VMFSD_REAL" ]] || continue
		if tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -qxF -- "$mp"; then
			echo "${d#/proc/}"
			return 0
		fi
	done
	return 1
}

# t_mount LUN MP [vmfs mount options...]: mount with the private state dir
# and a log per mount point; remembers the mount and its vmfsd for cleanup.
# T_MOUNT_WRAP (an array, empty by default) goes before the command, e.g.
# (prlimit --as=N --) to start vmfsd under a limit.
T_MOUNT_WRAP=()
t_mount() {
	local lun=$1 mp=$2 pid
	shift 2
	mkdir -p "$mp"
	mp=$(cd "$mp" && pwd -P)
	T_MOUNTS+=("$mp")
	"${T_MOUNT_WRAP[@]}" "$VMFS" mount --state-dir "$T_STATE" \
		--log-file "$T_DIR/vmfsd-$(basename "$mp").log" "$@" "$lun" "$mp" ||
		fail "vmfs mount $lun $mp failed"
	mountpoint -q "$mp" || fail "vmfs mount returned 0 but $mp is not mounted"
	pid=$(vmfsd_pid_of "$mp") || fail "no vmfsd process serves $mp"
	T_PIDS+=("$pid")
}

# t_umount MP: unmount and check that the daemon has gone.
t_umount() {
	local mp pid
	mp=$(cd "$1" && pwd -P)
	pid=$(vmfsd_pid_of "$mp") || pid=
	"$VMFS" umount --state-dir "$T_STATE" "$mp" || fail "vmfs umount $mp failed"
	if mountpoint -q "$mp"; then
		fail "$mp still mounted after vmfs umount"
	fi
	if [[ -n $pid ]] && t_pid_alive "$pid"; then
		fail "vmfsd $pid still running after vmfs umount $mp returned"
	fi
}

# t_kill_vmfsd_only PID: SIGKILL the vmfsd, wait for it to go (fail after
# 5 s), remove its /dev/shm ring; its FUSE mount stays, dead.
t_kill_vmfsd_only() {
	local pid=$1 w
	kill -KILL "$pid"
	for ((w = 0; w < 100; w++)); do
		t_pid_alive "$pid" || break
		sleep 0.05
	done
	t_pid_alive "$pid" && fail "vmfsd $pid survived SIGKILL for 5 s"
	t_shm_cleanup "$pid"
}

# t_kill_vmfsd PID MOUNTPOINT: a host crash: t_kill_vmfsd_only, then drop
# the dead FUSE mount.
t_kill_vmfsd() {
	t_kill_vmfsd_only "$1"
	fusermount3 -u -z "$2" 2>/dev/null || umount -l "$2" 2>/dev/null || true
}

# t_mkfs LUN [options...]
t_mkfs() {
	local lun=$1
	shift
	"$VMFS" mkfs "$@" "$lun" >"$T_DIR/mkfs.out" ||
		fail "vmfs mkfs $* $lun failed: $(cat "$T_DIR/mkfs.out")"
}

# t_info_rows LUN ARRAY FIELD...: one line per element of the ARRAY of
# `vmfs info --json LUN` ("hosts", "journals"), the fields asked for.
t_info_rows() {
	local lun=$1 arr=$2
	shift 2
	"$VMFS" info --json "$lun" | python3 -c '
import json, sys
for e in json.load(sys.stdin)[sys.argv[1]]:
    print(" ".join(str(e[f]) for f in sys.argv[2:]))' "$arr" "$@"
}

# expect_fail STATUS PATTERN CMD...: CMD must exit with STATUS and print
# something matching the (extended, case-insensitive) PATTERN on stderr.
expect_fail() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$T_DIR/out" 2>"$T_DIR/err" || rc=$?
	if [[ $rc != "$want" ]]; then
		fail "'$*' exited $rc, expected $want; stderr: $(cat "$T_DIR/err")"
	fi
	if ! grep -qiE -- "$pat" "$T_DIR/err"; then
		fail "'$*' stderr lacks /$pat/: $(cat "$T_DIR/err")"
	fi
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[[ $2 == "$3" ]] || fail "$1: got '$2', expected '$3'"
}

# Bytes allocated to a file.
alloc_bytes() {
	echo $(($(stat -c %b "$1") * 512))
}

# ---- several hosts on one LUN (t_multihost*.sh) ----------------------
# Host H has its own state directory, mount point and vmfsd log under
# $T_DIR; the LUN is $LUN.
mp_of() { echo "$T_DIR/mnt-$1"; }
state_of() { echo "$T_DIR/state-$1"; }
log_of() { echo "$T_DIR/vmfsd-mnt-$1.log"; }

# hmount H [options...]: host H mounts $LUN under the name H.
hmount() {
	local h=$1 mp pid
	shift
	mp=$(mp_of "$h")
	mkdir -p "$mp" "$(state_of "$h")"
	mp=$(cd "$mp" && pwd -P)
	T_MOUNTS+=("$mp")
	"$VMFS" mount --state-dir "$(state_of "$h")" --host-name "$h" \
		--log-file "$(log_of "$h")" "$@" "$LUN" "$mp" ||
		fail "host $h: vmfs mount failed: $(tail -n 3 "$(log_of "$h")")"
	pid=$(vmfsd_pid_of "$mp") || fail "no vmfsd serves $mp"
	T_PIDS+=("$pid")
}

# alone_again H N: host H's log says for the Nth time that it works alone
# on the volume again (within 20 s of the others leaving).
alone_again() {
	local h=$1 n=$2 i
	for ((i = 0; i < 100; i++)); do
		(( $(grep -c "alone on the volume again" "$(log_of "$h")" || true) >= n )) && return
		sleep 0.2
	done
	fail "host $h did not work alone again after the others left"
}
