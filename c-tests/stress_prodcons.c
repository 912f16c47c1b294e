// mode: preload direct glibc
// timeout: 40
// stdout: stress_prodcons: ok
// env@direct: XALLOC_PURGE_DELAY_MS=0
// env@direct: XALLOC_DIRTY_CAP=0
//
// Blocks allocated on one thread and freed on others.
//
// Phase 1, producers and consumers: 2 producer threads allocate blocks, fill
// them with a pattern derived from the block's id and send them to a shared
// bounded queue, one by one or in batches (a batch is one malloc'd parcel
// holding up to 256 blocks, sometimes all of one size so whole slabs go back
// from a foreign thread); 2 consumer threads take the parcels, verify every
// block, realloc some of them (a foreign thread growing or shrinking the
// block), and free them in order, in reverse or shuffled.
//
// Phase 2, a ring: 4 threads each pass blocks to the next one.  A receiver
// verifies the block's pattern for the hop it is at, sometimes reallocs it,
// rewrites the pattern for the next hop and passes it on; after 7 hops the
// receiving thread frees it (so each block ends on a thread 3 places along
// from its origin).  Each thread originates blocks while it has fewer than
// 256 of its own in flight.
// The direct-link trial runs with XALLOC_PURGE_DELAY_MS=0 and
// XALLOC_DIRTY_CAP=0: freed pages are purged at once.
// Optional argument: seed.
#include "stress.h"

/* ------------------------------------------------------------------ */
/* Blocks and parcels                                                  */
/* ------------------------------------------------------------------ */

struct item {
    unsigned char *p;
    size_t n;
    uint64_t id;
    uint64_t gen;
};

struct parcel {
    struct parcel *next;
    int count;
    int origin;
    struct item items[];
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    struct parcel *head, *tail;
    int len;
};

static void queue_init(struct queue *q)
{
    CHECK(pthread_mutex_init(&q->lock, NULL) == 0);
    CHECK(pthread_cond_init(&q->nonempty, NULL) == 0);
    CHECK(pthread_cond_init(&q->nonfull, NULL) == 0);
    q->head = q->tail = NULL;
    q->len = 0;
}

/* Append; waits while the queue holds `cap` parcels or more (cap 0: no bound). */
static void queue_push(struct queue *q, struct parcel *m, int cap)
{
    m->next = NULL;
    pthread_mutex_lock(&q->lock);
    while (cap > 0 && q->len >= cap)
        pthread_cond_wait(&q->nonfull, &q->lock);
    if (q->tail != NULL)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->len++;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

/* Take the whole list; with `wait`, wait up to 20 ms for something. */
static struct parcel *queue_take_all(struct queue *q, int wait)
{
    pthread_mutex_lock(&q->lock);
    if (wait && q->head == NULL) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q->nonempty, &q->lock, &ts);
    }
    struct parcel *m = q->head;
    q->head = q->tail = NULL;
    q->len = 0;
    pthread_cond_broadcast(&q->nonfull);
    pthread_mutex_unlock(&q->lock);
    return m;
}

/* Mostly small; log-uniform within the bigger ranges; 1 in 50000 is huge. */
static size_t pick_size(uint64_t *rng)
{
    uint64_t r = th_rand(rng) % 100000;
    if (r < 70000)
        return th_rand_range(rng, 1, 256);
    if (r < 92000)
        return st_log_range(rng, 257, 4096);
    if (r < 99000)
        return st_log_range(rng, 4097, 32 * TH_KIB);
    if (r < 99900)
        return st_log_range(rng, 32 * TH_KIB + 1, 512 * TH_KIB);
    if (r < 99998)
        return st_log_range(rng, 512 * TH_KIB + 1, 4 * TH_MIB);
    return th_rand_range(rng, 32 * TH_MIB + 1, 40 * TH_MIB);
}

