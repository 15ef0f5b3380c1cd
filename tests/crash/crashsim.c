/*
 * crashsim: crash-consistency harness for the volume engine
 * (tests/crash/README.md).
 *
 *   crashsim --dir DIR [--seed S] [--max-states N | --full] [--ops N]
 *            [--hosts 2 [--lease-ms MS]] [--jobs J]
 *            [--state I [--save-image PATH]] [--list]
 *            [--save-recording | --from-recording] [--save-failed DIR2]
 *            [--report N] [--timeout SEC] [--keep] [--paranoid] [-v]
 *
 * Makes a fresh volume in DIR, records a seeded workload against it (or
 * loads the recording an earlier --save-recording left in DIR), and
 * checks N crash states built from the recording, in J forked workers
 * (a checker that crashes or hangs fails its state, and a new worker
 * takes over).  Prints "crash states: checked N, failed M" and details
 * of the first failures; exit 0 when none failed, 1 when some did, 2
 * when the harness itself could not run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "vmfs/log.h"

#include "vmfs/clock.h"
#include "vmfs/lun.h"
#include "vmfs/vol.h"
#include "crashsim.h"

/* The volume: small, with small blocks so files change map type early. */
#define VOL_BYTES (64ull << 20)
#define VOL_FILE_BLOCK (64u << 10)
#define VOL_SMALL_BLOCK (4u << 10)
#define VOL_MAX_HOSTS 2
#define VOL_JOURNAL (4ull << 20)

#define DEFAULT_STATES 1000
#define FULL_STATES 10000
#define DEFAULT_OPS 400
/* The recorded volume's commit interval, the allowance for one commit's
 * own write and flush, and ops between idle pauses (README §1). */
#define DEFAULT_COMMIT_MS 100
#define DEFAULT_SLACK_MS 250
#define DEFAULT_PAUSE_EVERY 60
/* Two hosts: a lease no stall of a loaded machine outlasts (a host whose
 * renewals stop that long is recovered by the other mid-recording). */
#define DEFAULT_LEASE_MS 10000
#define MAX_JOBS 64
#define MSG_LEN 3072

enum { ST_TODO = 0, ST_PASS = 1, ST_FAIL = 2 };

struct result {
	int32_t status;
	uint32_t fails;        /* CS_FAIL_* */
	struct cs_check_stats st;
	char msg[MSG_LEN];
};

/* Shared with the workers (MAP_SHARED). */
struct shared {
	uint64_t next;         /* next state to take */
	uint64_t saved;        /* crash images saved by --save-failed */
	int64_t cur[MAX_JOBS]; /* state each worker is on, -1 between */
};

struct opts {
	const char *dir;
	uint64_t seed;
	size_t max_states;
	bool full, list, verbose, keep, paranoid;
	bool save_rec, from_rec;
	unsigned ops, jobs, report, timeout_s;
	unsigned commit_ms, slack_ms, pause_every;
	unsigned hosts, lease_ms;
	int64_t only;          /* --state */
	const char *save_image;
	const char *save_failed;
};

struct run {
	struct opts o;
	char base[4096];
	struct cs_log log;
	struct cs_model model;
	struct cs_state *states;
	size_t nstates;
	struct shared *sh;
	struct result *res;
	const char *argv0;
};

