/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The string sink of hiredis's reader (kv_strs.h): what hiredis's own
 * functions would put in the element array of a top-level array reply, as
 * offsets into one buffer that grows to the largest reply and is reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_strs.h"

void
kv_strs_init(struct kv_strs *s)
{
	memset(s, 0, sizeof(*s));
}

void
kv_strs_free(struct kv_strs *s)
{
	free(s->buf);
	free(s->off);
	free(s->len);
	memset(s, 0, sizeof(*s));
}

int
kv_strs_begin(struct kv_strs *s, size_t want)
{
	if (want > s->cap_el) {
		size_t *o = realloc(s->off, want * sizeof(*o));
		if (o == NULL)
			return -ENOMEM;
		s->off = o;
		size_t *l = realloc(s->len, want * sizeof(*l));
		if (l == NULL)
			return -ENOMEM;
		s->len = l;
		s->cap_el = want;
	}
	for (size_t i = 0; i < want; i++)
		s->off[i] = KV_STRS_NONE;
	s->want = want;
	s->array = false;
	s->elements = 0;
	s->used = 0;
	return 0;
}

bool
kv_strs_get(const struct kv_strs *s, size_t i, const char **str, size_t *len)
{
	if (!s->array || i >= s->want || i >= s->elements || s->off[i] == KV_STRS_NONE)
		return false;
	*str = s->buf + s->off[i];
	*len = s->len[i];
	return true;
}

/* The value a task stands for, when it is an element of the top-level array. */
static bool
kv_strs_top_element(const redisReadTask *t)
{
	return t->parent != NULL && t->parent->parent == NULL;
}

static void *
kv_strs_string(const redisReadTask *t, char *str, size_t len)
{
	struct kv_strs *s = t->privdata;

	if (t->type != REDIS_REPLY_STRING || !kv_strs_top_element(t) || t->idx < 0 ||
	    (size_t)t->idx >= s->want)
		return s;
	if (s->cap - s->used < len + 1) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap - s->used < len + 1)
			cap *= 2;
		char *nb = realloc(s->buf, cap);
		if (nb == NULL)
			return NULL; /* the reader's "Out of memory", as for its own objects */
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->used, str, len);
	s->buf[s->used + len] = '\0';
	s->off[t->idx] = s->used;
	s->len[t->idx] = len;
	s->used += len + 1;
	return s;
}

static void *
kv_strs_array(const redisReadTask *t, int elements)
{
	struct kv_strs *s = t->privdata;

	if (t->parent == NULL) {
		s->array = true;
		s->elements = elements > 0 ? (size_t)elements : 0;
	}
	return s;
}

static void *
kv_strs_integer(const redisReadTask *t, long long v)
{
	(void)v;
	return t->privdata;
}

static void *
kv_strs_nil(const redisReadTask *t)
{
	return t->privdata;
}

static void
kv_strs_free_object(void *o)
{
	(void)o; /* nothing is allocated per object */
}

redisReplyObjectFunctions kv_strs_fn = {
        .createString = kv_strs_string,
        .createArray = kv_strs_array,
        .createInteger = kv_strs_integer,
        .createNil = kv_strs_nil,
        .freeObject = kv_strs_free_object,
};

int
kv_strs_read(redisContext *ctx, struct kv_strs *s)
{
	redisReplyObjectFunctions *fn = ctx->reader->fn;
	void *priv = ctx->reader->privdata;
	void *reply = NULL;

	ctx->reader->fn = &kv_strs_fn;
	ctx->reader->privdata = s;
	if (redisGetReply(ctx, &reply) != REDIS_OK || reply == NULL)
		return REDIS_ERR; /* the reader may hold part of a reply of ours */
	ctx->reader->fn = fn;
	ctx->reader->privdata = priv;
	return REDIS_OK;
}
