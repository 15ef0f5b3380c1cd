/*
 * lun: the shared LUN every host attaches.
 *
 * Functions return 0 (or a byte count) or a negative -errno or -VMFS_E_*
 * (vmfs/error.h: the codes of every component and vmfs_strerror()).
 *
 * I/O rules: every buffer handed to lun_read/lun_write/lun_submit is aligned
 * to lun_sector_size() (lun_buf_alloc() gives such buffers), and every
 * offset and length is a multiple of it.  I/O goes to the device with
 * O_DIRECT through libaio; each I/O waits at most the I/O timeout
 * (lun_set_io_timeout, default 10 s) and then fails with -ETIMEDOUT; the
 * buffer of an I/O that timed out is kept by the lun until the I/O is
 * reaped, so callers may free theirs (the lun copies through a bounce
 * buffer in that case).  All functions are safe to call from many threads.
 */
#ifndef VMFS_LUN_H
#define VMFS_LUN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "vmfs/error.h"

/* ---- checksums and the metadata-block envelope ------------------------ */

/* crc32c (Castagnoli); start with crc = 0. */
uint32_t lun_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * Fill in a struct vmfs_blk_hdr (format.h) at hdr and compute its crc over
 * len bytes from hdr.  The caller sets bh_gen; magic/version/self/len are
 * set here.
 */
void lun_md_seal(void *hdr, uint32_t magic, uint64_t self, uint32_t len);
/* The same as written by format version major.minor (tests, tools). */
void lun_md_seal_version(void *hdr, uint32_t magic, uint64_t self,
			 uint32_t len, uint16_t major, uint16_t minor);

/*
 * Verify a block header, in this order: magic, major version (newer major
 * is refused), length, self address, crc.  Returns 0 or the first failure
 * as -VMFS_E_BAD_*.  An all-zero header gives -VMFS_E_BAD_MAGIC.
 */
int lun_md_verify(const void *hdr, uint32_t magic, uint64_t self, uint32_t len);

/*
 * A record read while another host rewrites it can come back torn: the
 * file backend's plain reads are not atomic with another handle's writes
 * (a disk's sector is; docs/PROTOCOL.md §1, "Torn reads").  While
 * verify(buf, off, arg) fails, read buf (len bytes at off) again, up to
 * LUN_TORN_READS times 1 ms apart.  Returns verify's last result (0: it
 * verifies), or the error of a read.
 */
#define LUN_TORN_READS 3
struct lun;
int lun_reread_torn(struct lun *lun, void *buf, size_t len, uint64_t off,
		    int (*verify)(const void *buf, uint64_t off, void *arg),
		    void *arg);

/* ---- the LUN ---------------------------------------------------------- */
struct lun;

#define LUN_RDONLY 0x1   /* open read-only */

/*
 * A LUN spec, the one grammar every command and the daemon take:
 *   PATH          a regular file or a block device (file backend)
 *   file:PATH     the same, explicitly
 *   SCHEME://...  a URL: the backend of a scheme; never taken for a
 *                 relative path, so that a typo in "iscsi://" cannot
 *                 create or open a file.  The one scheme is
 *                 iscsi://[USER[%SECRET]@]PORTAL[:PORT]/IQN/LUN (an
 *                 iSCSI LUN through libiscsi; CHAP from lun_set_chap_file)
 */
enum lun_spec_kind {
	LUN_SPEC_PATH,   /* PATH or file:PATH */
	LUN_SPEC_URL     /* SCHEME://... */
};

struct lun_spec {
	enum lun_spec_kind kind;
	const char *path;      /* LUN_SPEC_PATH: PATH, inside the spec */
	bool file_prefix;      /* it was written "file:PATH" */
};

/*
 * Parse spec (which *out points into).  0, -EINVAL for NULL, or
 * -VMFS_E_BAD_SPEC for an empty PATH ("" or "file:").
 */
int lun_spec_parse(const char *spec, struct lun_spec *out);

