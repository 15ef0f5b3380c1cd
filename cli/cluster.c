/*
 * vmfs cluster config: the corosync configuration of a cluster of hosts.
 *
 * Writes DIR/corosync.conf and DIR/authkey (DIR defaults to
 * /etc/corosync), the two files every host of the cluster needs, once,
 * on one machine; the administrator copies them to /etc/corosync/ on
 * every host (docs/OPERATIONS.md "A cluster network").  The disk stays
 * the authority over locks and liveness; corosync only makes the cluster
 * faster (docs/PROTOCOL.md), so nothing here is needed for a volume to
 * work.
 *
 * What the file sets and why:
 *  - transport knet (corosync 3), one link, ring0_addr per node, node ids
 *    1..N in the order given (stable: a node keeps its id as long as the
 *    list keeps its order);
 *  - token 1000 ms and token_coefficient 0: a node that stops answering
 *    leaves the membership after token + consensus (consensus defaults to
 *    1.2 * token) = 2.2 s, at any node count (with the default
 *    coefficient, 650 ms per node beyond two is added to the token);
 *    measured 2.0-2.4 s here with corosync 3.1.7 (tests/integration/
 *    t_cluster_net.sh prints it);
 *  - crypto_cipher aes256, crypto_hash sha256 (the authkey authenticates
 *    and encrypts every packet), or none/none with --crypto off;
 *  - votequorum, two_node when there are exactly two nodes (then one
 *    survivor stays quorate; vmfs never lets quorum decide safety);
 *  - logging to syslog and/or a file;
 *  - with --realtime off, `system { sched_rr: no; priority: max }`:
 *    corosync stays a time-shared process (at the highest nice level)
 *    instead of making itself SCHED_RR 99.  Real time is corosync's
 *    default and right for a host with CPUs to spare; but a corosync
 *    that spins at real time starves every ordinary process of its CPU
 *    (Linux leaves them 5% of it), vmfsd's heartbeat among them.  That
 *    was measured on a 2-CPU machine running three hosts: at a
 *    membership merge two corosyncs ran 950 ms of every second for
 *    about a second, and every vmfsd's renewal watchdog logged that its
 *    process had not run for that long (docs/OPERATIONS.md "Timers").
 *
 * The text is generated from validated values only (names are
 * [A-Za-z0-9._-], addresses went through inet_pton or getaddrinfo), so it
 * needs no quoting.  Both files are made in a private temporary directory
 * inside DIR and renamed into place only after `corosync -t` accepted the
 * configuration; without --force an existing file is never replaced
 * (renameat2 RENAME_NOREPLACE).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/*
 * Corosync itself goes further (libcpg: CPG_MEMBERS_MAX 128 members per
 * group); 32 is the largest cluster Red Hat supports with corosync 3, and
 * more hosts than one shared LUN serves well.
 */
#define CLUSTER_NODES_MAX    32
#define CLUSTER_NAME_MAX     64
#define CLUSTER_NODENAME_MAX 63
#define CLUSTER_TOKEN_MS     1000
#define CLUSTER_CONSENSUS_MS (CLUSTER_TOKEN_MS * 12 / 10)
#define CLUSTER_DEFAULT_DIR  "/etc/corosync"
#define CLUSTER_DIR_MAX      (PATH_MAX - 64)
#define CLUSTER_CONF         "corosync.conf"
#define CLUSTER_KEY          "authkey"
/* corosync's message when no node address is one of this machine's. */
#define CLUSTER_NOT_LOCAL    "No valid name found for local host"

struct cluster_node {
	char *name;
	const char *addr;
	struct sockaddr_storage sa;   /* addr, or what it resolves to */
	bool literal;                 /* addr is an address, not a name */
};

struct cluster_args {
	const char *name;
	struct cluster_node nodes[CLUSTER_NODES_MAX];
	size_t node_count;
	bool crypto;
	bool syslog;
	bool realtime;
	const char *log_file;
	const char *dir;
	char dir_abs[PATH_MAX];   /* dir as corosync, which chdirs, needs it */
	bool force;
};

