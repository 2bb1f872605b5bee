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

static proto_json_t *parse_file(const char *path) {
    cm_buf_t buf = CM_BUF_INIT;
    char why[1200];
    if (cm_file_read(path, &buf, why, sizeof why) != RMQ_OK) {
        cm_buf_free(&buf);
        return NULL;
    }
    size_t len = buf.len;
    char *text = cm_buf_take_str(&buf);
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

bool broker_cfg_write(const cm_logger_t *log, const char *path, const char *text, size_t len) {
    char why[1300];
    if (cm_file_replace(path, text, len, why, sizeof why) == RMQ_OK) return true;
    cm_error(log, "%s", why);
    return false;
}
