/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvstore writer: one synchronous hiredis connection to a cluster's
 * Redis, used by meshgatectl's kv commands. It parses the URL, connects
 * with timeouts, authenticates (ACL user or legacy password, optionally
 * from a file only its owner can read), selects the database and loads
 * the Function library, then changes keys only through FCALL mg_put /
 * mg_del, so that every change and its log entry happen atomically and
 * unchanged values write and log nothing. Bulk changes (imports, prunes,
 * the bench's writers) are queued and sent as FCALL mg_batch calls of many
 * changes, several in flight, because Redis spends most of a single
 * change's time on the function call itself, not on the SET and XADD.
 * Values are built and checked by mg_kv_model.c, so the writer never
 * stores something the readers would reject.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "mg_kvstore.h"

/* One queued change: key and value are offsets into the arena. */
struct kv_change {
	size_t key, key_len, val, val_len;
	bool del;
	struct mg_kv_batch_counts *counts;
};

/* A sent mg_batch call: its changes' counters, in order. */
struct kv_inflight {
	unsigned n;
	struct mg_kv_batch_counts **counts;
};

struct mg_kv_writer {
	redisContext *c;
	/* The batch being built (n_queued of batch) and its strings. */
	unsigned batch, n_queued;
	struct kv_change *queued;
	char *arena;
	size_t arena_len, arena_cap;
	/* FCALL mg_batch arguments, built per call (7 + 3 * batch). */
	const char **argv;
	size_t *argvlen;
	/* Ring of calls in flight: inflight[(head + i) % PIPELINE]. */
	struct kv_inflight inflight[MG_KV_WRITER_PIPELINE];
	unsigned head, n_inflight;
	char cluster[MG_KV_CLUSTER_NAME_MAX + 1];
	/* Where the cluster's keys go: cilium/cache/.../<cluster>/ (the
	 * per-cluster layout), or cilium/state/... (this Redis holds this one
	 * cluster alone, as its clustermesh-apiserver's etcd does). */
	enum mg_kv_scope scope;
	char log[MG_KV_KEY_MAX];
	char epoch[MG_KV_KEY_MAX];
	char maxlen[16];
	/* Renews the epoch when a put/del finds the log missing. */
	char token[33];
};

static int
kv_parse_db(const char *s, unsigned *db)
{
	char *end;
	unsigned long v;

	if (*s == '\0')
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > 15 || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	*db = (unsigned)v;
	return 0;
}

int
mg_kv_url_parse(char *s, struct mg_kv_url *u, struct mg_error *err)
{
	char *rest, *at, *slash, *colon, *q;
	char *end;
	unsigned long port;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(s, "unix://", 7) == 0) {
		u->path = s + 7;
		q = strchr(u->path, '?');
		if (q != NULL) {
			*q++ = '\0';
			if (strncmp(q, "db=", 3) != 0 || kv_parse_db(q + 3, &u->db) < 0)
				goto bad;
		}
		if (u->path[0] != '/')
			goto bad;
		return 0;
	}
	if (strncmp(s, "redis://", 8) != 0)
		goto bad;
	rest = s + 8;
	at = strrchr(rest, '@');
	if (at != NULL) {
		*at = '\0';
		colon = strchr(rest, ':');
		if (colon != NULL) {
			*colon = '\0';
			u->password = colon + 1;
		}
		if (rest[0] != '\0')
			u->user = rest;
		rest = at + 1;
	}
	slash = strchr(rest, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (kv_parse_db(slash + 1, &u->db) < 0)
			goto bad;
	}
	if (rest[0] == '[') { /* [v6]:port */
		u->host = rest + 1;
		end = strchr(u->host, ']');
		if (end == NULL)
			goto bad;
		*end = '\0';
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			goto bad;
	} else {
		u->host = rest;
		colon = strchr(rest, ':');
	}
	if (colon != NULL) {
		*colon = '\0';
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || port < 1 || port > 65535 || colon[1] == '\0')
			goto bad;
		u->port = (int)port;
	}
	if (u->host[0] == '\0')
		goto bad;
	return 0;
