/* The client's callback pool: a few threads that run user callbacks and blocking follow-ups
 * (retries, route look-ups, periodic work), so nothing user-written runs on the I/O thread. */
#include "client.h"

typedef struct job {
    client_job_fn *fn;
    void *arg;
    struct job *next;
} job_t;

struct client_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    bool stopping;
    int nthreads;
    pthread_t *threads;
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

static void *worker(void *arg) {
    client_pool_t *p = arg;
    current_pool = p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        job_t *j = pop(p);
        if (!j) {
            if (p->stopping) break; /* queue drained */
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        cm_free(j);
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

rmq_err_t client_pool_post(client_pool_t *p, client_job_fn *fn, void *arg) {
    job_t *j = cm_malloc(sizeof *j);
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        cm_free(j);
        return RMQ_ERR_SHUTDOWN;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return RMQ_OK;
}

void client_pool_destroy(client_pool_t *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* With no thread at all (creation failed), queued jobs still run exactly once. */
    for (job_t *j; (j = pop(p));) {
        j->fn(j->arg);
        cm_free(j);
    }
    cm_free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    cm_free(p);
}

bool client_pool_on_thread(const client_pool_t *p) {
    return current_pool == p;
}
