/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ipcache's control-plane reads: one prefix's record, the counts, a
 * walk over every committed entry, the memory figure, and the text form
 * of prefixes ("10.0.0.0/8") that the config, the CLI and the listings
 * use. They read the committed records and the active copy's counts only,
 * on the writer's thread, so they never race a commit.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ipcache_priv.h"

/* ---- control-plane reads ---- */

static void
rec_to_entry(const struct rec *r, struct mg_ipcache_entry *out)
{
	memset(out, 0, sizeof(*out));
	out->family = r->k.family;
	out->plen = r->k.plen;
	memcpy(out->addr, r->k.addr, sizeof(out->addr));
	out->identity = r->val;
	out->cluster_id = r->val2;
}

int
mg_ipcache_get(const struct mg_ipcache *ipc, uint8_t family, const uint8_t *addr, uint8_t plen,
               struct mg_ipcache_entry *out)
{
	const struct rec *r;
	struct pkey k;

	if (ipc_pkey_make(&k, family, addr, plen) < 0)
		return mg_errno_set(EINVAL);
	r = ipc_cmap_find(&ipc->records, &k);
	if (r == NULL)
		return mg_errno_set(ENOENT);
	if (out != NULL)
		rec_to_entry(r, out);
	return 0;
}

size_t
mg_ipcache_count(const struct mg_ipcache *ipc, uint8_t family)
{
	const struct mg_ipcache_view *v = ipc->views[ipc->active_idx];
	size_t n4 = 0, n6 = 0;

	if (family == 0)
		return ipc->records.count;
	/* Both copies agree after a commit; the data-plane counts are exact per family. */
	for (unsigned l = 0; l < V4_LENS; l++)
		n4 += v->t4[l].count;
	for (unsigned l = 0; l < V6_LENS; l++)
		n6 += v->t6[l].count;
	return family == AF_INET ? n4 : family == AF_INET6 ? n6 : 0;
}

int
mg_ipcache_walk(const struct mg_ipcache *ipc, int (*fn)(const struct mg_ipcache_entry *, void *),
                void *arg)
{
	struct mg_ipcache_entry e;

	for (size_t i = 0; i < ipc->records.cap; i++) {
		int rc;

		if (ipc->records.r[i].k.family == 0)
			continue;
		rec_to_entry(&ipc->records.r[i], &e);
		rc = fn(&e, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

size_t
mg_ipcache_memory(const struct mg_ipcache *ipc)
{
	return sizeof(*ipc) + ipc_view_memory(ipc->views[0]) + ipc_view_memory(ipc->views[1]) +
	       (ipc->records.cap + ipc->staged.cap) * sizeof(struct rec) +
	       ipc->cap_ops * sizeof(struct op) +
	       ((1u << F4_BITS) + (1u << F6_BITS)) * sizeof(uint32_t);
}

/* ---- text form ---- */

int
mg_ipcache_parse_prefix(const char *s, struct mg_ipcache_entry *e)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	size_t alen;
	unsigned long plen;
	struct pkey k;

	if (s == NULL || e == NULL)
		return mg_errno_set(EINVAL);
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return mg_errno_set(EINVAL);
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(e->addr, 0, sizeof(e->addr));
	if (inet_pton(AF_INET, buf, e->addr) == 1)
		e->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, e->addr) == 1)
		e->family = AF_INET6;
	else
		return mg_errno_set(EINVAL);
	plen = e->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		const char *p = slash + 1;
		char *end;

		/* Decimal digits only: no sign, no spaces, no hex, at most 3 digits. */
		if (*p < '0' || *p > '9' || strlen(p) > 3)
			return mg_errno_set(EINVAL);
		plen = strtoul(p, &end, 10);
		if (*end != '\0' || plen >= ipc_family_lens(e->family))
			return mg_errno_set(EINVAL);
	}
	e->plen = (uint8_t)plen;
	/* Clear the host bits, as every ipcache key is stored. */
	ipc_pkey_make(&k, e->family, e->addr, e->plen);
	memcpy(e->addr, k.addr, sizeof(e->addr));
	return 0;
}

char *
mg_ipcache_prefix_str(const struct mg_ipcache_entry *e, char *buf, unsigned size)
{
	char a[INET6_ADDRSTRLEN];

	if (size == 0)
		return buf;
	if ((e->family != AF_INET && e->family != AF_INET6) ||
	    inet_ntop(e->family, e->addr, a, sizeof(a)) == NULL) {
		snprintf(buf, size, "?");
		return buf;
	}
	snprintf(buf, size, "%s/%u", a, e->plen);
	return buf;
}
