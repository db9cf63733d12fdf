// SPDX-License-Identifier: MIT
/*
 * mmap-test: map a device's pages and check what userspace really sees.
 *
 *   mmap-test --device /dev/mmaplab0 --mode private|shared [--pages 16]
 *             [--pattern 0xaabbccdd]
 *
 * Every finding is one JSON object per line on stdout, so the host can parse
 * the run without scraping prose. A SIGBUS or SIGSEGV is caught to say which
 * page and address faulted and why (si_code); the handler then lets the signal
 * kill the process as it would have killed the question's program, so the
 * caller also sees the raw exit status (135 for "Bus error").
 *
 * Exit status: 0 every page as expected, 1 wrong data, 2 mmap() failed,
 * 3 open() failed, 4 usage; or death by the signal that was caught.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile uintptr_t map_base;
static volatile long page_size;

/* --- async-signal-safe output for the fault handler --- */

static size_t put_str(char *dst, size_t at, const char *s)
{
	while (*s)
		dst[at++] = *s++;
	return at;
}

static size_t put_hex(char *dst, size_t at, uintptr_t v)
{
	char tmp[2 * sizeof(v)];
	int n = 0;

	at = put_str(dst, at, "0x");
	do {
		tmp[n++] = "0123456789abcdef"[v & 0xf];
		v >>= 4;
	} while (v);
	while (n)
		dst[at++] = tmp[--n];
	return at;
}

static size_t put_dec(char *dst, size_t at, long v)
{
	char tmp[24];
	int n = 0;

	if (v < 0) {
		dst[at++] = '-';
		v = -v;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		dst[at++] = tmp[--n];
	return at;
}

static const char *si_code_name(int sig, int code)
{
	if (sig == SIGBUS) {
		switch (code) {
		case BUS_ADRALN: return "BUS_ADRALN";
		case BUS_ADRERR: return "BUS_ADRERR";
		case BUS_OBJERR: return "BUS_OBJERR";
		case BUS_MCEERR_AR: return "BUS_MCEERR_AR";
		case BUS_MCEERR_AO: return "BUS_MCEERR_AO";
		}
	} else if (sig == SIGSEGV) {
		switch (code) {
		case SEGV_MAPERR: return "SEGV_MAPERR";
		case SEGV_ACCERR: return "SEGV_ACCERR";
		}
	}
	return "SI_UNKNOWN";
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
	char buf[256];
	size_t n = 0;
	uintptr_t addr = (uintptr_t)si->si_addr;

	(void)uctx;
	n = put_str(buf, n, "{\"t\":\"fault\",\"signal\":\"");
	n = put_str(buf, n, sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	n = put_str(buf, n, "\",\"signo\":");
	n = put_dec(buf, n, sig);
	n = put_str(buf, n, ",\"code\":\"");
	n = put_str(buf, n, si_code_name(sig, si->si_code));
	n = put_str(buf, n, "\",\"codeNum\":");
	n = put_dec(buf, n, si->si_code);
	n = put_str(buf, n, ",\"addr\":\"");
	n = put_hex(buf, n, addr);
	n = put_str(buf, n, "\",\"page\":");
	if (map_base && addr >= map_base)
		n = put_dec(buf, n, (long)((addr - map_base) / (uintptr_t)page_size));
	else
		n = put_str(buf, n, "null");
	n = put_str(buf, n, "}\n");
	if (write(STDOUT_FILENO, buf, n) < 0)
		_exit(127);
	/*
	 * SA_RESETHAND restored the default action: returning re-runs the faulting
	 * access, and the signal now kills us exactly as it killed the seed.
	 */
}

static void usage(void)
{
	fprintf(stderr, "usage: mmap-test --device PATH --mode private|shared [--pages N] [--pattern 0xWORD]\n");
	exit(4);
}

static const char *errno_name(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

int main(int argc, char **argv)
{
	const char *device = NULL, *mode = NULL;
	unsigned long pages = 16, pages_ok = 0, i;
	uint32_t pattern = 0xaabbccddU;
	struct sigaction sa;
	int fd, flags;
	void *m;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--device") && a + 1 < argc)
			device = argv[++a];
		else if (!strcmp(argv[a], "--mode") && a + 1 < argc)
			mode = argv[++a];
		else if (!strcmp(argv[a], "--pages") && a + 1 < argc)
			pages = strtoul(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--pattern") && a + 1 < argc)
			pattern = (uint32_t)strtoul(argv[++a], NULL, 0);
		else
			usage();
	}
	if (!device || !mode || !pages)
		usage();
	if (!strcmp(mode, "private"))
		flags = MAP_PRIVATE;
	else if (!strcmp(mode, "shared"))
		flags = MAP_SHARED;
	else
		usage();

	page_size = sysconf(_SC_PAGESIZE);
	printf("{\"t\":\"start\",\"mode\":\"%s\",\"device\":\"%s\",\"pages\":%lu,\"pageSize\":%ld,\"pattern\":\"0x%08x\"}\n",
	       mode, device, pages, page_size, pattern);

	/* As the question's program: read-only open, PROT_READ. */
	fd = open(device, O_RDONLY);
	if (fd < 0) {
		int e = errno;
		printf("{\"t\":\"open\",\"ok\":false,\"errno\":%d,\"err\":\"%s\",\"msg\":\"%s\"}\n", e, errno_name(e), strerror(e));
		return 3;
	}
	printf("{\"t\":\"open\",\"ok\":true}\n");

	m = mmap(NULL, pages * (unsigned long)page_size, PROT_READ, flags, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		int e = errno;
		printf("{\"t\":\"mmap\",\"ok\":false,\"errno\":%d,\"err\":\"%s\",\"msg\":\"%s\"}\n", e, errno_name(e), strerror(e));
		return 2;
	}
	map_base = (uintptr_t)m;
	printf("{\"t\":\"mmap\",\"ok\":true,\"addr\":\"%p\",\"len\":%lu}\n", m, pages * (unsigned long)page_size);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	for (i = 0; i < pages; i++) {
		volatile uint32_t *p = (volatile uint32_t *)((char *)m + i * (unsigned long)page_size);
		uint32_t word = p[0];
		uint32_t index = p[1];
		int ok = word == pattern && index == i;

		if (i == 0) {
			/* What the question's printf("[%x]", ((char *)m)[0]) prints: a sign-extended char. */
			printf("{\"t\":\"seed-printf\",\"text\":\"[%x]\"}\n", ((volatile char *)p)[0]);
		}
		printf("{\"t\":\"page\",\"page\":%lu,\"addr\":\"%p\",\"word\":\"0x%08x\",\"index\":%u,\"ok\":%s}\n",
		       i, (void *)p, word, index, ok ? "true" : "false");
		pages_ok += ok;
	}
	printf("{\"t\":\"done\",\"pagesOk\":%lu,\"pages\":%lu}\n", pages_ok, pages);
	return pages_ok == pages ? 0 : 1;
}
