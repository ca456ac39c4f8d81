/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A reply sink for hiredis's reader (private to lib/kvstore): the string
 * elements of an array reply copied into one buffer as the reader parses
 * them, without the redisReply object and string allocation hiredis makes
 * per element and frees right after. The full sync reads its MGET replies
 * (512 values each, a million in a cold sync) through it. The reader
 * parses the protocol as always; only what it builds differs: the same
 * reply read with hiredis's own objects gives the same strings
 * (tests/unit/test_kvstore.c, strs_reader).
 */
#ifndef MG_KV_STRS_H
#define MG_KV_STRS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

struct kv_strs {
	size_t want;     /* elements kept: 0 .. want-1 of a top-level array */
	bool array;      /* the reply is an array */
	size_t elements; /* its elements */
	char *buf;       /* the kept strings, each NUL-terminated */
	size_t used, cap;
	size_t *off, *len; /* per kept element; off KV_STRS_NONE: not a string */
	size_t cap_el;
};

#define KV_STRS_NONE ((size_t)-1)

/* Empty; kv_strs_free releases it. */
void kv_strs_init(struct kv_strs *s);
void kv_strs_free(struct kv_strs *s);
/* Ready for a reply whose elements 0 .. @want-1 are kept. 0 or -ENOMEM. */
int kv_strs_begin(struct kv_strs *s, size_t want);
/* Element @i: true and its bytes (NUL-terminated) when it is a string. */
bool kv_strs_get(const struct kv_strs *s, size_t i, const char **str, size_t *len);

/*
 * The reader functions; the reader's privdata must be the sink. Strings of
 * a top-level array at index < want are kept; every other value (nil,
 * integers, status and error replies, nested arrays and what they hold) is
 * parsed and dropped. Out of memory fails the reply as hiredis's own
 * functions do (the reader's "Out of memory" error).
 */
extern redisReplyObjectFunctions kv_strs_fn;

/*
 * The next reply on @ctx into @s (kv_strs_begin first): REDIS_OK, or
 * REDIS_ERR after a connection or protocol error, which leaves @ctx to be
 * freed (its reader may hold a reply of these functions).
 */
int kv_strs_read(redisContext *ctx, struct kv_strs *s);

#endif /* MG_KV_STRS_H */
