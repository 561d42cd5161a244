/* store_pack.c: small objects, packed. Creating a file per object costs more than the
 * object on most disks, so objects up to TEND_PACK_MAX bytes are appended to a pack,
 * DIR/packs/<name>.pack, and found through DIR/index.db. Compressing them is the
 * costly part of a backup, so it runs on worker threads while the caller goes on
 * reading and hashing: tend_pack_queue() hands one over, tend_pack_drain() waits for
 * all. An object queued or packed in this run is "pending" until tend_pack_index()
 * (after the packs are on disk) writes it to the index.
 * Locking: st->mu guards the pending set, the pack being written and the queue. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <sys/random.h>
#include <zstd.h>

#include "tend.h"
#include "store.h"

#define PACK_ROLL (256LL << 20)      /* a new pack after this many bytes */
#define QUEUE_BYTES (64u << 20)      /* how much raw data may wait for a worker */
#define MAX_WORKERS 4

/* ---- the index of packed objects (DIR/index.db) ---- */

void *tend_pack_index_db(tend_store *st)
{
	if (st->index)
		return st->index;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/index.db", st->dir);
	sqlite3 *db = NULL;
	sqlite3_stmt *find = NULL;
	if (tend_create_private(path) != 0 ||
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL;"
	                     "CREATE TABLE IF NOT EXISTS packed (hex TEXT PRIMARY KEY, pack TEXT NOT NULL,"
	                     " offset INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID;",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db, "SELECT pack, offset, length FROM packed WHERE hex = ?", -1,
	                       SQLITE_PREPARE_PERSISTENT, &find, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	st->index = db;
	st->find = find;
	return db;
}

/* Where an indexed object is: 1 and pack/offset/length, or 0. */
int tend_pack_index_find(tend_store *st, const char *hex, char pack[40], long long *off, long long *len)
{
	if (!tend_pack_index_db(st))
		return 0;
	sqlite3_stmt *q = st->find;
	int found = 0;
	sqlite3_bind_text(q, 1, hex, 64, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW) {
		snprintf(pack, 40, "%s", (const char *)sqlite3_column_text(q, 0));
		*off = sqlite3_column_int64(q, 1);
		*len = sqlite3_column_int64(q, 2);
		found = 1;
	}
	sqlite3_reset(q);
	return found;
}

/* ---- objects queued or packed in this run: a hash set over st->pending ---- */

static size_t slot_of(const char *hex, size_t nslots)
{
	unsigned long long h = 0;
	for (int i = 0; i < 16; i++)
		h = h << 4 | (unsigned)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
	return (size_t)(h & (nslots - 1));
}

/* The pending entry for hex, or NULL. Call with st->mu held. */
tend_pending *tend_pack_pending(tend_store *st, const char *hex)
{
	for (size_t i = st->nslots ? slot_of(hex, st->nslots) : 0; st->nslots && st->slots[i]; i = (i + 1) & (st->nslots - 1))
		if (memcmp(st->pending[st->slots[i] - 1].hex, hex, 64) == 0)
			return &st->pending[st->slots[i] - 1];
	return NULL;
}

static int pending_add(tend_store *st, const char *hex)
{
	if (st->npending == st->cappending) {
		size_t cap = st->cappending ? st->cappending * 2 : 1024;
		tend_pending *p = realloc(st->pending, cap * sizeof *p);
		if (!p)
			return ENOMEM;
		st->pending = p;
		st->cappending = cap;
	}
	if (2 * (st->npending + 1) > st->nslots) { /* rehash at half load */
		size_t n = st->nslots ? st->nslots * 2 : 2048;
		size_t *slots = calloc(n, sizeof *slots);
		if (!slots)
			return ENOMEM;
		free(st->slots);
		st->slots = slots;
		st->nslots = n;
		for (size_t k = 0; k < st->npending; k++) {
			size_t i = slot_of(st->pending[k].hex, n);
			while (slots[i])
				i = (i + 1) & (n - 1);
			slots[i] = k + 1;
		}
	}
	tend_pending *e = &st->pending[st->npending++];
	memcpy(e->hex, hex, 65);
	e->pack[0] = '\0'; /* not written yet */
	e->offset = e->length = -1;
	size_t i = slot_of(hex, st->nslots);
	while (st->slots[i])
		i = (i + 1) & (st->nslots - 1);
	st->slots[i] = st->npending;
	return 0;
}

/* Append a compressed frame to the current pack (a new one when none is open or it is
 * full), and note where it went. Call with st->mu held. 0 or an errno value. */
static int pack_append(tend_store *st, const char *hex, const char *frame, size_t n)
{
	if (st->pack_fd >= 0 && st->pack_off >= PACK_ROLL) {
		close(st->pack_fd); /* its objects are still pending; tend_pack_index indexes them */
		st->pack_fd = -1;
	}
	if (st->pack_fd < 0) {
		unsigned char rnd[8];
		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
			return EIO;
		snprintf(st->pack, sizeof st->pack, "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		         rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/packs/%s.pack", st->dir, st->pack);
		st->pack_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (st->pack_fd < 0)
			return errno;
		st->pack_off = 0;
	}
	if (tend_write_all(st->pack_fd, frame, n) != 0) {
		int err = errno;
		if (ftruncate(st->pack_fd, st->pack_off) != 0) { /* keep the pack's tail clean */
			close(st->pack_fd);
			st->pack_fd = -1;
		}
		return err;
	}
	tend_pending *e = tend_pack_pending(st, hex);
	snprintf(e->pack, sizeof e->pack, "%s", st->pack);
	e->offset = st->pack_off;
	e->length = (long long)n;
	st->pack_off += (long long)n;
	st->written += (long long)n;
	return 0;
}

/* ---- the workers ---- */

typedef struct tend_pack_job {
	struct tend_pack_job *next;
	char hex[65];
	size_t len;
	char data[];
} job;

static void *worker(void *arg)
{
	tend_store *st = arg;
	ZSTD_CCtx *z = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(TEND_PACK_MAX);
	char *frame = malloc(cap), *sealed = NULL;
	tend_seal *seal = NULL; /* once the store has a key (it may get one after we start) */
	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (!st->queue && !st->stopping)
			pthread_cond_wait(&st->more, &st->mu);
		job *j = st->queue;
		if (!j)
			break; /* stopping, and nothing left */
		st->queue = j->next;
		if (!st->queue)
			st->queue_tail = NULL;
		st->busy++;
		pthread_mutex_unlock(&st->mu);

		if (st->key && !seal) {
			seal = malloc(sizeof *seal);
			sealed = malloc(tend_seal_bound(cap));
		}
		int err = z && frame && (!st->key || (sealed && seal)) ? 0 : ENOMEM;
		size_t n = 0;
		const char *out = st->key ? sealed : frame;
		if (!err) {
			n = ZSTD_compressCCtx(z, frame, cap, j->data, j->len, st->level);
			if (ZSTD_isError(n))
				err = EIO;
			else if (st->key)
				n = tend_seal_buffer(seal, st->key, frame, n, sealed);
		}

		pthread_mutex_lock(&st->mu);
		if (!err && !st->werr)
			err = pack_append(st, j->hex, out, n);
		if (err && !st->werr)
			st->werr = err;
		st->queued_bytes -= j->len;
		st->busy--;
		free(j);
		pthread_cond_broadcast(&st->room);
	}
	pthread_mutex_unlock(&st->mu);
	if (seal)
		sodium_memzero(seal, sizeof *seal);
	free(seal);
	free(sealed);
	free(frame);
	ZSTD_freeCCtx(z);
	return NULL;
}