bad:
	mg_error_set(err, NULL, 0, 0,
	             "bad Redis URL: want redis://[user[:password]@]host[:port][/db] or "
	             "unix:///path[?db=N] (db 0-15)");
	return mg_errno_set(EINVAL);
}

int
mg_kv_password_file_read(const char *path, char *buf, size_t size, struct mg_error *err)
{
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "password file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "password file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		mg_error_set(err, NULL, 0, 0, "password file %s: not a regular file", path);
		rc = -EINVAL;
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		mg_error_set(err, NULL, 0, 0,
		             "password file %s: mode %04o lets group or others read it; "
		             "chmod 600 it",
		             path, (unsigned)(st.st_mode & 07777));
		rc = -EACCES;
		goto out;
	}
	n = read(fd, buf, size - 1);
	if (n < 0) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "password file %s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		mg_error_set(err, NULL, 0, 0, "password file %s: empty", path);
		rc = -EINVAL;
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* Turn a failed or error reply into -errno with @p err set; frees @p r. */
static int
kv_reply_error(struct mg_kv_writer *w, redisReply *r, const char *what, struct mg_error *err)
{
	int rc;

	if (r == NULL) {
		rc = w->c->err == REDIS_ERR_IO && errno == EAGAIN ? -ETIMEDOUT : -EIO;
		mg_error_set(err, NULL, 0, 0, "redis %s: %s", what,
		             rc == -ETIMEDOUT ? "timed out" : w->c->errstr);
		return rc;
	}
	rc = -EPROTO;
	if (r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "WRONGPASS", 9) == 0 || strncmp(r->str, "NOAUTH", 6) == 0 ||
		    strncmp(r->str, "NOPERM", 6) == 0)
			rc = -EACCES;
		mg_error_set(err, NULL, 0, 0, "redis %s: %s", what, r->str);
	} else {
		mg_error_set(err, NULL, 0, 0, "redis %s: unexpected reply type %d", what, r->type);
	}
	freeReplyObject(r);
	return rc;
}

/* Run a command expecting a non-error reply; returns it or NULL with rc. */
static redisReply *
kv_cmd(struct mg_kv_writer *w, const char *what, int *rc, struct mg_error *err, int argc,
       const char **argv)
{
	redisReply *r;

	/* Queued changes go first: the caller's call comes after them. */
	if (w->n_queued != 0 || w->n_inflight != 0) {
		*rc = mg_kv_writer_flush(w, err);
		if (*rc < 0)
			return NULL;
	}
	r = redisCommandArgv(w->c, argc, argv, NULL);

	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		*rc = kv_reply_error(w, r, what, err);
		return NULL;
	}
	return r;
}

static int
kv_cmd_ok(struct mg_kv_writer *w, const char *what, struct mg_error *err, int argc,
          const char **argv)
{
	int rc = 0;
	redisReply *r = kv_cmd(w, what, &rc, err, argc, argv);

	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static int
kv_load_functions(struct mg_kv_writer *w, const char *path, struct mg_error *err)
{
	const char *argv[4] = {"FUNCTION", "LOAD", "REPLACE", NULL};
	FILE *f;
	char *buf = NULL;
	long len;
	int rc;

	f = fopen(path, "rb");
	if (f == NULL) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "functions %s: %s", path, strerror(errno));
		return rc;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)len + 1)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		rc = buf == NULL ? -ENOMEM : -EIO;
		mg_error_set(err, NULL, 0, 0, "functions %s: cannot read", path);
		goto out;
	}
	buf[len] = '\0';
	argv[3] = buf;
	rc = kv_cmd_ok(w, "FUNCTION LOAD", err, 4, argv);
out:
	free(buf);
	fclose(f);
	return rc;
}

