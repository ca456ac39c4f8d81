/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/ct on a fake clock (hz = 1000, so `now` is in
 * milliseconds): key normalisation, every TCP transition and the timeout of
 * every state (alive at the last tick, dead one tick later), UDP/ICMP/other
 * flows, the generation re-check, table limits and reclaiming, incremental
 * expiry, randomized comparisons of the table against a naive reference
 * (bulk vs single lookups, backward-shift deletion under heavy collisions),
 * fragments, flush, walk, memory and parameter checks, and a throughput
 * figure that is printed, not asserted.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_ct.h"
#include "mg_test.h"

#define HZ 1000
#define SYN 0x02
#define FIN 0x01
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

/* default timeouts in ticks of the fake clock */
#define T_SYN (60 * HZ)
#define T_EST (21600ull * HZ)
#define T_FIN (30 * HZ)
#define T_CLOSE (10 * HZ)
#define T_UDP (60 * HZ)
#define T_ICMP (30 * HZ)
#define T_OTHER (60 * HZ)
#define T_FRAG (10 * HZ)

static struct mg_ct_params
params(uint32_t max, uint32_t frags, bool pickup)
{
	struct mg_ct_params p;

	memset(&p, 0, sizeof(p));
	p.max_entries = max;
	p.max_frags = frags;
	p.tcp_pickup = pickup;
	p.hz = HZ;
	mg_ct_timeouts_default(&p.timeouts);
	return p;
}

static struct mg_ct *
mk(uint32_t max, uint32_t frags, bool pickup)
{
	struct mg_ct_params p = params(max, frags, pickup);
	struct mg_ct *ct = mg_ct_create(&p);

	if (ct == NULL) {
		perror("mg_ct_create");
		abort();
	}
	return ct;
}

static struct mg_flow_key
fk(const char *src, uint16_t sp, const char *dst, uint16_t dp, uint8_t proto)
{
	struct mg_flow_key k;

	memset(&k, 0, sizeof(k));
	if (inet_pton(AF_INET, src, k.src) == 1 && inet_pton(AF_INET, dst, k.dst) == 1) {
		k.family = MG_AF_INET;
	} else if (inet_pton(AF_INET6, src, k.src) == 1 && inet_pton(AF_INET6, dst, k.dst) == 1) {
		k.family = MG_AF_INET6;
	} else {
		fprintf(stderr, "bad test address %s %s\n", src, dst);
		abort();
	}
	k.proto = proto;
	k.sport = sp;
	k.dport = dp;
	return k;
}

/* ICMP key as the parser fills it: the identifier in sport. */
static struct mg_flow_key
icmp(const char *src, const char *dst, uint8_t proto, uint8_t type, uint16_t id)
{
	struct mg_flow_key k = fk(src, id, dst, 0, proto);

	k.icmp_type = type;
	return k;
}

static struct mg_flow_key
rev(const struct mg_flow_key *k)
{
	struct mg_flow_key r = *k;

	memcpy(r.src, k->dst, 16);
	memcpy(r.dst, k->src, 16);
	r.sport = k->dport;
	r.dport = k->sport;
	return r;
}

static struct mg_ct_entry *
find(struct mg_ct *ct, const struct mg_flow_key *k, uint8_t zone, uint64_t now)
{
	struct mg_ct_key key;
	struct mg_ct_entry *e;
	uint8_t dir;

	mg_ct_key_make(k, zone, &key, &dir);
	mg_ct_lookup_bulk(ct, &key, 1, now, &e);
	CU_ASSERT_PTR_EQUAL(e, mg_ct_lookup(ct, &key, now));
	return e;
}

/*
 * One packet through the table as the data path does it, with a policy
 * that allows everything: NEW inserts (failures are asserted), RECHECK
 * confirms. Returns the action mg_ct_track() gave.
 */
static enum mg_ct_action
pkt(struct mg_ct *ct, const struct mg_flow_key *k, uint8_t flags, uint32_t gen, uint64_t now)
{
	struct mg_ct_key key;
	struct mg_ct_entry *e;
	enum mg_ct_action a;
	uint8_t dir;

	mg_ct_key_make(k, 0, &key, &dir);
	e = mg_ct_lookup(ct, &key, now);
	a = mg_ct_track(ct, e, dir, k->proto, flags, k->icmp_type, gen, now);
	if (a == MG_CT_NEW) {
		CU_ASSERT_PTR_NOT_NULL(mg_ct_insert(ct, &key, dir, flags, gen, now));
	} else if (a == MG_CT_RECHECK) {
		mg_ct_confirm(e, gen);
	}
	return a;
}

static unsigned
state_of(struct mg_ct *ct, const struct mg_flow_key *k, uint64_t now)
{
	struct mg_ct_entry *e = find(ct, k, 0, now);

	return e == NULL ? 0 : e->state;
}

