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
#
# (A LUN path cut needs a SAN path to cut: the file backend has none.)
#
# All along tests/cluster/vmwatch.py reads the guests' counter blocks from
# the LUN file itself and checks that no VM ever had two writers (a boot
# writing again after another took over) and no counter went back.  After
# every round each VM must be running again within BOUND_S seconds.
# Prints the rounds, what each did, and the count of violations (aim: 0);
# exits 1 if there was any.
#
#   ROUNDS (100), SEED (random), BOUND_S (60), VMFS_BIN, VMFS_BUILD
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

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
		read -r s h < <(cl_vmfs "$i" vm status --json "$(mnt "$i")/vms/$1" 2>/dev/null |
			python3 -c 'import json,sys
d=json.load(sys.stdin); print(d.get("state",""), d.get("host","") or "-")' 2>/dev/null)
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
	# Fenced: its unmount says the volume did not close cleanly (the
	# next mount replays its journal).
	cl_vmfs "$x" umount --state-dir "$(cl_dir "$x")/state" "$(mnt "$x")" \
		>/dev/null 2>&1 || true
	mountpoint -q "$(mnt "$x")" && violation "h$x: still mounted after its unmount"
	cl__stop_pid "$pid" 10 || violation "h$x: vmfsd $pid still runs after its unmount"
	cl__shm_cleanup "$pid"
	host_up "$x"
}

op_link() {
	local x=$1 before=() v k i
	for v in "${VMS[@]}"; do before+=("$(where "$v")"); done
	cl_link_down "$x"
	sleep 6
	k=0
	for v in "${VMS[@]}"; do
		[[ $(where "$v") == "${before[k]}" ]] ||
			violation "VM $v moved from h${before[k]} to h$(where "$v") while h$x's link was cut"
		k=$((k + 1))
	done
	cl_link_up "$x"
	for i in 1 2 3; do
		cl_wait_members "$i" 3 30 || violation "h$i does not see 3 members after h$x's link came back"
	done
}

step "three hosts with corosync mount the LUN (lease $LEASE_MS ms); seed $SEED"
make_lun "$LUN" 2G
t_mkfs "$LUN"
cl_up 3
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
cl_vmwatch_start "$LUN"
every_vm_runs "start"

step "$ROUNDS rounds"
RANDOM=$SEED     # the same seed, the same rounds
for ((r = 1; r <= ROUNDS; r++)); do
	pick migrate migrate kill stop link
	op=$PICKED
	pick 1 2 3
	x=$PICKED
	t_log "round $r: $op$([[ $op != migrate ]] && echo " h$x" || true)"
	case $op in
	migrate) op_migrate ;;
	kill) op_kill "$x"; DID[kill]=$((${DID[kill]:-0} + 1)) ;;
	stop) op_stop "$x"; DID[stop]=$((${DID[stop]:-0} + 1)) ;;
	link) op_link "$x"; DID[link]=$((${DID[link]:-0} + 1)) ;;
	esac
	every_vm_runs "$op"
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
