/* lib/client: the broadcasting consumer's offsets file (offfile.h) — the table, Java's text
 * form both ways, and the load/save sequence with its .bak file. */
#include "client/offfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/proto.h"

#define WHY_MAX 512 /* one file's problem, before it is combined into the caller's why */

/* ---------------------------------------------------------------- the table */

static bool same_queue(const client_offset_t *e, const char *topic, const char *broker_name,
                       int32_t queue_id) {
    return e->queue_id == queue_id && strcmp(e->topic, topic) == 0 &&
           strcmp(e->broker_name, broker_name) == 0;
}

const client_offset_t *client_offtab_get(const client_offtab_t *t, const char *topic,
                                         const char *broker_name, int32_t queue_id) {
    for (size_t i = 0; i < t->count; i++)
        if (same_queue(&t->items[i], topic, broker_name, queue_id)) return &t->items[i];
    return NULL;
}

void client_offtab_put(client_offtab_t *t, const char *topic, const char *broker_name,
                       int32_t queue_id, int64_t offset) {
    client_offset_t *e = (client_offset_t *)client_offtab_get(t, topic, broker_name, queue_id);
    if (e) {
        e->offset = offset;
        return;
    }
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->items = cm_realloc(t->items, t->cap * sizeof *t->items);
    }
    t->items[t->count++] =
        (client_offset_t){cm_strdup(topic), cm_strdup(broker_name), queue_id, offset};
}

void client_offtab_free(client_offtab_t *t) {
    for (size_t i = 0; i < t->count; i++) {
        cm_free(t->items[i].topic);
        cm_free(t->items[i].broker_name);
    }
    cm_free(t->items);
    *t = (client_offtab_t)CLIENT_OFFTAB_INIT;
}

/* Puts every entry of from into to, then empties from. */
static void offtab_merge(client_offtab_t *to, client_offtab_t *from) {
    for (size_t i = 0; i < from->count; i++) {
        const client_offset_t *e = &from->items[i];
        client_offtab_put(to, e->topic, e->broker_name, e->queue_id, e->offset);
    }
    client_offtab_free(from);
}

char *client_offfile_path(const rmq_conf_t *conf, const char *client_id, const char *group) {
    const char *dir = cm_conf_str(conf, "localOffsetStoreDir", false);
    return cm_sprintf("%s/%s/%s/offsets.json", dir, client_id, group);
}

/* ---------------------------------------------------------------- Java's text */

/* A MessageQueue as fastjson's JavaBeanSerializer writes it inside the pretty-printed map:
 * its fields sorted by name, each on its own line three tabs deep. */
static void put_queue_key(cm_buf_t *out, const client_offset_t *e) {
    cm_buf_append_str(out, "{\n\t\t\t\"brokerName\":");
    proto_json_put_str(out, e->broker_name, strlen(e->broker_name));
    cm_buf_printf(out, ",\n\t\t\t\"queueId\":%d,\n\t\t\t\"topic\":", (int)e->queue_id);
    proto_json_put_str(out, e->topic, strlen(e->topic));
    cm_buf_append_str(out, "\n\t\t}");
}

/* fastjson's MapSerializer starts no new line before a key that is not a String, so each
 * entry follows the previous one's comma directly; only a non-empty map closes on its own
 * line. */
void client_offfile_encode(const client_offtab_t *t, cm_buf_t *out) {
    cm_buf_append_str(out, "{\n\t\"offsetTable\":{");
    for (size_t i = 0; i < t->count; i++) {
        if (i > 0) cm_buf_put8(out, ',');
        put_queue_key(out, &t->items[i]);
        cm_buf_printf(out, ":%lld", (long long)t->items[i].offset);
    }
    cm_buf_append_str(out, t->count ? "\n\t}\n}" : "}\n}");
}

static bool is_integer(const proto_json_t *v) {
    return v && v->type == PJ_NUMBER && (double)v->i == v->d;
}

/* What v is, for an error sentence ("the key is a string, not ..."). */
static const char *describe(const proto_json_t *v) {
    switch (v->type) {
    case PJ_NULL:
        return "null";
    case PJ_BOOL:
        return "a boolean";
    case PJ_NUMBER:
        return is_integer(v) ? "an integer" : "a fraction or out of 64-bit range";
    case PJ_STRING:
        return "a string";
    case PJ_ARRAY:
        return "an array";
    default:
        return "an object";
    }
}

/* Reads topic, brokerName and queueId of the MessageQueue object key (strings borrowed from
 * key) into q. */
static rmq_err_t read_queue(const proto_json_t *key, size_t entry, client_offset_t *q, char *why,
                            size_t why_size) {
    const char *names[] = {"topic", "brokerName"};
    char **fields[] = {&q->topic, &q->broker_name};
    for (size_t i = 0; i < 2; i++) {
        const proto_json_t *v = proto_json_get(key, names[i]);
        if (!v || v->type != PJ_STRING) {
            cm_errstr(why, why_size, "offsetTable entry %zu: the key has %s \"%s\"", entry,
                      v ? "a non-string" : "no", names[i]);
            return RMQ_ERR_MALFORMED;
        }
        *fields[i] = v->s;
    }
    const proto_json_t *id = proto_json_get(key, "queueId");
    if (!is_integer(id) || id->i < INT32_MIN || id->i > INT32_MAX) {
        cm_errstr(why, why_size, "offsetTable entry %zu: the key's \"queueId\" is %s", entry,
                  id ? "not a 32-bit integer" : "missing");
        return RMQ_ERR_MALFORMED;
    }
    q->queue_id = (int32_t)id->i;
    return RMQ_OK;
}

