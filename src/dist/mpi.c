#include "dist/mpi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/status.h"
#include "kernels/vec_add.h"

/* Open MPI's handles are pointers to its predefined objects (mpi.h:
 * MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float), so
 * they are looked up by name; the calls take them by value as void *. This
 * avoids a build-time dependency on mpi.h and libmpi. Open MPI ABI 40
 * (3.x to 5.x). */
typedef void *mpi_handle;
#define MPI_OK 0

#define DIST_MAX_RANGES 1024

struct qkv_dist {
    void *lib;
    /* overlap: ranges [begin[i], end[i]) posted, reduced by the thread in order */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int thread_up, quit, active;
    float *g;
    size_t n;
    size_t begin[DIST_MAX_RANGES], end[DIST_MAX_RANGES];
    int n_posted, n_done;
    qkv_status err;
    double comm_s;
    mpi_handle comm, t_float, t_byte, t_int;
    int rank, world;
    double reduce_s;
    float *recv;      /* [chunk] slices from every rank */
    int *counts, *displs, *rcounts, *rdispls; /* [world] */
    int (*Init_thread)(int *, char ***, int, int *);
    int (*Finalize)(void);
    int (*Comm_rank)(mpi_handle, int *);
    int (*Comm_size)(mpi_handle, int *);
    int (*Abort)(mpi_handle, int);
    int (*Barrier)(mpi_handle);
    int (*Bcast)(void *, int, mpi_handle, int, mpi_handle);
    int (*Allgather)(const void *, int, mpi_handle, void *, int, mpi_handle, mpi_handle);
    int (*Allgatherv)(const void *, int, mpi_handle, void *, const int *, const int *, mpi_handle, mpi_handle);
    int (*Alltoallv)(const void *, const int *, const int *, mpi_handle, void *, const int *, const int *,
                     mpi_handle, mpi_handle);
    int (*Ialltoallv)(const void *, const int *, const int *, mpi_handle, void *, const int *, const int *,
                      mpi_handle, mpi_handle, mpi_handle *);
    int (*Iallgatherv)(const void *, int, mpi_handle, void *, const int *, const int *, mpi_handle, mpi_handle,
                       mpi_handle *);
    int (*Test)(mpi_handle *, int *, void *);
};

/* floats per chunk of the reduction: bounds the receive buffer (16 MB) */
#define DIST_CHUNK (4 << 20)

