/*
 * crashsim: the crash-consistency harness (tests/crash/README.md).
 *
 * One run records every LUN write, zero_range and flush of a seeded
 * workload against a fresh volume (workload.c, keeping an exact model of
 * what the files hold: model.c), builds crash images from that log
 * (states.c: prefixes, reordered subsets of a flush epoch, torn writes)
 * and checks each one (check.c: vol_open replays, fsck -n is clean,
 * fsync'ed files are intact, no file holds bytes it never had).
 *
 * Log indices: record i is the (i+1)-th entry of the log; "index k" is a
 * position between records, the number of records before it.  A state
 * applies every record below its prefix index completely, plus possibly
 * some writes beyond it.
 */
#ifndef VMFS_TESTS_CRASHSIM_H
#define VMFS_TESTS_CRASHSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lun;
struct vol;

#define CS_SECTOR 512u
#define CS_NXATTR 4          /* xattr names a file may carry: user.cs0..3 */
#define CS_NAME_LEN 24
/* --hosts 2: host A (heartbeat slot 0) crashes, host B (slot 1) lives
 * on and recovers it (README §5). */
#define CS_MAX_HOSTS 2
enum { CS_HOST_A = 0, CS_HOST_B = 1 };

/* ---- seeded randomness: splitmix64 -------------------------------------- */

static inline uint64_t cs_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct cs_rng {
	uint64_t s;
};

