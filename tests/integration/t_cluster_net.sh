#!/usr/bin/env bash
#
# t_cluster_net: the test cluster of tests/cluster/lib.sh with real
# corosync daemons on configurations from `vmfs cluster config`:
#
#  - cl_up 3: three hosts in their network namespaces, each sees the
#    members 1 2 3; each host mounts one shared LUN (vmfsd started in its
#    host's network namespace, the mount visible here) and `vmfs hosts`,
#    run in a host's namespace, talks to its vmfsd;
#  - the running corosyncs use the tuned timers of `vmfs cluster config`
#    (token 1000 ms, token_coefficient 0: read back from their cmap), and
#    --realtime off keeps them time-shared at nice -20;
#  - host 3 crashes (kill -9 of its corosync and vmfsd): hosts 1 and 2
#    drop it from the membership (token 1000 ms + consensus 1200 ms =
#    2.2 s expected, corosync's defaults ~8 s; the time is printed, not
#    asserted); its corosync restarted, it is a member again;
#  - host 2's link goes down in the bridge: hosts 1 and 3 see "1 3",
#    host 2 sees only itself (a partition); link up: all three merge;
#  - a corosync stopped cleanly leaves the membership, started again
#    rejoins;
#  - host 1 unmounts (cl_umount); cl_down unmounts host 2 and leaves no
#    namespace, no process, no mount and no /dev/shm file of ours.
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

LUN=$T_DIR/lun
# Only a bound that a working cluster never reaches: the figure itself is
# printed (tests assert behaviour, not speed; the timers are checked in
# cmap instead).
DETECT_MAX_MS=30000

