/* Prints doc/CONFIGURATION.md from the key registry: build/tools/rmq-confdoc > doc/CONFIGURATION.md */
#include <stdio.h>

#include "common/cm.h"

static const char *type_name(const cm_conf_key_t *k) {
    switch (k->type) {
    case CM_CONF_INT: return "int";
    case CM_CONF_BOOL: return "bool";
    case CM_CONF_ENUM: return "enum";
    case CM_CONF_ADDRS: return "addresses";
    case CM_CONF_DELAYS: return "delays";
    default: return "string";
    }
}

int main(void) {
    puts("# Configuration keys\n");
    puts("Every key `rmq_conf_set()` accepts, generated from `lib/common/conf_keys.c` by");
    puts("`build/tools/rmq-confdoc > doc/CONFIGURATION.md`. Names and defaults are RocketMQ's:");
    puts("client keys as the Java client names them, broker keys exactly as in `broker.conf`");
    puts("(so `rmqd -c broker.conf` reads an existing RocketMQ file). Unknown keys and bad values");
    puts("are refused with an error that names them. `${HOME}` in a default is the user's home.\n");
    puts("| key | type | default | meaning |");
    puts("|---|---|---|---|");
    for (const cm_conf_key_t *k = cm_conf_keys; k->name; k++) {
        printf("| `%s` | %s", k->name, type_name(k));
        if (k->type == CM_CONF_INT) printf(" [%lld, %lld]", (long long)k->min, (long long)k->max);
        if (k->type == CM_CONF_ENUM) printf(" (%s)", k->choices);
        printf(" | `%s`", k->def[0] ? k->def : "(empty)");
        if (k->broker_def) printf("; broker `%s`", k->broker_def);
        printf(" | %s |\n", k->doc);
    }
    return 0;
}
