/* The client's callback pool: a few threads that run user callbacks and blocking follow-ups
 * (retries, route look-ups, periodic work), so nothing user-written runs on the I/O thread. */
#include "client.h"

typedef client_job_t job_t;

/* A thread that hands the pool many jobs at a time (the instance's I/O thread for a read of
 * replies, a push consumer's service thread for a pull's messages) defers them: they wake
 * nobody until it calls client_pool_release. Waking a sleeping thread costs tens of
 * microseconds on a virtual machine, more than a short callback, so the release wakes as
 * many threads as the queued work needs: one per job while jobs take at least WAKE_WORTH_NS
 * (each then starts at once on an idle thread, as in Java's executors), fewer when the
 * measured average is shorter, at least one. Should the threads it woke all get stuck in
 * long jobs meanwhile, a later release finds the queue unserved for STALL_NS and wakes the
 * others. */
#define WAKE_WORTH_NS 50000
#define STALL_NS 5000000

struct client_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    size_t queued;
    bool stopping;
    int idle; /* threads waiting on cv: a post with none waiting signals nobody */
    int nthreads;
    pthread_t *threads;
    bool deferring; /* posts from defer_thread wait for client_pool_release */
    pthread_t defer_thread;
    size_t deferred;     /* jobs it queued since the last release */
    int64_t avg_job_ns;  /* moving average of the jobs' run times */
    uint64_t pops;       /* jobs taken so far */
    uint64_t seen_pops;  /* pops at the last release that saw progress */
    int64_t progress_ns; /* when a release last saw progress or an empty queue */
};

/* Run times are measured per run of jobs a thread takes back to back (at most BATCH_JOBS),
 * so the clock is read twice per run, not per job. */
#define BATCH_JOBS 64

static void note_batch(client_pool_t *p, int64_t took_ns, unsigned jobs) {
    p->avg_job_ns += (took_ns / (int64_t)jobs - p->avg_job_ns) / 8;
}

static _Thread_local const client_pool_t *current_pool;

static job_t *pop(client_pool_t *p) {
    job_t *j = p->head;
    if (j) {
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        p->queued--;
    }
    return j;
}

/* Runs j; its storage may be gone once fn starts, unless the pool owns it. */
static void run(job_t *j) {
    client_job_fn *fn = j->fn;
    void *arg = j->arg;
    bool pooled = j->pooled;
    fn(arg);
    if (pooled) cm_free(j);
}

static void *worker(void *arg) {
    client_pool_t *p = arg;
    current_pool = p;
    int64_t batch_start = 0; /* valid while batch_jobs > 0 */
    unsigned batch_jobs = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        job_t *j = pop(p);
        if (batch_jobs > 0 && (!j || batch_jobs == BATCH_JOBS)) {
            int64_t now = cm_mono_ns();
            note_batch(p, now - batch_start, batch_jobs);
            batch_jobs = 0;
            batch_start = now; /* the next run, if j, starts here */
        } else if (j && batch_jobs == 0) {
            batch_start = cm_mono_ns();
        }
        if (!j) {
            if (p->stopping) break; /* queue drained */
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
            continue;
        }
        batch_jobs++;
        p->pops++;
        pthread_mutex_unlock(&p->mu);
        run(j);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

client_pool_t *client_pool_new(int threads, rmq_err_t *err) {
    client_pool_t *p = cm_calloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = cm_calloc((size_t)threads, sizeof *p->threads);
    p->avg_job_ns = WAKE_WORTH_NS; /* until measured: a thread per job */
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0) {
            client_pool_destroy(p);
            *err = RMQ_ERR_IO;
            return NULL;
        }
    return p;
}

static rmq_err_t enqueue(client_pool_t *p, job_t *j, client_job_fn *fn, void *arg, bool pooled) {
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    j->pooled = pooled;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return RMQ_ERR_SHUTDOWN;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    if (p->deferring && pthread_equal(p->defer_thread, pthread_self()))
        p->deferred++;
    else if (p->idle > 0)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return RMQ_OK;
}

void client_pool_defer_here(client_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    p->deferring = true;
    p->defer_thread = pthread_self();
    pthread_mutex_unlock(&p->mu);
}

/* Whether jobs queued before this round have waited STALL_NS with no job taken since. */
static bool stalled(client_pool_t *p, int64_t now) {
    if (p->pops != p->seen_pops || p->queued <= p->deferred) {
        p->seen_pops = p->pops;
        p->progress_ns = now;
        return false;
    }
    return now - p->progress_ns > STALL_NS;
}

/* Threads to wake for what is queued: enough that each gets WAKE_WORTH_NS of work, counting
 * those already awake; all the queue can use when it stalled. */
static size_t wakes_needed(client_pool_t *p, int64_t now) {
    size_t awake = (size_t)(p->nthreads - p->idle);
    if (p->queued == 0) return 0;
    if (stalled(p, now)) return p->queued;
    int64_t avg = p->avg_job_ns > 0 ? p->avg_job_ns : 0;
    size_t need = avg >= WAKE_WORTH_NS
                      ? p->queued
                      : (size_t)(((int64_t)p->queued * avg + WAKE_WORTH_NS - 1) / WAKE_WORTH_NS);
    if (need == 0) need = 1;
    return need > awake ? need - awake : 0;
}

void client_pool_release(client_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    if (p->idle > 0 && !p->stopping && p->queued > 0) {
        size_t wake = wakes_needed(p, cm_mono_ns());
        for (size_t i = 0; i < wake && i < (size_t)p->idle; i++)
            pthread_cond_signal(&p->cv);
    }
    p->deferred = 0;
    pthread_mutex_unlock(&p->mu);
}

rmq_err_t client_pool_post(client_pool_t *p, client_job_fn *fn, void *arg) {
    job_t *j = cm_malloc(sizeof *j);
    rmq_err_t err = enqueue(p, j, fn, arg, true);
    if (err != RMQ_OK) cm_free(j);
    return err;
}

rmq_err_t client_pool_post_job(client_pool_t *p, client_job_t *j, client_job_fn *fn, void *arg) {
    return enqueue(p, j, fn, arg, false);
}

void client_pool_stop(client_pool_t *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    bool joined = p->stopping && p->nthreads == 0;
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (joined) return;
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* With no thread at all (creation failed), queued jobs still run exactly once. */
    for (job_t *j; (j = pop(p));)
        run(j);
    pthread_mutex_lock(&p->mu);
    p->nthreads = 0;
    pthread_mutex_unlock(&p->mu);
}

void client_pool_destroy(client_pool_t *p) {
    if (!p) return;
    client_pool_stop(p);
    cm_free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    cm_free(p);
}

bool client_pool_on_thread(const client_pool_t *p) {
    return current_pool == p;
}