/* The flow's entry lives at @p last and is gone one tick later. */
static void
check_dies_at(struct mg_ct *ct, const struct mg_flow_key *k, uint64_t last)
{
	CU_ASSERT_PTR_NOT_NULL(find(ct, k, 0, last));
	CU_ASSERT_PTR_NULL(find(ct, k, 0, last + 1));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A distinct IPv4 or IPv6 flow for index i (UDP unless said otherwise). */
static struct mg_flow_key
nth_flow(uint32_t i, uint8_t proto)
{
	struct mg_flow_key k;

	memset(&k, 0, sizeof(k));
	if (i & 1) {
		k.family = MG_AF_INET6;
		k.src[0] = 0xfd;
		k.dst[0] = 0xfd;
		memcpy(&k.src[12], &i, 4);
		k.dst[15] = 1;
	} else {
		k.family = MG_AF_INET;
		k.src[0] = 10;
		k.src[1] = (uint8_t)(i >> 16);
		k.src[2] = (uint8_t)(i >> 8);
		k.src[3] = (uint8_t)i;
		k.dst[0] = 192;
		k.dst[3] = 1;
	}
	k.proto = proto;
	k.sport = (uint16_t)(1024 + (i >> 9));
	k.dport = 53;
	return k;
}

/* ---- keys ---- */

static void
test_key_v4_both_directions(void)
{
	struct mg_flow_key f = fk("10.0.0.2", 40000, "10.0.0.1", 80, MG_IPPROTO_TCP), r = rev(&f);
	struct mg_ct_key kf, kr;
	uint8_t df, dr;

	mg_ct_key_make(&f, 3, &kf, &df);
	mg_ct_key_make(&r, 3, &kr, &dr);
	CU_ASSERT(memcmp(&kf, &kr, sizeof(kf)) == 0);
	CU_ASSERT_EQUAL(df, 1); /* 10.0.0.2 is endpoint b */
	CU_ASSERT_EQUAL(dr, 0);
	CU_ASSERT(memcmp(kf.a, r.src, 16) == 0);
	CU_ASSERT_EQUAL(kf.pa, 80);
	CU_ASSERT_EQUAL(kf.pb, 40000);
	CU_ASSERT_EQUAL(kf.family, MG_AF_INET);
	CU_ASSERT_EQUAL(kf.proto, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL(kf.zone, 3);
	CU_ASSERT_EQUAL(kf.kind, 0);
}

static void
test_key_v6_both_directions(void)
{
	struct mg_flow_key f = fk("fd00::1", 5000, "fd00::2", 53, MG_IPPROTO_UDP), r = rev(&f);
	struct mg_ct_key kf, kr;
	uint8_t df, dr;

	mg_ct_key_make(&f, 0, &kf, &df);
	mg_ct_key_make(&r, 0, &kr, &dr);
	CU_ASSERT(memcmp(&kf, &kr, sizeof(kf)) == 0);
	CU_ASSERT_EQUAL(df, 0);
	CU_ASSERT_EQUAL(dr, 1);
	CU_ASSERT_EQUAL(kf.pa, 5000);
	CU_ASSERT_EQUAL(kf.pb, 53);
	CU_ASSERT_EQUAL(kf.family, MG_AF_INET6);
}

static void
test_key_same_address_orders_by_port(void)
{
	struct mg_flow_key f = fk("10.0.0.1", 9000, "10.0.0.1", 80, MG_IPPROTO_TCP), r = rev(&f);
	struct mg_ct_key kf, kr;
	uint8_t df, dr;

	mg_ct_key_make(&f, 0, &kf, &df);
	mg_ct_key_make(&r, 0, &kr, &dr);
	CU_ASSERT(memcmp(&kf, &kr, sizeof(kf)) == 0);
	CU_ASSERT_EQUAL(kf.pa, 80);
	CU_ASSERT_EQUAL(df, 1);
	CU_ASSERT_EQUAL(dr, 0);
}

static void
test_key_icmp_echo_meets(void)
{
	struct mg_flow_key q4 = icmp("10.0.0.9", "10.0.0.1", MG_IPPROTO_ICMP, 8, 77);
	struct mg_flow_key p4 = icmp("10.0.0.1", "10.0.0.9", MG_IPPROTO_ICMP, 0, 77);
	struct mg_flow_key q6 = icmp("fd00::1", "fd00::9", MG_IPPROTO_ICMPV6, 128, 5);
	struct mg_flow_key p6 = icmp("fd00::9", "fd00::1", MG_IPPROTO_ICMPV6, 129, 5);
	struct mg_flow_key other = icmp("10.0.0.9", "10.0.0.1", MG_IPPROTO_ICMP, 8, 78);
	struct mg_ct_key a, b;
	uint8_t da, db;

	mg_ct_key_make(&q4, 0, &a, &da);
	mg_ct_key_make(&p4, 0, &b, &db);
	CU_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
	CU_ASSERT_EQUAL(a.pa, 77);
	CU_ASSERT_EQUAL(a.pb, 77);
	CU_ASSERT_NOT_EQUAL(da, db);
	mg_ct_key_make(&q6, 0, &a, &da);
	mg_ct_key_make(&p6, 0, &b, &db);
	CU_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
	CU_ASSERT_EQUAL(a.pa, 5);
	CU_ASSERT_EQUAL(a.pb, 5);
	CU_ASSERT_NOT_EQUAL(da, db);
	/* another identifier is another flow */
	mg_ct_key_make(&q4, 0, &a, &da);
	mg_ct_key_make(&other, 0, &b, &db);
	CU_ASSERT(memcmp(&a, &b, sizeof(a)) != 0);
}

static void
test_key_icmp_non_echo_ports_zero(void)
{
	struct mg_flow_key k = icmp("10.0.0.9", "10.0.0.1", MG_IPPROTO_ICMP, 3, 1234);
	struct mg_flow_key k6 = icmp("fd00::9", "fd00::1", MG_IPPROTO_ICMPV6, 1, 99);
	struct mg_ct_key key;
	uint8_t dir;

	k.dport = 55;
	mg_ct_key_make(&k, 0, &key, &dir);
	CU_ASSERT_EQUAL(key.pa, 0);
	CU_ASSERT_EQUAL(key.pb, 0);
	mg_ct_key_make(&k6, 0, &key, &dir);
	CU_ASSERT_EQUAL(key.pa, 0);
	CU_ASSERT_EQUAL(key.pb, 0);
}

static void
test_key_zones_separate_flows(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk("10.0.0.1", 1000, "10.0.0.2", 53, MG_IPPROTO_UDP);
	struct mg_ct_key k0, k1;
	struct mg_ct_entry *e0, *e1;
	uint8_t d0, d1;

	mg_ct_key_make(&f, 0, &k0, &d0);
	mg_ct_key_make(&f, 1, &k1, &d1);
	CU_ASSERT(memcmp(&k0, &k1, sizeof(k0)) != 0);
	e0 = mg_ct_insert(ct, &k0, d0, 0, 1, 0);
	CU_ASSERT_PTR_NOT_NULL(find(ct, &f, 0, 0));
	CU_ASSERT_PTR_NULL(find(ct, &f, 1, 0));
	e1 = mg_ct_insert(ct, &k1, d1, 0, 1, 0);
	CU_ASSERT_PTR_NOT_NULL(e0);
	CU_ASSERT_PTR_NOT_NULL(e1);
	CU_ASSERT_PTR_NOT_EQUAL(e0, e1);
	CU_ASSERT_PTR_EQUAL(find(ct, &f, 0, 0), e0);
	CU_ASSERT_PTR_EQUAL(find(ct, &f, 1, 0), e1);
	mg_ct_free(ct);
}

/* ---- TCP ---- */

static const char *C = "10.0.0.1", *S = "10.0.0.2";

static void
handshake(struct mg_ct *ct, const struct mg_flow_key *f, uint64_t t)
{
	struct mg_flow_key r = rev(f);

	CU_ASSERT_EQUAL(pkt(ct, f, SYN, 1, t), MG_CT_NEW);
	CU_ASSERT_EQUAL(state_of(ct, f, t), MG_CT_SYN_SENT);
	CU_ASSERT_EQUAL(pkt(ct, &r, SYN | ACK, 1, t), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, f, t), MG_CT_SYN_RECV);
	CU_ASSERT_EQUAL(pkt(ct, f, ACK, 1, t), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, f, t), MG_CT_ESTABLISHED);
}

static void
test_tcp_handshake(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	/* opened from the higher address too: orig_b must follow */
	struct mg_flow_key f1 = fk(C, 40000, S, 80, MG_IPPROTO_TCP);
	struct mg_flow_key f2 = fk(S, 40000, C, 80, MG_IPPROTO_TCP);
	struct mg_ct_stats st;

	handshake(ct, &f1, 100);
	handshake(ct, &f2, 100);
	CU_ASSERT_EQUAL(find(ct, &f1, 0, 100)->orig_b, 0);
	CU_ASSERT_EQUAL(find(ct, &f2, 0, 100)->orig_b, 1);
	CU_ASSERT_EQUAL(find(ct, &f1, 0, 100)->gen, 1);
	/* data both ways keeps it established */
	CU_ASSERT_EQUAL(pkt(ct, &f1, PSH | ACK, 1, 200), MG_CT_PASS);
	struct mg_flow_key r1 = rev(&f1);
	CU_ASSERT_EQUAL(pkt(ct, &r1, ACK, 1, 200), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f1, 200), MG_CT_ESTABLISHED);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 2);
	CU_ASSERT_EQUAL(st.created, 2);
	mg_ct_free(ct);
}

static void
test_tcp_syn_sent_timeout(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP);

	CU_ASSERT_EQUAL(pkt(ct, &f, SYN, 1, 1000), MG_CT_NEW);
	/* a retransmitted SYN refreshes the timeout and stays SYN_SENT */
	CU_ASSERT_EQUAL(pkt(ct, &f, SYN, 1, 2000), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 2000), MG_CT_SYN_SENT);
	check_dies_at(ct, &f, 2000 + T_SYN);
	mg_ct_free(ct);
}

static void
test_tcp_syn_recv_timeout(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP), r = rev(&f);

	pkt(ct, &f, SYN, 1, 0);
	/* a SYN+ACK from the originator's side does not count */
	CU_ASSERT_EQUAL(pkt(ct, &f, SYN | ACK, 1, 5), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 5), MG_CT_SYN_SENT);
	CU_ASSERT_EQUAL(pkt(ct, &r, SYN | ACK, 1, 10), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 10), MG_CT_SYN_RECV);
	/* an ACK from the responder does not establish */
	CU_ASSERT_EQUAL(pkt(ct, &r, ACK, 1, 20), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 20), MG_CT_SYN_RECV);
	check_dies_at(ct, &f, 20 + T_SYN);
	mg_ct_free(ct);
}

static void
test_tcp_established_timeout(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP), r = rev(&f);

	handshake(ct, &f, 0);
	CU_ASSERT_EQUAL(pkt(ct, &r, ACK, 1, 500), MG_CT_PASS);
	check_dies_at(ct, &f, 500 + T_EST);
	mg_ct_free(ct);
}