static int start_workers(tend_store *st)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) - 1; /* the caller keeps one core */
	n = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
	st->workers = calloc((size_t)n, sizeof(pthread_t));
	if (!st->workers)
		return ENOMEM;
	for (st->nworkers = 0; st->nworkers < n; st->nworkers++)
		if (pthread_create(&st->workers[st->nworkers], NULL, worker, st) != 0)
			break;
	return st->nworkers ? 0 : EAGAIN;
}

/* Hand a new object's bytes to a worker, and count it as pending from now on (the
 * caller has looked it up: only the caller's thread adds objects). Waits while too
 * much is queued. */
int tend_pack_queue(tend_store *st, const char *hex, const char *data, size_t len)
{
	job *j = malloc(sizeof *j + len);
	if (!j)
		return ENOMEM;
	j->next = NULL;
	memcpy(j->hex, hex, 65);
	j->len = len;
	memcpy(j->data, data, len);
	pthread_mutex_lock(&st->mu);
	int err = st->werr;
	if (!err && !st->nworkers)
		err = start_workers(st);
	while (!err && st->queued_bytes > QUEUE_BYTES && !st->werr)
		pthread_cond_wait(&st->room, &st->mu);
	if (!err)
		err = st->werr;
	if (!err)
		err = pending_add(st, hex);
	if (err) {
		pthread_mutex_unlock(&st->mu);
		free(j);
		return err;
	}
	if (st->queue_tail)
		st->queue_tail->next = j;
	else
		st->queue = j;
	st->queue_tail = j;
	st->queued_bytes += len;
	pthread_cond_signal(&st->more);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

/* Wait until every queued object is in a pack; 0 or the first error a worker met. */
int tend_pack_drain(tend_store *st)
{
	pthread_mutex_lock(&st->mu);
	while (st->queue || st->busy)
		pthread_cond_wait(&st->room, &st->mu);
	int err = st->werr;
	pthread_mutex_unlock(&st->mu);
	return err;
}

/* Stop the workers (after draining) and free what the packer holds. */
void tend_pack_close(tend_store *st)
{
	pthread_mutex_lock(&st->mu);
	st->stopping = 1;
	pthread_cond_broadcast(&st->more);
	pthread_mutex_unlock(&st->mu);
	for (int i = 0; i < st->nworkers; i++)
		pthread_join(st->workers[i], NULL);
	free(st->workers);
	st->workers = NULL;
	st->nworkers = 0;
	st->stopping = 0;
	if (st->pack_fd >= 0)
		close(st->pack_fd);
	st->pack_fd = -1;
	/* Objects still pending were packed but never indexed (the run failed before its
	 * sync): their packs hold nothing else, and no other process can have seen them,
	 * so they go now rather than wait for gc. */
	char last[40] = "";
	for (size_t i = 0; i < st->npending; i++) {
		const char *pack = st->pending[i].pack;
		if (pack[0] && strcmp(pack, last) != 0) {
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/packs/%s.pack", st->dir, pack);
			unlink(path);
			snprintf(last, sizeof last, "%s", pack);
		}
	}
	free(st->pending);
	free(st->slots);
	st->pending = NULL;
	st->slots = NULL;
	st->npending = st->cappending = st->nslots = 0;
	sqlite3_finalize(st->find);
	sqlite3_close_v2(st->index);
	st->find = st->index = NULL;
}

/* Index what was packed since the last call; the packs must be on disk already (an
 * index row never points at bytes a crash could lose). 0, or SQLITE_FULL / another
 * SQLite code with *why set. Call after tend_pack_drain. */
int tend_pack_index(tend_store *st, const char **why)
{
	if (st->pack_fd >= 0) { /* the next objects go to a new pack */
		close(st->pack_fd);
		st->pack_fd = -1;
	}
	if (!st->npending)
		return 0;
	sqlite3 *db = tend_pack_index_db(st);
	sqlite3_stmt *q = NULL;
	int ok = db && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
	         sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO packed (hex, pack, offset, length) VALUES (?, ?, ?, ?)",
	                            -1, &q, NULL) == SQLITE_OK;
	for (size_t i = 0; ok && i < st->npending; i++) {
		tend_pending *p = &st->pending[i];
		sqlite3_bind_text(q, 1, p->hex, 64, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, p->pack, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 3, p->offset);
		sqlite3_bind_int64(q, 4, p->length);
		ok = sqlite3_step(q) == SQLITE_DONE;
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	if (!ok || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int rc = db ? sqlite3_errcode(db) & 0xff : SQLITE_CANTOPEN;
		*why = rc == SQLITE_FULL ? "disk full" : db ? sqlite3_errmsg(db) : "cannot open index.db";
		if (db)
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc ? rc : SQLITE_ERROR;
	}
	st->npending = 0;
	memset(st->slots, 0, st->nslots * sizeof *st->slots);
	return 0;
}