/* Puts the entry of MessageQueue object key and its offset value into staged. */
static rmq_err_t put_entry(const proto_json_t *key, const proto_json_t *value, size_t entry,
                           client_offtab_t *staged, char *why, size_t why_size) {
    if (key->type != PJ_OBJECT) {
        cm_errstr(why, why_size, "offsetTable entry %zu: the key is %s, not a MessageQueue", entry,
                  describe(key));
        return RMQ_ERR_MALFORMED;
    }
    client_offset_t q = {0};
    rmq_err_t rc = read_queue(key, entry, &q, why, why_size);
    if (rc != RMQ_OK) return rc;
    if (!is_integer(value)) {
        cm_errstr(why, why_size,
                  "offsetTable entry %zu (%s/%s/%d): the offset is %s, not an integer", entry,
                  q.topic, q.broker_name, (int)q.queue_id, describe(value));
        return RMQ_ERR_MALFORMED;
    }
    client_offtab_put(staged, q.topic, q.broker_name, q.queue_id, value->i);
    return RMQ_OK;
}

/* Puts one offsetTable member into staged. The key is a MessageQueue object, or a string
 * holding one (fastjson's WriteNonStringKeyAsString form, which its MapDeserializer reads). */
static rmq_err_t read_entry(const proto_json_t *key, const proto_json_t *value, size_t entry,
                            client_offtab_t *staged, char *why, size_t why_size) {
    proto_json_t *parsed = NULL;
    if (key->type == PJ_STRING && proto_json_parse(key->s, key->len, &parsed) == RMQ_OK)
        key = parsed;
    rmq_err_t rc = put_entry(key, value, entry, staged, why, why_size);
    proto_json_free(parsed);
    return rc;
}

/* The offsetTable member of root: NULL (with RMQ_OK) when there is no table. */
static rmq_err_t find_table(const proto_json_t *root, const proto_json_t **table, char *why,
                            size_t why_size) {
    *table = NULL;
    if (root->type == PJ_NULL) return RMQ_OK; /* fastjson parses "null" to no wrapper */
    if (root->type != PJ_OBJECT) {
        cm_errstr(why, why_size, "the top level is %s, not an object", describe(root));
        return RMQ_ERR_MALFORMED;
    }
    const proto_json_t *v = proto_json_get(root, "offsetTable");
    if (!v || v->type == PJ_NULL) return RMQ_OK;
    if (v->type != PJ_OBJECT) {
        cm_errstr(why, why_size, "offsetTable is %s, not an object", describe(v));
        return RMQ_ERR_MALFORMED;
    }
    *table = v;
    return RMQ_OK;
}

rmq_err_t client_offfile_decode(const char *text, size_t len, client_offtab_t *t, char *why,
                                size_t why_size) {
    proto_json_t *root = NULL;
    if (proto_json_parse(text, len, &root) != RMQ_OK) {
        cm_errstr(why, why_size, "not JSON (or nested deeper than 64)");
        return RMQ_ERR_BAD_JSON;
    }
    const proto_json_t *table;
    client_offtab_t staged = CLIENT_OFFTAB_INIT;
    rmq_err_t rc = find_table(root, &table, why, why_size);
    for (size_t i = 0; rc == RMQ_OK && table && i < table->len; i++)
        rc = read_entry(table->keys[i], table->items[i], i, &staged, why, why_size);
    proto_json_free(root);
    if (rc == RMQ_OK) offtab_merge(t, &staged);
    client_offtab_free(&staged);
    return rc;
}

/* ---------------------------------------------------------------- files */

/* The whole file into out: RMQ_ERR_NOT_FOUND if it does not exist, RMQ_ERR_IO otherwise. */
static rmq_err_t read_whole(const char *path, cm_buf_t *out, char *why, size_t why_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cm_errstr(why, why_size, "cannot open: %s", strerror(errno));
        return errno == ENOENT ? RMQ_ERR_NOT_FOUND : RMQ_ERR_IO;
    }
    ssize_t n;
    do {
        cm_buf_reserve(out, 4096);
        n = read(fd, out->data + out->len, out->cap - out->len);
        if (n > 0) out->len += (size_t)n;
    } while (n > 0 || (n < 0 && errno == EINTR));
    if (n < 0) cm_errstr(why, why_size, "cannot read: %s", strerror(errno));
    close(fd);
    return n < 0 ? RMQ_ERR_IO : RMQ_OK;
}

