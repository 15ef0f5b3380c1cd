# shellcheck shell=bash disable=SC2034  # CL_* are for the scripts
#
# tests/cluster/lib.sh: a real N-host cluster on one machine, for the
# integration scripts.  Source it instead of (or after) tests/integration/
# lib.sh; it sources that one first, so step, fail, skip, t_log, T_DIR,
# VMFS and VMFSD are all there.
#
# The cluster (docs: ../../docs/OPERATIONS.md "A cluster network"):
#
#   namespace ${CL_PREFIX}b      a Linux bridge br0
#   namespace ${CL_PREFIX}hI     host I (1..N): eth0 = 10.99.0.(10+I)/24,
#                                the other end (${CL_PREFIX}vI) in br0
#   corosync of host I           runs in host I's network namespace and in
#                                a private mount namespace of its own where
#                                $CL_DIR/hI/{etc,run,lib,log} are bound on
#                                /etc/corosync, /run, /var/lib/corosync and
#                                /var/log/corosync: corosync hard-codes
#                                /run/corosync.pid, writes ringid_<nodeid>
#                                into /var/lib/corosync (two test clusters
#                                would share node ids) and reads
#                                /etc/corosync/{corosync.conf,authkey}.
#                                The configuration comes from `vmfs cluster
#                                config`, made once and copied to every
#                                host's etc/ as an administrator would.
#
# CL_PREFIX is "vc" and four random hex digits, claimed by creating the
# bridge namespace (`ip netns add` fails when the name exists), so two runs
# at once never collide; the corosync cluster name is "vmfs-test-$CL_PREFIX".
#
# Verified here: corosync's clients (corosync-quorumtool, -cpgtool,
# -cfgtool, -cmapctl, and libcpg/libquorum in vmfsd) need the corosync's
# network namespace only, not its mount namespace: libqb's IPC sockets are
# abstract, per network namespace, and its ring buffers live in /dev/shm.
# So does a vmfsd's control socket: every `vmfs` command that talks to a
# host's vmfsd (info, umount, hosts MNT) must run in that host's network
# namespace (cl_vmfs).  FUSE daemons are started with nsenter --net only,
# so their mounts stay visible in this (the main) mount namespace.
#
# Functions (I is a host number, 1..CL_N):
#   cl_up N                 cl_net N, then N corosyncs; waits until
#                           every host sees all N members (fails after 30 s)
#   cl_net N                the namespaces, the bridge and the links only
#   cl_ns I / cl_addr I     host I's namespace name / its address
#   cl_name I               host I's node (and vmfs host) name: hI
#   cl_dir I                host I's directory ($CL_DIR/hI)
#   cl_exec I CMD...        run CMD in host I's network namespace
#   cl_corosync_start I     start host I's corosync (CL_CS_PID[I])
#   cl_corosync_stop I      stop it (SIGTERM, SIGKILL after 10 s)
#   cl_corosync_log I       path of host I's corosync log
#   cl_members I            the node ids host I's corosync counts as
#                           members (quorum = totem membership), sorted,
#                           one line; fails when its corosync does not answer
#   cl_wait_members I COUNT TIMEOUT_S
#                           wait until host I sees exactly COUNT members;
#                           CL_WAITED_MS gets the time it took; 1 on timeout
#   cl_wait_in_group I NAME TIMEOUT_S [out]
#                           wait until host I's vmfsd (on cl_mnt I) counts
#                           the host named NAME in the volume's CPG group
#                           (its HELLO arrived: a migration to it can go),
#                           or with "out" no longer; 1 on timeout
#   cl_vmfsd_mount I LUN MNT [vmfs mount options...]
#                           host I mounts LUN on MNT (host name hI, state
#                           directory $CL_DIR/hI/state, log
#                           $T_DIR/vmfsd-hI-<mnt>.log); remembers the mount
#                           and its vmfsd (CL_VMFSD_PID[I]: the last one)
#   cl_vmfs I ARGS...       `vmfs ARGS` in host I's network namespace
#   cl_umount I MNT         `vmfs umount` of a cl_vmfsd_mount, checked
#   cl_kill_host I          host I crashes: kill -9 of its corosync and of
#                           its vmfsd(s), their dead FUSE mounts detached
#   cl_link_down I / cl_link_up I
#                           cut / restore host I's link (its veth end in
#                           the bridge namespace goes down / up)
#   cl_down                 tear everything down, by PID and by name:
#                           unmount, stop vmfsd and corosync, delete the
#                           namespaces, remove the /dev/shm files of the
#                           processes we started and $CL_DIR.  Idempotent;
#                           runs from the EXIT trap (set -e failures, fail,
#                           and lib.sh's INT/TERM traps all exit through
#                           it) before lib.sh's own cleanup.
#   cl_leftovers            print what of ours is still there (namespaces,
#                           live processes, /dev/shm files); nothing after
#                           cl_down
#
# The EXIT trap is the lib's (cl_down, then tests/integration/lib.sh's
# t_cleanup, keeping the exit status): a script must not replace it; a
# script that needs more cleanup defines cl_on_exit, which runs first.
#
# Example:
#   source "$(dirname "$0")/../cluster/lib.sh"
#   cl_up 3
#   cl_kill_host 3
#   cl_wait_members 1 2 10 || fail "host 3 still a member"
#   t_log "dropped after $CL_WAITED_MS ms"
#
# Skips (exit 77) only where the machine cannot: not root, or no network
# namespaces.  A missing corosync is a failure: `make deps` installs it.

