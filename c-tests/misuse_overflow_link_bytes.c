// mode: preload direct
//
// The overflow of misuse_overflow_link.c with 16 different fill bytes, one
// forked child each: 8 bytes of 0x60 + k (k = 0..15, the text-like
// characters '`' to 'o') are written past the end of a live small block over
// the free-list link of its freed upper neighbour, then the child mallocs
// blocks of the class.  Whatever the secret mask, one of these values has
// the mask's low four bits, so its decoded link is 16-byte aligned; every
// child must still die by SIGABRT with the line "xalloc: malloc():
// corrupted free list at <freed block>" (every pop checks the decoded link),
// never by another signal, and never hand out a wild pointer.
//
// This once failed: the hot-list pop checked only that the decoded link was
// 16-byte aligned, so for the one k that matched the mask malloc handed out
// the freed block, took the forged link as the list head, and the next malloc
// read through it (SIGSEGV, no message). The check now also requires a
// user-space address (below 2^47), which a value written without the mask
// meets with probability 2^-17.
#include "testhelper.h"

#define N 64
#define SZ 48

/* The child: never returns. */
TH_NORETURN static void child(int k)
{
    char *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(th_size(SZ));
        if (v[i] == NULL)
            _exit(4);
        memset(v[i], 'a', SZ);
    }
    int lo = -1, hi = -1;
    for (int i = 0; i < N && lo < 0; i++)
        for (int j = 0; j < N; j++)
            if (v[j] == v[i] + malloc_usable_size(v[i])) {
                lo = i;
                hi = j;
                break;
            }
    if (lo < 0) {
        fprintf(stderr, "no two of the blocks are adjacent\n");
        _exit(5);
    }
    fprintf(stderr, "freed=%p\n", (void *)v[hi]);
    fflush(stderr);
    free(v[hi]);
    memset(v[lo] + malloc_usable_size(v[lo]), 0x60 + k, 8);
    for (int n = 0; n < 4 * N; n++) {
        char *p = malloc(th_size(SZ));
        if (p == NULL)
            _exit(4);
        for (int i = 0; i < N; i++)
            if (i != hi && p == v[i]) {
                fprintf(stderr, "malloc returned live block v[%d] = %p\n", i, (void *)p);
                _exit(6);
            }
        if (th_owns(p) != 1) {
            fprintf(stderr, "malloc returned %p, not a live xalloc block\n", (void *)p);
            _exit(7);
        }
    }
    fprintf(stderr, "misuse was not detected: 256 mallocs returned normally\n");
    _exit(3);
}

int main(void)
{
    printf("misuse_overflow_link_bytes: start\n");
    fflush(stdout);
    int bad = 0;
    for (int k = 0; k < 16; k++) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            dup2(fds[1], 2);
            close(fds[1]);
            child(k);
        }
        close(fds[1]);
        char out[4096];
        size_t len = 0;
        ssize_t r;
        while ((r = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
            len += (size_t)r;
        out[len] = '\0';
        close(fds[0]);
        int status = th_wait_child(pid);
        char how[160], want[96] = "";
        void *freed = NULL;
        const char *f = strstr(out, "freed=");
        if (f != NULL && sscanf(f, "freed=%p", &freed) == 1)
            snprintf(want, sizeof want, "xalloc: malloc(): corrupted free list at %p", freed);
        int ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && want[0] != '\0' &&
                 strstr(out, want) != NULL;
        printf("byte 0x%02x: %s: %s\n", 0x60 + k, th_status_str(status, how, sizeof how),
               ok ? "ok" : "WRONG");
        if (!ok) {
            printf("  expected SIGABRT and \"%s\"; child's stderr:\n%s", want, out);
            bad++;
        }
    }
    fflush(stdout);
    CHECKF(bad == 0, "%d of 16 overflow bytes were not reported as a corrupted free list", bad);
    printf("all 16 reported\n");
    return 0;
}