static double now_s(void)
{
	return (double)vmfs_mono_ns() / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: crashsim --dir DIR [options]\n"
		"  --dir DIR          work directory (images, the recorded log)\n"
		"  --seed S           workload and state seed (default 1)\n"
		"  --max-states N     crash states to check (default %d)\n"
		"  --full             every prefix of the log and at least %d states\n"
		"  --ops N            workload operations (default %d)\n"
		"  --commit-ms MS     commit interval of the recorded volume (default %d)\n"
		"  --commit-slack-ms MS  allowance for a commit's own I/O: a change\n"
		"                     is promised on disk once interval + this passed\n"
		"                     (default %d)\n"
		"  --pause-every N    idle 2 x (interval + allowance) every N ops\n"
		"                     (default %d, 0: never)\n"
		"  --hosts N          1, or 2: host A crashes while host B shares the\n"
		"                     volume, then B recovers A and works on (default 1)\n"
		"  --lease-ms MS      two hosts: the heartbeat lease (default %d)\n"
		"  --jobs J           checker processes (default: twice the CPUs)\n"
		"  --state I          check only state I (same recording and sizes)\n"
		"  --save-recording   keep the volume, the log and the model in DIR\n"
		"  --from-recording   check the recording saved in DIR (no workload)\n"
		"  --save-image PATH  with --state: save the crash image there\n"
		"  --save-failed DIR  save the crash images of the first --report\n"
		"                     failing states there (DIR/state-I.img)\n"
		"  --list             print the ops and the states, check nothing\n"
		"  --report N         failures to describe (default 10)\n"
		"  --timeout SEC      per state (default 120)\n"
		"  --keep             keep the files in DIR\n"
		"  --paranoid         after each state, compare the whole work\n"
		"                     image with its shadow (harness self-check)\n"
		"  -v, --verbose      ops as they run, engine messages, every state\n",
		DEFAULT_STATES, FULL_STATES, DEFAULT_OPS, DEFAULT_COMMIT_MS,
		DEFAULT_SLACK_MS, DEFAULT_PAUSE_EVERY, DEFAULT_LEASE_MS);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || end == s || *end || *s == '-' ? -1 : 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "max-states", required_argument, NULL, 'n' },
		{ "full", no_argument, NULL, 'F' },
		{ "ops", required_argument, NULL, 'o' },
		{ "commit-ms", required_argument, NULL, 'c' },
		{ "commit-slack-ms", required_argument, NULL, 'C' },
		{ "pause-every", required_argument, NULL, 'p' },
		{ "hosts", required_argument, NULL, 'H' },
		{ "lease-ms", required_argument, NULL, 'E' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "state", required_argument, NULL, 'S' },
		{ "save-image", required_argument, NULL, 'I' },
		{ "save-failed", required_argument, NULL, 'f' },
		{ "list", no_argument, NULL, 'l' },
		{ "report", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "keep", no_argument, NULL, 'k' },
		{ "paranoid", no_argument, NULL, 'P' },
		{ "save-recording", no_argument, NULL, 'R' },
		{ "from-recording", no_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool states_set = false;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->max_states = DEFAULT_STATES;
	o->ops = DEFAULT_OPS;
	o->commit_ms = DEFAULT_COMMIT_MS;
	o->slack_ms = DEFAULT_SLACK_MS;
	o->pause_every = DEFAULT_PAUSE_EVERY;
	o->hosts = 1;
	o->lease_ms = DEFAULT_LEASE_MS;
	/* The checks wait on the disk as much as on the CPU. */
	o->jobs = ncpu > 0 ? (unsigned)(2 * ncpu < MAX_JOBS ? 2 * ncpu : MAX_JOBS) : 2;
	o->report = 10;
	o->timeout_s = 120;
	o->only = -1;
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		uint64_t x = 0;

		if (strchr("snojSrtcCpHE", c) && parse_u64(optarg, &x)) {
			fprintf(stderr, "crashsim: %s: not a number\n", optarg);
			return -1;
		}
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 's': o->seed = x; break;
		case 'n': o->max_states = (size_t)x; states_set = true; break;
		case 'F': o->full = true; break;
		case 'o': o->ops = (unsigned)x; break;
		case 'c': o->commit_ms = x < 1 ? 1 : x > 60000 ? 60000 : (unsigned)x; break;
		case 'C': o->slack_ms = x > 60000 ? 60000 : (unsigned)x; break;
		case 'p': o->pause_every = (unsigned)x; break;
		case 'H': o->hosts = (unsigned)x; break;
		case 'E': o->lease_ms = (unsigned)x; break;
		case 'j': o->jobs = x < 1 ? 1 : x > MAX_JOBS ? MAX_JOBS : (unsigned)x; break;
		case 'S': o->only = (int64_t)x; break;
		case 'I': o->save_image = optarg; break;
		case 'f': o->save_failed = optarg; break;
		case 'l': o->list = true; break;
		case 'r': o->report = (unsigned)x; break;
		case 't': o->timeout_s = (unsigned)x; break;
		case 'k': o->keep = true; break;
		case 'P': o->paranoid = true; break;
		case 'R': o->save_rec = true; break;
		case 'L': o->from_rec = true; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!o->dir || optind != argc) {
		usage(stderr);
		return -1;
	}
	if (o->full && !states_set)
		o->max_states = FULL_STATES;
	if (o->hosts < 1 || o->hosts > CS_MAX_HOSTS) {
		fprintf(stderr, "crashsim: --hosts %u: give 1 or 2\n", o->hosts);
		return -1;
	}
	if (o->save_rec && o->from_rec) {
		fprintf(stderr, "crashsim: --save-recording and --from-recording exclude each other\n");
		return -1;
	}
	return 0;
}

/* ---- setup: mkfs and the recording ------------------------------------------ */

