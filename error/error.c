/*
 * vmfs_strerror(): the one message table for every vmfs error code.
 *
 * Every component returns 0 or a negative number: -errno, or -VMFS_E_*
 * (vmfs/error.h, one range per component) for failures errno cannot name.
 * The messages below say what happened and, where there is one, what to
 * do next; callers prefix the object ("vmfs: /dev/sdb: ...").  Add a row
 * here, in code order, for every code added to enum vmfs_error.
 *
 * The result is always a usable string and the function is thread-safe:
 * table entries and glibc's strerrordesc_np() strings are static, and
 * unknown codes are formatted into a thread-local buffer.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "vmfs/error.h"

static const struct vmfs_error_info vmfs_errtab[] = {
	/* 1000-1099: lun and the metadata-block envelope */
	{ VMFS_E_BAD_MAGIC, "metadata block has the wrong magic number "
	  "(never written, not a vmfs structure, or overwritten)" },
	{ VMFS_E_BAD_VERSION, "metadata written by a newer vmfs format "
	  "version; upgrade vmfs on this host before using the volume" },
	{ VMFS_E_BAD_SELF, "metadata block belongs at another address "
	  "(misdirected write, or the wrong LUN); run 'vmfs fsck'" },
	{ VMFS_E_BAD_CRC, "metadata block checksum mismatch (torn write or "
	  "corruption); run 'vmfs fsck'" },
	{ VMFS_E_BAD_LEN, "metadata block header covers an impossible "
	  "length (corruption); run 'vmfs fsck'" },
	{ VMFS_E_MISCOMPARE, "compare-and-write found other bytes on disk: "
	  "another host changed them first; re-read and retry" },
	{ VMFS_E_RESERVED, "LUN is reserved by another host "
	  "(SCSI reservation conflict); retry later" },
	{ VMFS_E_BAD_SPEC, "LUN name not understood: give a device or file "
	  "path, file:PATH, or iscsi://PORTAL[:PORT]/IQN/LUN" },
	{ VMFS_E_UNALIGNED, "I/O buffer, offset or length is not a multiple "
	  "of the LUN sector size (a bug in the caller)" },
	{ VMFS_E_FAULT, "I/O error injected by the fault-injecting test LUN" },
	{ VMFS_E_ISCSI_URL, "iSCSI URL not understood: write "
	  "iscsi://PORTAL[:PORT]/IQN/LUN (a ':' in the IQN may be %3A), or "
	  "iscsi://A[:PORT],B[:PORT]/IQN/LUN for up to 4 paths" },
	{ VMFS_E_ISCSI_PORTAL, "cannot reach the iSCSI portal (the PORTAL "
	  "part of the URL): check the address, the port (default 3260) and "
	  "the network" },
	{ VMFS_E_ISCSI_TARGET, "the portal has no target of that name (the "
	  "IQN part of the URL): check it with the target's administrator "
	  "or iscsi-ls" },
	{ VMFS_E_ISCSI_LUN, "the target has no LUN of that number (the LUN "
	  "part of the URL; on tgt the disk is LUN 1, LUN 0 is the "
	  "controller)" },
	{ VMFS_E_ISCSI_AUTH, "the target rejected the CHAP login: check the "
	  "user name and secret in the CHAP file (VMFS_CHAP_FILE)" },
	{ VMFS_E_ISCSI_CHAP_FILE, "the CHAP file (VMFS_CHAP_FILE) cannot be "
	  "read or is not 'username=NAME' and 'password=SECRET' lines" },
	{ VMFS_E_ISCSI_GEOMETRY, "the iSCSI LUN's logical block size is "
	  "neither 512 nor 4096 bytes; vmfs cannot use it" },
	{ VMFS_E_FENCED, "this host's persistent-reservation key was "
	  "preempted by another host (it was judged dead): the target refuses "
	  "its writes; unmount and mount again" },
	{ VMFS_E_PR_FOREIGN, "the LUN carries a persistent reservation that "
	  "is not vmfs's fencing reservation (another initiator's); release "
	  "it on the target (or with sg_persist) before mounting" },
	{ VMFS_E_ISCSI_LOCK_LUN, "the lock LUN of the URL (?lock_lun=N) is "
	  "absent or has no persistent reservations: export a small LUN of "
	  "its own for it on the same target" },

	/* 1200-1299: journal */
	{ VMFS_E_JNL_FULL, "one metadata operation needs more blocks than "
	  "the host's journal holds; split the operation or make the volume "
	  "with a larger --journal-size" },
	{ VMFS_E_JNL_DIRTY, "the journal holds committed transactions that "
	  "were never replayed; mount the volume read-write once, or run "
	  "'vmfs fsck -y', to replay it" },
	{ VMFS_E_JNL_ABORTED, "the journal stopped after a LUN write failed; "
	  "the volume is read-only until it is unmounted and mounted again "
	  "(mount replays what was committed)" },

	/* 1300-1399: volume engine */
	{ VMFS_E_NOT_VOLUME, "no vmfs volume on this LUN; run 'vmfs mkfs' "
	  "to create one" },
	{ VMFS_E_TOO_SMALL, "LUN too small for the requested volume layout; "
	  "use a larger LUN, fewer host slots or a smaller journal" },
	{ VMFS_E_GEOMETRY, "volume header describes an impossible layout; "
	  "run 'vmfs fsck'" },
	{ VMFS_E_CORRUPT, "volume metadata failed verification; "
	  "run 'vmfs fsck'" },
	{ VMFS_E_HEADER_MISMATCH, "primary and backup volume headers "
	  "disagree; run 'vmfs fsck' to repair them" },
	{ VMFS_E_NOT_GROWN, "the volume already uses the whole LUN; enlarge "
	  "the LUN first (truncate -s, lvextend or the array's tool)" },
	{ VMFS_E_LUN_SHRUNK, "the LUN is smaller than the volume on it; "
	  "give the LUN back its old size before using the volume" },
	{ VMFS_E_GROW_FULL, "the volume already has as many file blocks as "
	  "its cluster table (sized by mkfs) can hold" },
};

#define VMFS_NERRS (sizeof(vmfs_errtab) / sizeof(vmfs_errtab[0]))

static __thread char vmfs_errbuf[64];

const struct vmfs_error_info *vmfs_error_table(size_t *n)
{
	*n = VMFS_NERRS;
	return vmfs_errtab;
}

const char *vmfs_strerror(int err)
{
	const char *msg;
	size_t i;

	if (err == 0)
		return "success";
	if (err == INT_MIN)
		goto unknown;
	/* The convention is negative; accept a bare errno as well. */
	if (err < 0)
		err = -err;
	if (err >= VMFS_E_BASE) {
		for (i = 0; i < VMFS_NERRS; i++)
			if ((int)vmfs_errtab[i].code == err)
				return vmfs_errtab[i].msg;
		snprintf(vmfs_errbuf, sizeof(vmfs_errbuf),
			 "unknown vmfs error %d", -err);
		return vmfs_errbuf;
	}
	msg = strerrordesc_np(err);
	if (msg)
		return msg;
unknown:
	snprintf(vmfs_errbuf, sizeof(vmfs_errbuf), "unknown error %d",
		 err == INT_MIN ? err : -err);
	return vmfs_errbuf;
}
