/*
 * crypto_par.c: spread one large encryption or decryption over every core.
 *
 * Sectors are independent cipher chains (crypto.h), so a buffer of many
 * sectors can be cut into slices that threads process at once.  A small
 * pool of helper threads (one fewer than the online CPUs, made on first
 * use and kept for the life of the process) takes slices from a queue;
 * the calling thread always processes one slice itself and then waits for
 * the others.  Helpers never wait on anything but the queue, so callers
 * in several threads at once (convert's workers decrypting while its
 * writer encrypts) cannot deadlock: at worst a caller's slices wait their
 * turn in the queue.
 *
 * Why here and not in the callers: the qcow2 engine and convert stay
 * single-threaded in their writer, yet the writer's encryption, the one
 * part of an encrypted convert that costs CPU, uses every core.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto_int.h"

/* Smallest slice worth a thread hand-off (cipher time >> queue cost). */
#define SLICE_MIN (64U * 1024)
#define MAX_HELPERS 15

/* One call's slices, on the caller's stack. */
struct par_call {
	struct crypto_ctx *ctx;
	bool enc;
	pthread_cond_t done_cv;	/* with pool.lock */
	unsigned pending;	/* slices not finished by helpers */
	int ret;		/* first error, 0 if none */
	struct qerr err;
};

struct par_slice {
	struct par_call *call;
	uint64_t sector;
	uint8_t *buf;
	size_t len;
	struct par_slice *next;
};

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t work_cv;
	struct par_slice *head, *tail;
	unsigned helpers;	/* 0: run everything in the caller */
	unsigned max_threads;	/* crypto_set_threads(); 0: every CPU */
} pool = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER,
	   .work_cv = PTHREAD_COND_INITIALIZER };

static void run_slice(struct par_slice *s, struct qerr *e, int *ret)
{
	*ret = crypto_ctx_crypt(s->call->ctx, s->sector, s->buf, s->len,
				s->call->enc, e);
}

static void *helper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		struct par_slice *s = pool.head;
		struct qerr e = { 0 };
		int ret;

		if (!s) {
			pthread_cond_wait(&pool.work_cv, &pool.lock);
			continue;
		}
		pool.head = s->next;
		if (!pool.head)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.lock);
		run_slice(s, &e, &ret);
		pthread_mutex_lock(&pool.lock);
		if (ret < 0 && s->call->ret == 0) {
			s->call->ret = ret;
			s->call->err = e;
		}
		if (--s->call->pending == 0)
			pthread_cond_signal(&s->call->done_cv);
	}
	return NULL;
}

static void pool_start(void)
{
	long cpus = pool.max_threads ? (long)pool.max_threads
				     : sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want = cpus > 1 ? (unsigned)(cpus - 1) : 0;
	pthread_attr_t attr;

	if (want > MAX_HELPERS)
		want = MAX_HELPERS;
	if (pthread_attr_init(&attr) != 0)
		return;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (unsigned i = 0; i < want; i++) {
		pthread_t t;

		if (pthread_create(&t, &attr, helper_main, NULL) != 0)
			break;
		pool.helpers++;
	}
	pthread_attr_destroy(&attr);
}

void crypto_set_threads(unsigned n)
{
	pool.max_threads = n;
}

int crypto_par_crypt(struct crypto_ctx *ctx, uint64_t sector, void *buf,
		     size_t len, bool enc, struct qerr *e)
{
	struct par_slice slices[MAX_HELPERS + 1];
	struct par_call call = { .ctx = ctx, .enc = enc };
	size_t sectors = len / CRYPTO_SECTOR_SIZE, per, n;
	uint8_t *p = buf;
	int ret;

	if (len < 2 * SLICE_MIN || len % CRYPTO_SECTOR_SIZE)
		return crypto_ctx_crypt(ctx, sector, buf, len, enc, e);
	pthread_once(&pool.once, pool_start);
	n = len / SLICE_MIN;
	if (n > pool.helpers + 1)
		n = pool.helpers + 1;
	if (n < 2)
		return crypto_ctx_crypt(ctx, sector, buf, len, enc, e);

	per = (sectors + n - 1) / n;
	for (size_t i = 0; i < n; i++) {
		size_t first = i * per, cnt = sectors - first < per
						      ? sectors - first : per;

		slices[i] = (struct par_slice){
			.call = &call, .sector = sector + first,
			.buf = p + first * CRYPTO_SECTOR_SIZE,
			.len = cnt * CRYPTO_SECTOR_SIZE,
		};
	}
	pthread_cond_init(&call.done_cv, NULL);
	pthread_mutex_lock(&pool.lock);
	call.pending = (unsigned)n - 1;
	for (size_t i = 1; i < n; i++) {
		if (pool.tail)
			pool.tail->next = &slices[i];
		else
			pool.head = &slices[i];
		pool.tail = &slices[i];
	}
	pthread_cond_broadcast(&pool.work_cv);
	pthread_mutex_unlock(&pool.lock);

	run_slice(&slices[0], e, &ret);

	pthread_mutex_lock(&pool.lock);
	while (call.pending)
		pthread_cond_wait(&call.done_cv, &pool.lock);
	pthread_mutex_unlock(&pool.lock);
	pthread_cond_destroy(&call.done_cv);
	if (ret == 0 && call.ret < 0) {
		ret = call.ret;
		qerr_set(e, ret, "%s", qerr_msg(&call.err));
	}
	return ret;
}