static void
test_tcp_fin_from_originator_first(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP), r = rev(&f);

	handshake(ct, &f, 0);
	CU_ASSERT_EQUAL(pkt(ct, &f, FIN | ACK, 1, 10), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 10), MG_CT_FIN_WAIT);
	CU_ASSERT_EQUAL(find(ct, &f, 0, 10)->fin, 1);
	/* the same side's FIN again changes nothing */
	pkt(ct, &f, FIN | ACK, 1, 11);
	CU_ASSERT_EQUAL(state_of(ct, &f, 11), MG_CT_FIN_WAIT);
	CU_ASSERT_EQUAL(pkt(ct, &r, FIN | ACK, 1, 20), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 20), MG_CT_CLOSING);
	CU_ASSERT_EQUAL(find(ct, &f, 0, 20)->fin, 3);
	CU_ASSERT_EQUAL(pkt(ct, &f, ACK, 1, 30), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 30), MG_CT_TIME_WAIT);
	check_dies_at(ct, &f, 30 + T_CLOSE);
	mg_ct_free(ct);
}

static void
test_tcp_fin_from_responder_first(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(S, 40000, C, 80, MG_IPPROTO_TCP), r = rev(&f);

	handshake(ct, &f, 0);
	CU_ASSERT_EQUAL(pkt(ct, &r, FIN | ACK, 1, 10), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 10), MG_CT_FIN_WAIT);
	CU_ASSERT_EQUAL(find(ct, &f, 0, 10)->fin, 2);
	/* an ACK in FIN_WAIT is just data */
	pkt(ct, &f, ACK, 1, 15);
	CU_ASSERT_EQUAL(state_of(ct, &f, 15), MG_CT_FIN_WAIT);
	CU_ASSERT_EQUAL(pkt(ct, &f, FIN | ACK, 1, 20), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 20), MG_CT_CLOSING);
	CU_ASSERT_EQUAL(find(ct, &f, 0, 20)->fin, 3);
	CU_ASSERT_EQUAL(pkt(ct, &r, ACK, 1, 30), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 30), MG_CT_TIME_WAIT);
	mg_ct_free(ct);
}

static void
test_tcp_fin_wait_timeout(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP);

	handshake(ct, &f, 0);
	pkt(ct, &f, FIN | ACK, 1, 100);
	CU_ASSERT_EQUAL(state_of(ct, &f, 100), MG_CT_FIN_WAIT);
	check_dies_at(ct, &f, 100 + T_FIN);
	mg_ct_free(ct);
}

static void
test_tcp_closing_timeout(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP), r = rev(&f);

	handshake(ct, &f, 0);
	pkt(ct, &f, FIN, 1, 100);
	pkt(ct, &r, FIN, 1, 200);
	CU_ASSERT_EQUAL(state_of(ct, &f, 200), MG_CT_CLOSING);
	check_dies_at(ct, &f, 200 + T_FIN);
	mg_ct_free(ct);
}

static void
test_tcp_fin_in_syn_recv(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP), r = rev(&f);

	pkt(ct, &f, SYN, 1, 0);
	pkt(ct, &r, SYN | ACK, 1, 1);
	CU_ASSERT_EQUAL(pkt(ct, &f, FIN | ACK, 1, 2), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 2), MG_CT_FIN_WAIT);
	CU_ASSERT_EQUAL(find(ct, &f, 0, 2)->fin, 1);
	mg_ct_free(ct);
}

static void
test_tcp_time_wait_timeout(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 40000, S, 80, MG_IPPROTO_TCP), r = rev(&f);

	handshake(ct, &f, 0);
	pkt(ct, &f, FIN | ACK, 1, 1);
	pkt(ct, &r, FIN | ACK, 1, 2);
	pkt(ct, &f, ACK, 1, 3);
	CU_ASSERT_EQUAL(state_of(ct, &f, 3), MG_CT_TIME_WAIT);
	/* a late ACK in TIME_WAIT passes and refreshes it */
	CU_ASSERT_EQUAL(pkt(ct, &r, ACK, 1, 1000), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 1000), MG_CT_TIME_WAIT);
	check_dies_at(ct, &f, 1000 + T_CLOSE);
	mg_ct_free(ct);
}

static void
test_tcp_rst_from_either_side(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f1 = fk(C, 1, S, 80, MG_IPPROTO_TCP), r1 = rev(&f1);
	struct mg_flow_key f2 = fk(C, 2, S, 80, MG_IPPROTO_TCP), r2 = rev(&f2);

	handshake(ct, &f1, 0);
	handshake(ct, &f2, 0);
	CU_ASSERT_EQUAL(pkt(ct, &f1, RST, 1, 50), MG_CT_PASS);
	CU_ASSERT_EQUAL(pkt(ct, &r2, RST | ACK, 1, 60), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f1, 50), MG_CT_CLOSED);
	CU_ASSERT_EQUAL(state_of(ct, &f2, 60), MG_CT_CLOSED);
	/* stragglers of the other side still pass while the entry lives */
	CU_ASSERT_EQUAL(pkt(ct, &r1, ACK, 1, 55), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f1, 55), MG_CT_CLOSED);
	check_dies_at(ct, &f1, 55 + T_CLOSE);
	check_dies_at(ct, &f2, 60 + T_CLOSE);
	mg_ct_free(ct);
}

static void
test_tcp_rst_in_every_state(void)
{
	static const uint8_t upto[] = {MG_CT_SYN_SENT, MG_CT_SYN_RECV, MG_CT_ESTABLISHED,
	                               MG_CT_FIN_WAIT, MG_CT_CLOSING,  MG_CT_TIME_WAIT};
	struct mg_ct *ct = mk(64, 8, false);

	for (unsigned i = 0; i < MG_ARRAY_SIZE(upto); i++) {
		struct mg_flow_key f = fk(C, (uint16_t)(100 + i), S, 80, MG_IPPROTO_TCP);
		struct mg_flow_key r = rev(&f);
		/* the packets that walk a flow from SYN_SENT to TIME_WAIT */
		const struct mg_flow_key *who[] = {&f, &r, &f, &f, &r, &f};
		const uint8_t flags[] = {SYN, SYN | ACK, ACK, FIN, FIN, ACK};

		for (unsigned s = 0; s <= i; s++)
			pkt(ct, who[s], flags[s], 1, 0);
		CU_ASSERT_EQUAL(state_of(ct, &f, 0), upto[i]);
		pkt(ct, (i & 1) ? &r : &f, RST, 1, 0);
		CU_ASSERT_EQUAL(state_of(ct, &f, 0), MG_CT_CLOSED);
	}
	mg_ct_free(ct);
}

static void
test_tcp_syn_readmits_closed_and_time_wait(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f1 = fk(C, 1, S, 80, MG_IPPROTO_TCP), r1 = rev(&f1);
	struct mg_flow_key f2 = fk(C, 2, S, 80, MG_IPPROTO_TCP), r2 = rev(&f2);
	struct mg_ct_entry *before;
	struct mg_ct_stats st;

	handshake(ct, &f1, 0);
	pkt(ct, &f1, RST, 1, 1);
	before = find(ct, &f1, 0, 1);
	/* a SYN from the responder on CLOSED is no re-admission: the policy
	 * judges it and the entry stays */
	CU_ASSERT_EQUAL(pkt(ct, &r1, SYN, 1, 2), MG_CT_NEW_NOTRACK);
	CU_ASSERT_EQUAL(pkt(ct, &f1, SYN, 1, 3), MG_CT_NEW);
	CU_ASSERT_PTR_EQUAL(find(ct, &f1, 0, 3), before); /* replaced in place */
	CU_ASSERT_EQUAL(state_of(ct, &f1, 3), MG_CT_SYN_SENT);
	CU_ASSERT_EQUAL(find(ct, &f1, 0, 3)->fin, 0);

	handshake(ct, &f2, 0);
	pkt(ct, &f2, FIN, 1, 1);
	pkt(ct, &r2, FIN, 1, 1);
	pkt(ct, &f2, ACK, 1, 1);
	CU_ASSERT_EQUAL(state_of(ct, &f2, 1), MG_CT_TIME_WAIT);
	CU_ASSERT_EQUAL(pkt(ct, &f2, SYN, 7, 5), MG_CT_NEW);
	CU_ASSERT_EQUAL(state_of(ct, &f2, 5), MG_CT_SYN_SENT);
	CU_ASSERT_EQUAL(find(ct, &f2, 0, 5)->gen, 7);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 2);
	CU_ASSERT_EQUAL(st.created, 4);
	mg_ct_free(ct);
}

