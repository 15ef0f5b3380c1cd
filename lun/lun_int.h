/*
 * lun internals: the backend operations table behind include/vmfs/lun.h,
 * the file backend's shared state, and the crc32c entry points the unit
 * tests compare.  Nothing outside lun/ (and its own unit tests) includes
 * this header.
 *
 * Layering: lun.c validates every argument (alignment, bounds, read-only)
 * once, then calls lun->ops.  A backend therefore only ever sees sector
 * aligned buffers, offsets and lengths inside the LUN, and len > 0.  The
 * fault wrapper is a backend whose ops call the public lun_* functions of
 * the lun it wraps, so the inner lun re-validates (cheap) and stays
 * unaware of the wrapper.
 */
#ifndef VMFS_LUN_INT_H
#define VMFS_LUN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmfs/lun.h"

#define LUN_BUF_ALIGN 4096u
#define LUN_DEFAULT_IO_TIMEOUT_MS 10000u

#define lun_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct lun_ops {
	const char *kind;	/* "file", "fault", later "iscsi" */
	int (*read)(struct lun *lun, void *buf, size_t len, uint64_t off);
	int (*write)(struct lun *lun, const void *buf, size_t len,
		     uint64_t off);
	/* ios[] are validated; backends set every ios[i].result. */
	int (*submit)(struct lun *lun, struct lun_io *ios, unsigned n);
	int (*flush)(struct lun *lun);
	int (*zero_range)(struct lun *lun, uint64_t off, uint64_t len);
	int (*reserve)(struct lun *lun, unsigned wait_ms);
	int (*release)(struct lun *lun);
	/* Optional (0 without): lun_reserve_break_ms. */
	unsigned (*reserve_break_ms)(struct lun *lun);
	int (*compare_and_write)(struct lun *lun, const void *expect,
				 const void *data, size_t len, uint64_t off,
				 void *current);
	/* Optional: what the backend found out about the LUN (lun_probe). */
	void (*describe)(struct lun *lun, struct lun_probe *out);
	/* Optional: several paths (lun_paths); without, one: the name. */
	unsigned (*paths)(struct lun *lun, bool probe, struct lun_path *out,
			  unsigned max, unsigned *failovers);
	/* Optional (-EOPNOTSUPP without): storage fencing, lun_pr_*. */
	int (*pr_register)(struct lun *lun, uint64_t key);
	int (*pr_preempt)(struct lun *lun, uint64_t victim);
	/* Optional (-EOPNOTSUPP without): the LUN's size now, in bytes,
	 * a multiple of sector_size (lun_size_refresh: it was enlarged). */
	int (*capacity)(struct lun *lun, uint64_t *bytes);
	/* Optional: called after lun->io_timeout_ms changed. */
	void (*set_io_timeout)(struct lun *lun, unsigned timeout_ms);
	/* Optional: called after lun->lock_io_timeout_ms changed. */
	void (*set_lock_io_timeout)(struct lun *lun, unsigned timeout_ms);
	/* Frees the backend, including lun->name and the lun itself. */
	void (*close)(struct lun *lun);
};

/* Embedded as the first member of every backend's handle. */
struct lun {
	const struct lun_ops *ops;
	char *name;
	_Atomic uint64_t size_bytes;	/* a multiple of sector_size; grows
					 * only (lun_size_refresh) */
	uint32_t sector_size;	/* 512 or 4096 */
	int flags;		/* LUN_RDONLY */
	_Atomic unsigned io_timeout_ms;
	_Atomic unsigned lock_io_timeout_ms;	/* 0: io_timeout_ms */
	_Atomic bool fenced;	/* lun_fence(): every I/O fails with -EIO */
	_Atomic unsigned caps;	/* LUN_CAP_*: set by the backend at open */
	/*
	 * The write gate (lun_gate_arm): writes are issued only while
	 * vmfs_mono_ms() < gate_until_ms (INT64_MAX: no gate).  The other
	 * fields are set before gate_until_ms is stored and are read only
	 * after it is loaded, so arming needs no lock.
	 */
	_Atomic int64_t gate_until_ms;
	_Atomic bool gate_tripped;	/* the callback ran (once) */
	uint64_t gate_exempt_off, gate_exempt_len;
	void (*gate_expired)(void *ctx, int64_t overdue_ms);
	void *gate_ctx;
	/* lun_hold_mutex(): one hold of the reservation at a time. */
	pthread_mutex_t hold_mu;
	/* lun_set_owner_check(), under owner_mu. */
	pthread_mutex_t owner_mu;
	uint64_t owner_off;
	size_t owner_len;
	bool (*owner_ok)(const void *buf, void *arg);
	void *owner_arg;
};

