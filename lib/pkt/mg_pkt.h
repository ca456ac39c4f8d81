/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame parser: Ethernet (with up to two VLAN tags, 802.1ad outer + 802.1Q
 * inner, or two 802.1Q), IPv4 (options, fragments), IPv6 (extension-header
 * chain), TCP, UDP, SCTP, ICMP and ICMPv6, into a flow key and header
 * offsets. Pure C over a byte buffer: no EAL, no mbuf, no allocation, so
 * it unit-tests and fuzzes on its own and runs unchanged on the data path.
 *
 * Every read is bounds-checked against the frame and against the IP
 * header's own length fields. A malformed frame yields exactly one drop
 * reason from mg_drop.h; a well-formed one yields MG_DROP_NONE and a
 * classification (IPv4, IPv6, ARP, IPv6 neighbour discovery, other).
 *
 * Multi-byte key fields are in host byte order, addresses in network order.
 */
#ifndef MG_PKT_H
#define MG_PKT_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_drop.h"

/** Most IPv6 extension headers walked before MG_DROP_IP6_EXT_CHAIN. */
#define MG_PKT_MAX_IP6_EXT 8

/** Ethertypes the parser knows. */
#define MG_ETH_P_IPV4 0x0800
#define MG_ETH_P_ARP 0x0806
#define MG_ETH_P_8021Q 0x8100
#define MG_ETH_P_8021AD 0x88a8
#define MG_ETH_P_IPV6 0x86dd

/** IP protocol numbers the parser knows. */
#define MG_IPPROTO_ICMP 1
#define MG_IPPROTO_TCP 6
#define MG_IPPROTO_UDP 17
#define MG_IPPROTO_ICMPV6 58
#define MG_IPPROTO_SCTP 132

/** What kind of frame it is (valid when the parser returns MG_DROP_NONE). */
enum mg_pkt_class {
	MG_PKT_IPV4,
	MG_PKT_IPV6,
	MG_PKT_ARP, /**< ARP: passes in wire mode */
	MG_PKT_ND,  /**< ICMPv6 router/neighbour solicitation/advertisement, redirect (133-137) */
	MG_PKT_NON_IP, /**< any other ethertype: datapath.non_ip decides */
};

/** Address family values of mg_flow_key.family (AF_INET / AF_INET6 numbers). */
#define MG_AF_INET 2
#define MG_AF_INET6 10

/** Fragment flags (mg_pkt_info.frag). */
#define MG_PKT_FRAG_FIRST 0x1    /**< first fragment: offset 0, more fragments set */
#define MG_PKT_FRAG_NONFIRST 0x2 /**< offset > 0: no layer-4 header in this packet */

/**
 * The flow key of an IP packet. For IPv4 only the first 4 bytes of each
 * address are used; the rest are zero so the key can be hashed or compared
 * as a whole.
 */
struct mg_flow_key {
	uint8_t src[16];
	uint8_t dst[16];
	uint8_t family;    /**< MG_AF_INET or MG_AF_INET6 */
	uint8_t proto;     /**< final IP protocol (after IPv6 extension headers) */
	uint16_t sport;    /**< TCP/UDP/SCTP source port; ICMP: echo identifier or 0 */
	uint16_t dport;    /**< TCP/UDP/SCTP destination port; 0 otherwise */
	uint8_t icmp_type; /**< ICMP/ICMPv6 type, 0 otherwise */
	uint8_t icmp_code; /**< ICMP/ICMPv6 code, 0 otherwise */
};