static void make_item(struct item *it, size_t n, uint64_t id)
{
    it->p = (unsigned char *)malloc(n);
    ST_CHECK(it->p != NULL, "malloc(%zu) returned NULL", n);
    it->n = n;
    it->id = id;
    it->gen = 0;
    st_fill(it->p, 0, n, st_block_seed(id, 0));
}

static void verify_item(const struct item *it, int self, const char *where)
{
    ST_VERIFY(it->p, 0, it->n, st_block_seed(it->id, it->gen),
              "%s thread %d: block id %#llx gen %llu size %zu", where, self,
              (unsigned long long)it->id, (unsigned long long)it->gen, it->n);
}

/* Realloc by a thread that did not allocate the block; checks the kept prefix. */
static void foreign_realloc(struct item *it, uint64_t *rng, int self, const char *where)
{
    size_t m;
    if (th_rand(rng) % 2)
        m = it->n * 2 + th_rand_range(rng, 1, 100);
    else
        m = it->n / 2 + 1;
    if (m > 48 * TH_MIB)
        m = it->n / 2 + 1;
    unsigned char *q = (unsigned char *)realloc(it->p, m);
    ST_CHECK(q != NULL, "realloc(%p, %zu) returned NULL", (void *)it->p, m);
    size_t keep = it->n < m ? it->n : m;
    ST_VERIFY(q, 0, keep, st_block_seed(it->id, it->gen),
              "%s thread %d: block id %#llx after realloc %zu -> %zu (%p -> %p)", where, self,
              (unsigned long long)it->id, it->n, m, (void *)it->p, (void *)q);
    st_fill(q, keep, m, st_block_seed(it->id, it->gen));
    it->p = q;
    it->n = m;
}

/* ------------------------------------------------------------------ */
/* Phase 1: producers and consumers                                    */
/* ------------------------------------------------------------------ */

#define NPROD 2
#define NCONS 2
#define PARCELS_PER_PRODUCER 4000
#define QUEUE_CAP 64
#define MAX_BATCH 256

static struct queue pc_queue;
static int producers_left = NPROD;
static uint64_t pc_produced_items, pc_consumed_items, pc_parcels, pc_batches, pc_reallocs;

static void *producer(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t rng = st_rng(100 + (uint64_t)self);
    uint64_t next_id = (uint64_t)(self + 1) << 40;
    uint64_t items = 0, parcels = 0, batches = 0;
    for (int k = 0; k < PARCELS_PER_PRODUCER; k++) {
        if ((k & 63) == 0 && st_time_up())
            break;
        uint64_t r = th_rand(&rng) % 100;
        int count = 1;
        if (r >= 70)
            count = (int)th_rand_range(&rng, 2, MAX_BATCH);
        size_t one_size = r >= 85 ? th_rand_range(&rng, 1, 2048) : 0; /* same-size batch */
        struct parcel *m =
            (struct parcel *)malloc(sizeof *m + (size_t)count * sizeof(struct item));
        CHECK(m != NULL);
        m->count = count;
        m->origin = self;
        for (int i = 0; i < count; i++)
            make_item(&m->items[i], one_size ? one_size : pick_size(&rng), next_id++);
        items += (uint64_t)count;
        parcels++;
        batches += count > 1;
        queue_push(&pc_queue, m, QUEUE_CAP);
    }
    __atomic_add_fetch(&pc_produced_items, items, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pc_parcels, parcels, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pc_batches, batches, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&producers_left, 1, __ATOMIC_RELEASE);
    st_thread_done();
    return NULL;
}

static void consume_parcel(struct parcel *m, int self, uint64_t *rng, uint64_t *reallocs)
{
    int count = m->count;
    ST_CHECK(count >= 1 && count <= MAX_BATCH && m->origin >= 0 && m->origin < NPROD,
             "consumer %d: corrupt parcel %p (count %d, origin %d)", self, (void *)m, count,
             m->origin);
    for (int i = 0; i < count; i++) {
        verify_item(&m->items[i], self, "consumer");
        if (th_rand(rng) % 10 == 0) {
            foreign_realloc(&m->items[i], rng, self, "consumer");
            (*reallocs)++;
        }
    }
    uint64_t order = th_rand(rng) % 3;
    if (order == 2) { /* shuffle */
        for (int i = count - 1; i > 0; i--) {
            int j = (int)(th_rand(rng) % (uint64_t)(i + 1));
            struct item t = m->items[i];
            m->items[i] = m->items[j];
            m->items[j] = t;
        }
    }
    for (int i = 0; i < count; i++) {
        struct item *it = &m->items[order == 1 ? count - 1 - i : i];
        verify_item(it, self, "consumer before free");
        free(it->p);
    }
    free(m);
}

