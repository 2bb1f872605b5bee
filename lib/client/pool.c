/* The client's callback pool: a few threads that run user callbacks and blocking follow-ups
 * (retries, route look-ups, periodic work), so nothing user-written runs on the I/O thread. */
#include "client.h"

typedef client_job_t job_t;

/* Jobs the I/O thread queues during one round of its loop wake the pool once, at the end of
 * the round (client_pool_release), not once per job: a read of many responses wakes one
 * thread (two for a long batch) instead of every idle thread in turn, and the I/O thread is
 * not preempted by each thread it wakes. A wake-up on a virtual machine costs tens of
 * microseconds; at 120,000 async sends a second they had been 22,000 a second. */
#define RELEASE_BATCH 32

struct client_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    bool stopping;
    int idle; /* threads waiting on cv: a post with none waiting signals nobody */
    int nthreads;
    pthread_t *threads;
    const net_loop_t *defer_loop; /* posts from its thread wait for client_pool_release */
    size_t deferred;              /* jobs queued by it since the last release */
};

static _Thread_local const client_pool_t *current_pool;

static job_t *pop(client_pool_t *p) {
    job_t *j = p->head;
    if (j) {
        p->head = j->next;
        if (!p->head) p->tail = NULL;
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
    pthread_mutex_lock(&p->mu);
    for (;;) {
        job_t *j = pop(p);
        if (!j) {
            if (p->stopping) break; /* queue drained */
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
            continue;
        }
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
    if (p->defer_loop && net_loop_on_thread(p->defer_loop))
        p->deferred++;
    else if (p->idle > 0)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return RMQ_OK;
}

void client_pool_defer_to(client_pool_t *p, const net_loop_t *loop) {
    pthread_mutex_lock(&p->mu);
    p->defer_loop = loop;
    pthread_mutex_unlock(&p->mu);
}

void client_pool_release(client_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    if (p->deferred > 0 && p->idle > 0) {
        if (p->deferred > RELEASE_BATCH)
            pthread_cond_broadcast(&p->cv);
        else
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
