/*
 * cli: private header of the admin command `vmfs`.
 *
 * Every subcommand is a function `int cmd_x(int argc, char **argv)` that
 * gets argv[0] = its own name, parses its options with getopt_long and
 * returns the process exit status:
 *   CLI_EXIT_OK (0)      done
 *   CLI_EXIT_FAIL (1)    the operation failed (message already printed)
 *   CLI_EXIT_USAGE (2)   bad command line (message names the culprit and
 *                        points at --help)
 * Messages go to stderr as "vmfs <cmd>: <message>" and say what to do
 * next; normal output (summaries, info, help) goes to stdout.
 */
#ifndef VMFS_CLI_H
#define VMFS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "vmfs/journal.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"

#include "vmfs/version.h"

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

struct cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	void (*help)(void);
	const char *summary;   /* one line for `vmfs --help` */
};

/* Subcommands (one file per group). */
int cmd_mkfs(int argc, char **argv);
void help_mkfs(void);
int cmd_info(int argc, char **argv);
void help_info(void);
int cmd_mount(int argc, char **argv);
void help_mount(void);
int cmd_umount(int argc, char **argv);
void help_umount(void);
int cmd_disk(int argc, char **argv);
void help_disk(void);
int cmd_fsck(int argc, char **argv);
void help_fsck(void);
int cmd_journal(int argc, char **argv);
void help_journal(void);
int cmd_grow(int argc, char **argv);
void help_grow(void);
int cmd_hosts(int argc, char **argv);
void help_hosts(void);
int cmd_paths(int argc, char **argv);
void help_paths(void);
int cmd_locks(int argc, char **argv);
void help_locks(void);
int cmd_cluster(int argc, char **argv);
void help_cluster(void);

/* ---- command tables (dispatch.c) --------------------------------------- */

#define CLI_NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The entry of table named name, or NULL. */
const struct cli_cmd *cli_cmd_lookup(const struct cli_cmd *table, size_t n,
				     const char *name);

/*
 * Run the subcommand argv[1] of a command with subcommands (argv[0] is
 * the command): "--help"/"-h" prints help; otherwise the entry of table
 * named argv[1] runs with argv + 1, as prog "<prog> <name>" and with
 * getopt re-initialised.  A missing or unknown subcommand is a usage
 * error that lists the table's names.  Returns the exit status.
 */
int cli_dispatch(const struct cli_cmd *table, size_t n, void (*help)(void),
		 int argc, char **argv);

/*
 * mount.vmfs, fsck.vmfs, mkfs.vmfs (helpers.c): the helper a vmfs binary
 * run under that name (argv[0]'s basename) is, or NULL.  Its fn gets the
 * whole argv.
 */
const struct cli_cmd *cli_helper_find(const char *argv0);

/* ---- messages (vmfs_main.c) ------------------------------------------- */

/*
 * Set the prefix of every message ("vmfs mkfs", "vmfs disk create") and
 * the command `--help` hints name.
 */
void cli_set_prog(const char *prog);
const char *cli_prog(void);

/* "vmfs <cmd>: <message>\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, then "see 'vmfs <cmd> --help'"; returns CLI_EXIT_USAGE. */
int cli_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The one operand after a command's options (getopt's optind): *out, or
 * the usage error "missing WHAT" or "unexpected argument". */
int cli_one_operand(int argc, char **argv, const char *what, const char **out);

/*
 * Report the getopt_long result `c` that was not an option of the
 * command ('?' unknown option, ':' missing argument; the optstring must
 * start with ':').  Returns CLI_EXIT_USAGE.
 */
int cli_getopt_err(int c, char **argv);

/*
 * Hide library warnings (keep errors) while probing for something whose
 * absence is normal, e.g. mkfs looking for an existing volume on a blank
 * LUN, where "bad magic at offset 0" is the expected answer.
 */
void cli_log_quiet(bool quiet);

/*
 * The state directory a command uses when it gets no --state-dir:
 * VMFS_STATE_DIR from the environment (read once, in main) or
 * VMFSD_DEFAULT_STATE_DIR.
 */
const char *cli_default_state_dir(void);

/* ---- sizes (size.c) --------------------------------------------------- */

/*
 * Parse "4096", "64K", "1M", "16MiB", "3G", "2T" (binary multiples; a
 * trailing "B" or "iB" is accepted, case does not matter).  Returns 0 or
 * -EINVAL (not a size) / -ERANGE (does not fit 64 bits).
 */
