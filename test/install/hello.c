/* Built against an installed librmq with pkg-config only (test/install/check_install.sh). */
#include <rmq/rmq.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char err[256];
    rmq_conf_t *conf = rmq_conf_new();
    if (rmq_conf_set(conf, "producerGroup", "hello", err, sizeof err) != RMQ_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rmq_conf_destroy(conf);
    printf("librmq %s installed and linked\n", rmq_version());
    return strcmp(rmq_version(), RMQ_VERSION_STRING) == 0 ? 0 : 1;
}
