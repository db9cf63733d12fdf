// SPDX-License-Identifier: MIT
/*
 * mmap-test: map a device's pages and check what userspace really sees.
 *
 *   mmap-test --device /dev/mmaplab0 --checks CHECK[,CHECK...] [--pages 16]
 *             [--pattern 0xaabbccdd] [--timeout SECONDS] [--kmsg] [--trace TRACEFS]
 *
 * Each check runs in a child process of its own (fork, no exec: cheap under
 * emulation), so a fault in one cannot hide another; its exit status is
 * reported as a shell would see it (135 for "Bus error"), as {"t":"exit"}.
 * --kmsg marks each check's begin and end in the kernel log, so its lines can
 * be told apart; --trace reports what tracefs recorded during each check, as
 * {"t":"trace"} lines.
 *
 * Checks (each one mapping experiment):
 *   private            MAP_PRIVATE, read-only, the whole area; read every page
 *   shared             MAP_SHARED, read-only, the whole area; read every page
 *   private-per-page   one MAP_PRIVATE mapping per page, at offset i * PAGE_SIZE
 *   shared-write       MAP_SHARED read-write: a write must reach the driver (what
 *                      read() and a second mapping show at its offset)
 *   private-isolation  MAP_PRIVATE read-write: a write must reach neither the
 *                      driver (read()) nor a MAP_SHARED mapping of the same page
 *   mprotect           MAP_PRIVATE read-only, then mprotect(PROT_READ | PROT_WRITE)
 *   offset             MAP_SHARED at page offset 3: its first page must be page 3
 *   oversize           MAP_SHARED one page larger than the buffer: must be refused
 *   readonly           MAP_SHARED PROT_READ of the device opened O_RDONLY: a write
 *                      must fault (writable page-table entries let it through)
 *
 * Every page carries the 32-bit pattern at offset 0 and its own index at offset
 * 4 (--no-index: only the pattern, for a driver of the user's own). --pfns adds
 * each page's frame number from /proc/self/pagemap (root only), so the host can
 * tell whether every page is a different page. Every finding is one JSON object per line on stdout, so the host can parse
 * the run without scraping prose; the host decides what the findings mean.
 * A SIGBUS or SIGSEGV is caught to say which page and address faulted and why
 * (si_code); the handler then lets the signal kill the process as it would have
 * killed the question's program, so the caller sees the raw exit status (135
 * for "Bus error").
 *
 * A check's own exit status: 0 done (the host judges the records), 2 mmap()
 * failed, 3 open() failed; or death by the signal that was caught; 124 if it
 * ran past --timeout and was killed. The program exits 0, or 4 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile uintptr_t map_base;
static volatile long map_first_page;	/* the page the mapping at map_base starts with */
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
		n = put_dec(buf, n, map_first_page + (long)((addr - map_base) / (uintptr_t)page_size));
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
	fprintf(stderr, "usage: mmap-test --device PATH --checks CHECK[,CHECK...] [--pages N] [--pattern 0xWORD] [--timeout S] [--kmsg] [--trace DIR] [--no-index] [--pfns] [--either-order]\n");
	exit(4);
}

