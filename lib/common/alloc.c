/* Allocation and small string helpers. Out of memory aborts: librmq never hands back a
 * half-built object, and every caller stays free of OOM branches. */
#include <stdio.h>
#include <stdlib.h>

#include "cm.h"
#include <rmq/defs.h>

static void *oom(size_t n) {
    fprintf(stderr, "librmq: out of memory allocating %zu bytes\n", n);
    abort();
}

void *cm_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *cm_calloc(size_t count, size_t n) {
    void *p = calloc(count ? count : 1, n ? n : 1);
    return p ? p : oom(count * n);
}

void *cm_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

void cm_free(void *p) { free(p); }

void cm_free_outside(void *p, const void *block, size_t len) {
    const char *c = p, *b = block;
    if (b && c >= b && c < b + len) return;
    free(p);
}

void rmq_free(void *p) { free(p); }

char *cm_strdup(const char *s) { return s ? cm_strndup(s, strlen(s)) : NULL; }

char *cm_strndup(const char *s, size_t n) {
    char *d = cm_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void cm_strcpy_cut(char *dst, size_t size, const char *src) {
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

char *cm_sprintf(const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = cm_malloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

void cm_errstr(char *errstr, size_t size, const char *fmt, ...) {
    if (!errstr || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
}