/*
 * Fill most of the file and small blocks with ballast, then delete it, so
 * that the workload's allocations reuse blocks holding data of a file the
 * model never had (file id BALLAST_FID, version 0: never valid).  A crash
 * state where a file points at a block whose new data did not reach the
 * LUN then shows ballast, not zeros, and fails.
 */
#define BALLAST_FID 0x0ba11a57u

static int ballast_fill(struct vol *v, uint64_t ino, uint64_t bytes)
{
	uint8_t *buf = lun_buf_alloc(256 * 1024);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < bytes && !ret; off += 256 * 1024) {
		size_t n = bytes - off < 256 * 1024 ? (size_t)(bytes - off) : 256 * 1024;
		ssize_t w;

		for (size_t s = 0; s < n; s += CS_SECTOR)
			cs_sector_fill(buf + s, BALLAST_FID, 0, off + s);
		w = vol_write(v, ino, buf, n, off);
		if (w == -ENOSPC)
			break;
		ret = w < 0 ? (int)w : 0;
	}
	lun_buf_free(buf);
	return ret;
}

static int ballast(struct lun *lun)
{
	struct vol_geom g;
	struct vol_usage u;
	struct vol_attr a;
	struct vol *v;
	char name[32];
	uint64_t small_left;
	int ret, nsmall = 0;

	ret = vol_open(lun, 0, &v);
	if (ret)
		return ret;
	vol_geom_get(v, &g);
	/* Small blocks: files just under the small-map limit. */
	for (;;) {
		vol_usage_get(v, &u);
		small_left = (u.total[VMFS_RES_SMALL] - u.used[VMFS_RES_SMALL]) *
			     g.small_block_size;
		if (small_left < u.total[VMFS_RES_SMALL] * g.small_block_size / 10)
			break;
		snprintf(name, sizeof(name), "ballast-s%d", nsmall++);
		ret = vol_create(v, g.root_ino, name, S_IFREG | 0644, 0, 0, 0, &a);
		if (!ret)
			ret = ballast_fill(v, a.ino, 15 * g.small_block_size);
		if (!ret)
			vol_forget(v, a.ino, 1);
		if (ret)
			break;
	}
	/* File blocks: one file over nine tenths of them. */
	if (!ret) {
		vol_usage_get(v, &u);
		ret = vol_create(v, g.root_ino, "ballast-f", S_IFREG | 0644, 0, 0,
				 0, &a);
		if (!ret)
			ret = ballast_fill(v, a.ino,
					   (u.total[VMFS_RES_FILE] - u.used[VMFS_RES_FILE]) *
					   g.file_block_size * 9 / 10);
		if (!ret) {
			vol_forget(v, a.ino, 1);
			ret = vol_unlink(v, g.root_ino, "ballast-f");
		}
	}
	for (int i = 0; !ret && i < nsmall; i++) {
		snprintf(name, sizeof(name), "ballast-s%d", i);
		ret = vol_unlink(v, g.root_ino, name);
	}
	if (vol_close(v) && !ret)
		ret = -EIO;
	return ret;
}

static int make_base(struct run *R)
{
	struct vol_mkfs_opts mo;
	struct lun *lun = NULL;
	uint8_t uuid[VMFS_UUID_SIZE];
	uint64_t a = cs_mix(R->o.seed), b = cs_mix(R->o.seed + 1);
	int fd, ret;

	snprintf(R->base, sizeof(R->base), "%s/base.img", R->o.dir);
	fd = open(R->base, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)VOL_BYTES)) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		return ret;
	}
	close(fd);
	ret = lun_open(R->base, 0, &lun);
	if (ret)
		return ret;
	memcpy(uuid, &a, 8);
	memcpy(uuid + 8, &b, 8);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	vol_mkfs_opts_init(&mo);
	mo.label = "crashsim";
	mo.file_block_size = VOL_FILE_BLOCK;
	mo.small_block_size = VOL_SMALL_BLOCK;
	mo.max_hosts = VOL_MAX_HOSTS;
	mo.journal_size = VOL_JOURNAL;
	mo.uuid = uuid;
	ret = vol_mkfs(lun, &mo, NULL);
	if (!ret)
		ret = ballast(lun);
	if (!ret)
		ret = lun_flush(lun);
	lun_close(lun);
	return ret;
}