int cli_size_parse(const char *s, uint64_t *out);
/* Parse a size option into *out, or print why not and return non-zero. */
int cli_size_opt(const char *opt, const char *s, uint64_t min, uint64_t max,
		 uint64_t *out);
/* Parse a count option (decimal digits only, min..max) into *out, or
 * print "OPT S: must be a number of WHAT from MIN to MAX" and return
 * non-zero. */
int cli_count_opt(const char *opt, const char *s, uint64_t min, uint64_t max,
		  const char *what, uint64_t *out);
/* "1 MiB", "1.5 GiB", "512 B": exact when the value is a whole unit. */
const char *cli_size_str(uint64_t bytes, char *buf, size_t len);
#define CLI_SIZE_STR_LEN 32

/* ---- progress bar (progress.c) ----------------------------------------- */

/*
 * A progress bar on stderr, drawn only when stderr is a terminal: percent
 * done and throughput in MiB/s, redrawn at most 10 times a second.
 */
struct cli_progress {
	const char *what;
	uint64_t total_bytes;
	uint64_t done_bytes;
	struct timespec start;     /* CLOCK_MONOTONIC */
	struct timespec last_draw;
	bool enabled;
	bool drawn;
};

void cli_progress_start(struct cli_progress *p, const char *what,
			uint64_t total_bytes);
void cli_progress_update(struct cli_progress *p, uint64_t done_bytes);
/* Draw the final state (ok) or clear the line (failure). */
void cli_progress_end(struct cli_progress *p, bool ok);

/* ---- volumes (info.c, mount.c) ---------------------------------------- */

struct lun;
struct vol_geom;

/*
 * Read the volume header of an open lun; on failure print a message that
 * names the LUN and says what to do (e.g. bad magic at offset 0: run
 * 'vmfs mkfs').  When the primary header is bad but the backup is good,
 * warn (naming why the primary failed) and suggest fsck, and succeed.
 * Returns 0 or the negative error of vol_geom_read.  (info.c)
 */
int cli_volume_read(struct lun *lun, const char *lun_name,
		    struct vol_geom *g, int *which_out);

/* A JSON string literal of s on stdout, quotes included.  (info.c) */
void cli_json_str(const char *s);
/* Wall-clock ns as local "YYYY-MM-DD HH:MM:SS +zzzz".  (info.c) */
void cli_time_str(int64_t ns, char *buf, size_t len);

/* ---- journals (journal.c) ---------------------------------------------- */


/* Why a walk stopped, as a JSON-friendly word ("end", "torn", ...). */
const char *cli_jnl_stop_key(enum jnl_stop s);

/* ---- live hosts (live.c) ----------------------------------------------- */

/*
 * Watch the volume's heartbeat slots as fsck does before it writes; when
 * a host is live, name it ("heartbeat slot 3 (host h, uuid u) is live"),
 * print refusal and return CLI_EXIT_FAIL.  -1 when no host is live.
 */
int cli_refuse_if_live(struct lun *lun, const struct vol_geom *g,
		       const char *spec, const char *refusal);

/* ---- the daemon of a mount point (daemon.c) ---------------------------- */

/*
 * Connect to the vmfsd serving mp and fetch its info (which also checks
 * that the daemon that answered serves mp).  Prints why not, except for
 * -ENOENT from a mount point that is not dead (no daemon answers: the
 * caller says what that means for it).
 */
int cli_daemon_open(const char *mp, struct vmfsd_ctl **out,
		    struct vmfsd_info *info);

/*
 * Ask the vmfsd serving mount point dir for its info (info.c); prints why
 * not (also when no vmfsd answers: -ENOENT).
 */
int cli_daemon_info(const char *dir, struct vmfsd_info *di);

/*
 * Open *spec read-only; when *spec is a directory, the LUN the vmfsd
 * mounted there serves (asked over its control socket; *spec then points
 * into di).  CLI_EXIT_FAIL after printing why not.  (hosts.c)
 */
int cli_lun_open_ro(const char **spec, struct vmfsd_info *di, struct lun **lun);

/* ---- the lock of one file (locks.c) ------------------------------------ */

/* Who holds the open lock of the file at path inside the volume. */
struct cli_path_lock {
	enum vmfs_lock_mode mode;   /* VMFS_LOCK_FREE: nobody */
	char host[VMFSD_HOST_NAME_MAX + 1];  /* a live holder's name */
	char host_uuid[37];
	bool stale;                 /* held by a host whose slot moved on */
};
/* Read the lock of inode ino (st_ino through a mount) from the LUN (a
 * mount point stands for its LUN): 0, or -errno after printing why not.
 * By inode, not path: a directory entry a host made a moment ago may
 * still be only in its journal and caches, never its inode's lock. */