struct mg_kv_writer *
mg_kv_writer_open(const struct mg_kv_writer_opts *o, struct mg_error *err)
{
	struct mg_kv_writer *w = NULL;
	char pwbuf[512], dbs[16];
	const char *user, *password;
	struct timeval tv;
	struct mg_kv_url u;
	unsigned ms;
	uint8_t rnd[16];
	char *url = NULL;
	int rc, i;

	if (o->cluster == NULL || !mg_kv_cluster_name_valid(o->cluster)) {
		mg_error_set(err, NULL, 0, 0, "invalid cluster name '%s'",
		             o->cluster ? o->cluster : "");
		rc = -EINVAL;
		goto err;
	}
	url = strdup(o->url != NULL ? o->url : MG_KV_WRITER_URL_DEFAULT);
	if (url == NULL) {
		rc = -ENOMEM;
		mg_error_set(err, NULL, 0, 0, "out of memory");
		goto err;
	}
	rc = mg_kv_url_parse(url, &u, err);
	if (rc < 0)
		goto err;
	user = o->user != NULL ? o->user : u.user;
	password = o->password != NULL ? o->password : u.password;
	if (o->password_file != NULL) {
		rc = mg_kv_password_file_read(o->password_file, pwbuf, sizeof(pwbuf), err);
		if (rc < 0)
			goto err;
		password = pwbuf;
	}
	if (user != NULL && password == NULL) {
		mg_error_set(err, NULL, 0, 0, "user '%s' given without a password", user);
		rc = -EINVAL;
		goto err;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		rc = -ENOMEM;
		mg_error_set(err, NULL, 0, 0, "out of memory");
		goto err;
	}
	snprintf(w->cluster, sizeof(w->cluster), "%s", o->cluster);
	w->scope = o->single_cluster ? MG_KV_SCOPE_STATE : MG_KV_SCOPE_CACHE;
	mg_kv_log_key(w->log, sizeof(w->log), o->cluster);
	mg_kv_epoch_key(w->epoch, sizeof(w->epoch), o->cluster);
	snprintf(w->maxlen, sizeof(w->maxlen), "%u",
	         o->maxlen ? o->maxlen : MG_KV_WRITER_MAXLEN_DEFAULT);
	w->batch = o->batch ? o->batch : MG_KV_WRITER_BATCH_DEFAULT;
	if (w->batch > MG_KV_BATCH_MAX) {
		mg_error_set(err, NULL, 0, 0, "batch %u: at most %u changes per call", w->batch,
		             MG_KV_BATCH_MAX);
		rc = -EINVAL;
		goto err;
	}
	w->queued = calloc(w->batch, sizeof(*w->queued));
	w->argv = calloc(7 + 3 * (size_t)w->batch, sizeof(*w->argv));
	w->argvlen = calloc(7 + 3 * (size_t)w->batch, sizeof(*w->argvlen));
	if (w->queued == NULL || w->argv == NULL || w->argvlen == NULL) {
		rc = -ENOMEM;
		mg_error_set(err, NULL, 0, 0, "out of memory");
		goto err;
	}
	for (i = 0; i < (int)MG_KV_WRITER_PIPELINE; i++) {
		w->inflight[i].counts = calloc(w->batch, sizeof(*w->inflight[i].counts));
		if (w->inflight[i].counts == NULL) {
			rc = -ENOMEM;
			mg_error_set(err, NULL, 0, 0, "out of memory");
			goto err;
		}
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = -EIO;
		mg_error_set(err, NULL, 0, 0, "getrandom: %s", strerror(errno));
		goto err;
	}
	for (i = 0; i < 16; i++)
		snprintf(w->token + 2 * i, 3, "%02x", rnd[i]);

	ms = o->timeout_ms ? o->timeout_ms : MG_KV_WRITER_TIMEOUT_MS_DEFAULT;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (u.path != NULL)
		w->c = redisConnectUnixWithTimeout(u.path, tv);
	else
		w->c = redisConnectWithTimeout(u.host, u.port, tv);
	if (w->c == NULL || w->c->err) {
		rc = w->c != NULL && w->c->err == REDIS_ERR_IO ? -ECONNREFUSED : -EIO;
		mg_error_set(err, NULL, 0, 0, "cannot connect to Redis at %s: %s",
		             u.path ? u.path : u.host, w->c ? w->c->errstr : "out of memory");
		goto err;
	}
	if (redisSetTimeout(w->c, tv) != REDIS_OK) {
		rc = -EIO;
		mg_error_set(err, NULL, 0, 0, "redis: cannot set the command timeout");
		goto err;
	}
	if (password != NULL) {
		const char *av[3] = {"AUTH", user ? user : password, password};

		rc = kv_cmd_ok(w, "AUTH", err, user ? 3 : 2, av);
		if (rc < 0) {
			rc = -EACCES;
			goto err;
		}
	}
	if (u.db != 0) {
		const char *av[2] = {"SELECT", dbs};

		snprintf(dbs, sizeof(dbs), "%u", u.db);
		rc = kv_cmd_ok(w, "SELECT", err, 2, av);
		if (rc < 0)
			goto err;
	}
	if (o->functions != NULL) {
		rc = kv_load_functions(w, o->functions, err);
		if (rc < 0)
			goto err;
	}
	explicit_bzero(pwbuf, sizeof(pwbuf));
	free(url);
	return w;
err:
	explicit_bzero(pwbuf, sizeof(pwbuf));
	if (url != NULL)
		explicit_bzero(url, strlen(url));
	free(url);
	mg_kv_writer_close(w);
	errno = -rc;
	return NULL;
}

