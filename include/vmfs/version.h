/*
 * The software version, shared by vmfs and vmfsd so that `vmfs --version`
 * and `vmfsd --version` can never disagree.  The on-disk format version is
 * format.h's: one software version reads a range of formats.
 */
#ifndef VMFS_VERSION_H
#define VMFS_VERSION_H

#include "vmfs/format.h"

#ifndef VMFS_VERSION
#define VMFS_VERSION "0.1.0"
#endif

#define VMFS_STR_(x) #x
#define VMFS_STR(x) VMFS_STR_(x)

/* What follows the program name in `vmfs --version`, `vmfsd --version`. */
#define VMFS_VERSION_LINE VMFS_VERSION " (on-disk format " \
	VMFS_STR(VMFS_FORMAT_MAJOR) "." VMFS_STR(VMFS_FORMAT_MINOR) ")"

#endif /* VMFS_VERSION_H */
