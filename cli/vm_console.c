/*
 * vmfs vm console: attach the terminal to a running VM's serial console
 * (the unix socket vmfsd gives QEMU, vmfsd_vm_sock_path "console"), as
 * `virsh console` does: the terminal goes raw, so every key (Ctrl-C too)
 * reaches the guest, and Ctrl-] detaches; the VM keeps running.  What
 * the guest prints while nobody is attached is only in console.log on
 * the datastore (`vmfs vm console --log` follows it from any host).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

/* Ctrl-] (GS), the detach key of telnet and virsh console. */
#define VM_CONSOLE_DETACH 0x1d

static int vmc_connect(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* All of buf to fd: false when it went away. */
static bool vmc_write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		buf += w;
		n -= (size_t)w;
	}
	return true;
}

int cli_vm_console_attach(const char *sock, const char *what)
{
	struct termios saved, raw;
	bool tty = isatty(0), detached = false;
	char buf[4096];
	const char *why = "the VM's console closed (the VM stopped)";
	int fd = vmc_connect(sock);

	if (fd < 0) {
		cli_err("cannot attach to the console of %s at %s: %s (is the VM "
			"still starting or stopping? 'vmfs vm status' says)", what,
			sock, strerror(-fd));
		return CLI_EXIT_FAIL;
	}
	if (tty && tcgetattr(0, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	} else {
		tty = false;
	}
	fprintf(stderr, "[attached to the serial console of %s; Ctrl-] "
		"detaches, the VM keeps running]\r\n", what);
	for (;;) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN },
				       { .fd = fd, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			why = strerror(errno);
			break;
		}
		if (p[1].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n <= 0 || !vmc_write_all(1, buf, (size_t)n))
				break;
		}
		if (p[0].revents) {
			char *key;

			n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				detached = true;  /* end of input: as Ctrl-] */
				break;
			}
			key = memchr(buf, VM_CONSOLE_DETACH, (size_t)n);
			if (key)
				n = key - buf;
			if (!vmc_write_all(fd, buf, (size_t)n))
				break;
			if (key) {
				detached = true;
				break;
			}
		}
	}
	close(fd);
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	fprintf(stderr, "\r\n[%s]\n", detached ? "detached; the VM keeps running" :
		why);
	return CLI_EXIT_OK;
}
