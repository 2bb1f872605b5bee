/* lib/client: queue allocation strategies of a clustering consumer group (alloc.h), with the
 * MD5 the consistent-hash ring needs (OpenSSL is optional in librmq, so it is computed here). */
#include "client/alloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm.h"

#define DEFAULT_VNODES 10 /* AllocateMessageQueueConsistentHash() */

/* ---------------------------------------------------------------- Java string order */

/* The code point at *p (UTF-8), advancing *p. A malformed sequence yields its first byte
 * alone, so any byte string still gets a total order. */
static uint32_t next_code_point(const unsigned char **p) {
    const unsigned char *s = *p;
    uint32_t cp = s[0];
    unsigned extra = cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;
    if (extra) cp &= 0x3Fu >> extra;
    unsigned k = 1;
    for (; k <= extra && (s[k] & 0xC0) == 0x80; k++)
        cp = cp << 6 | (s[k] & 0x3F);
    if (k <= extra) {
        cp = s[0];
        k = 1;
    }
    *p = s + k;
    return cp;
}

/* A number whose order is the order of the code point's first UTF-16 unit: characters
 * beyond U+FFFF start with a surrogate (D800..DBFF), so they sort before U+E000..U+FFFF. */
static uint32_t utf16_rank(uint32_t cp) {
    return cp >= 0xE000 && cp <= 0xFFFF ? cp + 0x110000 : cp;
}

int client_java_strcmp(const char *a, const char *b) {
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    while (*pa && *pb) {
        uint32_t ra = utf16_rank(next_code_point(&pa));
        uint32_t rb = utf16_rank(next_code_point(&pb));
        if (ra != rb) return ra < rb ? -1 : 1;
    }
    return (*pa != 0) - (*pb != 0);
}

int client_mq_cmp(const client_mq_t *a, const client_mq_t *b) {
    int c = client_java_strcmp(a->topic, b->topic);
    if (c == 0) c = client_java_strcmp(a->broker_name, b->broker_name);
    if (c == 0) c = (a->queue_id > b->queue_id) - (a->queue_id < b->queue_id);
    return c;
}