static void help_cluster_config(void)
{
	printf("usage: vmfs cluster config --name NAME --node NAME=ADDR [--node ...]\n"
	       "                           [--crypto on|off] [--realtime on|off]\n"
	       "                           [--syslog on|off] [--log-file PATH]\n"
	       "                           [--dir DIR] [--force]\n\n"
	       "Write DIR/corosync.conf and DIR/authkey for a cluster of the hosts\n"
	       "named by --node (node ids 1..N in the order given), then check the\n"
	       "file with 'corosync -t'.  Copy both files to /etc/corosync/ on every\n"
	       "host and start its corosync.service there.\n"
	       "The volume's on-disk locks and heartbeats stay the authority; corosync\n"
	       "makes membership changes and lock handover fast.\n\n"
	       "The configuration uses the knet transport, token 1000 ms and\n"
	       "token_coefficient 0: a host that stops answering leaves the\n"
	       "membership after about 2.2 s (token + consensus), at any node count.\n\n"
	       "Options:\n"
	       "  -n, --name NAME        cluster name: 1-%d of A-Z a-z 0-9 . _ -\n"
	       "  -N, --node NAME=ADDR   a host: its name (1-%d of A-Z a-z 0-9 . _ -)\n"
	       "                         and its cluster address (IPv4, IPv6 or a name\n"
	       "                         that resolves); 1 to %d nodes, all of one\n"
	       "                         address family\n"
	       "      --crypto on|off    encrypt and authenticate with the authkey\n"
	       "                         (aes256/sha256; default on); off writes no\n"
	       "                         authkey\n"
	       "      --realtime on|off  corosync runs SCHED_RR 99 (default on, corosync's\n"
	       "                         own default); off keeps it time-shared at\n"
	       "                         the highest nice level, for hosts with few\n"
	       "                         CPUs where a busy corosync would starve the\n"
	       "                         heartbeat of vmfsd\n"
	       "      --syslog on|off    log to syslog (default on)\n"
	       "      --log-file PATH    also log to this file (absolute path)\n"
	       "  -d, --dir DIR          where to write (default %s)\n"
	       "  -f, --force            replace an existing corosync.conf and authkey\n"
	       "  -h, --help             show this help\n",
	       CLUSTER_NAME_MAX, CLUSTER_NODENAME_MAX, CLUSTER_NODES_MAX,
	       CLUSTER_DEFAULT_DIR);
}

void help_cluster(void)
{
	printf("usage: vmfs cluster config [options]\n\n"
	       "The cluster network of the hosts that share volumes (corosync).\n\n"
	       "Subcommands:\n"
	       "  config   write corosync.conf and authkey for a list of hosts\n\n"
	       "Run 'vmfs cluster config --help' for details.\n");
}

/* 1..max characters of [A-Za-z0-9._-], starting with a letter or digit. */
static bool cluster_name_ok(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		     "0123456789", s[0]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == len;
}

/* onoff: "on" or "off" into *out, or a usage error naming the option. */
static int cluster_onoff(const char *opt, const char *val, bool *out)
{
	if (!strcmp(val, "on"))
		*out = true;
	else if (!strcmp(val, "off"))
		*out = false;
	else
		return cli_usage_err("%s '%s': expected on or off", opt, val);
	return 0;
}

/*
 * ADDR as an address: a literal (inet_pton) or a name this machine
 * resolves (corosync resolves names on every host at start).  Refuses
 * addresses no host can have: unspecified and multicast.
 */