static void
test_tcp_syn_on_live_connection_is_not_new(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 1, S, 80, MG_IPPROTO_TCP);

	handshake(ct, &f, 0);
	CU_ASSERT_EQUAL(pkt(ct, &f, SYN, 1, 1), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 1), MG_CT_ESTABLISHED);
	pkt(ct, &f, FIN, 1, 2);
	CU_ASSERT_EQUAL(pkt(ct, &f, SYN, 1, 3), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 3), MG_CT_FIN_WAIT);
	mg_ct_free(ct);
}

static void
test_tcp_unknown_non_syn_invalid(void)
{
	static const uint8_t bad[] = {ACK, PSH | ACK, FIN, FIN | ACK, RST, RST | ACK, SYN | ACK, 0};
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(C, 1, S, 80, MG_IPPROTO_TCP);
	struct mg_ct_stats st;

	for (unsigned i = 0; i < MG_ARRAY_SIZE(bad); i++)
		CU_ASSERT_EQUAL(mg_ct_track(ct, NULL, 0, MG_IPPROTO_TCP, bad[i], 0, 1, 0),
		                MG_CT_INVALID);
	CU_ASSERT_EQUAL(mg_ct_track(ct, NULL, 1, MG_IPPROTO_TCP, SYN, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &f, ACK, 1, 0), MG_CT_INVALID);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 0);
	mg_ct_free(ct);
}

static void
test_tcp_pickup(void)
{
	struct mg_ct *ct = mk(64, 8, true);
	struct mg_flow_key f = fk(S, 443, C, 5555, MG_IPPROTO_TCP), r = rev(&f);
	struct mg_ct_entry *e;

	CU_ASSERT_EQUAL(mg_ct_track(ct, NULL, 0, MG_IPPROTO_TCP, RST, 0, 1, 0), MG_CT_INVALID);
	CU_ASSERT_EQUAL(mg_ct_track(ct, NULL, 0, MG_IPPROTO_TCP, RST | ACK, 0, 1, 0),
	                MG_CT_INVALID);
	CU_ASSERT_EQUAL(mg_ct_track(ct, NULL, 0, MG_IPPROTO_TCP, SYN | ACK, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &f, PSH | ACK, 1, 0), MG_CT_NEW);
	e = find(ct, &f, 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->state, MG_CT_ESTABLISHED);
	CU_ASSERT_EQUAL(e->orig_b, 1); /* 10.0.0.2 is b and sent the first packet */
	CU_ASSERT_EQUAL(pkt(ct, &r, ACK, 1, 1), MG_CT_PASS);
	check_dies_at(ct, &f, 1 + T_EST);
	mg_ct_free(ct);
}

/* ---- UDP, ICMP, other ---- */

static void
test_udp_open_replied_refresh(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk("fd00::5", 5353, "fd00::1", 53, MG_IPPROTO_UDP), r = rev(&f);

	CU_ASSERT_EQUAL(pkt(ct, &f, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(state_of(ct, &f, 0), MG_CT_OPEN);
	/* traffic the original way refreshes, stays OPEN */
	CU_ASSERT_EQUAL(pkt(ct, &f, 0, 1, 1000), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 1000), MG_CT_OPEN);
	CU_ASSERT_PTR_NOT_NULL(find(ct, &f, 0, 1000 + T_UDP));
	CU_ASSERT_EQUAL(pkt(ct, &r, 0, 1, 2000), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 2000), MG_CT_REPLIED);
	/* the reply refreshed it too */
	CU_ASSERT_PTR_NOT_NULL(find(ct, &f, 0, 2000 + T_UDP));
	CU_ASSERT_EQUAL(pkt(ct, &f, 0, 1, 3000), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &f, 3000), MG_CT_REPLIED);
	check_dies_at(ct, &f, 3000 + T_UDP);
	/* once dead, the next packet is a new flow again */
	CU_ASSERT_EQUAL(pkt(ct, &f, 0, 1, 3001 + T_UDP), MG_CT_NEW);
	mg_ct_free(ct);
}

static void
test_icmp_echo(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key q = icmp("10.0.0.9", "10.0.0.1", MG_IPPROTO_ICMP, 8, 77);
	struct mg_flow_key p = icmp("10.0.0.1", "10.0.0.9", MG_IPPROTO_ICMP, 0, 77);
	struct mg_flow_key q6 = icmp("fd00::9", "fd00::1", MG_IPPROTO_ICMPV6, 128, 3);
	struct mg_flow_key p6 = icmp("fd00::1", "fd00::9", MG_IPPROTO_ICMPV6, 129, 3);
	struct mg_flow_key unreach = icmp("10.0.0.1", "10.0.0.9", MG_IPPROTO_ICMP, 3, 0);
	struct mg_ct_stats st;

	/* a reply without request and non-echo types: policy, no entry */
	CU_ASSERT_EQUAL(pkt(ct, &p, 0, 1, 0), MG_CT_NEW_NOTRACK);
	CU_ASSERT_EQUAL(pkt(ct, &p6, 0, 1, 0), MG_CT_NEW_NOTRACK);
	CU_ASSERT_EQUAL(pkt(ct, &unreach, 0, 1, 0), MG_CT_NEW_NOTRACK);
	CU_ASSERT_EQUAL(mg_ct_track(ct, NULL, 0, MG_IPPROTO_ICMPV6, 1, 1, 1, 0), MG_CT_NEW_NOTRACK);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 0);

	CU_ASSERT_EQUAL(pkt(ct, &q, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &q6, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(state_of(ct, &q, 0), MG_CT_OPEN);
	CU_ASSERT_EQUAL(pkt(ct, &p, 0, 1, 100), MG_CT_PASS);
	CU_ASSERT_EQUAL(pkt(ct, &p6, 0, 1, 100), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &q, 100), MG_CT_REPLIED);
	CU_ASSERT_EQUAL(state_of(ct, &q6, 100), MG_CT_REPLIED);
	check_dies_at(ct, &q, 100 + T_ICMP);
	check_dies_at(ct, &q6, 100 + T_ICMP);
	mg_ct_free(ct);
}

static void
test_other_protocol_timeout(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key sctp = fk(C, 9, S, 38412, MG_IPPROTO_SCTP), r = rev(&sctp);
	struct mg_flow_key gre = fk(C, 0, S, 0, 47);

	CU_ASSERT_EQUAL(pkt(ct, &sctp, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &gre, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &r, 0, 1, 10), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &sctp, 10), MG_CT_REPLIED);
	check_dies_at(ct, &sctp, 10 + T_OTHER);
	check_dies_at(ct, &gre, T_OTHER);
	mg_ct_free(ct);
}

static void
test_custom_timeouts_and_hz(void)
{
	struct mg_ct_params p = params(16, 4, false);
	struct mg_flow_key u = fk(C, 1, S, 2, MG_IPPROTO_UDP);
	struct mg_ct *ct;

	p.hz = 1000000; /* microseconds */
	p.timeouts.udp = 2;
	ct = mg_ct_create(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ct);
	pkt(ct, &u, 0, 1, 10);
	check_dies_at(ct, &u, 10 + 2000000);
	mg_ct_free(ct);
}

/* ---- generation ---- */

