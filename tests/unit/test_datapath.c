/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-burst pipeline (mg_dp_classify) without DPDK: frames built by
 * hand, a small ipcache and a compiled policy; each test checks the
 * verdict of every frame and the counters it leaves behind. The monitor's
 * event rings and conntrack mailbox run here too, with plain threads
 * standing in for workers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <rte_thash.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "mg_datapath.h"
#include "mg_identity.h"
#include "mg_test.h"

#define ID_CLIENT 65800
#define ID_SERVER 65801

static const char policy_yaml[] = "apiVersion: cilium.io/v2\n"
                                  "kind: CiliumNetworkPolicy\n"
                                  "metadata: {name: server-in, namespace: demo}\n"
                                  "spec:\n"
                                  "  endpointSelector: {matchLabels: {app: server}}\n"
                                  "  ingress:\n"
                                  "  - fromEndpoints: [{matchLabels: {app: client}}]\n"
                                  "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n";

struct fixture {
	struct mg_identity_table *ids;
	struct mg_policy_set *set;
	struct mg_policy *pol;
	struct mg_ipcache *ipc;
	struct mg_dp_env env;
	struct mg_dp_counters cnt;
};

static void
put_identity(struct mg_identity_table *t, uint32_t id, const char *app)
{
	struct mg_labels ls = MG_LABELS_INIT;

	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "app", app), 0);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "io.kubernetes.pod.namespace", "demo"), 0);
	CU_ASSERT_EQUAL(mg_labels_add(&ls, "k8s", "io.cilium.k8s.policy.cluster", "cluster-a"), 0);
	CU_ASSERT(mg_identity_table_put(t, id, &ls, 1) >= 0);
	mg_labels_clear(&ls);
}

static void
put_ip(struct mg_ipcache *ipc, const char *prefix, uint32_t id)
{
	struct mg_ipcache_entry e = {0};

	CU_ASSERT_EQUAL_FATAL(mg_ipcache_parse_prefix(prefix, &e), 0);
	e.identity = id;
	e.cluster_id = 1;
	CU_ASSERT_EQUAL(mg_ipcache_put(ipc, &e), 0);
}

static void
fixture_init(struct fixture *f, enum mg_enforcement enf)
{
	struct mg_ipcache_params ip = {.entries_hint = 16, .split_world = true};
	struct mg_policy_params pp = {.enforcement = enf, .default_local_cluster = true};
	struct mg_error err = {{0}};

	memset(f, 0, sizeof(*f));
	f->ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	f->set = mg_policy_set_create();
	f->ipc = mg_ipcache_create(&ip);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ids);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->set);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ipc);
	put_identity(f->ids, ID_CLIENT, "client");
	put_identity(f->ids, ID_SERVER, "server");
	CU_ASSERT_EQUAL_FATAL(mg_policy_set_load_buf(f->set, "cluster-a", "p.yaml", policy_yaml,
	                                             sizeof(policy_yaml) - 1, &err),
	                      1);
	f->pol = mg_policy_compile(f->set, f->ids, &pp, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->pol);
	put_ip(f->ipc, "10.99.0.1", ID_CLIENT);
	put_ip(f->ipc, "10.99.0.2", ID_SERVER);
	put_ip(f->ipc, "fd00:99::1", ID_CLIENT);
	put_ip(f->ipc, "fd00:99::2", ID_SERVER);
	CU_ASSERT_EQUAL(mg_ipcache_commit(f->ipc), 4);
	f->env.ipc = mg_ipcache_reader(f->ipc);
	f->env.policy = f->pol;
	f->env.split_world = true;
}

static void
fixture_fini(struct fixture *f)
{
	mg_policy_free(f->pol);
	mg_policy_set_free(f->set);
	mg_ipcache_free(f->ipc);
	mg_identity_table_free(f->ids);
}

static unsigned
eth(uint8_t *b, uint16_t type)
{
	memset(b, 0, 14);
	b[0] = 0x02;
	b[6] = 0x02;
	b[11] = 1;
	b[12] = (uint8_t)(type >> 8);
	b[13] = (uint8_t)type;
	return 14;
}

/* IPv4 + TCP/UDP/ICMP frame; returns its length. */
static uint32_t
ip4(uint8_t *b, const char *src, const char *dst, uint8_t proto, uint16_t dport)
{
	unsigned o = eth(b, 0x0800);
	uint8_t *ip = b + o, *l4 = b + o + 20;

	memset(ip, 0, 40);
	ip[0] = 0x45;
	ip[3] = 40;
	ip[8] = 64;
	ip[9] = proto;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	if (proto == 1) {
		l4[0] = (uint8_t)dport; /* ICMP type */
	} else {
		l4[0] = 0x9c;
		l4[1] = 0x40;
		l4[2] = (uint8_t)(dport >> 8);
		l4[3] = (uint8_t)dport;
		if (proto == 6)
			l4[12] = 0x50;
		else
			l4[5] = 20;
	}
	return o + 40;
}

static uint32_t
ip6_tcp(uint8_t *b, const char *src, const char *dst, uint16_t dport)
{
	unsigned o = eth(b, 0x86dd);
	uint8_t *ip = b + o, *l4 = b + o + 40;

	memset(ip, 0, 60);
	ip[0] = 0x60;
	ip[5] = 20;
	ip[6] = 6;
	ip[7] = 64;
	inet_pton(AF_INET6, src, ip + 8);
	inet_pton(AF_INET6, dst, ip + 24);
	l4[2] = (uint8_t)(dport >> 8);
	l4[3] = (uint8_t)dport;
	l4[12] = 0x50;
	return o + 60;
}

static void
classify(struct fixture *f, uint8_t (*frames)[128], const uint32_t *len, unsigned n,
         uint8_t *reasons)
{
	const uint8_t *data[8];
	unsigned i;

	for (i = 0; i < n; i++)
		data[i] = frames[i];
	mg_dp_classify(&f->env, 1, data, len, n, reasons, &f->cnt);
}

