/*
 * The write reference of bench/iscsi.sh: WRITE(16) to a raw iSCSI LUN
 * through libiscsi, the way libiscsi-bin's iscsi-perf reads it (one
 * session, a fixed number of commands in flight, sequential or random
 * LBAs over the whole LUN), for the writes iscsi-perf cannot do.  It is
 * libiscsi with nothing above it: what the target and the initiator
 * library give, against which the mount's writes are measured.
 *
 *   iscsiwrite URL BLOCKS INFLIGHT SECS [-r]
 *
 * BLOCKS logical blocks per command; -r random, aligned to BLOCKS.
 * Prints "iops average N (M MB/s)" as iscsi-perf does (MB: MiB, as
 * bench/iscsi.sh reads fio's figures).  It overwrites the
 * LUN: bench/iscsi.sh runs it before mkfs.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

struct bench {
	struct iscsi_context *iscsi;
	int lun;
	uint32_t block_len, blocks;
	uint64_t nlba, next_lba, done;
	unsigned char *buf;
	bool random, stop;
	int inflight, errors;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void issue(struct bench *b);

static void write_done(struct iscsi_context *iscsi, int status, void *data,
		       void *priv)
{
	struct bench *b = priv;
	struct scsi_task *task = data;

	(void)iscsi;
	b->inflight--;
	if (status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "iscsiwrite: WRITE(16) failed: %s\n",
			iscsi_get_error(b->iscsi));
		b->errors++;
		b->stop = true;
	} else {
		b->done++;
	}
	scsi_free_scsi_task(task);
	if (!b->stop)
		issue(b);
}

static void issue(struct bench *b)
{
	uint64_t span = b->nlba / b->blocks, lba;

	if (b->random) {
		lba = (((uint64_t)random() << 31) ^ (uint64_t)random()) % span *
		      b->blocks;
	} else {
		lba = b->next_lba;
		b->next_lba += b->blocks;
		if (b->next_lba + b->blocks > b->nlba)
			b->next_lba = 0;
	}
	if (!iscsi_write16_task(b->iscsi, b->lun, lba, b->buf,
				b->blocks * b->block_len, b->block_len, 0, 0, 0,
				0, 0, write_done, b)) {
		fprintf(stderr, "iscsiwrite: cannot queue WRITE(16): %s\n",
			iscsi_get_error(b->iscsi));
		b->errors++;
		b->stop = true;
		return;
	}
	b->inflight++;
}

static int usage(void)
{
	fprintf(stderr, "usage: iscsiwrite URL BLOCKS INFLIGHT SECS [-r]\n"
		"  writes the raw LUN (its data is lost): BLOCKS logical blocks "
		"per command,\n  INFLIGHT commands queued, for SECS seconds; "
		"-r at random LBAs\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	struct iscsi_url *url;
	struct scsi_task *task;
	struct scsi_readcapacity16 *rc;
	double t0, secs;
	int depth;

	if (argc < 5 || argc > 6 || (argc == 6 && strcmp(argv[5], "-r")))
		return usage();
	b.blocks = (uint32_t)strtoul(argv[2], NULL, 10);
	depth = atoi(argv[3]);
	secs = atof(argv[4]);
	b.random = argc == 6;
	if (!b.blocks || depth < 1 || secs <= 0)
		return usage();

	b.iscsi = iscsi_create_context("iqn.2026-12.vmfs:bench-iscsiwrite");
	if (!b.iscsi) {
		fprintf(stderr, "iscsiwrite: out of memory\n");
		return 1;
	}
	url = iscsi_parse_full_url(b.iscsi, argv[1]);
	if (!url) {
		fprintf(stderr, "iscsiwrite: %s: %s\n", argv[1],
			iscsi_get_error(b.iscsi));
		return 2;
	}
	iscsi_set_session_type(b.iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(b.iscsi, ISCSI_HEADER_DIGEST_NONE);
	iscsi_set_targetname(b.iscsi, url->target);
	if (iscsi_full_connect_sync(b.iscsi, url->portal, url->lun)) {
		fprintf(stderr, "iscsiwrite: login to %s: %s\n", argv[1],
			iscsi_get_error(b.iscsi));
		return 1;
	}
	b.lun = url->lun;
	task = iscsi_readcapacity16_sync(b.iscsi, b.lun);
	rc = task && task->status == SCSI_STATUS_GOOD ?
	     scsi_datain_unmarshall(task) : NULL;
	if (!rc) {
		fprintf(stderr, "iscsiwrite: READ CAPACITY(16): %s\n",
			iscsi_get_error(b.iscsi));
		return 1;
	}
	b.block_len = rc->block_length;
	b.nlba = rc->returned_lba + 1;
	scsi_free_scsi_task(task);
	if (b.nlba < b.blocks) {
		fprintf(stderr, "iscsiwrite: the LUN has %llu blocks, fewer "
			"than one command's %u\n", (unsigned long long)b.nlba,
			b.blocks);
		return 2;
	}
	b.buf = malloc((size_t)b.blocks * b.block_len);
	if (!b.buf) {
		fprintf(stderr, "iscsiwrite: out of memory\n");
		return 1;
	}
	memset(b.buf, 0xa5, (size_t)b.blocks * b.block_len);
	srandom(1);

	t0 = now_s();
	for (int i = 0; i < depth; i++)
		issue(&b);
	while (b.inflight > 0) {
		struct pollfd pfd = {
			.fd = iscsi_get_fd(b.iscsi),
			.events = (short)iscsi_which_events(b.iscsi),
		};

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
			perror("iscsiwrite: poll");
			return 1;
		}
		if (iscsi_service(b.iscsi, pfd.revents) < 0) {
			fprintf(stderr, "iscsiwrite: %s\n",
				iscsi_get_error(b.iscsi));
			return 1;
		}
		if (now_s() - t0 >= secs)
			b.stop = true;
	}
	secs = now_s() - t0;
	printf("iops average %llu (%llu MB/s)\n",
	       (unsigned long long)((double)b.done / secs),
	       (unsigned long long)((double)b.done * b.blocks * b.block_len /
				    secs / 1048576.0));
	iscsi_logout_sync(b.iscsi);
	iscsi_destroy_context(b.iscsi);
	iscsi_destroy_url(url);
	free(b.buf);
	return b.errors ? 1 : 0;
}
