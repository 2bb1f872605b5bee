/* Memory-mapped segment files and ordered lists of them (commit log, consume queues).
 * Segments are allocated on disk when created, so a write through the mapping never finds
 * the disk full (which would be SIGBUS); the disk-ratio guard refuses appends before that. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

void seg_name(char *dst, size_t size, const char *dir, int64_t start) {
    snprintf(dst, size, "%s/%020lld", dir, (long long)start);
}

/* Disk space for the whole file now; tmpfs and old file systems without fallocate get a
 * sparse file instead. */
static int allocate(int fd, int64_t size) {
    int rc = posix_fallocate(fd, 0, size);
    if (rc == 0) return 0;
    if (rc == EOPNOTSUPP || rc == EINVAL) return ftruncate(fd, size) == 0 ? 0 : errno;
    return rc;
}

/* A new file appears under its name only once allocated at full size (made as name.tmp,
 * then renamed): a crash half-way through leaves no short file for the next open to refuse. */
static int create_file(const char *path, int64_t size, char *err, size_t errsz,
                       rmq_err_t *rc) {
    char *tmp = cm_sprintf("%s.tmp", path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? errno : allocate(fd, size);
    if (e == 0 && rename(tmp, path) != 0) e = errno;
    if (e != 0) {
        cm_errstr(err, errsz, "cannot create %s (%lld bytes): %s", path, (long long)size,
                  strerror(e));
        *rc = e == ENOSPC ? RMQ_ERR_DISK_FULL : RMQ_ERR_IO;
        if (fd >= 0) close(fd);
        unlink(tmp);
        fd = -1;
    }
    cm_free(tmp);
    return fd;
}

rmq_err_t seg_open(const char *path, int64_t start, int64_t size, bool create, seg_t **out,
                   char *err, size_t errsz) {
    rmq_err_t rc = RMQ_ERR_IO;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        fd = create_file(path, size, err, errsz, &rc);
        if (fd < 0) return rc;
    } else if (fd < 0) {
        cm_errstr(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return RMQ_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        cm_errstr(err, errsz, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return RMQ_ERR_IO;
    }
    if (st.st_size != size) {
        cm_errstr(err, errsz, "%s has %lld bytes, configured size is %lld", path,
                  (long long)st.st_size, (long long)size);
        close(fd);
        return RMQ_ERR_BAD_VALUE;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        cm_errstr(err, errsz, "cannot map %s: %s", path, strerror(errno));
        close(fd);
        return RMQ_ERR_IO;
    }
    seg_t *g = cm_calloc(1, sizeof *g);
    g->start = start;
    g->size = size;
    g->fd = fd;
    g->map = map;
    g->path = cm_strdup(path);
    *out = g;
    return RMQ_OK;
}

void seg_close(seg_t *g, bool remove_file) {
    if (!g) return;
    munmap(g->map, (size_t)g->size);
    close(g->fd);
    if (remove_file) unlink(g->path);
    cm_free(g->path);
    cm_free(g);
}

int seg_sync(seg_t *g, int64_t from, int64_t to) {
    if (from < 0) from = 0;
    if (to > g->size) to = g->size;
    if (to <= from) return 0;
    int64_t aligned = from & ~(int64_t)(STORE_PAGE - 1);
    return msync(g->map + aligned, (size_t)(to - aligned), MS_SYNC);
}

void seg_zero_tail(seg_t *g, int64_t from) {
    if (from >= g->size) return;
    /* The partial page by hand, whole pages by the file system when it can (no page faults
     * over a 1 GiB tail), falling back to writing zeros. */
    int64_t page_end = (from + STORE_PAGE - 1) & ~(int64_t)(STORE_PAGE - 1);
    if (page_end > g->size) page_end = g->size;
    memset(g->map + from, 0, (size_t)(page_end - from));
    if (page_end >= g->size) return;
    if (fallocate(g->fd, FALLOC_FL_ZERO_RANGE, page_end, g->size - page_end) == 0) return;
    if (fallocate(g->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, page_end,
                  g->size - page_end) == 0)
        return;
    memset(g->map + page_end, 0, (size_t)(g->size - page_end));
}

void segq_init(segq_t *q, const char *dir, int64_t seg_size) {
    memset(q, 0, sizeof *q);
    q->dir = cm_strdup(dir);
    q->seg_size = seg_size;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* Writers (segment roll-over, retention) must not starve behind a stream of readers. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&q->lock, &a);
    pthread_rwlockattr_destroy(&a);
}

void segq_destroy(segq_t *q) {
    for (size_t i = 0; i < q->n; i++) seg_close(q->v[i], false);
    cm_free(q->v);
    cm_free(q->dir);
    pthread_rwlock_destroy(&q->lock);
    memset(q, 0, sizeof *q);
}

static void push(segq_t *q, seg_t *g) {
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 8;
        q->v = cm_realloc(q->v, q->cap * sizeof *q->v);
    }
    q->v[q->n++] = g;
}

