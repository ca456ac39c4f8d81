/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel's drop counts of net_af_packet ports: frames the socket's
 * receive ring had no room for (the worker fell behind), which DPDK
 * 22.11's driver does not report as imissed. lib/datapath adds them to the
 * port's rx_missed (mg_datapath_port_hw).
 */
#ifndef MG_DP_KSTATS_H
#define MG_DP_KSTATS_H

/** Sockets remembered per port: one per queue. */
#define MG_DP_MAX_KSOCKS 16

#include <stdint.h>

/** The AF_PACKET sockets of this process bound to interface @p ifindex: at most @p max
 *  descriptors into @p fds; their number. */
unsigned mg_dp_packet_socks(int ifindex, int *fds, unsigned max);

/** Frames the kernel dropped on sockets @p fds since the previous call (PACKET_STATISTICS
 *  resets on reading). */
uint64_t mg_dp_packet_drops(const int *fds, unsigned n);

#endif
