#!/usr/bin/env bash
#
# t_iscsi: a volume on a real iSCSI LUN (tgtd in a network namespace,
# tests/iscsi/lib.sh), reached by three hosts in namespaces of their own
# through libiscsi, with a CHAP account whose secret comes from a file.
#
#  - bad input names the wrong part of the URL: an IQN the portal does not
#    have, a LUN number the target does not have, a portal nobody listens
#    on, a wrong CHAP secret, a CHAP file that is missing or malformed;
#  - mkfs, info (the probe: COMPARE AND WRITE tried and absent on tgt,
#    persistent reservations present, lock primitive reserve, fencing by
#    persistent reservations) and fsck -n over iSCSI;
#  - hosts 1 and 3 mount through portal A, host 2 through portal B; each
#    runs the multi-host metadata workload (tests/tools/mh_workload.py)
#    at once; every host sees the same tree and every host's files are
#    what its log says; every mount logged its fencing registration;
#  - `vmfs hosts`, `vmfs locks` and `vmfs journal dump` given the URL
#    read the LUN; after the hosts unmount, fsck -n is clean.
#
# shellcheck source=tests/iscsi/lib.sh
source "$(dirname "$0")/../iscsi/lib.sh"

WORKLOAD=$(dirname "$0")/../tools/mh_workload.py
SECS=${STORM_SECS:-15}
CHAP_USER=vmfs-test
CHAP_SECRET=s3cret-$RANDOM$RANDOM

step "a target with LUN 1 and a CHAP account; three hosts"
is_up 3 512M "$CHAP_USER" "$CHAP_SECRET"
printf 'username=%s\npassword=%s\n' "$CHAP_USER" "$CHAP_SECRET" >"$T_DIR/chap"
printf 'username=%s\npassword=wrong\n' "$CHAP_USER" >"$T_DIR/chap-bad"
printf '%s %s\n' "$CHAP_USER" "$CHAP_SECRET" >"$T_DIR/chap-malformed"
export VMFS_CHAP_FILE=$T_DIR/chap
URL_A=$(is_url "$IS_PORTAL_A")
URL_B=$(is_url "$IS_PORTAL_B")

step "bad input: each wrong part of the URL is named"
expect_fail 1 "no target of that name \(the IQN part" \
	cl_vmfs 1 info "iscsi://$IS_PORTAL_A/$IS_IQN-nope/1"
expect_fail 1 "no LUN of that number \(the LUN part" \
	cl_vmfs 1 info "iscsi://$IS_PORTAL_A/$IS_IQN/7"
expect_fail 1 "cannot reach the iSCSI portal \(the PORTAL part" \
	cl_vmfs 1 info "iscsi://$IS_PORTAL_A:3261/$IS_IQN/1"
expect_fail 1 "cannot reach the iSCSI portal" \
	cl_vmfs 1 info "iscsi://$CL_SUBNET.9/$IS_IQN/1"
expect_fail 1 "rejected the CHAP login" \
	cl_exec 1 env VMFS_CHAP_FILE="$T_DIR/chap-bad" "$VMFS" info "$URL_A"
expect_fail 1 "rejected the CHAP login" \
	cl_exec 1 env -u VMFS_CHAP_FILE "$VMFS" info "$URL_A"
expect_fail 1 "CHAP file .* cannot be read or is not" \
	cl_exec 1 env VMFS_CHAP_FILE="$T_DIR/chap-missing" "$VMFS" info "$URL_A"
expect_fail 1 "CHAP file .* cannot be read or is not" \
	cl_exec 1 env VMFS_CHAP_FILE="$T_DIR/chap-malformed" "$VMFS" info "$URL_A"
expect_fail 1 "iSCSI URL not understood" cl_vmfs 1 info "iscsi://$IS_PORTAL_A/"