static void *consumer(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t rng = st_rng(200 + (uint64_t)self);
    uint64_t items = 0, reallocs = 0;
    for (;;) {
        int done = __atomic_load_n(&producers_left, __ATOMIC_ACQUIRE) == 0;
        /* Take one parcel at a time so both consumers get work. */
        pthread_mutex_lock(&pc_queue.lock);
        if (pc_queue.head == NULL && !done) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&pc_queue.nonempty, &pc_queue.lock, &ts);
        }
        struct parcel *m = pc_queue.head;
        if (m != NULL) {
            pc_queue.head = m->next;
            if (pc_queue.head == NULL)
                pc_queue.tail = NULL;
            pc_queue.len--;
            pthread_cond_signal(&pc_queue.nonfull);
        }
        pthread_mutex_unlock(&pc_queue.lock);
        if (m == NULL) {
            if (done)
                break;
            continue;
        }
        items += (uint64_t)m->count;
        consume_parcel(m, self, &rng, &reallocs);
    }
    __atomic_add_fetch(&pc_consumed_items, items, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pc_reallocs, reallocs, __ATOMIC_RELAXED);
    st_check_heap();
    st_thread_done();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Phase 2: ring                                                       */
/* ------------------------------------------------------------------ */

#define RING 4
#define HOPS 7
#define ORIGINATE_PER_THREAD 12000
#define IN_FLIGHT 256

static struct queue ring_q[RING];
static int in_flight[RING];
static uint64_t ring_originated, ring_freed, ring_hops, ring_reallocs;
static int ring_originators = RING; /* threads that may still originate blocks */

static void *ring_worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    int next = (self + 1) % RING;
    uint64_t rng = st_rng(300 + (uint64_t)self);
    uint64_t next_id = (uint64_t)(0x10 + self) << 40;
    uint64_t originated = 0, freed = 0, hops = 0, reallocs = 0;
    int originating = 1;
    for (;;) {
        if (originating && (originated >= ORIGINATE_PER_THREAD ||
                            ((originated & 255) == 0 && st_time_up()))) {
            originating = 0;
            __atomic_sub_fetch(&ring_originators, 1, __ATOMIC_RELEASE);
        }
        int made = 0;
        while (originating && made < 16 && originated < ORIGINATE_PER_THREAD &&
               __atomic_load_n(&in_flight[self], __ATOMIC_RELAXED) < IN_FLIGHT) {
            struct parcel *m = (struct parcel *)malloc(sizeof *m + sizeof(struct item));
            CHECK(m != NULL);
            m->count = 1;
            m->origin = self;
            make_item(&m->items[0], pick_size(&rng), next_id++);
            __atomic_add_fetch(&in_flight[self], 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&ring_originated, 1, __ATOMIC_RELAXED);
            originated++;
            made++;
            queue_push(&ring_q[next], m, 0);
        }
        /* Done when nobody originates any more and every block has been freed. */
        if (__atomic_load_n(&ring_originators, __ATOMIC_ACQUIRE) == 0 &&
            __atomic_load_n(&ring_freed, __ATOMIC_ACQUIRE) ==
                __atomic_load_n(&ring_originated, __ATOMIC_RELAXED))
            break;
        struct parcel *m = queue_take_all(&ring_q[self], made == 0);
        while (m != NULL) {
            struct parcel *after = m->next;
            struct item *it = &m->items[0];
            ST_CHECK(m->count == 1 && m->origin >= 0 && m->origin < RING,
                     "ring thread %d: corrupt message %p", self, (void *)m);
            verify_item(it, self, "ring");
            hops++;
            if (it->gen + 1 == HOPS) {
                free(it->p);
                int origin = m->origin;
                free(m);
                __atomic_sub_fetch(&in_flight[origin], 1, __ATOMIC_RELAXED);
                __atomic_add_fetch(&ring_freed, 1, __ATOMIC_RELEASE);
                freed++;
            } else {
                if (th_rand(&rng) % 8 == 0) {
                    foreign_realloc(it, &rng, self, "ring");
                    reallocs++;
                }
                it->gen++;
                st_fill(it->p, 0, it->n, st_block_seed(it->id, it->gen));
                queue_push(&ring_q[next], m, 0);
            }
            m = after;
        }
    }
    __atomic_add_fetch(&ring_hops, hops, __ATOMIC_RELAXED);
    __atomic_add_fetch(&ring_reallocs, reallocs, __ATOMIC_RELAXED);
    (void)freed;
    st_check_heap();
    st_thread_done();
    return NULL;
}