static int cluster_addr_parse(const char *arg, struct cluster_node *nd)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&nd->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&nd->sa;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res;
	int rc;

	memset(&nd->sa, 0, sizeof(nd->sa));
	nd->literal = true;
	if (inet_pton(AF_INET, nd->addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, nd->addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
	} else {
		nd->literal = false;
		if (strspn(nd->addr, "0123456789.") == strlen(nd->addr))
			return cli_usage_err("--node '%s': '%s' is not a valid "
					     "IPv4 address", arg, nd->addr);
		if (!cluster_name_ok(nd->addr, 253))
			return cli_usage_err("--node '%s': '%s' is not an IPv4 or "
					     "IPv6 address nor a host name", arg,
					     nd->addr);
		rc = getaddrinfo(nd->addr, NULL, &hints, &res);
		if (rc) {
			cli_err("--node '%s': cannot resolve '%s' (%s); give "
				"its address, or add it to DNS or /etc/hosts",
				arg, nd->addr, gai_strerror(rc));
			return CLI_EXIT_USAGE;
		}
		memcpy(&nd->sa, res->ai_addr, res->ai_addrlen);
		freeaddrinfo(res);
	}
	if ((nd->sa.ss_family == AF_INET &&
	     (sin->sin_addr.s_addr == htonl(INADDR_ANY) ||
	      IN_MULTICAST(ntohl(sin->sin_addr.s_addr)) ||
	      sin->sin_addr.s_addr == htonl(INADDR_BROADCAST))) ||
	    (nd->sa.ss_family == AF_INET6 &&
	     (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ||
	      IN6_IS_ADDR_MULTICAST(&sin6->sin6_addr))))
		return cli_usage_err("--node '%s': %s is not a host's address "
				     "(unspecified, broadcast or multicast)",
				     arg, nd->addr);
	return 0;
}

static bool cluster_sa_equal(const struct sockaddr_storage *a,
			     const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr,
		       sizeof(struct in6_addr));
}

/* --node NAME=ADDR, checked against the nodes before it. */
static int cluster_node_add(struct cluster_args *a, const char *arg)
{
	struct cluster_node *nd;
	char *eq;
	int rc;

	if (a->node_count == CLUSTER_NODES_MAX)
		return cli_usage_err("more than %d --node options; a cluster has "
				     "at most %d nodes", CLUSTER_NODES_MAX,
				     CLUSTER_NODES_MAX);
	nd = &a->nodes[a->node_count];
	eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1])
		return cli_usage_err("--node '%s': expected NAME=ADDR, e.g. "
				     "--node esx1=192.168.10.11", arg);
	nd->name = strndup(arg, (size_t)(eq - arg));
	if (!nd->name) {
		cli_err("out of memory");
		return CLI_EXIT_FAIL;
	}
	nd->addr = eq + 1;
	a->node_count++;      /* owns nd->name from here on */
	if (!cluster_name_ok(nd->name, CLUSTER_NODENAME_MAX))
		return cli_usage_err("--node '%s': node name '%s' must be 1-%d "
				     "characters of A-Z a-z 0-9 . _ - starting "
				     "with a letter or digit", arg, nd->name,
				     CLUSTER_NODENAME_MAX);
	rc = cluster_addr_parse(arg, nd);
	if (rc)
		return rc;
	for (size_t i = 0; i + 1 < a->node_count; i++) {
		const struct cluster_node *o = &a->nodes[i];

		if (!strcmp(o->name, nd->name))
			return cli_usage_err("--node '%s': node name '%s' is "
					     "given twice; every node needs its "
					     "own name", arg, nd->name);
		if (cluster_sa_equal(&o->sa, &nd->sa))
			return cli_usage_err("--node '%s': address %s is also "
					     "node '%s's (%s); every node needs "
					     "its own address", arg, nd->addr,
					     o->name, o->addr);
		if (o->sa.ss_family != nd->sa.ss_family)
			return cli_usage_err("--node '%s': %s is %s but node "
					     "'%s' has %s; corosync needs one "
					     "address family per link", arg,
					     nd->addr,
					     nd->sa.ss_family == AF_INET ?
					     "IPv4" : "IPv6", o->name,
					     o->sa.ss_family == AF_INET ?
					     "IPv4" : "IPv6");
	}
	return 0;
}

/* A path corosync.conf can hold as a bare value. */
static bool cluster_path_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || strchr("{}#\"\\", *p) ||
		    *p == 0x7f)
			return false;
	return true;
}