static void
test_verdicts(void)
{
	uint8_t frames[6][128], reasons[6];
	uint32_t len[6];
	struct fixture f;

	fixture_init(&f, MG_ENFORCE_DEFAULT);
	len[0] = ip4(frames[0], "10.99.0.1", "10.99.0.2", 6, 8080);  /* allowed */
	len[1] = ip4(frames[1], "10.99.0.1", "10.99.0.2", 6, 9090);  /* wrong port */
	len[2] = ip4(frames[2], "10.99.0.2", "10.99.0.1", 6, 40000); /* reply side: open */
	len[3] = ip4(frames[3], "192.0.2.7", "10.99.0.2", 6, 8080);  /* world -> server */
	len[4] = ip6_tcp(frames[4], "fd00:99::1", "fd00:99::2", 8080);
	len[5] = ip4(frames[5], "10.99.0.1", "10.99.0.2", 1, 8); /* ICMP echo: port rule only */
	classify(&f, frames, len, 6, reasons);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[1], MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(reasons[2], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[3], MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(reasons[4], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[5], MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(f.cnt.allowed, 3);
	CU_ASSERT_EQUAL(f.cnt.denied_ingress, 3);
	CU_ASSERT_EQUAL(f.cnt.denied_egress, 0);
	CU_ASSERT_EQUAL(f.cnt.drops[MG_DROP_POLICY_INGRESS], 3);
	CU_ASSERT_EQUAL(f.cnt.rx_pkts[1], 6);
	CU_ASSERT_EQUAL(f.cnt.port_drops[1], 3);
	fixture_fini(&f);
}

static void
test_non_ip_and_malformed(void)
{
	uint8_t frames[4][128], reasons[4];
	uint32_t len[4];
	struct fixture f;

	fixture_init(&f, MG_ENFORCE_ALWAYS);
	len[0] = eth(frames[0], 0x0806) + 28; /* ARP */
	memset(frames[0] + 14, 0, 28);
	len[1] = eth(frames[1], 0x88cc) + 30; /* LLDP: non-IP */
	memset(frames[1] + 14, 0, 30);
	len[2] = ip4(frames[2], "10.99.0.1", "10.99.0.2", 6, 8080);
	frames[2][14] = 0x44;                                     /* IHL 4 */
	len[3] = ip4(frames[3], "10.99.0.1", "10.99.0.2", 6, 22); /* always: no rule allows */
	classify(&f, frames, len, 4, reasons);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[1], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[2], MG_DROP_IP4_IHL);
	CU_ASSERT_NOT_EQUAL(reasons[3], MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.arp, 1);
	CU_ASSERT_EQUAL(f.cnt.non_ip, 1);
	CU_ASSERT_EQUAL(f.cnt.drops[MG_DROP_IP4_IHL], 1);

	/* non_ip: drop */
	f.env.non_ip_drop = true;
	classify(&f, frames + 1, len + 1, 1, reasons);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NON_IP);
	CU_ASSERT_EQUAL(f.cnt.drops[MG_DROP_NON_IP], 1);
	fixture_fini(&f);
}

static void
test_fragments(void)
{
	uint8_t frames[2][128], reasons[2];
	uint32_t len[2];
	struct fixture f;

	fixture_init(&f, MG_ENFORCE_DEFAULT);
	len[0] = ip4(frames[0], "10.99.0.1", "10.99.0.2", 6, 8080);
	frames[0][14 + 6] = 0x20; /* MF, offset 0: first fragment, judged by its ports */
	len[1] = ip4(frames[1], "10.99.0.1", "10.99.0.2", 6, 8080);
	frames[1][14 + 6] = 0x00;
	frames[1][14 + 7] = 0x03; /* offset 24 bytes: non-first */
	classify(&f, frames, len, 2, reasons);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[1], MG_DROP_FRAG_UNTRACKED);
	fixture_fini(&f);
}

static void
test_never_and_no_policy(void)
{
	uint8_t frames[1][128], reasons[1];
	uint32_t len[1];
	struct fixture f;

	fixture_init(&f, MG_ENFORCE_NEVER);
	len[0] = ip4(frames[0], "10.99.0.1", "10.99.0.2", 6, 22);
	classify(&f, frames, len, 1, reasons);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	f.env.policy = NULL;
	f.env.ipc = NULL;
	classify(&f, frames, len, 1, reasons);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.allowed, 2);
	fixture_fini(&f);
}

static void
test_counters_add(void)
{
	struct mg_dp_counters a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.rx_pkts[3] = 5;
	a.drops[MG_DROP_TX_FULL] = 2;
	b.rx_pkts[3] = 7;
	b.loops = 9;
	mg_dp_counters_add(&a, &b);
	CU_ASSERT_EQUAL(a.rx_pkts[3], 12);
	CU_ASSERT_EQUAL(a.drops[MG_DROP_TX_FULL], 2);
	CU_ASSERT_EQUAL(a.loops, 9);
}

/* ---- with a conntrack table ---- */

/* TCP between the fixture's v4 addresses with @p flags, from @p src port to @p dst port. */
static uint32_t
tcp4(uint8_t *b, const char *src, const char *dst, uint16_t sport, uint16_t dport, uint8_t flags)
{
	uint32_t n = ip4(b, src, dst, 6, dport);

	b[34] = (uint8_t)(sport >> 8);
	b[35] = (uint8_t)sport;
	b[34 + 13] = flags;
	return n;
}

static void
ct_fixture(struct fixture *f, uint32_t max_entries)
{
	struct mg_ct_params cp = {.max_entries = max_entries, .max_frags = 4, .hz = 1000};

	fixture_init(f, MG_ENFORCE_DEFAULT);
	mg_ct_timeouts_default(&cp.timeouts);
	f->env.ct = mg_ct_create(&cp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->env.ct);
	f->env.now = 1000;
	f->env.gen = 1;
}