# expect_members I WANT: host I sees exactly the node ids WANT ("1 2 3").
expect_members() {
	local got
	got=$(cl_members "$1") || fail "host $1: its corosync does not answer"
	expect_eq "members seen from host $1" "$got" "$2"
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# wait_members I WANT TIMEOUT_S: until host I sees exactly WANT.
wait_members() {
	local i=$1 want=$2 timeout_s=$3 got t0 waited_ms
	t0=$(now_ms)
	while :; do
		got=$(cl_members "$i") || got="(no answer)"
		waited_ms=$(($(now_ms) - t0))
		[[ $got == "$want" ]] && return 0
		((waited_ms < timeout_s * 1000)) ||
			fail "host $i sees '$got' after $timeout_s s, expected '$want';" \
				"its log: $(tail -n 5 "$(cl_corosync_log "$i")")"
		sleep 0.05
	done
}

step "three hosts, three corosyncs, one membership"
make_lun "$LUN" 2G
t_mkfs "$LUN"
cl_up 3
for i in 1 2 3; do
	expect_members "$i" "1 2 3"
	grep -q "cluster_name: $CL_NAME" "$(cl_dir "$i")/etc/corosync.conf" ||
		fail "host $i runs a configuration other than vmfs cluster config's"
	[[ -e $(cl_dir "$i")/run/corosync.pid ]] ||
		fail "host $i's corosync wrote no pid file into its private /run"
	# The timers in force, as corosync itself reports them.
	tok=$(cl_exec "$i" corosync-cmapctl -g runtime.config.totem.token 2>&1) ||
		fail "host $i: corosync-cmapctl: $tok"
	[[ $tok == *"= 1000" ]] ||
		fail "host $i runs token '$tok', not the 1000 ms vmfs cluster config writes"
	# --realtime off (tests/cluster/lib.sh): time-shared, nice -20.
	read -r cls ni < <(ps -o cls=,ni= -p "${CL_CS_PID[$i]}")
	[[ $cls == TS && $ni == -20 ]] ||
		fail "host $i's corosync runs class $cls nice $ni, not TS -20 as --realtime off asks"
done

step "every host mounts the shared LUN from its namespace"
for i in 1 2 3; do
	cl_vmfsd_mount "$i" "$LUN" "$T_DIR/mnt-$i"
	[[ $(readlink "/proc/${CL_VMFSD_PID[$i]}/ns/net") == \
		"$(cl_exec "$i" readlink /proc/self/ns/net)" ]] ||
		fail "host $i's vmfsd is not in host $i's network namespace"
done
echo "from host 1" >"$T_DIR/mnt-1/f"
expect_eq "host 3 reads host 1's file" "$(cat "$T_DIR/mnt-3/f")" "from host 1"
cl_vmfs 2 hosts --no-watch "$T_DIR/mnt-2" >"$T_DIR/hosts.out" ||
	fail "vmfs hosts in host 2's namespace failed"
for i in 1 2 3; do
	grep -q " h$i " "$T_DIR/hosts.out" || fail "vmfs hosts lacks h$i: $(cat "$T_DIR/hosts.out")"
done

step "host 3 crashes: the others drop it"
t0=$(now_ms)
cl_kill_host 3
wait_members 1 "1 2" 30
ms1=$(($(now_ms) - t0))
wait_members 2 "1 2" 30
ms2=$(($(now_ms) - t0))
t_log "host 3 left the membership $ms1 ms after its kill -9 (seen by host 1)," \
	"$ms2 ms (host 2)"
((ms2 <= DETECT_MAX_MS)) ||
	fail "membership took $ms2 ms to drop host 3, more than $DETECT_MAX_MS ms"
mountpoint -q "$T_DIR/mnt-3" && fail "host 3's dead mount is still attached"
cl_vmfs 1 hosts --no-watch "$T_DIR/mnt-1" >/dev/null || fail "host 1's vmfsd stopped answering"

step "host 3's corosync comes back"
t0=$(now_ms)
cl_corosync_start 3
for i in 1 2 3; do
	wait_members "$i" "1 2 3" 30
done
t_log "host 3 is a member again $(($(now_ms) - t0)) ms after its start"

step "host 2's link goes down: a partition"
t0=$(now_ms)
cl_link_down 2
wait_members 1 "1 3" 30
wait_members 3 "1 3" 30
wait_members 2 "2" 30
t_log "partition seen on every side $(($(now_ms) - t0)) ms after the link went down"
cl_vmfs 2 info "$T_DIR/mnt-2" >/dev/null || fail "host 2's vmfsd stopped answering in the partition"

step "host 2's link comes back: the cluster merges"
t0=$(now_ms)
cl_link_up 2
for i in 1 2 3; do
	wait_members "$i" "1 2 3" 60
done
t_log "merged again $(($(now_ms) - t0)) ms after the link came back"

step "a corosync stopped cleanly leaves; started, rejoins"
t0=$(now_ms)
cl_corosync_stop 1
wait_members 2 "2 3" 30
t_log "host 1's clean leave seen $(($(now_ms) - t0)) ms after its SIGTERM"
cl_exec 1 corosync-quorumtool -l >/dev/null 2>&1 &&
	fail "corosync-quorumtool on host 1 answers with its corosync stopped"
cl_corosync_start 1
for i in 1 2 3; do
	wait_members "$i" "1 2 3" 30
done

step "host 1 unmounts; cl_down takes care of host 2's mount"
cl_umount 1 "$T_DIR/mnt-1"
expect_eq "host 2 still reads" "$(cat "$T_DIR/mnt-2/f")" "from host 1"

step "cl_down leaves nothing of ours"
pids=("${CL_ALL_PIDS[@]}")
prefix=$CL_PREFIX
((${#pids[@]} == 8)) || fail "expected 5 corosync and 3 vmfsd PIDs, have ${pids[*]}"
cl_down
left=$(cl_leftovers)
[[ -z $left ]] || fail "cl_down left: $left"
# The same, without the lib's own bookkeeping.
ns_left=$(ip netns list | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }')
[[ -z $ns_left ]] || fail "namespaces left: $ns_left"
for pid in "${pids[@]}"; do
	t_pid_alive "$pid" && fail "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) still exists"
	for f in /dev/shm/*"-$pid-"*; do
		[[ -e $f ]] && fail "/dev/shm file left: $f"
	done
done
grep -qs " $T_DIR/mnt-" /proc/self/mounts && fail "mounts left: $(grep " $T_DIR/mnt-" /proc/self/mounts)"
[[ -e $CL_DIR ]] && [[ ${VMFS_KEEP:-0} != 1 ]] && fail "$CL_DIR left"
t_log "PASS"