/* Run the workload on a copy of base, then check the result exactly. */
static int record(struct run *R)
{
	struct cs_wl_opts wo = { .seed = R->o.seed, .nops = R->o.ops,
				 .verbose = R->o.verbose,
				 .commit_ms = R->o.commit_ms,
				 .slack_ms = R->o.slack_ms,
				 .pause_every = R->o.pause_every,
				 .hosts = R->o.hosts,
				 .lease_ms = R->o.lease_ms };
	char path[4096], err[MSG_LEN] = "";
	struct lun *flun[CS_MAX_HOSTS] = { NULL };
	struct vol *v = NULL;
	int ret;

	snprintf(path, sizeof(path), "%s/recorded.img", R->o.dir);
	ret = cs_file_copy(R->base, path);
	/* One handle per host, each recorded by its own wrapper. */
	for (unsigned h = 0; h < R->o.hosts && !ret; h++) {
		struct lun *inner = NULL;

		ret = lun_open(path, 0, &inner);
		if (!ret) {
			ret = lun_fault_wrap(inner, &flun[h]);
			if (ret)
				lun_close(inner);
		}
	}
	if (ret) {
		fprintf(stderr, "crashsim: %s: %s\n", path, vmfs_strerror(ret));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/log.data", R->o.dir);
	ret = cs_log_init(&R->log, path);
	if (!ret)
		ret = cs_model_init(&R->model);
	if (!ret)
		ret = cs_workload_run(flun, &wo, &R->log, &R->model, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "crashsim: the workload failed: %s\n",
			err[0] ? err : vmfs_strerror(ret));
		goto out;
	}
	/* The model must be exactly what the volume holds, or no check means
	 * anything. */
	ret = vol_open(flun[0], VOL_RDONLY, &v);
	if (ret) {
		fprintf(stderr, "crashsim: reopening the recorded volume: %s\n",
			vmfs_strerror(ret));
		goto out;
	}
	ret = cs_model_verify(v, &R->model, err, sizeof(err));
	vol_close(v);
	if (ret)
		fprintf(stderr, "crashsim: the recorded volume differs from the model (a harness bug):\n%s",
			err);
	/* Not a crash state: if this fails, every state will. */
	if (!ret && !cs_fsck_clean(flun[0], R->o.dir, err, sizeof(err)))
		fprintf(stderr, "crashsim: warning: the volume is not clean after the workload, before any crash: %s",
			err);
	if (!ret && R->o.save_rec) {
		snprintf(path, sizeof(path), "%s/recording.bin", R->o.dir);
		ret = cs_recording_save(path, R->o.seed, R->o.ops, R->o.hosts,
					&R->log, &R->model);
		if (ret)
			fprintf(stderr, "crashsim: %s: %s\n", path, vmfs_strerror(ret));
	}
out:
	for (unsigned h = 0; h < CS_MAX_HOSTS; h++)
		lun_close(flun[h]);
	if (!R->o.keep) {
		snprintf(path, sizeof(path), "%s/recorded.img", R->o.dir);
		unlink(path);
	}
	return ret;
}

/* --from-recording: what an earlier --save-recording left in DIR. */
static int load(struct run *R)
{
	char path[4096];
	struct stat st;
	int ret;

	snprintf(R->base, sizeof(R->base), "%s/base.img", R->o.dir);
	snprintf(path, sizeof(path), "%s/recording.bin", R->o.dir);
	ret = cs_recording_load(path, &R->o.seed, &R->o.ops, &R->o.hosts,
				&R->log, &R->model);
	if (!ret) {
		snprintf(path, sizeof(path), "%s/log.data", R->o.dir);
		R->log.data_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (R->log.data_fd < 0 || fstat(R->log.data_fd, &st))
			ret = -errno;
		else
			R->log.data_len = (uint64_t)st.st_size;
	}
	if (!ret && access(R->base, R_OK))
		ret = -errno;
	if (ret)
		fprintf(stderr, "crashsim: loading the recording in %s: %s\n",
			R->o.dir, vmfs_strerror(ret));
	return ret;
}

static uint64_t log_fingerprint(const struct cs_log *l)
{
	uint64_t h = 0;

	for (size_t i = 0; i < l->n; i++)
		h = cs_mix(h ^ l->recs[i].kind ^ l->recs[i].off << 2 ^
			   l->recs[i].len << 40);
	return h;
}

