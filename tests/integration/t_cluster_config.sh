#!/usr/bin/env bash
#
# t_cluster_config: `vmfs cluster config` writes a corosync.conf and an
# authkey that corosync itself accepts, and refuses bad input with a
# message that says what to do:
#
#  - two nodes with crypto (the default): knet, token 1000,
#    token_coefficient 0, aes256/sha256, node ids 1 and 2 in order,
#    two_node: 1, syslog; an authkey of 256 bytes, mode 0400;
#  - three nodes, --crypto off: none/none, no two_node, no authkey;
#    --realtime off: a system section keeping corosync time-shared;
#    --syslog off --log-file: logging to that file only;
#  - IPv6 addresses, written in canonical form;
#  - corosync's own check: `corosync -t` of the written file, run on
#    "host 1" (a network namespace holding node 1's address, the files
#    bound on /etc/corosync as on a real host) accepts it, and refuses it
#    once that address is gone; the command run on a node says corosync
#    accepted it, run elsewhere it adds that this machine is none of the
#    nodes;
#  - existing files are kept without --force (byte for byte) and
#    replaced with it (a new key); nothing is left behind in DIR;
#  - every refusal: missing/bad --name, missing/bad --node, duplicate
#    names and addresses (also a name resolving to another node's
#    address), mixed address families, non-host addresses, more than 32
#    nodes, bad --crypto/--syslog/--log-file, a missing, non-directory or
#    unwritable --dir, unknown options and arguments;
#  - `vmfs cluster --help`, `vmfs help cluster`, a missing or unknown
#    subcommand.
#
# shellcheck source=tests/cluster/lib.sh disable=SC2016  # sh -c '...' "$1"
source "$(dirname "$0")/../cluster/lib.sh"

D=$T_DIR/conf
# Every run is made in host 3's network namespace (10.99.0.13) of a
# three-host test network: there 'corosync -t' finds no route to a DNS
# server at once, where on this machine its reverse lookups of the local
# addresses can wait 5 s for a lost answer.
CFG=(cl_exec 3 "$VMFS" cluster config)

# conf_has FILE LINE...: each LINE (a whole line, tabs stripped) is in FILE.
conf_has() {
	local f=$1 l
	shift
	for l in "$@"; do
		sed 's/^[[:space:]]*//' "$f" | grep -qxF -- "$l" ||
			fail "$f lacks the line '$l':"$'\n'"$(cat "$f")"
	done
}

conf_lacks() {
	local f=$1 l
	shift
	for l in "$@"; do
		sed 's/^[[:space:]]*//' "$f" | grep -qF -- "$l" &&
			fail "$f has '$l':"$'\n'"$(cat "$f")"
	done
	return 0
}

# no_temp DIR: nothing of ours but the two files.
no_temp() {
	local left
	left=$(find "$1" -mindepth 1 -name '.vmfs-cluster*')
	[[ -z $left ]] || fail "temporary files left in $1: $left"
}

step "two nodes, crypto on (the default)"
cl_net 3
mkdir -p "$D"
"${CFG[@]}" --name prod-1 --node esx1=10.99.0.11 --node esx2=10.99.0.12 \
	--dir "$D" >"$T_DIR/out" || fail "vmfs cluster config failed"
cat "$T_DIR/out" >&2
grep -q "accepted by 'corosync -t'" "$T_DIR/out" || fail "no corosync -t verdict: $(cat "$T_DIR/out")"
grep -q "none of the nodes" "$T_DIR/out" ||
	fail "run outside the nodes, no note that corosync could not check the local node"
conf_has "$D/corosync.conf" "cluster_name: prod-1" "transport: knet" "token: 1000" \
	"token_coefficient: 0" "crypto_cipher: aes256" "crypto_hash: sha256" \
	"name: esx1" "nodeid: 1" "ring0_addr: 10.99.0.11" \
	"name: esx2" "nodeid: 2" "ring0_addr: 10.99.0.12" \
	"provider: corosync_votequorum" "two_node: 1" "to_syslog: yes" "to_logfile: no"