/*
 * The spec in a form that means the same from any working directory: its
 * PATH made absolute (symlinks resolved when it exists; a path that does
 * not exist yet keeps its meaning), the "file:" prefix kept, a URL copied
 * as it is.  For whoever hands the spec to a process that changes
 * directory (vmfs mount to vmfsd, vmfsd before chdir("/")).  0,
 * -VMFS_E_BAD_SPEC, -ENAMETOOLONG when it does not fit len, or the
 * -errno of getcwd().
 */
int lun_spec_abspath(const char *spec, char *buf, size_t len);

/*
 * spec: a LUN spec (above); a URL of another scheme than iscsi:// is
 * refused with -VMFS_E_BAD_SPEC.  The lun discovers its logical sector
 * size (512 or 4096) and size in bytes.  An iscsi:// LUN that cannot be
 * opened says which part of the URL is wrong: -VMFS_E_ISCSI_URL,
 * _PORTAL, _TARGET, _LUN or _AUTH (or _CHAP_FILE).
 */
int lun_open(const char *spec, int flags, struct lun **out);
void lun_close(struct lun *lun);

/*
 * CHAP credentials for iscsi:// LUNs opened from now on in this process:
 * a file of "username=NAME" and "password=SECRET" lines (NULL: none).
 * They override a USER%SECRET in the URL.  The programs take the path
 * from the environment variable VMFS_CHAP_FILE.  0 or -ENOMEM.
 */
int lun_set_chap_file(const char *path);

uint64_t lun_size(const struct lun *lun);
/*
 * Ask the backend for the LUN's size now (lvextend, truncate -s, the
 * array's tool enlarged it under an open handle) and take a larger one;
 * *seen_bytes (optional) gets the size the backend said.  0;
 * -VMFS_E_LUN_SHRUNK when the LUN is smaller than the handle's size
 * (which stays); -EOPNOTSUPP for a backend that cannot tell.  I/O past
 * the end calls it once before it fails with -EINVAL.
 */
int lun_size_refresh(struct lun *lun, uint64_t *seen_bytes);
uint32_t lun_sector_size(const struct lun *lun);
const char *lun_name(const struct lun *lun);
void lun_set_io_timeout(struct lun *lun, unsigned timeout_ms);
/*
 * A shorter bound for the reservation mutex (lun_reserve) where a backend
 * builds it from commands (an iSCSI lock LU): its hold limit and the time
 * after which another host breaks a hold derive from it, and the I/O the
 * holding thread issues inside a hold is bounded by it.  A handle whose
 * data I/O may take longer than the heartbeat's (a mount's data handle)
 * sets the heartbeat's I/O timeout here, so that a hold it leaves behind
 * is broken before the other hosts' renewals, which wait for the same
 * mutex, run out of lease.  0 (the default): the I/O timeout.
 */
void lun_set_lock_io_timeout(struct lun *lun, unsigned timeout_ms);
/* The bound above, in effect: the smaller of the two. */
unsigned lun_lock_io_timeout(const struct lun *lun);

/*
 * The handle's own mutex for one hold of its reservation at a time
 * (lockmgr/lockprim.c lock_reserved).  Its own: a mutex shared with
 * another handle (they were striped by address) could make a renewal
 * wait behind the data handle's lock change, which may wait seconds for
 * the lock LU.
 */
pthread_mutex_t *lun_hold_mutex(struct lun *lun);

/*
 * Aligned buffers (4 KiB alignment, fit for any sector size).  Those of
 * exactly 4 KiB (len 0 or 4096) come from a pool that keeps them one page
 * each (lun/bufpool.c); lun_buf_trim gives the pages of the pool's freed
 * blocks back to the system, as malloc_trim does for the heap.
 */
void *lun_buf_alloc(size_t len);
void lun_buf_free(void *buf);
void lun_buf_trim(void);

struct lun_buf_stats {
	uint64_t pool_blocks;   /* 4 KiB blocks handed out now */
	uint64_t pool_bytes;    /* the pool's chunks so far (2 MiB each) */
	uint64_t idle_blocks;   /* freed since the last trim */
};
void lun_buf_stats(struct lun_buf_stats *s);

int lun_read(struct lun *lun, void *buf, size_t len, uint64_t off);
int lun_write(struct lun *lun, const void *buf, size_t len, uint64_t off);

