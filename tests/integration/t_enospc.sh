#!/usr/bin/env bash
#
# t_enospc: a full volume through a real mount (issue #8, part 2).
#
#  - df: the free space statvfs reports before the fill is exactly what
#    `dd` can write into one large file, and 0 after it, although small
#    blocks are left;
#  - the issue's recipe: on the full volume a new file gets 8 x 64 KiB and
#    an fsync, then 64 KiB appends until one fails with ENOSPC (and one
#    more after it); the file keeps its size and bytes while mounted and
#    after a remount, deleting it leaks nothing, and `vmfs fsck -n` exits
#    0.  Once with buffered writes, once with O_DIRECT;
#  - the small-block area full but file blocks free: small files are still
#    created and written, a new directory still takes names (small files
#    leave the area's reserve for directories), fsck -n is clean and all
#    of it reads back after a remount;
#  - every inode in use (mkfs --inodes 16): a create and a mkdir fail with
#    ENOSPC while blocks are free (df -i shows 0, df does not), vmfsd logs
#    once that the inodes ran out and what to do, and a remove lets the
#    next create through once the kernel forgot the removed file.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt

fsck_clean() {
	local rc=0
	"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || rc=$?
	[[ $rc == 0 ]] || fail "vmfs fsck -n exited $rc: $(cat "$T_DIR/fsck.out")"
}

# free_bytes: what statvfs says an unprivileged writer can still get.
free_bytes() {
	python3 -c 'import os, sys; s = os.statvfs(sys.argv[1]); print(s.f_bavail * s.f_frsize)' "$MP"
}

# grow FILE MODE: the issue's appends (MODE buffered or direct).  Prints
# "size errno", the bytes written before the first failure and its errno.
grow() {
	python3 - "$@" <<'EOF'
import errno, mmap, os, sys
path, mode = sys.argv[1], sys.argv[2]
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
if mode == "direct":
    flags |= os.O_DIRECT
buf = mmap.mmap(-1, 65536)          # page aligned, as O_DIRECT wants
fd = os.open(path, flags, 0o644)
for i in range(8):
    buf[:] = bytes([i + 1]) * 65536
    assert os.write(fd, buf) == 65536
os.fsync(fd)
written, err = 8 * 65536, 0
while not err:
    buf[:] = bytes([(written >> 16) % 251 + 1]) * 65536
    try:
        n = os.write(fd, buf)
        assert n == 65536, "short write %d" % n
        written += n
    except OSError as e:
        err = e.errno
# The issue's variant: one more failed append.
try:
    os.write(fd, buf)
    sys.exit("the append after ENOSPC succeeded")
except OSError as e:
    assert e.errno == err, e
size = os.fstat(fd).st_size
os.close(fd)
print(size if size == written else "fstat %d, written %d" % (size, written),
      errno.errorcode.get(err, err))
EOF
}

# check FILE SIZE: the file holds exactly what grow wrote.
check() {
	python3 - "$@" <<'EOF' || fail "$1 does not hold what was written"
import sys
path, size = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
assert len(data) == size, "%s: %d bytes, want %d" % (path, len(data), size)
for off in range(0, size, 65536):
    want = off // 65536 + 1 if off < 8 * 65536 else (off >> 16) % 251 + 1
    chunk = data[off:off + 65536]
    assert chunk == bytes([want]) * len(chunk), "%s: bad bytes at %d" % (path, off)
EOF
}

step "mkfs as in the issue, mount"
make_lun "$LUN" 256M
t_mkfs "$LUN" -f -H 8 -j 4M
t_mount "$LUN" "$MP"

step "df before the fill is what dd can write"
free0=$(free_bytes)
((free0 > 0)) || fail "statvfs reports no free space on a new volume"
dd if=/dev/zero of="$MP/fill" bs=1M 2>"$T_DIR/dd.err" &&
	fail "dd filled the volume without ENOSPC"
grep -q "No space left" "$T_DIR/dd.err" || fail "dd did not stop at ENOSPC: $(cat "$T_DIR/dd.err")"
expect_eq "bytes dd wrote vs statvfs free before" "$(stat -c %s "$MP/fill")" "$free0"
expect_eq "statvfs free after the fill" "$(free_bytes)" 0

