/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small helpers shared by every module: branch hints, array sizes, the
 * errno-returning convention and the control-path log.
 *
 * Conventions (see docs/architecture.md):
 *  - control-path functions return 0 or a negative errno;
 *  - constructors return a pointer, or NULL with errno set;
 *  - the data path never logs, allocates or takes a lock.
 */
#ifndef MG_COMMON_H
#define MG_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define MG_LIKELY(x) __builtin_expect(!!(x), 1)
#define MG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MG_UNUSED __attribute__((unused))
#define MG_CACHE_LINE 64
#define MG_CACHE_ALIGNED __attribute__((aligned(MG_CACHE_LINE)))
#define MG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/** Set errno to @p e and return -e: `return mg_errno_set(EINVAL);`. */
static inline int
mg_errno_set(int e)
{
	errno = e;
	return -e;
}

/** Log levels of the control path. */
enum mg_log_level {
	MG_LOG_ERR,
	MG_LOG_WARN,
	MG_LOG_INFO,
	MG_LOG_DEBUG,
};

/** Messages above this level are dropped (default MG_LOG_INFO). */
void mg_log_set_level(enum mg_log_level level);

/** Write one line to stderr, prefixed with the level. Not for the data path. */
void mg_log(enum mg_log_level level, const char *fmt, ...) MG_PRINTF(2, 3);

#define MG_ERR(...) mg_log(MG_LOG_ERR, __VA_ARGS__)
#define MG_WARN(...) mg_log(MG_LOG_WARN, __VA_ARGS__)
#define MG_INFO(...) mg_log(MG_LOG_INFO, __VA_ARGS__)
#define MG_DEBUG(...) mg_log(MG_LOG_DEBUG, __VA_ARGS__)

/**
 * An error message with its place in an input file, as
 * "file:line:column: message". Parsers of outside input fill one so that
 * the caller can print it or return it over the control socket.
 */
struct mg_error {
	char msg[512];
};

/** Format @p fmt into @p err, prefixed with "file:line:column: " when file is set. */
void mg_error_set(struct mg_error *err, const char *file, unsigned line, unsigned col,
                  const char *fmt, ...) MG_PRINTF(5, 6);

/** Put @p prefix ("kvstore: ") before @p err's message (an empty one stays empty). */
void mg_error_prefix(struct mg_error *err, const char *prefix);

/**
 * Make room for one more element in the growing array *@p vp (of *@p cap
 * elements of @p esz bytes, @p n of them used): when full, its capacity
 * doubles (starting at @p min). Control path. 0, or -ENOMEM (the array
 * is unchanged).
 */
int mg_grow(void *vp, size_t *cap, size_t n, size_t esz, size_t min);

/** Monotonic time in nanoseconds (control path). */
uint64_t mg_time_ns(void);

#endif /* MG_COMMON_H */