static inline uint64_t cs_rand(struct cs_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return cs_mix(r->s);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t cs_below(struct cs_rng *r, uint64_t n)
{
	return cs_rand(r) % n;
}

/* Uniform in [lo, hi]. */
static inline uint64_t cs_range(struct cs_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + cs_below(r, hi - lo + 1);
}

/* ---- the recorded log ---------------------------------------------------- */

enum cs_rec_kind { CS_REC_WRITE = 1, CS_REC_FLUSH = 2, CS_REC_ZERO = 3 };

struct cs_rec {
	uint8_t kind;          /* enum cs_rec_kind */
	uint64_t off, len;     /* LUN bytes (writes and zeros) */
	uint64_t data_off;     /* writes: where the bytes are in the data file */
	int64_t t_ns;          /* recorder's CLOCK_MONOTONIC when it completed */
	uint8_t host;          /* CS_HOST_*: whose handle wrote it */
};

/*
 * The data of every write goes to a file in the work directory (mapped
 * after the recording), so the log costs page cache, not heap, and the
 * forked workers share it.
 */
struct cs_log {
	struct cs_rec *recs;
	size_t n, cap;
	int data_fd;
	uint64_t data_len;
	const uint8_t *data;   /* mapping of the data file, after cs_log_seal */
	size_t taken[CS_MAX_HOSTS]; /* wrapper entries already copied */
};

int cs_log_init(struct cs_log *l, const char *path);
int cs_log_append(struct cs_log *l, int kind, uint64_t off, uint64_t len,
		  int64_t t_ns, const void *data, uint8_t host);
/* The recorder's time of the crash of a state whose records below
 * durable are all on disk: when the last of them completed (0: none). */
int64_t cs_log_cut_ns(const struct cs_log *l, uint32_t durable);
int cs_log_seal(struct cs_log *l);
void cs_log_free(struct cs_log *l);
/*
 * Copy what the fault wrappers (one per host, fault_lun[h] recording
 * host h's writes) recorded since the last drain into l, merged in the
 * order they completed.
 */
int cs_log_drain(struct cs_log *l, struct lun *const *fault_lun,
		 unsigned nhosts);
/* The same, then clear the wrappers (only when no engine thread runs). */
int cs_log_drain_final(struct cs_log *l, struct lun *const *fault_lun,
		       unsigned nhosts);

static inline bool cs_rec_is_write(const struct cs_rec *r)
{
	return r->kind == CS_REC_WRITE || r->kind == CS_REC_ZERO;
}

/* ---- sector and xattr patterns (pattern.c) ------------------------------ */

/*
 * A data sector: header { magic, file id, version, 0, file offset } then
 * bytes derived from the three, so a sector read back says whose it is.
 */
#define CS_SECT_MAGIC 0x4d495343u   /* "CSIM" */
#define CS_XATTR_MAGIC 0x58495343u  /* "CSIX" */

void cs_sector_fill(uint8_t *s, uint32_t fid, uint32_t ver, uint64_t off);
/* Sector of file fid at off, version ver: 1 if s (len bytes, len <= 512,
 * a prefix when the file ends inside the sector) is exactly it. */
bool cs_sector_is(const uint8_t *s, size_t len, uint32_t fid, uint32_t ver,
		  uint64_t off);
/* Header fields of s, without validation of the body. */
bool cs_sector_header(const uint8_t *s, size_t len, uint32_t *fid,
		      uint32_t *ver, uint64_t *off);
bool cs_is_zero(const uint8_t *p, size_t len);

/* An xattr value: header { magic, file id, slot, version } then bytes. */
size_t cs_xattr_fill(uint8_t *v, size_t cap, uint32_t fid, uint32_t slot,
		     uint32_t ver);
bool cs_xattr_parse(const uint8_t *v, size_t len, uint32_t *fid,
		    uint32_t *slot, uint32_t *ver);
void cs_xattr_name(uint32_t slot, char out[16]);

/* ---- the model (model.c) ----------------------------------------------- */

enum { CS_TOUCH_DATA = 1, CS_TOUCH_XATTR = 2 };

/*
 * What the file was when a promise about it was made.  Two kinds:
 *  - a vol_fsync that returned (due_ns 0): durable once every record
 *    below ret is on disk;
 *  - the end of an op that changed the file (due_ns > 0): the commit
 *    interval promises it on disk in any crash that comes due_ns or
 *    later on the recorder's clock (the op's end + commit interval + the
 *    allowance for the commit's own I/O).  gone: the op unlinked it (or
 *    renamed another file over it); path is the one it had.
 */
struct cs_fsync {
	uint32_t ret;          /* log index when vol_fsync / the op returned */
	char *path;
	uint64_t size;
	uint32_t *sect;        /* version per sector below size, 0 = zeros */
	uint32_t xattr[CS_NXATTR];
	bool datasync;         /* fdatasync: promises nothing about xattrs */
	bool gone;
	/* Host B's op ended (B writes everything home before an op
	 * returns): due once every record below ret is applied, which a
	 * state whose crash index is ret or later does for B's records. */
	bool live;
	int64_t due_ns;
};

/* An op that changed the file's data or path (or its xattrs). */
struct cs_touch {
	uint32_t start;        /* log index when the op started */
	uint8_t what;          /* CS_TOUCH_* */
};

/*
 * A node is a file or directory as created; its id is the file id in
 * the sector headers.  Node 0 is the root, node 1 lost+found.
 */
struct cs_node {
	uint32_t id;
	bool dir;
	bool live;
	uint64_t ino;
	uint32_t parent;       /* node id of the directory holding it */
	uint8_t host;          /* CS_HOST_* that made it and alone changes it */
	bool shared;           /* a directory both hosts create files in */
	bool pinned;           /* a host's top directory: never moved */
	char name[CS_NAME_LEN];
	uint64_t size, max_size;
	uint32_t *sect;        /* version per sector below size */
	uint64_t sect_cap;
	uint32_t xattr[CS_NXATTR];
	struct cs_fsync *fsyncs;
	size_t nfsync, fsync_cap;
	struct cs_touch *touches;
	size_t ntouch, touch_cap;
};

/* What a version number was: a data write or an xattr value. */
struct cs_ver {
	uint32_t fid;
	uint8_t xattr;         /* 0 data, else 1 + slot */
	uint64_t first;        /* data: first sector (file offset / 512) */
	uint64_t count;        /* data: sectors */
};

struct cs_op {
	uint32_t start, end;   /* log indices around the op */
	char text[112];
};

/* Every path a node had: path -> node ids. */
struct cs_path {
	struct cs_path *next;
	uint32_t *ids;
	size_t nids;
	char path[];
};

#define CS_PATH_BUCKETS 4096

struct cs_model {
	struct cs_node *nodes;
	size_t nnodes, cap;
	struct cs_ver *vers;   /* index = version; 0 unused */
	size_t nvers, vcap;
	struct cs_op *ops;
	size_t nops, ops_cap;
	struct cs_path *paths[CS_PATH_BUCKETS];
};

int cs_model_init(struct cs_model *m);
void cs_model_free(struct cs_model *m);
struct cs_node *cs_node_new(struct cs_model *m, bool dir, uint32_t parent,
			    const char *name, uint64_t ino);
/* "/a/b" of a live node (out holds at least 512 bytes). */
void cs_node_path(const struct cs_model *m, uint32_t id, char *out,
		  size_t len);
int cs_path_note(struct cs_model *m, const char *path, uint32_t id);
const struct cs_path *cs_path_find(const struct cs_model *m,
				   const char *path);
bool cs_path_had(const struct cs_path *p, uint32_t id);
uint32_t cs_ver_new(struct cs_model *m, uint32_t fid, int xattr_slot,
		    uint64_t first, uint64_t count);
/* Sector (fid, ver, sector index) was written by some op. */
bool cs_ver_valid(const struct cs_model *m, uint32_t fid, uint32_t ver,
		  uint64_t sector);
bool cs_xver_valid(const struct cs_model *m, uint32_t fid, uint32_t slot,
		   uint32_t ver);
int cs_node_resize(struct cs_node *n, uint64_t size);
int cs_touch_add(struct cs_node *n, uint32_t start, uint8_t what);
/* Touch n and, for a directory, everything below it. */
int cs_touch_tree(struct cs_model *m, uint32_t id, uint32_t start,
		  uint8_t what);
int cs_fsync_add(struct cs_model *m, struct cs_node *n, uint32_t ret,
		 bool datasync);
/* The commit-interval promise of an op that changed n (struct cs_fsync). */
int cs_interval_add(struct cs_model *m, struct cs_node *n, uint32_t ret,
		    int64_t due_ns);
/* The promise of host B's op that changed n and ended at ret. */
int cs_live_add(struct cs_model *m, struct cs_node *n, uint32_t ret);
int cs_op_begin(struct cs_model *m, uint32_t start, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The op during which record idx was written (or NULL). */
const struct cs_op *cs_op_at(const struct cs_model *m, uint32_t idx);

/*
 * What must hold after a crash where every record below durable is on
 * disk, none from crash on, and the last one on disk completed at cut_ns:
 * the newest promise of n that is due -- an fsync that returned at or
 * before durable, or an op whose commit interval ran out by cut_ns --
 * unless an op touching any of what (CS_TOUCH_*) started between that
 * promise's return and crash.  A promise about xattrs (CS_TOUCH_XATTR in
 * what) does not come from fdatasync.  NULL when nothing is promised.
 */
const struct cs_fsync *cs_promise(const struct cs_node *n, uint32_t durable,
				  uint32_t crash, int64_t cut_ns, uint8_t what);

/* ---- the recorded workload (workload.c) -------------------------------- */

struct cs_wl_opts {
	uint64_t seed;
	unsigned nops;
	bool verbose;
	unsigned commit_ms;    /* the volume's commit interval */
	unsigned slack_ms;     /* allowance for one commit's own I/O */
	unsigned pause_every;  /* ops between idle pauses (0: none) */
	unsigned hosts;        /* 1, or 2: A and B interleaved (README §5) */
	unsigned lease_ms;     /* two hosts: the heartbeat lease */
};

/* Run the workload on the volume in flun[h] (per host, each a recording
 * fault wrapper of its own handle of one image), filling log and model;
 * closes the volume at the end. */
int cs_workload_run(struct lun *const *flun, const struct cs_wl_opts *o,
		    struct cs_log *log, struct cs_model *m, char *err,
		    size_t errlen);

/* ---- hosts of a two-host run (hosts.c) ----------------------------------- */

/* Host h's UUID in a run of seed (the check knows B by it). */
void cs_host_uuid(uint64_t seed, unsigned h, uint8_t uuid[16]);

struct cs_host {
	struct hb *hb;
	struct vol *v;
	uint8_t uuid[16];
};

/* Join the heartbeat of the volume on flun as host h (lease_ms), in
 * slot h (-EUSERS otherwise). */
int cs_host_join(struct lun *flun, uint64_t seed, unsigned h,
		 unsigned lease_ms, struct cs_host *ch);
/* Open the volume as vmfsd does (its own journal) and share it. */
int cs_host_open(struct lun *flun, unsigned commit_ms, struct cs_host *ch);
/* Close the volume, then leave the heartbeat. */
int cs_host_close(struct cs_host *ch);
/*
 * A restarted host B on a crash image: recover B's own slot (a restart),
 * then every other host's (the survivor, vol_recover_slot), then open
 * the volume journaling into B's slot.  What failed goes to msg.
 */
int cs_host_recover_b(struct lun *lun, uint64_t seed, struct vol **out,
		      char *msg, size_t len);

/* ---- a recording on disk (recording.c) ------------------------------------ */

int cs_recording_save(const char *path, uint64_t seed, unsigned nops,
		      unsigned hosts, const struct cs_log *l,
		      const struct cs_model *m);
/* Fills l's records (not its data) and m. */
int cs_recording_load(const char *path, uint64_t *seed, unsigned *nops,
		      unsigned *hosts, struct cs_log *l, struct cs_model *m);

/* ---- crash states (states.c) -------------------------------------------- */

enum cs_state_kind { CS_ST_PREFIX, CS_ST_SUBSET, CS_ST_TORN };

struct cs_state {
	uint8_t kind;
	uint32_t at;           /* records [0, at) applied */
	uint32_t end;          /* subset: epoch end (exclusive); torn: at + 1 */
	uint64_t seed;         /* subset/torn: which writes or sectors */
};

struct cs_plan_opts {
	uint64_t seed;
	size_t max_states;
	bool full;             /* every prefix, whatever max_states says */
};

int cs_plan(const struct cs_log *l, const struct cs_plan_opts *o,
	    struct cs_state **out, size_t *n);
const char *cs_state_kind_name(int kind);

/* One extra piece a state writes beyond its prefix. */
struct cs_extra {
	uint32_t rec;          /* record index */
	uint64_t off, len;     /* LUN range (part of the record for a tear) */
};

/*
 * The writes a state applies beyond its prefix, in order, and the
 * indices the oracle needs: durable (every record below it applied) and
 * crash (no record at or above it applied).
 */
int cs_state_extras(const struct cs_log *l, const struct cs_state *s,
		    struct cs_extra **out, size_t *n, uint32_t *durable,
		    uint32_t *crash);
void cs_state_describe(const struct cs_log *l, const struct cs_state *s,
		       char *out, size_t len);

/* Images: one working image and its shadow (the current prefix). */
struct cs_image {
	int work_fd, shadow_fd;
	uint32_t at;           /* prefix both hold */
	uint8_t *buf;
	size_t buf_len;
};

int cs_image_open(struct cs_image *im, const char *base, const char *work,
		  const char *shadow);
void cs_image_close(struct cs_image *im);
/* Apply records [im->at, at) to both files. */
int cs_image_advance(struct cs_image *im, const struct cs_log *l,
		     uint32_t at);
int cs_image_apply_extra(struct cs_image *im, const struct cs_log *l,
			 const struct cs_extra *e);
/* Make [off, off+len) of the work image the shadow's again. */
int cs_image_restore(struct cs_image *im, uint64_t off, uint64_t len);
/* The work image differs from the shadow (a harness bug; --paranoid). */
bool cs_image_differs(struct cs_image *im);
int cs_file_copy(const char *from, const char *to);

/* ---- checking one state (check.c) --------------------------------------- */

enum {
	CS_FAIL_OPEN = 0x01,    /* vol_open (replay) failed */
	CS_FAIL_CLOSE = 0x02,   /* vol_close after it failed */
	CS_FAIL_FSCK = 0x04,    /* fsck -n not clean */
	CS_FAIL_REOPEN = 0x08,  /* read-only vol_open failed */
	CS_FAIL_LOST = 0x10,    /* a promised file missing or changed */
	CS_FAIL_GARBAGE = 0x20, /* bytes a file never had, unknown names */
	CS_FAIL_CRASH = 0x40,   /* the checker died (signal) */
	CS_FAIL_TIMEOUT = 0x80, /* the checker hung */
	CS_FAIL_HARNESS = 0x100, /* the harness itself failed */
	CS_FAIL_POST = 0x200    /* host B's ops after recovering A failed */
};

struct cs_check_ctx {
	const struct cs_model *m;
	struct lun *lun;       /* the work image, in a recording fault wrapper */
	const char *tmp_dir;
	unsigned hosts;        /* 2: host B recovers A and works on (§5) */
	uint64_t seed;         /* the run's (host UUIDs) */
	uint64_t state_seed;   /* which files B's post-recovery ops take */
};

/* How much a check looked at (a check that looks at nothing cannot fail). */
struct cs_check_stats {
	uint64_t files;        /* regular files read */
	uint64_t sectors;      /* sectors classified */
	uint64_t promises;     /* promised files compared exactly */
	uint64_t interval;     /* of those, promised by the commit interval */
	uint64_t gone;         /* unlinked files promised to be gone */
	uint64_t live;         /* of the promises, host B's (two hosts) */
	uint64_t post;         /* host B's post-recovery ops checked */
};

/* 0 if the state passes, else CS_FAIL_* bits with what failed in msg;
 * adds to st. */
unsigned cs_check_state(const struct cs_check_ctx *c, uint32_t durable,
			uint32_t crash, int64_t cut_ns, char *msg, size_t len,
			struct cs_check_stats *st);
const char *cs_fail_name(unsigned bit);
/* Compare the volume with the model exactly (the final state). */
int cs_model_verify(struct vol *v, const struct cs_model *m, char *err,
		    size_t errlen);
/* fsck -n of the volume on lun: true when clean, else what it said. */
bool cs_fsck_clean(struct lun *lun, const char *tmp_dir, char *msg,
		   size_t len);

/* Engine log lines (qb_log) of the current state, for failure reports. */
void cs_log_capture_init(bool echo);
void cs_log_capture_reset(void);
const char *cs_log_capture_text(void);

/* Append to a bounded message buffer (never overflows, keeps a NUL). */
void cs_msg(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* VMFS_TESTS_CRASHSIM_H */
