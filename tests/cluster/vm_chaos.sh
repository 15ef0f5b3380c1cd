#!/usr/bin/env bash
#
# tests/cluster/vm_chaos.sh (make clustertest; a short run in make check
# as tests/integration/t_vm_chaos.sh): ROUNDS rounds of failures chosen at
# random on a three-host cluster (a corosync and a vmfsd per network
# namespace, one LUN file, a 4 s lease) running two HA VMs of the test
# guest:
#
#   migrate  a VM to another live host (it may fail; it must stay safe)
#   kill     kill -9 of a host's corosync and vmfsd (its QEMUs die with
#            it); its HA VMs must run again on a survivor; the host
#            comes back (corosync, mount)
#   stop     SIGSTOP of a host's vmfsd past its lease, then SIGCONT: it
#            must fence itself and kill its VMs, the survivors restart
#            them; the host is unmounted and mounted again
#   link     a host's cluster link cut for 6 s (it keeps heartbeating on
#            the LUN): nobody may restart its VMs
#   path     (BACKEND=iscsi) a host's path to the LUN cut (a blackhole
#            route to the target's portal; its cluster link stays): it
#            must fence itself and kill its VMs, a survivor preempts its
#            persistent-reservation key and the HA agents restart them;
#            the path comes back, the host is unmounted and mounted again
#
# BACKEND=file (default): the LUN is a file all hosts open.  BACKEND=iscsi:
# a real iSCSI target (tgtd, tests/iscsi/lib.sh) on the test network; a
# link cut is then blackhole routes to the other hosts (the target stays
# reachable), a path cut one to the target.
#
# All along tests/cluster/vmwatch.py reads the guests' counter blocks from
# the LUN file itself and checks that no VM ever had two writers (a boot
# writing again after another took over) and no counter went back.  After
# every round each VM must be running again within BOUND_S seconds.
# A host a round does not aim at must not fence itself (a violation too).
# Prints the rounds, what each did, and the count of violations (aim: 0);
# exits 1 if there was any.
#
#   ROUNDS (100), SEED (random), BOUND_S (60), BACKEND (file), VMFS_BIN,
#   VMFS_BUILD
#
BACKEND=${BACKEND:-file}
case $BACKEND in
iscsi)	# shellcheck source=tests/iscsi/lib.sh
	source "$(dirname "$0")/../iscsi/lib.sh" ;;
file)	# shellcheck source=tests/cluster/lib.sh
	source "$(dirname "$0")/lib.sh" ;;
*)	echo "vm_chaos.sh: BACKEND=$BACKEND: give file or iscsi" >&2; exit 2 ;;
esac

t_need_guest
ROUNDS=${ROUNDS:-100}
SEED=${SEED:-$RANDOM}
BOUND_S=${BOUND_S:-60}
LEASE_MS=4000
LUN=$T_DIR/lun
VMS=(a b)
mnt() { cl_mnt "$1"; }
now_s() { date +%s; }
UP=(0 1 1 1)          # UP[i]: host i mounted and in the cluster
FENCES=(0 0 0 0)      # FENCES[i]: fences of host i before this round
VIOLATIONS=0
declare -A DID=()

cl_on_exit() { cl_kill_qemus; }

violation() {
	VIOLATIONS=$((VIOLATIONS + 1))
	t_log "VIOLATION: $*"
}

live_hosts() {
	local i
	for i in 1 2 3; do
		if ((UP[i])); then echo "$i"; fi
	done
	return 0
}

