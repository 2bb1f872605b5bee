/* lib/net/tcp.c: the plain TCP transport — read(2) and sendmsg(2) on the socket, no
 * handshake. The connection code reaches the socket only through transport.h, so TLS can
 * take this file's place per connection. */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cm.h"
#include "transport.h"

typedef struct tcp_state {
    int fd;
    int err; /* errno of the last failure */
} tcp_state_t;

static bool tcp_open(const net_transport_t *t, int fd, bool server, void **state) {
    tcp_state_t *s = cm_malloc(sizeof *s);
    s->fd = fd;
    s->err = 0;
    *state = s;
    return true;
}

static ssize_t tcp_read(void *state, void *buf, size_t len) {
    tcp_state_t *s = state;
    for (;;) {
        ssize_t n = read(s->fd, buf, len);
        if (n > 0) return n;
        if (n == 0) return NET_IO_EOF;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return NET_IO_WANT_READ;
        s->err = errno;
        return NET_IO_ERROR;
    }
}

static ssize_t tcp_writev(void *state, const struct iovec *iov, int iovcnt) {
    tcp_state_t *s = state;
    for (;;) {
        /* sendmsg rather than writev: MSG_NOSIGNAL, so a peer that went away is an EPIPE
         * here and not a SIGPIPE that kills the process. */
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return NET_IO_WANT_WRITE;
        s->err = errno;
        return NET_IO_ERROR;
    }
}

static void tcp_describe(void *state, char *dst, size_t size) {
    tcp_state_t *s = state;
    snprintf(dst, size, "%s", s->err ? strerror(s->err) : "no error");
}

static void tcp_close(void *state) {
    cm_free(state);
}

const net_transport_t net_tcp_transport = {
    .name = "tcp",
    .open = tcp_open,
    .handshake = NULL,
    .read = tcp_read,
    .writev = tcp_writev,
    .has_pending = NULL,
    .describe = tcp_describe,
    .close = tcp_close,
    .ctx = NULL,
};
