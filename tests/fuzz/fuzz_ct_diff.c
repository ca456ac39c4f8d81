/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Differential libFuzzer target of lib/ct. The input chooses a small table
 * (1-8 flows, short timeouts, tcp_pickup) and a sequence of packets from a
 * small space (three IPv4 or IPv6 addresses, three ports, two zones, TCP,
 * UDP, SCTP, GRE, ICMP and ICMPv6 echo and errors, any TCP flags), each with the verdict the
 * policy would give, time advances, generation bumps and expiry calls. The
 * packets go through lib/ct as lib/datapath does (key, lookup, track, then
 * insert or confirm when the policy allows) and through a reference model
 * written from docs/conntrack.md: key normalisation and direction, the
 * actions of mg_ct_track() with and without an entry, the TCP state machine,
 * non-TCP OPEN/REPLIED, the timeout of every state (live while now <=
 * expires), the generation re-check, and the capacity (an insert fails only
 * when max_entries slots are occupied and the key has no live entry). After
 * every packet the lookup of its key, the stats (created, full, entries
 * between the live count and max_entries) and, now and then, a walk of
 * every live entry (key, state, originator, expiry, generation) must agree.
 * Fragment records are not modelled. A disagreement aborts.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_ct.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define ACK 0x10
#define MAX_MODEL 512
#define HZ 10

struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned
take(struct rd *r, unsigned m)
{
	unsigned v;

	if (r->n == 0)
		return 0;
	v = *r->p++;
	r->n--;
	return v % m;
}

struct mflow {
	struct mg_ct_key key;
	uint64_t expires;
	uint32_t gen;
	uint8_t state, orig_b, fin;
};

struct model {
	unsigned n;
	struct mflow f[MAX_MODEL];
	uint64_t created, full;
};

static struct model m;
static struct mg_ct_params params;

static int
mfind(const struct mg_ct_key *k)
{
	unsigned i;

	for (i = 0; i < m.n; i++)
		if (memcmp(&m.f[i].key, k, sizeof(*k)) == 0)
			return (int)i;
	return -1;
}

/* Forget the flows that died before @p now (dead ones are invisible). */
static void
mexpire(uint64_t now)
{
	unsigned i = 0;

	while (i < m.n) {
		if (m.f[i].expires < now)
			m.f[i] = m.f[--m.n];
		else
			i++;
	}
}

static uint32_t
timeout(uint8_t proto, uint8_t state)
{
	const struct mg_ct_timeouts *t = &params.timeouts;

	if (proto == 6) {
		switch (state) {
		case MG_CT_SYN_SENT:
		case MG_CT_SYN_RECV:
			return t->tcp_syn;
		case MG_CT_ESTABLISHED:
			return t->tcp_established;
		case MG_CT_FIN_WAIT:
		case MG_CT_CLOSING:
			return t->tcp_fin;
		default:
			return t->tcp_close;
		}
	}
	if (proto == 17)
		return t->udp;
	if (proto == 1 || proto == 58)
		return t->icmp;
	return t->other;
}

/* The documented normalisation: endpoint a <= b by (address, port). */
static void
ref_key(const struct mg_flow_key *k, uint8_t zone, struct mg_ct_key *key, uint8_t *dir)
{
	uint16_t sp = k->sport, dp = k->dport;
	int c;

	if (k->proto == 1 || k->proto == 58) {
		bool echo = k->proto == 1 ? (k->icmp_type == 8 || k->icmp_type == 0)
		                          : (k->icmp_type == 128 || k->icmp_type == 129);

		sp = dp = echo ? k->sport : 0;
	}
	memset(key, 0, sizeof(*key));
	c = memcmp(k->src, k->dst, 16);
	if (c < 0 || (c == 0 && sp <= dp)) {
		memcpy(key->a, k->src, 16);
		memcpy(key->b, k->dst, 16);
		key->pa = sp;
		key->pb = dp;
		*dir = 0;
	} else {
		memcpy(key->a, k->dst, 16);
		memcpy(key->b, k->src, 16);
		key->pa = dp;
		key->pb = sp;
		*dir = 1;
	}
	key->family = k->family;
	key->proto = k->proto;
	key->zone = zone;
}

