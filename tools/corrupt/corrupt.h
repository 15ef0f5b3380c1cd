/*
 * The corruption tool (ocfs2's fswreck, kept apart from fsck.ocfs2 in the
 * same way): a test program, build/vmfs-corrupt, that damages a scratch
 * volume exactly as one fsck problem code describes, so that tests/fsck/
 * can check that fsck finds and repairs every code.  It is not part of
 * the product: `make install` does not install it and the library does
 * not link it.  It uses only public headers (include/vmfs/): the fsck
 * problem table and the engine's readers and layout.
 */
#ifndef VMFS_TOOLS_CORRUPT_H
#define VMFS_TOOLS_CORRUPT_H

#include <stddef.h>
#include <stdint.h>
#include "vmfs/fsck.h"

struct lun;

/*
 * Damage the volume on lun the way code describes, choosing a target
 * (seeded by seed) that exists on the volume; *target gets the address
 * damaged and hint (optional, may be NULL) a description followed by one
 * "target-path: PATH" line per file the damage may change.  0, -ENOENT
 * when the volume has no suitable target (nothing written), -EINVAL when
 * the tool has no damage for code, or another negative error.
 */
int corrupt_damage(struct lun *lun, enum fsck_problem code, uint64_t seed,
		   uint64_t *target, char *hint, size_t hint_len);

#endif /* VMFS_TOOLS_CORRUPT_H */