int qkv_dist_launched(void)
{
    const char *w = getenv("OMPI_COMM_WORLD_SIZE");
    return w && *w;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

qkv_status qkv_dist_init(qkv_dist **out)
{
    *out = NULL;
    qkv_dist *d = calloc(1, sizeof *d);
    if (!d)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    /* RTLD_GLOBAL: Open MPI's plugins resolve libmpi's symbols through it */
    const char *name = "libmpi.so.40";
    d->lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!d->lib) {
        const char *e = dlerror();
        free(d);
        return qkv_fail(QKV_ERR_IO, "started by mpirun, but %s (Open MPI) cannot be loaded: %s (install "
                                    "openmpi-bin and libopenmpi3, or scripts/install-deps)", name, e ? e : "");
    }
    struct {
        const char *sym;
        void **slot;
    } fns[] = {
        {"MPI_Init_thread", (void **)&d->Init_thread},          {"MPI_Finalize", (void **)&d->Finalize},
        {"MPI_Comm_rank", (void **)&d->Comm_rank}, {"MPI_Comm_size", (void **)&d->Comm_size},
        {"MPI_Abort", (void **)&d->Abort},         {"MPI_Barrier", (void **)&d->Barrier},
        {"MPI_Bcast", (void **)&d->Bcast},         {"MPI_Allgather", (void **)&d->Allgather},
        {"MPI_Allgatherv", (void **)&d->Allgatherv}, {"MPI_Alltoallv", (void **)&d->Alltoallv},
        {"MPI_Ialltoallv", (void **)&d->Ialltoallv}, {"MPI_Iallgatherv", (void **)&d->Iallgatherv},
        {"MPI_Test", (void **)&d->Test},
        {"ompi_mpi_comm_world", &d->comm},        {"ompi_mpi_float", &d->t_float},
        {"ompi_mpi_byte", &d->t_byte},            {"ompi_mpi_int", &d->t_int},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        *fns[i].slot = dlsym(d->lib, fns[i].sym);
        if (!*fns[i].slot) {
            qkv_status s = qkv_fail(QKV_ERR_IO, "%s has no symbol %s: not Open MPI 3 to 5?", name, fns[i].sym);
            dlclose(d->lib);
            free(d);
            return s;
        }
    }
    /* Open MPI's MPI_THREAD_SERIALIZED (mpi.h: MPI_THREAD_SINGLE 0, FUNNELED 1, SERIALIZED 2) */
    int provided = 0;
    if (d->Init_thread(NULL, NULL, 2, &provided) != MPI_OK) {
        dlclose(d->lib);
        free(d);
        return qkv_fail(QKV_ERR_ARG, "MPI_Init failed");
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->Comm_rank(d->comm, &d->rank);
    d->Comm_size(d->comm, &d->world);
    d->counts = calloc((size_t)d->world * 4, sizeof(int));
    d->recv = malloc(DIST_CHUNK * sizeof(float));
    if (!d->counts || !d->recv) {
        qkv_dist_free(d);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    d->displs = d->counts + d->world;
    d->rcounts = d->displs + d->world;
    d->rdispls = d->rcounts + d->world;
    *out = d;
    return QKV_OK;
}

int qkv_dist_rank(const qkv_dist *d) { return d->rank; }
int qkv_dist_world(const qkv_dist *d) { return d->world; }
double qkv_dist_reduce_seconds(const qkv_dist *d) { return d->reduce_s; }

void qkv_dist_set_hooks(qkv_dist *d, qkv_train_hooks *h)
{
    h->dist_ctx = d;
    h->reduce_grads = qkv_dist_reduce_grads;
    h->allgather = qkv_dist_allgather;
    h->broadcast_flags = qkv_dist_broadcast_flags;
    qkv_dist_set_overlap(d, h, 1);
}

void qkv_dist_set_overlap(qkv_dist *d, qkv_train_hooks *h, int on);

/* Waits for a non-blocking call, testing every 50 us and sleeping between:
 * Open MPI's blocking calls spin, which in the reduction thread would take
 * a core from the backward pass it is meant to overlap. */
static int wait_polling(qkv_dist *d, mpi_handle *req)
{
    int done = 0;
    for (;;) {
        if (d->Test(req, &done, NULL) != MPI_OK)
            return -1;
        if (done)
            return 0;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

/* One chunk g[0..n): see the top of dist/mpi.h. polling: from the
 * reduction thread (non-blocking calls, see wait_polling). */
static qkv_status reduce_chunk(qkv_dist *d, float *g, int n, int polling)
{
    int W = d->world, base = n / W, extra = n % W;
    for (int k = 0, off = 0; k < W; k++) {
        d->counts[k] = base + (k < extra);
        d->displs[k] = off;
        off += d->counts[k];
    }
    int mine = d->counts[d->rank];
    for (int r = 0; r < W; r++) {
        d->rcounts[r] = mine;
        d->rdispls[r] = r * mine;
    }
    mpi_handle req = NULL;
    if (polling ? d->Ialltoallv(g, d->counts, d->displs, d->t_float, d->recv, d->rcounts, d->rdispls, d->t_float,
                                d->comm, &req) != MPI_OK || wait_polling(d, &req) != 0
                : d->Alltoallv(g, d->counts, d->displs, d->t_float, d->recv, d->rcounts, d->rdispls, d->t_float,
                               d->comm) != MPI_OK)
        return qkv_fail(QKV_ERR_IO, "MPI_Alltoallv failed in the gradient reduction");
    /* rank order: slice = recv[0]; slice += recv[1]; ... */
    float *slice = d->recv;
    for (int r = 1; r < W; r++)
        vec_add(slice, d->recv + (size_t)r * (size_t)mine, (size_t)mine);
    /* slice stays in recv[0..mine): gather every rank's summed slice into g */
    if (polling ? d->Iallgatherv(slice, mine, d->t_float, g, d->counts, d->displs, d->t_float, d->comm, &req) !=
                          MPI_OK || wait_polling(d, &req) != 0
                : d->Allgatherv(slice, mine, d->t_float, g, d->counts, d->displs, d->t_float, d->comm) != MPI_OK)
        return qkv_fail(QKV_ERR_IO, "MPI_Allgatherv failed in the gradient reduction");
    return QKV_OK;
}

static qkv_status reduce_range(qkv_dist *d, float *grads, size_t n, int polling)
{
    double t0 = now_s();
    for (size_t off = 0; off < n; off += DIST_CHUNK) {
        size_t m = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        QKV_TRY(reduce_chunk(d, grads + off, (int)m, polling));
    }
    d->comm_s += now_s() - t0;
    return QKV_OK;
}

static void *overlap_thread(void *arg)
{
    qkv_dist *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->quit && d->n_done == d->n_posted)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->quit)
            break;
        int i = d->n_done;
        size_t b = d->begin[i], e = d->end[i];
        pthread_mutex_unlock(&d->mu);
        qkv_status s = d->err == QKV_OK ? reduce_range(d, d->g + b, e - b, 1) : d->err;
        pthread_mutex_lock(&d->mu);
        if (s != QKV_OK && d->err == QKV_OK)
            d->err = s;
        d->n_done++;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void post_range(qkv_dist *d, size_t b, size_t e)
{
    if (e <= b)
        return;
    pthread_mutex_lock(&d->mu);
    if (d->n_posted < DIST_MAX_RANGES) {
        d->begin[d->n_posted] = b;
        d->end[d->n_posted] = e;
        d->n_posted++;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
}

qkv_status qkv_dist_reduce_begin(void *ctx, float *grads, size_t n)
{
    qkv_dist *d = ctx;
    if (!d->thread_up) {
        if (pthread_create(&d->thread, NULL, overlap_thread, d) != 0)
            return qkv_fail(QKV_ERR_NOMEM, "cannot start the gradient-reduction thread");
        d->thread_up = 1;
    }
    pthread_mutex_lock(&d->mu);
    d->g = grads;
    d->n = n;
    d->n_posted = d->n_done = 0;
    d->err = QKV_OK;
    d->active = 1;
    pthread_mutex_unlock(&d->mu);
    return QKV_OK;
}

void qkv_dist_reduce_ready(void *ctx, size_t begin, size_t end)
{
    qkv_dist *d = ctx;
    /* the last slot is kept for the ranges never posted */
    if (d->active && d->n_posted < DIST_MAX_RANGES / 2)
        post_range(d, begin, end);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

qkv_status qkv_dist_reduce_grads(void *ctx, float *grads, size_t n)
{
    qkv_dist *d = ctx;
    double t0 = now_s();
    qkv_status s = QKV_OK;
    if (d->active) {
        /* the gaps between the posted ranges, in buffer order */
        size_t pairs[2 * DIST_MAX_RANGES];
        pthread_mutex_lock(&d->mu);
        int k = d->n_posted;
        for (int i = 0; i < k; i++) {
            pairs[2 * i] = d->begin[i];
            pairs[2 * i + 1] = d->end[i];
        }
        pthread_mutex_unlock(&d->mu);
        qsort(pairs, (size_t)k, 2 * sizeof(size_t), cmp_size);
        size_t at = 0;
        for (int i = 0; i < k; i++) {
            post_range(d, at, pairs[2 * i]);
            at = pairs[2 * i + 1];
        }
        post_range(d, at, d->n);
        pthread_mutex_lock(&d->mu);
        while (d->n_done < d->n_posted)
            pthread_cond_wait(&d->cv, &d->mu);
        s = d->err;
        d->active = 0;
        pthread_mutex_unlock(&d->mu);
    } else {
        s = reduce_range(d, grads, n, 0);
    }
    d->reduce_s += now_s() - t0;
    return s;
}

double qkv_dist_comm_seconds(const qkv_dist *d) { return d->comm_s; }

void qkv_dist_set_overlap(qkv_dist *d, qkv_train_hooks *h, int on)
{
    (void)d;
    h->reduce_begin = on ? qkv_dist_reduce_begin : NULL;
    h->reduce_ready = on ? qkv_dist_reduce_ready : NULL;
}

qkv_status qkv_dist_allgather(void *ctx, const void *mine, size_t nbytes, void *all)
{
    qkv_dist *d = ctx;
    if (nbytes > (1u << 30))
        return qkv_fail(QKV_ERR_ARG, "allgather of %zu bytes: too large", nbytes);
    if (d->Allgather(mine, (int)nbytes, d->t_byte, all, (int)nbytes, d->t_byte, d->comm) != MPI_OK)
        return qkv_fail(QKV_ERR_IO, "MPI_Allgather failed");
    return QKV_OK;
}

qkv_status qkv_dist_broadcast_flags(void *ctx, int *flags)
{
    qkv_dist *d = ctx;
    if (d->Bcast(flags, 1, d->t_int, 0, d->comm) != MPI_OK)
        return qkv_fail(QKV_ERR_IO, "MPI_Bcast failed");
    return QKV_OK;
}

qkv_status qkv_dist_barrier(qkv_dist *d)
{
    if (d->Barrier(d->comm) != MPI_OK)
        return qkv_fail(QKV_ERR_IO, "MPI_Barrier failed");
    return QKV_OK;
}

void qkv_dist_abort(qkv_dist *d, int code)
{
    d->Abort(d->comm, code);
    abort(); /* MPI_Abort does not return */
}

void qkv_dist_free(qkv_dist *d)
{
    if (!d)
        return;
    if (d->thread_up) {
        pthread_mutex_lock(&d->mu);
        d->quit = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    if (d->Finalize)
        d->Finalize();
    free(d->counts);
    free(d->recv);
    /* libmpi stays loaded: its plugins may still run exit handlers */
    free(d);
}