static void print_workload(const struct run *R, double secs)
{
	size_t nw = 0, nz = 0, nf = 0, kinds[3] = { 0 };

	for (size_t i = 0; i < R->log.n; i++) {
		nw += R->log.recs[i].kind == CS_REC_WRITE;
		nz += R->log.recs[i].kind == CS_REC_ZERO;
		nf += R->log.recs[i].kind == CS_REC_FLUSH;
	}
	for (size_t i = 0; i < R->nstates; i++)
		kinds[R->states[i].kind]++;
	printf("crashsim: seed %" PRIu64 "%s: %zu ops, %zu records (%zu writes, %zu zero ranges, %zu flushes), %.1f MiB written, ready in %.1f s; log fingerprint %016" PRIx64 "\n",
	       R->o.seed, R->o.hosts > 1 ? ", two hosts" : "", R->model.nops,
	       R->log.n, nw, nz, nf,
	       (double)R->log.data_len / (1 << 20), secs, log_fingerprint(&R->log));
	printf("crashsim: %zu states: %zu prefix, %zu subset, %zu torn\n",
	       R->nstates, kinds[CS_ST_PREFIX], kinds[CS_ST_SUBSET],
	       kinds[CS_ST_TORN]);
	fflush(stdout);
}

/* Record r of the log; with two hosts, whose handle wrote it. */
static void print_rec(const struct run *R, size_t r)
{
	static const char *kind[] = { "?", "write", "flush", "zero" };
	const struct cs_rec *c = &R->log.recs[r];

	printf("    rec %6zu  %s%-5s 0x%09" PRIx64 " +%" PRIu64 "\n", r,
	       R->o.hosts > 1 ? (c->host == CS_HOST_A ? "A " : "B ") : "",
	       kind[c->kind & 3], c->off, c->len);
}

static void print_list(const struct run *R)
{
	char d[1024];
	size_t r = 0;

	/* Ops, each followed by the records written during it. */
	for (size_t i = 0; i < R->model.nops; i++) {
		const struct cs_op *op = &R->model.ops[i];

		for (; r < op->start && r < R->log.n; r++)
			print_rec(R, r);
		printf("op %5zu  log [%6u, %6u)  %s\n", i, op->start, op->end,
		       op->text);
	}
	for (; r < R->log.n; r++)
		print_rec(R, r);
	for (size_t i = 0; i < R->nstates; i++) {
		cs_state_describe(&R->log, &R->states[i], d, sizeof(d));
		printf("state %5zu  %s\n", i, d);
	}
}

/* ---- the checkers ---------------------------------------------------------------- */

struct worker {
	struct cs_image im;
	struct lun *flun;
	char work[4096], shadow[4096];
};

static int worker_open(struct run *R, unsigned w, struct worker *wk)
{
	struct lun *inner = NULL;
	int ret;

	memset(wk, 0, sizeof(*wk));
	snprintf(wk->work, sizeof(wk->work), "%s/w%u.work.img", R->o.dir, w);
	snprintf(wk->shadow, sizeof(wk->shadow), "%s/w%u.shadow.img", R->o.dir, w);
	ret = cs_image_open(&wk->im, R->base, wk->work, wk->shadow);
	if (!ret)
		ret = lun_open(wk->work, 0, &inner);
	if (!ret) {
		ret = lun_fault_wrap(inner, &wk->flun);
		if (ret)
			lun_close(inner);
	}
	if (ret) {
		fprintf(stderr, "crashsim: worker %u: %s\n", w, vmfs_strerror(ret));
		cs_image_close(&wk->im);
		return ret;
	}
	/* What the check writes (replay, checkpoint) is undone afterwards. */
	lun_fault_record(wk->flun, true);
	return 0;
}

static void worker_close(struct run *R, struct worker *wk)
{
	lun_close(wk->flun);
	cs_image_close(&wk->im);
	if (!R->o.keep) {
		unlink(wk->work);
		unlink(wk->shadow);
	}
}

static void describe_op(const struct run *R, uint32_t idx, char *out,
			size_t len)
{
	const struct cs_op *op = cs_op_at(&R->model, idx);

	if (op)
		snprintf(out, len, "op #%zu %s (log [%u, %u))",
			 (size_t)(op - R->model.ops), op->text, op->start, op->end);
	else
		snprintf(out, len, "no op (between ops)");
}

/* The image of a failed state again (the check changed it), kept. */
static int save_failed(struct run *R, struct worker *wk, size_t i,
		       const struct cs_extra *ex, size_t nex)
{
	char path[4096];
	int ret = 0;

	snprintf(path, sizeof(path), "%s/state-%zu.img", R->o.save_failed, i);
	for (size_t k = 0; k < nex && !ret; k++)
		ret = cs_image_apply_extra(&wk->im, &R->log, &ex[k]);
	if (!ret)
		ret = fdatasync(wk->im.work_fd) ? -errno : 0;
	if (!ret)
		ret = cs_file_copy(wk->work, path);
	for (size_t k = 0; k < nex && !ret; k++)
		ret = cs_image_restore(&wk->im, ex[k].off, ex[k].len);
	if (!ret)
		cs_msg(R->res[i].msg, sizeof(R->res[i].msg),
		       "    crash image saved as %s\n", path);
	return ret;
}