static void
test_generation_recheck(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key f = fk(S, 1, C, 80, MG_IPPROTO_TCP), r = rev(&f);
	struct mg_flow_key u = fk(C, 1, S, 53, MG_IPPROTO_UDP), ur = rev(&u);
	struct mg_ct_entry *e;
	struct mg_ct_key key;
	uint8_t dir;

	handshake(ct, &f, 0);
	e = find(ct, &f, 0, 0);
	mg_ct_key_make(&f, 0, &key, &dir);
	CU_ASSERT_EQUAL(mg_ct_track(ct, e, dir, MG_IPPROTO_TCP, ACK, 0, 1, 1), MG_CT_PASS);
	CU_ASSERT_EQUAL(mg_ct_track(ct, e, dir, MG_IPPROTO_TCP, ACK, 0, 2, 1), MG_CT_RECHECK);
	/* not confirmed (denied, or not yet answered): asked again */
	CU_ASSERT_EQUAL(mg_ct_track(ct, e, dir, MG_IPPROTO_TCP, ACK, 0, 2, 2), MG_CT_RECHECK);
	/* replies pass whatever the generation */
	CU_ASSERT_EQUAL(mg_ct_track(ct, e, !dir, MG_IPPROTO_TCP, ACK, 0, 3, 3), MG_CT_PASS);
	mg_ct_confirm(e, 2);
	CU_ASSERT_EQUAL(e->gen, 2);
	CU_ASSERT_EQUAL(mg_ct_track(ct, e, dir, MG_IPPROTO_TCP, ACK, 0, 2, 4), MG_CT_PASS);
	CU_ASSERT_EQUAL(pkt(ct, &r, ACK, 9, 5), MG_CT_PASS);
	CU_ASSERT_EQUAL(e->gen, 2);

	CU_ASSERT_EQUAL(pkt(ct, &u, 0, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &ur, 0, 2, 1), MG_CT_PASS);
	CU_ASSERT_EQUAL(pkt(ct, &u, 0, 2, 2), MG_CT_RECHECK);
	CU_ASSERT_EQUAL(pkt(ct, &u, 0, 2, 3), MG_CT_PASS); /* pkt() confirmed */
	/* a caller that ends a denied flow marks it dead: invisible at once */
	find(ct, &u, 0, 3)->expires = 0;
	CU_ASSERT_PTR_NULL(find(ct, &u, 0, 3));
	CU_ASSERT_EQUAL(mg_ct_expire(ct, 3, 1000), 1);
	CU_ASSERT_EQUAL(pkt(ct, &ur, 0, 2, 4), MG_CT_NEW);
	mg_ct_free(ct);
}

/* ---- table limits, reclaiming, expiry ---- */

static void
test_table_full(void)
{
	struct mg_ct *ct = mk(8, 4, false);
	struct mg_ct_key key;
	struct mg_ct_stats st;
	struct mg_flow_key f;
	uint8_t dir;

	for (uint32_t i = 0; i < 8; i++) {
		f = nth_flow(i, MG_IPPROTO_UDP);
		CU_ASSERT_EQUAL(pkt(ct, &f, 0, 1, 0), MG_CT_NEW);
	}
	f = nth_flow(100, MG_IPPROTO_UDP);
	mg_ct_key_make(&f, 0, &key, &dir);
	CU_ASSERT_PTR_NULL(mg_ct_insert(ct, &key, dir, 0, 1, 10));
	CU_ASSERT_PTR_NULL(mg_ct_insert(ct, &key, dir, 0, 1, 10));
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.full, 2);
	CU_ASSERT_EQUAL(st.entries, 8);
	CU_ASSERT_EQUAL(st.created, 8);
	/* an existing flow can still be replaced when full */
	f = nth_flow(3, MG_IPPROTO_UDP);
	mg_ct_key_make(&f, 0, &key, &dir);
	CU_ASSERT_PTR_NOT_NULL(mg_ct_insert(ct, &key, dir, 0, 1, 10));
	/* after expiry there is room again */
	CU_ASSERT_EQUAL(mg_ct_expire(ct, 20 + T_UDP, 1000), 8);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 0);
	CU_ASSERT_EQUAL(st.expired, 8);
	for (uint32_t i = 100; i < 108; i++) {
		f = nth_flow(i, MG_IPPROTO_UDP);
		mg_ct_key_make(&f, 0, &key, &dir);
		CU_ASSERT_PTR_NOT_NULL(mg_ct_insert(ct, &key, dir, 0, 1, 20 + T_UDP));
	}
	mg_ct_free(ct);
}

static int
count_fn(const struct mg_ct_entry *e, void *arg)
{
	(void)e;
	++*(unsigned *)arg;
	return 0;
}

static void
test_expired_invisible_and_reclaimed(void)
{
	struct mg_ct *ct = mk(1, 1, false); /* two slots, one entry */
	struct mg_flow_key f = nth_flow(0, MG_IPPROTO_UDP);
	struct mg_ct_entry *a, *b = NULL;
	struct mg_ct_key key;
	struct mg_ct_stats st;
	unsigned n = 0, full = 0;
	uint8_t dir;

	mg_ct_key_make(&f, 0, &key, &dir);
	a = mg_ct_insert(ct, &key, dir, 0, 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NULL(find(ct, &f, 0, T_UDP + 1));
	CU_ASSERT_EQUAL(mg_ct_walk(ct, T_UDP + 1, count_fn, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 1); /* dead, not yet expired */
	/* the same key takes its own dead slot back */
	CU_ASSERT_PTR_EQUAL(mg_ct_insert(ct, &key, dir, 0, 1, T_UDP + 1), a);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.expired, 1);
	CU_ASSERT_EQUAL(st.entries, 1);
	/* another key whose probe run passes the dead slot reuses it; one whose
	 * run ends at the free slot finds the table full */
	for (uint32_t i = 1; i < 64 && b == NULL; i++) {
		f = nth_flow(i, MG_IPPROTO_UDP);
		mg_ct_key_make(&f, 0, &key, &dir);
		b = mg_ct_insert(ct, &key, dir, 0, 1, 2 * T_UDP + 2);
		full += b == NULL;
	}
	CU_ASSERT_PTR_EQUAL(b, a);
	CU_ASSERT_PTR_EQUAL(find(ct, &f, 0, 2 * T_UDP + 2), a);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 1);
	CU_ASSERT_EQUAL(st.expired, 2);
	CU_ASSERT_EQUAL(st.full, full);
	mg_ct_free(ct);
}

static void
test_expire_budget_respected(void)
{
	/* 8 entries in 16 slots, all dead: one call of budget 1 examines one
	 * slot, so it removes at most one; a whole round (16 slots plus one
	 * re-examination per removal) removes them all */
	struct mg_ct *ct = mk(8, 1, false);
	struct mg_ct_stats st;
	unsigned calls = 0, total = 0;

	for (uint32_t i = 0; i < 8; i++) {
		struct mg_flow_key f = nth_flow(i, MG_IPPROTO_UDP);

		pkt(ct, &f, 0, 1, 0);
	}
	CU_ASSERT_EQUAL(mg_ct_expire(ct, T_UDP, 1000), 0); /* alive at the last tick */
	while (total < 8 && calls < 100) {
		unsigned r = mg_ct_expire(ct, T_UDP + 1, 1);

		CU_ASSERT(r <= 1);
		total += r;
		calls++;
	}
	CU_ASSERT_EQUAL(total, 8);
	CU_ASSERT(calls <= 16 + 8);
	CU_ASSERT(calls >= 8);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 0);
	CU_ASSERT_EQUAL(st.expired, 8);
	CU_ASSERT_EQUAL(mg_ct_expire(ct, T_UDP + 1, 0), 0);
	mg_ct_free(ct);
}

