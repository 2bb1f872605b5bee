/* Small files written safely and read whole: the config files of the broker (topics.json,
 * consumerOffset.json, ...), the consumer's offsets.json, the store's directories. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm.h"

rmq_err_t cm_mkdirs(const char *dir, char *why, size_t why_size) {
    char *p = cm_strdup(dir);
    rmq_err_t rc = RMQ_OK;
    for (char *c = p + 1; rc == RMQ_OK; c++) {
        if (*c != '/' && *c != '\0') continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            cm_errstr(why, why_size, "cannot create directory %s: %s", p, strerror(errno));
            rc = RMQ_ERR_IO;
        }
        *c = saved;
        if (saved == '\0') break;
    }
    cm_free(p);
    return rc;
}

/* mkdir -p of the directory part of path. */
static rmq_err_t mkdirs_parent(const char *path, char *why, size_t why_size) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return RMQ_OK;
    char *dir = cm_strndup(path, (size_t)(slash - path));
    rmq_err_t rc = cm_mkdirs(dir, why, why_size);
    cm_free(dir);
    return rc;
}

rmq_err_t cm_file_read(const char *path, cm_buf_t *out, char *why, size_t why_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cm_errstr(why, why_size, "cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT ? RMQ_ERR_NOT_FOUND : RMQ_ERR_IO;
    }
    ssize_t n;
    do {
        cm_buf_reserve(out, 4096);
        n = read(fd, out->data + out->len, out->cap - out->len);
        if (n > 0) out->len += (size_t)n;
    } while (n > 0 || (n < 0 && errno == EINTR));
    if (n < 0) cm_errstr(why, why_size, "cannot read %s: %s", path, strerror(errno));
    close(fd);
    return n < 0 ? RMQ_ERR_IO : RMQ_OK;
}

static rmq_err_t write_synced(const char *path, const void *data, size_t len, char *why,
                              size_t why_size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        cm_errstr(why, why_size, "cannot create %s: %s", path, strerror(errno));
        return RMQ_ERR_IO;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    bool ok = done == len && fsync(fd) == 0;
    if (!ok) cm_errstr(why, why_size, "cannot write %s: %s", path, strerror(errno));
    if (close(fd) != 0 && ok) {
        cm_errstr(why, why_size, "cannot close %s: %s", path, strerror(errno));
        ok = false;
    }
    return ok ? RMQ_OK : RMQ_ERR_IO;
}

/* The current path becomes bak. A hard link keeps path readable all the while; where the file
 * system has none, the content is copied. No current file: bak stays as it is. */
static rmq_err_t keep_previous(const char *path, const char *bak, char *why, size_t why_size) {
    struct stat st;
    if (stat(path, &st) != 0) return RMQ_OK;
    if (unlink(bak) != 0 && errno != ENOENT) {
        cm_errstr(why, why_size, "cannot replace %s: %s", bak, strerror(errno));
        return RMQ_ERR_IO;
    }
    if (link(path, bak) == 0) return RMQ_OK;
    cm_buf_t prev = CM_BUF_INIT;
    rmq_err_t rc = cm_file_read(path, &prev, why, why_size);
    if (rc == RMQ_OK) rc = write_synced(bak, prev.data, prev.len, why, why_size);
    cm_buf_free(&prev);
    return rc == RMQ_ERR_NOT_FOUND ? RMQ_OK : rc;
}

/* Makes the rename in path's directory durable. */
static rmq_err_t sync_parent_dir(const char *path, char *why, size_t why_size) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? cm_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : cm_strdup(".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (!ok) cm_errstr(why, why_size, "cannot sync directory %s: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    cm_free(dir);
    return ok ? RMQ_OK : RMQ_ERR_IO;
}

rmq_err_t cm_file_replace(const char *path, const void *data, size_t len, char *why,
                          size_t why_size) {
    char *tmp = cm_sprintf("%s.tmp", path), *bak = cm_sprintf("%s.bak", path);
    rmq_err_t rc = mkdirs_parent(path, why, why_size);
    if (rc == RMQ_OK) rc = write_synced(tmp, data, len, why, why_size);
    if (rc == RMQ_OK) rc = keep_previous(path, bak, why, why_size);
    if (rc == RMQ_OK && rename(tmp, path) != 0) {
        cm_errstr(why, why_size, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        rc = RMQ_ERR_IO;
    }
    if (rc == RMQ_OK)
        rc = sync_parent_dir(path, why, why_size);
    else
        unlink(tmp);
    cm_free(tmp);
    cm_free(bak);
    return rc;
}