/* Build state i in the work image, check it, undo it. */
static int run_state(struct run *R, struct worker *wk, size_t i,
		     struct result *res)
{
	const struct cs_state *s = &R->states[i];
	struct cs_check_ctx cc = { .m = &R->model, .lun = wk->flun,
				   .tmp_dir = R->o.dir, .hosts = R->o.hosts,
				   .seed = R->o.seed,
				   .state_seed = cs_mix(R->o.seed ^ (uint64_t)i) };
	const struct lun_rec_entry *e;
	struct cs_extra *ex = NULL;
	size_t nex = 0, ne = 0;
	uint32_t durable = 0, crash = 0;
	unsigned fails;
	int ret;

	ret = cs_state_extras(&R->log, s, &ex, &nex, &durable, &crash);
	if (!ret)
		ret = cs_image_advance(&wk->im, &R->log, s->at);
	for (size_t k = 0; k < nex && !ret; k++)
		ret = cs_image_apply_extra(&wk->im, &R->log, &ex[k]);
	if (ret)
		goto out;
	if (R->o.save_image) {
		ret = fdatasync(wk->im.work_fd) ? -errno : 0;
		if (!ret)
			ret = cs_file_copy(wk->work, R->o.save_image);
		if (ret)
			goto out;
		fprintf(stderr, "crashsim: crash image of state %zu saved as %s\n",
			i, R->o.save_image);
	}

	cs_log_capture_reset();
	lun_fault_record_clear(wk->flun);
	alarm(R->o.timeout_s);
	fails = cs_check_state(&cc, durable, crash,
			       cs_log_cut_ns(&R->log, durable), res->msg,
			       sizeof(res->msg), &res->st);
	alarm(0);
	if (fails && cs_log_capture_text()[0])
		cs_msg(res->msg, sizeof(res->msg), "%s", cs_log_capture_text());
	res->fails = fails;
	res->status = fails ? ST_FAIL : ST_PASS;

	/* Undo: the state's own writes and everything the check wrote. */
	for (size_t k = 0; k < nex && !ret; k++)
		ret = cs_image_restore(&wk->im, ex[k].off, ex[k].len);
	e = lun_fault_records(wk->flun, &ne);
	for (size_t k = 0; k < ne && !ret; k++)
		if (e[k].kind == LUN_REC_WRITE || e[k].kind == LUN_REC_ZERO)
			ret = cs_image_restore(&wk->im, e[k].off, e[k].len);
	lun_fault_record_clear(wk->flun);
	if (!ret && R->o.paranoid && cs_image_differs(&wk->im)) {
		ret = -EIO;
		fprintf(stderr, "crashsim: state %zu: the work image is not its shadow after the undo\n",
			i);
	}
	if (!ret && fails && R->o.save_failed &&
	    __atomic_fetch_add(&R->sh->saved, 1, __ATOMIC_SEQ_CST) < R->o.report)
		ret = save_failed(R, wk, i, ex, nex);
out:
	free(ex);
	if (ret) {
		res->status = ST_FAIL;
		res->fails = CS_FAIL_HARNESS;
		snprintf(res->msg, sizeof(res->msg),
			 "    harness: building or undoing the image: %s\n",
			 vmfs_strerror(ret));
	}
	if (R->o.verbose)
		fprintf(stderr, "crashsim: state %zu: %s\n", i,
			res->status == ST_PASS ? "ok" : "FAILED");
	return ret;
}

static void __attribute__((noreturn)) worker_main(struct run *R, unsigned w)
{
	struct worker wk;
	int ret = worker_open(R, w, &wk);

	if (ret)
		_exit(3);
	for (;;) {
		uint64_t i = __atomic_fetch_add(&R->sh->next, 1, __ATOMIC_SEQ_CST);

		if (i >= R->nstates)
			break;
		__atomic_store_n(&R->sh->cur[w], (int64_t)i, __ATOMIC_SEQ_CST);
		ret = run_state(R, &wk, i, &R->res[i]);
		__atomic_store_n(&R->sh->cur[w], -1, __ATOMIC_SEQ_CST);
		if (ret)
			break;	/* the images are no longer trustworthy */
	}
	worker_close(R, &wk);
	_exit(ret ? 3 : 0);
}

static pid_t spawn(struct run *R, unsigned w)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	R->sh->cur[w] = -1;
	pid = fork();
	if (pid == 0)
		worker_main(R, w);
	return pid;
}