static void
ct_fini(struct fixture *f)
{
	mg_ct_free(f->env.ct);
	fixture_fini(f);
}

static uint8_t
one(struct fixture *f, const uint8_t *frame, uint32_t len)
{
	uint8_t r;

	mg_dp_classify(&f->env, 0, &frame, &len, 1, &r, &f->cnt);
	return r;
}

#define SYN 0x02
#define ACK 0x10
#define FIN 0x01
#define RST 0x04

/* The server (backend) has no egress rule here, so make it default deny in
 * both directions: enforcement always. Only client -> server:8080 is allowed;
 * the replies must pass through conntrack. */
static void
test_ct_handshake(void)
{
	uint8_t b[128];
	uint32_t n;
	struct fixture f;

	ct_fixture(&f, 64);
	mg_policy_free(f.pol);
	{
		struct mg_policy_params pp = {.enforcement = MG_ENFORCE_ALWAYS,
		                              .default_local_cluster = true};
		struct mg_error err = {{0}};

		f.pol = mg_policy_compile(f.set, f.ids, &pp, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(f.pol);
		f.env.policy = f.pol;
	}
	/* a reply with no request: not a connection start */
	n = tcp4(b, "10.99.0.2", "10.99.0.1", 8080, 40000, SYN | ACK);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_CT_TCP_NOT_SYN);
	/* always: the client's own egress has no allow, so the SYN is denied */
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, SYN);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_POLICY_EGRESS);
	ct_fini(&f);

	/* default enforcement: client open, server ingress allows 8080 only */
	ct_fixture(&f, 64);
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, SYN);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.allowed, 1);
	n = tcp4(b, "10.99.0.2", "10.99.0.1", 8080, 40000, SYN | ACK);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, ACK);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.ct_tracked, 2);
	CU_ASSERT_EQUAL(f.cnt.allowed, 1); /* one policy lookup for the whole flow */
	/* the server cannot open its own connection to the client on another port */
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40001, 22, SYN);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_POLICY_INGRESS);
	ct_fini(&f);
}

static void
test_ct_recheck_after_change(void)
{
	uint8_t b[128];
	uint32_t n;
	struct fixture f;

	ct_fixture(&f, 64);
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, SYN);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	n = tcp4(b, "10.99.0.2", "10.99.0.1", 8080, 40000, SYN | ACK);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);

	/* a policy that no longer allows 8080: everything denied for the server */
	{
		static const char deny_all[] =
		        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		        "metadata: {name: server-in, namespace: demo}\n"
		        "spec:\n  endpointSelector: {matchLabels: {app: server}}\n"
		        "  ingress: [{}]\n";
		struct mg_policy_params pp = {.enforcement = MG_ENFORCE_DEFAULT,
		                              .default_local_cluster = true};
		struct mg_policy_set *set = mg_policy_set_create();
		struct mg_error err = {{0}};
		struct mg_policy *pol;

		CU_ASSERT_EQUAL_FATAL(mg_policy_set_load_buf(set, "cluster-a", "d.yaml", deny_all,
		                                             sizeof(deny_all) - 1, &err),
		                      1);
		pol = mg_policy_compile(set, f.ids, &pp, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(pol);
		f.env.policy = pol;
		/* same generation: the tracked flow is not asked again */
		n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, ACK);
		CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
		/* a new generation: the original direction is re-checked and denied ... */
		f.env.gen++;
		CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_POLICY_INGRESS);
		CU_ASSERT_EQUAL(f.cnt.ct_rechecked, 1);
		/* ... while the replies keep passing */
		n = tcp4(b, "10.99.0.2", "10.99.0.1", 8080, 40000, ACK);
		CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
		/* back to the allowing policy: the re-check passes and is remembered */
		f.env.policy = f.pol;
		f.env.gen++;
		n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, ACK);
		CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
		CU_ASSERT_EQUAL(f.cnt.ct_rechecked, 2);
		CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
		CU_ASSERT_EQUAL(f.cnt.ct_rechecked, 2);
		mg_policy_free(pol);
		mg_policy_set_free(set);
	}
	ct_fini(&f);
}

/* An ICMP port unreachable from @p from to @p to, quoting the UDP datagram
 * @p to sent to @p from's port @p quoted_dport. */
static uint32_t
icmp_unreach(uint8_t *b, const char *from, const char *to, uint16_t quoted_dport)
{
	uint8_t q[64];
	uint32_t n;

	ip4(b, from, to, 1, 3);
	b[14 + 20 + 1] = 3; /* code: port unreachable */
	ip4(q, to, from, 17, quoted_dport);
	memcpy(b + 14 + 20 + 8, q + 14, 28); /* quoted IP header + 8 bytes of UDP */
	n = 14 + 20 + 8 + 28;
	b[14 + 3] = (uint8_t)(n - 14);
	return n;
}

static void
test_ct_icmp_related(void)
{
	uint8_t b[128];
	uint32_t n;
	struct fixture f;

	ct_fixture(&f, 64);
	/* the client's UDP to 8080 is denied (TCP only), so open a UDP flow
	 * the other way round: the server is open in egress, the client in ingress */
	n = ip4(b, "10.99.0.2", "10.99.0.1", 17, 5353);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	/* the client answers with a port unreachable quoting that datagram */
	n = icmp_unreach(b, "10.99.0.1", "10.99.0.2", 5353);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.ct_related, 1);
	/* an error quoting a flow nobody opened */
	n = icmp_unreach(b, "10.99.0.2", "10.99.0.1", 9999);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_ICMP_UNRELATED);
	CU_ASSERT_EQUAL(f.cnt.drops[MG_DROP_ICMP_UNRELATED], 1);
	ct_fini(&f);
}