conf_lacks "$D/corosync.conf" "keyfile" "to_stderr" "sched_rr"
# Node ids follow the order given.
expect_eq "node order" "$(grep -oE 'name: esx[12]|nodeid: [0-9]+' "$D/corosync.conf" | paste -sd ' ')" \
	"name: esx1 nodeid: 1 name: esx2 nodeid: 2"
expect_eq "authkey size" "$(stat -c %s "$D/authkey")" 256
expect_eq "authkey mode" "$(stat -c %a "$D/authkey")" 400
expect_eq "corosync.conf mode" "$(stat -c %a "$D/corosync.conf")" 644
no_temp "$D"

step "existing files are kept without --force"
sum_before=$(cat "$D/corosync.conf" "$D/authkey" | sha256sum)
expect_fail 1 "corosync.conf exists; not overwriting it.*--force" \
	"${CFG[@]}" --name other --node a=10.99.0.21 --dir "$D"
expect_eq "files after a refused run" "$(cat "$D/corosync.conf" "$D/authkey" | sha256sum)" \
	"$sum_before"
mv "$D/corosync.conf" "$T_DIR/corosync.conf.saved"
expect_fail 1 "authkey exists; not overwriting it.*--force" \
	"${CFG[@]}" --name other --node a=10.99.0.21 --dir "$D"
[[ -e $D/corosync.conf ]] && fail "a refused run wrote corosync.conf"
# --crypto off writes no authkey, so an old one does not stop it.
"${CFG[@]}" --name other --node a=10.99.0.21 --crypto off --dir "$D" >/dev/null ||
	fail "--crypto off refused because of an authkey it does not write"
"${CFG[@]}" --name prod-1 --node esx1=10.99.0.11 --node esx2=10.99.0.12 \
	--dir "$D" --force >/dev/null || fail "--force refused"
sum_before=$(sha256sum <"$D/authkey")
"${CFG[@]}" --name prod-2 --node esx1=10.99.0.11 --node esx2=10.99.0.12 \
	--dir "$D" -f >/dev/null || fail "--force did not replace the files"
conf_has "$D/corosync.conf" "cluster_name: prod-2"
[[ $(sha256sum <"$D/authkey") != "$sum_before" ]] || fail "--force kept the old authkey"
expect_eq "authkey mode after --force" "$(stat -c %a "$D/authkey")" 400
no_temp "$D"

step "three nodes, crypto off, a log file and no syslog"
D3=$T_DIR/conf3
mkdir -p "$D3"
"${CFG[@]}" --name lab --node n1=10.99.0.11 --node n2=10.99.0.12 --node n3=10.99.0.13 \
	--crypto off --syslog off --log-file /var/log/corosync/corosync.log \
	--realtime off --dir "$D3" >"$T_DIR/out" || fail "vmfs cluster config --crypto off failed"
conf_has "$D3/corosync.conf" "crypto_cipher: none" "crypto_hash: none" \
	"sched_rr: no" "priority: max" \
	"nodeid: 3" "ring0_addr: 10.99.0.13" "to_syslog: no" "to_logfile: yes" \
	"logfile: /var/log/corosync/corosync.log"
conf_lacks "$D3/corosync.conf" "two_node"
[[ -e $D3/authkey ]] && fail "--crypto off wrote an authkey"
grep -q "crypto off" "$T_DIR/out" || fail "summary does not say crypto is off: $(cat "$T_DIR/out")"
no_temp "$D3"

step "corosync -t accepts the files on a node"
# check_on_host I DIR: corosync -t in host I's namespace with DIR's files
# on /etc/corosync, where the daemon reads them.
check_on_host() {
	cl_exec "$1" unshare --mount --propagation private -- sh -c \
		'mount --bind "$1" /etc/corosync && exec corosync -t' sh "$2" >"$T_DIR/t.out" 2>&1 ||
		fail "corosync -t on host $1 rejects $2/corosync.conf: $(cat "$T_DIR/t.out")"
}
"${CFG[@]}" --name prod-1 --node h1=10.99.0.11 --node h2=10.99.0.12 \
	--dir "$D" --force >/dev/null || fail "vmfs cluster config --force failed"
