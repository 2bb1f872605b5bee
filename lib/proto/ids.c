/* Message ids (message.md §4): offset ids (store host + commit-log offset) and client unique
 * ids (UNIQ_KEY), both upper-case hex of a big-endian byte string. */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

static void hex_encode(const uint8_t *src, size_t n, char *dst) {
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 0xF];
    }
    dst[2 * n] = '\0';
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10; /* Java's parser takes either case */
    return -1;
}

static bool hex_decode(const char *src, size_t n_bytes, uint8_t *dst) {
    for (size_t i = 0; i < n_bytes; i++) {
        int hi = hex_digit(src[2 * i]), lo = hex_digit(src[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Both id kinds are an address (4 or 16 bytes) and 12 more bytes, so the hex length tells
 * the address width, as in Java's decoders. */
static bool decode_id(const char *id, uint8_t raw[16 + 12], size_t *ip_len) {
    size_t len = strlen(id);
    if (len == 2 * (4 + 12))
        *ip_len = 4;
    else if (len == 2 * (16 + 12))
        *ip_len = 16;
    else
        return false;
    return hex_decode(id, len / 2, raw);
}

/* Writes the address bytes (an unset address counts as IPv4 0.0.0.0); returns the count. */
static size_t put_ip(uint8_t *p, const proto_addr_t *a) {
    size_t n = a->ip_len == 16 ? 16 : 4;
    if (a->ip_len == 0)
        memset(p, 0, n);
    else
        memcpy(p, a->ip, n);
    return n;
}

/* ---- offset ids */

void proto_offset_id_format(const proto_addr_t *store_host, int64_t offset, char *dst,
                            size_t size) {
    uint8_t raw[16 + 4 + 8];
    size_t n = put_ip(raw, store_host);
    cm_wr32(raw + n, (uint32_t)store_host->port);
    cm_wr64(raw + n + 4, (uint64_t)offset);
    n += 12;
    assert(size > 2 * n);
    if (size <= 2 * n) {
        if (size) dst[0] = '\0';
        return;
    }
    hex_encode(raw, n, dst);
}

rmq_err_t proto_offset_id_parse(const char *id, proto_addr_t *store_host, int64_t *offset) {
    if (!id || !store_host || !offset) return RMQ_ERR_INVALID_ARG;
    uint8_t raw[16 + 12];
    size_t ip_len;
    if (!decode_id(id, raw, &ip_len)) return RMQ_ERR_MALFORMED;
    memset(store_host, 0, sizeof *store_host);
    memcpy(store_host->ip, raw, ip_len);
    store_host->ip_len = (uint8_t)ip_len;
    store_host->port = (int32_t)cm_rd32(raw + ip_len);
    *offset = (int64_t)cm_rd64(raw + ip_len + 4);
    return RMQ_OK;
}

/* ---- client unique ids
 *
 * Layout: IP (4|16) + pid int16 + per-process int32 + ms since the start of this month
 * (local time) int32 + counter int16. The first three are fixed per generator and kept as
 * hex. Uniqueness within a generator: the (ms, counter) pair never repeats within a month,
 * because the ms value never goes back (a clock stepping back reuses the last one) and at
 * most 65536 ids share one ms value before it is borrowed from the next ms. */
struct proto_uniq_gen {
    pthread_mutex_t lock;
    char fixed_hex[2 * (16 + 2 + 4) + 1];
    size_t fixed_len; /* hex chars in fixed_hex */
    int64_t month_start, next_month_start;
    int64_t last_diff;     /* ms value of the last id; -1 before the first id of a month */
    uint32_t used_at_last; /* ids issued with last_diff */
    uint16_t counter;
};

/* Java uses its class loader's hash here; we take a random per-process base, and step it
 * per generator so two producers in one process never share the fixed part. */
static uint32_t process_base;
static pthread_once_t base_once = PTHREAD_ONCE_INIT;
static atomic_uint generators;

static void init_base(void) {
    uint32_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (uint32_t)cm_mono_ns() ^ (uint32_t)cm_now_ms() ^ (uint32_t)getpid() << 16;
    process_base = v;
}

static uint32_t next_instance_value(void) {
    pthread_once(&base_once, init_base);
    /* Multiplying by an odd constant is a bijection mod 2^32: distinct per generator. */
    return process_base + atomic_fetch_add(&generators, 1) * 0x9E3779B9u;
}

proto_uniq_gen_t *proto_uniq_gen_new(const proto_addr_t *client_ip, int32_t pid) {
    proto_uniq_gen_t *g = cm_calloc(1, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    uint8_t raw[16 + 2 + 4];
    proto_addr_t none = {{0}, 4, 0};
    size_t n = put_ip(raw, client_ip ? client_ip : &none);
    cm_wr16(raw + n, (uint16_t)pid);
    cm_wr32(raw + n + 2, next_instance_value());
    n += 6;
    hex_encode(raw, n, g->fixed_hex);
    g->fixed_len = 2 * n;
    g->last_diff = -1;
    return g;
}

void proto_uniq_gen_destroy(proto_uniq_gen_t *g) {
    if (!g) return;
    pthread_mutex_destroy(&g->lock);
    cm_free(g);
}

/* Local midnight of the 1st of the month holding now_ms, and of the month after. */
static void month_bounds(int64_t now_ms, int64_t *start, int64_t *next) {
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    struct tm tm_next = tm;
    *start = (int64_t)mktime(&tm) * 1000;
    tm_next.tm_mon += 1;
    *next = (int64_t)mktime(&tm_next) * 1000;
}

/* Picks the (ms, counter) pair under the lock. */
static void next_pair(proto_uniq_gen_t *g, int64_t now_ms, uint32_t *diff, uint16_t *counter) {
    pthread_mutex_lock(&g->lock);
    /* Only move forward a month: a clock stepping back keeps the current one, so ids
     * already handed out this month cannot come back. */
    if (g->next_month_start == 0 || now_ms >= g->next_month_start) {
        month_bounds(now_ms, &g->month_start, &g->next_month_start);
        g->last_diff = -1;
        g->used_at_last = 0;
    }
    int64_t d = now_ms - g->month_start;
    if (d > g->last_diff) {
        g->last_diff = d;
        g->used_at_last = 0;
    } else if (g->used_at_last >= 65536) {
        g->last_diff++; /* every counter value used in this ms: borrow the next one */
        g->used_at_last = 0;
    }
    g->used_at_last++;
    *diff = (uint32_t)g->last_diff; /* Java's (int) cast: wraps after 24.8 days, as it does */
    *counter = g->counter++;
    pthread_mutex_unlock(&g->lock);
}

void proto_uniq_gen_next_at(proto_uniq_gen_t *g, int64_t now_ms, char *dst, size_t size) {
    assert(size > g->fixed_len + 12);
    if (size <= g->fixed_len + 12) {
        if (size) dst[0] = '\0';
        return;
    }
    uint32_t diff;
    uint16_t counter;
    next_pair(g, now_ms, &diff, &counter);
    uint8_t raw[6];
    cm_wr32(raw, diff);
    cm_wr16(raw + 4, counter);
    memcpy(dst, g->fixed_hex, g->fixed_len);
    hex_encode(raw, sizeof raw, dst + g->fixed_len);
}

void proto_uniq_gen_next(proto_uniq_gen_t *g, char *dst, size_t size) {
    proto_uniq_gen_next_at(g, cm_now_ms(), dst, size);
}

rmq_err_t proto_uniq_parse(const char *id, proto_uniq_parts_t *out) {
    if (!id || !out) return RMQ_ERR_INVALID_ARG;
    uint8_t raw[16 + 12];
    size_t ip_len;
    if (!decode_id(id, raw, &ip_len)) return RMQ_ERR_MALFORMED;
    memset(out, 0, sizeof *out);
    memcpy(out->ip.ip, raw, ip_len);
    out->ip.ip_len = (uint8_t)ip_len;
    out->pid = cm_rd16(raw + ip_len);
    out->instance = (int32_t)cm_rd32(raw + ip_len + 2);
    out->month_ms = (int32_t)cm_rd32(raw + ip_len + 6);
    out->counter = cm_rd16(raw + ip_len + 10);
    return RMQ_OK;
}
