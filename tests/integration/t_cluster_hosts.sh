#!/usr/bin/env bash
#
# t_cluster_hosts: the corosync fast path's membership, as vmfsd logs it
# and `vmfs hosts` shows it, on a real three-host cluster
# (tests/cluster/lib.sh: a network namespace and a corosync per host, one
# shared LUN file).
#
#  - every vmfsd joins the volume's CPG group and logs it, and the others
#    joining; `vmfs hosts` shows all three live and in the group, no flag
#  - a host mounted --no-cluster: live on disk, not in the group, flagged
#  - host 2's link cut: the others drop it from the group and flag the
#    partition, nobody recovers it or breaks its locks, and it goes on
#    writing; link back: merged, nothing flagged
#  - corosync stopped on every host in the middle of a workload: the
#    volume goes on disk-only (writes on every host); restarted: every
#    vmfsd logs the fast path coming back and `vmfs hosts` shows all three
#  - forged messages (build/cpgforge in host 1's namespace: bad crc, too
#    short, bad magic, a length that lies, a newer version, an ASK from a
#    process that never said which host it is, a HELLO claiming a host
#    another member is): every vmfsd logs them and ignores them; the
#    volume is fine and fsck -n is clean at the end
#  - host 3's vmfsd stopped (SIGSTOP) for a moment: `vmfs hosts` there
#    says its vmfsd does not answer instead of hanging
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

FORGE=$VMFS_BUILD/cpgforge
[[ -x $FORGE ]] || fail "$FORGE missing: make $VMFS_BUILD/cpgforge"
LUN=$T_DIR/lun
mnt() { echo "$T_DIR/m$1"; }
vlog() { echo "$T_DIR/vmfsd-h$1-m$1.log"; }

# hosts_rows I: `vmfs hosts --json LUN` run on host I, one line per slot:
# "NAME STATE MEMBER FLAG" (MEMBER yes/no/-, FLAG the first word or -).
hosts_rows() {
	cl_vmfs "$1" hosts --json "$LUN" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for h in d["hosts"]:
    c = h["cluster"]
    m = "-" if c is None else ("yes" if c["member"] else "no")
    f = (h["flag"] or "-").split(":")[0].replace(" ", "_")
    print(h["hostname"], h["state"], m, f)
u = d["cluster_view"].get("unknown_members", [])
for x in u:
    print("unknown", x["nodeid"], x["flag"].replace(" ", "_"))'
}

# wait_log I PATTERN COUNT TIMEOUT_S: host I's vmfsd log has COUNT lines
# matching PATTERN (grep -E).
wait_log() {
	local i=$1 pat=$2 count=$3 timeout_s=$4 w
	for ((w = 0; w < timeout_s * 10; w++)); do
		(($(grep -cE "$pat" "$(vlog "$i")") >= count)) && return 0
		sleep 0.1
	done
	fail "host $i: after $timeout_s s, fewer than $count lines of '$pat' in its log"
}

# Writes on host I's mount go through and read back.
check_writes() {
	local i=$1 tag=$2 f
	f=$(mnt "$i")/$tag-h$i
	echo "$tag from h$i" >"$f" || fail "host $i: cannot write $f"
	sync "$f"
	[[ $(cat "$f") == "$tag from h$i" ]] || fail "host $i: $f reads back wrong"
}

