/*
 * clock: the monotonic clock every component measures intervals with
 * (commit deadlines, heartbeat renewal, lease ages, I/O timeouts, the
 * crash harness's record stamps).  Header only; CLOCK_MONOTONIC never
 * jumps with the wall clock, so a deadline computed from it survives an
 * NTP step.
 */
#ifndef VMFS_CLOCK_H
#define VMFS_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* A condition variable whose timed waits count on the monotonic clock. */
static inline void vmfs_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

static inline int64_t vmfs_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t vmfs_mono_us(void)
{
	return vmfs_mono_ns() / 1000;
}

static inline int64_t vmfs_mono_ms(void)
{
	return vmfs_mono_ns() / 1000000;
}

/* Wall-clock nanoseconds, for what is shown or stored, never for intervals. */
static inline int64_t vmfs_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A vmfs_mono_ns() instant as the timespec pthread_cond_timedwait takes,
 * for a condition variable whose clock is CLOCK_MONOTONIC. */
static inline struct timespec vmfs_mono_timespec(int64_t mono_ns)
{
	return (struct timespec){ .tv_sec = mono_ns / 1000000000LL,
				  .tv_nsec = mono_ns % 1000000000LL };
}

#endif /* VMFS_CLOCK_H */