check_on_host 1 "$D"
check_on_host 2 "$D"
check_on_host 3 "$D3"
# IPv6, written in canonical form.
D6=$T_DIR/conf6
mkdir -p "$D6"
ip -n "$(cl_ns 2)" addr add fd00:99::12/64 dev eth0 nodad
"${CFG[@]}" --name v6 --node a=fd00:99::11 --node b=fd00:99:0:0::12 --dir "$D6" >/dev/null ||
	fail "vmfs cluster config with IPv6 addresses failed"
conf_has "$D6/corosync.conf" "ring0_addr: fd00:99::11" "ring0_addr: fd00:99::12"
check_on_host 2 "$D6"
# Run on a node, the command's own check covers the local entry.
D4=$T_DIR/conf4
mkdir -p "$D4"
cl_exec 1 "$VMFS" cluster config --name prod-1 --node h1=10.99.0.11 --node h2=10.99.0.12 \
	--node h3=10.99.0.13 --dir "$D4" >"$T_DIR/out" || fail "vmfs cluster config on host 1 failed"
grep -q "accepted by 'corosync -t'$" "$T_DIR/out" ||
	fail "on a node, the verdict should be a plain accept: $(cat "$T_DIR/out")"
check_on_host 1 "$D4"
# The check is real: corosync refuses a file without a node of this host
# (the command words that as a note, corosync -t itself fails).
ip -n "$(cl_ns 1)" addr del 10.99.0.11/24 dev eth0
if cl_exec 1 unshare --mount --propagation private -- sh -c \
	'mount --bind "$1" /etc/corosync && exec corosync -t' sh "$D4" >"$T_DIR/t.out" 2>&1; then
	fail "corosync -t accepted a file on a host that is none of its nodes"
fi

step "refusals"
E=$T_DIR/e
mkdir -p "$E"
node2=(--node a=10.99.0.11 --node b=10.99.0.12)
expect_fail 2 "missing --name" "${CFG[@]}" "${node2[@]}" --dir "$E"
expect_fail 2 "cluster name is 1-64 characters" "${CFG[@]}" --name "a b" "${node2[@]}" --dir "$E"
expect_fail 2 "cluster name is 1-64 characters" "${CFG[@]}" --name -x "${node2[@]}" --dir "$E"
expect_fail 2 "cluster name is 1-64 characters" "${CFG[@]}" --name "x{" "${node2[@]}" --dir "$E"
expect_fail 2 "cluster name is 1-64 characters" "${CFG[@]}" --name "$(printf 'c%.0s' {1..65})" \
	"${node2[@]}" --dir "$E"
expect_fail 2 "missing --node NAME=ADDR" "${CFG[@]}" --name c --dir "$E"
expect_fail 2 "expected NAME=ADDR, e.g." "${CFG[@]}" --name c --node a --dir "$E"
expect_fail 2 "expected NAME=ADDR" "${CFG[@]}" --name c --node =10.99.0.1 --dir "$E"
expect_fail 2 "expected NAME=ADDR" "${CFG[@]}" --name c --node a= --dir "$E"
expect_fail 2 "node name 'a/b' must be 1-63 characters" "${CFG[@]}" --name c --node a/b=10.99.0.1 --dir "$E"
expect_fail 2 "node name 'a' is given twice" "${CFG[@]}" --name c --node a=10.99.0.1 \
	--node a=10.99.0.2 --dir "$E"
expect_fail 2 "address 10.99.0.1 is also node 'a's.*own address" "${CFG[@]}" --name c \
	--node a=10.99.0.1 --node b=10.99.0.1 --dir "$E"
expect_fail 2 "address 127.0.0.1 is also node 'a's \(localhost\)" "${CFG[@]}" --name c \
	--node a=localhost --node b=127.0.0.1 --dir "$E"
expect_fail 2 "address 2001:db8:0::1 is also node 'a's \\(2001:db8::1\\)" "${CFG[@]}" --name c \
	--node a=2001:db8::1 --node b=2001:db8:0::1 --dir "$E"
expect_fail 2 "'10.99.0.300' is not a valid IPv4 address" "${CFG[@]}" --name c \
	--node a=10.99.0.300 --dir "$E"
