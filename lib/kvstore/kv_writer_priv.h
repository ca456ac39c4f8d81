/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the kvstore writer (mg_kvstore.h, "writer"): the
 * connection with its batch queue and its ring of calls in flight, and the
 * command helpers its files share. mg_kv_writer.c opens and closes the
 * connection and runs commands, mg_kv_writer_batch.c queues changes into
 * FCALL mg_batch calls, mg_kv_writer_ops.c makes single changes and builds
 * the keys and values of identities, ipcache entries, configs and
 * canaries, mg_kv_writer_scan.c prunes, checks the layout and reads values,
 * mg_kv_lease.c holds the lease, sets the fence and writes plain keys. The
 * helpers shared between the files carry the kvw_ prefix.
 */
#ifndef MG_KV_WRITER_PRIV_H
#define MG_KV_WRITER_PRIV_H

#include <stdbool.h>
#include <stddef.h>

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
	bool plain; /* an unlogged call (mg_fset or MSET): every change written */
	struct mg_kv_batch_counts **counts;
};

struct mg_kv_writer {
	redisContext *c;
	/* The batch being built (n_queued of batch) and its strings. */
	unsigned batch, n_queued;
	struct kv_change *queued;
	char *arena;
	size_t arena_len, arena_cap;
	/* FCALL mg_batch / mg_fbatch arguments, built per call (KVW_ARGV(batch)). */
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
	char token[MG_KV_TOKEN_LEN + 1];
	/* The fence (mg_kv_writer_set_fence): when set, every write goes
	 * through the fenced functions with this lease key and token. */
	bool fenced;
	/* Puts go out as plain SETs (mg_fset / MSET), not logged: see
	 * mg_kv_writer_set_unlogged(). */
	bool unlogged;
	char lease[MG_KV_KEY_MAX];
	char lease_token[MG_KV_TOKEN_MAX + 1];
	/* Around every wait for Redis (mg_kv_writer_opts). */
	void (*io_begin)(void *arg);
	void (*io_end)(void *arg);
	void *io_arg;
};

/* Bracket a wait for Redis (the opts' io_begin / io_end, when set). */
static inline void
kvw_io_begin(const struct mg_kv_writer *w)
{
	if (w->io_begin != NULL)
		w->io_begin(w->io_arg);
}

static inline void
kvw_io_end(const struct mg_kv_writer *w)
{
	if (w->io_end != NULL)
		w->io_end(w->io_arg);
}

/* Arguments of one mg_fbatch call of @p n changes (mg_batch takes two fewer). */
#define KVW_ARGV(n) (9 + 3 * (size_t)(n))

/*
 * Turn a failed or error reply into -errno with @p err set; frees @p r.
 * A FENCED refusal is -ESTALE ("lease lost").
 */
int kvw_reply_error(struct mg_kv_writer *w, redisReply *r, const char *what, struct mg_error *err);
/* Run a command (after the queued changes) expecting a non-error reply; returns it or NULL with
 * *@p rc set. */
redisReply *kvw_cmd(struct mg_kv_writer *w, const char *what, int *rc, struct mg_error *err,
                    int argc, const char **argv);
/* As kvw_cmd, with the arguments' lengths (binary-safe); NULL @p argvlen: strlen. */
redisReply *kvw_cmd_len(struct mg_kv_writer *w, const char *what, int *rc, struct mg_error *err,
                        int argc, const char **argv, const size_t *argvlen);
/* As kvw_cmd, the reply dropped: 0 or < 0. */
int kvw_cmd_ok(struct mg_kv_writer *w, const char *what, struct mg_error *err, int argc,
               const char **argv);

#endif /* MG_KV_WRITER_PRIV_H */