static void
test_ct_fragments_and_full(void)
{
	uint8_t b[128];
	uint32_t n;
	struct fixture f;

	ct_fixture(&f, 1);
	/* first fragment allowed: the next one of the same datagram follows */
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, SYN);
	b[14 + 4] = 0x12;
	b[14 + 5] = 0x34; /* IP id */
	b[14 + 6] = 0x20; /* MF */
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	b[14 + 6] = 0x00;
	b[14 + 7] = 0x03; /* offset 24: a later fragment */
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.frag_passed, 1);
	/* another datagram's later fragment: its first never passed */
	b[14 + 5] = 0x35;
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_FRAG_UNTRACKED);

	/* the table holds one flow: a second new flow is refused and counted */
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40002, 8080, SYN);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_CT_FULL);
	{
		struct mg_ct_stats st;

		mg_ct_stats_get(f.env.ct, &st);
		CU_ASSERT_EQUAL(st.full, 1);
		CU_ASSERT_EQUAL(st.entries, 1);
	}
	ct_fini(&f);
}

/* Packets of one flow in one burst: the first opens it, the rest belong to it. */
static void
test_ct_same_burst(void)
{
	uint8_t frames[4][128], reasons[4];
	const uint8_t *data[4];
	uint32_t len[4];
	struct fixture f;
	unsigned k;

	ct_fixture(&f, 64);
	len[0] = tcp4(frames[0], "10.99.0.1", "10.99.0.2", 40000, 8080, SYN);
	len[1] = tcp4(frames[1], "10.99.0.2", "10.99.0.1", 8080, 40000, SYN | ACK);
	len[2] = tcp4(frames[2], "10.99.0.1", "10.99.0.2", 40000, 8080, ACK);
	/* a first fragment and a later one of the same datagram */
	len[3] = tcp4(frames[3], "10.99.0.1", "10.99.0.2", 40001, 8080, SYN);
	for (k = 0; k < 4; k++)
		data[k] = frames[k];
	mg_dp_classify(&f.env, 0, data, len, 3, reasons, &f.cnt);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[1], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[2], MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.allowed, 1);
	CU_ASSERT_EQUAL(f.cnt.ct_tracked, 2);
	{
		struct mg_ct_stats st;

		mg_ct_stats_get(f.env.ct, &st);
		CU_ASSERT_EQUAL(st.created, 1);
	}

	memcpy(frames[0], frames[3], len[3]);
	len[0] = len[3];
	frames[0][14 + 4] = 0x56; /* IP id 0x5678 */
	frames[0][14 + 5] = 0x78;
	frames[0][14 + 6] = 0x20; /* MF */
	memcpy(frames[1], frames[0], len[0]);
	len[1] = len[0];
	frames[1][14 + 6] = 0x00;
	frames[1][14 + 7] = 0x03; /* offset 24 */
	/* the later fragment first in the burst: still follows its first */
	data[0] = frames[1];
	data[1] = frames[0];
	mg_dp_classify(&f.env, 0, data, len, 2, reasons, &f.cnt);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[1], MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.frag_passed, 1);
	ct_fini(&f);
}

/* ICMP echo of the client's flow: the reply passes, a request the other way is judged. */
static void
test_ct_echo_direction(void)
{
	uint8_t b[128];
	uint32_t n;
	struct fixture f;

	ct_fixture(&f, 64);
	/* the server's ingress has only TCP 8080, so echo must go client-ward:
	 * the server is open in egress, the client in ingress */
	n = ip4(b, "10.99.0.2", "10.99.0.1", 1, 8);
	b[14 + 20 + 4] = 0;
	b[14 + 20 + 5] = 7; /* identifier 7 */
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	n = ip4(b, "10.99.0.1", "10.99.0.2", 1, 0); /* the echo reply */
	b[14 + 20 + 5] = 7;
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	CU_ASSERT_EQUAL(f.cnt.ct_tracked, 1);
	/* a request from the client with the same identifier is not a reply:
	 * the server's ingress denies it */
	n = ip4(b, "10.99.0.1", "10.99.0.2", 1, 8);
	b[14 + 20 + 5] = 7;
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(f.cnt.ct_tracked, 1);
	ct_fini(&f);
}

/* Both directions of a flow hash alike under the ports' RSS key, for IPv4
 * and IPv6 tuples; different flows still spread. */
static void
test_rss_key_symmetric(void)
{
	uint32_t fwd[9], rev[9], h[64];
	unsigned len, i, j, distinct = 0;
	const uint8_t *key = mg_datapath_rss_key(&len);
	uint64_t x = 88172645463325252ull;

	CU_ASSERT_EQUAL_FATAL(len, 40);
	for (i = 0; i < 1000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		fwd[0] = (uint32_t)x;
		fwd[1] = (uint32_t)(x >> 32);
		fwd[2] = (uint32_t)(x >> 7);
		rev[0] = fwd[1];
		rev[1] = fwd[0];
		rev[2] = fwd[2] >> 16 | fwd[2] << 16;
		CU_ASSERT_EQUAL(rte_softrss(fwd, RTE_THASH_V4_L4_LEN, key),
		                rte_softrss(rev, RTE_THASH_V4_L4_LEN, key));
		for (j = 0; j < 8; j++)
			fwd[j] = (uint32_t)(x * (j + 3) >> 11);
		fwd[8] = (uint32_t)(x >> 5);
		for (j = 0; j < 4; j++) {
			rev[j] = fwd[4 + j];
			rev[4 + j] = fwd[j];
		}
		rev[8] = fwd[8] >> 16 | fwd[8] << 16;
		CU_ASSERT_EQUAL(rte_softrss(fwd, RTE_THASH_V6_L4_LEN, key),
		                rte_softrss(rev, RTE_THASH_V6_L4_LEN, key));
		if (i < 64)
			h[i] = rte_softrss(fwd, RTE_THASH_V6_L4_LEN, key);
	}
	for (i = 0; i < 64; i++) {
		for (j = 0; j < i && h[j] != h[i]; j++)
			;
		distinct += j == i;
	}
	CU_ASSERT_TRUE(distinct > 56);
}

