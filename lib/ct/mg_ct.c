/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection tracking table of one worker lcore (design: mg_ct.h and
 * docs/conntrack.md). Two open-addressing hash tables of 64-byte slots,
 * one for flows and one for fragment records, both with linear probing,
 * at most half full (so a probe always ends at a free slot) and deletion
 * by backward shift, so that churn never leaves tombstones that lengthen
 * probe runs. Nothing here allocates, locks or logs after mg_ct_create():
 * every call but create/free is data-path safe. Time is the caller's tick;
 * an entry is live while now <= expires.
 */
#include "mg_ct.h"
#include "mg_hash.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* Allocations at least this big are 2 MB aligned and asked for huge pages. */
#define CT_HUGE (2u << 20)

/* Lookups are done in groups this big: hashes and prefetches of a group
 * are issued before the group's first probe, so their misses overlap. */
#define CT_GROUP 32

/* One open-addressing table. Invariants: count <= max <= nslots / 2; every
 * occupied slot is reachable from its home slot through occupied slots. */
struct ct_table {
	struct mg_ct_entry *slot;
	uint64_t mask;   /* nslots - 1 */
	uint64_t count;  /* occupied slots, dead or alive */
	uint64_t max;    /* most occupied slots allowed */
	uint64_t cursor; /* next slot mg_ct_expire() examines */
	size_t bytes;    /* allocated for slot[] */
};

struct mg_ct {
	struct ct_table flows;
	struct ct_table frags;
	uint64_t tcp_ticks[MG_CT_REPLIED + 1]; /* timeout of each TCP state */
	uint64_t udp_ticks, icmp_ticks, other_ticks, frag_ticks;
	bool tcp_pickup;
	struct mg_ct_stats st; /* entries and frags are filled by mg_ct_stats_get */
};

/* ---- memory ---- */

static void *
ct_alloc(size_t *size)
{
	void *p = NULL;

	/*
	 * A table bigger than the cache should not also miss the TLB on every
	 * lookup: big tables are 2 MB aligned and marked for transparent huge
	 * pages (as the ipcache does). *size is rounded to what was taken.
	 */
	if (*size >= CT_HUGE) {
		*size = (*size + CT_HUGE - 1) & ~((size_t)CT_HUGE - 1);
		if (posix_memalign(&p, CT_HUGE, *size) != 0)
			return NULL;
		madvise(p, *size, MADV_HUGEPAGE);
	} else if (posix_memalign(&p, MG_CACHE_LINE, *size) != 0) {
		return NULL;
	}
	memset(p, 0, *size);
	return p;
}

/* ---- hashing and keys ---- */

_Static_assert(sizeof(struct mg_ct_key) == 40, "key is five 64-bit words");
_Static_assert(sizeof(struct mg_ct_entry) == 64, "entry is one cache line");

/* The key's five words through the shared hash (mg_hash.h): it unrolls to
 * three multiplies, and its low bits pick the slot. */
static inline uint64_t
ct_hash(const struct mg_ct_key *k)
{
	_Static_assert(sizeof(*k) == 40, "the conntrack key is five words");
	return mg_hash_words(k, sizeof(*k) / 8);
}

static inline bool
key_eq(const struct mg_ct_key *x, const struct mg_ct_key *y)
{
	uint64_t a[5], b[5];

	memcpy(a, x, sizeof(a));
	memcpy(b, y, sizeof(b));
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0;
}

static inline uint64_t
home_of(const struct ct_table *t, uint64_t hash)
{
	return mg_probe_home(hash, t->mask);
}

static inline bool
is_dead(const struct mg_ct_entry *e, uint64_t now)
{
	return e->expires < now;
}

void
mg_ct_key_make(const struct mg_flow_key *k, uint8_t zone, struct mg_ct_key *key, uint8_t *dir)
{
	uint16_t sp = k->sport, dp = k->dport;
	int c;

	if (k->proto == MG_IPPROTO_ICMP || k->proto == MG_IPPROTO_ICMPV6) {
		bool echo = k->proto == MG_IPPROTO_ICMP
		                    ? (k->icmp_type == 8 || k->icmp_type == 0)
		                    : (k->icmp_type == 128 || k->icmp_type == 129);

		/* request and reply carry the same identifier: both ends use it */
		sp = dp = echo ? k->sport : 0;
	}
	c = memcmp(k->src, k->dst, sizeof(k->src));
	if (c < 0 || (c == 0 && sp <= dp)) {
		memcpy(key->a, k->src, sizeof(key->a));
		memcpy(key->b, k->dst, sizeof(key->b));
		key->pa = sp;
		key->pb = dp;
		*dir = 0;
	} else {
		memcpy(key->a, k->dst, sizeof(key->a));
		memcpy(key->b, k->src, sizeof(key->b));
		key->pa = dp;
		key->pb = sp;
		*dir = 1;
	}
	key->family = k->family;
	key->proto = k->proto;
	key->zone = zone;
	key->kind = 0;
}