/* lun.c: fill in the common part of a backend handle. */
int lun_init_common(struct lun *lun, const struct lun_ops *ops,
		    const char *name, int flags);
void lun_fini_common(struct lun *lun);

/* lun.c: zero_range done by writing zeros through lun->ops->write, in
 * chunks of LUN_ZERO_CHUNK (backends without a cheaper way). */
#define LUN_ZERO_CHUNK (1u << 20)
int lun_zero_by_writes(struct lun *lun, uint64_t off, uint64_t len);

/* ---- file backend (file.c, file_aio.c, file_locks.c) ------------------ */

/*
 * COMPARE AND WRITE calls of one handle on overlapping ranges must not
 * run concurrently: OFD locks taken through the same open file description
 * never conflict with each other, so they only serialize *different*
 * handles.  Within a handle, sector s is guarded by caw_stripe[s % N].
 */
#define FILE_CAW_STRIPES 16

struct file_ctx;

struct file_lun {
	struct lun lun;
	int fd;
	bool is_blkdev;
	uint64_t id;			/* unique, never reused: keys file_ctx */
	struct file_ctx *ctxs;		/* every thread's context; file_ctx_lock */

	/*
	 * Reservation state of this handle (file_locks.c).  res_lock orders
	 * the OFD lock transitions on the reservation byte: held exclusive
	 * while res_held, held shared while any CAW of this handle runs
	 * without the reservation (caw_gate > 0).
	 */
	pthread_mutex_t res_lock;
	bool res_held;
	unsigned caw_gate;
	pthread_mutex_t caw_stripe[FILE_CAW_STRIPES];
};

static inline struct file_lun *file_lun_of(struct lun *lun)
{
	return lun_container_of(lun, struct file_lun, lun);
}

/* file.c: open PATH (a regular file or a block device). */
int lun_file_open(const char *path, int flags, struct lun **out);

/* file_aio.c: O_DIRECT I/O through libaio with bounce buffers. */
int lun_file_aio_rw(struct file_lun *fl, struct lun_io *ios, unsigned n);
void lun_file_aio_fini(struct file_lun *fl);

/* file_locks.c: SCSI-2 RESERVE/RELEASE and SBC-3 COMPARE AND WRITE. */
int lun_file_locks_init(struct file_lun *fl);
void lun_file_locks_fini(struct file_lun *fl);
int lun_file_reserve(struct lun *lun, unsigned wait_ms);
int lun_file_release(struct lun *lun);
int lun_file_compare_and_write(struct lun *lun, const void *expect,
			   const void *data, size_t len, uint64_t off,
			   void *current);

/* ---- iscsi backend (iscsi.c) -------------------------------------------- */

/* Open an iscsi:// spec: log in, read the geometry, probe the target. */
int lun_iscsi_open(const char *spec, int flags, struct lun **out);
/* A CHAP file's text ("username=", "password=" lines): 0 or
 * -VMFS_E_ISCSI_CHAP_FILE, -ENAMETOOLONG. */
int lun_iscsi_chap_parse(const char *text, char *user, size_t ulen,
			 char *secret, size_t slen);
/* Split "URL?lock_lun=N" into the URL libiscsi parses and N (-1 when
 * absent): 0, -VMFS_E_ISCSI_URL, -ENAMETOOLONG. */
int lun_iscsi_url_split(const char *spec, char *url, size_t len,
			int *lock_lun);
/* PERSISTENT RESERVE IN READ KEYS: up to max registered keys. */
int lun_iscsi_read_keys(struct lun *lun, uint64_t *keys, unsigned max,
			unsigned *n);
/* PERSISTENT RESERVE IN READ RESERVATION (of the lock LU where the URL
 * names one): the holder's key, 0 when nobody holds it. */
int lun_iscsi_read_holder(struct lun *lun, uint64_t *key);
/* Which part of an iscsi:// URL a libiscsi login error message blames,
 * as -VMFS_E_ISCSI_{PORTAL,TARGET,LUN,AUTH}. */
int lun_iscsi_login_error(const char *msg);

/* ---- crc32c.c: both implementations, for the unit tests --------------- */
uint32_t lun_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* Only valid when lun_crc32c_hw_available(). */
uint32_t lun_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool lun_crc32c_hw_available(void);

#endif /* VMFS_LUN_INT_H */