/* ---- monitor events ---- */

static struct mg_dp_mon *
mon_new(uint32_t mask, uint32_t one_in)
{
	/* cache-aligned type: the allocation must be too */
	struct mg_dp_mon *m = aligned_alloc(MG_CACHE_LINE, sizeof(struct mg_dp_mon));

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mg_dp_mon_init(m, 3);
	mg_dp_mon_arm(m, mask, one_in);
	return m;
}

static void
classify_n(struct fixture *f, unsigned port, uint8_t (*frames)[128], const uint32_t *len,
           unsigned n, uint8_t *reasons)
{
	const uint8_t *data[32];
	unsigned i;

	CU_ASSERT_FATAL(n <= 32);
	for (i = 0; i < n; i++)
		data[i] = frames[i];
	mg_dp_classify(&f->env, port, data, len, n, reasons, &f->cnt);
}

static bool
addr4_is(const uint8_t *a, const char *s)
{
	uint8_t b[16] = {0};

	inet_pton(AF_INET, s, b);
	return memcmp(a, b, 16) == 0;
}

/* Drops and verdicts of a stateless burst: who decided, with which identities. */
static void
test_mon_events(void)
{
	uint8_t frames[5][128], reasons[5];
	struct mg_dp_event ev[16];
	uint32_t len[5];
	struct mg_dp_mon *m = mon_new(MG_DP_MON_ALL, 1);
	struct fixture f;

	fixture_init(&f, MG_ENFORCE_DEFAULT);
	f.env.now = 777;
	f.env.mon = m;
	len[0] = ip4(frames[0], "10.99.0.1", "10.99.0.2", 6, 8080); /* allowed */
	len[1] = ip4(frames[1], "10.99.0.1", "10.99.0.2", 6, 9090); /* ingress denied */
	len[2] = ip4(frames[2], "10.99.0.1", "10.99.0.2", 6, 8080);
	frames[2][14] = 0x44;                 /* IHL 4: malformed before its addresses */
	len[3] = eth(frames[3], 0x0806) + 28; /* ARP */
	memset(frames[3] + 14, 0, 28);
	len[4] = ip6_tcp(frames[4], "fd00:99::1", "fd00:99::2", 8080);
	classify_n(&f, 1, frames, len, 5, reasons);
	CU_ASSERT_EQUAL(reasons[1], MG_DROP_POLICY_INGRESS);

	/* a small buffer first: the rest stays for the next call, in order */
	CU_ASSERT_EQUAL_FATAL(mg_dp_mon_pop(m, ev, 3), 3);
	CU_ASSERT_EQUAL_FATAL(mg_dp_mon_pop(m, ev + 3, 16), 2);
	CU_ASSERT_EQUAL(mg_dp_mon_pop(m, ev, 16), 0);

	CU_ASSERT_EQUAL(ev[0].reason, MG_DROP_NONE);
	CU_ASSERT_EQUAL(ev[0].by, MG_DP_BY_POLICY);
	CU_ASSERT_EQUAL(ev[0].src_id, ID_CLIENT);
	CU_ASSERT_EQUAL(ev[0].dst_id, ID_SERVER);
	CU_ASSERT_EQUAL(ev[0].family, MG_AF_INET);
	CU_ASSERT_EQUAL(ev[0].proto, 6);
	CU_ASSERT_EQUAL(ev[0].sport, 40000);
	CU_ASSERT_EQUAL(ev[0].dport, 8080);
	CU_ASSERT_EQUAL(ev[0].in_port, 1);
	CU_ASSERT_EQUAL(ev[0].worker, 3);
	CU_ASSERT_EQUAL(ev[0].len, len[0]);
	CU_ASSERT_EQUAL(ev[0].tsc, 777);
	CU_ASSERT_EQUAL(ev[0].cls, MG_PKT_IPV4);
	CU_ASSERT_TRUE(addr4_is(ev[0].src, "10.99.0.1"));
	CU_ASSERT_TRUE(addr4_is(ev[0].dst, "10.99.0.2"));

	CU_ASSERT_EQUAL(ev[1].reason, MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(ev[1].by, MG_DP_BY_POLICY_INGRESS);
	CU_ASSERT_EQUAL(ev[1].src_id, ID_CLIENT);
	CU_ASSERT_EQUAL(ev[1].dst_id, ID_SERVER);
	CU_ASSERT_EQUAL(ev[1].dport, 9090);

	CU_ASSERT_EQUAL(ev[2].reason, MG_DROP_IP4_IHL);
	CU_ASSERT_EQUAL(ev[2].by, MG_DP_BY_PARSER);
	CU_ASSERT_EQUAL(ev[2].family, 0);
	CU_ASSERT_EQUAL(ev[2].src_id, MG_ID_UNKNOWN);

	CU_ASSERT_EQUAL(ev[3].reason, MG_DROP_NONE);
	CU_ASSERT_EQUAL(ev[3].by, MG_DP_BY_PARSER);
	CU_ASSERT_EQUAL(ev[3].cls, MG_PKT_ARP);
	CU_ASSERT_EQUAL(ev[3].len, len[3]);

	CU_ASSERT_EQUAL(ev[4].family, MG_AF_INET6);
	CU_ASSERT_EQUAL(ev[4].src_id, ID_CLIENT);
	CU_ASSERT_EQUAL(ev[4].dst_id, ID_SERVER);
	CU_ASSERT_EQUAL(ev[4].src[15], 1);
	CU_ASSERT_EQUAL(ev[4].dst[15], 2);

	/* drops only */
	mg_dp_mon_arm(m, MG_DP_MON_DROPS, 1);
	classify_n(&f, 0, frames, len, 5, reasons);
	CU_ASSERT_EQUAL_FATAL(mg_dp_mon_pop(m, ev, 16), 2);
	CU_ASSERT_EQUAL(ev[0].reason, MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(ev[1].reason, MG_DROP_IP4_IHL);
	CU_ASSERT_EQUAL(ev[0].in_port, 0);

	/* mask zero, or no monitor at all: nothing, and the verdicts are unchanged */
	mg_dp_mon_arm(m, 0, 1);
	classify_n(&f, 0, frames, len, 5, reasons);
	CU_ASSERT_EQUAL(mg_dp_mon_pop(m, ev, 16), 0);
	f.env.mon = NULL;
	classify_n(&f, 0, frames, len, 5, reasons);
	CU_ASSERT_EQUAL(reasons[0], MG_DROP_NONE);
	CU_ASSERT_EQUAL(reasons[1], MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(mg_dp_mon_pop(m, ev, 16), 0);
	CU_ASSERT_EQUAL(mg_dp_mon_lost(m), 0);
	CU_ASSERT_STRING_EQUAL(mg_dp_event_by_name(MG_DP_BY_POLICY_EGRESS), "policy-egress");
	CU_ASSERT_STRING_EQUAL(mg_dp_event_by_name(99), "unknown");
	free(m);
	fixture_fini(&f);
}

/* With conntrack: a tracked reply is decided by conntrack, yet carries identities. */
static void
test_mon_events_conntrack(void)
{
	struct mg_dp_mon *m = mon_new(MG_DP_MON_ALL, 1);
	struct mg_dp_event ev[8];
	struct fixture f;
	uint8_t b[128];
	uint32_t n;

	ct_fixture(&f, 64);
	f.env.mon = m;
	n = tcp4(b, "10.99.0.1", "10.99.0.2", 40000, 8080, SYN);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	n = tcp4(b, "10.99.0.2", "10.99.0.1", 8080, 40000, SYN | ACK);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_NONE);
	n = tcp4(b, "10.99.0.2", "10.99.0.1", 8080, 40001, ACK); /* no such flow */
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_CT_TCP_NOT_SYN);
	CU_ASSERT_EQUAL_FATAL(mg_dp_mon_pop(m, ev, 8), 3);
	CU_ASSERT_EQUAL(ev[0].by, MG_DP_BY_POLICY);
	CU_ASSERT_EQUAL(ev[0].src_id, ID_CLIENT);
	CU_ASSERT_EQUAL(ev[0].dst_id, ID_SERVER);
	CU_ASSERT_EQUAL(ev[1].by, MG_DP_BY_CONNTRACK);
	CU_ASSERT_EQUAL(ev[1].reason, MG_DROP_NONE);
	CU_ASSERT_EQUAL(ev[1].src_id, ID_SERVER);
	CU_ASSERT_EQUAL(ev[1].dst_id, ID_CLIENT);
	CU_ASSERT_EQUAL(ev[1].sport, 8080);
	CU_ASSERT_EQUAL(ev[1].dport, 40000);
	CU_ASSERT_EQUAL(ev[2].by, MG_DP_BY_CONNTRACK);
	CU_ASSERT_EQUAL(ev[2].reason, MG_DROP_CT_TCP_NOT_SYN);
	CU_ASSERT_EQUAL(ev[2].src_id, ID_SERVER);
	CU_ASSERT_EQUAL(ev[2].tsc, 1000);
	free(m);
	ct_fini(&f);
}

/* 1 in N forwarded frames, across bursts; every drop. */
static void
test_mon_sampling(void)
{
	uint8_t frames[12][128], reasons[12];
	struct mg_dp_event ev[64];
	struct mg_dp_mon *m = mon_new(MG_DP_MON_VERDICTS, 4);
	uint32_t len[12];
	struct fixture f;
	unsigned i, got;

	fixture_init(&f, MG_ENFORCE_DEFAULT);
	f.env.mon = m;
	for (i = 0; i < 10; i++) /* 10 allowed ... */
		len[i] = ip4(frames[i], "10.99.0.1", "10.99.0.2", 6, 8080);
	for (; i < 12; i++) /* ... 2 denied */
		len[i] = ip4(frames[i], "10.99.0.1", "10.99.0.2", 6, 22);
	classify_n(&f, 0, frames, len, 12, reasons);
	classify_n(&f, 0, frames, len, 12, reasons);
	/* 20 forwarded: the 4th, 8th, ... 20th; the countdown spans bursts */
	got = mg_dp_mon_pop(m, ev, 64);
	CU_ASSERT_EQUAL(got, 5);
	for (i = 0; i < got; i++)
		CU_ASSERT_EQUAL(ev[i].reason, MG_DROP_NONE);

	mg_dp_mon_arm(m, MG_DP_MON_ALL, 3);
	classify_n(&f, 0, frames, len, 12, reasons); /* 3 of 10 + 2 drops */
	CU_ASSERT_EQUAL(mg_dp_mon_pop(m, ev, 64), 5);
	CU_ASSERT_EQUAL(ev[3].reason, MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(ev[4].reason, MG_DROP_POLICY_INGRESS);

	mg_dp_mon_arm(m, MG_DP_MON_VERDICTS, 0); /* 0 means every frame */
	classify_n(&f, 0, frames, len, 12, reasons);
	CU_ASSERT_EQUAL(mg_dp_mon_pop(m, ev, 64), 10);
	free(m);
	fixture_fini(&f);
}

/* The ring: full = lost, indexes wrap past 2^32, order kept. */
static void
test_mon_ring_wrap(void)
{
	struct mg_dp_mon *m = mon_new(MG_DP_MON_ALL, 1);
	struct mg_dp_event e, *out;
	struct fixture f;
	uint8_t b[128];
	unsigned i, got;
	uint32_t n;

	out = calloc(MG_DP_MON_RING, sizeof(*out));
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	memset(&e, 0, sizeof(e));
	m->head = m->tail = m->tail_cache = UINT32_MAX - 10;
	for (i = 0; i < MG_DP_MON_RING; i++) {
		e.tsc = i;
		CU_ASSERT_TRUE(mg_dp_mon_push(m, &e));
	}
	e.tsc = 99999;
	CU_ASSERT_FALSE(mg_dp_mon_push(m, &e));
	CU_ASSERT_EQUAL(mg_dp_mon_lost(m), 1);

	/* a drop while the ring is full: lost, and the verdict is unaffected */
	fixture_init(&f, MG_ENFORCE_DEFAULT);
	f.env.mon = m;
	n = ip4(b, "10.99.0.1", "10.99.0.2", 6, 22);
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL(mg_dp_mon_lost(m), 2);

	CU_ASSERT_EQUAL_FATAL(mg_dp_mon_pop(m, out, 100), 100);
	for (i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(out[i].tsc, i);
	for (i = 0; i < 100; i++) {
		e.tsc = MG_DP_MON_RING + i;
		CU_ASSERT_TRUE(mg_dp_mon_push(m, &e));
	}
	CU_ASSERT_FALSE(mg_dp_mon_push(m, &e));
	CU_ASSERT_EQUAL(mg_dp_mon_lost(m), 3);
	got = mg_dp_mon_pop(m, out, MG_DP_MON_RING);
	CU_ASSERT_EQUAL_FATAL(got, MG_DP_MON_RING);
	for (i = 0; i < got; i++)
		CU_ASSERT_EQUAL(out[i].tsc, 100 + i);
	CU_ASSERT(m->head < 10000); /* the indexes did wrap */
	CU_ASSERT_EQUAL(mg_dp_mon_pop(m, out, MG_DP_MON_RING), 0);

	/* room again: the next drop is recorded */
	f.env.now = 4242;
	CU_ASSERT_EQUAL(one(&f, b, n), MG_DROP_POLICY_INGRESS);
	CU_ASSERT_EQUAL_FATAL(mg_dp_mon_pop(m, out, 4), 1);
	CU_ASSERT_EQUAL(out[0].tsc, 4242);
	CU_ASSERT_EQUAL(mg_dp_mon_lost(m), 3);
	fixture_fini(&f);
	free(out);
	free(m);
}

#define SPSC_EVENTS 200000

static void *
spsc_producer(void *arg)
{
	struct mg_dp_mon *m = arg;
	struct mg_dp_event e;
	unsigned i;

	memset(&e, 0, sizeof(e));
	for (i = 0; i < SPSC_EVENTS; i++) {
		e.tsc = i;
		e.len = i * 7;
		mg_dp_mon_push(m, &e); /* lost when full: never waits */
	}
	return NULL;
}

/* One producer thread, one consumer: every event arrives once, in order, intact, or is lost. */
static void
test_mon_spsc_threads(void)
{
	struct mg_dp_mon *m = mon_new(MG_DP_MON_ALL, 1);
	struct mg_dp_event out[64];
	uint64_t seen = 0, last = 0, bad = 0;
	unsigned i, got;
	pthread_t th;
	bool first = true, done = false;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, spsc_producer, m), 0);
	while (!done) {
		got = mg_dp_mon_pop(m, out, 64);
		for (i = 0; i < got; i++) {
			if ((!first && out[i].tsc <= last) || out[i].len != out[i].tsc * 7)
				bad++;
			last = out[i].tsc;
			first = false;
		}
		seen += got;
		/* every event is popped or lost once the producer is through */
		if (got == 0 && seen + mg_dp_mon_lost(m) == SPSC_EVENTS)
			done = true;
	}
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(seen > 0);
	CU_ASSERT_EQUAL(seen + mg_dp_mon_lost(m), SPSC_EVENTS);
	CU_ASSERT_EQUAL(mg_dp_mon_pop(m, out, 64), 0);
	free(m);
}

/* ---- conntrack mailbox ---- */

struct mbox_worker {
	struct mg_dp_mbox mb;
	struct mg_ct *ct;
	int stop;
	unsigned served;
};

/* A stand-in worker loop: serves its mailbox between "bursts". */
static void *
mbox_worker_main(void *arg)
{
	struct mbox_worker *w = arg;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		if (mg_dp_mbox_pending(&w->mb) && mg_dp_mbox_serve(&w->mb, w->ct, 2, 1500, 1000))
			w->served++;
		sched_yield();
	}
	return NULL;
}