static bool is_blank(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

/* One file's table into staged. RMQ_ERR_NOT_FOUND when it is absent (why "") or blank, which
 * Java treats alike (no content: try the next file). */
static rmq_err_t load_one(const char *path, client_offtab_t *staged, char *why, size_t why_size) {
    cm_buf_t text = CM_BUF_INIT;
    rmq_err_t rc = read_whole(path, &text, why, why_size);
    if (rc == RMQ_ERR_NOT_FOUND) why[0] = '\0';
    if (rc == RMQ_OK && is_blank(text.data, text.len)) {
        cm_errstr(why, why_size, "is empty");
        rc = RMQ_ERR_NOT_FOUND;
    }
    if (rc == RMQ_OK)
        rc = client_offfile_decode((char *)text.data, text.len, staged, why, why_size);
    cm_buf_free(&text);
    return rc;
}

static void set_src(client_offfile_src_t *src, client_offfile_src_t v) {
    if (src) *src = v;
}

rmq_err_t client_offfile_load(const char *path, client_offtab_t *t, client_offfile_src_t *src,
                              char *why, size_t why_size) {
    char main_why[WHY_MAX] = "", bak_why[WHY_MAX] = "";
    cm_errstr(why, why_size, "%s", "");
    set_src(src, CLIENT_OFFFILE_NONE);
    client_offtab_t staged = CLIENT_OFFTAB_INIT;
    if (load_one(path, &staged, main_why, sizeof main_why) == RMQ_OK) {
        offtab_merge(t, &staged);
        set_src(src, CLIENT_OFFFILE_MAIN);
        return RMQ_OK;
    }
    char *bak = cm_sprintf("%s.bak", path);
    rmq_err_t rc = load_one(bak, &staged, bak_why, sizeof bak_why);
    const char *main_part = main_why[0] ? main_why : "does not exist";
    if (rc == RMQ_OK) {
        offtab_merge(t, &staged);
        set_src(src, CLIENT_OFFFILE_BAK);
        cm_errstr(why, why_size, "%s: %s; read %s instead", path, main_part, bak);
    } else if (rc == RMQ_ERR_NOT_FOUND || rc == RMQ_ERR_IO) {
        /* Java logs and starts without offsets when neither file has content. */
        if (main_why[0]) cm_errstr(why, why_size, "%s: %s; no usable %s", path, main_why, bak);
        rc = RMQ_OK;
    } else {
        cm_errstr(why, why_size, "%s: %s; %s: %s", path, main_part, bak, bak_why);
    }
    cm_free(bak);
    return rc;
}

/* mkdir -p of the directory part of path. */
static rmq_err_t make_parent_dirs(const char *path, char *why, size_t why_size) {
    char *dir = cm_strdup(path);
    char *slash = strrchr(dir, '/');
    rmq_err_t rc = RMQ_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; rc == RMQ_OK && p <= slash; p++) {
            if (*p != '/' && *p != '\0') continue;
            char keep = *p;
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                cm_errstr(why, why_size, "cannot create %s: %s", dir, strerror(errno));
                rc = RMQ_ERR_IO;
            }
            *p = keep;
        }
    }
    cm_free(dir);
    return rc;
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
 * system has none, the content is copied as Java does. No current file: bak stays as is. */
static rmq_err_t keep_previous(const char *path, const char *bak, char *why, size_t why_size) {
    struct stat st;
    if (stat(path, &st) != 0) return RMQ_OK;
    if (unlink(bak) != 0 && errno != ENOENT) {
        cm_errstr(why, why_size, "cannot replace %s: %s", bak, strerror(errno));
        return RMQ_ERR_IO;
    }
    if (link(path, bak) == 0) return RMQ_OK;
    cm_buf_t prev = CM_BUF_INIT;
    rmq_err_t rc = read_whole(path, &prev, why, why_size);
    if (rc == RMQ_OK) rc = write_synced(bak, prev.data, prev.len, why, why_size);
    cm_buf_free(&prev);
    return rc == RMQ_ERR_NOT_FOUND ? RMQ_OK : rc;
}

/* Makes the renames in path's directory durable. */
static rmq_err_t sync_parent_dir(const char *path, char *why, size_t why_size) {
    char *dir = cm_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir ? 1 : 0] = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (!ok) cm_errstr(why, why_size, "cannot sync directory %s: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    cm_free(dir);
    return ok ? RMQ_OK : RMQ_ERR_IO;
}

rmq_err_t client_offfile_save(const char *path, const client_offtab_t *t, char *why,
                              size_t why_size) {
    char *tmp = cm_sprintf("%s.tmp", path), *bak = cm_sprintf("%s.bak", path);
    cm_buf_t text = CM_BUF_INIT;
    client_offfile_encode(t, &text);
    rmq_err_t rc = make_parent_dirs(path, why, why_size);
    if (rc == RMQ_OK) rc = write_synced(tmp, text.data, text.len, why, why_size);
    if (rc == RMQ_OK) rc = keep_previous(path, bak, why, why_size);
    if (rc == RMQ_OK && rename(tmp, path) != 0) {
        cm_errstr(why, why_size, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        rc = RMQ_ERR_IO;
    }
    if (rc == RMQ_OK)
        rc = sync_parent_dir(path, why, why_size);
    else
        unlink(tmp);
    cm_buf_free(&text);
    cm_free(tmp);
    cm_free(bak);
    return rc;
}
