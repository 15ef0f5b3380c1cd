/*
 * A one-line progress bar on stderr for long operations (eager zeroing of
 * a disk): "what [#########...........]  42%  812.3 MiB/s".  It is drawn
 * only on a terminal, so logs and pipes never fill with carriage returns,
 * and redrawn at most every 100 ms.  Rates use CLOCK_MONOTONIC.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CLI_BAR_WIDTH 30
#define CLI_REDRAW_NS 100000000LL

static long long cli_ts_ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

void cli_progress_start(struct cli_progress *p, const char *what,
			uint64_t total_bytes)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->total_bytes = total_bytes;
	p->enabled = isatty(STDERR_FILENO) == 1;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
}

static void cli_progress_draw(struct cli_progress *p, const struct timespec *now)
{
	char bar[CLI_BAR_WIDTH + 1];
	double frac, secs, mibps;
	unsigned fill;

	frac = p->total_bytes ? (double)p->done_bytes / (double)p->total_bytes
			      : 1.0;
	if (frac > 1.0)
		frac = 1.0;
	fill = (unsigned)(frac * CLI_BAR_WIDTH);
	memset(bar, '#', fill);
	memset(bar + fill, '.', CLI_BAR_WIDTH - fill);
	bar[CLI_BAR_WIDTH] = '\0';
	secs = (double)(cli_ts_ns(now) - cli_ts_ns(&p->start)) / 1e9;
	mibps = secs > 0 ? (double)p->done_bytes / (1024.0 * 1024.0) / secs : 0;
	fprintf(stderr, "\r%s [%s] %3u%%  %8.1f MiB/s", p->what, bar,
		(unsigned)(frac * 100.0), mibps);
	fflush(stderr);
	p->last_draw = *now;
	p->drawn = true;
}

void cli_progress_update(struct cli_progress *p, uint64_t done_bytes)
{
	struct timespec now;

	p->done_bytes = done_bytes;
	if (!p->enabled)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->drawn && cli_ts_ns(&now) - cli_ts_ns(&p->last_draw) < CLI_REDRAW_NS)
		return;
	cli_progress_draw(p, &now);
}

void cli_progress_end(struct cli_progress *p, bool ok)
{
	struct timespec now;

	if (!p->enabled)
		return;
	if (ok) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		cli_progress_draw(p, &now);
		fputc('\n', stderr);
	} else if (p->drawn) {
		/* Clear the bar so the error message starts on a clean line. */
		fprintf(stderr, "\r%*s\r", (int)(strlen(p->what) + CLI_BAR_WIDTH + 25),
			"");
	}
	fflush(stderr);
}
