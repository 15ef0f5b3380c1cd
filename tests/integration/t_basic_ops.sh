#!/usr/bin/env bash
#
# t_basic_ops: every file system operation a VM host or an admin uses,
# through a mount, each checked against a reference copy on the host's
# own file system; then umount, mount, and everything (data, modes,
# owners, times, links, xattrs) must be exactly as it was.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
REF=$T_DIR/ref
mkdir -p "$REF"

# renameat2 FLAG SRC DST: prints OK or the errno name (flag: noreplace|exchange).
renameat2() {
	python3 - "$@" <<'EOF'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
flags = {"noreplace": 1, "exchange": 2}[sys.argv[1]]
r = libc.renameat2(-100, os.fsencode(sys.argv[2]), -100, os.fsencode(sys.argv[3]), flags)
print("OK" if r == 0 else errno.errorcode[ctypes.get_errno()])
EOF
}

# zero_range FILE OFF LEN: what a punched hole looks like, for the reference.
zero_range() {
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes(int(sys.argv[3])))' "$@"
}

# same FILE: the mounted file and its reference copy are identical.
same() {
	cmp "$MP/$1" "$REF/$1" || fail "$1 differs from its reference copy"
}

# manifest DIR: every name, type, mode, owner, size, link count, mtime,
# symlink target, file checksum and xattr under DIR.
manifest() {
	(
		cd "$1"
		find . -printf '%P|%y|%m|%U|%G|%s|%n|%T@|%l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
		getfattr -R -P -h -d -m - . 2>/dev/null | grep -v '^$' || true
	)
}

step "mkfs and mount"
make_lun "$LUN" 4G
t_mkfs "$LUN" --label basic-ops
t_mount "$LUN" "$MP"
df_free0=$(stat -f -c %a "$MP")

step "mkdir -p nested"
mkdir -p "$MP/a/b/c/d/e" "$REF/a/b/c/d/e"
[[ -d $MP/a/b/c/d/e ]] || fail "nested directory missing"
expect_eq "nlink of a/b (one subdir)" "$(stat -c %h "$MP/a/b")" 3

step "small, medium and multi-MiB files"
head -c 100 /dev/urandom >"$REF/small"
head -c $((200 * 1024 + 7)) /dev/urandom >"$REF/medium"
head -c $((5 * 1024 * 1024 + 12345)) /dev/urandom >"$REF/big"
for f in small medium big; do
	cp "$REF/$f" "$MP/$f"
	same "$f"
	expect_eq "size of $f" "$(stat -c %s "$MP/$f")" "$(stat -c %s "$REF/$f")"
done

step "append across inline -> small blocks -> file blocks"
head -c 50 /dev/urandom >"$REF/grow"
cp "$REF/grow" "$MP/grow"
for n in 1000 $((300 * 1024)) $((3 * 1024 * 1024)) 17; do
	head -c "$n" /dev/urandom >"$T_DIR/chunk"
	cat "$T_DIR/chunk" >>"$REF/grow"
	cat "$T_DIR/chunk" >>"$MP/grow"
	same grow
done

step "overwrite in the middle"
head -c 70000 /dev/urandom >"$T_DIR/chunk"
for f in medium big grow; do
	dd if="$T_DIR/chunk" of="$REF/$f" bs=70000 count=1 seek=4097 oflag=seek_bytes conv=notrunc status=none
	dd if="$T_DIR/chunk" of="$MP/$f" bs=70000 count=1 seek=4097 oflag=seek_bytes conv=notrunc status=none
	same "$f"
done

step "truncate down and up: bytes past the old size read as zeros"
for f in big grow; do
	truncate -s 1234567 "$MP/$f" "$REF/$f"
	truncate -s 4000000 "$MP/$f" "$REF/$f"
	same "$f"
	cmp -n $((4000000 - 1234567)) <(tail -c +1234568 "$MP/$f") /dev/zero ||
		fail "$f: bytes after truncate-up are not zeros"
done
truncate -s 10 "$MP/small" "$REF/small"
truncate -s 3000 "$MP/small" "$REF/small"
same small

step "chmod, chown, touch -d"
chmod 0640 "$MP/small"
chown 1234:5678 "$MP/small"
touch -m -d "2001-02-03 04:05:06.789123456 UTC" "$MP/small"
touch -a -d "2002-03-04 05:06:07 UTC" "$MP/small"
expect_eq "mode,uid,gid" "$(stat -c %a,%u,%g "$MP/small")" "640,1234,5678"
expect_eq "mtime" "$(TZ=UTC stat -c %y "$MP/small")" "2001-02-03 04:05:06.789123456 +0000"
expect_eq "atime" "$(TZ=UTC stat -c %X "$MP/small")" "$(date -d "2002-03-04 05:06:07 UTC" +%s)"
chmod 1777 "$MP/a"
expect_eq "sticky dir mode" "$(stat -c %a "$MP/a")" 1777