void
mg_kv_writer_close(struct mg_kv_writer *w)
{
	if (w == NULL)
		return;
	if (w->c != NULL)
		redisFree(w->c);
	for (unsigned i = 0; i < MG_KV_WRITER_PIPELINE; i++)
		free(w->inflight[i].counts);
	free(w->queued);
	free(w->arena);
	free(w->argv);
	free(w->argvlen);
	free(w);
}

/* ---- batches ---- */

/* Read the oldest call's reply and count its changes. */
static int
kv_batch_reply(struct mg_kv_writer *w, struct mg_error *err)
{
	struct kv_inflight *f = &w->inflight[w->head];
	redisReply *r = NULL;
	int rc = 0;

	if (redisGetReply(w->c, (void **)&r) != REDIS_OK)
		r = NULL;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		rc = kv_reply_error(w, r, "FCALL mg_batch", err);
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != f->n) {
		rc = -EPROTO;
		goto bad;
	}
	for (unsigned i = 0; i < f->n; i++) {
		const redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_INTEGER || (e->integer != 0 && e->integer != 1)) {
			rc = -EPROTO;
			goto bad;
		}
	}
	/* Counted only once the whole reply is known good. */
	for (unsigned i = 0; i < f->n; i++) {
		if (f->counts[i] == NULL)
			continue;
		if (r->element[i]->integer)
			f->counts[i]->written++;
		else
			f->counts[i]->unchanged++;
	}
	freeReplyObject(r);
	goto out;
bad:
	mg_error_set(err, NULL, 0, 0, "redis FCALL mg_batch: unexpected reply");
	freeReplyObject(r);
out:
	w->head = (w->head + 1) % MG_KV_WRITER_PIPELINE;
	w->n_inflight--;
	return rc;
}

/*
 * After an error: drop the queue, and read the replies in flight while the
 * connection works (an error reply leaves it usable), so the counters say
 * what Redis applied and the next command gets its own reply.
 */
static void
kv_batch_abort(struct mg_kv_writer *w)
{
	struct mg_error scratch;

	w->n_queued = 0;
	w->arena_len = 0;
	while (w->n_inflight != 0) {
		if (w->c->err != 0) {
			w->n_inflight = 0;
			break;
		}
		kv_batch_reply(w, &scratch);
	}
}