/** Everything the data path needs from one frame. */
struct mg_pkt_info {
	struct mg_flow_key key;
	enum mg_pkt_class cls;
	uint16_t ethertype; /**< innermost ethertype */
	uint16_t vlan[2];   /**< TCIs, outer first; valid for nvlan entries */
	uint8_t nvlan;
	uint8_t frag;      /**< MG_PKT_FRAG_* */
	uint8_t tcp_flags; /**< TCP flags byte (FIN 0x01 ... CWR 0x80) */
	uint8_t has_l4;    /**< layer-4 header present and parsed */
	uint16_t l3_off;   /**< offset of the IP (or ARP) header */
	uint16_t l4_off;   /**< offset of the layer-4 header (valid when has_l4) */
	uint16_t l3_len;   /**< IP packet length from its header (total or 40 + payload) */
	uint32_t ip_id;    /**< IPv4 id, or IPv6 fragment header identification */
	uint16_t frag_off; /**< fragment offset in bytes */
};

/**
 * Parse one frame.
 *
 * @param data  first byte of the Ethernet header
 * @param len   bytes available at @p data
 * @param info  filled on MG_DROP_NONE; partially filled otherwise
 * @return MG_DROP_NONE, or the drop reason of the first malformation found.
 *
 * Trailing bytes beyond the IP length (Ethernet padding) are allowed.
 * A first fragment too short to hold its layer-4 header is malformed
 * (the *_TRUNC reason of its protocol). A non-first fragment has
 * has_l4 = 0 and zero ports. Unknown IP protocols parse with has_l4 = 0.
 *
 * IPv6: ESP (50) and no-next-header (59) end the chain with key.proto set
 * and has_l4 = 0. A jumbogram (payload length 0 with hop-by-hop options)
 * is MG_DROP_IP6_LEN_FRAME: no Ethernet frame can carry one. Behind a
 * non-first IPv6 fragment header, key.proto is that header's next header.
 *
 * At most the first 65535 bytes are looked at (offsets are 16 bits, and so
 * is an mbuf segment's length): a longer frame parses like its first 64 KiB.
 * The whole of @p info is zeroed first, so fields not set are 0.
 */
enum mg_drop_reason mg_pkt_parse(const uint8_t *data, uint32_t len, struct mg_pkt_info *info);

/**
 * Lower-case name of the IP protocols the gateway knows ("tcp", "udp",
 * "sctp", "icmp", "icmpv6"), as the CLI and the JSON outputs spell them;
 * NULL for any other number.
 */
const char *mg_pkt_proto_name(uint8_t proto);

/** True for the ICMP errors that quote a packet: ICMP 3, 11, 12; ICMPv6 1, 2, 3, 4. */
static inline bool
mg_pkt_is_icmp_error(const struct mg_flow_key *k)
{
	if (k->proto == MG_IPPROTO_ICMP && k->family == MG_AF_INET)
		return k->icmp_type == 3 || k->icmp_type == 11 || k->icmp_type == 12;
	if (k->proto == MG_IPPROTO_ICMPV6 && k->family == MG_AF_INET6)
		return k->icmp_type >= 1 && k->icmp_type <= 4;
	return false;
}

/**
 * Parse the packet an ICMP error quotes (its IP header and at least the
 * first 8 bytes of its layer 4), as its sender sent it.
 *
 * @param data, len  the frame @p info was parsed from (MG_DROP_NONE)
 * @param inner      out: the quoted packet's flow key (ports, or the ICMP
 *                   type and echo identifier, as mg_pkt_parse fills them)
 * @return true when @p info is an ICMP error (mg_pkt_is_icmp_error) of the
 *   same family as its quote and the quote parses within the outer IP
 *   length; false otherwise. IPv6 quotes may carry up to
 *   MG_PKT_MAX_IP6_EXT extension headers; a quoted non-first fragment has
 *   no ports and does not parse.
 */
bool mg_pkt_icmp_inner(const uint8_t *data, uint32_t len, const struct mg_pkt_info *info,
                       struct mg_flow_key *inner);

/** Format @p key as "tcp 10.0.0.1:1234 -> 10.0.0.2:80" into @p buf. Returns @p buf. */
char *mg_flow_key_str(const struct mg_flow_key *key, char *buf, unsigned size);

#endif /* MG_PKT_H */
