/* lib/net/transport.h (private): how a connection moves bytes over its socket. Plain TCP
 * (tcp.c) is one implementation; TLS (OpenSSL) will be another, chosen in net_opts_t, with
 * no change to the connection code or to net's callers. Connections call only these
 * operations on their socket after it is connected or accepted.
 *
 * Results of read, writev and handshake: a byte count >= 0 (handshake: NET_IO_DONE) or one
 * of the NET_IO_* codes. A TLS read may need the socket writable (renegotiation) and a TLS
 * write readable; the connection then waits for that readiness before calling again. */
#ifndef RMQ_NET_TRANSPORT_H
#define RMQ_NET_TRANSPORT_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

enum net_io {
    NET_IO_DONE = 0,        /* handshake finished */
    NET_IO_EOF = -1,        /* the peer closed its side (read only) */
    NET_IO_WANT_READ = -2,  /* call again once the socket is readable */
    NET_IO_WANT_WRITE = -3, /* call again once the socket is writable */
    NET_IO_ERROR = -4       /* the connection is broken (errno or the library's error kept
                               for describe()) */
};

typedef struct net_transport {
    const char *name; /* "tcp", "tls": appears in log lines */
    /* Builds the per-connection state around a connected or accepted non-blocking socket.
     * False if it cannot (the socket is then closed by the caller). */
    bool (*open)(const struct net_transport *t, int fd, bool server, void **state);
    /* Optional: advances the handshake. NET_IO_DONE, NET_IO_WANT_READ/WRITE or
     * NET_IO_ERROR. Connections send and receive frames only after NET_IO_DONE. */
    int (*handshake)(void *state);
    /* Reads up to len bytes: > 0 bytes, NET_IO_EOF, NET_IO_WANT_READ/WRITE, NET_IO_ERROR. */
    ssize_t (*read)(void *state, void *buf, size_t len);
    /* Writes from iov: >= 0 bytes (possibly fewer than offered), NET_IO_WANT_READ/WRITE,
     * NET_IO_ERROR. */
    ssize_t (*writev)(void *state, const struct iovec *iov, int iovcnt);
    /* Optional: true when the transport holds already-received bytes that a read would
     * return without the socket becoming readable again (TLS records decrypted ahead). */
    bool (*has_pending)(void *state);
    /* Writes a short description of the last error into dst (for logs). */
    void (*describe)(void *state, char *dst, size_t size);
    /* Frees the state; the connection closes the socket itself afterwards. */
    void (*close)(void *state);
    void *ctx; /* the implementation's shared context (an SSL_CTX for TLS) */
} net_transport_t;

/* Plain TCP: read(2) / writev(2) on the socket, no handshake. */
extern const net_transport_t net_tcp_transport;

#endif
