#!/bin/bash
# check-layers.sh [ROOT]: the include arrows of docs/ARCHITECTURE.md.
#
# Every component (a top-level folder) may include its own headers, and
# from include/vmfs/ only the public headers of the components below it.
# A header of another folder ("../x/x_int.h", "x_int.h" that is not in
# the including file's folder) is another component's internals: refused.
# tests/ and bench/ may include anything, internals too (white-box tests).
# Prints each violation as FILE:LINE: what and why; exits 1 if any.
set -u
root=${1:-.}
cd "$root" || exit 2

# Public headers every component may use: the on-disk contract, the
# clock, the version, the error codes, logging and thread diagnostics.
common="format clock version error log threadinfo"
declare -A allow=(
	[error]=""
	[format]="lun"
	[lun]="lun"
	[lockmgr]="lun lockmgr"
	[journal]="lun lockmgr journal"
	[vol]="lun lockmgr journal vol"
	[fuse]="lun lockmgr journal vol fuse"
	[fsck]="lun lockmgr journal vol fsck"
	[vmfsd]="lun lockmgr journal vol fuse vmfsd hypervisor"
	[hypervisor]="hypervisor"
	[cli]="lun lockmgr journal vol fuse fsck vmfsd hypervisor"
	[tools]="lun lockmgr journal vol fsck"
)
# Which component owns each public header.
declare -A owner=(
	[error]=error [log]=error [threadinfo]=error [format]=format [clock]=format [version]=format
	[lun]=lun [lockmgr]=lockmgr [journal]=journal [vol]=vol
	[fuse]=fuse [fsck]=fsck [vmfsd]=vmfsd [hypervisor]=hypervisor
)

bad=0
complain() { echo "$1: $2"; bad=1; }

check_file() {      # FILE COMPONENT
	local f=$1 comp=$2 line inc hdr dir
	dir=$(dirname "$f")
	while IFS=: read -r line inc; do
		inc=${inc#*\"}; inc=${inc%%\"*}
		case $inc in
		vmfs/*.h)
			hdr=${inc#vmfs/}; hdr=${hdr%.h}
			if [ -z "${owner[$hdr]+x}" ]; then
				complain "$f:$line" "includes $inc, which no component owns (add it to tools/check-layers.sh and docs/ARCHITECTURE.md)"
			elif [[ " $common ${allow[$comp]} " != *" $hdr "* ]]; then
				complain "$f:$line" "$comp/ may not include $inc (${owner[$hdr]} is not below $comp in docs/ARCHITECTURE.md)"
			fi ;;
		*)
			if [ ! -e "$dir/$inc" ] || [[ $inc == */* ]]; then
				complain "$f:$line" "includes \"$inc\", a header outside its own folder: use the owning component's public header in include/vmfs/"
			fi ;;
		esac
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
}

for comp in "${!allow[@]}"; do
	[ -d "$comp" ] || continue
	while IFS= read -r f; do
		check_file "$f" "$comp"
	done < <(find "$comp" -name '*.[ch]' | sort)
done
# The public headers themselves follow their owner's arrows.
for f in include/vmfs/*.h; do
	[ -e "$f" ] || continue
	hdr=$(basename "$f" .h)
	if [ -z "${owner[$hdr]+x}" ]; then
		complain "$f" "a public header no component owns (add it to tools/check-layers.sh and docs/ARCHITECTURE.md)"
		continue
	fi
	check_file "$f" "${owner[$hdr]}"
done
# Folders holding C that the table does not know.
for d in */; do
	d=${d%/}
	case $d in include|tests|bench|build*|bin|docs|contrib|demo) continue ;; esac
	[ -n "${allow[$d]+x}" ] && continue
	if [ -n "$(find "$d" -name '*.[ch]' -print -quit)" ]; then
		complain "$d/" "a folder with C code that tools/check-layers.sh does not know: add it to the table and to docs/ARCHITECTURE.md"
	fi
done
exit $bad