step "three hosts join the volume's CPG group"
make_lun "$LUN" 2G
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
uuid=$("$VMFS" info --json "$LUN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
cl_up 3
for i in 1 2 3; do
	cl_vmfsd_mount "$i" "$LUN" "$(mnt "$i")"
done
for i in 1 2 3; do
	wait_log "$i" "cluster: joined CPG group vmfs-$uuid as node $i \(quorate yes\)" 1 10
	for j in 1 2 3; do
		[[ $i == "$j" ]] && continue
		wait_log "$i" "cluster: host h$j \(slot [0-9]+, node $j at $(cl_addr "$j")\) joined group" 1 10
	done
done
expect_eq "hosts seen from host 1" "$(hosts_rows 1 | sort)" \
	"$(printf 'h%s live yes -\n' 1 2 3)"
cl_vmfs 2 hosts "$LUN" >"$T_DIR/hosts.txt"
grep -qE "^1 +live +h2 .* yes +2 +yes +$(cl_addr 2) " "$T_DIR/hosts.txt" ||
	fail "vmfs hosts text on host 2 lacks h2 as member node 2 at $(cl_addr 2): $(cat "$T_DIR/hosts.txt")"
cl_vmfs 3 info "$(mnt 3)" >"$T_DIR/info.txt"
grep -q "joined CPG group vmfs-$uuid as node 3, quorate yes, 3 members" "$T_DIR/info.txt" ||
	fail "vmfs info on host 3: $(grep -A1 ^cluster "$T_DIR/info.txt")"
# A LUN with no mount here in this namespace: the cluster columns say so.
"$VMFS" hosts --no-watch "$LUN" | grep "no local mount" >/dev/null ||
	fail "vmfs hosts from the main namespace does not say 'no local mount'"

step "--no-cluster: live on disk, not in the group"
cl_umount 3 "$(mnt 3)"
wait_log 1 "cluster: host h3 .* left group" 1 10
cl_vmfsd_mount 3 "$LUN" "$(mnt 3)" --no-cluster
grep -q "not joining the corosync group .*--no-cluster" "$(vlog 3)" ||
	fail "host 3's log does not say it stays out of the group"
expect_eq "hosts with h3 --no-cluster" "$(hosts_rows 1 | sort)" \
	"$(printf '%s\n' 'h1 live yes -' 'h2 live yes -' 'h3 live no heartbeat_live_but_not_in_CPG')"
cl_umount 3 "$(mnt 3)"
cl_vmfsd_mount 3 "$LUN" "$(mnt 3)"
wait_log 1 "cluster: host h3 .* joined group" 2 10

step "partition: host 2's link down"
check_writes 2 before
cl_link_down 2
cl_wait_members 1 2 15 || fail "host 1's corosync still counts host 2 after 15 s"
t_log "host 1's corosync dropped host 2 after $CL_WAITED_MS ms"
wait_log 1 "cluster: host h2 .* left group" 1 10
wait_log 3 "cluster: host h2 .* left group" 1 10
expect_eq "hosts during the partition (host 1)" "$(hosts_rows 1 | sort)" \
	"$(printf '%s\n' 'h1 live yes -' 'h2 live no heartbeat_live_but_not_in_CPG' 'h3 live yes -')"
# Host 2 is alone in its group and goes on working on the disk.
check_writes 2 partitioned
check_writes 1 partitioned
hosts_rows 2 | grep "^h1 live no heartbeat_live_but_not_in_CPG" >/dev/null ||
	fail "host 2 does not see host 1 as partitioned: $(hosts_rows 2)"
for i in 1 3; do
	grep -q "being-replayed\|fenced" "$(vlog "$i")" &&
		fail "host $i recovered or fenced something during the partition: $(grep 'being-replayed\|fenced' "$(vlog "$i")")"
done
grep -q "fenced" "$(vlog 2)" && fail "host 2 fenced itself during the partition"

step "link back up: merged"
cl_link_up 2
cl_wait_members 1 3 30 || fail "host 1's corosync does not count host 2 again after 30 s"
wait_log 1 "cluster: host h2 .* joined group" 2 15
wait_log 2 "cluster: host h1 .* joined group" 2 15
expect_eq "hosts after the merge" "$(hosts_rows 3 | sort)" \
	"$(printf 'h%s live yes -\n' 1 2 3)"
[[ $(cat "$(mnt 1)/partitioned-h2") == "partitioned from h2" ]] ||
	fail "host 1 does not read what host 2 wrote during the partition"

step "corosync stopped on every host in the middle of a workload"
(
	for ((k = 0; k < 400; k++)); do
		echo "$k" >"$(mnt 1)/work-$k" || exit 1
		sleep 0.02
	done
) &
work=$!
T_PIDS+=("$work")
sleep 1
for i in 1 2 3; do
	cl_corosync_stop "$i"
done
for i in 1 2 3; do
	wait_log "$i" "cluster: corosync went away" 1 10
done
for i in 1 2 3; do
	check_writes "$i" disk-only
done
cl_vmfs 1 info "$(mnt 1)" | grep "^cluster  *not joined: corosync" >/dev/null ||
	fail "vmfs info on host 1 does not say the fast path is down: $(cl_vmfs 1 info "$(mnt 1)" | grep ^cluster)"
wait "$work" || fail "the workload on host 1 failed while corosync was down"
[[ $(cat "$(mnt 2)/work-399") == 399 ]] || fail "host 2 does not read the workload's last file"

step "corosync restarted: the fast path comes back"
for i in 1 2 3; do
	cl_corosync_start "$i"
done
for i in 1 2 3; do
	cl_wait_members "$i" 3 30 || fail "host $i's corosync sees '$(cl_members "$i")' after 30 s"
done
for i in 1 2 3; do
	wait_log "$i" "cluster: corosync is back: rejoined CPG group vmfs-$uuid as node $i .*the fast path comes back" 1 15
done
wait_log 1 "cluster: host h3 .* joined group" 3 15
wait_log 1 "cluster: host h2 .* joined group" 3 15
expect_eq "hosts after the restart" "$(hosts_rows 2 | sort)" \
	"$(printf 'h%s live yes -\n' 1 2 3)"

step "forged messages are logged and ignored"
h3=$(cl_vmfs 1 hosts --json --no-watch "$LUN" | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    if h["hostname"] == "h3":
        print("%s:%d:%d" % (h["host_uuid"], h["slot"], h["hb_gen"]))')
before=$(grep -c "cluster: ignored a message" "$(vlog 3)" || true)
# requests host 3 served so far (members may have asked it for locks)
req0=$(cl_vmfs 3 info --json "$(mnt 3)" | python3 -c '
import json, sys
print(json.load(sys.stdin)["cluster"]["requests"])')
cl_exec 1 "$FORGE" --group "vmfs-$uuid" --target "$h3" \
	crc short magic length newer ask hello >"$T_DIR/forge.out" 2>&1 ||
	fail "cpgforge failed: $(cat "$T_DIR/forge.out")"
for i in 1 2 3; do
	wait_log "$i" "cluster: ignored a message" $((before + 7)) 10
	for why in "malformed: bad crc" "malformed: shorter than a header" \
		"malformed: bad magic" "malformed: length field disagrees" \
		"newer protocol version" "sender never said which host it is" \
		"hello claims"; do
		grep -q "cluster: ignored a message from node 1 pid [0-9]* in group vmfs-$uuid: $why" "$(vlog "$i")" ||
			fail "host $i did not log '$why'"
	done
done
# The ASK for host 3 was not obeyed: nothing released, nothing handed.
expect_eq "requests host 3 took from the stranger" \
	"$(cl_vmfs 3 info --json "$(mnt 3)" | python3 -c '
import json, sys
c = json.load(sys.stdin)["cluster"]
print(c["requests"] - int(sys.argv[1]), c["rejected"] >= 7)' "$req0")" "0 True"
# The impostor's HELLO changed nobody's view: still three members, each
# the host its slot says.
expect_eq "hosts after the forgeries" "$(hosts_rows 1 | sort)" \
	"$(printf 'h%s live yes -\n' 1 2 3)"
for i in 1 2 3; do
	check_writes "$i" after-forge
done

step "a stopped vmfsd: vmfs hosts there says so instead of hanging"
pid3=${CL_VMFSD_PID[3]}
kill -STOP "$pid3"
out=$(timeout 20 nsenter --net="/run/netns/$(cl_ns 3)" -- "$VMFS" hosts --no-watch "$LUN") ||
	{ kill -CONT "$pid3"; fail "vmfs hosts on host 3 with its vmfsd stopped: status $?"; }
kill -CONT "$pid3"
grep -q "^cluster view: no answer" <<<"$out" ||
	fail "vmfs hosts with the local vmfsd stopped: $out"
check_writes 3 after-stop

step "unmount everything; fsck -n is clean"
for i in 1 2 3; do
	cl_umount "$i" "$(mnt "$i")"
done
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the test: $(tail -n 20 "$T_DIR/fsck.out")"
t_log "ok"