step "hard links"
ln "$MP/medium" "$MP/a/medium-link"
expect_eq "nlink after ln" "$(stat -c %h "$MP/medium")" 2
expect_eq "same inode" "$(stat -c %i "$MP/a/medium-link")" "$(stat -c %i "$MP/medium")"
echo "via the link" >>"$MP/a/medium-link"
echo "via the link" >>"$REF/medium"
same medium
ln "$MP/medium" "$MP/medium-link2"
rm "$MP/medium-link2"
expect_eq "nlink after rm of a link" "$(stat -c %h "$MP/medium")" 2

step "symlinks"
ln -s ../small "$MP/a/sym"
expect_eq "readlink" "$(readlink "$MP/a/sym")" "../small"
cmp "$MP/a/sym" "$MP/small" || fail "reading through a symlink"
long_target=$(printf 'x%.0s' {1..1000})/target
ln -s "$long_target" "$MP/longsym"
expect_eq "readlink of a 1007-byte target" "$(readlink "$MP/longsym")" "$long_target"

step "mv within and across directories, onto an existing file"
cp "$REF/big" "$MP/mvme" && cp "$REF/big" "$REF/mvme"
mv "$MP/mvme" "$MP/mvme2" && mv "$REF/mvme" "$REF/mvme2"
[[ ! -e $MP/mvme ]] || fail "old name still there after mv"
same mvme2
mv "$MP/mvme2" "$MP/a/b/mvme3" && mv "$REF/mvme2" "$REF/a/b/mvme3"
same a/b/mvme3
echo victim >"$MP/victim" && echo victim >"$REF/victim"
mv "$MP/a/b/mvme3" "$MP/victim" && mv "$REF/a/b/mvme3" "$REF/victim"
same victim
mkdir "$MP/dirmv" "$REF/dirmv"
mv "$MP/dirmv" "$MP/a/b/c/dirmv" && mv "$REF/dirmv" "$REF/a/b/c/dirmv"
expect_eq "parent of a moved dir" "$(cd "$MP/a/b/c/dirmv/.." && pwd -P)" "$MP/a/b/c"

step "renameat2 RENAME_NOREPLACE and RENAME_EXCHANGE"
echo one >"$MP/x1" && echo two >"$MP/x2"
expect_eq "NOREPLACE onto an existing name" "$(renameat2 noreplace "$MP/x1" "$MP/x2")" EEXIST
expect_eq "x2 untouched" "$(cat "$MP/x2")" two
expect_eq "NOREPLACE onto a new name" "$(renameat2 noreplace "$MP/x1" "$MP/x3")" OK
expect_eq "EXCHANGE" "$(renameat2 exchange "$MP/x2" "$MP/x3")" OK
expect_eq "x2 after exchange" "$(cat "$MP/x2")" one
expect_eq "x3 after exchange" "$(cat "$MP/x3")" two
mkdir "$MP/xd" && touch "$MP/xd/inside"
expect_eq "EXCHANGE file and dir" "$(renameat2 exchange "$MP/x2" "$MP/xd")" OK
[[ -f $MP/x2/inside && -f $MP/xd ]] || fail "file/dir exchange did not swap"
expect_eq "EXCHANGE with a missing name" "$(renameat2 exchange "$MP/x3" "$MP/nonexistent")" ENOENT
rm -r "$MP/x2" "$MP/x3" "$MP/xd"

step "rm, rmdir"
expect_fail 1 "not empty" rmdir "$MP/a/b"
touch "$MP/a/b/c/d/e/f"
rm "$MP/a/b/c/d/e/f"
rmdir "$MP/a/b/c/d/e"
rmdir "$MP/a/b/c/d" && rmdir "$REF/a/b/c/d/e" "$REF/a/b/c/d"
[[ ! -e $MP/a/b/c/d ]] || fail "rmdir left the directory"

step "mknod fifo"
mknod "$MP/fifo" p
[[ -p $MP/fifo ]] || fail "fifo is not a fifo"

step "extended attributes"
setfattr -n user.color -v blue "$MP/small"
setfattr -n user.empty "$MP/small"
setfattr -n trusted.vm -v 0x0001020304 "$MP/small"
expect_eq "getfattr user.color" "$(getfattr --absolute-names --only-values -n user.color "$MP/small")" blue
expect_eq "getfattr trusted.vm" \
	"$(getfattr --absolute-names -e hex -n trusted.vm "$MP/small" | sed -n 's/^trusted.vm=//p')" 0x0001020304
setfattr -n user.color -v green "$MP/small"
expect_eq "replaced xattr" "$(getfattr --absolute-names --only-values -n user.color "$MP/small")" green
setfattr -n user.gone -v x "$MP/small"
setfattr -x user.gone "$MP/small"
expect_fail 1 "No such attribute" getfattr --absolute-names -n user.gone "$MP/small"
setfattr -n user.dir -v d "$MP/a"