/* Send the queued changes as one mg_batch call (room in the ring first). */
static int
kv_batch_send(struct mg_kv_writer *w, struct mg_error *err)
{
	struct kv_inflight *f;
	unsigned n = w->n_queued, i;
	size_t a = 0;
	int rc, done = 0;
	char nkeys[16];

	if (w->n_inflight == MG_KV_WRITER_PIPELINE) {
		rc = kv_batch_reply(w, err);
		if (rc < 0)
			return rc;
	}
	snprintf(nkeys, sizeof(nkeys), "%u", 2 + n);
	w->argv[a] = "FCALL";
	w->argvlen[a++] = 5;
	w->argv[a] = "mg_batch";
	w->argvlen[a++] = 8;
	w->argv[a] = nkeys;
	w->argvlen[a++] = strlen(nkeys);
	w->argv[a] = w->log;
	w->argvlen[a++] = strlen(w->log);
	w->argv[a] = w->epoch;
	w->argvlen[a++] = strlen(w->epoch);
	for (i = 0; i < n; i++) {
		w->argv[a] = w->arena + w->queued[i].key;
		w->argvlen[a++] = w->queued[i].key_len;
	}
	w->argv[a] = w->maxlen;
	w->argvlen[a++] = strlen(w->maxlen);
	w->argv[a] = w->token;
	w->argvlen[a++] = strlen(w->token);
	for (i = 0; i < n; i++) {
		w->argv[a] = w->queued[i].del ? "del" : "put";
		w->argvlen[a++] = 3;
		w->argv[a] = w->arena + w->queued[i].val;
		w->argvlen[a++] = w->queued[i].val_len;
	}
	if (redisAppendCommandArgv(w->c, (int)a, w->argv, w->argvlen) != REDIS_OK)
		return kv_reply_error(w, NULL, "FCALL mg_batch", err);
	/* Send it now, not when a reply is next read: Redis works on this
	 * call while the caller queues the next one. */
	while (!done)
		if (redisBufferWrite(w->c, &done) != REDIS_OK)
			return kv_reply_error(w, NULL, "FCALL mg_batch", err);
	f = &w->inflight[(w->head + w->n_inflight) % MG_KV_WRITER_PIPELINE];
	f->n = n;
	for (i = 0; i < n; i++)
		f->counts[i] = w->queued[i].counts;
	w->n_inflight++;
	w->n_queued = 0;
	w->arena_len = 0;
	return 0;
}

/* Copy @p s (with its NUL) into the arena; its offset in *@p off. */
static int
kv_arena_add(struct mg_kv_writer *w, const char *s, size_t len, size_t *off)
{
	if (w->arena_len + len + 1 > w->arena_cap) {
		size_t cap = w->arena_cap ? w->arena_cap : 65536;
		char *a;

		while (cap < w->arena_len + len + 1)
			cap *= 2;
		a = realloc(w->arena, cap);
		if (a == NULL)
			return -ENOMEM;
		w->arena = a;
		w->arena_cap = cap;
	}
	memcpy(w->arena + w->arena_len, s, len + 1);
	*off = w->arena_len;
	w->arena_len += len + 1;
	return 0;
}

static int
kv_queue(struct mg_kv_writer *w, const char *key, const char *value, bool del,
         struct mg_kv_batch_counts *c, struct mg_error *err)
{
	struct kv_change *q = &w->queued[w->n_queued];
	int rc;

	q->key_len = strlen(key);
	q->val_len = strlen(value);
	if (kv_arena_add(w, key, q->key_len, &q->key) < 0 ||
	    kv_arena_add(w, value, q->val_len, &q->val) < 0) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		rc = -ENOMEM;
		goto err;
	}
	q->del = del;
	q->counts = c;
	if (++w->n_queued < w->batch)
		return 0;
	rc = kv_batch_send(w, err);
	if (rc == 0)
		return 0;
err:
	kv_batch_abort(w);
	return rc;
}

int
mg_kv_writer_queue_put(struct mg_kv_writer *w, const char *key, const char *value,
                       struct mg_kv_batch_counts *c, struct mg_error *err)
{
	return kv_queue(w, key, value, false, c, err);
}

int
mg_kv_writer_queue_del(struct mg_kv_writer *w, const char *key, struct mg_kv_batch_counts *c,
                       struct mg_error *err)
{
	return kv_queue(w, key, "", true, c, err);
}