static struct mg_ct *
ct_with_flows(unsigned nflows)
{
	struct mg_ct_params cp = {.max_entries = 64, .max_frags = 4, .hz = 1000};
	struct mg_flow_key k;
	struct mg_ct_key key;
	struct mg_ct *ct;
	uint8_t dir;
	unsigned i;

	mg_ct_timeouts_default(&cp.timeouts);
	ct = mg_ct_create(&cp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ct);
	for (i = 0; i < nflows; i++) {
		memset(&k, 0, sizeof(k));
		k.family = MG_AF_INET;
		k.proto = 17;
		inet_pton(AF_INET, "10.99.0.1", k.src);
		inet_pton(AF_INET, "10.99.0.2", k.dst);
		k.sport = (uint16_t)(5000 + i);
		k.dport = 53;
		mg_ct_key_make(&k, 0, &key, &dir);
		CU_ASSERT_PTR_NOT_NULL(mg_ct_insert(ct, &key, dir, 0, 1, 1000));
	}
	return ct;
}

static void
test_mbox_threads(void)
{
	struct mbox_worker w;
	struct mg_dp_ct_entry out[10];
	uint64_t res;
	size_t written;
	pthread_t th;
	unsigned i, j;

	memset(&w, 0, sizeof(w));
	mg_dp_mbox_init(&w.mb);
	w.ct = ct_with_flows(5);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, mbox_worker_main, &w), 0);

	/* a buffer smaller than the table: 3 copied, 5 counted */
	CU_ASSERT_EQUAL(mg_dp_mbox_call(&w.mb, MG_DP_CT_LIST, out, 3, 1000, &written, &res), 0);
	CU_ASSERT_EQUAL(written, 3);
	CU_ASSERT_EQUAL(res, 5);
	CU_ASSERT_EQUAL(mg_dp_mbox_call(&w.mb, MG_DP_CT_LIST, out, 10, 1000, &written, &res), 0);
	CU_ASSERT_EQUAL_FATAL(written, 5);
	for (i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(out[i].worker, 2);
		CU_ASSERT_EQUAL(out[i].key.proto, 17);
		CU_ASSERT_EQUAL(out[i].state, MG_CT_OPEN);
		CU_ASSERT_EQUAL(out[i].gen, 1);
		/* UDP: 60 s from t=1000 ticks, listed at t=1500 (hz 1000) */
		CU_ASSERT_EQUAL(out[i].remaining_ms, 59500);
		for (j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(memcmp(&out[i].key, &out[j].key, sizeof(out[i].key)),
			                    0);
	}
	CU_ASSERT_EQUAL(mg_dp_mbox_call(&w.mb, MG_DP_CT_FLUSH, NULL, 0, 1000, NULL, &res), 0);
	CU_ASSERT_EQUAL(res, 5);
	CU_ASSERT_EQUAL(mg_dp_mbox_call(&w.mb, MG_DP_CT_LIST, out, 10, 1000, &written, &res), 0);
	CU_ASSERT_EQUAL(written, 0);
	CU_ASSERT_EQUAL(res, 0);
	CU_ASSERT_EQUAL(mg_dp_mbox_call(&w.mb, (enum mg_dp_ct_op)7, out, 10, 1000, NULL, NULL),
	                -EINVAL);

	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.served, 4);
	mg_ct_free(w.ct);
}

