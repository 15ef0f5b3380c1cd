#!/usr/bin/env bash
#
# t_install: `make install DESTDIR=... PREFIX=/usr` installs exactly the
# binaries, the mount.vmfs/fsck.vmfs/mkfs.vmfs links, the man pages, the
# bash completion, the systemd unit (checked by systemd-analyze verify)
# and the docs, and `make uninstall` removes them all.
# From the installed tree, `mkfs -t vmfs`, `fsck -t vmfs` and (in a private
# mount namespace where the installed sbin is overlaid on /usr/sbin, so
# the host's /sbin is never changed) `mount -t vmfs -o ...` work: -o
# options reach vmfsd, unknown ones fail with mount(8)'s 32, `ro` (on
# the command line or an fstab line, with _netdev,nofail) mounts
# read-only.  Also: vmfsd --version matches vmfs --version, every man page
# renders without groff warnings and names every option of its command,
# the bash completion completes commands and options, and the corruption
# tool (build/vmfs-corrupt) is neither installed nor a vmfs command.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

DEST=$T_DIR/dest
SBIN=$DEST/usr/sbin
LUN=$T_DIR/lun
MP=$T_DIR/mnt

# make TARGET with the binaries under test: -o keeps make from rebuilding
# them (from build/, when they came from build-san/, say).
t_make() {
	make -s -C "$T_ROOT" -o "$VMFS_BIN/vmfs" -o "$VMFS_BIN/vmfsd" "$1" \
		DESTDIR="$DEST" PREFIX=/usr BIN="$VMFS_BIN" >"$T_DIR/make.out" 2>&1 ||
		fail "make $1 failed: $(cat "$T_DIR/make.out")"
}

step "make install DESTDIR=$DEST PREFIX=/usr"
t_make install