for mode in buffered direct; do
	f=$MP/v-$mode
	step "$mode: appends until ENOSPC on the full volume"
	read -r size err < <(grow "$f" "$mode") || fail "grow $f failed"
	expect_eq "$mode: error of the failed append" "$err" ENOSPC
	[[ $size =~ ^[0-9]+$ ]] || fail "$mode: $size"
	((size >= 8 * 65536)) || fail "$mode: the fsync'ed 512 KiB shrank to $size"
	expect_eq "$mode: stat size" "$(stat -c %s "$f")" "$size"
	check "$f" "$size"

	step "$mode: remount, same file; delete it; fsck -n clean"
	t_umount "$MP"
	t_mount "$LUN" "$MP"
	expect_eq "$mode: stat size after remount" "$(stat -c %s "$f")" "$size"
	check "$f" "$size"
	rm "$f"
	t_umount "$MP"
	fsck_clean
	t_mount "$LUN" "$MP"
done

step "small-block area full, file blocks free: small files still work"
rm "$MP/fill"
python3 - "$MP" <<'EOF' || fail "small files on a full small-block area"
import os, sys
mp = sys.argv[1]
os.mkdir(mp + "/s")
# 256 MiB volume: 128 small blocks; 200 files of 64 KiB need more.
for i in range(200):
    with open("%s/s/f%03d" % (mp, i), "wb") as f:
        f.write(bytes([i % 251 + 1]) * (65536 - i))
# Small files leave the part of the area kept for directories: a new
# directory still takes names.
os.mkdir(mp + "/d")
for i in range(50):
    with open("%s/d/n%02d" % (mp, i), "wb") as f:
        f.write(b"n" * i)
EOF
t_umount "$MP"
fsck_clean
t_mount "$LUN" "$MP"
python3 - "$MP" <<'EOF' || fail "small files changed across the remount"
import sys
mp = sys.argv[1]
for i in range(200):
    data = open("%s/s/f%03d" % (mp, i), "rb").read()
    assert data == bytes([i % 251 + 1]) * (65536 - i), "f%03d" % i
for i in range(50):
    assert open("%s/d/n%02d" % (mp, i), "rb").read() == b"n" * i, "n%02d" % i
EOF
t_umount "$MP"
fsck_clean

step "every inode used: creates fail with ENOSPC, the log says why and what to do"
LUN2=$T_DIR/lun2
make_lun "$LUN2" 64M
t_mkfs "$LUN2" -f -H 8 -j 4M --inodes 16
t_mount "$LUN2" "$MP"
python3 - "$MP" >"$T_DIR/inodes.out" 2>&1 <<'EOF' || fail "inodes: $(cat "$T_DIR/inodes.out")"
import errno, os, sys
mp = sys.argv[1]
n = 0
while True:
    try:
        open("%s/i%03d" % (mp, n), "wb").close()
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
        break
    n += 1
    assert n < 64, "more files than inodes"
# Blocks are left: df says so, df -i does not.
s = os.statvfs(mp)
assert s.f_bavail > 0 and s.f_favail == 0, (s.f_bavail, s.f_favail)
try:
    os.mkdir(mp + "/d")
    sys.exit("mkdir with no inode left succeeded")
except OSError as e:
    assert e.errno == errno.ENOSPC, e
# One removed, one created: once the kernel let go of the removed file
# (until then it is an orphan that keeps its inode).
import time
os.unlink("%s/i000" % mp)
for k in range(50):
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2")
    try:
        open(mp + "/again", "wb").close()
        break
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
        time.sleep(0.1)
else:
    sys.exit("no create went through 5 s after a remove")
print(n)
EOF
grep -q "no free inode: all 16 are in use.*vmfs mkfs --inodes N" "$T_DIR/vmfsd-mnt.log" ||
	fail "vmfsd did not log that the inodes ran out: $(tail -n 3 "$T_DIR/vmfsd-mnt.log")"
expect_eq "'no free inode' lines logged (once a minute at most)" \
	"$(grep -c "no free inode" "$T_DIR/vmfsd-mnt.log")" 1
t_umount "$MP"
"$VMFS" fsck -n "$LUN2" >"$T_DIR/fsck2.out" 2>&1 || fail "vmfs fsck -n: $(cat "$T_DIR/fsck2.out")"
t_log "$(cat "$T_DIR/inodes.out") files took every inode; ok"
