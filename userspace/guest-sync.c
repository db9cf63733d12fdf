/*
 * guest-sync: run by the guest agent after a snapshot restore, before a job.
 * A restored guest wakes with the clock and the random state of the moment the
 * snapshot was taken; every restore would otherwise see the same time and draw
 * the same "random" numbers.
 *
 *   guest-sync <unix-nanoseconds> <hex seed, up to 64 bytes>
 *
 * sets CLOCK_REALTIME, credits the seed to the kernel's entropy pool
 * (RNDADDENTROPY) and forces the CRNG to reseed from it now (RNDRESEEDCRNG),
 * then prints one JSON record: the time it set and 16 bytes from getrandom(),
 * so the host can see that both changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: guest-sync NANOSECONDS HEXSEED\n");
		return 2;
	}
	unsigned long long ns = strtoull(argv[1], NULL, 10);
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) };
	int clock_ok = clock_settime(CLOCK_REALTIME, &ts) == 0;

	struct {
		struct rand_pool_info info;
		unsigned char buf[64];
	} seed;
	size_t n = 0;
	for (const char *h = argv[2]; h[0] && h[1] && n < sizeof(seed.buf); h += 2) {
		unsigned int byte;
		if (sscanf(h, "%2x", &byte) != 1)
			break;
		seed.buf[n++] = (unsigned char)byte;
	}
	seed.info.entropy_count = (int)(n * 8);
	seed.info.buf_size = (int)n;
	int rng_ok = 0;
	int fd = open("/dev/urandom", O_WRONLY);
	if (fd >= 0) {
		rng_ok = ioctl(fd, RNDADDENTROPY, &seed.info) == 0;
		/* Without the reseed, the CRNG keeps its restored key for up to a minute. */
		if (rng_ok)
			rng_ok = ioctl(fd, RNDRESEEDCRNG) == 0;
		close(fd);
	}
	unsigned char r[16];
	char hex[33] = "";
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		for (size_t i = 0; i < sizeof(r); i++)
			sprintf(hex + 2 * i, "%02x", r[i]);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	printf("{\"t\":\"synced\",\"clock\":%s,\"rng\":%s,\"time\":%lld,\"random\":\"%s\"}\n", clock_ok ? "true" : "false",
	       rng_ok ? "true" : "false", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, hex);
	return clock_ok && rng_ok ? 0 : 1;
}