int
mg_kv_writer_flush(struct mg_kv_writer *w, struct mg_error *err)
{
	int rc = 0;

	if (w->n_queued != 0)
		rc = kv_batch_send(w, err);
	while (rc == 0 && w->n_inflight != 0)
		rc = kv_batch_reply(w, err);
	if (rc < 0)
		kv_batch_abort(w);
	return rc;
}

/* Integer reply of an FCALL: 0 or 1. */
static int
kv_fcall(struct mg_kv_writer *w, const char *what, int argc, const char **argv,
         struct mg_error *err)
{
	redisReply *r;
	int rc = 0;

	r = kv_cmd(w, what, &rc, err, argc, argv);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_INTEGER || (r->integer != 0 && r->integer != 1)) {
		mg_error_set(err, NULL, 0, 0, "redis %s: unexpected reply", what);
		freeReplyObject(r);
		return -EPROTO;
	}
	rc = (int)r->integer;
	freeReplyObject(r);
	return rc;
}

int
mg_kv_writer_put(struct mg_kv_writer *w, const char *key, const char *value, struct mg_error *err)
{
	const char *argv[9] = {"FCALL",  "mg_put", "3",       key,     w->log,
	                       w->epoch, value,    w->maxlen, w->token};

	return kv_fcall(w, "FCALL mg_put", 9, argv, err);
}

int
mg_kv_writer_del(struct mg_kv_writer *w, const char *key, struct mg_error *err)
{
	const char *argv[8] = {"FCALL", "mg_del", "3", key, w->log, w->epoch, w->maxlen, w->token};

	return kv_fcall(w, "FCALL mg_del", 8, argv, err);
}

/* Key and canonical value of an identity; *@p val is free()d by the caller. */
static int
kv_identity_kv(const struct mg_kv_writer *w, uint32_t id, const char *labels, char *key, char **val,
               struct mg_error *err)
{
	struct mg_labels ls = MG_LABELS_INIT;
	int rc;

	if (mg_kv_identity_key(key, MG_KV_KEY_MAX, w->scope, w->cluster, id) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid identity %u", id);
		return -EINVAL;
	}
	if (labels[0] == '\0') {
		mg_error_set(err, NULL, 0, 0, "identity %u: no labels", id);
		return -EINVAL;
	}
	rc = mg_labels_parse(&ls, labels, err);
	if (rc < 0)
		return rc;
	/* Store the canonical (sorted) form so equal sets compare equal;
	 * what readers would refuse is refused here already. */
	*val = mg_labels_format(&ls);
	mg_labels_clear(&ls);
	if (*val == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	rc = mg_kv_identity_value_decode(*val, strlen(*val), &ls, err);
	mg_labels_clear(&ls);
	if (rc < 0) {
		free(*val);
		*val = NULL;
	}
	return rc;
}

int
mg_kv_writer_put_identity(struct mg_kv_writer *w, uint32_t id, const char *labels,
                          struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc;

	rc = kv_identity_kv(w, id, labels, key, &val, err);
	if (rc < 0)
		return rc;
	rc = mg_kv_writer_put(w, key, val, err);
	free(val);
	return rc;
}

int
mg_kv_writer_queue_identity(struct mg_kv_writer *w, uint32_t id, const char *labels,
                            struct mg_kv_batch_counts *c, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc;

	rc = kv_identity_kv(w, id, labels, key, &val, err);
	if (rc < 0)
		return rc;
	rc = mg_kv_writer_queue_put(w, key, val, c, err);
	free(val);
	return rc;
}

int
mg_kv_writer_del_identity(struct mg_kv_writer *w, uint32_t id, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];

	if (mg_kv_identity_key(key, sizeof(key), w->scope, w->cluster, id) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid identity %u", id);
		return -EINVAL;
	}
	return mg_kv_writer_del(w, key, err);
}

