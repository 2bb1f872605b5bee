/* Library version, from the same meson value as the header macros. */
#include <rmq/rmq.h>

const char *rmq_version(void) { return RMQ_VERSION_STRING; }
int rmq_version_int(void) { return RMQ_VERSION_INT; }
