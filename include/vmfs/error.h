/*
 * error: the error codes of every vmfs component and their one message
 * table (error/error.c).
 *
 * Conventions (all of vmfs): functions return 0 (or a byte count) on
 * success and a negative number on failure: either -errno (-EIO, -EBUSY,
 * -ENOSPC, ...) or -VMFS_E_* for failures errno cannot name.  The VMFS_E_*
 * codes are below, one range per component:
 *   1000-1099 lun and metadata-block envelope
 *   1100-1199 lockmgr      1200-1299 journal     1300-1399 volume engine
 *   1400-1499 fsck         1500-1599 hypervisor
 * A component that needs a new code adds it in its range here and a row
 * to the table in error/error.c (tests/unit/test_error.c checks that every
 * code has exactly one row).  Values never change: they may be logged.
 */
#ifndef VMFS_ERROR_H
#define VMFS_ERROR_H

#include <stddef.h>

enum vmfs_error {
	VMFS_E_BASE = 1000,
	VMFS_E_BAD_MAGIC = 1000,     /* metadata block has the wrong magic */
	VMFS_E_BAD_VERSION = 1001,   /* written by a newer format major version */
	VMFS_E_BAD_SELF = 1002,      /* block claims another address (misdirected write) */
	VMFS_E_BAD_CRC = 1003,       /* checksum mismatch */
	VMFS_E_BAD_LEN = 1004,       /* header covers an impossible length */
	VMFS_E_MISCOMPARE = 1005,    /* compare-and-write found other bytes */
	VMFS_E_RESERVED = 1006,      /* LUN reserved by another initiator */
	VMFS_E_BAD_SPEC = 1007,      /* LUN name not understood */
	VMFS_E_UNALIGNED = 1008,     /* buffer/offset/length not sector aligned */
	VMFS_E_FAULT = 1009,         /* injected by the fault wrapper */
	VMFS_E_ISCSI_URL = 1010,     /* iscsi:// URL not understood */
	VMFS_E_ISCSI_PORTAL = 1011,  /* iSCSI portal unreachable */
	VMFS_E_ISCSI_TARGET = 1012,  /* no such target (IQN) on the portal */
	VMFS_E_ISCSI_LUN = 1013,     /* no such LUN number in the target */
	VMFS_E_ISCSI_AUTH = 1014,    /* CHAP login rejected */
	VMFS_E_ISCSI_CHAP_FILE = 1015, /* CHAP file unreadable or malformed */
	VMFS_E_ISCSI_GEOMETRY = 1016, /* logical block size not 512/4096 */
	VMFS_E_FENCED = 1017,        /* our registration was preempted */
	VMFS_E_PR_FOREIGN = 1018,    /* a reservation not ours on the LUN */
	VMFS_E_ISCSI_LOCK_LUN = 1019, /* the ?lock_lun= LU is unusable */

	VMFS_E_JNL_FULL = 1200,      /* one transaction larger than the journal */
	VMFS_E_JNL_DIRTY = 1201,     /* journal holds transactions to replay */
	VMFS_E_JNL_ABORTED = 1202,   /* journal stopped after a write failure */

	VMFS_E_NOT_VOLUME = 1300,    /* no vmfs volume header on this LUN */
	VMFS_E_TOO_SMALL = 1301,     /* LUN too small for the requested layout */
	VMFS_E_GEOMETRY = 1302,      /* volume header describes an impossible layout */
	VMFS_E_CORRUPT = 1303,       /* metadata failed verification */
	VMFS_E_HEADER_MISMATCH = 1304, /* primary and backup headers disagree */
	VMFS_E_NOT_GROWN = 1305,     /* grow: the LUN has no room the volume does not use */
	VMFS_E_LUN_SHRUNK = 1306,    /* the LUN is smaller than the volume on it */
	VMFS_E_GROW_FULL = 1307,     /* grow: the file-block cluster table is full */
	VMFS_E_LAST = 1400
};

/*
 * Message for a negative return value (-errno or -VMFS_E_*); a bare
 * errno is accepted too.  Always a usable string, thread-safe.
 */
const char *vmfs_strerror(int err);

/* One row of the message table. */
struct vmfs_error_info {
	enum vmfs_error code;
	const char *msg;
};

/* The table, in code order (for tests and documentation). */
const struct vmfs_error_info *vmfs_error_table(size_t *n);

#endif /* VMFS_ERROR_H */