static enum mg_ct_action
ref_track(struct mflow *f, uint8_t dir, uint8_t proto, uint8_t fl, uint8_t type, uint32_t gen,
          uint64_t now)
{
	bool syn = fl & SYN, ack = fl & ACK, fin = fl & FIN, rst = fl & RST;
	/* "SYN without ACK" is a SYN without ACK and without RST throughout */
	bool syn_only = syn && !ack && !rst;
	bool orig;

	if (f == NULL) {
		if (proto == 6) {
			if (rst)
				return MG_CT_INVALID;
			if (syn_only)
				return MG_CT_NEW;
			return params.tcp_pickup ? MG_CT_NEW : MG_CT_INVALID;
		}
		if (proto == 1 || proto == 58)
			return type == (proto == 1 ? 8 : 128) ? MG_CT_NEW : MG_CT_NEW_NOTRACK;
		return MG_CT_NEW;
	}
	orig = dir == f->orig_b;
	if (proto == 6) {
		uint8_t side = orig ? 1 : 2;

		if (orig && syn_only && (f->state == MG_CT_CLOSED || f->state == MG_CT_TIME_WAIT))
			return MG_CT_NEW;
		if (!orig && syn_only && f->state != MG_CT_SYN_SENT)
			return MG_CT_NEW_NOTRACK;
		if (rst) {
			f->state = MG_CT_CLOSED;
		} else {
			switch (f->state) {
			case MG_CT_SYN_SENT:
				if (!orig && syn && ack)
					f->state = MG_CT_SYN_RECV;
				break;
			case MG_CT_SYN_RECV:
			case MG_CT_ESTABLISHED:
				if (fin) {
					f->state = MG_CT_FIN_WAIT;
					f->fin |= side;
				} else if (f->state == MG_CT_SYN_RECV && orig && ack && !syn) {
					f->state = MG_CT_ESTABLISHED;
				}
				break;
			case MG_CT_FIN_WAIT:
				if (fin && !(f->fin & side)) {
					f->state = MG_CT_CLOSING;
					f->fin = 3;
				}
				break;
			case MG_CT_CLOSING:
				if (ack)
					f->state = MG_CT_TIME_WAIT;
				break;
			default:
				break;
			}
		}
	} else if (proto == 1 || proto == 58) {
		uint8_t req = proto == 1 ? 8 : 128, rep = proto == 1 ? 0 : 129;

		if ((!orig && type == req) || (orig && type == rep))
			return MG_CT_NEW_NOTRACK;
		if (!orig)
			f->state = MG_CT_REPLIED;
	} else if (!orig) {
		f->state = MG_CT_REPLIED;
	}
	f->expires = now + (uint64_t)timeout(proto, f->state) * HZ;
	if (!orig)
		return MG_CT_PASS;
	return f->gen != gen ? MG_CT_RECHECK : MG_CT_PASS;
}

static int
walk_one(const struct mg_ct_entry *e, void *arg)
{
	unsigned *seen = arg;
	int i = mfind(&e->key);

	CHECK(i >= 0);
	CHECK(e->state == m.f[i].state);
	CHECK(e->orig_b == m.f[i].orig_b);
	CHECK(e->expires == m.f[i].expires);
	CHECK(e->gen == m.f[i].gen);
	(*seen)++;
	return 0;
}