step "mkfs, info and fsck over iSCSI"
is_mkfs "$URL_A" --max-hosts 8 --journal-size 4M
cl_vmfs 2 info "$URL_B" >"$T_DIR/info.out" || fail "vmfs info $URL_B failed"
grep -q "^LUN backend *iscsi: COMPARE AND WRITE no, persistent reservations yes" "$T_DIR/info.out" ||
	fail "info does not show the probe: $(grep -A2 'LUN backend' "$T_DIR/info.out")"
grep -q "^lock primitive *reserve" "$T_DIR/info.out" || fail "info: no lock primitive line"
grep -q "^storage fencing *persistent reservations" "$T_DIR/info.out" ||
	fail "info: no storage fencing line"
cl_vmfs 2 info --json "$URL_B" | python3 -c '
import json, sys
b = json.load(sys.stdin)["lun_backend"]
assert b["kind"] == "iscsi" and b["compare_and_write"] == "no", b
assert b["persistent_reservations"] == "yes" and "WE-AR" in b["pr_types"], b
' || fail "info --json: lun_backend is not as probed"
cl_vmfs 3 fsck -n "$URL_A" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n of a fresh volume over iSCSI: $(cat "$T_DIR/fsck.out")"

step "three hosts mount over two portals and run the metadata workload"
cl_vmfsd_mount 1 "$URL_A" "$T_DIR/m1"
cl_vmfsd_mount 2 "$URL_B" "$T_DIR/m2"
cl_vmfsd_mount 3 "$URL_A" "$T_DIR/m3"
for i in 1 2 3; do
	grep -q "storage fencing: key 0x[0-9a-f]* registered" "$T_DIR"/vmfsd-h$i-m$i.log ||
		fail "host $i did not log its fencing registration"
done
pids=()
for i in 1 2 3; do
	python3 "$WORKLOAD" "$T_DIR/m$i" "h$i" "$SECS" "$RANDOM" "$T_DIR/state-h$i.json" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a host's workload failed"
done

step "every host sees the same tree; every file is what its writer wrote"
tree() {
	(cd "$1" && find . -path ./lost+found -prune -o -printf '%p %s %n\n' | sort)
}
tree "$T_DIR/m1" >"$T_DIR/tree-1"
for i in 2 3; do
	tree "$T_DIR/m$i" >"$T_DIR/tree-$i"
	cmp -s "$T_DIR/tree-1" "$T_DIR/tree-$i" ||
		fail "host $i sees another tree than host 1: $(diff "$T_DIR/tree-1" "$T_DIR/tree-$i" | head)"
done
for i in 1 2 3; do
	python3 - "$T_DIR/m$(( i % 3 + 1 ))" "$T_DIR/state-h$i.json" <<'EOF' ||
import json, os, sys
mnt, state = sys.argv[1:3]
st = json.load(open(state))
bad = [rel for rel, data in st["files"].items()
       if open(os.path.join(mnt, rel)).read() != data]
print("%d files checked, %d differ %s" % (len(st["files"]), len(bad), bad[:3]))
sys.exit(1 if bad else 0)
EOF
		fail "host $i's files are not what its log says"
done

step "hosts, locks and journal dump given the URL"
cl_vmfs 1 hosts "$URL_A" >"$T_DIR/hosts.out" || fail "vmfs hosts $URL_A failed"
n=$(grep -cE "^[0-9]+ +live " "$T_DIR/hosts.out" || true)
[[ $n == 3 ]] || fail "vmfs hosts shows $n live slots, not 3: $(cat "$T_DIR/hosts.out")"
cl_vmfs 2 locks "$URL_B" >"$T_DIR/locks.out" || fail "vmfs locks $URL_B failed"
cl_vmfs 3 journal dump "$URL_A" >"$T_DIR/journal.out" 2>&1 ||
	fail "vmfs journal dump $URL_A failed: $(tail -3 "$T_DIR/journal.out")"

step "unmount; fsck -n is clean"
for i in 1 2 3; do
	cl_umount "$i" "$T_DIR/m$i"
done
cl_vmfs 1 fsck -n "$URL_A" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the workload: $(tail -5 "$T_DIR/fsck.out")"
t_log "ok"