/* Nobody serves: the request is withdrawn, never performed later. */
static void
test_mbox_timeout(void)
{
	struct mg_dp_mbox mb;
	struct mg_dp_ct_entry out[4];
	struct mg_ct *ct = ct_with_flows(2);
	struct timespec t0, t1;
	uint64_t res = 123;
	size_t written = 0;
	long ms;

	mg_dp_mbox_init(&mb);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CU_ASSERT_EQUAL(mg_dp_mbox_call(&mb, MG_DP_CT_FLUSH, NULL, 0, 30, NULL, &res), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CU_ASSERT(ms >= 29);
	CU_ASSERT_EQUAL(res, 123); /* untouched */
	CU_ASSERT_EQUAL(mb.state, MG_DP_MBOX_IDLE);
	CU_ASSERT_FALSE(mg_dp_mbox_pending(&mb));
	CU_ASSERT_FALSE(mg_dp_mbox_serve(&mb, ct, 0, 1500, 1000)); /* withdrawn: no flush */
	CU_ASSERT_EQUAL(mg_dp_ct_exec(ct, MG_DP_CT_LIST, 0, 1500, 1000, NULL, 0, &written), 2);
	CU_ASSERT_EQUAL(written, 0);

	/* a request still pending (a second control thread): refused */
	mb.state = MG_DP_MBOX_POSTED;
	CU_ASSERT_EQUAL(mg_dp_mbox_call(&mb, MG_DP_CT_LIST, out, 4, 30, NULL, NULL), -EBUSY);
	/* ... and served by the worker on its next loop */
	mb.op = MG_DP_CT_LIST;
	mb.out = out;
	mb.max = 4;
	CU_ASSERT_TRUE(mg_dp_mbox_serve(&mb, ct, 1, 1500, 1000));
	CU_ASSERT_EQUAL(mb.state, MG_DP_MBOX_DONE);
	CU_ASSERT_EQUAL(mb.written, 2);
	CU_ASSERT_EQUAL(out[1].worker, 1);

	/* direct: flush a table nobody forwards with; expired entries are not counted */
	CU_ASSERT_EQUAL(mg_dp_ct_exec(ct, MG_DP_CT_LIST, 0, 1000 + 61000, 1000, NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(mg_dp_ct_exec(ct, MG_DP_CT_FLUSH, 0, 1500, 1000, NULL, 0, NULL), 2);
	CU_ASSERT_EQUAL(mg_dp_ct_exec(ct, MG_DP_CT_LIST, 0, 1500, 1000, NULL, 0, NULL), 0);
	mg_ct_free(ct);
}

static CU_TestInfo tests[] = {
        {"verdicts", test_verdicts},
        {"non_ip_and_malformed", test_non_ip_and_malformed},
        {"fragments", test_fragments},
        {"never_and_no_policy", test_never_and_no_policy},
        {"counters_add", test_counters_add},
        {"ct_handshake", test_ct_handshake},
        {"ct_same_burst", test_ct_same_burst},
        {"ct_echo_direction", test_ct_echo_direction},
        {"rss_key_symmetric", test_rss_key_symmetric},
        {"ct_recheck_after_change", test_ct_recheck_after_change},
        {"ct_icmp_related", test_ct_icmp_related},
        {"ct_fragments_and_full", test_ct_fragments_and_full},
        {"mon_events", test_mon_events},
        {"mon_events_conntrack", test_mon_events_conntrack},
        {"mon_sampling", test_mon_sampling},
        {"mon_ring_wrap", test_mon_ring_wrap},
        {"mon_spsc_threads", test_mon_spsc_threads},
        {"mbox_threads", test_mbox_threads},
        {"mbox_timeout", test_mbox_timeout},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("datapath", tests)