enum lun_op { LUN_OP_READ = 0, LUN_OP_WRITE = 1 };
struct lun_io {
	enum lun_op op;
	void *buf;
	size_t len;
	uint64_t off;
	int result;   /* out: 0 or negative error */
};
/* Submit n I/Os together; returns 0 if all succeeded, else the first error. */
int lun_submit(struct lun *lun, struct lun_io *ios, unsigned n);

/*
 * Self-fence: from now on every I/O through this handle fails with -EIO
 * (a host whose heartbeat lease may have expired stops touching the
 * volume).  Irreversible for the handle.
 */
void lun_fence(struct lun *lun);
bool lun_is_fenced(const struct lun *lun);

/*
 * The write gate: a handle that may write only while its host's heartbeat
 * lease is valid.  Once armed, every write, flush, zero-range, compare-
 * and-write and lun_submit batch holding a write checks, right before it
 * is issued, that CLOCK_MONOTONIC (vmfs_mono_ms(), vmfs/clock.h) is still
 * before the deadline.  Past it, the handle fences itself (lun_fence:
 * from then on every I/O, reads included, fails with -EIO), the call
 * fails with -EIO, and expired(ctx, overdue_ms) runs once, on the thread
 * that tripped the gate, with how far past the deadline that call was.
 *
 * Reads are not gated: a read changes nothing another host can see, and
 * whatever a host past its lease reads can reach the volume only through
 * a write, which is.  The owner fences the whole handle as soon as it
 * learns the lease ran out (the heartbeat does, at its next wake-up).
 *
 * A write lying wholly inside [exempt_off, exempt_off + exempt_len) is
 * not gated (exempt_len 0: none): the heartbeat's own slot, which only
 * compare-and-writes change and whose renewal decides for itself
 * (lockmgr/heartbeat.c).  A check cannot cover a thread that stops
 * between it and the system call that issues the write; docs/PROTOCOL.md
 * "Timing" says what closes that window.
 */
struct lun_gate {
	int64_t valid_until_ms;     /* CLOCK_MONOTONIC ms */
	uint64_t exempt_off, exempt_len;
	void (*expired)(void *ctx, int64_t overdue_ms);   /* may be NULL */
	void *ctx;
};
/*
 * Arm the gate (g NULL: disarm).  Not while other threads write through
 * the handle: arm before the handle is shared, disarm after the last
 * write.
 */
void lun_gate_arm(struct lun *lun, const struct lun_gate *g);
/* Move the deadline forward to valid_until_ms (never back); any thread.
 * A handle the gate already fenced stays fenced. */
void lun_gate_extend(struct lun *lun, int64_t valid_until_ms);

/*
 * Who may restore the handle's fencing registration.  A backend whose
 * registration dies with its session (iSCSI: a connection reset, a target
 * restart) logs in again and registers its key again on the new session,
 * then reads [off, off + len) there and asks ok(buf, arg) whether the
 * host still owns it (the heartbeat: its slot is still its own, not taken
 * over by a survivor).  If not, it drops the new registration and fences
 * the handle; nothing was issued on the session before.  Without a check
 * (ok NULL) the key is registered again unchecked (a tool's own key).
 * Set and cleared by the owner (the heartbeat) at any time; ok runs under
 * a lock that lun_set_owner_check also takes, so after a clear returns
 * it no longer runs.
 */
void lun_set_owner_check(struct lun *lun, uint64_t off, size_t len,
			 bool (*ok)(const void *buf, void *arg), void *arg);

/* Make every completed write durable (SYNCHRONIZE CACHE / fdatasync). */
int lun_flush(struct lun *lun);

/*
 * Make [off, off+len) read as zeros, cheaply where the backend can
 * (fallocate ZERO_RANGE on files, BLKZEROOUT on block devices, WRITE SAME
 * later), by writing zeros otherwise.  Offset and length sector aligned.
 */
int lun_zero_range(struct lun *lun, uint64_t off, uint64_t len);

/*
 * Which locking primitives the LUN's target implements: the lock manager
 * uses COMPARE AND WRITE where it can and falls back to reserve/read/
 * compare/write/release.  A primitive the LUN lacks fails with
 * -EOPNOTSUPP (a SCSI target answers ILLEGAL REQUEST; tgt 1.0.85 lacks
 * COMPARE AND WRITE, and must be probed by trying it).  The file backend
 * has both.
 */
