/* Logging through a per-handle callback; the default writes one line to stderr. */
#include <stdio.h>
#include <time.h>

#include "cm.h"

static const char *level_name(int level) {
    switch (level) {
    case RMQ_LOG_ERROR: return "ERROR";
    case RMQ_LOG_WARN: return "WARN";
    case RMQ_LOG_INFO: return "INFO";
    default: return "DEBUG";
    }
}

void cm_log(const cm_logger_t *lg, int level, const char *fmt, ...) {
    int max = lg ? lg->level : RMQ_LOG_INFO;
    if (level > max) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (lg && lg->cb) {
        lg->cb(level, line, lg->opaque);
        return;
    }
    int64_t now = cm_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    fprintf(stderr, "%04d-%02d-%02d %02d:%02d:%02d.%03d %-5s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now % 1000),
            level_name(level), line);
}