bool store_drop_tmp(const char *dir, const char *name) {
    size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 4, ".tmp") != 0) return false;
    char *path = cm_sprintf("%s/%s", dir, name);
    unlink(path); /* a file whose creation a crash interrupted */
    cm_free(path);
    return true;
}

static bool segment_file_name(const char *name, int64_t *start) {
    if (strlen(name) != 20) return false;
    for (const char *c = name; *c; c++)
        if (*c < '0' || *c > '9') return false;
    *start = strtoll(name, NULL, 10);
    return true;
}

static int cmp_start(const void *a, const void *b) {
    int64_t x = (*(seg_t *const *)a)->start, y = (*(seg_t *const *)b)->start;
    return x < y ? -1 : x > y;
}

rmq_err_t segq_load(segq_t *q, char *err, size_t errsz) {
    DIR *d = opendir(q->dir);
    if (!d) return errno == ENOENT ? RMQ_OK : RMQ_ERR_IO;
    struct dirent *e;
    rmq_err_t rc = RMQ_OK;
    char path[2048];
    while (rc == RMQ_OK && (e = readdir(d)) != NULL) {
        int64_t start;
        if (store_drop_tmp(q->dir, e->d_name) || !segment_file_name(e->d_name, &start)) continue;
        snprintf(path, sizeof path, "%s/%s", q->dir, e->d_name);
        seg_t *g;
        rc = seg_open(path, start, q->seg_size, false, &g, err, errsz);
        if (rc == RMQ_OK) push(q, g);
    }
    closedir(d);
    if (rc != RMQ_OK) return rc;
    if (q->n > 1) qsort(q->v, q->n, sizeof *q->v, cmp_start);
    for (size_t i = 0; i < q->n; i++) {
        if (q->v[i]->start % q->seg_size != 0 ||
            (i > 0 && q->v[i]->start != q->v[i - 1]->start + q->seg_size)) {
            /* A hole or a misaligned name: offsets past it would address the wrong bytes. */
            cm_errstr(err, errsz, "%s: segment %s does not follow the previous one", q->dir,
                      q->v[i]->path);
            return RMQ_ERR_BAD_VALUE;
        }
    }
    return RMQ_OK;
}

seg_t *segq_find(const segq_t *q, int64_t off) {
    if (q->n == 0 || off < q->v[0]->start) return NULL;
    size_t i = (size_t)((off - q->v[0]->start) / q->seg_size);
    return i < q->n ? q->v[i] : NULL;
}

seg_t *segq_last(const segq_t *q) { return q->n ? q->v[q->n - 1] : NULL; }

rmq_err_t segq_add(segq_t *q, int64_t start, seg_t **out, char *err, size_t errsz) {
    char path[2048];
    rmq_err_t rc = cm_mkdirs(q->dir, err, errsz);
    if (rc != RMQ_OK) return rc;
    seg_name(path, sizeof path, q->dir, start);
    seg_t *g;
    rc = seg_open(path, start, q->seg_size, true, &g, err, errsz);
    if (rc != RMQ_OK) return rc;
    pthread_rwlock_wrlock(&q->lock);
    push(q, g);
    pthread_rwlock_unlock(&q->lock);
    *out = g;
    return RMQ_OK;
}

void segq_truncate(segq_t *q, int64_t off) {
    while (q->n > 0 && q->v[q->n - 1]->start > off) {
        seg_close(q->v[q->n - 1], true);
        q->n--;
    }
    seg_t *g = segq_find(q, off);
    if (g) seg_zero_tail(g, off - g->start);
}

void segq_drop_first(segq_t *q) {
    pthread_rwlock_wrlock(&q->lock);
    if (q->n > 0) {
        seg_close(q->v[0], true);
        memmove(q->v, q->v + 1, (q->n - 1) * sizeof *q->v);
        q->n--;
    }
    pthread_rwlock_unlock(&q->lock);
}

int segq_sync(segq_t *q, int64_t from, int64_t to) {
    int rc = 0;
    pthread_rwlock_rdlock(&q->lock);
    for (size_t i = 0; i < q->n; i++) {
        seg_t *g = q->v[i];
        if (g->start + g->size <= from || g->start >= to) continue;
        if (seg_sync(g, from - g->start, to - g->start) != 0) rc = -1;
    }
    pthread_rwlock_unlock(&q->lock);
    return rc;
}