/* Fragments travel one way: the key keeps source and destination as they are. */
static void
frag_key_make(const struct mg_flow_key *k, uint32_t ip_id, uint8_t zone, struct mg_ct_key *key)
{
	memcpy(key->a, k->src, sizeof(key->a));
	memcpy(key->b, k->dst, sizeof(key->b));
	key->pa = (uint16_t)(ip_id >> 16);
	key->pb = (uint16_t)ip_id;
	key->family = k->family;
	key->proto = k->proto;
	key->zone = zone;
	key->kind = 1;
}

/* ---- one table ---- */

static int
tbl_init(struct ct_table *t, uint32_t max)
{
	uint64_t n = mg_probe_capacity(max, 2);

	t->bytes = n * sizeof(struct mg_ct_entry);
	t->slot = ct_alloc(&t->bytes);
	if (t->slot == NULL)
		return -ENOMEM;
	t->mask = n - 1;
	t->max = max;
	t->count = 0;
	t->cursor = 0;
	return 0;
}

static inline struct mg_ct_entry *
tbl_find_from(const struct ct_table *t, uint64_t i, const struct mg_ct_key *key, uint64_t now)
{
	for (;; i = mg_probe_next(i, t->mask)) {
		struct mg_ct_entry *e = &t->slot[i];

		if (e->state == 0)
			return NULL;
		/* keys are unique, so a dead match means no live one */
		if (key_eq(&e->key, key))
			return is_dead(e, now) ? NULL : e;
	}
}

/*
 * The slot an insert of @p key takes: its existing entry, else the first
 * dead entry on its probe run, else the free slot ending the run if the
 * table is under its limit. The run must be walked to its end before a
 * dead slot is reused, or a second copy of the key could appear. Reusing a
 * slot on the run keeps every other entry reachable. @p *replaced is set
 * when a dead entry is overwritten. NULL when the table is full.
 */
static struct mg_ct_entry *
tbl_claim(struct ct_table *t, const struct mg_ct_key *key, uint64_t now, bool *replaced)
{
	struct mg_ct_entry *reuse = NULL;
	uint64_t i = home_of(t, ct_hash(key));

	*replaced = false;
	for (;; i = mg_probe_next(i, t->mask)) {
		struct mg_ct_entry *e = &t->slot[i];

		if (e->state == 0)
			break;
		if (key_eq(&e->key, key)) {
			*replaced = is_dead(e, now);
			return e;
		}
		if (reuse == NULL && is_dead(e, now))
			reuse = e;
	}
	if (reuse != NULL) {
		*replaced = true;
		return reuse;
	}
	if (t->count >= t->max)
		return NULL;
	t->count++;
	return &t->slot[i];
}

/*
 * Free slot @p i by backward shift: walk the run after it and move back
 * every entry whose home is not in (hole, its slot], so that each entry
 * stays reachable from its home without tombstones. Only the first move
 * lands on slot i itself; later ones land further along the run.
 */
static void
tbl_delete(struct ct_table *t, uint64_t i)
{
	uint64_t j = i;

	for (;;) {
		j = mg_probe_next(j, t->mask);
		if (t->slot[j].state == 0)
			break;
		if (mg_probe_may_fill(home_of(t, ct_hash(&t->slot[j].key)), i, j, t->mask)) {
			t->slot[i] = t->slot[j];
			i = j;
		}
	}
	memset(&t->slot[i], 0, sizeof(t->slot[i]));
	t->count--;
}

static unsigned
tbl_expire(struct ct_table *t, uint64_t now, unsigned budget)
{
	uint64_t i = t->cursor;
	unsigned removed = 0;

	if (t->count == 0)
		return 0;
	for (unsigned n = 0; n < budget; n++) {
		struct mg_ct_entry *e = &t->slot[i];

		if (e->state != 0 && is_dead(e, now)) {
			tbl_delete(t, i);
			removed++;
			/* the shift may have moved a later entry into slot i:
			 * examine it again (it costs budget like any slot) */
			continue;
		}
		i = mg_probe_next(i, t->mask);
	}
	t->cursor = i;
	return removed;
}