static void
test_expire_incremental_large(void)
{
	/* 1000 dead and 1000 live flows in 4096 slots, budget 64 a call */
	struct mg_ct *ct = mk(2000, 1, true);
	struct mg_ct_stats st;
	unsigned calls = 0, total = 0;

	for (uint32_t i = 0; i < 2000; i++) {
		struct mg_flow_key f = nth_flow(i, i < 1000 ? MG_IPPROTO_UDP : MG_IPPROTO_TCP);

		CU_ASSERT_EQUAL(pkt(ct, &f, ACK, 1, 0), MG_CT_NEW);
	}
	while (calls < 1000) {
		unsigned r = mg_ct_expire(ct, T_UDP + 1, 64);

		CU_ASSERT(r <= 64);
		total += r;
		calls++;
		if (total == 1000)
			break;
	}
	CU_ASSERT_EQUAL(total, 1000);
	CU_ASSERT(calls <= (4096 + 1000 + 63) / 64);
	CU_ASSERT(calls > 1);
	for (uint32_t i = 0; i < 2000; i++) {
		struct mg_flow_key f = nth_flow(i, i < 1000 ? MG_IPPROTO_UDP : MG_IPPROTO_TCP);

		/* backward shifts kept every live flow reachable */
		CU_ASSERT((find(ct, &f, 0, T_UDP + 1) != NULL) == (i >= 1000));
	}
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 1000);
	mg_ct_free(ct);
}

/* Reference model of the flows table: per key, its expiry (0 = absent). */
struct ref {
	struct mg_ct_key key;
	uint8_t dir;
	uint64_t expires;
	bool present;
};

static unsigned
ref_live(const struct ref *r, unsigned n, uint64_t now)
{
	unsigned live = 0;

	for (unsigned i = 0; i < n; i++)
		live += r[i].present && r[i].expires >= now;
	return live;
}

static void
test_bulk_equals_single_random(void)
{
	enum {
		N = 10000
	};
	static const uint8_t protos[] = {MG_IPPROTO_UDP, MG_IPPROTO_ICMP, 47, MG_IPPROTO_TCP};
	static const uint64_t tmo[] = {T_UDP, T_ICMP, T_OTHER, T_EST};
	struct mg_ct *ct = mk(N, 1, true);
	struct ref *ref = calloc(N, sizeof(*ref));
	struct mg_ct_key keys[256];
	struct mg_ct_entry *out[256];
	unsigned idx[256], mismatches = 0;
	uint64_t now = 0;
	struct mg_ct_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
	rng_state = 12345;
	for (unsigned i = 0; i < N; i++) {
		unsigned p = (unsigned)(rnd() % 4);
		struct mg_flow_key f = nth_flow(i, protos[p]);

		if (protos[p] == MG_IPPROTO_ICMP) {
			f.icmp_type = 8;
			f.dport = 0;
		}
		mg_ct_key_make(&f, (uint8_t)(rnd() % 3), &ref[i].key, &ref[i].dir);
		ref[i].expires = tmo[p]; /* inserted at time offset, set below */
	}
	for (unsigned round = 0; round < 40; round++) {
		/* insert or refresh a random third */
		for (unsigned i = 0; i < N; i++) {
			if (rnd() % 3)
				continue;
			struct mg_ct_entry *e =
			        mg_ct_insert(ct, &ref[i].key, ref[i].dir, ACK, 1, now);
			unsigned p = ref[i].key.proto == MG_IPPROTO_UDP    ? 0
			             : ref[i].key.proto == MG_IPPROTO_ICMP ? 1
			             : ref[i].key.proto == 47              ? 2
			                                                   : 3;

			CU_ASSERT_PTR_NOT_NULL_FATAL(e);
			ref[i].present = true;
			ref[i].expires = now + tmo[p];
		}
		now += (rnd() % 50000);
		/* some incremental expiry: deletions by backward shift */
		mg_ct_expire(ct, now, (unsigned)(rnd() % 4096));
		/* compare a few bursts, present and absent keys mixed */
		for (unsigned b = 0; b < 8; b++) {
			unsigned n = 1 + (unsigned)(rnd() % 256);

			for (unsigned i = 0; i < n; i++) {
				idx[i] = (unsigned)(rnd() % N);
				keys[i] = ref[idx[i]].key;
			}
			mg_ct_lookup_bulk(ct, keys, n, now, out);
			for (unsigned i = 0; i < n; i++) {
				const struct ref *r = &ref[idx[i]];
				bool live = r->present && r->expires >= now;

				if (out[i] != mg_ct_lookup(ct, &keys[i], now) ||
				    (out[i] != NULL) != live ||
				    (out[i] != NULL && memcmp(&out[i]->key, &r->key, 40) != 0))
					mismatches++;
			}
		}
		mg_ct_stats_get(ct, &st);
		CU_ASSERT(st.entries >= ref_live(ref, N, now));
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	free(ref);
	mg_ct_free(ct);
}

static int
walk_check(const struct mg_ct_entry *e, void *arg)
{
	struct ref *r = arg;

	/* the walk only shows entries the reference has alive; mark each seen */
	for (unsigned i = 0; i < 300; i++)
		if (memcmp(&r[i].key, &e->key, 40) == 0)
			return r[i].present ? 0 : 1;
	return 2;
}

static void
test_backward_shift_collisions_random(void)
{
	/* 64 entries in 128 slots, always near full: long probe runs, and
	 * every expire and reclaim reshuffles them */
	enum {
		POOL = 300,
		MAX = 64
	};
	struct mg_ct *ct = mk(MAX, 1, false);
	struct ref ref[POOL];
	uint64_t now = 0;
	unsigned bad = 0, nulls = 0;
	struct mg_ct_stats st;

	memset(ref, 0, sizeof(ref));
	rng_state = 777;
	for (unsigned i = 0; i < POOL; i++) {
		struct mg_flow_key f = nth_flow(i, MG_IPPROTO_UDP);

		mg_ct_key_make(&f, 0, &ref[i].key, &ref[i].dir);
	}
	for (unsigned step = 0; step < 20000; step++) {
		unsigned op = (unsigned)(rnd() % 10);
		unsigned i = (unsigned)(rnd() % POOL);

		if (op < 6) {
			struct mg_ct_entry *e =
			        mg_ct_insert(ct, &ref[i].key, ref[i].dir, 0, 1, now);

			if (e != NULL) {
				/* udp timeout, shortened per entry to mix expiry times */
				e->expires = now + 1 + rnd() % 200;
				ref[i].present = true;
				ref[i].expires = e->expires;
			} else {
				nulls++;
				mg_ct_stats_get(ct, &st);
				CU_ASSERT_EQUAL(st.entries, MAX);
			}
		} else if (op < 8) {
			now += rnd() % 20;
		} else {
			mg_ct_expire(ct, now, 1 + (unsigned)(rnd() % 40));
		}
		if (step % 16 == 0) {
			for (unsigned j = 0; j < POOL; j++) {
				struct mg_ct_entry *e = mg_ct_lookup(ct, &ref[j].key, now);
				bool live = ref[j].present && ref[j].expires >= now;

				if ((e != NULL) != live ||
				    (e != NULL && e->expires != ref[j].expires))
					bad++;
			}
			unsigned n = 0;

			CU_ASSERT_EQUAL(mg_ct_walk(ct, now, count_fn, &n), 0);
			CU_ASSERT_EQUAL(n, ref_live(ref, POOL, now));
			CU_ASSERT_EQUAL(mg_ct_walk(ct, now, walk_check, ref), 0);
			mg_ct_stats_get(ct, &st);
			CU_ASSERT(st.entries <= MAX);
			CU_ASSERT(st.entries >= n);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(nulls > 0); /* the table did fill up */
	/* a final full sweep leaves only the live ones */
	mg_ct_expire(ct, now, 1000);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, ref_live(ref, POOL, now));
	mg_ct_free(ct);
}

/* ---- fragments ---- */

static void
test_frag_add_find_timeout(void)
{
	struct mg_ct *ct = mk(16, 16, false);
	struct mg_flow_key k = fk(C, 0, S, 0, MG_IPPROTO_UDP), r = rev(&k);
	struct mg_flow_key k6 = fk("fd00::1", 0, "fd00::2", 0, MG_IPPROTO_UDP);
	struct mg_ct_stats st;

	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &k, 42, 0, 0));
	CU_ASSERT_EQUAL(mg_ct_frag_add(ct, &k, 42, 0, 100), 0);
	CU_ASSERT_EQUAL(mg_ct_frag_add(ct, &k6, 0x12345678, 0, 100), 0);
	CU_ASSERT_TRUE(mg_ct_frag_find(ct, &k, 42, 0, 100));
	CU_ASSERT_TRUE(mg_ct_frag_find(ct, &k6, 0x12345678, 0, 100));
	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &k6, 0x12355678, 0, 100));
	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &k, 43, 0, 100));
	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &r, 42, 0, 100)); /* one way only */
	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &k, 42, 1, 100)); /* zone */
	k.proto = MG_IPPROTO_TCP;
	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &k, 42, 0, 100)); /* protocol */
	k.proto = MG_IPPROTO_UDP;
	/* fragment records are not flows */
	CU_ASSERT_PTR_NULL(find(ct, &k, 0, 100));
	CU_ASSERT_TRUE(mg_ct_frag_find(ct, &k, 42, 0, 100 + T_FRAG));
	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &k, 42, 0, 101 + T_FRAG));
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.frags, 2);
	CU_ASSERT_EQUAL(st.entries, 0);
	CU_ASSERT_EQUAL(mg_ct_expire(ct, 101 + T_FRAG, 100), 2);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.frags, 0);
	CU_ASSERT_EQUAL(st.expired, 0); /* counts flows only */
	mg_ct_free(ct);
}

