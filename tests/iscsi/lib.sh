# shellcheck shell=bash disable=SC2034  # IS_* are for the scripts
#
# tests/iscsi/lib.sh: a real iSCSI SAN on one machine: tgtd (Debian's tgt)
# in a network namespace of its own, on the bridge of a tests/cluster/lib.sh
# test network, exporting one LUN file on two portals.  Source it instead
# of tests/cluster/lib.sh (it sources that one, which sources tests/
# integration/lib.sh).
#
#   namespace ${CL_PREFIX}t    the target: eth0 = 10.99.0.2 (portal A),
#                              eth1 = 10.99.0.3 (portal B), both in br0
#   tgtd                       runs in that namespace and in a private mount
#                              namespace where $IS_DIR/run is bound on /run
#                              (tgtadm talks to it over /run/tgtd/socket.0;
#                              two tgtds on one machine would share it)
#   hosts                      cl_net's namespaces, 10.99.0.(10+I)
#
# The recipe and the facts behind it: ../../../shared/DESIGN.md "Test
# clusters on one machine".  LUN 0 of a tgt target is its controller; the
# disk is LUN 1.
#
# Functions:
#   is_up N SIZE [CHAP_USER CHAP_SECRET]
#                     cl_net N, the target namespace, tgtd, a target
#                     $IS_IQN with LUN 1 = a SIZE file ($IS_DIR/lun.img)
#                     and LUN 2 = the 1 MiB lock LU of the mutex;
#                     with CHAP_*: the target demands that account
#   is_url [PORTAL]   the LUN's URL (with ?lock_lun=2) through portal A
#                     (default) or B
#   is_tgtadm ARGS    tgtadm in tgtd's namespaces
#   is_tgtd_stop      delete the target and stop tgtd (idempotent)
#   is_exec I CMD     = cl_exec (host I's network namespace)
#
# Cleanup: cl_down (the EXIT trap's) also stops tgtd the tgt way, by PID.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"

IS_DIR=
IS_TGTD_PID=
IS_IQN=
IS_PORTAL_A=$CL_SUBNET.2
IS_PORTAL_B=$CL_SUBNET.3

is_ns() { echo "${CL_PREFIX}t"; }
is_exec() { cl_exec "$@"; }

is_url() {
	local portal=${1:-$IS_PORTAL_A}
	echo "iscsi://$portal:3260/$IS_IQN/1?lock_lun=2"
}

# is_mkfs URL MKFS-OPTION...: host 1 makes the volume on URL; the test
# fails with mkfs's output if it cannot.
is_mkfs() {
	local url=$1
	shift
	cl_vmfs 1 mkfs "$@" "$url" >"$T_DIR/mkfs.out" 2>&1 ||
		fail "vmfs mkfs $url failed: $(cat "$T_DIR/mkfs.out")"
}

is_tgtadm() {
	nsenter --target "$IS_TGTD_PID" --mount --net -- tgtadm --lld iscsi "$@"
}

is__check() {
	local t
	for t in tgtd tgtadm iscsi-inq; do
		command -v "$t" >/dev/null ||
			fail "no '$t' on PATH: run 'make deps' (packages tgt, libiscsi-bin)"
	done
}

is__target_net() {
	local ns br i
	ns=$(is_ns)
	br=$(cl__br)
	ip netns add "$ns" || fail "ip netns add $ns failed"
	CL_NETNS+=("$ns")
	for i in 0 1; do
		ip link add "${CL_PREFIX}t$i" netns "$br" type veth peer name "eth$i" netns "$ns" ||
			fail "cannot create the target's veth pair $i"
		ip -n "$br" link set "${CL_PREFIX}t$i" master br0 up
		ip -n "$ns" link set "eth$i" up
	done
	ip -n "$ns" addr add "$IS_PORTAL_A/24" dev eth0
	ip -n "$ns" addr add "$IS_PORTAL_B/24" dev eth1
	ip -n "$ns" link set lo up
}

is_tgtd_start() {
	local w pid
	mkdir -p "$IS_DIR/run"
	# nsenter, unshare (no --fork) and sh all exec: $! is tgtd's PID.
	# shellcheck disable=SC2016  # expanded by that sh
	nsenter --net="/run/netns/$(is_ns)" -- \
		unshare --mount --propagation private -- sh -c '
			mount --bind "$1" /run &&
			exec tgtd -f --iscsi portal="$2:3260"' \
		sh "$IS_DIR/run" "$IS_PORTAL_A" >>"$IS_DIR/tgtd.out" 2>&1 &
	pid=$!
	disown "$pid"
	IS_TGTD_PID=$pid
	for ((w = 0; w < 100; w++)); do
		if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */tgtd ]] &&
			is_tgtadm --op show --mode sys >/dev/null 2>&1; then
			# tgtd takes one --iscsi portal=; the second is added.
			is_tgtadm --op new --mode portal --param portal="$IS_PORTAL_B:3260"
			return 0
		fi
		t_pid_alive "$pid" || break
		sleep 0.1
	done
	fail "tgtd did not start: $(tail -n 5 "$IS_DIR/tgtd.out" 2>/dev/null)"
}

# The target, its LUN and its ACL (every initiator address may log in).
is_target_create() {
	local user=${1:-} secret=${2:-}
	is_tgtadm --op new --mode target --tid 1 -T "$IS_IQN"
	is_tgtadm --op new --mode logicalunit --tid 1 --lun 1 -b "$IS_DIR/lun.img"
	# The lock LU of the reservation mutex (docs/PROTOCOL.md "Locks on an
	# iSCSI LUN"): 1 MiB, its data never used.
	truncate -s 1M "$IS_DIR/lock.img"
	is_tgtadm --op new --mode logicalunit --tid 1 --lun 2 -b "$IS_DIR/lock.img"
	is_tgtadm --op bind --mode target --tid 1 -I ALL
	if [[ -n $user ]]; then
		is_tgtadm --op new --mode account --user "$user" --password "$secret"
		is_tgtadm --op bind --mode account --tid 1 --user "$user"
	fi
}

is_up() {
	local n=$1 size=$2
	is__check
	cl_net "$n"
	IS_DIR=$T_DIR/iscsi
	IS_IQN=iqn.2026-01.test.vmfs:$CL_PREFIX
	mkdir -p "$IS_DIR"
	truncate -s "$size" "$IS_DIR/lun.img"
	is__target_net
	is_tgtd_start
	is_target_create "${3:-}" "${4:-}"
	t_log "target $IS_IQN on $IS_PORTAL_A and $IS_PORTAL_B (tgtd pid $IS_TGTD_PID)"
}

is_tgtd_stop() {
	local pid=$IS_TGTD_PID
	[[ -n $pid ]] || return 0
	if t_pid_alive "$pid"; then
		is_tgtadm --op delete --mode target --tid 1 --force >/dev/null 2>&1 || true
		is_tgtadm --op delete --mode system >/dev/null 2>&1 || true
	fi
	cl__stop_pid "$pid" 10 || t_log "tgtd $pid survived SIGKILL"
	IS_TGTD_PID=
}

# cl_down unmounts the hosts' mounts while the target still serves them,
# then deletes the namespaces; tgtd (not in CL_ALL_PIDS: SIGTERM does not
# stop it) goes last, through its own namespaces, which live as long as it
# does.  $IS_DIR is outside $CL_DIR so that cl_down's rm -rf does not take
# tgtadm's socket away first.
eval "$(declare -f cl_down | sed '1s/^cl_down/is__cl_down/')"
cl_down() {
	is__cl_down
	is_tgtd_stop
}
