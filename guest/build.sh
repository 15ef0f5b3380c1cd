#!/bin/sh
# Builds the vmfs test guest: OUT/vmlinuz and OUT/initrd.img from Debian's
# linux-image-cloud-amd64 (its kernel and virtio modules; it boots under
# TCG in seconds) and busybox-static, with guest/init as /init.
#
#   guest/build.sh OUTDIR      (make guest: OUTDIR = build/guest)
set -eu
out=${1:?usage: guest/build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)

kver=
for k in /boot/vmlinuz-*-cloud-amd64; do
	[ -r "$k" ] && kver=${k#/boot/vmlinuz-}
done
if [ -z "$kver" ]; then
	echo "guest/build.sh: no readable /boot/vmlinuz-*-cloud-amd64; install linux-image-cloud-amd64 (make deps)" >&2
	exit 1
fi
bb=/bin/busybox
if ! file -L "$bb" 2>/dev/null | grep -q 'statically linked' &&
	! ldd "$bb" 2>&1 | grep -q 'not a dynamic'; then
	echo "guest/build.sh: $bb is not static; install busybox-static (make deps)" >&2
	exit 1
fi
mods=/lib/modules/$kver/kernel

root=$(mktemp -d "${TMPDIR:-/tmp}/vmfs-guest.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
	"$root/lib/modules" "$root/etc/acpi/PWRF"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
	[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev \
	virtio/virtio_pci_modern_dev virtio/virtio_pci block/virtio_blk \
	input/evdev acpi/button; do
	f=$mods/drivers/$m.ko
	[ -r "$f" ] || f=$(find "$mods" -name "$(basename $m).ko*" | head -1)
	case "$f" in
	*.ko) cp "$f" "$root/lib/modules/" ;;
	*.ko.xz) xz -dc "$f" >"$root/lib/modules/$(basename $m).ko" ;;
	*.ko.zst) zstd -dcq "$f" >"$root/lib/modules/$(basename $m).ko" ;;
	*) echo "guest/build.sh: module $m not found under $mods" >&2; exit 1 ;;
	esac
done
# busybox acpid runs ./PWRF/00000080 (from /etc/acpi) on the power button.
echo 'PWRF PWRF/00000080' >"$root/etc/acpid.conf"
printf '#!/bin/sh\necho "vmfs-guest: power button, powering off"\npoweroff -f\n' \
	>"$root/etc/acpi/PWRF/00000080"
chmod 755 "$root/etc/acpi/PWRF/00000080"
install -m 0755 "$here/init" "$root/init"

mkdir -p "$out"
cp "/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) |
	gzip -1 >"$out/initrd.img.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
echo "guest: $out/vmlinuz ($kver), $out/initrd.img"
