/* lib/client: the offsets file of a broadcasting consumer, in the text RocketMQ 4.9.8's
 * LocalFileOffsetStore writes (fastjson's pretty form of OffsetSerializeWrapper, whose
 * offsetTable has MessageQueue objects as keys), so a librmq consumer and a Java one can take
 * over each other's files. Pure apart from the file calls; no threads. */
#ifndef RMQ_CLIENT_OFFFILE_H
#define RMQ_CLIENT_OFFFILE_H

#include "common/cm.h"

/* One queue's next offset to consume. */
typedef struct client_offset {
    char *topic;
    char *broker_name;
    int32_t queue_id;
    int64_t offset;
} client_offset_t;

/* A table of offsets, at most one entry per queue, in insertion order. Owns its strings. */
typedef struct client_offtab {
    client_offset_t *items;
    size_t count, cap;
} client_offtab_t;

#define CLIENT_OFFTAB_INIT                                                                         \
    { NULL, 0, 0 }

/* Sets the queue's offset (adding the queue if new). Strings are copied. */
void client_offtab_put(client_offtab_t *t, const char *topic, const char *broker_name,
                       int32_t queue_id, int64_t offset);
/* The queue's entry, or NULL. Valid until the table changes. */
const client_offset_t *client_offtab_get(const client_offtab_t *t, const char *topic,
                                         const char *broker_name, int32_t queue_id);
void client_offtab_free(client_offtab_t *t); /* leaves t empty and reusable */

/* "<localOffsetStoreDir>/<clientId>/<group>/offsets.json" (a new string): Java's storePath,
 * with its default directory ${HOME}/.rocketmq_offsets (rocketmq.client.localOffsetStoreDir). */
char *client_offfile_path(const rmq_conf_t *conf, const char *client_id, const char *group);

/* Appends t as Java writes it: fastjson's PrettyFormat (tab indents, no spaces, fields in
 * name order, no final newline). Java's own entry order is its hash map's; readers ignore it. */
void client_offfile_encode(const client_offtab_t *t, cm_buf_t *out);

/* Reads text in Java's shape (any whitespace and member order, unknown members ignored; a key
 * may also be a string holding the MessageQueue's JSON, which fastjson reads too) and puts
 * its entries into t, a later duplicate winning as in Java's map. A missing or null
 * offsetTable, or the text null, is an empty table. Nothing is put into t unless the whole
 * text is valid: RMQ_ERR_BAD_JSON when it does not parse, RMQ_ERR_MALFORMED when it is not
 * an offsets table; why (may be NULL) then names what is wrong and where. */
rmq_err_t client_offfile_decode(const char *text, size_t len, client_offtab_t *t, char *why,
                                size_t why_size);

typedef enum client_offfile_src {
    CLIENT_OFFFILE_NONE, /* neither file held offsets: start from consumeFromWhere */
    CLIENT_OFFFILE_MAIN, /* read from path */
    CLIENT_OFFFILE_BAK   /* path was missing, empty, unreadable or malformed; read path.bak */
} client_offfile_src_t;

/* Loads path into t as LocalFileOffsetStore.readLocalOffset does: path if it holds a valid
 * table, else path.bak, else nothing. RMQ_OK also when a file was skipped (why then says which
 * and why, for a warning; why is "" otherwise). A malformed .bak is an error (Java refuses to
 * start the consumer then): the decode error, why naming both files' problems. *src (may be
 * NULL) says where the entries came from. */
rmq_err_t client_offfile_load(const char *path, client_offtab_t *t, client_offfile_src_t *src,
                              char *why, size_t why_size);

/* Writes t to path without ever leaving it torn: the text goes to path.tmp and is fsynced;
 * the previous path (if any) is kept as path.bak, as Java's MixAll.string2File does; then
 * path.tmp is renamed over path. Missing directories are created. RMQ_ERR_IO with why. */
rmq_err_t client_offfile_save(const char *path, const client_offtab_t *t, char *why,
                              size_t why_size);

#endif
