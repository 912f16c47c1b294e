/* measure: run a command and print its wall time, CPU time and peak resident set.
 *
 *   measure OUTFILE [NAME=VALUE ...] -- CMD [ARGS...]
 *
 * The NAME=VALUE pairs are added to (or replace in) the command's environment only, so an
 * LD_PRELOAD given there applies to the command and not to this process. Writes "wall_s cpu_s maxrss_kb status" to OUTFILE once CMD has ended. The child is started
 * with vfork+exec from this small process, so the peak RSS that the kernel reports for it
 * (which includes the memory of the process image it replaced) is the command's own plus about
 * a megabyte, not the size of the Python runner that calls us. ru_maxrss covers the command and
 * every descendant it waited for (gcc's cc1, for instance). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    int cmd = 2;
    while (cmd < argc && strcmp(argv[cmd], "--") != 0)
        cmd++;
    if (cmd + 1 >= argc) {
        fprintf(stderr, "usage: measure OUTFILE [NAME=VALUE ...] -- CMD [ARGS...]\n");
        return 2;
    }
    /* the command's environment: ours less the names given, then the pairs given */
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + (size_t)cmd + 1, sizeof *envp);
    if (!envp)
        return 2;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int replaced = 0;
        for (int j = 2; j < cmd; j++) {
            size_t len = strcspn(argv[j], "=");
            if (strncmp(environ[i], argv[j], len) == 0 && environ[i][len] == '=')
                replaced = 1;
        }
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (int j = 2; j < cmd; j++)
        envp[k++] = argv[j];
    envp[k] = NULL;
    char *const *args = argv + cmd + 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = vfork();
    if (pid < 0) {
        perror("vfork");
        return 2;
    }
    if (pid == 0) {
        execvpe(args[0], args, envp);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    fprintf(f, "%.6f %.6f %ld %d\n", wall, cpu, ru.ru_maxrss, code);
    fclose(f);
    return code;
}
