/* Supervision of a job: fork, exec, wait, and rerun after a failure. */
#include "app/supervise.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* One attempt: the command's exit status, 128 + signal when killed, or -1 (errno set) when it
 * could not be started. */
static int run_once(char *const *argv)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127); /* the shell's "command not found" */
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
}

static void pause_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int pst_supervise_run(const pst_supervise_opts_t *opts, int *status, pst_err_t *err)
{
    *status = 1;
    if (opts->argv == NULL || opts->argv[0] == NULL)
        return pst_err_set(err, PST_EINVAL, "supervise: no command to run");
    for (int attempt = 0; attempt <= opts->restarts; attempt++) {
        if (attempt > 0) {
            pst_warn("supervise: restart %d of %d after exit status %d: %s", attempt,
                     opts->restarts, *status, opts->argv[0]);
            pause_s(opts->delay_s);
        }
        int rc = run_once(opts->argv);
        if (rc < 0)
            return pst_err_set(err, PST_EIO, "supervise: cannot start %s: %s", opts->argv[0],
                               strerror(errno));
        *status = rc;
        if (rc == 0) {
            if (attempt > 0)
                pst_info("supervise: %s succeeded after %d restart%s", opts->argv[0], attempt,
                         attempt == 1 ? "" : "s");
            return PST_OK;
        }
        if (rc == 127)
            return pst_err_set(err, PST_EIO, "supervise: %s: command not found (exit 127)",
                               opts->argv[0]);
    }
    return pst_err_set(err, PST_ESTATE, "supervise: %s failed %d time%s (last exit status %d)",
                       opts->argv[0], opts->restarts + 1, opts->restarts == 0 ? "" : "s", *status);
}