/* Key and JSON value of an ipcache entry; *@p val is free()d by the caller. */
static int
kv_ip_kv(const struct mg_kv_writer *w, const struct mg_kv_ip_pair *p, char *key, char **val,
         struct mg_error *err)
{
	int rc;

	if (mg_kv_ip_key(key, MG_KV_KEY_MAX, w->scope, w->cluster, &p->prefix, p->host_route) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid prefix");
		return -EINVAL;
	}
	*val = mg_kv_ip_pair_encode(p);
	if (*val == NULL) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "invalid ipcache entry: %s", strerror(errno));
		return rc;
	}
	return 0;
}

int
mg_kv_writer_put_ip(struct mg_kv_writer *w, const struct mg_kv_ip_pair *p, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc;

	rc = kv_ip_kv(w, p, key, &val, err);
	if (rc < 0)
		return rc;
	rc = mg_kv_writer_put(w, key, val, err);
	free(val);
	return rc;
}

int
mg_kv_writer_queue_ip(struct mg_kv_writer *w, const struct mg_kv_ip_pair *p,
                      struct mg_kv_batch_counts *c, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc;

	rc = kv_ip_kv(w, p, key, &val, err);
	if (rc < 0)
		return rc;
	rc = mg_kv_writer_queue_put(w, key, val, c, err);
	free(val);
	return rc;
}

int
mg_kv_writer_del_ip(struct mg_kv_writer *w, const struct mg_ipcache_entry *e, bool host_route,
                    struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];

	if (mg_kv_ip_key(key, sizeof(key), w->scope, w->cluster, e, host_route) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid prefix");
		return -EINVAL;
	}
	return mg_kv_writer_del(w, key, err);
}

int
mg_kv_writer_cluster_config(struct mg_kv_writer *w, const struct mg_kv_cluster_config *c,
                            struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc;

	mg_kv_cluster_config_key(key, sizeof(key), w->cluster);
	val = mg_kv_cluster_config_encode(c);
	if (val == NULL) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "invalid cluster config: %s", strerror(errno));
		return rc;
	}
	rc = mg_kv_writer_put(w, key, val, err);
	free(val);
	return rc;
}

