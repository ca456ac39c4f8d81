/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The systemd readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram to $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET) every
 * call is a no-op, so the daemon calls it unconditionally.
 */
#ifndef MG_NOTIFY_H
#define MG_NOTIFY_H

/**
 * Send @p state ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...",
 * several separated by '\n') to the service manager.
 * @return 1 sent, 0 not under a service manager, negative errno on failure.
 */
int mg_notify(const char *state);

#endif /* MG_NOTIFY_H */
