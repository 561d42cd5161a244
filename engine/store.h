/* store.h: the object store's C face, for primitives that feed it (archive.c). */
#ifndef TEND_STORE_H
#define TEND_STORE_H
#include <limits.h>
#include <sys/types.h>

typedef struct {
	char hex[65];
	char pack[40];
	long long offset, length;
} tend_pending;

typedef struct {
	char dir[PATH_MAX - 128]; /* room left for /objects/ab/<62 hex> and temp names */
	int level;                /* zstd level */
	void *zc;                 /* ZSTD_CCtx, reused object after object */
	char *in, *out;           /* buffers, reused */
	char *mem;                /* a small object's compressed frame, before it is packed */
	size_t memcap;
	void *index;              /* sqlite3 *: store/index.db, opened on first use */
	int pack_fd;              /* the pack being appended to, or -1 */
	char pack[40];            /* its name */
	long long pack_off;
	tend_pending *pending;    /* packed but not yet indexed (until sync) */
	size_t npending, cappending;
	size_t *slots;            /* hash set over pending: index + 1, 0 = empty */
	size_t nslots;
} tend_store;

typedef struct {
	char hex[65];
	long long size, stored; /* bytes in, bytes written (0 when the object existed) */
	int added;
} tend_store_result;

/* Yields up to n bytes into buf: >0 bytes, 0 at the end, <0 error (errno set). */
typedef ssize_t (*tend_store_source)(void *ctx, char *buf, size_t n);

int tend_store_put(tend_store *st, tend_store_source src, void *ctx, tend_store_result *res,
                   const char **what);

/* Decompress object hex into sink (0, or -1 with errno set), checking its hash.
 * 0, or an errno value: ENOENT no such object, EBADMSG damaged. */
typedef int (*tend_store_sink)(void *ctx, const char *p, size_t n);
int tend_store_read(tend_store *st, const char *hex, tend_store_sink sink, void *ctx);
#endif
