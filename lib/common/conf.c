/* rmq_conf_t: validated string key/value pairs over the key registry (conf_keys.c). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cm.h"

#include <rmq/producer.h> /* rmq_conf_set_tx_check_cb is declared with the producer */

struct rmq_conf_s {
    cm_map_t *values;   /* key -> char* as set */
    cm_map_t *expanded; /* key -> char* with ${HOME} expanded, filled on read */
    rmq_log_cb_t *log_cb;
    void *log_opaque;
    void (*tx_check_cb)(void); /* rmq_tx_check_cb_t (producer.h), stored untyped */
    void *tx_check_opaque;
};

rmq_conf_t *rmq_conf_new(void) {
    rmq_conf_t *c = cm_calloc(1, sizeof *c);
    c->values = cm_map_new(cm_free);
    c->expanded = cm_map_new(cm_free);
    return c;
}

void rmq_conf_destroy(rmq_conf_t *conf) {
    if (!conf) return;
    cm_map_destroy(conf->values);
    cm_map_destroy(conf->expanded);
    cm_free(conf);
}

rmq_conf_t *rmq_conf_dup(const rmq_conf_t *conf) {
    if (!conf) return NULL;
    rmq_conf_t *c = rmq_conf_new();
    size_t it = 0;
    const char *k;
    void *v;
    while (cm_map_next(conf->values, &it, &k, &v)) cm_map_put(c->values, k, cm_strdup(v));
    c->log_cb = conf->log_cb;
    c->log_opaque = conf->log_opaque;
    c->tx_check_cb = conf->tx_check_cb;
    c->tx_check_opaque = conf->tx_check_opaque;
    return c;
}

static bool parse_int(const char *s, int64_t *out) {
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out) {
    if (strcasecmp(s, "true") == 0) return *out = true, true;
    if (strcasecmp(s, "false") == 0) return *out = false, true;
    return false;
}

static bool in_choices(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* host:port[;host:port...] with a port in 1..65535; IPv6 hosts in brackets. */
static bool valid_addrs(const char *s) {
    if (!*s) return true;
    char *copy = cm_strdup(s), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, ";", &save); tok && ok; tok = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        char *colon = strrchr(tok, ':');
        int64_t port;
        ok = colon && colon != tok && parse_int(colon + 1, &port) && port > 0 && port <= 65535;
    }
    cm_free(copy);
    return ok;
}

int cm_parse_delay_levels(const char *text, int64_t *ms, int max) {
    int n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0) return 0;
        int64_t unit;
        switch (*end) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = 86400 * 1000; break;
        default: return 0;
        }
        if (end[1] && end[1] != ' ') return 0;
        if (n < max) ms[n] = v * unit;
        n++;
        p = end + 1;
    }
    return n;
}

static rmq_err_t check_value(const cm_conf_key_t *k, const char *v, char *errstr, size_t sz) {
    int64_t i;
    bool b;
    switch (k->type) {
    case CM_CONF_INT:
        if (!parse_int(v, &i)) {
            cm_errstr(errstr, sz, "configuration key \"%s\": \"%s\" is not an integer", k->name, v);
            return RMQ_ERR_BAD_VALUE;
        }
        if (i < k->min || i > k->max) {
            cm_errstr(errstr, sz,
                      "configuration key \"%s\": %s is out of range [%lld, %lld]", k->name, v,
                      (long long)k->min, (long long)k->max);
            return RMQ_ERR_BAD_VALUE;
        }
        return RMQ_OK;
    case CM_CONF_BOOL:
        if (!parse_bool(v, &b)) {
            cm_errstr(errstr, sz, "configuration key \"%s\": \"%s\" is not true or false",
                      k->name, v);
            return RMQ_ERR_BAD_VALUE;
        }
        return RMQ_OK;
    case CM_CONF_ENUM:
        if (!in_choices(k->choices, v)) {
            cm_errstr(errstr, sz, "configuration key \"%s\": \"%s\" is not one of %s", k->name,
                      v, k->choices);
            return RMQ_ERR_BAD_VALUE;
        }
        return RMQ_OK;
    case CM_CONF_ADDRS:
        if (!valid_addrs(v)) {
            cm_errstr(errstr, sz,
                      "configuration key \"%s\": \"%s\" is not a list of host:port separated by ';'",
                      k->name, v);
            return RMQ_ERR_BAD_VALUE;
        }
        return RMQ_OK;
    case CM_CONF_DELAYS: {
        int64_t ms[64];
        int n = cm_parse_delay_levels(v, ms, 64);
        if (n <= 0 || n > 64) {
            cm_errstr(errstr, sz,
                      "configuration key \"%s\": \"%s\" is not a list of delays like \"1s 5m 2h\"",
                      k->name, v);
            return RMQ_ERR_BAD_VALUE;
        }
        return RMQ_OK;
    }
    case CM_CONF_STR:
        return RMQ_OK;
    }
    return RMQ_OK;
}