int cli_lock_of_ino(const char *lun, uint64_t ino, struct cli_path_lock *out);

/* ---- disks (disk.c, disk_qemu.c) ---- */

/* The xattr holding a disk's type (thin, zeroedthick, eagerzeroedthick). */
#define DISK_XATTR "trusted.vmfs.disk_type"
/* Is where (the disk's directory, or the disk itself when where == path)
 * on a mounted vmfs volume?  Prints why not. */
bool cli_disk_on_vmfs(const char *where, const char *path);
/* open(path, flags) of a disk and fstat it; -1 with a message (EBUSY: a
 * host runs it) on failure. */
int cli_disk_open(const char *path, int flags, struct stat *st);
int cli_disk_import(int argc, char **argv);
int cli_disk_clone(int argc, char **argv);
int cli_disk_extend(int argc, char **argv);
/* vmfs disk inflate (disk_inflate.c): thin -> eagerzeroedthick, data kept. */
int cli_disk_inflate(int argc, char **argv);
void cli_help_disk_inflate(void);
void cli_help_disk_import(void);
void cli_help_disk_extend(void);

/* ---- VMs (vm.c) ---- */
int cmd_vm(int argc, char **argv);
void help_vm(void);
/* Attach the terminal to the serial console socket sock of VM what
 * (vm_console.c): raw tty, Ctrl-] detaches.  The exit status. */
int cli_vm_console_attach(const char *sock, const char *what);

/* ---- the cluster fast path of a mount (netview.c) ---------------------- */

/* A vmfsd answers its control socket in milliseconds; one that does not
 * within this is stopped or hung, and only its view is missed. */
#define CLI_NET_CONNECT_MS 2000

/* cb for every vmfs mount point in this mount namespace, until it
 * returns non-zero (returned); -errno.  (mount.c) */
int cli_vmfs_mounts_each(int (*cb)(void *ctx, const char *mp), void *ctx);
/*
 * The info of this host's vmfsd serving volume vol_uuid (text), found
 * among the vmfs mounts here whose vmfsd answers in this network
 * namespace: 0, or -ENOENT when there is none, -ETIMEDOUT when none but
 * some vmfsd here did not answer in time (stopped or hung: it may be the
 * one).
 */
int cli_net_local_info(const char *vol_uuid, struct vmfsd_info *di);
/* The same from the vmfsd of mount point mp (canonical: not resolved
 * again), quietly: 0, -ENOENT when it serves another volume, else the
 * control socket's -errno. */
int cli_net_info_at(const char *mp, const char *vol_uuid,
		    struct vmfsd_info *di);

/* The "cluster" and "lock fast path" lines of vmfs info. */
void cli_net_print_text(const struct vmfsd_info *d);
/* The same as one JSON object (no newline). */
void cli_net_print_json(const struct vmfsd_info *d);
/* The group member that is host uuid (text) in slot with heartbeat
 * generation hb_gen, or NULL. */
const struct vmfsd_cluster_member *cli_net_member(const struct vmfsd_info *d,
						  const char *uuid,
						  uint32_t slot,
						  uint64_t hb_gen);

/* ---- other content on a LUN (probe.c) --------------------------------- */

/* A signature libblkid found: "ext4 filesystem (label 'x', uuid ...)". */
struct cli_probe_sig {
	char desc[256];
	uint64_t magic_off;    /* byte offset of its magic on the LUN */
	size_t magic_len;
};

/*
 * Every filesystem, partition table, LVM, RAID or crypto signature
 * libblkid finds on the LUN (read through the lun layer, so any backend).
 * *out is malloc'ed (free it); 0 or a negative errno.
 */
int cli_probe_signatures(struct lun *lun, struct cli_probe_sig **out,
			 size_t *n);
/* Zero the sectors holding one signature's magic (wipefs(8)'s way). */
int cli_probe_wipe(struct lun *lun, const struct cli_probe_sig *s);

/*
 * Is path (which must exist) on a mounted vmfs volume?  fstype gets the
 * type of the file system it is on ("?" when unknown), for the message.
 */
bool cli_on_vmfs(const char *path, char *fstype, size_t len);

#endif /* VMFS_CLI_H */
