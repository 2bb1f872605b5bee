/* `rmqd --namesrv -p 0` as a process: it answers GET_ROUTEINFO_BY_TOPIC for an unknown
 * topic with 17 and stops cleanly on SIGTERM. RMQD is the daemon's path (set by meson). */
#include "live.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* Reads rmqd's first stdout line ("... listening on port N") and returns N; -1 when it
 * never came. */
static int read_port(int fd) {
    char line[256];
    size_t n = 0;
    int64_t until = cm_mono_ms() + LIVE_WAIT_MS;
    while (n + 1 < sizeof line && cm_mono_ms() < until) {
        ssize_t got = read(fd, line + n, 1);
        if (got <= 0) break;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    const char *at = strstr(line, "port ");
    return at ? atoi(at + 5) : -1;
}

Test(rmqd, namesrv_answers_17_for_an_unknown_topic) {
    const char *rmqd = getenv("RMQD");
    cr_assert_not_null(rmqd, "RMQD not set");
    char *home = live_tempdir();
    int out[2];
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion must not leave it running */
        setenv("HOME", home, 1);          /* its kvConfig.json lands in the temp dir */
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execl(rmqd, rmqd, "--namesrv", "-p", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    int port = read_port(out[0]);
    close(out[0]);
    bool up = port > 0;

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
    cr_assert(up, "rmqd --namesrv never said where it listens");
    cr_assert_eq(code, 17);
    cr_assert(strstr(remark, "bm_no_such_topic"), "%s", remark);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rmqd exit status %d", status);
}