static const char *errno_name(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static const char *device;
static int check_index = 1;	/* --no-index: a driver of the user's own writes only the pattern */
static int want_pfns;		/* --pfns: report each page's frame from /proc/self/pagemap */
static int pagemap_fd = -1;
static unsigned long pages = 16;
static uint32_t pattern = 0xaabbccddU;
static int either_order;	/* --either-order: accept the pattern's bytes in either order, as page 0 shows them */

static uint32_t swap32(uint32_t v)
{
	return (v >> 24) | ((v >> 8) & 0xff00U) | ((v << 8) & 0xff0000U) | (v << 24);
}
static long psize;

/* Markers written through mappings; away from the pattern (offset 0) and index (offset 4). */
#define WRITE_OFFSET 8
#define SHARED_MARK 0x5eed0001U
#define PRIVATE_MARK 0x5eed0002U
#define RO_OFFSET 16
#define RO_MARK 0x5eed0003U

static int open_device(int flags)
{
	int fd = open(device, flags);

	if (fd < 0) {
		int e = errno;

		printf("{\"t\":\"open\",\"ok\":false,\"errno\":%d,\"err\":\"%s\",\"msg\":\"%s\"}\n", e, errno_name(e), strerror(e));
		exit(3);
	}
	printf("{\"t\":\"open\",\"ok\":true,\"mode\":\"%s\"}\n", (flags & O_ACCMODE) == O_RDWR ? "rw" : "r");
	return fd;
}

/* mmap() and report it; page says which page a per-page mapping is for (-1: whole area). */
static void *map(int fd, unsigned long npages, unsigned long pgoff, int prot, int flags, long page)
{
	void *m = mmap(NULL, npages * (unsigned long)psize, prot, flags, fd, (off_t)(pgoff * (unsigned long)psize));

	if (m == MAP_FAILED) {
		int e = errno;

		printf("{\"t\":\"mmap\",\"ok\":false,\"page\":%ld,\"errno\":%d,\"err\":\"%s\",\"msg\":\"%s\"}\n", page, e, errno_name(e), strerror(e));
		exit(2);
	}
	printf("{\"t\":\"mmap\",\"ok\":true,\"page\":%ld,\"addr\":\"%p\",\"len\":%lu,\"pgoff\":%lu,\"prot\":\"%s\",\"flags\":\"%s\"}\n",
	       page, m, npages * (unsigned long)psize, pgoff, prot & PROT_WRITE ? "rw" : "r",
	       flags & MAP_SHARED ? "shared" : "private");
	return m;
}

static void catch_faults(void *base, long first_page)
{
	struct sigaction sa;

	map_base = (uintptr_t)base;
	map_first_page = first_page;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/* The page frame behind a mapped address (root only), or 0 when unknown. */
static unsigned long long frame_of(const void *p)
{
	unsigned long long entry = 0;
	off_t at = (off_t)((uintptr_t)p / (uintptr_t)psize) * 8;

	if (pagemap_fd < 0 || pread(pagemap_fd, &entry, sizeof(entry), at) != (ssize_t)sizeof(entry))
		return 0;
	/* Bit 63: present; bits 0-54: the frame number. */
	return (entry >> 63) ? entry & ((1ULL << 55) - 1) : 0;
}

/* Read one page: the pattern word and the index; expect the index `want`. */
static int read_page(const void *p, unsigned long page, unsigned long want)
{
	const volatile uint32_t *w = p;
	uint32_t word = w[0], index = w[1];
	int ok;

	/* --either-order: a driver that stores the four bytes the other way round shows it at page 0. */
	if (either_order && page == 0 && want == 0 && word != pattern && word == swap32(pattern)) {
		pattern = word;
		printf("{\"t\":\"pattern\",\"word\":\"0x%08x\",\"from\":\"page 0\"}\n", pattern);
	}
	ok = word == pattern && (!check_index || index == want);
	char pfn[32] = "null", expect[24] = "null";

	if (page == 0 && want == 0)
		/* What the question's printf("[%x]", ((char *)m)[0]) prints: a sign-extended char. */
		printf("{\"t\":\"seed-printf\",\"text\":\"[%x]\"}\n", ((const volatile char *)p)[0]);
	if (pagemap_fd >= 0) {
		unsigned long long f = frame_of(p);

		if (f)
			snprintf(pfn, sizeof(pfn), "\"0x%llx\"", f);
	}
	if (check_index)
		snprintf(expect, sizeof(expect), "%lu", want);
	printf("{\"t\":\"page\",\"page\":%lu,\"addr\":\"%p\",\"word\":\"0x%08x\",\"index\":%u,\"expectIndex\":%s,\"pfn\":%s,\"ok\":%s}\n",
	       page, p, word, index, expect, pfn, ok ? "true" : "false");
	return ok;
}

static void done(unsigned long ok, unsigned long n)
{
	printf("{\"t\":\"done\",\"pagesOk\":%lu,\"pages\":%lu}\n", ok, n);
}

/* What read() on the device returns for the word at page 0 + WRITE_OFFSET; *ok is 0 when it returned no word. */
static uint32_t driver_word(int fd, int *ok)
{
	uint32_t v = 0;
	ssize_t n = pread(fd, &v, sizeof(v), WRITE_OFFSET);

	*ok = n == (ssize_t)sizeof(v);
	if (!*ok)
		printf("{\"t\":\"readback\",\"via\":\"read\",\"ok\":false,\"n\":%zd,\"err\":\"%s\"}\n", n, n < 0 ? errno_name(errno) : "short read");
	return v;
}

#define CANARY 0xa5

static void hex_bytes(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

/*
 * What read() really does with the word a mapping wrote at WRITE_OFFSET: read
 * there and at offset 0, each into a buffer filled with a canary, so the host
 * can tell a read() that copies nothing, one that ignores the offset, and a
 * write that never reached the driver; and what a second mapping shows there.
 */
static void read_probe(int fd, const char *m)
{
	unsigned char at[4], at0[16];
	ssize_t n, n0;
	int e, e0;
	char *again;

	memset(at, CANARY, sizeof(at));
	memset(at0, CANARY, sizeof(at0));
	n = pread(fd, at, sizeof(at), WRITE_OFFSET);
	e = errno;
	n0 = pread(fd, at0, sizeof(at0), 0);
	e0 = errno;
	printf("{\"t\":\"read-probe\",\"offset\":%d,\"n\":%zd,\"err\":\"%s\",\"bytes\":\"", WRITE_OFFSET, n, n < 0 ? errno_name(e) : "");
	hex_bytes(at, sizeof(at));
	printf("\",\"n0\":%zd,\"err0\":\"%s\",\"bytes0\":\"", n0, n0 < 0 ? errno_name(e0) : "");
	hex_bytes(at0, sizeof(at0));
	/* What the mapping itself shows at 0: a read() that returns those bytes for the offset read from 0. */
	printf("\",\"map0\":\"");
	hex_bytes((const unsigned char *)m, 4);
	printf("\",\"canary\":\"%02x\",\"again\":", CANARY);
	again = mmap(NULL, (size_t)psize, PROT_READ, MAP_SHARED, fd, 0);
	if (again == MAP_FAILED) {
		printf("null");
	} else {
		printf("\"");
		hex_bytes((const unsigned char *)again + WRITE_OFFSET, 4);
		printf("\"");
		munmap(again, (size_t)psize);
	}
	printf("}\n");
}

/*
 * Are the pages of a shared mapping different pages? pagemap cannot say for a
 * PFN mapping (remap_pfn_range), so write a different marker into each page
 * through a writable mapping and read them back: a page that shows another
 * page's marker is that page. The original words are put back.
 */
static void alias_test(unsigned long npages)
{
	int fd = open(device, O_RDWR);
	uint32_t *saved;
	char *m;
	unsigned long i, n = 0;

	if (fd < 0) {
		printf("{\"t\":\"alias\",\"tested\":false,\"why\":\"open(O_RDWR): %s\"}\n", errno_name(errno));
		return;
	}
	m = mmap(NULL, npages * (unsigned long)psize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		printf("{\"t\":\"alias\",\"tested\":false,\"why\":\"writable MAP_SHARED: %s\"}\n", errno_name(errno));
		return;
	}
	saved = calloc(npages, sizeof(*saved));
	for (i = 0; i < npages; i++)
		saved[i] = *(volatile uint32_t *)(m + i * (unsigned long)psize + 12);
	for (i = 0; i < npages; i++)
		*(volatile uint32_t *)(m + i * (unsigned long)psize + 12) = 0x5eed1000U + (uint32_t)i;
	printf("{\"t\":\"alias\",\"tested\":true,\"pairs\":[");
	for (i = 0; i < npages; i++) {
		uint32_t v = *(volatile uint32_t *)(m + i * (unsigned long)psize + 12);

		if (v != 0x5eed1000U + (uint32_t)i)
			printf("%s[%lu,%ld]", n++ ? "," : "", i, (v & 0xfffff000U) == 0x5eed1000U ? (long)(v - 0x5eed1000U) : -1L);
	}
	printf("]}\n");
	for (i = npages; i-- > 0;)
		*(volatile uint32_t *)(m + i * (unsigned long)psize + 12) = saved[i];
	free(saved);
	munmap(m, npages * (unsigned long)psize);
}

static void whole_area(int flags, unsigned long npages, unsigned long pgoff)
{
	int fd = open_device(O_RDONLY);
	char *m = map(fd, npages, pgoff, PROT_READ, flags, -1);
	unsigned long i, ok = 0, frames = 0;

	close(fd);
	catch_faults(m, 0);
	for (i = 0; i < npages; i++) {
		ok += read_page(m + i * (unsigned long)psize, i, pgoff + i);
		frames += frame_of(m + i * (unsigned long)psize) != 0;
	}
	/* Asked whether the pages differ, and pagemap could not say: test by writing. */
	if (want_pfns && flags == MAP_SHARED && pgoff == 0 && frames < npages && ok == npages)
		alias_test(npages);
	done(ok, npages);
}

static void private_per_page(void)
{
	int fd = open_device(O_RDONLY);
	unsigned long i, ok = 0;
	char *m[4096];

	for (i = 0; i < pages && i < 4096; i++)
		m[i] = map(fd, 1, i, PROT_READ, MAP_PRIVATE, (long)i);
	close(fd);
	for (i = 0; i < pages && i < 4096; i++) {
		catch_faults(m[i], (long)i);
		ok += read_page(m[i], i, i);
	}
	done(ok, pages);
}

static void shared_write(void)
{
	int fd = open_device(O_RDWR);
	char *m = map(fd, pages, 0, PROT_READ | PROT_WRITE, MAP_SHARED, -1);
	uint32_t before;

	catch_faults(m, 0);
	before = *(volatile uint32_t *)(m + WRITE_OFFSET);
	*(volatile uint32_t *)(m + WRITE_OFFSET) = SHARED_MARK;
	printf("{\"t\":\"write\",\"page\":0,\"offset\":%d,\"value\":\"0x%08x\"}\n", WRITE_OFFSET, SHARED_MARK);
	read_probe(fd, m);
	/* Leave the buffer as it was for the checks that follow. */
	*(volatile uint32_t *)(m + WRITE_OFFSET) = before;
	close(fd);
	done(1, 1);
}

static void private_isolation(void)
{
	int fd = open_device(O_RDONLY);
	char *m = map(fd, pages, 0, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	char *s;
	uint32_t seen_read, seen_shared;
	int ok, read_ok;

	catch_faults(m, 0);
	ok = read_page(m, 0, 0);
	*(volatile uint32_t *)(m + WRITE_OFFSET) = PRIVATE_MARK;
	printf("{\"t\":\"write\",\"page\":0,\"offset\":%d,\"value\":\"0x%08x\"}\n", WRITE_OFFSET, PRIVATE_MARK);
	seen_read = driver_word(fd, &read_ok);
	if (read_ok)
		printf("{\"t\":\"readback\",\"via\":\"read\",\"ok\":true,\"value\":\"0x%08x\",\"matches\":%s}\n", seen_read, seen_read == PRIVATE_MARK ? "true" : "false");
	s = map(fd, 1, 0, PROT_READ, MAP_SHARED, 0);
	catch_faults(s, 0);
	seen_shared = *(volatile uint32_t *)(s + WRITE_OFFSET);
	printf("{\"t\":\"readback\",\"via\":\"shared\",\"ok\":true,\"value\":\"0x%08x\",\"matches\":%s}\n", seen_shared, seen_shared == PRIVATE_MARK ? "true" : "false");
	/* The private copy still holds the pattern and the write. */
	ok = ok && *(volatile uint32_t *)(m + WRITE_OFFSET) == PRIVATE_MARK;
	close(fd);
	done(ok, 1);
}

static sigjmp_buf ro_jump;
static volatile sig_atomic_t ro_sig, ro_code;

static void on_ro_fault(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	ro_sig = sig;
	ro_code = si->si_code;
	siglongjmp(ro_jump, 1);
}

/*
 * A read-only mapping of a file opened read-only must not write the buffer:
 * the write has to fault. A driver that installs writable page-table entries
 * (PAGE_SHARED instead of vma->vm_page_prot) lets it through, and the kernel,
 * which thinks the mapping read-only, never hears of it. The word is put back.
 */
static void readonly_write(void)
{
	int fd = open_device(O_RDONLY);
	char *m = map(fd, pages, 0, PROT_READ, MAP_SHARED, -1);
	volatile uint32_t *w = (volatile uint32_t *)(m + RO_OFFSET);
	struct sigaction sa;
	uint32_t old;
	char *again;
	int reached = 0;

	catch_faults(m, 0);
	old = *w;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_ro_fault;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	if (sigsetjmp(ro_jump, 1)) {
		catch_faults(m, 0);
		printf("{\"t\":\"ro-write\",\"faulted\":true,\"signal\":\"%s\",\"code\":\"%s\"}\n", ro_sig == SIGBUS ? "SIGBUS" : "SIGSEGV", si_code_name(ro_sig, ro_code));
		close(fd);
		done(1, 1);
		return;
	}
	*w = RO_MARK;
	/* It went through. From here a fault is the mapping's own, reported as such, not a refused write. */
	catch_faults(m, 0);
	/* Does the driver's buffer show it (a second mapping)? */
	again = mmap(NULL, (size_t)psize, PROT_READ, MAP_SHARED, fd, 0);
	if (again != MAP_FAILED) {
		reached = *(volatile uint32_t *)(again + RO_OFFSET) == RO_MARK;
		munmap(again, (size_t)psize);
	}
	*w = old;
	printf("{\"t\":\"ro-write\",\"faulted\":false,\"reached\":%s}\n", reached ? "true" : "false");
	close(fd);
	done(0, 1);
}

static void mprotect_check(void)
{
	int fd = open_device(O_RDONLY);
	char *m = map(fd, pages, 0, PROT_READ, MAP_PRIVATE, -1);
	int r = mprotect(m, pages * (unsigned long)psize, PROT_READ | PROT_WRITE);
	int e = errno;

	close(fd);
	if (r) {
		printf("{\"t\":\"mprotect\",\"ok\":false,\"errno\":%d,\"err\":\"%s\",\"msg\":\"%s\"}\n", e, errno_name(e), strerror(e));
		return;
	}
	printf("{\"t\":\"mprotect\",\"ok\":true}\n");
	catch_faults(m, 0);
	/* Writable now: a write lands in a private copy. */
	*(volatile uint32_t *)(m + WRITE_OFFSET) = PRIVATE_MARK;
	done(read_page(m, 0, 0), 1);
}

/* Print a string (a tracefs line, a device path) as the inside of a JSON string, up to its first newline. */
static void json_string(const char *s)
{
	for (; *s && *s != '\n'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c >= 0x20)
			putchar(c);
	}
}

static int run_check(const char *check)
{
	/* Opened in the child: /proc/self is the process that maps. */
	if (want_pfns)
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	/* The device path comes from the driver's own name: escaped like any string it chose. */
	printf("{\"t\":\"start\",\"check\":\"%s\",\"device\":\"", check);
	json_string(device);
	printf("\",\"pages\":%lu,\"pageSize\":%ld,\"pattern\":\"0x%08x\"}\n", pages, psize, pattern);
	if (!strcmp(check, "private"))
		whole_area(MAP_PRIVATE, pages, 0);
	else if (!strcmp(check, "shared"))
		whole_area(MAP_SHARED, pages, 0);
	else if (!strcmp(check, "private-per-page"))
		private_per_page();
	else if (!strcmp(check, "shared-write"))
		shared_write();
	else if (!strcmp(check, "private-isolation"))
		private_isolation();
	else if (!strcmp(check, "mprotect"))
		mprotect_check();
	else if (!strcmp(check, "offset"))
		whole_area(MAP_SHARED, pages > 3 ? pages - 3 : 1, 3);
	else if (!strcmp(check, "oversize"))
		whole_area(MAP_SHARED, pages + 1, 0);
	else if (!strcmp(check, "readonly"))
		readonly_write();
	else
		return 4;
	return 0;
}

static const char *const known_checks[] = {
	"private", "shared", "private-per-page", "shared-write", "private-isolation", "mprotect", "offset", "oversize", "readonly",
};

static int known(const char *check)
{
	for (size_t i = 0; i < sizeof(known_checks) / sizeof(known_checks[0]); i++)
		if (!strcmp(known_checks[i], check))
			return 1;
	return 0;
}

static void kmsg(const char *fmt, const char *check, int status)
{
	char line[256];
	int fd = open("/dev/kmsg", O_WRONLY);
	int n;

	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), fmt, check, status);
	if (n > 0 && write(fd, line, (size_t)n) < 0)
		n = 0;
	close(fd);
}


/*
 * Report the trace lines recorded since the last call, read from the trace
 * instance's trace_pipe without blocking: each line is read once and consumed,
 * so a guest that serves many jobs never reads its earlier jobs' lines again
 * (re-reading `trace` costs the whole buffer's formatting at every check).
 * check NULL: drain what is there (an earlier job's leftovers) unreported.
 */
static void report_trace(const char *dir, const char *check)
{
	static int fd = -2;
	static char buf[16384];
	static size_t have;
	char path[512];

	if (fd == -2) {
		snprintf(path, sizeof(path), "%s/trace_pipe", dir);
		fd = open(path, O_RDONLY | O_NONBLOCK);
	}
	if (fd < 0)
		return;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		char *line, *nl;

		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		for (line = buf; (nl = memchr(line, '\n', (size_t)(buf + have - line))); line = nl + 1) {
			*nl = 0;
			if (!check || line[0] == '#')
				continue;
			printf("{\"t\":\"trace\",\"check\":\"%s\",\"line\":\"", check);
			json_string(line);
			fputs("\"}\n", stdout);
		}
		have = (size_t)(buf + have - line);
		memmove(buf, line, have);
		/* A line longer than the buffer is not a kprobe event's: dropped. */
		if (have == sizeof(buf) - 1)
			have = 0;
	}
}