# shellcheck source=tests/integration/lib.sh
declare -F t_cleanup >/dev/null ||
	source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

# This directory (vmwatch.py lives here).
CL_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CL_PREFIX=
CL_NAME=
CL_N=0
CL_DIR=$T_DIR/cluster
CL_NETNS=()          # every namespace we created, bridge first
declare -A CL_CS_PID=()      # host -> its running corosync
declare -A CL_VMFSD_PID=()   # host -> its last vmfsd
CL_ALL_PIDS=()       # every corosync and vmfsd we started, for /dev/shm
CL_MOUNTS=()         # "I MNT" of every cl_vmfsd_mount
CL_WAITED_MS=0
CL_SUBNET=10.99.0

cl_ns() { echo "${CL_PREFIX}h$1"; }
cl_name() { echo "h$1"; }
cl_addr() { echo "$CL_SUBNET.$((10 + $1))"; }
cl_dir() { echo "$CL_DIR/h$1"; }
cl_corosync_log() { echo "$CL_DIR/h$1/log/corosync.log"; }
cl__br() { echo "${CL_PREFIX}b"; }
cl__veth() { echo "${CL_PREFIX}v$1"; }

cl_exec() {
	local i=$1
	shift
	nsenter --net="/run/netns/$(cl_ns "$i")" -- "$@"
}

cl_vmfs() {
	cl_exec "$1" "$VMFS" "${@:2}"
}

# Can this machine run a test cluster at all?  Skips when it cannot; fails
# when it could but a package is missing.
cl__check() {
	local t
	[[ $(id -u) == 0 ]] || skip "a test cluster needs root (network namespaces, mounts)"
	for t in ip nsenter unshare corosync corosync-quorumtool; do
		command -v "$t" >/dev/null ||
			fail "no '$t' on PATH: run 'make deps' (packages iproute2, util-linux, corosync)"
	done
	ip netns list >/dev/null 2>&1 || skip "'ip netns' does not work here"
}

# Claim a prefix by creating the bridge namespace under it.
cl__claim_prefix() {
	local try err
	for ((try = 0; try < 20; try++)); do
		CL_PREFIX=vc$(printf '%04x' $((RANDOM & 0xffff)))
		if err=$(ip netns add "$(cl__br)" 2>&1); then
			CL_NETNS+=("$(cl__br)")
			return 0
		fi
		[[ -e /run/netns/$(cl__br) ]] && continue
		CL_PREFIX=
		skip "cannot create a network namespace: $err"
	done
	CL_PREFIX=
	fail "20 random namespace prefixes were all taken; leftovers in 'ip netns list'?"
}

# Host I's namespace joined to the bridge by a veth pair.
cl__host_net() {
	local i=$1 ns br
	ns=$(cl_ns "$i")
	br=$(cl__br)
	ip netns add "$ns" || fail "ip netns add $ns failed"
	CL_NETNS+=("$ns")
	ip link add "$(cl__veth "$i")" netns "$br" type veth peer name eth0 netns "$ns" ||
		fail "cannot create the veth pair of host $i"
	ip -n "$br" link set "$(cl__veth "$i")" master br0 up
	ip -n "$ns" addr add "$(cl_addr "$i")/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	mkdir -p "$(cl_dir "$i")"/{etc,run,lib,log,state}
}