int
mg_kv_writer_canaries(struct mg_kv_writer *w, struct mg_error *err)
{
	const char *const prefixes[] = {
	        w->scope == MG_KV_SCOPE_CACHE ? MG_KV_CACHE_IDENTITIES : MG_KV_STATE_IDENTITIES,
	        w->scope == MG_KV_SCOPE_CACHE ? MG_KV_CACHE_IP : MG_KV_STATE_IP};
	char key[MG_KV_KEY_MAX], now[40];
	struct timespec ts;
	struct tm tm;
	size_t i;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		const char *argv[3] = {"SET", key, now};

		mg_kv_synced_key(key, sizeof(key), w->cluster, prefixes[i]);
		rc = kv_cmd_ok(w, "SET", err, 3, argv);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A key of the writer's cluster, in its layout. */
static bool
kv_own_key(const struct mg_kv_writer *w, const char *key)
{
	struct mg_ipcache_entry e;
	uint32_t id;
	bool host;

	return mg_kv_identity_key_parse(key, w->scope, w->cluster, &id) == 0 ||
	       mg_kv_ip_key_parse(key, w->scope, w->cluster, &e, &host) == 0;
}

/*
 * SCAN every key matching @p pattern and call @p fn on each (0 goes on,
 * < 0 stops and is returned). Keys may be deleted meanwhile: SCAN still
 * returns every key that existed for the whole scan at least once.
 */
static int
kv_scan(struct mg_kv_writer *w, const char *pattern,
        int (*fn)(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err),
        void *arg, struct mg_error *err)
{
	char cursor[32] = "0";
	redisReply *r;
	int rc = 0;

	do {
		const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};

		r = kv_cmd(w, "SCAN", &rc, err, 6, argv);
		if (r == NULL)
			return rc;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			mg_error_set(err, NULL, 0, 0, "redis SCAN: unexpected reply");
			return -EPROTO;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements && rc == 0; i++) {
			const redisReply *k = r->element[1]->element[i];

			if (k->type == REDIS_REPLY_STRING)
				rc = fn(w, k->str, arg, err);
		}
		freeReplyObject(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	return rc;
}

struct kv_prune {
	bool (*keep)(const char *key, void *arg);
	void *arg;
	struct mg_kv_batch_counts c;
};

static int
kv_prune_key(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err)
{
	struct kv_prune *p = arg;

	if (!kv_own_key(w, key) || p->keep(key, p->arg))
		return 0;
	/* Sent in batches; the next SCAN flushes them first. */
	return mg_kv_writer_queue_del(w, key, &p->c, err);
}

int
mg_kv_writer_prune(struct mg_kv_writer *w, bool (*keep)(const char *key, void *arg), void *arg,
                   struct mg_error *err)
{
	char patterns[2][MG_KV_KEY_MAX];
	struct kv_prune p = {keep, arg, {0}};
	int rc = 0;

	if (w->scope == MG_KV_SCOPE_CACHE) {
		snprintf(patterns[0], sizeof(patterns[0]), MG_KV_CACHE_IDENTITIES "/%s/id/*",
		         w->cluster);
		snprintf(patterns[1], sizeof(patterns[1]), MG_KV_CACHE_IP "/%s/*", w->cluster);
	} else {
		snprintf(patterns[0], sizeof(patterns[0]), MG_KV_STATE_IDENTITIES "/id/*");
		snprintf(patterns[1], sizeof(patterns[1]),
		         MG_KV_STATE_IP "/" MG_KV_IP_NAMESPACE "/*");
	}
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = kv_scan(w, patterns[i], kv_prune_key, &p, err);
	if (rc == 0)
		rc = mg_kv_writer_flush(w, err);
	return rc < 0 ? rc : (int)p.c.written;
}

/* One cluster config of this Redis against the writer's layout. */
static int
kv_layout_key(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err)
{
	const char *name = key + strlen(MG_KV_CLUSTER_CONFIG "/"), *argv[2] = {"GET", key};
	struct mg_kv_cluster_config cc;
	struct mg_error scratch;
	redisReply *v;
	bool mine;
	int rc = 0;

	(void)arg;
	if (!mg_kv_cluster_name_valid(name))
		return 0;
	mine = strcmp(name, w->cluster) == 0;
	v = kv_cmd(w, "GET", &rc, err, 2, argv);
	if (v == NULL)
		return rc;
	if (v->type == REDIS_REPLY_STRING &&
	    mg_kv_cluster_config_decode(v->str, v->len, &cc, &scratch) == 0) {
		if (mine && cc.cached != (w->scope == MG_KV_SCOPE_CACHE)) {
			mg_error_set(
			        err, NULL, 0, 0,
			        "cluster %s is stored in the %s layout of this Redis (%s); %s, "
			        "or remove the cluster's keys first",
			        name, cc.cached ? "per-cluster" : "single-cluster",
			        cc.cached ? "cilium/cache/.../<cluster>/..." : "cilium/state/...",
			        cc.cached ? "leave out --single-cluster"
			                  : "pass --single-cluster to write it there");
			rc = -EEXIST;
		} else if (!mine && !cc.cached && w->scope == MG_KV_SCOPE_STATE) {
			mg_error_set(err, NULL, 0, 0,
			             "cluster %s holds the single-cluster layout of this Redis "
			             "(cilium/state/..., whose keys do not name their cluster) "
			             "already: one Redis holds one cluster there; write %s without "
			             "--single-cluster (the per-cluster layout "
			             "cilium/cache/.../%s/...)",
			             name, w->cluster, w->cluster);
			rc = -EEXIST;
		}
	}
	freeReplyObject(v);
	return rc;
}

int
mg_kv_writer_check_layout(struct mg_kv_writer *w, struct mg_error *err)
{
	return kv_scan(w, MG_KV_CLUSTER_CONFIG "/*", kv_layout_key, NULL, err);
}
