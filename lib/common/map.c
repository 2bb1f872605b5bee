/* String-keyed hash map: open addressing with linear probing and tombstones. Broker and
 * client tables (topics, groups, connections) are small to medium; this keeps them simple. */
#include "cm.h"

typedef struct slot {
    char *key; /* NULL = empty; TOMBSTONE = deleted */
    void *value;
    uint64_t hash;
} slot_t;

struct cm_map {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t count;
    size_t used; /* count + tombstones */
    cm_free_fn *free_value;
};

static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

static uint64_t hash_str(const char *s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

cm_map_t *cm_map_new(cm_free_fn *free_value) {
    cm_map_t *m = cm_calloc(1, sizeof *m);
    m->cap = 16;
    m->slots = cm_calloc(m->cap, sizeof(slot_t));
    m->free_value = free_value;
    return m;
}

void cm_map_destroy(cm_map_t *m) {
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) {
        slot_t *s = &m->slots[i];
        if (s->key && s->key != TOMBSTONE) {
            if (m->free_value) m->free_value(s->value);
            cm_free(s->key);
        }
    }
    cm_free(m->slots);
    cm_free(m);
}

static slot_t *find(const cm_map_t *m, const char *key, uint64_t h) {
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        slot_t *s = &m->slots[i];
        if (!s->key) return NULL;
        if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0) return s;
    }
}

static void grow(cm_map_t *m) {
    slot_t *old = m->slots;
    size_t old_cap = m->cap;
    if (m->count * 2 >= m->cap) m->cap *= 2;
    m->slots = cm_calloc(m->cap, sizeof(slot_t));
    m->used = m->count;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key || old[i].key == TOMBSTONE) continue;
        size_t j = old[i].hash & (m->cap - 1);
        while (m->slots[j].key) j = (j + 1) & (m->cap - 1);
        m->slots[j] = old[i];
    }
    cm_free(old);
}

void *cm_map_get(const cm_map_t *m, const char *key) {
    slot_t *s = find(m, key, hash_str(key));
    return s ? s->value : NULL;
}

void cm_map_put(cm_map_t *m, const char *key, void *value) {
    uint64_t h = hash_str(key);
    slot_t *s = find(m, key, h);
    if (s) {
        if (m->free_value && s->value != value) m->free_value(s->value);
        s->value = value;
        return;
    }
    if ((m->used + 1) * 4 >= m->cap * 3) grow(m);
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE) i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key) m->used++;
    m->slots[i] = (slot_t){cm_strdup(key), value, h};
    m->count++;
}

void *cm_map_take(cm_map_t *m, const char *key) {
    slot_t *s = find(m, key, hash_str(key));
    if (!s) return NULL;
    void *v = s->value;
    cm_free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->count--;
    return v;
}

size_t cm_map_count(const cm_map_t *m) { return m->count; }

bool cm_map_next(const cm_map_t *m, size_t *iter, const char **key, void **value) {
    for (; *iter < m->cap; (*iter)++) {
        slot_t *s = &m->slots[*iter];
        if (s->key && s->key != TOMBSTONE) {
            if (key) *key = s->key;
            if (value) *value = s->value;
            (*iter)++;
            return true;
        }
    }
    return false;
}
