/* store.h: the object store's C face, shared by store.c (the handle, where an object
 * is), store_put.c, store_read.c, store_gc.c, store_pack.c (small objects in packs,
 * compressed by worker threads), store_crypt.c and archive.c (which feeds tar entries
 * straight in). */
#ifndef TEND_STORE_H
#define TEND_STORE_H
#include <limits.h>
#include <pthread.h>
#include <sys/types.h>
#include <sodium.h>

#define TEND_PACK_MAX (1 << 20) /* objects up to this size (uncompressed) are packed */
#define TEND_STORE_CHUNK (1 << 17) /* bytes read at a time */
#define TEND_STORE_CLASS "tend.store"

typedef struct {
	char hex[65];
	char pack[40];            /* "" while a worker still holds it */
	long long offset, length;
} tend_pending;

struct tend_pack_job;

#define TEND_SEAL_MAGIC "tendenc1"
#define TEND_SEAL_MAGIC_LEN 8
#define TEND_SEAL_CHUNK (64 << 10)

/* A secretstream over one object's frame, either way (store_crypt.c). */
typedef struct {
	crypto_secretstream_xchacha20poly1305_state state;
	unsigned char buf[TEND_SEAL_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES];
	size_t have;
	int stage; /* opening: 0 header, 1 chunks, 2 after the final chunk */
} tend_seal;

typedef struct {
	char dir[PATH_MAX - 128]; /* room left for /objects/ab/<62 hex> and temp names */
	int level;                /* zstd level */
	unsigned char *key;       /* the store key (sodium_malloc'd), or NULL: objects are sealed with it */
	tend_seal *seal;          /* for large objects, reused */
	void *zc;                 /* ZSTD_CCtx for large objects, reused */
	char *raw;                /* TEND_PACK_MAX + 1 bytes: an object's start, before we know its size */
	char *in, *out;           /* buffers, reused */
	long long written;        /* compressed bytes this handle added to the store */
	long long healed;         /* damaged objects it replaced with good copies */
	int added_fd;             /* where each object this handle adds is noted (a run file), or -1 */
	int closed;               /* st:close() ran: every method refuses */
	void *index, *find;       /* sqlite3 *: store/index.db, opened on first use; its look-up */
	/* the rest is guarded by mu (worker threads append to the pack) */
	pthread_mutex_t mu;
	pthread_cond_t more, room; /* a job was queued; a job was done */
	struct tend_pack_job *queue, *queue_tail;
	size_t queued_bytes;
	int busy, stopping, werr;  /* jobs being compressed; shutting down; first worker error */
	pthread_t *workers;
	int nworkers;
	int pack_fd;              /* the pack being appended to, or -1 */
	char pack[40];            /* its name */
	long long pack_off;
	tend_pending *pending;    /* queued or packed, not yet indexed */
	size_t npending, cappending;
	size_t *slots;            /* hash set over pending: index + 1, 0 = empty */
	size_t nslots;
	/* the reading end's, kept from one object to the next (store_read.c): a restore reads
	 * 15,000 small objects, and each was a new context and two 128 KB buffers (mmaps) */
	void *dz;                 /* ZSTD_DCtx */
	char *rd_in, *rd_out;
	tend_seal *rd_seal;
	int reading;              /* an object is being read (or a read was cut off by a Lua error):
	                           * a read meanwhile gets a context and buffers of its own */
} tend_store;

typedef struct {
	char hex[65];
	long long size; /* bytes in */
	int added;      /* 0 when the object was there already */
} tend_store_result;

/* Yields up to n bytes into buf: >0 bytes, 0 at the end, <0 error (errno set). */
typedef ssize_t (*tend_store_source)(void *ctx, char *buf, size_t n);

/* The last bytes that went by a stream, for a caller that checks its end (a dump's). */
typedef struct {
	char buf[256];
	size_t len;
} tend_tail;
void tend_tail_add(tend_tail *t, const char *p, size_t k);

int tend_store_put(tend_store *st, tend_store_source src, void *ctx, tend_store_result *res,
                   const char **what);

int tend_store_put_frame(tend_store *st, tend_store_source src, void *ctx, tend_store_result *res,
                         tend_tail *tail, const char **what);

/* An emit callback takes bytes on: 0, or -1 with errno set. */
typedef int (*tend_emit)(void *ctx, const char *p, size_t n);

/* Object hex's bytes into sink, checked against its hash. 0, or an errno value:
 * ENOENT no such object, EBADMSG damaged, ENOKEY sealed and the store has no key. */
int tend_store_read(tend_store *st, const char *hex, tend_emit sink, void *ctx);

/* store.c: the handle and where an object is */
#include <lua.h>
#include <lauxlib.h>
tend_store *tend_store_check(lua_State *L, int idx); /* the store at idx; raises when closed */
const char *tend_store_check_hex(lua_State *L, int idx);
void tend_store_object_path(const tend_store *st, const char *hex, char out[PATH_MAX]);
/* Where an object's frame is: a loose file (len -1: whole), or a range of a pack. 0 or ENOENT. */
int tend_store_locate(tend_store *st, const char *hex, char path[PATH_MAX], long long *off, long long *len);
int tend_store_exists(tend_store *st, const char *hex);
ssize_t tend_store_read_fd(void *ctx, char *buf, size_t n);
extern const luaL_Reg tend_store_put_methods[], tend_store_read_methods[], tend_store_gc_methods[],
    tend_store_record_methods[];

/* store_read.c: the object's bytes to sink (and its frame as stored to frame), checked */
int tend_store_read_object(tend_store *st, const char *hex, tend_emit sink, void *ctx, tend_emit frame,
                           void *frame_ctx);
int tend_store_sink_none(void *ctx, const char *p, size_t n);
int tend_store_fail_read(lua_State *L, int err, const char *hex); /* nil, msg, code for an errno */

/* store_crypt.c */
int tend_is_sealed(const char *p, size_t n);
size_t tend_seal_bound(size_t n);
int tend_seal_begin(tend_seal *s, const unsigned char *key, tend_emit emit, void *ctx);
int tend_seal_push(tend_seal *s, const char *p, size_t n, tend_emit emit, void *ctx);
int tend_seal_end(tend_seal *s, tend_emit emit, void *ctx);
size_t tend_seal_buffer(tend_seal *s, const unsigned char *key, const char *in, size_t n, char *out);
int tend_unseal_push(tend_seal *s, const unsigned char *key, const char *p, size_t n, tend_emit emit, void *ctx);
int tend_unseal_end(tend_seal *s, tend_emit emit, void *ctx, int final);

/* store_pack.c */
void *tend_pack_index_db(tend_store *st);
int tend_pack_index_find(tend_store *st, const char *hex, char pack[40], long long *off, long long *len);
tend_pending *tend_pack_pending(tend_store *st, const char *hex);
int tend_pack_queue(tend_store *st, const char *hex, const char *data, size_t len);
int tend_pack_drain(tend_store *st);
int tend_pack_index(tend_store *st, const char **why);
void tend_pack_close(tend_store *st);
#endif
