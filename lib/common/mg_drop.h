/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one table of drop reasons. Every frame the gateway does not forward
 * is counted under exactly one of these. The X-macro yields the enum, the
 * metric label (snake_case, stable: dashboards depend on it) and the text
 * the CLI prints. Add new reasons at the end of their group; never reuse a
 * label for a different meaning.
 */
#ifndef MG_DROP_H
#define MG_DROP_H

/* X(ENUM_SUFFIX, "metric_label", "human description") */
#define MG_DROP_REASONS(X)                                                                       \
	X(NONE, "none", "not dropped")                                                           \
	/* layer 2 */                                                                            \
	X(L2_TRUNC, "l2_truncated", "frame shorter than an Ethernet header")                     \
	X(VLAN_TRUNC, "vlan_truncated", "frame ends inside a VLAN tag")                          \
	X(VLAN_DEPTH, "vlan_too_many_tags", "more than two VLAN tags (802.1ad + 802.1Q)")        \
	X(NON_IP, "non_ip", "non-IP frame and datapath.non_ip is drop")                          \
	/* IPv4 */                                                                               \
	X(IP4_TRUNC, "ipv4_truncated", "frame ends inside the IPv4 header")                      \
	X(IP4_VERSION, "ipv4_bad_version", "IPv4 ethertype but version is not 4")                \
	X(IP4_IHL, "ipv4_bad_ihl", "IPv4 IHL below 5")                                           \
	X(IP4_OPT_TRUNC, "ipv4_options_truncated", "IPv4 options run past the frame")            \
	X(IP4_TOTLEN, "ipv4_bad_total_length", "IPv4 total length shorter than its header")      \
	X(IP4_LEN_FRAME, "ipv4_length_beyond_frame", "IPv4 total length beyond the frame")       \
	/* IPv6 */                                                                               \
	X(IP6_TRUNC, "ipv6_truncated", "frame ends inside the IPv6 header")                      \
	X(IP6_VERSION, "ipv6_bad_version", "IPv6 ethertype but version is not 6")                \
	X(IP6_LEN_FRAME, "ipv6_length_beyond_frame", "IPv6 payload length beyond the frame")     \
	X(IP6_EXT_TRUNC, "ipv6_ext_truncated", "an IPv6 extension header runs past the packet")  \
	X(IP6_EXT_CHAIN, "ipv6_ext_chain_too_long", "more IPv6 extension headers than allowed")  \
	X(IP6_EXT_ORDER, "ipv6_ext_bad_order", "hop-by-hop options not first in the chain")      \
	/* layer 4 */                                                                            \
	X(TCP_TRUNC, "tcp_truncated", "packet ends inside the TCP header")                       \
	X(TCP_DOFF, "tcp_bad_data_offset", "TCP data offset below 5 or past the packet")         \
	X(UDP_TRUNC, "udp_truncated", "packet ends inside the UDP header")                       \
	X(SCTP_TRUNC, "sctp_truncated", "packet ends inside the SCTP common header")             \
	X(ICMP_TRUNC, "icmp_truncated", "packet ends inside the ICMP header")                    \
	X(ICMP6_TRUNC, "icmpv6_truncated", "packet ends inside the ICMPv6 header")               \
	X(FRAG_UNTRACKED, "fragment_untracked",                                                  \
	  "non-first fragment whose first fragment is unknown")                                  \
	/* policy and forwarding */                                                              \
	X(POLICY_EGRESS, "policy_denied_egress", "denied by the source's egress policy")         \
	X(POLICY_INGRESS, "policy_denied_ingress", "denied by the destination's ingress policy") \
	X(TX_FULL, "tx_queue_full", "the peer port's transmit queue was full")                   \
	/* connection tracking */                                                                \
	X(CT_TCP_NOT_SYN, "ct_tcp_not_syn",                                                      \
	  "TCP packet of no tracked connection that cannot open one (no SYN)")                   \
	X(CT_FULL, "ct_table_full", "new flow allowed but the conntrack table is full")          \
	X(ICMP_UNRELATED, "icmp_error_unrelated",                                                \
	  "ICMP error whose inner header belongs to no tracked flow")                            \
	X(FRAG_FULL, "fragment_table_full", "first fragment allowed but the fragment table is full")

enum mg_drop_reason {
#define MG_DROP_ENUM(e, label, desc) MG_DROP_##e,
	MG_DROP_REASONS(MG_DROP_ENUM)
#undef MG_DROP_ENUM
	MG_DROP__MAX
};

/** Metric label of @p r ("ipv4_bad_ihl"), or "unknown". */
const char *mg_drop_label(unsigned r);

/** Human description of @p r, or "unknown drop reason". */
const char *mg_drop_desc(unsigned r);

#endif /* MG_DROP_H */