static void
check_all(struct mg_ct *ct, uint64_t now)
{
	struct mg_ct_stats st;
	unsigned seen = 0;

	mexpire(now);
	CHECK(mg_ct_walk(ct, now, walk_one, &seen) == 0);
	CHECK(seen == m.n);
	mg_ct_stats_get(ct, &st);
	CHECK(st.created == m.created);
	CHECK(st.full == m.full);
	CHECK(st.entries >= m.n && st.entries <= params.max_entries);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t ports[] = {1000, 2000, 80};
	static const uint8_t protos[] = {6, 6, 6, 17, 132, 47, 1, 1};
	static const uint8_t types[] = {8, 0, 3, 11};
	static const uint8_t types6[] = {128, 129, 1, 3};
	static const uint64_t steps[] = {0, 0, 1, 5, 9, 10, 11, 20, 21, 40};
	struct rd r = {data, size};
	struct mg_ct_stats st;
	struct mg_ct *ct;
	uint64_t now = 1;
	uint32_t gen = 1;

	if (size > 4096)
		return 0;
	memset(&params, 0, sizeof(params));
	params.max_entries = 1 + take(&r, 8);
	params.max_frags = 4;
	params.tcp_pickup = take(&r, 2) == 1;
	params.hz = HZ;
	params.timeouts.tcp_syn = 1 + take(&r, 4);
	params.timeouts.tcp_established = 1 + take(&r, 8);
	params.timeouts.tcp_fin = 1 + take(&r, 4);
	params.timeouts.tcp_close = 1 + take(&r, 4);
	params.timeouts.udp = 1 + take(&r, 4);
	params.timeouts.icmp = 1 + take(&r, 4);
	params.timeouts.other = 1 + take(&r, 4);
	params.timeouts.fragment = 1;
	ct = mg_ct_create(&params);
	CHECK(ct != NULL);
	memset(&m, 0, sizeof(m));
	while (r.n > 0) {
		unsigned op = take(&r, 16);
		struct mg_flow_key fk;
		struct mg_ct_key key, rkey;
		struct mg_ct_entry *e;
		enum mg_ct_action act, want;
		uint8_t dir, rdir, zone, flags, type = 0;
		bool allowed;
		int i;

		if (op == 13) {
			now += steps[take(&r, 10)];
			continue;
		}
		if (op == 14) {
			gen++;
			continue;
		}
		if (op == 15) {
			mg_ct_expire(ct, now, 1 + take(&r, 8));
			check_all(ct, now);
			continue;
		}
		memset(&fk, 0, sizeof(fk));
		fk.family = (op & 8) ? MG_AF_INET6 : MG_AF_INET;
		fk.src[0] = fk.dst[0] = (op & 8) ? 0xfd : 10;
		fk.src[(op & 8) ? 15 : 3] = (uint8_t)(1 + take(&r, 3));
		fk.dst[(op & 8) ? 15 : 3] = (uint8_t)(1 + take(&r, 3));
		fk.proto = protos[take(&r, 8)];
		if ((op & 8) && fk.proto == 1)
			fk.proto = 58;
		zone = (uint8_t)take(&r, 2);
		flags = (uint8_t)take(&r, 256);
		allowed = (flags & 0x80) == 0 || (flags & 0x40) == 0;
		flags &= FIN | SYN | RST | ACK;
		if (fk.proto == 6 || fk.proto == 17 || fk.proto == 132) {
			fk.sport = ports[take(&r, 3)];
			fk.dport = ports[take(&r, 3)];
		} else if (fk.proto == 1 || fk.proto == 58) {
			unsigned ti = take(&r, 4);

			type = fk.proto == 1 ? types[ti] : types6[ti];
			fk.icmp_type = type;
			fk.sport = ti < 2 ? (uint16_t)(1 + take(&r, 2)) : 0;
		}
		mg_ct_key_make(&fk, zone, &key, &dir);
		ref_key(&fk, zone, &rkey, &rdir);
		CHECK(memcmp(&key, &rkey, sizeof(key)) == 0);
		CHECK(dir == rdir);

		mexpire(now);
		i = mfind(&key);
		e = mg_ct_lookup(ct, &key, now);
		CHECK((e != NULL) == (i >= 0));
		act = mg_ct_track(ct, e, dir, fk.proto, fk.proto == 6 ? flags : 0, type, gen, now);
		want = ref_track(i >= 0 ? &m.f[i] : NULL, dir, fk.proto, fk.proto == 6 ? flags : 0,
		                 type, gen, now);
		if (act != want) {
			fprintf(stderr,
			        "ct_diff: proto %u flags %#x type %u dir %u state %d orig_b %d: "
			        "action %d, reference %d\n",
			        fk.proto, flags, type, dir, i >= 0 ? m.f[i].state : -1,
			        i >= 0 ? m.f[i].orig_b : -1, (int)act, (int)want);
			abort();
		}
		if (act == MG_CT_RECHECK && allowed) {
			mg_ct_confirm(e, gen);
			m.f[i].gen = gen;
		} else if (act == MG_CT_NEW && allowed) {
			struct mg_ct_entry *ne;

			mg_ct_stats_get(ct, &st);
			ne = mg_ct_insert(ct, &key, dir, fk.proto == 6 ? flags : 0, gen, now);
			if (ne == NULL) {
				/* full: every slot occupied, and no live entry of this key */
				CHECK(i < 0);
				CHECK(st.entries >= params.max_entries);
				m.full++;
			} else {
				struct mflow *f;

				CHECK(i >= 0 || m.n < params.max_entries);
				if (i < 0) {
					CHECK(m.n < MAX_MODEL);
					i = (int)m.n++;
				}
				f = &m.f[i];
				f->key = key;
				f->orig_b = dir;
				f->gen = gen;
				f->fin = 0;
				if (fk.proto == 6)
					f->state = (flags & SYN) && !(flags & ACK)
					                   ? MG_CT_SYN_SENT
					                   : MG_CT_ESTABLISHED;
				else
					f->state = MG_CT_OPEN;
				f->expires = now + (uint64_t)timeout(fk.proto, f->state) * HZ;
				m.created++;
				CHECK(ne->state == f->state && ne->expires == f->expires);
			}
		}
		mg_ct_stats_get(ct, &st);
		CHECK(st.created == m.created && st.full == m.full);
		CHECK(st.entries >= m.n && st.entries <= params.max_entries);
		if (op < 2)
			check_all(ct, now);
	}
	/* one full round frees every dead entry */
	now += 1000 * HZ;
	mg_ct_expire(ct, now, 4096);
	mexpire(now);
	mg_ct_stats_get(ct, &st);
	CHECK(m.n == 0 && st.entries == 0);
	mg_ct_free(ct);
	return 0;
}