static void
test_frag_full(void)
{
	struct mg_ct *ct = mk(16, 4, false);
	struct mg_flow_key k = fk(C, 0, S, 0, MG_IPPROTO_UDP);
	struct mg_ct_stats st;

	for (uint32_t id = 0; id < 4; id++)
		CU_ASSERT_EQUAL(mg_ct_frag_add(ct, &k, id, 0, 0), 0);
	CU_ASSERT_EQUAL(mg_ct_frag_add(ct, &k, 99, 0, 0), -ENOSPC);
	/* refreshing an existing record needs no room */
	CU_ASSERT_EQUAL(mg_ct_frag_add(ct, &k, 2, 0, 5000), 0);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.frag_full, 1);
	CU_ASSERT_EQUAL(st.frags, 4);
	CU_ASSERT_EQUAL(st.full, 0);
	CU_ASSERT_EQUAL(mg_ct_expire(ct, T_FRAG + 1, 100), 3); /* id 2 was refreshed */
	CU_ASSERT_TRUE(mg_ct_frag_find(ct, &k, 2, 0, T_FRAG + 1));
	CU_ASSERT_EQUAL(mg_ct_frag_add(ct, &k, 99, 0, T_FRAG + 1), 0);
	mg_ct_free(ct);
}

/* ---- control path ---- */

static void
test_flush(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	struct mg_flow_key k = fk(C, 0, S, 0, MG_IPPROTO_UDP);
	struct mg_ct_stats st;

	for (uint32_t i = 0; i < 50; i++) {
		struct mg_flow_key f = nth_flow(i, MG_IPPROTO_UDP);

		pkt(ct, &f, 0, 1, 0);
	}
	mg_ct_frag_add(ct, &k, 1, 0, 0);
	mg_ct_flush(ct);
	mg_ct_stats_get(ct, &st);
	CU_ASSERT_EQUAL(st.entries, 0);
	CU_ASSERT_EQUAL(st.frags, 0);
	CU_ASSERT_FALSE(mg_ct_frag_find(ct, &k, 1, 0, 0));
	for (uint32_t i = 0; i < 50; i++) {
		struct mg_flow_key f = nth_flow(i, MG_IPPROTO_UDP);

		CU_ASSERT_PTR_NULL(find(ct, &f, 0, 0));
	}
	for (uint32_t i = 0; i < 64; i++) {
		struct mg_flow_key f = nth_flow(i, MG_IPPROTO_UDP);

		CU_ASSERT_EQUAL(pkt(ct, &f, 0, 1, 1), MG_CT_NEW);
	}
	mg_ct_free(ct);
}

static int
stop_at_third(const struct mg_ct_entry *e, void *arg)
{
	unsigned *n = arg;

	CU_ASSERT(e->state != 0);
	return ++*n == 3 ? 42 : 0;
}

static void
test_walk(void)
{
	struct mg_ct *ct = mk(64, 8, false);
	unsigned n = 0;

	for (uint32_t i = 0; i < 20; i++) {
		struct mg_flow_key f = nth_flow(i, i < 5 ? MG_IPPROTO_ICMP : MG_IPPROTO_UDP);

		f.icmp_type = 8;
		pkt(ct, &f, 0, 1, 0);
	}
	CU_ASSERT_EQUAL(mg_ct_walk(ct, 0, count_fn, &n), 0);
	CU_ASSERT_EQUAL(n, 20);
	n = 0;
	CU_ASSERT_EQUAL(mg_ct_walk(ct, T_ICMP + 1, count_fn, &n), 0);
	CU_ASSERT_EQUAL(n, 15); /* the ICMP ones died */
	n = 0;
	CU_ASSERT_EQUAL(mg_ct_walk(ct, 0, stop_at_third, &n), 42);
	CU_ASSERT_EQUAL(n, 3);
	mg_ct_free(ct);
}

static void
test_memory(void)
{
	struct mg_ct *ct = mk(1000, 100, false);
	size_t m = mg_ct_memory(ct);
	size_t formula = 2048 * 64 + 256 * 64;

	CU_ASSERT(m >= formula);
	CU_ASSERT(m <= formula + 4096);
	mg_ct_free(ct);
	ct = mk(1u << 15, 8192, false);
	m = mg_ct_memory(ct);
	formula = (65536 + 16384) * 64;
	CU_ASSERT(m >= formula);
	CU_ASSERT(m <= formula + (4u << 20)); /* huge page rounding */
	mg_ct_free(ct);
	ct = mk(1024, 1, false); /* exactly a power of two: 2048 slots, not 4096 */
	CU_ASSERT(mg_ct_memory(ct) < 4096 * 64);
	mg_ct_free(ct);
}

static void
test_params(void)
{
	struct mg_ct_params p;

	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params(0, 8, false);
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params((1u << 26) + 1, 8, false);
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params(8, 0, false);
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params(8, (1u << 22) + 1, false);
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params(8, 8, false);
	p.hz = 0;
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params(8, 8, false);
	p.timeouts.tcp_fin = 0;
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params(8, 8, false);
	p.hz = UINT64_MAX / 2;
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_ct_create(&p));
	CU_ASSERT_EQUAL(errno, EINVAL);
	mg_ct_free(NULL);
	p = params(1, 1, false);
	struct mg_ct *ct = mg_ct_create(&p);
	CU_ASSERT_PTR_NOT_NULL(ct);
	mg_ct_free(ct);
}

static void
test_defaults_and_names(void)
{
	struct mg_ct_timeouts t;

	mg_ct_timeouts_default(&t);
	CU_ASSERT_EQUAL(t.tcp_syn, 60);
	CU_ASSERT_EQUAL(t.tcp_established, 21600);
	CU_ASSERT_EQUAL(t.tcp_fin, 30);
	CU_ASSERT_EQUAL(t.tcp_close, 10);
	CU_ASSERT_EQUAL(t.udp, 60);
	CU_ASSERT_EQUAL(t.icmp, 30);
	CU_ASSERT_EQUAL(t.other, 60);
	CU_ASSERT_EQUAL(t.fragment, 10);
	CU_ASSERT_STRING_EQUAL(mg_ct_state_name(MG_CT_ESTABLISHED), "established");
	CU_ASSERT_STRING_EQUAL(mg_ct_state_name(MG_CT_SYN_SENT), "syn_sent");
	CU_ASSERT_STRING_EQUAL(mg_ct_state_name(MG_CT_REPLIED), "replied");
	CU_ASSERT_STRING_EQUAL(mg_ct_state_name(0), "unknown");
	CU_ASSERT_STRING_EQUAL(mg_ct_state_name(99), "unknown");
}