expect_fail 2 "'10.99.0.1:5405' is not an IPv4 or IPv6 address nor a host name" \
	"${CFG[@]}" --name c --node a=10.99.0.1:5405 --dir "$E"
# In a namespace with no route out, a name lookup fails at once.
expect_fail 2 "cannot resolve 'no-such-host.invalid'.*DNS or /etc/hosts" \
	cl_exec 1 "$VMFS" cluster config --name c --node a=no-such-host.invalid --dir "$E"
expect_fail 2 "::2 is IPv6 but node 'a' has IPv4; corosync needs one address family" \
	"${CFG[@]}" --name c --node a=10.99.0.1 --node b=::2 --dir "$E"
for bad in 0.0.0.0 224.0.0.1 255.255.255.255 :: ff02::1; do
	expect_fail 2 "$bad is not a host's address" "${CFG[@]}" --name c --node "a=$bad" --dir "$E"
done
many=()
for i in $(seq 1 33); do
	many+=(--node "n$i=10.99.1.$i")
done
expect_fail 2 "more than 32 --node options; a cluster has at most 32 nodes" \
	"${CFG[@]}" --name c "${many[@]}" --dir "$E"
"${CFG[@]}" --name c "${many[@]:0:64}" --dir "$E" --crypto off >/dev/null ||
	fail "32 nodes refused"
conf_has "$E/corosync.conf" "nodeid: 32" "ring0_addr: 10.99.1.32"
rm -f "$E/corosync.conf"
expect_fail 2 "--crypto 'yes': expected on or off" "${CFG[@]}" --name c "${node2[@]}" --crypto yes --dir "$E"
expect_fail 2 "--realtime 'rr': expected on or off" "${CFG[@]}" --name c "${node2[@]}" --realtime rr --dir "$E"
expect_fail 2 "--syslog 'no': expected on or off" "${CFG[@]}" --name c "${node2[@]}" --syslog no --dir "$E"
expect_fail 2 "--log-file 'corosync.log': give an absolute path" "${CFG[@]}" --name c \
	"${node2[@]}" --log-file corosync.log --dir "$E"
expect_fail 2 "--log-file '/var/log/a b': give an absolute path without spaces" \
	"${CFG[@]}" --name c "${node2[@]}" --log-file "/var/log/a b" --dir "$E"
expect_fail 1 "--dir $T_DIR/nodir: No such file or directory; create it \(mkdir -p" \
	"${CFG[@]}" --name c "${node2[@]}" --dir "$T_DIR/nodir"
expect_fail 1 "--dir $T_DIR/out: not a directory" "${CFG[@]}" --name c "${node2[@]}" --dir "$T_DIR/out"
# Unwritable: root may write anywhere but on a read-only mount.
expect_fail 1 "--dir $E: cannot write there \(Read-only file system\); run as root" \
	unshare --mount --propagation private -- sh -c \
	'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"' \
	sh "$E" "$VMFS" cluster config --name c "${node2[@]}" --dir "$E"
expect_fail 2 "unknown option '--bogus'" "${CFG[@]}" --name c "${node2[@]}" --bogus --dir "$E"
expect_fail 2 "option '--name' needs a value" "${CFG[@]}" --name
expect_fail 2 "unexpected argument 'extra'" "${CFG[@]}" --name c "${node2[@]}" --dir "$E" extra
[[ -z $(ls -A "$E") ]] || fail "refused runs left files in $E: $(ls -A "$E")"

step "help"
"$VMFS" cluster --help | grep -q "vmfs cluster config" || fail "vmfs cluster --help"
"$VMFS" help cluster | grep -q "vmfs cluster config" || fail "vmfs help cluster"
"$VMFS" cluster config --help | grep -q -- "--crypto on|off" || fail "vmfs cluster config --help"
"$VMFS" cluster config --help | grep -q -- "--realtime on|off" || fail "vmfs cluster config --help: no --realtime"
"$VMFS" --help | grep -qE "^  cluster +" || fail "vmfs --help does not list cluster"
expect_fail 2 "missing subcommand \(config\)" "$VMFS" cluster
expect_fail 2 "unknown subcommand 'bogus'|bogus" "$VMFS" cluster bogus
t_log "PASS"
