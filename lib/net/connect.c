/* lib/net/connect.c: outgoing connections — address parsing (RocketMQ's "ip:port" and
 * "[v6]:port", host names resolved on the caller's thread), the non-blocking connect(2)
 * on the loop thread, and its deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_int.h"

/* "host:port" with a host name: resolved with getaddrinfo (blocking). */
static rmq_err_t resolve(const char *addr, proto_addr_t *out) {
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || colon[1] == '\0') return RMQ_ERR_INVALID_ARG;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) return RMQ_ERR_INVALID_ARG;
    char *host = cm_strndup(addr, (size_t)(colon - addr));
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    cm_free(host);
    if (rc != 0 || !res) return RMQ_ERR_NETWORK;
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    net_addr_from_sockaddr(&ss, out);
    out->port = (int32_t)port;
    return RMQ_OK;
}

static socklen_t to_sockaddr(const proto_addr_t *a, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (a->ip_len == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        return sizeof *in;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)a->port);
    memcpy(&in6->sin6_addr, a->ip, 16);
    return sizeof *in6;
}

static void connect_failed(net_conn_t *c, int err) {
    cm_info(&c->loop->log, "net: connect to %s failed: %s", c->peer_text, strerror(err));
    conn_close(c, RMQ_ERR_NETWORK);
}

/* Runs on the loop thread with the reference net_connect gave the loop. */
static void start_connect(void *arg) {
    net_conn_t *c = arg;
    net_loop_t *loop = c->loop;
    if (atomic_load(&c->state) == CONN_CLOSED) return; /* closed by its owner meanwhile */
    conn_link(c);
    if (loop->stopping) {
        conn_close(c, RMQ_ERR_SHUTDOWN);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t len = to_sockaddr(&c->peer, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(c, errno);
        return;
    }
    c->io.fd = fd;
    tnode_arm(loop, &c->idle_timer, cm_mono_ms() + c->connect_timeout_ms);
    int rc;
    while ((rc = connect(fd, (struct sockaddr *)&ss, len)) != 0 && errno == EINTR) {
    }
    if (rc == 0) {
        conn_start(c, fd);
    } else if (errno == EINPROGRESS) {
        if (!loop_watch(loop, &c->io, EPOLLOUT)) {
            conn_close(c, RMQ_ERR_NETWORK);
            return;
        }
        c->watched = true;
        c->events = EPOLLOUT;
    } else {
        connect_failed(c, errno);
    }
}

void connect_on_events(net_conn_t *c, uint32_t events) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
        connect_failed(c, err);
        return;
    }
    if (!(events & EPOLLOUT)) return; /* not finished yet */
    conn_start(c, c->io.fd);
}

net_conn_t *net_connect(net_loop_t *loop, const char *addr, const net_handler_t *h,
                        int64_t timeout_ms, rmq_err_t *err) {
    proto_addr_t peer;
    rmq_err_t e = !loop || !addr ? RMQ_ERR_INVALID_ARG : proto_addr_parse(addr, &peer);
    if (e == RMQ_ERR_MALFORMED) e = resolve(addr, &peer);
    if (e == RMQ_OK && peer.port == 0) e = RMQ_ERR_INVALID_ARG;
    if (e != RMQ_OK) {
        if (loop && e == RMQ_ERR_NETWORK) cm_info(&loop->log, "net: cannot resolve %s", addr);
        if (err) *err = e;
        return NULL;
    }
    net_conn_t *c = conn_new(loop, h, false);
    c->peer = peer;
    proto_addr_format(&peer, c->peer_text, sizeof c->peer_text);
    c->connect_timeout_ms = timeout_ms > 0 ? timeout_ms : NET_DEFAULT_CONNECT_TIMEOUT_MS;
    net_conn_ref(c); /* one for the caller, one for the loop */
    e = net_loop_post(loop, start_connect, c);
    if (e != RMQ_OK) {
        atomic_store(&c->state, CONN_CLOSED);
        net_conn_unref(c);
        net_conn_unref(c);
        c = NULL;
    }
    if (err) *err = e;
    return c;
}
