/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ipcache: IPv4 and IPv6 prefix -> security identity, longest prefix
 * match, read by every worker lcore without locks while the control
 * thread changes it.
 *
 * Shape. Each family keeps one exact-match hash table per prefix length
 * that is in use, plus the list of those lengths; a lookup probes the
 * lengths present from longest to shortest. Host routes (/32, /128) are
 * the common case and cost one probe; the cost of a lookup depends on the
 * number of distinct prefix lengths, never on the number of entries. A
 * coarse per-family filter in front (IPv4: the /16s some prefix overlaps;
 * IPv6: a hash of the /32s) answers most misses (world traffic) with one
 * bit test.
 *
 * Updates (left-right). The data-plane table exists twice. Readers use
 * the copy the `active` pointer names. A writer stages puts and deletes,
 * then mg_ipcache_commit() applies them to the idle copy, publishes it
 * with one atomic pointer store, waits for a grace period (every reader
 * registered with the RCU QSBR variable has passed a quiescent state), and
 * applies the same changes to the other copy, which is now idle. Readers
 * therefore see a batch entirely or not at all, and never a half-written
 * entry; the writer never blocks readers.
 *
 * Split commit. A caller that publishes other state together with the
 * ipcache (the data path: the ipcache view and the compiled policy in one
 * snapshot) splits the commit: mg_ipcache_commit_prepare() does all the
 * work that can fail and returns the updated copy without publishing it;
 * the caller publishes that copy in its own structure; then
 * mg_ipcache_commit_finish() makes it the active copy, waits for the
 * grace period and brings the other copy up to date. mg_ipcache_commit()
 * is prepare + finish.
 *
 * Invariant (what `active` means). mg_ipcache_reader() returns the active
 * copy: the one the last finished commit published. Between prepare and
 * finish the prepared copy may already be read through the caller's own
 * publication while mg_ipcache_reader() still returns the previous copy;
 * both are intact during that time. finish rewrites the previous copy
 * after its grace period, so by the time it is called, every publication
 * of the previous copy the caller made must have been replaced (by the
 * prepared copy), and those readers must report to the same QSBR
 * variable. A caller that publishes views itself therefore never keeps a
 * view across a commit: it holds either the active copy or the prepared
 * one, and every ipcache change while its readers run goes through the
 * split commit (a plain mg_ipcache_commit() would rewrite the copy it
 * still publishes).
 *
 * Threading: one writer (the control thread); any number of readers,
 * each registered with the QSBR variable given at creation, reporting
 * quiescence between bursts. Without a QSBR variable the table must not
 * be read concurrently with a commit (tests, offline tools).
 */
#ifndef MG_IPCACHE_H
#define MG_IPCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_common.h"

struct rte_rcu_qsbr;

/**
 * Wait until every reader registered with @p q (NULL: none) has reported
 * a quiescent state since the call: the grace period after which what was
 * published before it is no longer read. Spins briefly, then yields (the
 * caller may share a core with a reader). The data path waits for its
 * workers, the same readers, with it too. Control path.
 */
void mg_ipcache_grace_period(struct rte_rcu_qsbr *q);
struct mg_ipcache;
/** One immutable-while-read copy of the data-plane table. */
struct mg_ipcache_view;

struct mg_ipcache_params {
	/** Expected number of entries (sizes the hash tables; they grow past it). */
	uint32_t entries_hint;
	/**
	 * Identity returned on a miss: when true, world-ipv4 (9) / world-ipv6
	 * (10); when false, world (2) for both families.
	 */
	bool split_world;
	/** Readers to wait for in commit; NULL = no concurrent readers. */
	struct rte_rcu_qsbr *qsbr;
};

/** The full record of a prefix (control plane). */
struct mg_ipcache_entry {
	uint8_t family;   /**< MG_AF_INET / MG_AF_INET6 (mg_pkt.h numbers: 2 / 10) */
	uint8_t plen;     /**< prefix length, 0-32 or 0-128 */
	uint8_t addr[16]; /**< network order, host bits zero */
	uint32_t identity;
	unsigned cluster_id; /**< cluster the entry came from */
};

/** New empty ipcache. NULL with errno set. */
struct mg_ipcache *mg_ipcache_create(const struct mg_ipcache_params *p);

/** Free @p ipc. No reader may still use it. */
void mg_ipcache_free(struct mg_ipcache *ipc);

/**
 * Stage an insert or replace of a prefix. Host bits of @p e->addr are
 * cleared. Takes effect at the next commit.
 * @return 0, -EINVAL (bad family or length, identity 0), -ENOMEM.
 */
int mg_ipcache_put(struct mg_ipcache *ipc, const struct mg_ipcache_entry *e);