/* Fork the workers; a worker that dies fails its state and is replaced. */
static int run_workers(struct run *R)
{
	pid_t pids[MAX_JOBS];
	unsigned alive = 0, respawns = 0;
	unsigned jobs = R->o.jobs;

	if (jobs > R->nstates)
		jobs = R->nstates ? (unsigned)R->nstates : 1;
	for (unsigned w = 0; w < jobs; w++) {
		pids[w] = spawn(R, w);
		if (pids[w] < 0) {
			perror("crashsim: fork");
			return -1;
		}
		alive++;
	}
	while (alive) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		unsigned w;
		int64_t cur;

		if (pid < 0) {
			if (errno == EINTR)
				continue;
			perror("crashsim: waitpid");
			return -1;
		}
		for (w = 0; w < jobs && pids[w] != pid; w++)
			;
		if (w == jobs)
			continue;
		alive--;
		pids[w] = -1;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		cur = __atomic_load_n(&R->sh->cur[w], __ATOMIC_SEQ_CST);
		if (cur >= 0) {
			struct result *res = &R->res[cur];
			bool alarm_hit = WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM;

			res->status = ST_FAIL;
			res->fails = alarm_hit ? CS_FAIL_TIMEOUT : CS_FAIL_CRASH;
			if (alarm_hit)
				snprintf(res->msg, sizeof(res->msg),
					 "    timeout: the check took more than %u s\n",
					 R->o.timeout_s);
			else
				snprintf(res->msg, sizeof(res->msg),
					 "    checker-crash: the checker died (%s %d) on this state\n",
					 WIFSIGNALED(st) ? "signal" : "exit status",
					 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
			fprintf(stderr, "crashsim: worker %u could not run\n", w);
		}
		if (R->sh->next < R->nstates && respawns++ < 200) {
			pids[w] = spawn(R, w);
			if (pids[w] > 0)
				alive++;
		}
	}
	return 0;
}

/* --state I: in this process, with everything printed. */
static int run_one(struct run *R, size_t i)
{
	struct worker wk;
	int ret = worker_open(R, 0, &wk);

	if (ret)
		return ret;
	ret = run_state(R, &wk, i, &R->res[i]);
	worker_close(R, &wk);
	return ret;
}

/* ---- the report ---------------------------------------------------------------------- */

static void rerun_line(const struct run *R, size_t i)
{
	if (R->o.save_rec || R->o.from_rec)
		printf("    rerun: %s --dir %s --from-recording", R->argv0, R->o.dir);
	else
		printf("    rerun: %s --dir DIR --seed %" PRIu64 " --ops %u%s",
		       R->argv0, R->o.seed, R->o.ops,
		       R->o.hosts > 1 ? " --hosts 2" : "");
	if (R->o.full)
		printf(" --full");
	if (R->o.max_states != (R->o.full ? FULL_STATES : DEFAULT_STATES))
		printf(" --max-states %zu", R->o.max_states);
	printf(" --state %zu [--save-image FILE]\n", i);
}

/* The last record a state applied: the crash came during its op. */
static uint32_t last_applied(const struct run *R, const struct cs_state *s)
{
	struct cs_extra *ex = NULL;
	size_t nex = 0;
	uint32_t durable = 0, crash = 0;

	if (s->kind == CS_ST_PREFIX || cs_state_extras(&R->log, s, &ex, &nex,
						       &durable, &crash))
		crash = s->at;
	free(ex);
	return crash ? crash - 1 : 0;
}

