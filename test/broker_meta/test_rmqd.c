/* `rmqd --namesrv -p PORT` as a process: it answers GET_ROUTEINFO_BY_TOPIC for an unknown
 * topic with 17 and stops cleanly on SIGTERM. RMQD is the daemon's path (set by meson). */
#include "live.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* A port nobody listens on right now (bound once on loopback, then released). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Whether something accepts connections on 127.0.0.1:port. */
static bool port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

Test(rmqd, namesrv_answers_17_for_an_unknown_topic) {
    const char *rmqd = getenv("RMQD");
    cr_assert_not_null(rmqd, "RMQD not set");
    char *home = live_tempdir();
    int port = free_port();
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("HOME", home, 1); /* its kvConfig.json lands in the temp dir */
        execl(rmqd, rmqd, "--namesrv", "-p", port_text, (char *)NULL);
        _exit(127);
    }
    int64_t until = cm_mono_ms() + LIVE_WAIT_MS;
    while (!port_open(port) && cm_mono_ms() < until)
        usleep(20 * 1000);
    bool up = port_open(port);

    rmq_err_t err = RMQ_OK;
    net_loop_t *loop = net_loop_new(NULL, &err);
    cr_assert_not_null(loop);
    int32_t code = -1;
    char remark[512] = "";
    live_client_t c = {0};
    if (up) {
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        live_client_open(&c, loop, addr);
        proto_topic_route_t r = {0};
        code = live_route(&c, "bm_no_such_topic", &r, remark, sizeof remark);
        proto_topic_route_free(&r);
    }
    net_loop_destroy(loop);
    if (up) live_client_free(&c);

    kill(pid, SIGTERM);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    live_rmrf(home);
    cm_free(home);
    cr_assert(up, "rmqd --namesrv never listened on %d", port);
    cr_assert_eq(code, 17);
    cr_assert(strstr(remark, "bm_no_such_topic"), "%s", remark);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rmqd exit status %d", status);
}
