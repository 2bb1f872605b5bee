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

static bool is_blank(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

/* One file's table into staged. RMQ_ERR_NOT_FOUND when it is absent (why "") or blank, which
 * Java treats alike (no content: try the next file). */
static rmq_err_t load_one(const char *path, client_offtab_t *staged, char *why, size_t why_size) {
    cm_buf_t text = CM_BUF_INIT;
    rmq_err_t rc = cm_file_read(path, &text, why, why_size);
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

rmq_err_t client_offfile_save(const char *path, const client_offtab_t *t, char *why,
                              size_t why_size) {
    cm_buf_t text = CM_BUF_INIT;
    client_offfile_encode(t, &text);
    rmq_err_t rc = cm_file_replace(path, text.data, text.len, why, why_size);
    cm_buf_free(&text);
    return rc;
}
