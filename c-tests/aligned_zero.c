// mode: preload direct glibc
//
// Zero-size and tiny requests with very large alignments (above the largest
// page run, so they are mapped directly): each result is a distinct, aligned,
// writable block, and all of them coexist with ordinary huge blocks.
#include "testhelper.h"

int main(void)
{
    void *blocks[24];
    int n = 0;
    for (int log2 = 22; log2 <= 28; log2++) {
        size_t align = (size_t)1 << log2;
        for (size_t size = 0; size <= 2; size++) {
            void *p = aligned_alloc(th_size(align), th_size(size));
            CHECKF(p != NULL, "aligned_alloc(%zu, %zu) failed", align, size);
            CHECKF(th_aligned(p, align), "aligned_alloc(%zu, %zu) = %p", align, size, p);
            CHECK(malloc_usable_size(p) >= size);
            memset(p, 0x5a, size ? size : 1);
            for (int i = 0; i < n; i++)
                CHECKF(blocks[i] != p, "block %p handed out twice", p);
            blocks[n++] = p;
        }
    }
    void *big = malloc(th_size(40u << 20));
    CHECK(big != NULL);
    memset(big, 1, 40u << 20);
    for (int i = 0; i < n; i++) {
        CHECKF(*(unsigned char *)blocks[i] == 0x5a, "block %p lost its byte", blocks[i]);
        free(blocks[i]);
    }
    free(big);
    printf("aligned_zero ok\n");
    return 0;
}
