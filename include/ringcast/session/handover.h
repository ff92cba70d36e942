/* SPDX-License-Identifier: MIT */
/* Seamless restarts: the control socket on which a running server hands its
 * listening sockets (SCM_RIGHTS) to a successor started with --takeover, the
 * small versioned exchange around it, and the start-up probe that refuses a
 * second server on an address already served. Closing a SO_REUSEPORT socket
 * resets the connections waiting in its queue; a socket handed over stays
 * open in the successor, so none is lost (docs/operations.md, "Restarts").
 * Main thread only. Every function returns 0 (or an fd) or a negative errno,
 * with a message in err where it takes one. */
#ifndef RINGCAST_SESSION_HANDOVER_H
#define RINGCAST_SESSION_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "ringcast/util/config.h"

/* The exchange's version: a successor and a server that differ refuse. */
#define RC_HANDOVER_VERSION 1
/* How long either side waits for the other's next message. */
#define RC_HANDOVER_TIMEOUT_MS 5000

struct rc_handover_name {
  struct sockaddr_un sun;
  socklen_t len;
  bool abstract;  /* Linux's abstract namespace: no file, gone with the socket */
  char text[112]; /* for messages: "@ringcast:127.0.0.1:8080" or the path */
};

/* The control socket of a server configured as cfg: --control-socket, or an
 * abstract name made from the first --listen address (its canonical form, so
 * localhost:8080 and 127.0.0.1:8080 name the same). -EINVAL when there is none
 * (port 0 and no --control-socket: nothing could find it). */
int rc_handover_name(const struct rc_config *cfg, struct rc_handover_name *out);
/* The abstract name a server whose first --listen is a would use. */
int rc_handover_name_of(const struct rc_listen_addr *a, struct rc_handover_name *out);

/* ---- the running server ---- */

/* Listens on the control socket (non-blocking). A path left by a server that
 * died is replaced; one another server answers on is -EADDRINUSE. */
int rc_handover_listen(const struct rc_handover_name *name, char *err, size_t err_size);
/* Closes the control socket and removes its path, if it has one. */
void rc_handover_unlisten(int fd, const struct rc_handover_name *name);
/* Accepts one successor (blocking from here on, with timeouts) and checks its
 * credentials: only our own user or root may take the sockets. A connection
 * refused is closed and logged (-EPERM); -EAGAIN when none was waiting. */
int rc_handover_accept(int lfd, pid_t *peer_pid);
/* Reads the successor's hello and sends it the n listening sockets in fds
 * (the successor tells them apart by their addresses). */
int rc_handover_offer(int conn, const int *fds, unsigned n, char *err, size_t err_size);
/* Refuses a successor with a reason it prints. */
void rc_handover_refuse(int conn, const char *reason);
/* After the offer, once conn is readable: 0 when the successor says it is
 * accepting on the sockets; -EPIPE when it went away first (it died: the
 * takeover failed and this server keeps serving), another errno otherwise. */
int rc_handover_read_done(int conn);
/* Confirms the end of the exchange (after the control socket is closed, so the
 * successor can listen on the same name). */
int rc_handover_confirm(int conn);

/* Tells the successor every listening socket of ours is closed: no request
 * of ours waits on them any more (see rc_server_repoll_accepts). */
int rc_handover_released(int conn);

/* ---- the successor (--takeover) ---- */

/* Connects to the running server and checks it runs as our user (or root).
 * Returns the connection; *peer_pid is the server's pid. */
int rc_handover_connect(const struct rc_handover_name *name, pid_t *peer_pid, char *err,
                        size_t err_size);
/* Says hello and receives the listening sockets (close-on-exec). */
int rc_handover_receive(int conn, int *fds, unsigned max, unsigned *n, char *err, size_t err_size);
/* Tells the server we accept on the sockets and waits for its confirmation.
 * -ETIMEDOUT or -EPIPE when it does not come: the server may not have let go
 * of the control socket's name. */
int rc_handover_finish(int conn, char *err, size_t err_size);
/* After finish, once conn is readable: 0 when the old server says it closed
 * its copies of the sockets, -EPIPE when it went away (which closes them
 * too), another errno otherwise. */
int rc_handover_read_released(int conn);
/* Which address of cfg a received listening socket serves: an index in
 * cfg->listen, cfg->n_listen for --admin-listen, or -ENOENT when it serves none
 * (or is not a listening TCP socket). */
int rc_handover_match(const struct rc_config *cfg, int fd);

/* ---- refusing a second server ---- */

/* Whether someone listens on a: binds a socket without SO_REUSEPORT (which a
 * SO_REUSEPORT listener would otherwise silently share) and with SO_REUSEADDR
 * (so connections in TIME_WAIT do not count). 0: free; -EADDRINUSE: served. */
int rc_handover_probe(const struct rc_listen_addr *a);
/* The pid of the ringcast answering on name, or 0 when none does. */
pid_t rc_handover_owner(const struct rc_handover_name *name);

#endif
