// mode: preload direct
// stdout: stale_mark_copy: ok
//
// A freed block's second word holds the allocator's free mark. Memory keeps it after the
// block is handed out again as part of something else, and programs copy bytes they never
// wrote (struct padding, a buffer's unused tail, a realloc of a block whose memory once held
// freed blocks). Such a copy must never make a live block look freed: here the first 16
// bytes of freed blocks (their link and mark) are copied, at the same offsets, into live
// blocks of the same and of other size classes, which must then free without a "double free"
// report. The bytes of a freed block are never copied back to the same address (a block
// handed out again where it was freed, carrying its own old mark at its own address, is what
// a real double free looks like). Reading freed memory is what the copies of stale bytes
// amount to; the test does it on purpose, through a volatile pointer, and so runs under
// xalloc only.
#include "testhelper.h"

#define N 64

int main(void)
{
    static const size_t sizes[] = {16, 32, 48, 64, 256, 4096};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t sz = sizes[k];
        unsigned char *freed[N], *live[N];
        unsigned char stale[N][16];
        for (int i = 0; i < N; i++) {
            freed[i] = malloc(sz);
            CHECK(freed[i] != NULL);
            memset(freed[i], 0x11, sz);
        }
        for (int i = 0; i < N; i++)
            free(freed[i]);
        for (int i = 0; i < N; i++) {
            volatile unsigned char *p = th_launder(freed[i]);
            for (int j = 0; j < 16; j++)
                stale[i][j] = p[j];
        }
        for (int i = 0; i < N; i++) {
            /* half of them the same size, half another class */
            live[i] = malloc(i % 2 ? sz : sz + 40);
            CHECK(live[i] != NULL);
            int from = (i * 7) % N;
            if (live[i] == freed[from])
                from = (from + 1) % N;
            memcpy(live[i], stale[from], 16);
        }
        for (int i = 0; i < N; i++)
            free(live[i]);
    }
    printf("stale_mark_copy: ok\n");
    return 0;
}