/* ---- throughput (printed, not asserted) ---- */

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
bench(uint32_t n)
{
	struct mg_ct *ct = mk(n, 1, false);
	struct mg_ct_key *keys = malloc((size_t)n * sizeof(*keys));
	struct mg_ct_key burst[32];
	struct mg_ct_entry *out[32];
	unsigned found = 0, lookups = 1u << 22;
	double t0, t1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(keys);
	for (uint32_t i = 0; i < n; i++) {
		struct mg_flow_key f = nth_flow(i, MG_IPPROTO_UDP);
		uint8_t dir;

		f.dport = (uint16_t)(i * 7);
		mg_ct_key_make(&f, 0, &keys[i], &dir);
		CU_ASSERT_PTR_NOT_NULL_FATAL(mg_ct_insert(ct, &keys[i], dir, 0, 1, 0));
	}
	t0 = seconds();
	for (unsigned l = 0; l < lookups; l += 32) {
		/* keys in insertion order land on random slots; reading them in
		 * order keeps the key array itself out of the measurement */
		for (unsigned i = 0; i < 32; i++)
			burst[i] = keys[(l + i) & (n - 1)];
		mg_ct_lookup_bulk(ct, burst, 32, 1, out);
		for (unsigned i = 0; i < 32; i++)
			found += out[i] != NULL;
	}
	t1 = seconds();
	CU_ASSERT_EQUAL(found, lookups);
	printf("  ct bench: %u entries (%zu MB): %.1f M lookups/s (bursts of 32)\n", n,
	       mg_ct_memory(ct) >> 20, lookups / (t1 - t0) / 1e6);
	free(keys);
	mg_ct_free(ct);
}

static void
test_throughput(void)
{
	bench(1u << 15);
#ifdef SANITIZED
	printf("  ct bench: 2^22 entries skipped under the sanitizers\n");
#else
	bench(1u << 22);
#endif
}

/* Packets that share a flow's key but are not part of it are left to the policy. */
static void
test_not_part_of_flow(void)
{
	struct mg_ct *ct = mk(64, 4, false);
	struct mg_flow_key c = fk("10.0.0.1", 40000, "10.0.0.2", 80, MG_IPPROTO_TCP);
	struct mg_flow_key s = rev(&c);
	struct mg_flow_key rq = icmp("10.0.0.1", "10.0.0.2", MG_IPPROTO_ICMP, 8, 7);
	struct mg_flow_key rp = icmp("10.0.0.2", "10.0.0.1", MG_IPPROTO_ICMP, 0, 7);
	struct mg_flow_key rq6 = icmp("fd00::1", "fd00::2", MG_IPPROTO_ICMPV6, 128, 9);
	struct mg_flow_key rp6 = icmp("fd00::2", "fd00::1", MG_IPPROTO_ICMPV6, 129, 9);

	/* a SYN from the responder is a simultaneous open in SYN_SENT only */
	CU_ASSERT_EQUAL(pkt(ct, &c, SYN, 1, 0), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &s, SYN | ACK, 1, 1), MG_CT_PASS);
	CU_ASSERT_EQUAL(pkt(ct, &c, ACK, 1, 2), MG_CT_PASS);
	CU_ASSERT_EQUAL(state_of(ct, &c, 2), MG_CT_ESTABLISHED);
	CU_ASSERT_EQUAL(pkt(ct, &s, SYN, 1, 3), MG_CT_NEW_NOTRACK);
	CU_ASSERT_EQUAL(state_of(ct, &c, 3), MG_CT_ESTABLISHED);
	/* after a RST too */
	CU_ASSERT_EQUAL(pkt(ct, &s, RST, 1, 4), MG_CT_PASS);
	CU_ASSERT_EQUAL(pkt(ct, &s, SYN, 1, 5), MG_CT_NEW_NOTRACK);
	CU_ASSERT_EQUAL(state_of(ct, &c, 5), MG_CT_CLOSED);

	/* echo: requests one way, replies the other, for both families */
	CU_ASSERT_EQUAL(pkt(ct, &rq, 0, 1, 10), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &rp, 0, 1, 11), MG_CT_PASS);
	CU_ASSERT_EQUAL(pkt(ct, &rq, 0, 1, 12), MG_CT_PASS);
	rq.icmp_type = 0; /* a reply from the requester */
	CU_ASSERT_EQUAL(pkt(ct, &rq, 0, 1, 13), MG_CT_NEW_NOTRACK);
	rp.icmp_type = 8; /* a request from the responder */
	CU_ASSERT_EQUAL(pkt(ct, &rp, 0, 1, 14), MG_CT_NEW_NOTRACK);
	CU_ASSERT_EQUAL(pkt(ct, &rq6, 0, 1, 20), MG_CT_NEW);
	CU_ASSERT_EQUAL(pkt(ct, &rp6, 0, 1, 21), MG_CT_PASS);
	rp6.icmp_type = 128;
	CU_ASSERT_EQUAL(pkt(ct, &rp6, 0, 1, 22), MG_CT_NEW_NOTRACK);
	mg_ct_free(ct);
}

static CU_TestInfo tests[] = {
        {"not_part_of_flow", test_not_part_of_flow},
        {"key_v4_both_directions", test_key_v4_both_directions},
        {"key_v6_both_directions", test_key_v6_both_directions},
        {"key_same_address_orders_by_port", test_key_same_address_orders_by_port},
        {"key_icmp_echo_meets", test_key_icmp_echo_meets},
        {"key_icmp_non_echo_ports_zero", test_key_icmp_non_echo_ports_zero},
        {"key_zones_separate_flows", test_key_zones_separate_flows},
        {"tcp_handshake", test_tcp_handshake},
        {"tcp_syn_sent_timeout", test_tcp_syn_sent_timeout},
        {"tcp_syn_recv_timeout", test_tcp_syn_recv_timeout},
        {"tcp_established_timeout", test_tcp_established_timeout},
        {"tcp_fin_from_originator_first", test_tcp_fin_from_originator_first},
        {"tcp_fin_from_responder_first", test_tcp_fin_from_responder_first},
        {"tcp_fin_wait_timeout", test_tcp_fin_wait_timeout},
        {"tcp_closing_timeout", test_tcp_closing_timeout},
        {"tcp_fin_in_syn_recv", test_tcp_fin_in_syn_recv},
        {"tcp_time_wait_timeout", test_tcp_time_wait_timeout},
        {"tcp_rst_from_either_side", test_tcp_rst_from_either_side},
        {"tcp_rst_in_every_state", test_tcp_rst_in_every_state},
        {"tcp_syn_readmits_closed_and_time_wait", test_tcp_syn_readmits_closed_and_time_wait},
        {"tcp_syn_on_live_connection_is_not_new", test_tcp_syn_on_live_connection_is_not_new},
        {"tcp_unknown_non_syn_invalid", test_tcp_unknown_non_syn_invalid},
        {"tcp_pickup", test_tcp_pickup},
        {"udp_open_replied_refresh", test_udp_open_replied_refresh},
        {"icmp_echo", test_icmp_echo},
        {"other_protocol_timeout", test_other_protocol_timeout},
        {"custom_timeouts_and_hz", test_custom_timeouts_and_hz},
        {"generation_recheck", test_generation_recheck},
        {"table_full", test_table_full},
        {"expired_invisible_and_reclaimed", test_expired_invisible_and_reclaimed},
        {"expire_budget_respected", test_expire_budget_respected},
        {"expire_incremental_large", test_expire_incremental_large},
        {"bulk_equals_single_random", test_bulk_equals_single_random},
        {"backward_shift_collisions_random", test_backward_shift_collisions_random},
        {"frag_add_find_timeout", test_frag_add_find_timeout},
        {"frag_full", test_frag_full},
        {"flush", test_flush},
        {"walk", test_walk},
        {"memory", test_memory},
        {"params", test_params},
        {"defaults_and_names", test_defaults_and_names},
        {"throughput", test_throughput},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("ct", tests)