int main(int argc, char **argv)
{
    st_init("stress_prodcons", argc, argv);
    double t0 = st_now();

    /* Phase 1 */
    st_deadline_set(2.0);
    queue_init(&pc_queue);
    pthread_t prod[NPROD], cons[NCONS];
    for (int i = 0; i < NCONS; i++)
        CHECK(pthread_create(&cons[i], NULL, consumer, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < NPROD; i++)
        CHECK(pthread_create(&prod[i], NULL, producer, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < NPROD; i++)
        CHECK(pthread_join(prod[i], NULL) == 0);
    for (int i = 0; i < NCONS; i++)
        CHECK(pthread_join(cons[i], NULL) == 0);
    CHECKF(pc_consumed_items == pc_produced_items, "produced %llu blocks, consumed %llu",
           (unsigned long long)pc_produced_items, (unsigned long long)pc_consumed_items);
    CHECK(pc_queue.head == NULL);
    double t1 = st_now();
    printf("stress_prodcons: phase 1: %d producers, %d consumers: %llu blocks in %llu parcels "
           "(%llu batches), %llu foreign reallocs, %.2f s%s\n",
           NPROD, NCONS, (unsigned long long)pc_produced_items, (unsigned long long)pc_parcels,
           (unsigned long long)pc_batches, (unsigned long long)pc_reallocs, t1 - t0,
           st_cap_note());

    /* Phase 2 */
    st_deadline_set(2.0);
    pthread_t ring[RING];
    for (int i = 0; i < RING; i++)
        queue_init(&ring_q[i]);
    for (int i = 0; i < RING; i++)
        CHECK(pthread_create(&ring[i], NULL, ring_worker, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < RING; i++)
        CHECK(pthread_join(ring[i], NULL) == 0);
    CHECKF(ring_freed == ring_originated, "ring: originated %llu, freed %llu",
           (unsigned long long)ring_originated, (unsigned long long)ring_freed);
    CHECKF(ring_hops == ring_originated * HOPS, "ring: %llu hops for %llu blocks",
           (unsigned long long)ring_hops, (unsigned long long)ring_originated);
    for (int i = 0; i < RING; i++) {
        CHECK(ring_q[i].head == NULL);
        CHECK(in_flight[i] == 0);
    }
    st_check_heap();
    printf("stress_prodcons: phase 2: ring of %d threads: %llu blocks x %d hops, %llu foreign "
           "reallocs, %.2f s%s\n",
           RING, (unsigned long long)ring_originated, HOPS, (unsigned long long)ring_reallocs,
           st_now() - t1, st_cap_note());
    printf("stress_prodcons: %d threads in all, bytes verified %.1f MiB, %.2f s\n",
           NPROD + NCONS + RING, ST_MIB(st_verified_total()), st_now() - t0);
    printf("stress_prodcons: ok\n");
    return 0;
}