#define LUN_CAP_ATS     0x1u  /* SBC-3 COMPARE AND WRITE */
#define LUN_CAP_RESERVE 0x2u  /* SCSI-2 RESERVE(6)/RELEASE(6) */
unsigned lun_caps(const struct lun *lun);

/* What a backend found out about its LUN at open (vmfs info shows it). */
enum lun_probe_answer {
	LUN_PROBE_UNKNOWN = 0,   /* not probed, or the probe failed */
	LUN_PROBE_NO,
	LUN_PROBE_YES
};
struct lun_probe {
	const char *backend;            /* "file", "iscsi", "fault" */
	enum lun_probe_answer caw;      /* COMPARE AND WRITE (tried) */
	enum lun_probe_answer pr;       /* PERSISTENT RESERVE IN/OUT */
	uint16_t pr_types;              /* REPORT CAPABILITIES type mask */
	const char *reserve_how;        /* what lun_reserve() uses, or NULL */
	const char *fencing;            /* storage fencing, or NULL: none */
	uint32_t lock_key_bits;         /* lock-LU hold keys carry these
					 * (the handle's random bits); 0: none */
};
/* "yes", "no", "unknown". */
const char *lun_probe_answer_name(enum lun_probe_answer a);
void lun_describe(struct lun *lun, struct lun_probe *out);

/*
 * The paths to a LUN: an iSCSI URL may name several portals of one
 * target (lun/iscsi.c "Paths"); any other LUN has one path, its name.
 */
struct lun_path {
	char portal[128];
	bool in_use;            /* the path sessions log in on now */
	int64_t failed_ago_ms;  /* since its last failure; -1: none */
	int reachable;          /* probed: 1 logs in, 0 does not; -1 not probed */
	char why[128];          /* reachable 0: why not */
};
/* Up to max paths into out; the number of paths.  probe: log in through
 * each (a tool asking; a mounted host's handles are not probed). */
unsigned lun_paths(struct lun *lun, bool probe, struct lun_path *out,
		   unsigned max);
/* How often the handle moved to another path since it was opened. */
unsigned lun_path_failovers(struct lun *lun);

/*
 * Storage fencing with SCSI-3 persistent reservations (docs/PROTOCOL.md
 * "Storage fencing").  Each host registers one key on each of its lun
 * handles at mount, lun_pr_key(its uuid, its heartbeat generation), and
 * the first makes the reservation Write Exclusive - Registrants Only
 * (unless one is in place; a survivor makes it again before preempting if
 * its holder has unmounted): from then on a nexus without a registration
 * cannot write.  A survivor that recovers a dead host preempts that
 * host's key first, so the target refuses whatever the dead host still
 * sends; a handle whose write meets RESERVATION CONFLICT has been
 * preempted and fences itself (lun_fence).  A handle never registers
 * again: a new mount opens new handles.
 *
 * lun_pr_register: -EOPNOTSUPP on a LUN without persistent reservations
 * (files; iSCSI targets that lack them), -VMFS_E_PR_FOREIGN when someone
 * else holds another kind of reservation, -VMFS_E_FENCED when this
 * handle's registration was preempted.  lun_pr_preempt: 0 also when the
 * victim holds no registration; -VMFS_E_FENCED when we hold none.
 * Read-write iSCSI handles hold an "open key" (LUN_PR_OPEN_KEY_BIT set)
 * until lun_pr_register, so that tools may write while no host is
 * mounted but a crash left the reservation behind.
 */
#define LUN_PR_OPEN_KEY_BIT (1ull << 63)
uint64_t lun_pr_key(const uint8_t host_uuid[16], uint64_t hb_gen);
int lun_pr_register(struct lun *lun, uint64_t key);
int lun_pr_preempt(struct lun *lun, uint64_t victim);

/*
 * SCSI-2 style RESERVE/RELEASE of the whole LUN: while one lun handle holds
 * the reservation, reserve() from any other handle (any process) fails with
 * -VMFS_E_RESERVED after waiting at most wait_ms.
 */
int lun_reserve(struct lun *lun, unsigned wait_ms);
int lun_release(struct lun *lun);