/* Wait for the check's child, killing it after timeout_s; the status as a shell reports it. */
static int wait_check(pid_t pid, long timeout_s)
{
	struct timespec start, now, nap = { 0, 2000000 };
	int status;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0)
			return 127;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout_s) {
			kill(pid, SIGKILL);
			/* A child stuck in the kernel may never go; do not wait for it forever. */
			for (int i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
				nanosleep(&nap, NULL);
			return 124;
		}
		nanosleep(&nap, NULL);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 127;
}

int main(int argc, char **argv)
{
	const char *trace_dir = NULL;
	char *checks = NULL, *save = NULL, *check;
	long timeout_s = 20;
	int mark = 0, traced_before = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--device") && a + 1 < argc)
			device = argv[++a];
		else if ((!strcmp(argv[a], "--checks") || !strcmp(argv[a], "--check")) && a + 1 < argc)
			checks = strdup(argv[++a]);
		else if (!strcmp(argv[a], "--pages") && a + 1 < argc)
			pages = strtoul(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--either-order"))
			either_order = 1;
		else if (!strcmp(argv[a], "--pattern") && a + 1 < argc)
			pattern = (uint32_t)strtoul(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--timeout") && a + 1 < argc)
			timeout_s = strtol(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--trace") && a + 1 < argc)
			trace_dir = argv[++a];
		else if (!strcmp(argv[a], "--kmsg"))
			mark = 1;
		else if (!strcmp(argv[a], "--no-index"))
			check_index = 0;
		else if (!strcmp(argv[a], "--pfns"))
			want_pfns = 1;
		else
			usage();
	}
	if (!device || !checks || !pages || pages > 4096 || timeout_s < 1)
		usage();
	psize = sysconf(_SC_PAGESIZE);
	page_size = psize;

	/* Refuse an unknown check before running any. */
	{
		char *copy = strdup(checks), *s2 = NULL;

		for (check = strtok_r(copy, ",", &s2); check; check = strtok_r(NULL, ",", &s2))
			if (!known(check))
				usage();
		free(copy);
	}

	for (check = strtok_r(checks, ",", &save); check; check = strtok_r(NULL, ",", &save)) {
		pid_t pid;
		int status;

		if (trace_dir && !traced_before++)
			report_trace(trace_dir, NULL);
		if (mark)
			kmsg("mmaplab: check %s begin\n", check, 0);
		fflush(stdout);
		pid = fork();
		if (pid == 0)
			exit(run_check(check));
		status = pid < 0 ? 127 : wait_check(pid, timeout_s);
		if (mark)
			kmsg("mmaplab: check %s end status %d\n", check, status);
		printf("{\"t\":\"exit\",\"check\":\"%s\",\"status\":%d}\n", check, status);
		if (trace_dir)
			report_trace(trace_dir, check);
	}
	return 0;
}
