/* lib/broker/cfgfile.c: the broker's JSON config files (topics.json, consumerOffset.json, ...)
 * read and written the way RocketMQ's ConfigManager does it, so a crash mid-write never
 * leaves the broker without a readable copy: new text goes to .tmp, the old file is kept as
 * .bak, then a rename puts the new one in place. */
#include "broker/broker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

void broker_cfg_path(const broker_t *b, const char *file, char *dst, size_t size) {
    snprintf(dst, size, "%s/%s", b->config_dir, file);
}

/* Reads a whole file; NULL when it is missing or unreadable. */
static char *read_all(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    cm_buf_t buf = CM_BUF_INIT;
    for (;;) {
        cm_buf_reserve(&buf, 65536);
        ssize_t n = read(fd, buf.data + buf.len, buf.cap - buf.len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            close(fd);
            cm_buf_free(&buf);
            return NULL;
        }
        if (n == 0) break;
        buf.len += (size_t)n;
    }
    close(fd);
    *len = buf.len;
    return cm_buf_take_str(&buf);
}

static proto_json_t *parse_file(const char *path) {
    size_t len;
    char *text = read_all(path, &len);
    if (!text) return NULL;
    proto_json_t *root = NULL;
    /* An empty file is what a crash between create and write leaves: treat as unreadable. */
    if (len == 0 || proto_json_parse(text, len, &root) != RMQ_OK || root->type != PJ_OBJECT) {
        proto_json_free(root);
        root = NULL;
    }
    cm_free(text);
    return root;
}

proto_json_t *broker_cfg_load(const cm_logger_t *log, const char *path, bool *from_bak) {
    if (from_bak) *from_bak = false;
    proto_json_t *root = parse_file(path);
    if (root) return root;
    char bak[1100];
    snprintf(bak, sizeof bak, "%s.bak", path);
    root = parse_file(bak);
    if (root) {
        cm_warn(log, "%s unreadable, loaded %s", path, bak);
        if (from_bak) *from_bak = true;
    }
    return root;
}

/* mkdir -p of path's directory part. */
static bool make_parent_dirs(const char *path) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return true;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(dir, 0755) == 0 || errno == EEXIST;
}

static bool write_file(const char *path, const char *text, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    bool ok = done == len && fsync(fd) == 0;
    return close(fd) == 0 && ok;
}

bool broker_cfg_write(const cm_logger_t *log, const char *path, const char *text, size_t len) {
    char tmp[1100], bak[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(bak, sizeof bak, "%s.bak", path);
    if (!make_parent_dirs(path) || !write_file(tmp, text, len)) {
        cm_error(log, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return false;
    }
    /* The previous version survives as .bak (a hard link keeps path valid until the rename
     * replaces it, so no instant exists without a readable file). */
    unlink(bak);
    if (link(path, bak) != 0 && errno != ENOENT) cm_warn(log, "cannot keep %s", bak);
    if (rename(tmp, path) != 0) {
        cm_error(log, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}