# where VM: the host running it, as a live host reads its lock ("" none).
where() {
	local i h s
	for i in $(live_hosts); do
		# A host that died this round answers nothing: not a failure.
		read -r s h < <({ cl_vmfs "$i" vm status --json "$(mnt "$i")/vms/$1" 2>/dev/null |
			python3 -c 'import json,sys
d=json.load(sys.stdin); print(d.get("state",""), d.get("host","") or "-")' 2>/dev/null; } || true)
		if [[ $s == running && $h =~ ^h([123])$ ]] && ((UP[BASH_REMATCH[1]])); then
			echo "${BASH_REMATCH[1]}"
			return 0
		fi
	done
	return 0
}

# every_vm_runs: each VM runs on a live host within BOUND_S.
every_vm_runs() {
	local v t0 h
	t0=$(now_s)
	for v in "${VMS[@]}"; do
		while :; do
			h=$(where "$v")
			[[ -n $h ]] && break
			if (($(now_s) - t0 > BOUND_S)); then
				violation "VM $v runs nowhere $BOUND_S s after round $r ($1)"
				return 0
			fi
			sleep 1
		done
	done
}

host_up() {
	local i=$1
	[[ -z ${CL_CS_PID[$i]:-} ]] && cl_corosync_start "$i"
	mkdir -p "$(mnt "$i")"
	cl_vmfsd_mount "$i" "$LUN" "$(mnt "$i")" --lease-ms "$LEASE_MS"
	UP[i]=1
}

# pick WORDS...: one at random into PICKED (in this shell: a $(...)
# subshell would reseed RANDOM, and SEED would not replay the rounds).
pick() { local a=("$@"); PICKED=${a[RANDOM % ${#a[@]}]}; }

op_migrate() {
	local v src dst
	pick "${VMS[@]}"
	v=$PICKED
	src=$(where "$v")
	[[ -n $src ]] || { DID[migrate-skipped]=$((${DID[migrate-skipped]:-0} + 1)); return; }
	# shellcheck disable=SC2046  # one word per host
	pick $(live_hosts | grep -vx "$src")
	dst=$PICKED
	if cl_vmfs "$src" vm migrate "$(mnt "$src")/vms/$v" --to "h$dst" >"$T_DIR/mig.out" 2>&1; then
		DID[migrate-ok]=$((${DID[migrate-ok]:-0} + 1))
		[[ $(where "$v") == "$dst" ]] ||
			violation "VM $v migrated to h$dst but runs on '$(where "$v")'"
	else
		DID[migrate-failed]=$((${DID[migrate-failed]:-0} + 1))
		t_log "migration failed: $(tail -n 1 "$T_DIR/mig.out")"
	fi
}

op_kill() {
	local x=$1
	cl_kill_host "$x"
	UP[x]=0
	every_vm_runs "kill h$x"
	host_up "$x"
}

op_stop() {
	local x=$1 pid
	pid=${CL_VMFSD_PID[$x]}
	kill -STOP "$pid"
	sleep $((LEASE_MS / 1000 + 4))
	kill -CONT "$pid"
	UP[x]=0
	# It wakes fenced: its VMs are killed, the survivors restart them.
	every_vm_runs "stop h$x"
	unmount_fenced "$x"
	host_up "$x"
}

# cluster_link I down|up: host I's cluster link.  On iSCSI the target is
# on the same network: blackhole routes to the other hosts instead, so
# that its path to the LUN stays.
cluster_link() {
	local x=$1 i how=add
	if [[ $BACKEND != iscsi ]]; then
		"cl_link_$2" "$x"
		return
	fi
	[[ $2 == up ]] && how=del
	for i in 1 2 3; do
		((i == x)) || ip -n "$(cl_ns "$x")" route "$how" blackhole "$(cl_addr "$i")/32"
	done
}

op_link() {
	local x=$1 before=() v k i
	for v in "${VMS[@]}"; do before+=("$(where "$v")"); done
	cluster_link "$x" down
	sleep 6
	k=0
	for v in "${VMS[@]}"; do
		[[ $(where "$v") == "${before[k]}" ]] ||
			violation "VM $v moved from h${before[k]} to h$(where "$v") while h$x's link was cut"
		k=$((k + 1))
	done
	cluster_link "$x" up
	for i in 1 2 3; do
		cl_wait_members "$i" 3 30 || violation "h$i does not see 3 members after h$x's link came back"
	done
}

# unmount_fenced I: host I fenced itself; its unmount says the volume did
# not close cleanly (the next mount replays its journal).
unmount_fenced() {
	local x=$1 pid=${CL_VMFSD_PID[$1]}
	cl_vmfs "$x" umount --state-dir "$(cl_dir "$x")/state" "$(mnt "$x")" \
		>"$T_DIR/umount.out" 2>&1 || true
	if mountpoint -q "$(mnt "$x")"; then
		violation "h$x: still mounted after its unmount: $(tail -n 2 "$T_DIR/umount.out")"
		# What its vmfsd was doing, then the mount out of the way so
		# that the rounds go on.
		if command -v gdb >/dev/null; then
			gdb -p "$pid" -batch -ex "thread apply all bt" 2>/dev/null |
				grep -E "^Thread|^#[0-9]+ " | head -n 120
		fi
		tail -n 20 "$T_DIR/vmfsd-h$x-mnt-$x.log"
	fi
	cl__stop_pid "$pid" 10 || violation "h$x: vmfsd $pid still runs after its unmount"
	cl__shm_cleanup "$pid"
	if grep -qs " $(mnt "$x") " /proc/self/mounts; then
		fusermount3 -u -z "$(mnt "$x")" 2>/dev/null || umount -l "$(mnt "$x")"
	fi
	return 0
}

# fences I: how many times host I's vmfsds fenced themselves so far (the
# "volume ... fenced: why" lines of its log).
fences() {
	local n
	n=$(grep -c "fenced: " "$T_DIR/vmfsd-h$1-mnt-$1.log" 2>/dev/null) || true
	echo "${n:-0}"
}

op_path() {
	local x=$1 f0 k
	f0=$(fences "$x")
	ip -n "$(cl_ns "$x")" route add blackhole "$IS_PORTAL_A/32"
	UP[x]=0
	every_vm_runs "path h$x"
	for ((k = 0; k < 300; k++)); do
		(($(fences "$x") > f0)) && break
		sleep 0.1
	done
	((k < 300)) || violation "h$x did not fence itself 30 s after its path was cut"
	ip -n "$(cl_ns "$x")" route del blackhole "$IS_PORTAL_A/32"
	unmount_fenced "$x"
	host_up "$x"
}

step "three hosts with corosync mount the LUN ($BACKEND, lease $LEASE_MS ms); seed $SEED"
if [[ $BACKEND == iscsi ]]; then
	is_up 3 1G
	cl_corosync_up 3
	LUN=$(is_url "$IS_PORTAL_A")
	is_mkfs "$LUN" --max-hosts 4 --journal-size 4M
	WATCHED=$IS_DIR/lun.img
	OPS=(migrate migrate kill stop link path)
else
	make_lun "$LUN" 2G
	t_mkfs "$LUN"
	cl_up 3
	WATCHED=$LUN
	OPS=(migrate migrate kill stop link)
fi
cl_mount_all 3 "$LUN" --lease-ms "$LEASE_MS"
mkdir "$(mnt 1)/vms"
k=1
for v in "${VMS[@]}"; do
	cl_vmfs 1 vm create "$(mnt 1)/vms/$v" --memory 96M --disk 16M --accel tcg --ha \
		--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
		fail "vm create $v failed"
	cl_vmfs "$k" vm start "$(mnt "$k")/vms/$v" >/dev/null || fail "vm start $v on h$k failed"
	k=$((k + 1))
done
cl_vmwatch_start "$WATCHED"
every_vm_runs "start"

step "$ROUNDS rounds"
RANDOM=$SEED     # the same seed, the same rounds
for ((r = 1; r <= ROUNDS; r++)); do
	pick "${OPS[@]}"
	op=$PICKED
	pick 1 2 3
	x=$PICKED
	t_log "round $r: $op$([[ $op != migrate ]] && echo " h$x" || true)"
	# A host the round does not aim at must not fence itself.
	for i in 1 2 3; do FENCES[i]=$(fences "$i"); done
	case $op in
	migrate) op_migrate ;;
	kill) op_kill "$x"; DID[kill]=$((${DID[kill]:-0} + 1)) ;;
	stop) op_stop "$x"; DID[stop]=$((${DID[stop]:-0} + 1)) ;;
	link) op_link "$x"; DID[link]=$((${DID[link]:-0} + 1)) ;;
	path) op_path "$x"; DID[path]=$((${DID[path]:-0} + 1)) ;;
	esac
	every_vm_runs "$op"
	for i in 1 2 3; do
		[[ $op != migrate && $i == "$x" ]] && continue
		(($(fences "$i") == FENCES[i])) && continue
		violation "h$i fenced itself in round $r ($op), which was not aimed at it: $(grep "fenced: " "$T_DIR/vmfsd-h$i-mnt-$i.log" | tail -n 1)"
		# Every vmfsd's debug ring to its state directory
		# (vmfsd-PID.blackbox, read with qb-blackbox): what the
		# renewals met, for whoever reads the kept directory.
		for j in 1 2 3; do kill -USR1 "${CL_VMFSD_PID[$j]}" 2>/dev/null || true; done
		for j in 1 2 3; do
			echo "h$j's heartbeat warnings:"
			t_hb_warnings "$T_DIR/vmfsd-h$j-mnt-$j.log" 12
		done
		t_log "blackboxes: $(cl_dir 1)/state ... $(cl_dir 3)/state (kept with VMFS_KEEP=1)"
		# Back in service, so that the next rounds test what they
		# name rather than this host's fence again.
		UP[i]=0
		every_vm_runs "h$i's fence"
		unmount_fenced "$i"
		host_up "$i"
	done
done

step "the guests' disks: never two writers, never back"
kill "$CL_WATCH"
wait "$CL_WATCH" 2>/dev/null || true
if ! "$CL_LIB_DIR/vmwatch.py" check "$T_DIR/watch.jsonl" >"$T_DIR/watch.out"; then
	VIOLATIONS=$((VIOLATIONS + $(sed -n 's/^vmwatch: \([0-9]*\) violations$/\1/p' "$T_DIR/watch.out")))
fi
cat "$T_DIR/watch.out"
for k in "${!DID[@]}"; do
	echo "vm_chaos: $k: ${DID[$k]}"
done
echo "vm_chaos: $ROUNDS rounds (seed $SEED), $VIOLATIONS violations"
for v in "${VMS[@]}"; do
	h=$(where "$v")
	[[ -n $h ]] && cl_vmfs "$h" vm stop --force "$(mnt "$h")/vms/$v" >/dev/null
done
((VIOLATIONS == 0)) || fail "$VIOLATIONS violations (seed $SEED)"
t_log "ok"