cl_corosync_start() {
	local i=$1 d pid w
	d=$(cl_dir "$i")
	[[ -z ${CL_CS_PID[$i]:-} ]] || fail "host $i's corosync already runs (pid ${CL_CS_PID[$i]})"
	# nsenter, unshare (no --fork) and sh all exec: $! is corosync's PID.
	# shellcheck disable=SC2016  # expanded by that sh
	nsenter --net="/run/netns/$(cl_ns "$i")" -- \
		unshare --mount --propagation private -- sh -c '
			mount --bind "$1/etc" /etc/corosync &&
			mount --bind "$1/run" /run &&
			mount --bind "$1/lib" /var/lib/corosync &&
			mount --bind "$1/log" /var/log/corosync &&
			exec corosync -f' sh "$d" >>"$d/corosync.out" 2>&1 &
	pid=$!
	# No "Killed" job notices from bash when a test kills it.
	disown "$pid"
	CL_CS_PID[$i]=$pid
	CL_ALL_PIDS+=("$pid")
	# Until it has exec'ed, /proc/PID/exe is sh's.
	for ((w = 0; w < 100; w++)); do
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */corosync ]] && return 0
		t_pid_alive "$pid" || break
		sleep 0.05
	done
	fail "host $i's corosync did not start: $(tail -n 5 "$d/corosync.out" "$(cl_corosync_log "$i")" 2>/dev/null)"
}

# Wait for PID to end (reaping it: it is our child); SIGKILL after
# TIMEOUT_S seconds.
cl__stop_pid() {
	local pid=$1 timeout_s=$2 w
	for ((w = 0; w < timeout_s * 10; w++)); do
		t_pid_alive "$pid" || break
		sleep 0.1
	done
	t_pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	for ((w = 0; w < 50; w++)); do
		t_pid_alive "$pid" || break
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
	! t_pid_alive "$pid"
}

cl_corosync_stop() {
	local i=$1 pid
	pid=${CL_CS_PID[$i]:-}
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	cl__stop_pid "$pid" 10 || fail "host $i's corosync (pid $pid) survived SIGKILL"
	unset "CL_CS_PID[$i]"
	cl__shm_cleanup "$pid"
}

# The /dev/shm files of a dead process of ours: libqb names its blackbox
# and its IPC ring buffers after the server's PID.
cl__shm_cleanup() {
	local pid f
	for pid in "$@"; do
		t_pid_alive "$pid" && continue
		for f in /dev/shm/qb-*-"$pid"-*; do
			[[ -e $f ]] && rm -rf -- "$f"
		done
	done
	return 0
}

cl_members() {
	local out
	out=$(cl_exec "$1" corosync-quorumtool -l 2>/dev/null) || return 1
	awk '$1 ~ /^[0-9]+$/ { print $1 }' <<<"$out" | sort -n | paste -sd ' '
}

cl_wait_in_group() {
	local i=$1 name=$2 timeout_s=$3 want=${4:-in} k
	for ((k = 0; k < timeout_s * 5; k++)); do
		cl_vmfs "$i" hosts --json --no-watch "$(cl_mnt "$i")" 2>/dev/null |
			python3 -c '
import json, sys
hosts = json.load(sys.stdin)["hosts"]
member = any(h["hostname"] == sys.argv[1] and
             (h.get("cluster") or {}).get("member") for h in hosts)
sys.exit(member != (sys.argv[2] == "in"))' \
				"$name" "$want" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

cl_wait_members() {
	local i=$1 count=$2 timeout_s=$3 t0 now m n
	t0=$(date +%s%N)
	while :; do
		n=-1
		if m=$(cl_members "$i"); then
			n=$(wc -w <<<"$m")
		fi
		now=$(date +%s%N)
		CL_WAITED_MS=$(((now - t0) / 1000000))
		[[ $n == "$count" ]] && return 0
		((CL_WAITED_MS < timeout_s * 1000)) || return 1
		sleep 0.05
	done
}

cl_net() {
	local n=$1 i
	if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 32)); then
		fail "cl_net: host count '$n' is not 1..32"
	fi
	[[ -z $CL_PREFIX ]] || fail "cl_net: a cluster ($CL_PREFIX) is already up"
	cl__check
	cl__claim_prefix
	CL_N=$n
	CL_NAME=vmfs-test-$CL_PREFIX
	t_log "cluster $CL_NAME: $n hosts, namespaces $CL_PREFIX*"
	ip -n "$(cl__br)" link add br0 type bridge
	ip -n "$(cl__br)" link set br0 up
	for ((i = 1; i <= n; i++)); do
		cl__host_net "$i"
	done
}

cl_up() {
	cl_net "$1"
	cl_corosync_up "$1"
}

