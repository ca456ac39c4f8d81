/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket: the daemon's server side and the client side that
 * meshgatectl uses. docs/ctl-protocol.md is the contract.
 *
 * Protocol. A unix stream socket carrying newline-delimited JSON, one
 * object per line, in the family of HAProxy's runtime API and Open
 * vSwitch's unixctl (line-oriented, scriptable with socat) with
 * cilium-dbg's habit of JSON everywhere:
 *
 *   request   {"command":"identity.get","args":{...},"id":<any>}
 *   reply     {"ok":true,"result":<json>,"id":<any>}
 *             {"ok":false,"error":"message","code":"EINVAL","id":<any>}
 *
 * "args" (an object) and "id" (echoed back as given) are optional; other
 * keys are refused. A connection may carry several requests; they are
 * answered in order. "code" is the errno name (EINVAL, EPERM, ENOENT,
 * E2BIG, EBUSY, ...). A connection that subscribed to a stream also
 * receives lines {"stream":"monitor","event":<json>} and, after events
 * were lost because it read too slowly, {"stream":"monitor","dropped":N}.
 *
 * Security. The socket is created mode 0660 (owner the daemon's user,
 * group the configured one): whoever can connect may run the read-only
 * commands. Commands flagged mutating need more: the peer (SO_PEERCRED)
 * is root, or the admin group is its primary group or one of its
 * supplementary groups (getgrouplist of the uid's user name).
 *
 * Bounds. A request line is at most max_request bytes (more: an E2BIG
 * reply, then the connection is closed); at most max_clients connections
 * (one more gets an EBUSY reply and is closed), of which the last
 * admin_reserve are kept for peers allowed mutating commands, so that
 * readers cannot lock the administrators out; a connection that makes no
 * progress for idle_ms is closed (subscribers excepted). Replies go
 * through a per-connection output buffer: while more than max_output
 * bytes wait in it, the connection's further requests are not read
 * (back-pressure), so a client that does not read stalls itself and ends
 * at the idle timeout; a subscriber's events are dropped and counted
 * instead, and a subscriber that reads nothing of its waiting output for
 * idle_ms is closed. A request the client ends with the end of its
 * stream (shutdown of its sending side) instead of a newline is answered
 * too. Nothing a client does blocks the server.
 *
 * Threading: a server and everything given to it belong to one thread
 * (the control thread); no function here is for the data path. The
 * client functions are blocking and thread-safe.
 */
#ifndef MG_CTL_H
#define MG_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mg_common.h"

#define MG_CTL_DEFAULT_MAX_CLIENTS 16
#define MG_CTL_DEFAULT_MAX_REQUEST 65536
#define MG_CTL_DEFAULT_IDLE_MS 60000
#define MG_CTL_DEFAULT_MAX_OUTPUT (1u << 20)
#define MG_CTL_NAME_MAX 64 /**< command and stream names, with the NUL */

struct mg_ctl_server;
struct mg_ctl_conn;

/**
 * What mg_ctl_server_create() needs. Zero numbers take the defaults above,
 * except admin_reserve: of max_clients, how many only peers allowed
 * mutating commands (root, admin_group) may take; the others are refused
 * once max_clients - admin_reserve connections are open. 0 keeps none;
 * it must be below max_clients.
 */
struct mg_ctl_params {
	const char *path;  /**< socket path, < 108 bytes */
	const char *group; /**< group of the socket (who may connect), or NULL: the daemon's */
	const char *admin_group; /**< group allowed mutating commands besides root, or NULL */
	unsigned max_clients;    /**< connections at once */
	unsigned admin_reserve;  /**< of max_clients, for root and admin_group only; 0: none */
	size_t max_request;      /**< bytes of one request line, newline excluded */
	unsigned idle_ms;        /**< close a connection idle this long; UINT32_MAX: never */
	size_t max_output;       /**< bytes waiting for a slow reader before back-pressure */
};

/** The peer of a connection, from SO_PEERCRED at connect time. */
struct mg_ctl_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/**
 * A command handler. @p args is the request's "args" object (an empty
 * object when absent), borrowed. On success return 0 and optionally set
 * *@p result to a new reference (absent: the reply's result is null). On
 * failure return a negative errno and fill @p err: the reply carries
 * err->msg (or strerror when empty) and the errno's name as "code".
 * The handler runs on the server's thread and must not block.
 */
typedef int mg_ctl_handler_t(void *arg, struct mg_ctl_conn *conn, const json_t *args,
                             json_t **result, struct mg_error *err);

/** One command of the table. */
struct mg_ctl_command {
	const char *name;    /**< "identity.get": [a-z0-9._-], < MG_CTL_NAME_MAX */
	const char *summary; /**< one line for `help` */
	bool mutating;       /**< changes state: root or the admin group only */
	mg_ctl_handler_t *fn;
	void *arg; /**< given to fn */
};

/** Counters of a server since its creation (clients: now). */
struct mg_ctl_stats {
	uint64_t accepted;        /**< connections accepted (refused ones included) */
	uint64_t clients;         /**< connections open now */
	uint64_t requests;        /**< request lines handled */
	uint64_t errors;          /**< error replies sent (denied ones included) */
	uint64_t denied;          /**< mutating commands refused with EPERM */
	uint64_t refused_busy;    /**< connections refused: max_clients, or the admin reserve */
	uint64_t closed_oversize; /**< closed for a request over max_request */
	uint64_t closed_idle;     /**< closed by the idle timeout, output drained */
	uint64_t closed_slow;     /**< closed by the idle timeout with output unread */
	uint64_t events;          /**< event lines queued to subscribers */
	uint64_t events_dropped;  /**< events lost to slow subscribers */
	uint64_t closed_stuck;    /**< subscribers closed: read nothing waiting for idle_ms */
};

/* ---- server ---- */

/**
 * Create the server and its listening socket at params->path.
 *
 * The socket's folder is created (mode 0750, group params->group) when
 * missing; its parent must exist. An existing file at the path is
 * handled as a daemon should: a socket another process listens on is
 * left alone and the call fails with EADDRINUSE; a socket nobody listens
 * on (left by a crash) is removed and replaced; anything else is left
 * alone and the call fails with EEXIST. The socket is chowned to the
 * group and chmod 0660 before listen(), so no connection is ever
 * accepted with looser permissions. The built-in command `help` is
 * registered.
 *
 * @return the server, or NULL with errno set and @p err filled:
 *   EINVAL (bad params; admin_reserve not below max_clients),
 *   ENAMETOOLONG, ENOENT (unknown group, or no parent folder), EADDRINUSE,
 *   EEXIST, ENOMEM, or a socket call's errno.
 */
struct mg_ctl_server *mg_ctl_server_create(const struct mg_ctl_params *params,
                                           struct mg_error *err);

/** Close every connection and the socket, remove the socket file. NULL is fine. */
void mg_ctl_server_free(struct mg_ctl_server *srv);

/**
 * Add @p cmd to the command table. The struct is copied; its strings
 * must outlive the server (string literals).
 * @return 0, -EINVAL (bad name or no fn), -EEXIST (name taken), -ENOMEM.
 */
int mg_ctl_register(struct mg_ctl_server *srv, const struct mg_ctl_command *cmd);

/**
 * Register @p n commands of @p cmds (one area's table), each with @p arg
 * as its handler's argument (their own arg is ignored).
 * @return 0, or the first error of mg_ctl_register with @p err saying
 *   which command.
 */
int mg_ctl_register_table(struct mg_ctl_server *srv, const struct mg_ctl_command *cmds, size_t n,
                          void *arg, struct mg_error *err);

/**
 * One step of the server: poll() the listener and the connections for
 * at most @p timeout_ms (0: do not wait; negative: until something
 * happens, or the next idle deadline), accept, read, run the complete
 * requests, write what the sockets take, close idle connections.
 * @return the number of connections that saw activity, or a negative
 *   errno (poll failed; EINTR is reported as 0).
 */
int mg_ctl_server_poll(struct mg_ctl_server *srv, int timeout_ms);

/** Copy the server's counters to @p st. */
void mg_ctl_server_stats(const struct mg_ctl_server *srv, struct mg_ctl_stats *st);

/** The socket path the server listens on. */
const char *mg_ctl_server_path(const struct mg_ctl_server *srv);

/* ---- connections and streams ---- */

/** The peer of @p conn (valid during the handler call). */
const struct mg_ctl_peer *mg_ctl_conn_peer(const struct mg_ctl_conn *conn);

/**
 * Make @p conn (the connection whose request is being handled) a
 * subscriber of @p stream: after the reply, it receives the events
 * published on @p stream whose kinds intersect @p kinds (a bit mask;
 * its meaning belongs to the stream). A subscriber is exempt from the
 * idle timeout and stays until the client closes, unless output waits
 * for it and it reads none of it for idle_ms (then it is closed and
 * counted in closed_stuck). Subscribing again replaces the stream and
 * mask.
 * @return 0, or -EINVAL (bad name or empty mask).
 */
int mg_ctl_conn_subscribe(struct mg_ctl_conn *conn, const char *stream, uint64_t kinds);

/** What a handler returns after mg_ctl_conn_defer(): the reply comes later. */
#define MG_CTL_LATER 1

/**
 * In a handler: answer this request later, with mg_ctl_server_reply() and
 * the ticket returned here, from the server's thread; the handler then
 * returns MG_CTL_LATER. Until the reply is queued the connection's next
 * requests wait (replies stay in request order), it is not closed as
 * idle, and a client that shut down its side still gets it. A handler
 * that defers and then returns anything else answers now, as usual.
 * @return the ticket (never 0).
 */
uint64_t mg_ctl_conn_defer(struct mg_ctl_conn *conn);

/**
 * Queue the reply owed under @p ticket: @p result (a borrowed reference;
 * NULL: null) when @p rc is 0, else the error @p rc with @p msg (NULL or
 * "": strerror). Server thread only.
 * A connection whose client closed it is kept until its reply: the
 * reply then finds it gone or cannot be sent, and it is released.
 * @return 0 (queued), or -ENOENT when no connection owes @p ticket.
 */
int mg_ctl_server_reply(struct mg_ctl_server *srv, uint64_t ticket, int rc, json_t *result,
                        const char *msg);

/**
 * Does any connection subscribe to @p stream with a mask meeting
 * @p kinds? Lets the publisher skip building events nobody reads.
 */
bool mg_ctl_server_has_subscribers(const struct mg_ctl_server *srv, const char *stream,
                                   uint64_t kinds);

/**
 * Queue the line {"stream":@p stream,"event":@p event} to every
 * subscriber of @p stream whose mask meets @p kinds. A subscriber with
 * more than max_output bytes unread loses the event (counted; it is told
 * {"stream":...,"dropped":N} before its next delivered line). Never
 * blocks. @p event is borrowed.
 * @return the number of subscribers the event was queued to, or
 *   -ENOMEM / -EINVAL (event not serialisable).
 */
int mg_ctl_server_publish(struct mg_ctl_server *srv, const char *stream, const json_t *event,
                          uint64_t kinds);

/** Builds an event for mg_ctl_server_publish_fn(): a new reference, or NULL (no memory). */
typedef json_t *mg_ctl_event_make_fn(void *arg);

/**
 * As mg_ctl_server_publish(), but the event is built by @p make (called
 * once, with @p arg) only when a subscriber has room for it: when every
 * subscriber it is for is full, each loses it (counted as above) and
 * nothing is built or encoded, so a flood of events costs little while
 * nobody reads. The reference @p make returns is released here.
 * @return the number of subscribers the event was queued to (0 when
 *   nobody could take it), or -EINVAL (bad name, no @p make, event not
 *   serialisable) / -ENOMEM (@p make returned NULL); on these errors the
 *   subscribers that had room lose the event.
 */
int mg_ctl_server_publish_fn(struct mg_ctl_server *srv, const char *stream, uint64_t kinds,
                             mg_ctl_event_make_fn *make, void *arg);

/**
 * Tell the subscribers of @p stream whose mask meets @p kinds that @p n
 * events were lost before they reached the server (the producer's queue
 * was full): they are added to each one's next {"stream":..,"dropped":N}
 * line. Not counted in events_dropped (the producer counts them).
 * @return the number of subscribers told, or -EINVAL (bad name).
 */
int mg_ctl_server_stream_lost(struct mg_ctl_server *srv, const char *stream, uint64_t kinds,
                              uint64_t n);

/* ---- client ---- */

/**
 * Connect to the server at @p path, send one request and wait for its
 * reply, in at most @p timeout_ms (0: no limit).
 *
 * @p args is borrowed (the caller still owns it); NULL sends no args.
 * On success return 0 and, when @p result is not NULL, set *@p result to
 * a new reference to the reply's result. An error reply becomes the
 * negative errno its code names (-EIO when unknown) with err->msg set to
 * the server's message; that includes the reply of a server that refused
 * the connection and closed it before the request was sent (EBUSY: "too
 * many clients ..."), rather than the failed send's EPIPE. Failing to
 * connect gives a message naming the path and asking whether meshgate
 * runs (ENOENT, ECONNREFUSED) or whether the user is in the socket's
 * group (EACCES).
 * @return 0 or a negative errno (-ETIMEDOUT, -EPROTO for a reply that is
 *   not the protocol) with @p err filled.
 */
int mg_ctl_call(const char *path, const char *command, json_t *args, unsigned timeout_ms,
                json_t **result, struct mg_error *err);

/** Called for each stream line; @p line is borrowed. Non-zero stops the stream. */
typedef int mg_ctl_event_fn(void *arg, json_t *line);

/**
 * As mg_ctl_call() for a command that subscribes its connection (such
 * as "monitor"): after the ok reply (within @p timeout_ms), every
 * following line, {"stream":..,"event":..} or {"stream":..,"dropped":N},
 * goes to @p on_event, without time limit.
 * @return 0 when @p on_event returned a positive value, its value when
 *   negative, -ECONNRESET when the server closed the connection, or the
 *   error of the request as mg_ctl_call() returns it.
 */
int mg_ctl_stream(const char *path, const char *command, json_t *args, unsigned timeout_ms,
                  mg_ctl_event_fn *on_event, void *arg, struct mg_error *err);

/** The errno named @p code ("EPERM" -> EPERM), or 0 when unknown. */
int mg_ctl_errno_from_name(const char *code);

#endif /* MG_CTL_H */