rmq_err_t rmq_conf_set(rmq_conf_t *conf, const char *key, const char *value, char *errstr,
                       size_t errstr_size) {
    if (!conf || !key || !value) {
        cm_errstr(errstr, errstr_size, "rmq_conf_set: NULL argument");
        return RMQ_ERR_INVALID_ARG;
    }
    const cm_conf_key_t *k = cm_conf_key_find(key);
    if (!k) {
        cm_errstr(errstr, errstr_size, "unknown configuration key \"%s\"", key);
        return RMQ_ERR_UNKNOWN_KEY;
    }
    rmq_err_t err = check_value(k, value, errstr, errstr_size);
    if (err) return err;
    cm_map_put(conf->values, key, cm_strdup(value));
    cm_free(cm_map_take(conf->expanded, key));
    return RMQ_OK;
}

static const char *raw_value(const rmq_conf_t *conf, const cm_conf_key_t *k, bool broker) {
    const char *v = conf ? cm_map_get(conf->values, k->name) : NULL;
    if (v) return v;
    return broker && k->broker_def ? k->broker_def : k->def;
}

rmq_err_t rmq_conf_get(const rmq_conf_t *conf, const char *key, char *dest, size_t *dest_size) {
    if (!key || !dest_size) return RMQ_ERR_INVALID_ARG;
    const cm_conf_key_t *k = cm_conf_key_find(key);
    if (!k) return RMQ_ERR_UNKNOWN_KEY;
    const char *v = raw_value(conf, k, false);
    size_t need = strlen(v) + 1;
    size_t have = *dest_size;
    *dest_size = need;
    if (!dest) return RMQ_OK;
    if (have < need) return RMQ_ERR_INVALID_ARG;
    memcpy(dest, v, need);
    return RMQ_OK;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

rmq_err_t rmq_conf_load_file(rmq_conf_t *conf, const char *path, char *errstr,
                             size_t errstr_size) {
    if (!conf || !path) return RMQ_ERR_INVALID_ARG;
    FILE *f = fopen(path, "r");
    if (!f) {
        cm_errstr(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return RMQ_ERR_IO;
    }
    char line[4096], why[512];
    int lineno = 0;
    rmq_err_t err = RMQ_OK;
    while (!err && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            cm_errstr(errstr, errstr_size, "%s:%d: expected key=value, got \"%s\"", path, lineno, s);
            err = RMQ_ERR_BAD_VALUE;
            break;
        }
        *eq = '\0';
        err = rmq_conf_set(conf, trim(s), trim(eq + 1), why, sizeof why);
        if (err) cm_errstr(errstr, errstr_size, "%s:%d: %s", path, lineno, why);
    }
    fclose(f);
    return err;
}

void rmq_conf_set_log_cb(rmq_conf_t *conf, rmq_log_cb_t *cb, void *opaque) {
    if (!conf) return;
    conf->log_cb = cb;
    conf->log_opaque = opaque;
}

void rmq_conf_set_tx_check_cb(rmq_conf_t *conf, rmq_tx_check_cb_t *cb, void *opaque) {
    if (!conf) return;
    conf->tx_check_cb = (void (*)(void))cb;
    conf->tx_check_opaque = opaque;
}

void cm_conf_tx_check(const rmq_conf_t *conf, void (**cb)(void), void **opaque) {
    *cb = conf ? conf->tx_check_cb : NULL;
    *opaque = conf ? conf->tx_check_opaque : NULL;
}

/* ---- internal typed reads */

static const cm_conf_key_t *must_find(const char *key) {
    const cm_conf_key_t *k = cm_conf_key_find(key);
    assert(k && "configuration key missing from conf_keys.c");
    return k;
}

int64_t cm_conf_int(const rmq_conf_t *conf, const char *key, bool broker) {
    int64_t v = 0;
    parse_int(raw_value(conf, must_find(key), broker), &v);
    return v;
}

bool cm_conf_bool(const rmq_conf_t *conf, const char *key, bool broker) {
    bool v = false;
    parse_bool(raw_value(conf, must_find(key), broker), &v);
    return v;
}

const char *cm_conf_str(const rmq_conf_t *conf, const char *key, bool broker) {
    const char *v = raw_value(conf, must_find(key), broker);
    const char *var = strstr(v, "${HOME}");
    if (!var || !conf) return v;
    char *cached = cm_map_get(conf->expanded, key);
    if (cached) return cached;
    const char *home = getenv("HOME");
    char *exp = cm_sprintf("%.*s%s%s", (int)(var - v), v, home ? home : "/tmp", var + 7);
    cm_map_put(((rmq_conf_t *)conf)->expanded, key, exp);
    return exp;
}

bool cm_conf_is_set(const rmq_conf_t *conf, const char *key) {
    return conf && cm_map_get(conf->values, key) != NULL;
}

cm_logger_t cm_conf_logger(const rmq_conf_t *conf) {
    const char *lvl = cm_conf_str(conf, "logLevel", false);
    int level = strcmp(lvl, "ERROR") == 0  ? RMQ_LOG_ERROR
                : strcmp(lvl, "WARN") == 0 ? RMQ_LOG_WARN
                : strcmp(lvl, "DEBUG") == 0 ? RMQ_LOG_DEBUG
                                            : RMQ_LOG_INFO;
    cm_logger_t lg = {conf ? conf->log_cb : NULL, conf ? conf->log_opaque : NULL, level};
    return lg;
}
