#!/usr/bin/env bash
#
# bench/ha.sh (make bench-ha): HA restart time, on the file backend
# (lease-bound) or, BACKEND=iscsi, on a real iSCSI target (tgtd,
# tests/iscsi/lib.sh) where a survivor preempts the dead host's
# persistent-reservation key before it recovers it.
#
# A real three-host cluster (tests/cluster/lib.sh: three network
# namespaces, a corosync each, a vmfsd each mounting one LUN file) and
# one HA VM (the test guest of `make guest`, TCG) writing its counter to
# its disk.  ROUNDS times: kill -9 the host running the VM (its corosync
# and vmfsd; its QEMU dies with the vmfsd), then time
#   - kill -> the new QEMU process started on a survivor (its start time,
#     from /proc): the protocol's part (lease, recovery, the HA agent's
#     placement delay, taking the locks);
#   - kill -> the guest's counter advancing on its disk: what a user
#     sees; adds the guest's boot (TCG here: slow).
# The killed host comes back (corosync, mount) before the next round.
# Prints each round and the medians; asserts nothing.
#
#   VMFS_BIN   vmfs and vmfsd (default: <repo>/bin)
#   VMFS_BUILD the build directory with guest/ (default: <repo>/build)
#   ROUNDS     kills to time (default 3)
#   LEASE_MS   the hosts' lease (default 10000, the volume's default)
#   BACKEND    file (default) or iscsi
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export VMFS_BIN=${VMFS_BIN:-$here/../bin}
export VMFS_BUILD=${VMFS_BUILD:-$here/../build}
ROUNDS=${ROUNDS:-3}
LEASE_MS=${LEASE_MS:-10000}
BACKEND=${BACKEND:-file}
case $BACKEND in
iscsi)	# shellcheck source=tests/iscsi/lib.sh
	source "$here/../tests/iscsi/lib.sh" ;;
file)	# shellcheck source=tests/cluster/lib.sh
	source "$here/../tests/cluster/lib.sh" ;;
*)	echo "ha.sh: BACKEND=$BACKEND: give file or iscsi" >&2; exit 2 ;;
esac
set +e

t_need_guest
LUN=$T_DIR/lun
mnt() { cl_mnt "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cl_on_exit() { cl_kill_qemus; }

counter() { t_guest_counter "$1"; }

# qemu_of_vm: "PID HOST" of the QEMU running the VM (any host), or
# nothing.
qemu_of_vm() {
	local pid args
	while read -r pid args; do
		if [[ $args == qemu-system* && $args =~ $T_DIR/mnt-([0-9])/vms/ha/ ]]; then
			echo "$pid ${BASH_REMATCH[1]}"
			break
		fi
	done < <(ps -eo pid=,args=)
	return 0
}

# Milliseconds since boot: now, and when process PID started.
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
start_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", $22 * 1000 / hz }' "/proc/$1/stat"; }

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "-") }'; }

echo "ha: $ROUNDS kills, lease $LEASE_MS ms, $BACKEND backend, TCG guest" >&2
if [[ $BACKEND == iscsi ]]; then
	is_up 3 1G
	cl_corosync_up 3
	LUN=$(is_url "$IS_PORTAL_A")
	cl_vmfs 1 mkfs --max-hosts 4 --journal-size 4M "$LUN" >"$T_DIR/mkfs.out" ||
		fail "vmfs mkfs failed: $(cat "$T_DIR/mkfs.out")"
else
	make_lun "$LUN" 2G
	t_mkfs "$LUN"
	cl_up 3
fi
cl_mount_all 3 "$LUN" --lease-ms "$LEASE_MS"
mkdir "$(mnt 1)/vms"
cl_vmfs 1 vm create "$(mnt 1)/vms/ha" --memory 128M --disk 64M:thin --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" --ha >/dev/null ||
	fail "vm create failed"
cl_vmfs 1 vm start "$(mnt 1)/vms/ha" >/dev/null || fail "vm start failed"
on=1
for ((w = 0; w < 1200; w++)); do
	[[ -n $(counter "$(mnt 1)/vms/ha/disk0.img") ]] && break
	sleep 0.1
done

qemu_ms=() run_ms=()
for ((r = 1; r <= ROUNDS; r++)); do
	c0=$(counter "$(mnt "$on")/vms/ha/disk0.img")
	[[ -n $c0 ]] || fail "round $r: no counter on host $on's disk view"
	t0=$(now_ms)
	t0u=$(uptime_ms)
	cl_kill_host "$on"
	new="" tq="" tr=""
	while (($(now_ms) - t0 < 300000)); do
		# The new QEMU, on a survivor (the old one died with its vmfsd):
		# its start time, from the kernel.
		if [[ -z $tq ]] && read -r qpid new < <(qemu_of_vm) && [[ $new != "$on" ]]; then
			tq=$(($(start_ms "$qpid") - t0u))
			# The old guest may have written after c0 was read, before
			# it died; the new one has not booted yet: its start value.
			c=$(counter "$(mnt "$new")/vms/ha/disk0.img")
			[[ -n $c && $c -gt $c0 ]] && c0=$c
		fi
		if [[ -n $tq ]]; then
			c=$(counter "$(mnt "$new")/vms/ha/disk0.img")
			if [[ -n $c && $c -gt $c0 ]]; then
				tr=$(($(now_ms) - t0))
				break
			fi
		fi
		sleep 0.05
	done
	[[ -n $tr ]] || fail "round $r: the VM did not run again within 300 s"
	echo "round $r: host $on killed; VM on host $new: QEMU started at $tq ms, guest counter advancing at $tr ms" >&2
	qemu_ms+=("$tq")
	run_ms+=("$tr")
	((r < ROUNDS)) || break
	# The dead host comes back for the next round.
	cl_corosync_start "$on"
	cl_wait_members "$new" 3 60 || fail "host $on's corosync did not rejoin"
	cl_vmfsd_mount "$on" "$LUN" "$(mnt "$on")" --lease-ms "$LEASE_MS"
	on=$new
done
printf '%s, lease %d ms, %d kills: kill -> QEMU started on a survivor: median %s ms; kill -> guest counter advancing: median %s ms\n' \
	"$BACKEND" "$LEASE_MS" "${#run_ms[@]}" "$(printf '%s\n' "${qemu_ms[@]}" | median)" \
	"$(printf '%s\n' "${run_ms[@]}" | median)"
