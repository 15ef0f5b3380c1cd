#!/usr/bin/env bash
#
# t_fio_verify: fio writes checksummed blocks (crc32c in every block
# header) through the mount, O_DIRECT with libaio and buffered, sequential
# and random, all four jobs at once, and reads them back (do_verify);
# after umount/mount a verify-only pass must find every block intact on
# the LUN.  VMFS_FIO_SCALE=N multiplies the sizes.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v fio >/dev/null || fail "fio is not installed (apt-get install fio)"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
SCALE=${VMFS_FIO_SCALE:-1}
JOBS=$T_DIR/verify.fio

step "mkfs and mount"
make_lun "$LUN" 4G
t_mkfs "$LUN"
t_mount "$LUN" "$MP"

# randrepeat (the default) makes the random offsets the same in the
# verify-only pass; verify_fatal stops at the first bad block.
cat >"$JOBS" <<EOF
[global]
directory=$MP
verify=crc32c
do_verify=1
verify_fatal=1
verify_backlog=0
randrepeat=1
verify_state_save=0

[direct-seq]
ioengine=libaio
direct=1
iodepth=16
rw=write
bs=1M
size=$((192 * SCALE))M

[direct-rand]
ioengine=libaio
direct=1
iodepth=16
rw=randwrite
bs=4k
size=$((48 * SCALE))M

[buffered-seq]
ioengine=psync
rw=write
bs=128k
size=$((128 * SCALE))M

[buffered-rand]
ioengine=psync
rw=randwrite
bs=16k
size=$((64 * SCALE))M
fsync_on_close=1
EOF

# run_fio WHAT ARGS...: fio must exit 0 and report no verify error.
run_fio() {
	local what=$1 out=$T_DIR/fio-$1.out
	shift
	if ! (cd "$T_DIR" && fio --output="$out" "$@" "$JOBS"); then
		cat "$out" >&2 || true
		fail "fio $what failed (job file $JOBS)"
	fi
	if grep -qiE "verify: bad|crc32c: verify failed|err= *[1-9]" "$out"; then
		cat "$out" >&2
		fail "fio $what reported an error (job file $JOBS)"
	fi
	# A verify that read nothing would pass anything: each job must read.
	if (($(grep -c "read: IOPS" "$out") != 4)); then
		cat "$out" >&2
		fail "fio $what: not every job read its data back"
	fi
}

step "write and verify through the mount"
run_fio write

step "umount, mount, verify only"
t_umount "$MP"
t_mount "$LUN" "$MP"
run_fio verify --verify_only

step "clean umount"
t_umount "$MP"
t_log "PASS"