static int cmp_id(const void *a, const void *b) {
    return client_java_strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_mq(const void *a, const void *b) {
    return client_mq_cmp(a, b);
}

void client_alloc_sort_ids(const char **ids, size_t n) {
    if (n > 1) qsort(ids, n, sizeof *ids, cmp_id);
}

void client_alloc_sort_mqs(client_mq_t *mqs, size_t n) {
    if (n > 1) qsort(mqs, n, sizeof *mqs, cmp_mq);
}

/* ---------------------------------------------------------------- averagely, by circle */

/* cid's position in cids, or -1 when the strategy must give it nothing (AbstractAllocate-
 * MessageQueueStrategy.check: empty arguments, cid not in the group). */
static long member_index(const char *cid, const char *const *cids, size_t n_cids, size_t n_mqs) {
    if (!cid || !*cid || n_mqs == 0) return -1;
    for (size_t i = 0; i < n_cids; i++)
        if (strcmp(cids[i], cid) == 0) return (long)i;
    return -1;
}

size_t client_alloc_averagely(const char *cid, const char *const *cids, size_t n_cids,
                              const client_mq_t *mqs, size_t n_mqs, size_t *owned) {
    (void)mqs;
    long index = member_index(cid, cids, n_cids, n_mqs);
    if (index < 0) return 0;
    long m = (long)n_mqs, c = (long)n_cids, mod = m % c;
    bool longer_run = mod > 0 && index < mod; /* the first m % c clients take one more */
    long size = m <= c ? 1 : m / c + (longer_run ? 1 : 0);
    long start = longer_run ? index * size : index * size + mod;
    long range = size < m - start ? size : m - start; /* negative past the end: nothing */
    size_t n = 0;
    for (long k = 0; k < range; k++)
        owned[n++] = (size_t)((start + k) % m);
    return n;
}

size_t client_alloc_by_circle(const char *cid, const char *const *cids, size_t n_cids,
                              const client_mq_t *mqs, size_t n_mqs, size_t *owned) {
    (void)mqs;
    long index = member_index(cid, cids, n_cids, n_mqs);
    if (index < 0) return 0;
    size_t n = 0;
    for (size_t k = (size_t)index; k < n_mqs; k += n_cids)
        owned[n++] = k;
    return n;
}

/* ---------------------------------------------------------------- MD5 (RFC 1321) */

static const uint32_t md5_sines[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

static const uint8_t md5_shifts[4][4] = {
    {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static uint32_t rotl32(uint32_t v, unsigned n) {
    return v << n | v >> (32 - n);
}

static uint32_t rd32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void md5_block(uint32_t state[4], const uint8_t *block) {
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (unsigned i = 0; i < 64; i++) {
        uint32_t f;
        unsigned word;
        switch (i / 16) {
        case 0:
            f = (b & c) | (~b & d), word = i;
            break;
        case 1:
            f = (d & b) | (~d & c), word = (5 * i + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d, word = (3 * i + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d), word = (7 * i) % 16;
            break;
        }
        uint32_t sum = a + f + md5_sines[i] + rd32le(block + 4 * word);
        a = d;
        d = c;
        c = b;
        b += rotl32(sum, md5_shifts[i / 16][i % 4]);
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

static void md5(const uint8_t *data, size_t len, uint8_t digest[16]) {
    uint32_t state[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    size_t whole = len - len % 64;
    for (size_t off = 0; off < whole; off += 64)
        md5_block(state, data + off);
    /* The rest, a 0x80 byte, zeros, and the length in bits: one or two more blocks. */
    uint8_t tail[128] = {0};
    size_t rest = len - whole, tail_len = rest < 56 ? 64 : 128;
    if (rest) memcpy(tail, data + whole, rest);
    tail[rest] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (unsigned i = 0; i < 8; i++)
        tail[tail_len - 8 + i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < tail_len; off += 64)
        md5_block(state, tail + off);
    for (unsigned i = 0; i < 4; i++)
        for (unsigned k = 0; k < 4; k++)
            digest[4 * i + k] = (uint8_t)(state[i] >> (8 * k));
}

uint32_t client_alloc_ring_hash(const char *key, size_t len) {
    uint8_t digest[16];
    md5((const uint8_t *)key, len, digest);
    return cm_rd32(digest);
}

/* ---------------------------------------------------------------- consistent hash */

typedef struct ring_point {
    uint32_t hash;
    size_t seq;    /* insertion order: Java's TreeMap.put lets a later point replace an equal one */
    size_t member; /* index into cids */
} ring_point_t;

static int cmp_point(const void *a, const void *b) {
    const ring_point_t *pa = a, *pb = b;
    if (pa->hash != pb->hash) return pa->hash < pb->hash ? -1 : 1;
    return (pa->seq > pb->seq) - (pa->seq < pb->seq);
}

/* How many points cids[j] already has from equal ids before it (getExistingReplicas): a
 * repeated id continues its replica numbers instead of landing on the same points. */
static size_t earlier_replicas(const char *const *cids, size_t j, int vnodes) {
    size_t same = 0;
    for (size_t i = 0; i < j; i++)
        if (strcmp(cids[i], cids[j]) == 0) same++;
    return same * (size_t)vnodes;
}

/* Every virtual node "<clientId>-<replica>" of every client, sorted by hash. */
static ring_point_t *ring_build(const char *const *cids, size_t n_cids, int vnodes,
                                size_t *n_points) {
    *n_points = n_cids * (size_t)vnodes;
    ring_point_t *ring = cm_malloc(*n_points * sizeof *ring);
    cm_buf_t key = CM_BUF_INIT;
    size_t seq = 0;
    for (size_t j = 0; j < n_cids; j++) {
        size_t first = earlier_replicas(cids, j, vnodes);
        for (int r = 0; r < vnodes; r++, seq++) {
            cm_buf_reset(&key);
            cm_buf_printf(&key, "%s-%zu", cids[j], first + (size_t)r);
            ring[seq] = (ring_point_t){client_alloc_ring_hash((char *)key.data, key.len), seq, j};
        }
    }
    cm_buf_free(&key);
    qsort(ring, *n_points, sizeof *ring, cmp_point);
    return ring;
}

/* The member owning hash: the first point at or after it, else the first point of the ring;
 * among points of one hash value the last inserted (TreeMap.put replaced the others). */
static size_t ring_route(const ring_point_t *ring, size_t n, uint32_t hash) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n) lo = 0;
    while (lo + 1 < n && ring[lo + 1].hash == ring[lo].hash)
        lo++;
    return ring[lo].member;
}

/* The text of Java's MessageQueue.toString(), which is what the ring hashes for a queue. */
static void mq_text(cm_buf_t *out, const client_mq_t *mq) {
    cm_buf_reset(out);
    cm_buf_printf(out, "MessageQueue [topic=%s, brokerName=%s, queueId=%d]", mq->topic,
                  mq->broker_name, (int)mq->queue_id);
}

size_t client_alloc_consistent_hash_n(int vnodes, const char *cid, const char *const *cids,
                                      size_t n_cids, const client_mq_t *mqs, size_t n_mqs,
                                      size_t *owned) {
    long index = member_index(cid, cids, n_cids, n_mqs);
    if (index < 0 || vnodes <= 0) return 0;
    size_t n_points, n = 0;
    ring_point_t *ring = ring_build(cids, n_cids, vnodes, &n_points);
    cm_buf_t text = CM_BUF_INIT;
    for (size_t k = 0; k < n_mqs; k++) {
        mq_text(&text, &mqs[k]);
        size_t member =
            ring_route(ring, n_points, client_alloc_ring_hash((char *)text.data, text.len));
        /* Java compares the owner's id, so a repeated id owns through any of its copies. */
        if (strcmp(cids[member], cid) == 0) owned[n++] = k;
    }
    cm_buf_free(&text);
    cm_free(ring);
    return n;
}

size_t client_alloc_consistent_hash(const char *cid, const char *const *cids, size_t n_cids,
                                    const client_mq_t *mqs, size_t n_mqs, size_t *owned) {
    return client_alloc_consistent_hash_n(DEFAULT_VNODES, cid, cids, n_cids, mqs, n_mqs, owned);
}

/* ---------------------------------------------------------------- lookup */

static const client_alloc_strategy_t strategies[] = {
    {"AVG", "AllocateMessageQueueAveragely", client_alloc_averagely},
    {"AVG_BY_CIRCLE", "AllocateMessageQueueAveragelyByCircle", client_alloc_by_circle},
    {"CONSISTENT_HASH", "AllocateMessageQueueConsistentHash", client_alloc_consistent_hash},
};

const client_alloc_strategy_t *client_alloc_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++)
        if (strcmp(name, strategies[i].name) == 0 || strcmp(name, strategies[i].class_name) == 0)
            return &strategies[i];
    return NULL;
}
