/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvstore writer: one synchronous hiredis connection to a cluster's
 * Redis, used by meshgatectl's kv commands and the bench. This file opens
 * it (URL, connect and command timeouts, AUTH as an ACL user or with the
 * legacy password, SELECT, FUNCTION LOAD of the Function library), closes
 * it, and runs commands with errors turned into errno values and messages.
 * Every key change then goes through FCALL mg_put / mg_del / mg_batch
 * (mg_kv_writer_ops.c, mg_kv_writer_batch.c), so that a change and its log
 * entry happen atomically and unchanged values write and log nothing; the
 * values are built and checked by the data model's codecs, so the writer
 * never stores something the readers would reject.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_writer_priv.h"

/* Turn a failed or error reply into -errno with @p err set; frees @p r. */
int
kvw_reply_error(struct mg_kv_writer *w, redisReply *r, const char *what, struct mg_error *err)
{
	int rc;

	if (r == NULL) {
		rc = w->c->err == REDIS_ERR_IO && errno == EAGAIN ? -ETIMEDOUT : -EIO;
		mg_error_set(err, NULL, 0, 0, "redis %s: %s", what,
		             rc == -ETIMEDOUT ? "timed out" : w->c->errstr);
		return rc;
	}
	rc = -EPROTO;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "FENCED", 6) == 0) {
		rc = -ESTALE;
		mg_error_set(
		        err, NULL, 0, 0,
		        "lease %s lost (it lapsed or another writer holds it): redis %s refused",
		        w->lease, what);
	} else if (r->type == REDIS_REPLY_ERROR) {
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
redisReply *
kvw_cmd_len(struct mg_kv_writer *w, const char *what, int *rc, struct mg_error *err, int argc,
            const char **argv, const size_t *argvlen)
{
	redisReply *r;

	/* Queued changes go first: the caller's call comes after them. */
	if (w->n_queued != 0 || w->n_inflight != 0) {
		*rc = mg_kv_writer_flush(w, err);
		if (*rc < 0)
			return NULL;
	}
	kvw_io_begin(w);
	r = redisCommandArgv(w->c, argc, argv, argvlen);
	kvw_io_end(w);

	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		*rc = kvw_reply_error(w, r, what, err);
		return NULL;
	}
	return r;
}

redisReply *
kvw_cmd(struct mg_kv_writer *w, const char *what, int *rc, struct mg_error *err, int argc,
        const char **argv)
{
	return kvw_cmd_len(w, what, rc, err, argc, argv, NULL);
}

int
kvw_cmd_ok(struct mg_kv_writer *w, const char *what, struct mg_error *err, int argc,
           const char **argv)
{
	int rc = 0;
	redisReply *r = kvw_cmd(w, what, &rc, err, argc, argv);

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
	rc = kvw_cmd_ok(w, "FUNCTION LOAD", err, 4, argv);
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
	w->io_begin = o->io_begin;
	w->io_end = o->io_end;
	w->io_arg = o->io_arg;
	if (w->batch > MG_KV_BATCH_MAX) {
		mg_error_set(err, NULL, 0, 0, "batch %u: at most %u changes per call", w->batch,
		             MG_KV_BATCH_MAX);
		rc = -EINVAL;
		goto err;
	}
	w->queued = calloc(w->batch, sizeof(*w->queued));
	w->argv = calloc(KVW_ARGV(w->batch), sizeof(*w->argv));
	w->argvlen = calloc(KVW_ARGV(w->batch), sizeof(*w->argvlen));
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
	if (mg_kv_token_new(w->token, sizeof(w->token)) < 0) {
		rc = -EIO;
		mg_error_set(err, NULL, 0, 0, "getrandom: %s", strerror(errno));
		goto err;
	}

	ms = o->timeout_ms ? o->timeout_ms : MG_KV_WRITER_TIMEOUT_MS_DEFAULT;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	kvw_io_begin(w);
	if (u.path != NULL)
		w->c = redisConnectUnixWithTimeout(u.path, tv);
	else
		w->c = redisConnectWithTimeout(u.host, u.port, tv);
	kvw_io_end(w);
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

		rc = kvw_cmd_ok(w, "AUTH", err, user ? 3 : 2, av);
		if (rc < 0) {
			rc = -EACCES;
			goto err;
		}
	}
	if (u.db != 0) {
		const char *av[2] = {"SELECT", dbs};

		snprintf(dbs, sizeof(dbs), "%u", u.db);
		rc = kvw_cmd_ok(w, "SELECT", err, 2, av);
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

int
mg_kv_writer_exists(struct mg_kv_writer *w, const char *key, struct mg_error *err)
{
	const char *argv[] = {"EXISTS", key};
	int rc = 0;
	redisReply *r = kvw_cmd(w, "EXISTS", &rc, err, 2, argv);
	if (r == NULL)
		return rc;
	rc = r->type == REDIS_REPLY_INTEGER ? (r->integer > 0) : -EPROTO;
	if (rc < 0)
		mg_error_set(err, NULL, 0, 0, "EXISTS %s: unexpected reply", key);
	freeReplyObject(r);
	return rc;
}

int
mg_kv_writer_set_cluster(struct mg_kv_writer *w, const char *cluster, struct mg_error *err)
{
	if (cluster == NULL || !mg_kv_cluster_name_valid(cluster)) {
		mg_error_set(err, NULL, 0, 0, "invalid cluster name '%s'", cluster ? cluster : "");
		return -EINVAL;
	}
	if (strcmp(cluster, w->cluster) == 0)
		return 0;
	int rc = mg_kv_writer_flush(w, err);
	if (rc < 0)
		return rc;
	if (mg_kv_token_new(w->token, sizeof(w->token)) < 0) {
		mg_error_set(err, NULL, 0, 0, "getrandom: %s", strerror(errno));
		return -EIO;
	}
	w->unlogged = false; /* unlogged puts are one cluster's */
	snprintf(w->cluster, sizeof(w->cluster), "%s", cluster);
	mg_kv_log_key(w->log, sizeof(w->log), cluster);
	mg_kv_epoch_key(w->epoch, sizeof(w->epoch), cluster);
	return 0;
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
