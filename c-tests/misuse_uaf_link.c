// mode: preload direct glibc
// expect: abort
// stderr: xalloc: malloc(): corrupted free list at $PTR
// stderr@glibc: malloc(): unaligned tcache chunk detected
//
// A write after free into the first word of a freed small block (its free
// list link) must not let malloc hand out the forged pointer: the link is
// stored encoded and checked when the block is popped, so the next malloc of
// the class aborts naming the freed block.  (glibc's safe-linking catches it
// when it follows the forged link; glibc only follows a tcache link while the
// bin's count says more blocks are there, so in the glibc run one more block
// is freed first.)
#include "testhelper.h"

static char target[64];

int main(void)
{
    /* Print once first: stdout's buffer is allocated by the first printf. */
    printf("misuse_uaf_link: start\n");
    fflush(stdout);

    void *a = malloc(th_size(40));
    CHECK(a != NULL);
    if (th_mode() == TH_MODE_GLIBC) {
        /*
         * glibc reveals a tcache link as stored ^ (address >> 12): the forged
         * target + 1 stays unaligned (and is caught) unless bits 12..15 of
         * the block's address are 0001.  Pick a block where they are not, so
         * the glibc run is deterministic (the other blocks stay live).
         */
        while ((((uintptr_t)a >> 12) & 0xf) == 1) {
            a = malloc(th_size(40));
            CHECK(a != NULL);
        }
    }
    if (th_mode() == TH_MODE_GLIBC) {
        void *b = malloc(th_size(40));
        CHECK(b != NULL);
        free(b); /* tcache: a -> b after the next free: count 2 */
    }
    th_announce_ptr(a);
    free(a);
    /* Use after free: overwrite the free-list link with a forged pointer. */
    *(void *volatile *)a = target + 1;
    void *q = malloc(th_size(40)); /* xalloc aborts here (a's link is bad) */
    void *p = malloc(th_size(40)); /* glibc follows the forged link here */
    fprintf(stderr, "malloc returned %p then %p (target + 1 = %p)\n", q, p,
            (void *)(target + 1));
    CHECKF(p != (void *)(target + 1), "malloc returned the forged pointer %p", p);
    th_misuse_not_detected("malloc after a forged free-list link");
}
