/* Socket addresses as RocketMQ stores them in records and ids: 4 or 16 address bytes and an
 * int32 port, written as "a.b.c.d:port" or "[v6]:port". */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto.h"

static bool parse_port(const char *s, int32_t *port) {
    if (*s == '\0' || strlen(s) > 5) return false;
    int32_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (*s - '0');
    }
    if (v > 65535) return false;
    *port = v;
    return true;
}

/* Copies host (at most INET6_ADDRSTRLEN) into a NUL-terminated buffer for inet_pton. */
static bool parse_host(const char *host, size_t len, proto_addr_t *out) {
    char text[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof text) return false;
    memcpy(text, host, len);
    text[len] = '\0';
    if (inet_pton(AF_INET, text, out->ip) == 1) {
        out->ip_len = 4;
        return true;
    }
    if (inet_pton(AF_INET6, text, out->ip) == 1) {
        out->ip_len = 16;
        return true;
    }
    return false;
}

rmq_err_t proto_addr_parse(const char *text, proto_addr_t *out) {
    if (!text || !out) return RMQ_ERR_INVALID_ARG;
    proto_addr_t a;
    memset(&a, 0, sizeof a);
    const char *host = text, *colon;
    size_t host_len;
    if (*text == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') return RMQ_ERR_MALFORMED;
        host = text + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        /* Unbracketed IPv6 ("::1:10911"): the port follows the last colon. */
        colon = strrchr(text, ':');
        if (!colon) return RMQ_ERR_MALFORMED;
        host_len = (size_t)(colon - text);
    }
    if (!parse_host(host, host_len, &a) || !parse_port(colon + 1, &a.port))
        return RMQ_ERR_MALFORMED;
    /* A bracket around an IPv4 address is not a form any RocketMQ peer writes. */
    if (*text == '[' && a.ip_len != 16) return RMQ_ERR_MALFORMED;
    *out = a;
    return RMQ_OK;
}

void proto_addr_format(const proto_addr_t *a, char *dst, size_t size) {
    if (!dst || size == 0) return;
    char ip[INET6_ADDRSTRLEN];
    if (a->ip_len == 16) {
        inet_ntop(AF_INET6, a->ip, ip, sizeof ip);
        snprintf(dst, size, "[%s]:%d", ip, (int)a->port);
    } else {
        inet_ntop(AF_INET, a->ip, ip, sizeof ip);
        snprintf(dst, size, "%s:%d", ip, (int)a->port);
    }
}