expected() {
	local f
	printf '%s\n' usr/sbin/vmfs usr/sbin/vmfsd usr/sbin/mount.vmfs \
		usr/sbin/fsck.vmfs usr/sbin/mkfs.vmfs \
		usr/share/bash-completion/completions/vmfs \
		usr/lib/systemd/system/vmfs@.service
	for f in vmfs.8 vmfsd.8 mount.vmfs.8 fsck.vmfs.8 mkfs.vmfs.8; do
		echo "usr/share/man/man8/$f"
	done
	for f in "$T_ROOT"/README.md "$T_ROOT"/docs/*.md; do
		echo "usr/share/doc/vmfs/$(basename "$f")"
	done
}
installed() {
	(cd "$DEST" && find . -type f -o -type l) | sed 's|^\./||' | sort
}
diff -u <(expected | sort) <(installed) >"$T_DIR/list.diff" ||
	fail "installed files differ from the expected list: $(cat "$T_DIR/list.diff")"
for h in mount.vmfs fsck.vmfs mkfs.vmfs; do
	expect_eq "$h link" "$(readlink "$SBIN/$h")" vmfs
done

step "the systemd unit runs the installed vmfsd and passes systemd-analyze verify"
unit=$DEST/usr/lib/systemd/system/vmfs@.service
grep -qx 'ExecStart=/usr/sbin/vmfsd --foreground --lun ${LUN} --mountpoint %f $VMFSD_OPTS' "$unit" ||
	fail "vmfs@.service ExecStart: $(grep ExecStart "$unit")"
grep -qx 'Type=notify' "$unit" || fail "vmfs@.service is not Type=notify"
if command -v systemd-analyze >/dev/null; then
	# An instance of the template, its vmfsd the one in DESTDIR (verify
	# checks that the command exists); no man pages in the system yet.
	mkdir -p "$T_DIR/units"
	sed "s#/usr/sbin/vmfsd#$SBIN/vmfsd#" "$unit" >"$T_DIR/units/vmfs@vmfs-volumes-ds1.service"
	systemd-analyze verify --man=no "$T_DIR/units/vmfs@vmfs-volumes-ds1.service" \
		>"$T_DIR/verify.out" 2>&1 || fail "systemd-analyze verify: $(cat "$T_DIR/verify.out")"
	[[ ! -s $T_DIR/verify.out ]] || fail "systemd-analyze verify warns: $(cat "$T_DIR/verify.out")"
else
	t_log "no systemd-analyze: vmfs@.service not verified"
fi

step "vmfsd --version is vmfs --version"
v=$("$SBIN/vmfs" --version)
expect_eq "vmfsd --version" "$("$SBIN/vmfsd" --version)" "vmfsd ${v#vmfs }"
[[ $v =~ ^vmfs\ [0-9]+\.[0-9]+\.[0-9]+\ \(on-disk\ format\ [0-9]+\.[0-9]+\)$ ]] ||
	fail "vmfs --version printed '$v'"
[[ $("$SBIN/mkfs.vmfs" -V) == "mkfs.vmfs from $v" ]] ||
	fail "mkfs.vmfs -V printed '$("$SBIN/mkfs.vmfs" -V)'"

step "man pages render without warnings"
command -v groff >/dev/null || fail "no groff: run 'make deps' (groff-base)"
for page in "$T_ROOT"/docs/man/*.8; do
	groff -man -Tutf8 -ww -z "$page" 2>"$T_DIR/groff.err" ||
		fail "groff failed on $page: $(cat "$T_DIR/groff.err")"
	[[ ! -s $T_DIR/groff.err ]] ||
		fail "groff warns about $page: $(cat "$T_DIR/groff.err")"
	if command -v man >/dev/null; then
		MANWIDTH=80 man --warnings -l "$page" >/dev/null 2>"$T_DIR/man.err" ||
			fail "man -l $page failed: $(cat "$T_DIR/man.err")"
		[[ ! -s $T_DIR/man.err ]] ||
			fail "man --warnings -l $page: $(cat "$T_DIR/man.err")"
	fi
done

# The long options CMD... --help shows, and --help, one a line.
help_opts() {
	{
		"$@" --help | grep -oE -- '--[a-z][a-z-]+' || true
		echo --help
	} | sort -u
}

# Every long option a command's --help shows is in its page: the pages
# follow the code.
page_has_options() {
	local page=$1 o text opts
	shift
	text=$(MANWIDTH=200 man -l "$T_ROOT/docs/man/$page" 2>/dev/null | col -b)
	opts=$(help_opts "$@")
	for o in $opts; do
		grep -qF -- "$o" <<<"$text" || fail "$page lacks $o of '$*'"
	done
}
for c in mkfs grow info mount umount fsck "disk create" "disk info" "disk set" \
	"journal dump" "journal replay" "cluster config"; do
	# shellcheck disable=SC2086
	page_has_options vmfs.8 "$VMFS" $c
	grep -qE "^\.SS .*${c%% *}" "$T_ROOT/docs/man/vmfs.8" ||
		fail "vmfs.8 has no section for '$c'"
done
page_has_options vmfsd.8 "$VMFSD"
page_has_options mount.vmfs.8 "$SBIN/mount.vmfs"
page_has_options fsck.vmfs.8 "$SBIN/fsck.vmfs"
page_has_options mkfs.vmfs.8 "$SBIN/mkfs.vmfs"

step "bash completion"
comp=$DEST/usr/share/bash-completion/completions/vmfs
# shellcheck disable=SC2016
got=$(bash -c 'source "$1"
	complete -p vmfs | grep -q -- "-F _vmfs" || exit 1
	COMP_WORDS=(vmfs mk); COMP_CWORD=1; _vmfs; echo "${COMPREPLY[*]}"
	COMP_WORDS=(vmfs mount --co); COMP_CWORD=2; _vmfs; echo "${COMPREPLY[*]}"
	COMP_WORDS=(vmfs journal re); COMP_CWORD=2; _vmfs; echo "${COMPREPLY[*]}"' \
	_ "$comp") || fail "the completion does not register _vmfs for vmfs"
expect_eq "completions of 'vmfs mk', 'vmfs mount --co', 'vmfs journal re'" \
	"$got" $'mkfs\n--commit-ms\nreplay'
# The option lists follow each command's --help.
for c in mkfs grow info mount umount fsck "disk create" "disk info" "disk set" \
	"journal dump" "journal replay" "cluster config"; do
	# shellcheck disable=SC2016,SC2086
	expect_eq "completion options of '$c'" \
		"$(bash -c 'source "$1"; _vmfs_opts "$2"' _ "$comp" "$c" | tr ' ' '\n' | sort)" \
		"$(help_opts "$VMFS" $c)"
done

# The commands `vmfs --help` lists are the ones the completion offers.
# shellcheck disable=SC2016
expect_eq "commands of the completion" \
	"$(bash -c 'source "$1"
		COMP_WORDS=(vmfs ""); COMP_CWORD=1; _vmfs; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$comp" | grep -v '^-' | sort)" \
	"$("$VMFS" --help | sed -n 's/^  \([a-z]\+\) .*/\1/p' | sort)"

step "the corruption tool is a test program, not part of vmfs"
# tools/corrupt/ builds build/vmfs-corrupt; the installed list above has
# no such file, and vmfs has no command that damages a volume.
expect_fail 2 "unknown command 'debug'" "$SBIN/vmfs" debug corrupt --list
"$SBIN/vmfs" --help | grep -qiE "corrupt|damage" &&
	fail "vmfs --help offers a command that damages volumes"
[[ -x $VMFS_CORRUPT ]] || fail "no $VMFS_CORRUPT: build it with 'make build/vmfs-corrupt'"
"$VMFS_CORRUPT" --list | grep -q "^0x0305  PR_3_PTR_RANGE" ||
	fail "vmfs-corrupt --list does not list PR_3_PTR_RANGE"

step "mkfs -t vmfs and fsck -t vmfs find the installed helpers in PATH"
make_lun "$LUN" 2G
PATH=$SBIN:$PATH mkfs -t vmfs -L installed --max-hosts 4 "$LUN" >"$T_DIR/mkfs.out" ||
	fail "mkfs -t vmfs failed: $(cat "$T_DIR/mkfs.out")"
[[ $("$VMFS" info "$LUN") == *installed* ]] || fail "mkfs -t vmfs made no volume labelled 'installed'"
rc=0
PATH=$SBIN:$PATH fsck -t vmfs -a "$LUN" >"$T_DIR/fsck.out" 2>&1 || rc=$?
expect_eq "fsck -t vmfs -a exit status ($(cat "$T_DIR/fsck.out"))" "$rc" 0
grep -qE "0 problems found.* [1-9][0-9]* inodes" "$T_DIR/fsck.out" ||
	fail "fsck -t vmfs -a did not check: $(cat "$T_DIR/fsck.out")"
head -c 1M /dev/urandom >"$T_DIR/notvmfs"
PATH=$SBIN:$PATH expect_fail 8 "not a vmfs volume" fsck -t vmfs -n "$T_DIR/notvmfs"
# No mode and no terminal: e2fsck's refusal, not a silent read-only pass.
PATH=$SBIN:$PATH expect_fail 8 "need a terminal.*-p.*-n.*-y" fsck -t vmfs "$LUN" </dev/null

step "mount -t vmfs from the installed tree (private mount namespace)"
# mount(8) finds helpers only under /sbin: the installed sbin is laid
# over /usr/sbin in a private namespace, which needs overlayfs.
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
	skip "no overlay file system in this kernel: mount -t vmfs from the installed tree cannot be tried without touching the host's /sbin"
mkdir -p "$MP"
MP=$(cd "$MP" && pwd -P)
T_MOUNTS+=("$MP")
cat >"$T_DIR/inner.sh" <<'EOF'
# Runs in a private mount namespace: the installed sbin overlaid on
# /usr/sbin (/sbin on merged /usr) is where mount(8) looks for helpers.
set -euo pipefail
sbin=$1 lun=$2 mp=$3 state=$4 log=$5 pidfile=$6
mount -t overlay overlay -o "lowerdir=$sbin:/usr/sbin" /usr/sbin
[[ -L /sbin/mount.vmfs ]] || { echo "no /sbin/mount.vmfs in the overlay"; exit 1; }
mount -t vmfs -o "commit=200,state-dir=$state,log-file=$log,_netdev,nofail,x-test=1" "$lun" "$mp"
mountpoint -q "$mp" || { echo "mount -t vmfs returned 0 but $mp is not mounted"; exit 1; }
for d in /proc/[0-9]*; do
	[[ $(readlink "$d/exe" 2>/dev/null) == /usr/sbin/vmfsd ]] || continue
	tr '\0' '\n' <"$d/cmdline" | grep -qxF -- "$mp" && echo "${d#/proc/}" >"$pidfile"
done
[[ -s $pidfile ]] || { echo "no installed vmfsd serves $mp"; exit 1; }
pid=$(cat "$pidfile")
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--commit-ms 200 " ||
	{ echo "vmfsd did not get --commit-ms 200: $(tr '\0' ' ' <"/proc/$pid/cmdline")"; exit 1; }
echo "written through mount -t vmfs" >"$mp/hello"
[[ $(cat "$mp/hello") == "written through mount -t vmfs" ]]
/usr/sbin/vmfs umount --state-dir "$state" "$mp"
! mountpoint -q "$mp" || { echo "$mp still mounted after vmfs umount"; exit 1; }
# Gone, or a zombie nobody has reaped yet.
stat=$(cat "/proc/$pid/stat" 2>/dev/null) || stat=") Z"
[[ ${stat##*) } == Z* ]] || { echo "vmfsd $pid still runs after vmfs umount"; exit 1; }
# An fstab line, as docs/OPERATIONS.md shows it, mounted by its mount point.
printf '%s  %s  vmfs  _netdev,nofail,commit=500,state-dir=%s,log-file=%s  0  0\n' \
	"$lun" "$mp" "$state" "$log" >"$mp.fstab"
mount --fstab "$mp.fstab" "$mp"
mountpoint -q "$mp" || { echo "mount by an fstab line: $mp is not mounted"; exit 1; }
grep -q "^$lun $mp fuse" /proc/self/mounts || { echo "fstab mount: $(grep " $mp " /proc/self/mounts)"; exit 1; }
/usr/sbin/vmfs umount --state-dir "$state" "$mp"
rc=0; mount -t vmfs -o bogus "$lun" "$mp" 2>"$mp.err" || rc=$?
[[ $rc == 32 ]] || { echo "mount -o bogus exited $rc, expected 32"; exit 1; }
grep -q "unknown mount option 'bogus'" "$mp.err" || { echo "-o bogus: $(cat "$mp.err")"; exit 1; }
grep -q "known options: commit=" "$mp.err" || { echo "-o bogus lists no options: $(cat "$mp.err")"; exit 1; }
# Read-only: -o ro on the command line, and ro on an fstab line.
mount -t vmfs -o ro,state-dir="$state" "$lun" "$mp"
grep -q "^$lun $mp fuse.vmfs ro," /proc/self/mounts || { echo "mount -o ro: $(grep " $mp " /proc/self/mounts)"; exit 1; }
[[ $(cat "$mp/hello") == "written through mount -t vmfs" ]]
if echo x 2>"$mp.err" >"$mp/hello"; then echo "mount -o ro: a write succeeded"; exit 1; fi
grep -q "Read-only file system" "$mp.err" || { echo "mount -o ro: write: $(cat "$mp.err")"; exit 1; }
/usr/sbin/vmfs umount --state-dir "$state" "$mp"
printf '%s  %s  vmfs  ro,_netdev,nofail,state-dir=%s  0  0\n' "$lun" "$mp" "$state" >"$mp.fstab"
mount --fstab "$mp.fstab" "$mp"
grep -q "^$lun $mp fuse.vmfs ro," /proc/self/mounts || { echo "fstab ro: $(grep " $mp " /proc/self/mounts)"; exit 1; }
/usr/sbin/vmfs umount --state-dir "$state" "$mp"
echo "inner ok"
EOF
rc=0
unshare --mount --propagation private bash "$T_DIR/inner.sh" "$SBIN" "$LUN" "$MP" \
	"$T_STATE" "$T_DIR/vmfsd-mnt.log" "$T_DIR/vmfsd.pid" >"$T_DIR/inner.out" 2>&1 || rc=$?
# A vmfsd left by a failure is stopped by PID in the cleanup.
[[ -s $T_DIR/vmfsd.pid ]] && T_PIDS+=("$(cat "$T_DIR/vmfsd.pid")")
expect_eq "the namespace part ($(cat "$T_DIR/inner.out"))" "$rc" 0
PATH=$SBIN:$PATH fsck -t vmfs -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -t vmfs -n after the mount: $(cat "$T_DIR/fsck.out")"

step "make uninstall removes every installed file"
t_make uninstall
left=$(installed)
[[ -z $left ]] || fail "make uninstall left: $left"

t_log "ok"
