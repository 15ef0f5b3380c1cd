# vm_lib.sh: helpers of the VM tests (t_vm*.sh), sourced after lib.sh.
# Skips without QEMU or the test guest (GUEST: its directory); installs a
# trap that kills the QEMU processes the test saw (QEMU_PIDS) by PID
# before the usual cleanup.  Hosts are lib.sh's (hmount H).

t_need_guest
QEMU_PIDS=()

# QEMU processes the test saw: killed by PID if anything is left.
vm_cleanup() {
	local rc=$? pid
	set +e
	for pid in "${QEMU_PIDS[@]}"; do
		t_pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	(exit "$rc")
	t_cleanup
}
trap vm_cleanup EXIT

# vm_two_hosts: a fresh $LUN, hosts A and B mount it (disk-only
# sharing); a and b are their mount points, $a/vms exists.
vm_two_hosts() {
	LUN=$T_DIR/lun
	make_lun "$LUN" 1G
	t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
	hmount A --no-cluster
	hmount B --no-cluster
	a=$(mp_of A)
	b=$(mp_of B)
	mkdir "$a/vms"
}

vm() { local h=$1; shift; VMFS_STATE_DIR=$(state_of "$h") "$VMFS" vm "$@"; }

# field H VMPATH KEY: a field of `vmfs vm status --json` on host H.
field() {
	vm "$1" status --json "$2" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$3"
}

# vm_start H VMPATH: start it on host H and remember its QEMU's PID.
vm_start() {
	vm "$1" start "$2" >/dev/null || fail "vm start of $2 on $1 failed"
	QEMU_PIDS+=("$(field "$1" "$2" pid)")
}

# counter FILE: the guest's counter on its disk (read with O_DIRECT).
counter() {
	dd if="$1" bs=512 count=1 iflag=direct 2>/dev/null | head -c 64 |
		tr -d '\0' | sed -n 's/^vmfs-guest-counter \([0-9]*\)$/\1/p' | head -1
}

# wait_counter FILE ABOVE: until the counter exceeds ABOVE (120 s).
wait_counter() {
	local i c
	for ((i = 0; i < 1200; i++)); do
		c=$(counter "$1")
		[[ -n $c && $c -gt $2 ]] && { echo "$c"; return 0; }
		sleep 0.1
	done
	fail "the guest's counter in $1 stayed at '${c:-none}' (want > $2); console: $(tail -n 5 "$(dirname "$1")/console.log" 2>/dev/null)"
}

# wait_state H VMPATH STATE: until status on H matches the regex STATE (60 s).
wait_state() {
	local i s
	for ((i = 0; i < 300; i++)); do
		s=$(field "$1" "$2" state)
		[[ $s =~ ^($3)$ ]] && return 0
		sleep 0.2
	done
	fail "host $1: state of $2 is '$s', expected '$3'"
}