/** Stage the removal of a prefix. 0, or -ENOENT when it is not present (after staged changes). */
int mg_ipcache_del(struct mg_ipcache *ipc, uint8_t family, const uint8_t *addr, uint8_t plen);

/**
 * Publish every staged change as one atomic step for the readers.
 * Blocks the caller for up to one grace period.
 * @return number of changes published, or -ENOMEM (nothing published, the
 *   staged changes are kept), -EBUSY (a split commit is prepared).
 */
int mg_ipcache_commit(struct mg_ipcache *ipc);

/**
 * First half of a commit: reserve memory in both copies and apply every
 * staged change to the idle copy, which is returned unpublished (no
 * reader of mg_ipcache_reader() sees it yet). The caller publishes it
 * to its own readers, then calls mg_ipcache_commit_finish(). Until then
 * put, del, commit and prepare fail with -EBUSY and discard does nothing.
 * With nothing staged, returns the active copy (and finish does nothing).
 * @return the copy to publish, or NULL with errno set (ENOMEM, E2BIG,
 *   EBUSY: already prepared); on failure nothing changed and the staged
 *   changes are kept.
 */
const struct mg_ipcache_view *mg_ipcache_commit_prepare(struct mg_ipcache *ipc);

/**
 * Second half: make the prepared copy the active one (mg_ipcache_reader()
 * returns it from now on), wait for a grace period, apply the batch to
 * the other copy and to the control-plane records (get, walk, count).
 * Cannot fail. Blocks for up to one grace period.
 * @return the number of changes published (0 when nothing was prepared).
 */
int mg_ipcache_commit_finish(struct mg_ipcache *ipc);

/** Forget every staged change (nothing of them is published). */
void mg_ipcache_discard(struct mg_ipcache *ipc);

/** Staged changes not yet committed. */
size_t mg_ipcache_pending(const struct mg_ipcache *ipc);

/**
 * The committed record for exactly this prefix, copied to @p out.
 * @return 0 or -ENOENT.
 */
int mg_ipcache_get(const struct mg_ipcache *ipc, uint8_t family, const uint8_t *addr, uint8_t plen,
                   struct mg_ipcache_entry *out);

/** Committed entries of @p family (0 = both). */
size_t mg_ipcache_count(const struct mg_ipcache *ipc, uint8_t family);

/** Call @p fn for every committed entry; stop and return its value when non-zero. */
int mg_ipcache_walk(const struct mg_ipcache *ipc,
                    int (*fn)(const struct mg_ipcache_entry *, void *), void *arg);

/** Bytes of memory used by both data-plane copies and the control-plane records. */
size_t mg_ipcache_memory(const struct mg_ipcache *ipc);

/**
 * Self-check for tests and debugging (control thread, O(size)): both
 * data-plane copies hold exactly the committed records, the miss-filter
 * counts match the records, and each copy's filter bits are set exactly
 * where the counts are non-zero.
 * @return 0, -EIO (an invariant is broken), -EBUSY (a split commit is
 *   prepared), -ENOMEM.
 */
int mg_ipcache_verify(const struct mg_ipcache *ipc);

/* ---- readers ---- */

/**
 * The active copy (see "Invariant" above): the one the last finished
 * commit published. Hold it only until the reader's next quiescent-state
 * report.
 */
const struct mg_ipcache_view *mg_ipcache_reader(const struct mg_ipcache *ipc);

/** Identity of the longest prefix covering @p addr, or the world identity. */
uint32_t mg_ipcache_lookup(const struct mg_ipcache_view *v, uint8_t family, const uint8_t *addr);

/**
 * The miss filter, the first test of every lookup: false when no prefix
 * of @p v can contain @p addr (the lookup answers world at once); true
 * when one may (IPv4: some prefix overlaps the address's /16; IPv6: some
 * prefix overlaps a /32 whose filter bucket the address's /32 shares, or
 * a prefix shorter than /16 is present). For tests and diagnostics.
 */
bool mg_ipcache_may_match(const struct mg_ipcache_view *v, uint8_t family, const uint8_t *addr);

/**
 * Bulk form: for i < n, ids[i] = lookup(families[i], addrs[i]).
 * Prefetches ahead; use it on bursts.
 */
void mg_ipcache_lookup_bulk(const struct mg_ipcache_view *v, const uint8_t *families,
                            const uint8_t *const *addrs, uint32_t *ids, unsigned n);

/** Parse "10.0.0.0/8", "fd00::1" (host route), into @p e's family/addr/plen. 0 or -EINVAL. */
int mg_ipcache_parse_prefix(const char *s, struct mg_ipcache_entry *e);

/** Format @p e's prefix as "10.0.0.0/8" into @p buf. Returns @p buf. */
char *mg_ipcache_prefix_str(const struct mg_ipcache_entry *e, char *buf, unsigned size);

#endif /* MG_IPCACHE_H */
