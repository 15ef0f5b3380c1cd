#!/usr/bin/env bash
#
# bench/meta.sh: metadata operations per second through a mount: create,
# stat and unlink N empty files in one directory, timed in-process by a
# python3 loop (no fork per file), and the same on the host's own /tmp
# file system as a reference line.  Prints figures; asserts nothing.
#
#   VMFS_BIN      vmfs and vmfsd (default: <repo>/bin)
#   BENCH_DIR     where the LUN goes (default /tmp)
#   BENCH_FILES   N (default 20000)

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
VMFS_BIN=${VMFS_BIN:-$root/bin}
case $VMFS_BIN in /*) ;; *) VMFS_BIN=$PWD/$VMFS_BIN ;; esac
vmfs=$VMFS_BIN/vmfs
nfiles=${BENCH_FILES:-20000}

command -v python3 >/dev/null || { echo "meta.sh: python3 is needed" >&2; exit 1; }
[[ -x $vmfs ]] || { echo "meta.sh: no $vmfs; run 'make' or set VMFS_BIN" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_setup meta
native=$(mktemp -d /tmp/vmfs-bench-meta-native.XXXXXX)
bench_extra_cleanup=("$native")

# ops DIR LABEL: one line "LABEL create/s stat/s unlink/s".
ops() {
	python3 - "$1" "$2" "$nfiles" <<'EOF'
import os, sys, time
d, label, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.mkdir(os.path.join(d, "meta"))
names = [os.path.join(d, "meta", "f%06d" % i) for i in range(n)]
rates = []
def timed(fn):
    t = time.monotonic()
    for p in names:
        fn(p)
    rates.append(n / (time.monotonic() - t))
timed(lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
timed(os.stat)
timed(os.unlink)
os.rmdir(os.path.join(d, "meta"))
print("%-22s %12.0f %12.0f %12.0f" % (label, *rates))
EOF
}

truncate -s 4G "$dir/lun"
"$vmfs" mkfs --label bench-meta --max-hosts 8 --inodes $((nfiles + 1024)) "$dir/lun" >/dev/null
bench_mount "$dir/lun"

echo "meta: $nfiles empty files in one directory" >&2
printf '%-22s %12s %12s %12s\n' "" create/s stat/s unlink/s
ops "$mp" "vmfs mount"
ops "$native" "native $(stat -f -c %T "$native")"
