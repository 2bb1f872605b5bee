// Compiles every public header as C++ with -Wall -Wextra -Werror -pedantic: the headers must
// stay usable from C++ programs and bindings.
#include <rmq/rmq.h>
#include <rmq/defs.h>
#include <rmq/err.h>
#include <rmq/conf.h>
#include <rmq/msg.h>
#include <rmq/broker.h>
#include <rmq/producer.h>
#include <rmq/consumer.h>
#include <rmq/version.h>

int main() {
    rmq_conf_t *conf = rmq_conf_new();
    rmq_conf_destroy(conf);
    return rmq_version_int() == RMQ_VERSION_INT ? 0 : 1;
}