/* ---- create / free ---- */

void
mg_ct_timeouts_default(struct mg_ct_timeouts *t)
{
	t->tcp_syn = 60;
	t->tcp_established = 21600;
	t->tcp_fin = 30;
	t->tcp_close = 10;
	t->udp = 60;
	t->icmp = 30;
	t->other = 60;
	t->fragment = 10;
}

static int
ticks(uint32_t seconds, uint64_t hz, uint64_t *out)
{
	/* a zero timeout would make entries die at once; a huge one could
	 * overflow now + ticks */
	if (seconds == 0 || seconds > (UINT64_MAX >> 2) / hz)
		return -EINVAL;
	*out = seconds * hz;
	return 0;
}

struct mg_ct *
mg_ct_create(const struct mg_ct_params *p)
{
	const struct mg_ct_timeouts *to;
	struct mg_ct *ct = NULL;
	int rc = -EINVAL;

	if (p == NULL || p->max_entries == 0 || p->max_entries > (1u << 26) || p->max_frags == 0 ||
	    p->max_frags > (1u << 22) || p->hz == 0)
		goto err;
	ct = calloc(1, sizeof(*ct));
	if (ct == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	to = &p->timeouts;
	if (ticks(to->tcp_syn, p->hz, &ct->tcp_ticks[MG_CT_SYN_SENT]) ||
	    ticks(to->tcp_established, p->hz, &ct->tcp_ticks[MG_CT_ESTABLISHED]) ||
	    ticks(to->tcp_fin, p->hz, &ct->tcp_ticks[MG_CT_FIN_WAIT]) ||
	    ticks(to->tcp_close, p->hz, &ct->tcp_ticks[MG_CT_TIME_WAIT]) ||
	    ticks(to->udp, p->hz, &ct->udp_ticks) || ticks(to->icmp, p->hz, &ct->icmp_ticks) ||
	    ticks(to->other, p->hz, &ct->other_ticks) ||
	    ticks(to->fragment, p->hz, &ct->frag_ticks))
		goto err;
	ct->tcp_ticks[MG_CT_SYN_RECV] = ct->tcp_ticks[MG_CT_SYN_SENT];
	ct->tcp_ticks[MG_CT_CLOSING] = ct->tcp_ticks[MG_CT_FIN_WAIT];
	ct->tcp_ticks[MG_CT_CLOSED] = ct->tcp_ticks[MG_CT_TIME_WAIT];
	ct->tcp_pickup = p->tcp_pickup;
	rc = tbl_init(&ct->flows, p->max_entries);
	if (rc == 0)
		rc = tbl_init(&ct->frags, p->max_frags);
	if (rc)
		goto err;
	return ct;
err:
	mg_ct_free(ct);
	errno = -rc;
	return NULL;
}

void
mg_ct_free(struct mg_ct *ct)
{
	if (ct == NULL)
		return;
	free(ct->flows.slot);
	free(ct->frags.slot);
	free(ct);
}

const char *
mg_ct_state_name(unsigned s)
{
	static const char *const names[] = {
	        [MG_CT_SYN_SENT] = "syn_sent",       [MG_CT_SYN_RECV] = "syn_recv",
	        [MG_CT_ESTABLISHED] = "established", [MG_CT_FIN_WAIT] = "fin_wait",
	        [MG_CT_CLOSING] = "closing",         [MG_CT_TIME_WAIT] = "time_wait",
	        [MG_CT_CLOSED] = "closed",           [MG_CT_OPEN] = "open",
	        [MG_CT_REPLIED] = "replied",
	};

	if (s < MG_ARRAY_SIZE(names) && names[s] != NULL)
		return names[s];
	return "unknown";
}

/* ---- lookups ---- */

struct mg_ct_entry *
mg_ct_lookup(struct mg_ct *ct, const struct mg_ct_key *key, uint64_t now)
{
	return tbl_find_from(&ct->flows, home_of(&ct->flows, ct_hash(key)), key, now);
}

void
mg_ct_lookup_bulk(struct mg_ct *ct, const struct mg_ct_key *keys, unsigned n, uint64_t now,
                  struct mg_ct_entry **out)
{
	const struct ct_table *t = &ct->flows;
	uint64_t home[CT_GROUP];

	for (unsigned base = 0; base < n; base += CT_GROUP) {
		unsigned m = n - base < CT_GROUP ? n - base : CT_GROUP;

		/* first every hash and prefetch of the group, then the probes:
		 * the slot misses overlap instead of adding up. Write intent,
		 * as mg_ct_track() updates the entry next. */
		for (unsigned i = 0; i < m; i++) {
			home[i] = home_of(t, ct_hash(&keys[base + i]));
			__builtin_prefetch(&t->slot[home[i]], 1, 3);
		}
		for (unsigned i = 0; i < m; i++)
			out[base + i] = tbl_find_from(t, home[i], &keys[base + i], now);
	}
}

/* ---- state machine ---- */

static inline bool
syn_only(uint8_t flags)
{
	return (flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
}

static inline uint64_t
other_ticks(const struct mg_ct *ct, uint8_t proto)
{
	switch (proto) {
	case MG_IPPROTO_UDP:
		return ct->udp_ticks;
	case MG_IPPROTO_ICMP:
	case MG_IPPROTO_ICMPV6:
		return ct->icmp_ticks;
	default:
		return ct->other_ticks;
	}
}

static inline bool
is_echo_request(uint8_t icmp_type)
{
	return icmp_type == 8 || icmp_type == 128;
}

static enum mg_ct_action
track_unknown(const struct mg_ct *ct, uint8_t proto, uint8_t tcp_flags, uint8_t icmp_type)
{
	switch (proto) {
	case MG_IPPROTO_TCP:
		if (syn_only(tcp_flags))
			return MG_CT_NEW;
		/* a RST never opens anything; other mid-stream packets only
		 * when picking up connections older than the table */
		if ((tcp_flags & TCP_RST) || !ct->tcp_pickup)
			return MG_CT_INVALID;
		return MG_CT_NEW;
	case MG_IPPROTO_ICMP:
		return icmp_type == 8 ? MG_CT_NEW : MG_CT_NEW_NOTRACK;
	case MG_IPPROTO_ICMPV6:
		return icmp_type == 128 ? MG_CT_NEW : MG_CT_NEW_NOTRACK;
	default:
		return MG_CT_NEW;
	}
}

/* TCP transitions; @p side is the fin bit of the sender (1 originator, 2 responder). */
static inline void
tcp_advance(struct mg_ct_entry *e, bool orig, uint8_t flags)
{
	uint8_t side = orig ? 1 : 2;

	if (flags & TCP_RST) {
		e->state = MG_CT_CLOSED;
		return;
	}
	switch (e->state) {
	case MG_CT_SYN_SENT:
		if (!orig && (flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
			e->state = MG_CT_SYN_RECV;
		break;
	case MG_CT_SYN_RECV:
		if (flags & TCP_FIN) {
			e->fin |= side;
			e->state = MG_CT_FIN_WAIT;
		} else if (orig && (flags & (TCP_SYN | TCP_ACK)) == TCP_ACK) {
			e->state = MG_CT_ESTABLISHED;
		}
		break;
	case MG_CT_ESTABLISHED:
		if (flags & TCP_FIN) {
			e->fin |= side;
			e->state = MG_CT_FIN_WAIT;
		}
		break;
	case MG_CT_FIN_WAIT:
		if ((flags & TCP_FIN) && !(e->fin & side)) {
			e->fin |= side;
			e->state = MG_CT_CLOSING;
		}
		break;
	case MG_CT_CLOSING:
		/* simplified: any ACK after both FINs ends the connection */
		if (flags & TCP_ACK)
			e->state = MG_CT_TIME_WAIT;
		break;
	default: /* TIME_WAIT and CLOSED stay until they expire or a new SYN */
		break;
	}
}

enum mg_ct_action
mg_ct_track(struct mg_ct *ct, struct mg_ct_entry *e, uint8_t dir, uint8_t proto, uint8_t tcp_flags,
            uint8_t icmp_type, uint32_t gen, uint64_t now)
{
	bool orig;

	if (e == NULL)
		return track_unknown(ct, proto, tcp_flags, icmp_type);
	orig = dir == e->orig_b;
	/* the entry's own protocol drives it: it is what the key says */
	if (e->key.proto == MG_IPPROTO_TCP) {
		if (orig && syn_only(tcp_flags) &&
		    (e->state == MG_CT_CLOSED || e->state == MG_CT_TIME_WAIT))
			return MG_CT_NEW; /* a new connection on an old port pair */
		/* The responder opening a connection of its own on the same port
		 * pair is no reply (a simultaneous open answers a SYN_SENT): the
		 * policy judges it, and the entry is left as it is. */
		if (!orig && syn_only(tcp_flags) && e->state != MG_CT_SYN_SENT)
			return MG_CT_NEW_NOTRACK;
		tcp_advance(e, orig, tcp_flags);
		e->expires = now + ct->tcp_ticks[e->state];
	} else {
		/* An echo flow carries requests one way and replies the other: a
		 * request from the responder (or a reply from the requester) is
		 * not part of it, and is judged by policy. */
		if ((e->key.proto == MG_IPPROTO_ICMP || e->key.proto == MG_IPPROTO_ICMPV6) &&
		    is_echo_request(icmp_type) != orig)
			return MG_CT_NEW_NOTRACK;
		if (!orig)
			e->state = MG_CT_REPLIED;
		e->expires = now + other_ticks(ct, e->key.proto);
	}
	if (!orig)
		return MG_CT_PASS;
	return e->gen != gen ? MG_CT_RECHECK : MG_CT_PASS;
}

struct mg_ct_entry *
mg_ct_insert(struct mg_ct *ct, const struct mg_ct_key *key, uint8_t dir, uint8_t tcp_flags,
             uint32_t gen, uint64_t now)
{
	bool replaced;
	struct mg_ct_entry *e = tbl_claim(&ct->flows, key, now, &replaced);

	if (MG_UNLIKELY(e == NULL)) {
		ct->st.full++;
		return NULL;
	}
	if (replaced)
		ct->st.expired++;
	memset(e, 0, sizeof(*e));
	e->key = *key;
	e->gen = gen;
	e->orig_b = dir ? 1 : 0;
	if (key->proto == MG_IPPROTO_TCP) {
		/* without a SYN only tcp_pickup lets the caller get here */
		e->state = syn_only(tcp_flags) ? MG_CT_SYN_SENT : MG_CT_ESTABLISHED;
		e->expires = now + ct->tcp_ticks[e->state];
	} else {
		e->state = MG_CT_OPEN;
		e->expires = now + other_ticks(ct, key->proto);
	}
	ct->st.created++;
	return e;
}

/* ---- fragments ---- */

int
mg_ct_frag_add(struct mg_ct *ct, const struct mg_flow_key *k, uint32_t ip_id, uint8_t zone,
               uint64_t now)
{
	struct mg_ct_key key;
	struct mg_ct_entry *e;
	bool replaced;

	frag_key_make(k, ip_id, zone, &key);
	e = tbl_claim(&ct->frags, &key, now, &replaced);
	if (MG_UNLIKELY(e == NULL)) {
		ct->st.frag_full++;
		return -ENOSPC;
	}
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->state = MG_CT_OPEN;
	e->expires = now + ct->frag_ticks;
	return 0;
}

bool
mg_ct_frag_find(struct mg_ct *ct, const struct mg_flow_key *k, uint32_t ip_id, uint8_t zone,
                uint64_t now)
{
	const struct ct_table *t = &ct->frags;
	struct mg_ct_key key;

	frag_key_make(k, ip_id, zone, &key);
	return tbl_find_from(t, home_of(t, ct_hash(&key)), &key, now) != NULL;
}

/* ---- housekeeping ---- */

unsigned
mg_ct_expire(struct mg_ct *ct, uint64_t now, unsigned budget)
{
	unsigned flows = tbl_expire(&ct->flows, now, budget);

	ct->st.expired += flows;
	return flows + tbl_expire(&ct->frags, now, budget);
}

void
mg_ct_flush(struct mg_ct *ct)
{
	memset(ct->flows.slot, 0, ct->flows.bytes);
	memset(ct->frags.slot, 0, ct->frags.bytes);
	ct->flows.count = ct->frags.count = 0;
	ct->flows.cursor = ct->frags.cursor = 0;
}

void
mg_ct_stats_get(const struct mg_ct *ct, struct mg_ct_stats *s)
{
	*s = ct->st;
	s->entries = ct->flows.count;
	s->frags = ct->frags.count;
}

size_t
mg_ct_memory(const struct mg_ct *ct)
{
	return sizeof(*ct) + ct->flows.bytes + ct->frags.bytes;
}

int
mg_ct_walk(const struct mg_ct *ct, uint64_t now, int (*fn)(const struct mg_ct_entry *, void *),
           void *arg)
{
	const struct ct_table *t = &ct->flows;

	for (uint64_t i = 0; i <= t->mask; i++) {
		const struct mg_ct_entry *e = &t->slot[i];
		int rc;

		if (e->state == 0 || is_dead(e, now))
			continue;
		rc = fn(e, arg);
		if (rc)
			return rc;
	}
	return 0;
}
