/*
 * fsck_fix: the one door every repair goes through.
 *
 * The mode decides (e2fsck fix_problem()): -n never repairs, -y always,
 * -p only what the table marks preen_ok, ask mode calls opts->ask.  Every
 * problem is counted and reported exactly once, with whether it was
 * repaired; the exit bits follow fsck(8): 1 when something was fixed, 4
 * when something was left.  A repair that fails on I/O afterwards is an
 * operational error (bit 8), reported by fsck_fail().  fsck_note reports
 * a problem as information: no count in problems_found, no exit bit.
 */
#include <stdio.h>
#include "fsck_int.h"

static void fsck_vreport(struct fsck_ctx *c, enum fsck_problem code,
			 uint64_t addr, bool fixed, const char *fmt,
			 va_list ap)
{
	const struct fsck_problem_info *p = fsck_problem_find(code);
	char detail[512];

	vsnprintf(detail, sizeof(detail), fmt, ap);
	c->r->problems_found++;
	if (fixed) {
		c->r->problems_fixed++;
		c->r->exit_code |= FSCK_EXIT_FIXED;
	} else {
		c->r->exit_code |= FSCK_EXIT_UNCORRECTED;
	}
	if (p && c->o->report)
		c->o->report(c->o->ctx, p, addr, detail, fixed);
}

static bool fsck_decide(struct fsck_ctx *c, enum fsck_problem code,
			const char *fmt, va_list ap)
{
	const struct fsck_problem_info *p = fsck_problem_find(code);
	char detail[512];

	if (!c->writable || c->abort || !p)
		return false;
	switch (c->o->mode) {
	case FSCK_MODE_YES:
		return true;
	case FSCK_MODE_PREEN:
		return p->preen_ok;
	case FSCK_MODE_ASK:
		if (!c->o->ask)
			return false;
		vsnprintf(detail, sizeof(detail), fmt, ap);
		return c->o->ask(c->o->ctx, p, detail);
	default:
		return false;
	}
}

bool fsck_fix(struct fsck_ctx *c, enum fsck_problem code, uint64_t addr,
	      const char *fmt, ...)
{
	va_list ap;
	bool fix;

	va_start(ap, fmt);
	fix = fsck_decide(c, code, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	fsck_vreport(c, code, addr, fix, fmt, ap);
	va_end(ap);
	return fix;
}

void fsck_note(struct fsck_ctx *c, enum fsck_problem code, uint64_t addr,
	       const char *fmt, ...)
{
	const struct fsck_problem_info *p = fsck_problem_find(code);
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	c->r->notes++;
	if (p && c->o->note)
		c->o->note(c->o->ctx, p, addr, detail);
}

void fsck_unfixed(struct fsck_ctx *c, enum fsck_problem code, uint64_t addr,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fsck_vreport(c, code, addr, false, fmt, ap);
	va_end(ap);
}