step "fallocate -l, --keep-size, -p"
fallocate -l 10M "$MP/prealloc"
expect_eq "fallocate -l size" "$(stat -c %s "$MP/prealloc")" $((10 << 20))
(($(alloc_bytes "$MP/prealloc") >= 10 << 20)) || fail "fallocate -l allocated $(alloc_bytes "$MP/prealloc") bytes"
cmp -n $((10 << 20)) "$MP/prealloc" /dev/zero || fail "preallocated file does not read as zeros"
head -c 1000 /dev/urandom >"$REF/keep"
cp "$REF/keep" "$MP/keep"
fallocate --keep-size -o 0 -l 4M "$MP/keep"
expect_eq "fallocate --keep-size keeps the size" "$(stat -c %s "$MP/keep")" 1000
(($(alloc_bytes "$MP/keep") >= 4 << 20)) || fail "fallocate --keep-size allocated $(alloc_bytes "$MP/keep") bytes"
same keep
head -c $((8 << 20)) /dev/urandom >"$REF/holes"
cp "$REF/holes" "$MP/holes"
sync "$MP/holes"
before=$(alloc_bytes "$MP/holes")
fallocate -p -o $((1 << 20)) -l $((3 << 20)) "$MP/holes"
zero_range "$REF/holes" $((1 << 20)) $((3 << 20))
fallocate -p -o 5000 -l 300000 "$MP/holes"
zero_range "$REF/holes" 5000 300000
fallocate -p -o $((6 << 20)) -l $((3 << 20)) "$MP/holes"
zero_range "$REF/holes" $((6 << 20)) $((2 << 20))
same holes
expect_eq "size after punching past EOF" "$(stat -c %s "$MP/holes")" $((8 << 20))
after=$(alloc_bytes "$MP/holes")
((after <= before - (3 << 20))) || fail "punching 3 MiB freed only $((before - after)) bytes"

step "O_DIRECT with 1 MiB and 4 KiB blocks"
head -c $((16 << 20)) /dev/urandom >"$REF/direct"
dd if="$REF/direct" of="$MP/direct" bs=1M oflag=direct status=none
dd if="$MP/direct" of="$T_DIR/direct.back" bs=4k iflag=direct status=none
cmp "$REF/direct" "$T_DIR/direct.back" || fail "O_DIRECT 1M write / 4K read"
dd if="$REF/big" of="$MP/direct" bs=4k count=256 seek=100 oflag=direct conv=notrunc status=none
dd if="$REF/big" of="$REF/direct" bs=4k count=256 seek=100 conv=notrunc status=none
dd if="$MP/direct" of="$T_DIR/direct.back" bs=1M iflag=direct status=none
cmp "$REF/direct" "$T_DIR/direct.back" || fail "O_DIRECT 4K write / 1M read"

step "fsync, sync and statfs"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, os.urandom(1 << 20)); os.fsync(fd); os.fdatasync(fd); os.close(fd)' "$MP/fsynced"
sync
df_free1=$(stat -f -c %a "$MP")
bsize=$(stat -f -c %S "$MP")
used_mib=$(((df_free0 - df_free1) * bsize >> 20))
((used_mib >= 30)) || fail "statfs: free space dropped by only $used_mib MiB after writing ~40 MiB"
dd if=/dev/zero of="$MP/space" bs=1M count=64 status=none conv=fsync
df_free2=$(stat -f -c %a "$MP")
((((df_free1 - df_free2) * bsize >> 20) >= 63)) || fail "statfs: 64 MiB write moved free space by $(((df_free1 - df_free2) * bsize >> 20)) MiB"
rm "$MP/space"
sync
df_free3=$(stat -f -c %a "$MP")
((((df_free3 - df_free2) * bsize >> 20) >= 63)) || fail "statfs: deleting 64 MiB gave back $(((df_free3 - df_free2) * bsize >> 20)) MiB"

# listing DIR: names as ls(1) gets them from readdir, which is what is tested.
listing() {
	# shellcheck disable=SC2012
	ls "$1" | LC_ALL=C sort
}

step "a directory with 2000 entries"
mkdir "$MP/many"
(cd "$MP/many" && seq -f 'entry-%04g' 1 2000 | xargs touch)
expect_eq "entries listed" "$(listing "$MP/many" | wc -l)" 2000
expect_eq "names listed" "$(listing "$MP/many" | sha256sum)" \
	"$(seq -f 'entry-%04g' 1 2000 | LC_ALL=C sort | sha256sum)"
(cd "$MP/many" && seq -f 'entry-%04g' 1 2 2000 | xargs rm)
expect_eq "names left after deleting the odd ones" "$(listing "$MP/many" | sha256sum)" \
	"$(seq -f 'entry-%04g' 2 2 2000 | LC_ALL=C sort | sha256sum)"
for n in 0002 1000 2000; do
	[[ -e $MP/many/entry-$n ]] || fail "lookup of entry-$n after deletes"
done
expect_eq "nlink of a directory with no subdirs" "$(stat -c %h "$MP/many")" 2

step "umount, mount: everything is identical"
manifest "$MP" >"$T_DIR/manifest.before"
t_umount "$MP"
t_mount "$LUN" "$MP"
manifest "$MP" >"$T_DIR/manifest.after"
diff -u "$T_DIR/manifest.before" "$T_DIR/manifest.after" >&2 ||
	fail "the volume changed across umount/mount (diff above)"
for f in small medium big grow holes keep victim direct; do
	same "$f"
done

step "clean umount"
t_umount "$MP"
t_log "PASS"
