/* lib/net/server.c: listeners — bind (port 0 picks a free one), accept in batches, and
 * hand each accepted socket to a new connection with the listener's handler. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_int.h"

#define ACCEPTS_PER_WAKE 64
#define BACKLOG 1024        /* Java's serverSocketBacklog */
#define ACCEPT_RETRY_MS 100 /* after running out of file descriptors */

/* The peer of an accepted socket as RocketMQ stores it; IPv4-mapped IPv6 becomes IPv4. */
void net_addr_from_sockaddr(const struct sockaddr_storage *ss, proto_addr_t *out) {
    memset(out, 0, sizeof *out);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(out->ip, &in->sin_addr, 4);
        out->ip_len = 4;
        out->port = ntohs(in->sin_port);
        return;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    out->port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        memcpy(out->ip, in6->sin6_addr.s6_addr + 12, 4);
        out->ip_len = 4;
    } else {
        memcpy(out->ip, in6->sin6_addr.s6_addr, 16);
        out->ip_len = 16;
    }
}

static void accept_one(net_server_t *s, int fd, const struct sockaddr_storage *ss) {
    net_conn_t *c = conn_new(s->loop, &s->h, true);
    net_addr_from_sockaddr(ss, &c->peer);
    proto_addr_format(&c->peer, c->peer_text, sizeof c->peer_text);
    conn_link(c);
    conn_start(c, fd);
}

static void retry_fire(net_loop_t *loop, tnode_t *n, rmq_err_t err) {
    net_server_t *s = container_of(n, net_server_t, retry);
    if (err == RMQ_OK && s->listening) loop_watch(loop, &s->io, EPOLLIN);
}

/* Out of descriptors: the pending connection would make epoll report the listener ready
 * forever, so stop watching it for a while instead of spinning. */
static void pause_accepting(net_server_t *s, int err) {
    cm_warn(&s->loop->log, "net: accept on port %d: %s; pausing %d ms", s->port, strerror(err),
            ACCEPT_RETRY_MS);
    loop_unwatch(s->loop, &s->io);
    tnode_arm(s->loop, &s->retry, cm_mono_ms() + ACCEPT_RETRY_MS);
}

void server_on_events(net_server_t *s, uint32_t events) {
    for (int i = 0; i < ACCEPTS_PER_WAKE && s->listening; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(s->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_one(s, fd, &ss);
            continue;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
            continue;
        case EAGAIN:
            return;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            pause_accepting(s, errno);
            return;
        default:
            cm_warn(&s->loop->log, "net: accept on port %d: %s", s->port, strerror(errno));
            return;
        }
    }
}

void server_close_fd(net_server_t *s) {
    if (!s->listening) return;
    net_loop_t *loop = s->loop;
    s->listening = false;
    if (s->prev)
        s->prev->next = s->next;
    else
        loop->servers = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    tnode_disarm(loop, &s->retry);
    loop_unwatch(loop, &s->io);
    close(s->io.fd);
    s->io.fd = -1;
}

/* ---------------------------------------------------------------- public */

static void server_start(void *arg) {
    net_server_t *s = arg;
    net_loop_t *loop = s->loop;
    if (loop->stopping || !loop_watch(loop, &s->io, EPOLLIN)) return;
    s->listening = true;
    s->next = loop->servers;
    if (loop->servers) loop->servers->prev = s;
    loop->servers = s;
}

/* A bound, listening socket for host:port; -1 with *err. */
static int bind_listen(net_loop_t *loop, const char *host, int port, int *bound, rmq_err_t *err) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (!host) host = "0.0.0.0";
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        len = sizeof *in;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof *in6;
    } else {
        *err = RMQ_ERR_INVALID_ARG;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        cm_error(&loop->log, "net: cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        *err = RMQ_ERR_NETWORK;
        return -1;
    }
    *bound = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
    return fd;
}

net_server_t *net_listen(net_loop_t *loop, const char *host, int port, const net_handler_t *h,
                         rmq_err_t *err) {
    rmq_err_t e = RMQ_OK;
    if (!loop || port < 0 || port > 65535) e = RMQ_ERR_INVALID_ARG;
    int bound = 0, fd = e == RMQ_OK ? bind_listen(loop, host, port, &bound, &e) : -1;
    if (fd < 0) {
        if (err) *err = e;
        return NULL;
    }
    net_server_t *s = cm_calloc(1, sizeof *s);
    s->io.kind = IO_SERVER;
    s->io.fd = fd;
    loop_ref(loop);
    s->loop = loop;
    if (h) s->h = *h;
    s->port = bound;
    tnode_init(&s->retry, retry_fire);
    e = loop_run_sync(loop, server_start, s);
    if (e == RMQ_OK && !s->listening) e = RMQ_ERR_SHUTDOWN;
    if (e != RMQ_OK) {
        close(fd);
        loop_unref(loop);
        cm_free(s);
        s = NULL;
    }
    if (err) *err = e;
    return s;
}

int net_server_port(const net_server_t *s) {
    return s->port;
}

void server_free(net_server_t *s) {
    loop_unref(s->loop);
    cm_free(s);
}

/* Freed at the end of the round: an event for s may be further down this epoll batch. */
static void server_close_posted(void *arg) {
    net_server_t *s = arg;
    server_close_fd(s);
    s->dead_next = s->loop->dead_servers;
    s->loop->dead_servers = s;
}

void net_server_close(net_server_t *s) {
    if (!s) return;
    /* Refused only after the loop's stop, which closed every listener already. */
    if (loop_run_sync(s->loop, server_close_posted, s) != RMQ_OK) server_free(s);
}
