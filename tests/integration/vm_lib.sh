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

counter() { t_guest_counter "$1"; }
wait_counter() { t_wait_counter "$1" "$2"; }

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