# cl_corosync_up N: a corosync on each of the N hosts cl_net made, all
# members seen from every host.
cl_corosync_up() {
	local n=$1 i nodes=() d
	for ((i = 1; i <= n; i++)); do
		nodes+=(--node "$(cl_name "$i")=$(cl_addr "$i")")
	done
	mkdir -p "$CL_DIR/conf"
	# --realtime off: the three hosts share this machine's CPUs, so a
	# corosync at SCHED_RR 99 that spins at a membership merge starves
	# the other hosts' vmfsd too, which separate machines never do
	# (docs/OPERATIONS.md "Timers: how fast a failure is seen").
	"$VMFS" cluster config --name "$CL_NAME" "${nodes[@]}" --syslog off \
		--realtime off \
		--log-file /var/log/corosync/corosync.log --dir "$CL_DIR/conf" \
		>"$CL_DIR/config.out" 2>&1 ||
		fail "vmfs cluster config failed: $(cat "$CL_DIR/config.out")"
	for ((i = 1; i <= n; i++)); do
		d=$(cl_dir "$i")
		cp -p "$CL_DIR/conf/corosync.conf" "$CL_DIR/conf/authkey" "$d/etc/"
		cl_corosync_start "$i"
	done
	for ((i = 1; i <= n; i++)); do
		cl_wait_members "$i" "$n" 30 ||
			fail "host $i sees members '$(cl_members "$i")' after 30 s, not all $n;" \
				"its log: $(tail -n 5 "$(cl_corosync_log "$i")")"
	done
	t_log "cluster $CL_NAME: all $n members seen from every host"
}

cl_link_down() {
	ip -n "$(cl__br)" link set "$(cl__veth "$1")" down
}

cl_link_up() {
	ip -n "$(cl__br)" link set "$(cl__veth "$1")" up
}

cl_vmfsd_mount() {
	local i=$1 lun=$2 mp=$3 pid log
	shift 3
	mkdir -p "$mp"
	mp=$(cd "$mp" && pwd -P)
	log=$T_DIR/vmfsd-$(cl_name "$i")-$(basename "$mp").log
	CL_MOUNTS+=("$i $mp")
	cl_vmfs "$i" mount --state-dir "$(cl_dir "$i")/state" --host-name "$(cl_name "$i")" \
		--log-file "$log" "$@" "$lun" "$mp" ||
		fail "host $i: vmfs mount $lun $mp failed: $(tail -n 3 "$log" 2>/dev/null)"
	mountpoint -q "$mp" || fail "host $i: vmfs mount returned 0 but $mp is not mounted"
	pid=$(vmfsd_pid_of "$mp") || fail "host $i: no vmfsd serves $mp"
	CL_VMFSD_PID[$i]=$pid
	CL_ALL_PIDS+=("$pid")
}

# cl_mnt I: host I's mount point in the tests' layout ($T_DIR/mnt-I).
cl_mnt() { echo "$T_DIR/mnt-$1"; }

# cl_mount_all N LUN [ARGS...]: hosts 1..N mount LUN on cl_mnt, with ARGS.
cl_mount_all() {
	local n=$1 lun=$2 i
	shift 2
	for ((i = 1; i <= n; i++)); do
		cl_vmfsd_mount "$i" "$lun" "$(cl_mnt "$i")" "$@"
	done
}

# cl_vm_field I VMPATH KEY: KEY of `vmfs vm status --json VMPATH` asked
# of host I ("" when absent).
cl_vm_field() {
	cl_vmfs "$1" vm status --json "$2" | python3 -c \
		'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$3"
}

