/* Data parallelism over MPI (Open MPI), for the trainer's hooks.
 *
 * libmpi is opened at run time (dlopen), and only when the process was
 * started by mpirun (OMPI_COMM_WORLD_SIZE in the environment): `qkv train`
 * alone never loads MPI, costs nothing at start-up and needs no MPI
 * installed; `mpirun -np N qkv train ...` finds Open MPI's libmpi.so.40.
 * (qkv's own binary is the same in both cases; see README, "Training on
 * several machines".)
 *
 * The gradient sum has a fixed order: the buffer is cut into chunks, each
 * chunk into world slices; rank k gathers slice k from every rank
 * (MPI_Alltoallv), adds them in rank order ((g0 + g1) + g2 ...: the order
 * of a one-process run's micro-batches) and every rank then gathers all
 * summed slices (MPI_Allgatherv). The traffic per rank is that of a ring
 * allreduce (2 (W - 1) / W of the buffer), and the result never depends on
 * timing or on the MPI library's reduction algorithms. */
#ifndef QKV_DIST_MPI_H
#define QKV_DIST_MPI_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"
#include "train/trainer.h"

typedef struct qkv_dist qkv_dist;

/* 1 when mpirun started this process (Open MPI's environment), else 0. */
int qkv_dist_launched(void);

/* Loads libmpi and calls MPI_Init. QKV_ERR_IO naming the library when it
 * cannot be loaded (Open MPI not installed), QKV_ERR_ARG when MPI_Init fails. */
qkv_status qkv_dist_init(qkv_dist **out);
int qkv_dist_rank(const qkv_dist *d);
int qkv_dist_world(const qkv_dist *d);

/* Sets the trainer's dist hooks (dist_ctx, reduce_grads, allgather, broadcast_flags). */
void qkv_dist_set_hooks(qkv_dist *d, qkv_train_hooks *h);

/* The hooks themselves (ctx: a qkv_dist), usable directly. */
qkv_status qkv_dist_reduce_grads(void *ctx, float *grads, size_t n);
qkv_status qkv_dist_allgather(void *ctx, const void *mine, size_t nbytes, void *all);
qkv_status qkv_dist_broadcast_flags(void *ctx, int *flags);
qkv_status qkv_dist_barrier(qkv_dist *d);

/* Overlap (see qkv_train_hooks): a thread of this module reduces the
 * ranges posted by reduce_ready while the backward pass goes on; the next
 * qkv_dist_reduce_grads posts the ranges not posted (in buffer order,
 * the same on every rank) and waits. MPI is called from one thread at a
 * time (MPI_THREAD_SERIALIZED). */
qkv_status qkv_dist_reduce_begin(void *ctx, float *grads, size_t n);
void qkv_dist_reduce_ready(void *ctx, size_t begin, size_t end);
/* Sets or clears the overlap hooks in h. */
void qkv_dist_set_overlap(qkv_dist *d, qkv_train_hooks *h, int on);

/* Seconds the training thread spent in reduce_grads so far (with overlap:
 * waiting for the reduction to end), and seconds the reduction ran in all
 * (for benchmarks). */
double qkv_dist_reduce_seconds(const qkv_dist *d);
double qkv_dist_comm_seconds(const qkv_dist *d);

/* Ends the whole job (every rank) with code: MPI_Abort. Does not return. */
void qkv_dist_abort(qkv_dist *d, int code);
/* MPI_Finalize and unload. */
void qkv_dist_free(qkv_dist *d);

#endif
