/* store_record.c: records kept beside a store's objects where the store travels (its
 * off-site copy: the catalog, a manifest, a pack's index), sealed like its objects.
 * A record is a zstd frame of some bytes, sealed (store_crypt.c) when the store has a key.
 *   st:seal(data) -> record
 *   st:unseal(record) -> data | nil, msg, code ("badmsg": damaged, cut short, or another
 *     key's; "locked": sealed and the store has no key). A store with a key takes only
 *     sealed records: a plain one put in their place is refused, not read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "tend.h"
#include "store.h"

/* st:seal(data) -> record */
static int l_seal(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	size_t n;
	const char *data = luaL_checklstring(L, 2, &n);
	size_t bound = ZSTD_compressBound(n);
	char *frame = malloc(bound), *out = NULL;
	tend_seal *s = NULL;
	size_t z = frame ? ZSTD_compress(frame, bound, data, n, st->level) : 0;
	if (!frame || ZSTD_isError(z)) {
		free(frame);
		return luaL_error(L, "store: cannot compress a record");
	}
	if (!st->key) {
		lua_pushlstring(L, frame, z);
		free(frame);
		return 1;
	}
	s = malloc(sizeof *s);
	out = malloc(tend_seal_bound(z));
	if (s && out)
		lua_pushlstring(L, out, tend_seal_buffer(s, st->key, frame, z, out));
	free(s);
	free(out);
	free(frame);
	return s && out ? 1 : luaL_error(L, "store: out of memory");
}

typedef struct {
	char *p;
	size_t n, cap;
} grow;

static int to_grow(void *ctx, const char *p, size_t n)
{
	grow *g = ctx;
	if (n == 0)
		return 0;
	if (g->n + n > g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1 << 16;
		while (cap < g->n + n)
			cap *= 2;
		char *q = realloc(g->p, cap);
		if (!q) {
			errno = ENOMEM;
			return -1;
		}
		g->p = q;
		g->cap = cap;
	}
	memcpy(g->p + g->n, p, n);
	g->n += n;
	return 0;
}

/* The zstd frames (p, n) decompressed onto the stack (tend.h). 0, or EBADMSG. */
int tend_push_unzstd(lua_State *L, const char *p, size_t n)
{
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	grow g = {0};
	char buf[1 << 16];
	ZSTD_inBuffer in = {p, n, 0};
	size_t r = 1;
	while (dc) {
		ZSTD_outBuffer out = {buf, sizeof buf, 0};
		r = ZSTD_decompressStream(dc, &out, &in);
		if (ZSTD_isError(r) || to_grow(&g, buf, out.pos) != 0)
			break;
		if (in.pos == in.size && (r == 0 || out.pos < out.size))
			break; /* whole, or cut short: nothing more will come out */
	}
	int err = !dc || ZSTD_isError(r) || r != 0 ? EBADMSG : 0; /* r: 0 once the frame is whole */
	if (!err)
		lua_pushlstring(L, g.p ? g.p : "", g.n);
	ZSTD_freeDCtx(dc);
	free(g.p);
	return err;
}

/* st:unseal(record) -> data | nil, msg, code */
static int l_unseal(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	size_t n;
	const char *rec = luaL_checklstring(L, 2, &n);
	int sealed = tend_is_sealed(rec, n);
	if (sealed && !st->key)
		return tend_fail(L, "locked", "store %s: a sealed record, and the store has no key", st->dir);
	if (!sealed && st->key)
		return tend_fail(L, "badmsg", "store %s: a record that is not sealed, in an encrypted store", st->dir);
	if (!sealed)
		return tend_push_unzstd(L, rec, n) ? tend_fail(L, "badmsg", "store: a damaged record") : 1;
	tend_seal *s = calloc(1, sizeof *s);
	grow frame = {0};
	int err = s ? tend_unseal_push(s, st->key, rec, n, to_grow, &frame) : ENOMEM;
	if (!err)
		err = tend_unseal_end(s, to_grow, &frame, 1);
	if (s)
		sodium_memzero(s, sizeof *s);
	free(s);
	if (!err)
		err = tend_push_unzstd(L, frame.p ? frame.p : "", frame.n);
	free(frame.p);
	if (err)
		return tend_fail(L, err == ENOMEM ? "enomem" : "badmsg",
		                 "store: a damaged record (or one sealed with another key)");
	return 1;
}

const luaL_Reg tend_store_record_methods[] = {{"seal", l_seal}, {"unseal", l_unseal}, {NULL, NULL}};
