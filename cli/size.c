/*
 * Sizes and counts on the command line, sizes in output.  Multiples are
 * binary (1K = 1024), as in vmkfstools and mkfs: block sizes and disk
 * sizes are powers of two far more often than powers of ten, and one
 * convention avoids 1M meaning two things.  A count (seconds, CPUs) has
 * no suffix at all.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const char cli_size_units[] = "KMGTPE";

int cli_size_parse(const char *s, uint64_t *out)
{
	unsigned long long v;
	const char *u;
	char *end;
	unsigned shift = 0;

	/* strtoull accepts "-1" and leading blanks; a size does not. */
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end) {
		u = strchr(cli_size_units, toupper((unsigned char)*end));
		if (u) {
			shift = 10 * (unsigned)(u - cli_size_units + 1);
			end++;
			if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
				end += strlen(end);
		} else if (!strcasecmp(end, "B")) {
			end++;
		}
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_size_opt(const char *opt, const char *s, uint64_t min, uint64_t max,
		 uint64_t *out)
{
	char a[CLI_SIZE_STR_LEN], b[CLI_SIZE_STR_LEN];
	uint64_t v;
	int rc;

	rc = cli_size_parse(s, &v);
	if (rc == -ERANGE) {
		cli_usage_err("%s %s: too large", opt, s);
		return rc;
	}
	if (rc) {
		cli_usage_err("%s %s: not a size (use bytes or a K, M, G, T suffix, e.g. 64K)",
			      opt, s);
		return rc;
	}
	if (v < min || v > max) {
		cli_usage_err("%s %s: must be between %s and %s", opt, s,
			      cli_size_str(min, a, sizeof(a)),
			      cli_size_str(max, b, sizeof(b)));
		return -ERANGE;
	}
	*out = v;
	return 0;
}

int cli_count_opt(const char *opt, const char *s, uint64_t min, uint64_t max,
		  const char *what, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull takes "-1", " 5" and "" (as 0); a count is digits only. */
	errno = 0;
	v = s && isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
	if (!s || !isdigit((unsigned char)s[0]) || *end || errno ||
	    v < min || v > max) {
		cli_usage_err("%s %s: must be a number of %s from %" PRIu64
			      " to %" PRIu64, opt, s ? s : "", what, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

const char *cli_size_str(uint64_t bytes, char *buf, size_t len)
{
	unsigned i = 0;
	uint64_t unit = 1;

	while (i < sizeof(cli_size_units) - 1 && bytes >= (unit << 10)) {
		unit <<= 10;
		i++;
	}
	/* 1073741823 bytes is "1.0 GiB", not "1024.0 MiB". */
	if (i < sizeof(cli_size_units) - 1 && bytes % unit &&
	    (double)bytes / (double)unit >= 1023.95) {
		unit <<= 10;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else if (bytes % unit == 0)
		snprintf(buf, len, "%" PRIu64 " %ciB", bytes / unit,
			 cli_size_units[i - 1]);
	else
		snprintf(buf, len, "%.1f %ciB", (double)bytes / (double)unit,
			 cli_size_units[i - 1]);
	return buf;
}