/*
 * How long a reserve may have to wait, beyond the holds of live holders,
 * for a hold whose holder went away without releasing it to be broken
 * (an iSCSI lock LU: a RESERVE that reached the target after its sender
 * gave up on it).  0 when a hold cannot outlive its holder (files).
 */
unsigned lun_reserve_break_ms(struct lun *lun);

/*
 * COMPARE AND WRITE (SBC-3): atomically, if the len bytes at off equal
 * expect, write data there and return 0; otherwise write nothing and return
 * -VMFS_E_MISCOMPARE, leaving the current bytes in expect when
 * current != NULL (copied into current).  len and off sector aligned.
 */
int lun_compare_and_write(struct lun *lun, const void *expect,
			  const void *data, size_t len, uint64_t off,
			  void *current);

/* ---- fault injection (tests) ------------------------------------------ */

/*
 * Wrap inner in a fault-injecting lun.  The wrapper owns inner (closing the
 * wrapper closes it).  All knobs may be changed at any time.
 */
int lun_fault_wrap(struct lun *inner, struct lun **out);
/* Fail the nth write from now (1 = next one) with err (e.g. -EIO); 0 clears. */
void lun_fault_fail_nth_write(struct lun *lun, uint64_t nth, int err);
/* Fail every write at or after byte offset limit with err (0 clears). */
void lun_fault_fail_writes_from(struct lun *lun, uint64_t limit, int err);
/* Make the wrapper claim only the primitives in caps (LUN_CAP_*, a
 * subset of the inner lun's): a LUN without ATS, as on tgt. */
void lun_fault_set_caps(struct lun *lun, unsigned caps);
/* Claim a logical sector of sector_size (512 or 4096, a multiple of the
 * inner lun's): a 4Kn LUN made of a 512-byte file.  Call before any I/O
 * through the wrapper.  0 or -EINVAL. */
int lun_fault_set_sector_size(struct lun *lun, uint32_t sector_size);
/* Add latency before every read / write. */
void lun_fault_set_latency(struct lun *lun, unsigned read_us, unsigned write_us);
/* Tear the nth write from now: only its first keep_bytes reach the LUN,
 * then the write fails with -EIO. */
void lun_fault_tear_nth_write(struct lun *lun, uint64_t nth, size_t keep_bytes);
/* The next count reads (lun_read) covering byte off come back torn:
 * garbled from off to the end of its sector, as a read racing a write of
 * the block. */
void lun_fault_tear_reads_at(struct lun *lun, uint64_t off, unsigned count);

/* Call fn(arg) once, in the writer's thread, just before the first write
 * (lun_write, a write of lun_submit, or lun_compare_and_write) covering
 * byte off is forwarded; fn may do I/O through other luns.  NULL
 * disarms. */
void lun_fault_before_write_at(struct lun *lun, uint64_t off,
			       void (*fn)(void *arg), void *arg);

/* Write recording: every write (offset, length, data) and every flush,
 * in the order they completed, each with the CLOCK_MONOTONIC time it was
 * recorded at (just after it completed). */
struct lun_rec_entry {
	enum { LUN_REC_WRITE = 1, LUN_REC_FLUSH = 2, LUN_REC_ZERO = 3 } kind;
	uint64_t off;
	uint64_t len;
	int64_t t_ns;
	void *data;   /* LUN_REC_WRITE only; owned by the recorder */
};
void lun_fault_record(struct lun *lun, bool on);
/* Entries recorded so far; valid until lun_fault_record_clear or close. */
const struct lun_rec_entry *lun_fault_records(struct lun *lun, size_t *count);
void lun_fault_record_clear(struct lun *lun);
/* Counters (writes seen by the wrapper, including failed ones). */
uint64_t lun_fault_writes(struct lun *lun);
/* Every request the wrapper forwarded (or failed), by kind: what one
 * operation costs in I/Os (a COMPARE AND WRITE counts as a caw only). */
struct lun_fault_counts {
	uint64_t reads, writes, caws, flushes, reserves, releases;
};
void lun_fault_counts(struct lun *lun, struct lun_fault_counts *out);

#endif /* VMFS_LUN_H */