# cl_kill_qemus [WHERE]: SIGKILL to every QEMU whose command line names
# WHERE (default: this test's mounts, $T_DIR/mnt-), for cl_on_exit.
cl_kill_qemus() {
	local pid
	for pid in $(pgrep -f "qemu-system.*${1:-$T_DIR/mnt-}" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

# cl_vmwatch_start FILE: tests/cluster/vmwatch.py samples the guests'
# counter blocks from the LUN file FILE into $T_DIR/watch.jsonl (its PID
# in CL_WATCH, stopped by the EXIT trap); cl_vmwatch_check MIN_BOOTS
# stops it, fails on a violation or when no VM was seen booting
# MIN_BOOTS times, and logs what it saw.
CL_WATCH=
cl_vmwatch_start() {
	"$CL_LIB_DIR/vmwatch.py" watch "$1" "$T_DIR/watch.jsonl" &
	CL_WATCH=$!
	CL_ALL_PIDS+=("$CL_WATCH")
}

cl_vmwatch_check() {
	kill "$CL_WATCH" 2>/dev/null
	wait "$CL_WATCH" 2>/dev/null || true
	CL_WATCH=
	"$CL_LIB_DIR/vmwatch.py" check "$T_DIR/watch.jsonl" >"$T_DIR/watch.out" ||
		fail "$(cat "$T_DIR/watch.out")"
	t_log "$(cat "$T_DIR/watch.out")"
	grep -qE " ([$1-9]|[1-9][0-9]+) boots" "$T_DIR/watch.out" ||
		fail "vmwatch saw no VM boot $1 times: $(cat "$T_DIR/watch.out")"
}

cl_umount() {
	local i=$1 mp pid
	mp=$(cd "$2" && pwd -P)
	pid=$(vmfsd_pid_of "$mp") || pid=
	cl_vmfs "$i" umount --state-dir "$(cl_dir "$i")/state" "$mp" ||
		fail "host $i: vmfs umount $mp failed"
	mountpoint -q "$mp" && fail "host $i: $mp still mounted after vmfs umount"
	if [[ -n $pid ]]; then
		cl__stop_pid "$pid" 5 || fail "host $i: vmfsd $pid still runs after vmfs umount"
	fi
	cl__shm_cleanup "$pid"
}

cl_kill_host() {
	local i=$1 entry h mp pid pids=()
	[[ -n ${CL_CS_PID[$i]:-} ]] && pids+=("${CL_CS_PID[$i]}")
	for entry in "${CL_MOUNTS[@]}"; do
		read -r h mp <<<"$entry"
		[[ $h == "$i" ]] || continue
		pid=$(vmfsd_pid_of "$mp") && pids+=("$pid")
	done
	((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null
	for pid in "${pids[@]}"; do
		cl__stop_pid "$pid" 5 || fail "host $i: pid $pid survived SIGKILL"
	done
	unset "CL_CS_PID[$i]"
	cl__shm_cleanup "${pids[@]}"
	for entry in "${CL_MOUNTS[@]}"; do
		read -r h mp <<<"$entry"
		[[ $h == "$i" ]] || continue
		fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
	done
}

cl_leftovers() {
	local ns pid f
	for ns in "${CL_NETNS[@]}"; do
		[[ -e /run/netns/$ns ]] && echo "namespace $ns"
	done
	for pid in "${CL_ALL_PIDS[@]}"; do
		t_pid_alive "$pid" && echo "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))"
		for f in /dev/shm/qb-*-"$pid"-*; do
			[[ -e $f ]] && echo "file $f"
		done
	done
	for f in "${CL_MOUNTS[@]}"; do
		grep -qs " ${f#* } " /proc/self/mounts && echo "mount ${f#* }"
	done
	return 0
}

cl_down() {
	local entry h mp pid i ns
	[[ -n $CL_PREFIX ]] || return 0
	for entry in "${CL_MOUNTS[@]}"; do
		read -r h mp <<<"$entry"
		grep -qs " $mp " /proc/self/mounts || continue
		timeout 30 nsenter --net="/run/netns/$(cl_ns "$h")" -- \
			"$VMFS" umount --state-dir "$(cl_dir "$h")/state" "$mp" >/dev/null 2>&1 ||
			fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
	done
	for pid in "${CL_ALL_PIDS[@]}"; do
		t_pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${CL_ALL_PIDS[@]}"; do
		cl__stop_pid "$pid" 10 || t_log "cl_down: pid $pid survived SIGKILL"
	done
	for i in "${!CL_CS_PID[@]}"; do
		unset "CL_CS_PID[$i]"
	done
	cl__shm_cleanup "${CL_ALL_PIDS[@]}"
	# Hosts first: deleting a namespace deletes the veth ends in it.
	for ((i = ${#CL_NETNS[@]} - 1; i >= 0; i--)); do
		ns=${CL_NETNS[i]}
		[[ -e /run/netns/$ns ]] && ip netns del "$ns" 2>/dev/null
	done
	[[ ${VMFS_KEEP:-0} == 1 ]] || rm -rf "$CL_DIR"
	return 0
}

# A failure shows the end of every corosync log too, after lib.sh's vmfsd
# logs.
eval "$(declare -f t_dump_logs | sed '1s/^t_dump_logs/cl__dump_vmfsd_logs/')"
t_dump_logs() {
	local i f
	cl__dump_vmfsd_logs
	for ((i = 1; i <= CL_N; i++)); do
		f=$(cl_corosync_log "$i")
		[[ -s $f ]] || continue
		echo "----- last lines of $f -----" >&2
		tail -n 15 "$f" >&2 || true
	done
}

# cl_down before lib.sh's cleanup, keeping the script's exit status.
cl__on_exit() {
	local rc=$?
	set +e
	trap - ERR
	declare -F cl_on_exit >/dev/null && cl_on_exit
	cl_down
	(exit "$rc")
	t_cleanup
}
trap cl__on_exit EXIT