static size_t report(const struct run *R)
{
	size_t checked = 0, failed = 0, shown = 0;
	size_t by_kind[3] = { 0 }, by_fail[16] = { 0 };
	struct cs_check_stats st = { 0 };
	char d[2048], opd[256];

	for (size_t i = 0; i < R->nstates; i++) {
		const struct result *res = &R->res[i];
		const struct cs_state *s = &R->states[i];

		if (res->status == ST_TODO)
			continue;
		checked++;
		st.files += res->st.files;
		st.sectors += res->st.sectors;
		st.promises += res->st.promises;
		st.interval += res->st.interval;
		st.gone += res->st.gone;
		st.live += res->st.live;
		st.post += res->st.post;
		if (res->status != ST_FAIL)
			continue;
		failed++;
		by_kind[s->kind]++;
		for (unsigned b = 0; b < 16; b++)
			if (res->fails & (1u << b))
				by_fail[b]++;
		if (shown++ >= R->o.report && R->o.only < 0)
			continue;
		cs_state_describe(&R->log, s, d, sizeof(d));
		describe_op(R, last_applied(R, s), opd, sizeof(opd));
		printf("FAIL state %zu: %s\n    crash during %s\n%s", i, d, opd,
		       res->msg);
		rerun_line(R, i);
	}
	if (failed) {
		printf("crashsim: failed states by kind: %zu prefix, %zu subset, %zu torn; by check:",
		       by_kind[CS_ST_PREFIX], by_kind[CS_ST_SUBSET], by_kind[CS_ST_TORN]);
		for (unsigned b = 0; b < 16; b++)
			if (by_fail[b])
				printf(" %s %zu", cs_fail_name(1u << b), by_fail[b]);
		printf("\n");
	}
	printf("crashsim: read %" PRIu64 " files (%" PRIu64 " sectors), %" PRIu64
	       " of them promised and compared exactly (%" PRIu64 " by fsync, %" PRIu64
	       " by the commit interval); %" PRIu64 " unlinked files promised gone\n",
	       st.files, st.sectors, st.promises,
	       st.promises - st.interval - st.live, st.interval, st.gone);
	if (R->o.hosts > 1)
		printf("crashsim: two hosts: %" PRIu64 " more promised by host B's ops that ended before the crash; %" PRIu64
		       " results of B's post-recovery ops checked\n", st.live, st.post);
	printf("crash states: checked %zu, failed %zu\n", checked, failed);
	return failed;
}

static size_t unchecked(const struct run *R)
{
	size_t n = 0;

	for (size_t i = 0; i < R->nstates; i++)
		n += R->res[i].status == ST_TODO;
	return n;
}

int main(int argc, char **argv)
{
	struct run R;
	double t0, t1;
	int status = 2, ret;

	memset(&R, 0, sizeof(R));
	R.log.data_fd = -1;
	R.argv0 = argv[0];
	R.sh = MAP_FAILED;
	R.res = MAP_FAILED;
	if (parse_opts(argc, argv, &R.o))
		return 2;
	if (mkdir(R.o.dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "crashsim: %s: %s\n", R.o.dir, strerror(errno));
		return 2;
	}
	cs_log_capture_init(R.o.verbose);
	t0 = now_s();
	if (R.o.from_rec) {
		ret = load(&R);
	} else {
		ret = make_base(&R);
		if (ret)
			fprintf(stderr, "crashsim: making the volume in %s: %s\n",
				R.o.dir, vmfs_strerror(ret));
		else
			ret = record(&R);
	}
	if (ret)
		goto out;
	ret = cs_log_seal(&R.log);
	if (!ret) {
		struct cs_plan_opts po = { .seed = R.o.seed,
					   .max_states = R.o.max_states,
					   .full = R.o.full };

		ret = cs_plan(&R.log, &po, &R.states, &R.nstates);
	}
	if (ret) {
		fprintf(stderr, "crashsim: %s\n", vmfs_strerror(ret));
		goto out;
	}
	t1 = now_s();
	print_workload(&R, t1 - t0);
	if (R.o.list) {
		print_list(&R);
		status = 0;
		goto out;
	}
	if (R.o.only >= 0 && (size_t)R.o.only >= R.nstates) {
		fprintf(stderr, "crashsim: there are only %zu states\n", R.nstates);
		goto out;
	}
	R.sh = mmap(NULL, sizeof(*R.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	R.res = mmap(NULL, (R.nstates + 1) * sizeof(*R.res),
		     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (R.sh == MAP_FAILED || R.res == MAP_FAILED) {
		perror("crashsim: mmap");
		goto out;
	}
	ret = R.o.only >= 0 ? run_one(&R, (size_t)R.o.only) : run_workers(&R);
	if (ret && R.o.only < 0)
		goto out;
	status = report(&R) ? 1 : 0;
	if (ret)
		status = 2;	/* --state: the image could not be built */
	if (R.o.only < 0 && unchecked(&R)) {
		fprintf(stderr, "crashsim: %zu states were never checked (the workers could not run)\n",
			unchecked(&R));
		status = 2;
	}
	printf("crashsim: checked in %.1f s with %u jobs\n", now_s() - t1,
	       R.o.only >= 0 ? 1 : R.o.jobs);
out:
	if (!R.o.keep && !R.o.save_rec && !R.o.from_rec) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/log.data", R.o.dir);
		unlink(path);
		if (R.base[0])
			unlink(R.base);
	}
	if (R.sh != MAP_FAILED)
		munmap(R.sh, sizeof(*R.sh));
	if (R.res != MAP_FAILED)
		munmap(R.res, (R.nstates + 1) * sizeof(*R.res));
	cs_log_free(&R.log);
	cs_model_free(&R.model);
	free(R.states);
	qb_log_fini();
	return status;
}