static int cluster_parse(int argc, char **argv, struct cluster_args *a)
{
	enum { O_CRYPTO = 256, O_SYSLOG, O_LOG_FILE, O_REALTIME };
	static const struct option longopts[] = {
		{ "name",     required_argument, NULL, 'n' },
		{ "node",     required_argument, NULL, 'N' },
		{ "crypto",   required_argument, NULL, O_CRYPTO },
		{ "syslog",   required_argument, NULL, O_SYSLOG },
		{ "realtime", required_argument, NULL, O_REALTIME },
		{ "log-file", required_argument, NULL, O_LOG_FILE },
		{ "dir",      required_argument, NULL, 'd' },
		{ "force",    no_argument,       NULL, 'f' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct stat st;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":n:N:d:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			a->name = optarg;
			break;
		case 'N':
			rc = cluster_node_add(a, optarg);
			if (rc)
				return rc;
			break;
		case O_CRYPTO:
			if (cluster_onoff("--crypto", optarg, &a->crypto))
				return CLI_EXIT_USAGE;
			break;
		case O_SYSLOG:
			if (cluster_onoff("--syslog", optarg, &a->syslog))
				return CLI_EXIT_USAGE;
			break;
		case O_REALTIME:
			if (cluster_onoff("--realtime", optarg, &a->realtime))
				return CLI_EXIT_USAGE;
			break;
		case O_LOG_FILE:
			a->log_file = optarg;
			break;
		case 'd':
			a->dir = optarg;
			break;
		case 'f':
			a->force = true;
			break;
		case 'h':
			help_cluster_config();
			exit(CLI_EXIT_OK);
		default:
			return cli_getopt_err(c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_err("unexpected argument '%s'", argv[optind]);
	if (!a->name)
		return cli_usage_err("missing --name NAME (the cluster's name)");
	if (!cluster_name_ok(a->name, CLUSTER_NAME_MAX))
		return cli_usage_err("--name '%s': a cluster name is 1-%d "
				     "characters of A-Z a-z 0-9 . _ - starting "
				     "with a letter or digit", a->name,
				     CLUSTER_NAME_MAX);
	if (!a->node_count)
		return cli_usage_err("missing --node NAME=ADDR (one per host of "
				     "the cluster)");
	if (a->log_file && !cluster_path_ok(a->log_file))
		return cli_usage_err("--log-file '%s': give an absolute path "
				     "without spaces or any of {}#\"\\",
				     a->log_file);
	if (strlen(a->dir) > CLUSTER_DIR_MAX)
		return cli_usage_err("--dir: a path of more than %d bytes",
				     CLUSTER_DIR_MAX);
	if (stat(a->dir, &st)) {
		cli_err("--dir %s: %s; create it (mkdir -p %s) or name another",
			a->dir, strerror(errno), a->dir);
		return CLI_EXIT_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_err("--dir %s: not a directory", a->dir);
		return CLI_EXIT_FAIL;
	}
	if (access(a->dir, W_OK | X_OK)) {
		cli_err("--dir %s: cannot write there (%s); run as root or name "
			"another directory", a->dir, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (!realpath(a->dir, a->dir_abs)) {
		cli_err("--dir %s: cannot resolve its absolute path: %s", a->dir,
			strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (strlen(a->dir_abs) > CLUSTER_DIR_MAX)
		return cli_usage_err("--dir %s: its absolute path has more than "
				     "%d bytes", a->dir, CLUSTER_DIR_MAX);
	return 0;
}

/*
 * The logging section: the real one, or (check) everything to stderr
 * only, so that `corosync -t` says what it dislikes to us.
 */
static void cluster_conf_logging(FILE *f, const struct cluster_args *a,
				 bool check)
{
	fprintf(f, "logging {\n");
	if (check) {
		fprintf(f, "\tto_stderr: yes\n\tto_syslog: no\n\tto_logfile: no\n");
	} else {
		fprintf(f, "\tto_syslog: %s\n", a->syslog ? "yes" : "no");
		if (a->log_file)
			fprintf(f, "\tto_logfile: yes\n\tlogfile: %s\n",
				a->log_file);
		else
			fprintf(f, "\tto_logfile: no\n");
	}
	fprintf(f, "\ttimestamp: on\n}\n");
}

/*
 * The whole corosync.conf.  keyfile: where the check copy finds the new
 * authkey (NULL: corosync's default, /etc/corosync/authkey).
 */
static int cluster_conf_write(const char *path, const struct cluster_args *a,
			      bool check, const char *keyfile)
{
	char addr[INET6_ADDRSTRLEN];
	FILE *f;
	int err;

	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f,
		"# corosync.conf of the vmfs cluster %s (vmfs cluster config).\n"
		"# The same file, with the same authkey, goes to /etc/corosync/ on\n"
		"# every node below.  A node that stops answering leaves the\n"
		"# membership after token + consensus (1.2 * token) = %d ms.\n\n",
		a->name, CLUSTER_TOKEN_MS + CLUSTER_CONSENSUS_MS);
	fprintf(f,
		"totem {\n"
		"\tversion: 2\n"
		"\tcluster_name: %s\n"
		"\ttransport: knet\n"
		"\t# ms without the token before a node is thought gone; with\n"
		"\t# token_coefficient 0 it does not grow with the node count\n"
		"\ttoken: %d\n"
		"\ttoken_coefficient: 0\n"
		"\tcrypto_cipher: %s\n"
		"\tcrypto_hash: %s\n",
		a->name, CLUSTER_TOKEN_MS, a->crypto ? "aes256" : "none",
		a->crypto ? "sha256" : "none");
	if (keyfile)
		fprintf(f, "\tkeyfile: %s\n", keyfile);
	fprintf(f, "}\n\nnodelist {\n");
	for (size_t i = 0; i < a->node_count; i++) {
		const struct cluster_node *nd = &a->nodes[i];

		/* A literal is written in its canonical form. */
		if (nd->literal)
			inet_ntop(nd->sa.ss_family, nd->sa.ss_family == AF_INET ?
				  (const void *)&((const struct sockaddr_in *)&nd->sa)->sin_addr :
				  (const void *)&((const struct sockaddr_in6 *)&nd->sa)->sin6_addr,
				  addr, sizeof(addr));
		else
			snprintf(addr, sizeof(addr), "%s", nd->addr);
		fprintf(f, "\tnode {\n\t\tname: %s\n\t\tnodeid: %zu\n"
			"\t\tring0_addr: %s\n\t}\n", nd->name, i + 1, addr);
	}
	fprintf(f, "}\n\nquorum {\n\tprovider: corosync_votequorum\n");
	if (a->node_count == 2)
		fprintf(f, "\t# two nodes: the survivor of a failure stays quorate\n"
			"\ttwo_node: 1\n");
	fprintf(f, "}\n\n");
	if (!a->realtime)
		fprintf(f, "# time-shared, not SCHED_RR 99 (vmfs cluster config "
			"--realtime off):\n# a busy corosync cannot starve vmfsd's "
			"heartbeat on a host with few CPUs\nsystem {\n"
			"\tsched_rr: no\n\tpriority: max\n}\n\n");
	cluster_conf_logging(f, a, check);
	err = ferror(f) ? -EIO : 0;
	if (fflush(f) || fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

/*
 * Run argv (a corosync tool: tried on PATH, then in /usr/sbin and /sbin,
 * where Debian puts them and a user's PATH may not reach) with stdout and
 * stderr into out.  *status gets the wait status; 127: not found.
 */
static int cluster_run(char *const argv[], char *out, size_t len, int *status)
{
	static const char *const dirs[] = { "/usr/sbin/", "/sbin/" };
	char drain[256];
	int pfd[2];
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (pid == 0) {
		char path[256];

		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		execvp(argv[0], argv);
		for (size_t i = 0; i < CLI_NELEMS(dirs); i++) {
			snprintf(path, sizeof(path), "%s%s", dirs[i], argv[0]);
			execv(path, argv);
		}
		_exit(127);
	}
	close(pfd[1]);
	while (got + 1 < len &&
	       (n = read(pfd[0], out + got, len - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	/* Drain what does not fit, so the child never blocks on a full pipe. */
	while ((n = read(pfd[0], drain, sizeof(drain))) > 0 ||
	       (n < 0 && errno == EINTR))
		;
	close(pfd[0]);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Trailing newlines off, so the output fits in our one-line messages. */
static char *cluster_chomp(char *s)
{
	size_t len = strlen(s);

	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = '\0';
	return s;
}

static int cluster_keygen(const char *path)
{
	char out[1024];
	char *argv[] = { "corosync-keygen", "-k", (char *)path, NULL };
	int status, rc;

	rc = cluster_run(argv, out, sizeof(out), &status);
	if (rc) {
		cli_err("cannot run corosync-keygen: %s", strerror(-rc));
		return CLI_EXIT_FAIL;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		cli_err("corosync-keygen not found; install corosync "
			"(apt-get install corosync, or 'make deps')");
		return CLI_EXIT_FAIL;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		cli_err("corosync-keygen -k %s failed: %s", path, cluster_chomp(out));
		return CLI_EXIT_FAIL;
	}
	if (chmod(path, 0400)) {
		cli_err("chmod 0400 %s: %s", path, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

/*
 * `corosync -t` on the check copy.  A machine that is none of the nodes
 * (a workstation making the files for the hosts) gets corosync's "no
 * valid name found for local host": everything before that was checked,
 * the rest is checked by corosync on each host at start, so that is a
 * note, not a failure.  *checked says what the summary may claim.
 */
static int cluster_check(const char *conf, const char **checked)
{
	char out[4096];
	char *argv[] = { "corosync", "-t", "-c", (char *)conf, NULL };
	int status, rc;

	rc = cluster_run(argv, out, sizeof(out), &status);
	if (rc) {
		cli_err("cannot run corosync -t: %s", strerror(-rc));
		return CLI_EXIT_FAIL;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		*checked = "accepted by 'corosync -t'";
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		*checked = "not checked: corosync is not installed here";
		return 0;
	}
	if (strstr(out, CLUSTER_NOT_LOCAL)) {
		*checked = "accepted by 'corosync -t' (this machine is none of "
			   "the nodes: each node checks its own entry when "
			   "corosync starts there)";
		return 0;
	}
	cli_err("corosync -t rejects the configuration, nothing was written: %s",
		cluster_chomp(out));
	return CLI_EXIT_FAIL;
}

/* Move tmp/name to dir/name; never over an existing file unless force. */
static int cluster_install(const char *tmp, const char *dir, const char *name,
			   bool force)
{
	char from[PATH_MAX], to[PATH_MAX];

	snprintf(from, sizeof(from), "%s/%s", tmp, name);
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	if (!renameat2(AT_FDCWD, from, AT_FDCWD, to, force ? 0 : RENAME_NOREPLACE))
		return 0;
	if (errno == EEXIST)
		cli_err("%s appeared while this ran; nothing of it was replaced "
			"(use --force to replace it)", to);
	else
		cli_err("cannot move %s to %s: %s", from, to, strerror(errno));
	return CLI_EXIT_FAIL;
}

/* Existing files are refused before anything is made (--force: replaced). */
static int cluster_refuse_existing(const struct cluster_args *a)
{
	const char *names[] = { CLUSTER_CONF, CLUSTER_KEY };
	char path[PATH_MAX];
	struct stat st;

	if (a->force)
		return 0;
	for (size_t i = 0; i < CLI_NELEMS(names); i++) {
		if (i == 1 && !a->crypto)
			continue;
		snprintf(path, sizeof(path), "%s/%s", a->dir, names[i]);
		if (!lstat(path, &st)) {
			cli_err("%s exists; not overwriting it (the hosts may use "
				"it): pass --force to replace it, or --dir to "
				"write elsewhere", path);
			return CLI_EXIT_FAIL;
		}
	}
	return 0;
}

static int cluster_config(int argc, char **argv)
{
	struct cluster_args a = { .crypto = true, .syslog = true,
				  .realtime = true, .dir = CLUSTER_DEFAULT_DIR };
	/* Room for "/.vmfs-cluster.XXXXXX" and "/corosync.conf" after it. */
	char tmp[CLUSTER_DIR_MAX + 32], path[PATH_MAX], key[PATH_MAX];
	const char *checked = "";
	struct stat st;
	int rc, err;

	rc = cluster_parse(argc, argv, &a);
	if (rc)
		goto out;
	rc = cluster_refuse_existing(&a);
	if (rc)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s/.vmfs-cluster.XXXXXX", a.dir_abs);
	if (!mkdtemp(tmp)) {
		cli_err("cannot make a temporary directory in %s: %s", a.dir,
			strerror(errno));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	snprintf(key, sizeof(key), "%s/%s", tmp, CLUSTER_KEY);
	if (a.crypto) {
		rc = cluster_keygen(key);
		if (rc)
			goto out_tmp;
	}
	snprintf(path, sizeof(path), "%s/check.conf", tmp);
	err = cluster_conf_write(path, &a, true, a.crypto ? key : NULL);
	if (!err) {
		rc = cluster_check(path, &checked);
		if (rc)
			goto out_tmp;
		snprintf(path, sizeof(path), "%s/%s", tmp, CLUSTER_CONF);
		err = cluster_conf_write(path, &a, false, NULL);
	}
	if (err) {
		cli_err("cannot write %s: %s", path, strerror(-err));
		rc = CLI_EXIT_FAIL;
		goto out_tmp;
	}
	if (chmod(path, 0644)) {
		cli_err("chmod 0644 %s: %s", path, strerror(errno));
		rc = CLI_EXIT_FAIL;
		goto out_tmp;
	}
	rc = a.crypto ? cluster_install(tmp, a.dir, CLUSTER_KEY, a.force) : 0;
	if (!rc)
		rc = cluster_install(tmp, a.dir, CLUSTER_CONF, a.force);
	if (rc)
		goto out_tmp;

	printf("wrote %s/%s: cluster %s, %zu node%s, crypto %s, %s\n",
	       a.dir, CLUSTER_CONF, a.name, a.node_count,
	       a.node_count == 1 ? "" : "s",
	       a.crypto ? "aes256/sha256" : "off", checked);
	snprintf(path, sizeof(path), "%s/%s", a.dir, CLUSTER_KEY);
	if (a.crypto && !stat(path, &st))
		printf("wrote %s: %lld bytes, mode %04o; keep it secret\n",
		       path, (long long)st.st_size, st.st_mode & 07777);
	printf("next: copy %s%s to /etc/corosync/ on every node (",
	       CLUSTER_CONF, a.crypto ? " and " CLUSTER_KEY : "");
	for (size_t i = 0; i < a.node_count; i++)
		printf("%s%s %s", i ? ", " : "", a.nodes[i].name, a.nodes[i].addr);
	printf("), open UDP port 5405 between them, and run "
	       "'systemctl enable --now corosync' there\n");
out_tmp:
	/* What was not moved into place. */
	snprintf(path, sizeof(path), "%s/check.conf", tmp);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", tmp, CLUSTER_CONF);
	unlink(path);
	unlink(key);
	if (rmdir(tmp))
		cli_err("cannot remove %s: %s", tmp, strerror(errno));
out:
	for (size_t i = 0; i < a.node_count; i++)
		free(a.nodes[i].name);
	return rc;
}

int cmd_cluster(int argc, char **argv)
{
	static const struct cli_cmd subcmds[] = {
		{ "config", cluster_config, help_cluster_config,
		  "write corosync.conf and authkey" },
	};

	return cli_dispatch(subcmds, CLI_NELEMS(subcmds), help_cluster, argc, argv);
}
