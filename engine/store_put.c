/* store_put.c: objects into the store. Bytes are hashed as they come; an object the
 * store holds whole already is not written again (a damaged copy is replaced: the store
 * heals whenever a good copy passes through); small ones go to packs (store_pack.c),
 * large ones are compressed (and sealed, with a key) into a temp file and renamed.
 *   st:put_file(path) / st:put_string(data) -> hex, size, added | nil, msg, code
 *   st:put_stream(stream) -> the same, and the stream's last bytes (a dump's end) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "tend.h"
#include "store.h"

/* Whether the store holds hex whole: an object this handle is packing is; one on disk
 * is read back and checked first. A damaged one counts as absent, so that the copy
 * being stored replaces it (a loose one is unlinked here; a packed one is re-indexed
 * at its new place by the next sync) and the store heals whenever a good copy passes
 * through. Anything that stops the check (no key, a read error) counts as present. */
static int object_whole(tend_store *st, const char *hex)
{
	pthread_mutex_lock(&st->mu);
	int pending = tend_pack_pending(st, hex) != NULL;
	pthread_mutex_unlock(&st->mu);
	if (pending)
		return 1;
	if (!tend_store_exists(st, hex))
		return 0;
	if (tend_store_read_object(st, hex, tend_store_sink_none, NULL, NULL, NULL) != EBADMSG)
		return 1;
	char path[PATH_MAX];
	tend_store_object_path(st, hex, path);
	unlink(path); /* when it was loose; a packed one is shadowed by its new entry */
	st->healed++;
	return 0;
}

/* Where a large object's frame goes: its temp file, sealed first when the store has a key. */
typedef struct {
	tend_store *st;
	int fd;
	long long stored;
} loose_out;

static int to_fd(void *ctx, const char *p, size_t n)
{
	loose_out *o = ctx;
	if (tend_write_all(o->fd, p, n) != 0)
		return -1;
	o->stored += (long long)n;
	return 0;
}

static int frame_out(loose_out *o, const char *p, size_t n)
{
	return o->st->key ? tend_seal_push(o->st->seal, p, n, to_fd, o) : to_fd(o, p, n);
}

/* An object this handle added, noted (one line of hex) in the run file, if any: what a
 * failed or killed run leaves is then known by name (tend.snapshot.sweep). */
static void note_added(tend_store *st, const char *hex)
{
	char line[65];
	memcpy(line, hex, 64);
	line[64] = '\n';
	if (st->added_fd >= 0 && tend_write_all(st->added_fd, line, sizeof line) != 0)
		st->added_fd = -1; /* best effort: gc still finds what is not noted */
}

/* Seal the temp file's end, close it, and give it its name (res->hex) unless the store
 * has the object already (then res->added is 0). err: what went wrong before. */
static int finish_loose(tend_store *st, loose_out *o, const char *tmp, int err, tend_store_result *res)
{
	char final[PATH_MAX], dir[PATH_MAX];
	if (!err && st->key && tend_seal_end(st->seal, to_fd, o) != 0)
		err = errno;
	if (close(o->fd) != 0 && !err)
		err = errno;
	if (!err) {
		tend_store_object_path(st, res->hex, final);
		snprintf(dir, sizeof dir, "%s/objects/%.2s", st->dir, res->hex);
		res->added = !object_whole(st, res->hex);
		if (res->added && mkdir(dir, 0700) != 0 && errno != EEXIST)
			err = errno;
		else if (res->added && rename(tmp, final) != 0)
			err = errno;
		else if (res->added) {
			st->written += o->stored;
			note_added(st, res->hex);
		}
	}
	if (err || !res->added)
		unlink(tmp);
	return err;
}

/* A temp file for a loose object, its sealing begun when the store has a key. */
static int start_loose(tend_store *st, loose_out *o, char tmp[PATH_MAX])
{
	if (st->key && !st->seal && !(st->seal = malloc(sizeof *st->seal)))
		return ENOMEM;
	snprintf(tmp, PATH_MAX, "%s/tmp/obj-XXXXXX", st->dir);
	*o = (loose_out){st, mkstemp(tmp), 0};
	if (o->fd < 0)
		return errno;
	if (st->key && tend_seal_begin(st->seal, st->key, to_fd, o) != 0) {
		int err = errno;
		close(o->fd);
		unlink(tmp);
		return err;
	}
	return 0;
}

/* Compress a large object (its first len bytes already read into st->raw) into a temp
 * file with zstd's own threads, hashing as it goes, then rename it into place. */
static int put_loose(tend_store *st, tend_store_source src, void *ctx, size_t len, tend_sha256 *h,
                     tend_store_result *res, const char **what)
{
	char tmp[PATH_MAX];
	if (!st->zc) {
		st->zc = ZSTD_createCCtx();
		st->in = malloc(TEND_STORE_CHUNK);
		st->out = malloc(ZSTD_CStreamOutSize());
	}
	ZSTD_CCtx *z = st->zc;
	if (!z || !st->in || !st->out)
		return ENOMEM;
	ZSTD_CCtx_reset(z, ZSTD_reset_session_only);
	ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, st->level);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	ZSTD_CCtx_setParameter(z, ZSTD_c_nbWorkers, cores > 1 ? (int)cores : 0); /* ignored without zstd MT */
	loose_out o;
	int err = start_loose(st, &o, tmp);
	if (err)
		return err;
	const char *chunk = st->raw;
	size_t n = len;
	for (int done = 0; !done && !err;) {
		if (!chunk) {
			ssize_t r = src(ctx, st->in, TEND_STORE_CHUNK);
			if (r < 0) {
				err = errno ? errno : EIO;
				*what = "read source";
				break;
			}
			done = r == 0;
			chunk = st->in;
			n = (size_t)r;
			tend_sha256_update(h, chunk, n);
			res->size += (long long)n;
		}
		ZSTD_inBuffer ib = {chunk, n, 0};
		size_t left;
		do {
			ZSTD_outBuffer ob = {st->out, ZSTD_CStreamOutSize(), 0};
			left = ZSTD_compressStream2(z, &ob, &ib, done ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(left)) {
				err = EIO;
				break;
			}
			if (frame_out(&o, st->out, ob.pos) != 0) {
				err = errno;
				break;
			}
		} while (done ? left != 0 : ib.pos < ib.size);
		chunk = NULL;
	}
	tend_sha256_hex(h, res->hex);
	return finish_loose(st, &o, tmp, err, res);
}

/* Store what src yields. Its first TEND_PACK_MAX + 1 bytes are read and hashed before
 * anything else: a small object is then looked up by its hash, and only a new one is
 * compressed (by a worker, into a pack); a larger one becomes a loose object. Returns 0
 * and fills res, or an errno value (ENOSPC for a full disk) with *what set. */
int tend_store_put(tend_store *st, tend_store_source src, void *ctx, tend_store_result *res,
                   const char **what)
{
	*what = "write object";
	if (!st->raw && !(st->raw = malloc(TEND_PACK_MAX + 1)))
		return ENOMEM;
	size_t len = 0;
	int done = 0;
	while (!done && len <= TEND_PACK_MAX) {
		ssize_t n = src(ctx, st->raw + len, TEND_PACK_MAX + 1 - len);
		if (n < 0) {
			*what = "read source";
			return errno ? errno : EIO;
		}
		done = n == 0;
		len += (size_t)n;
	}
	tend_sha256 *h = tend_sha256_new();
	tend_sha256_update(h, st->raw, len);
	res->size = (long long)len;
	res->added = 0;
	int err;
	if (!done) {
		err = put_loose(st, src, ctx, len, h, res, what);
	} else {
		tend_sha256_hex(h, res->hex);
		res->added = !object_whole(st, res->hex);
		err = res->added ? tend_pack_queue(st, res->hex, st->raw, len) : 0;
		if (res->added && !err)
			note_added(st, res->hex);
	}
	tend_sha256_free(h);
	return err;
}

/* Store a zstd frame (or frames) that src yields, as it is: a dump compressed on its
 * host is kept without compressing it again. It is decompressed on the way only to be
 * hashed (the name is the plain bytes' SHA-256) and measured; tail gets its last plain
 * bytes. Always a loose object. 0, or an errno value (EBADMSG: not a whole frame). */
int tend_store_put_frame(tend_store *st, tend_store_source src, void *ctx, tend_store_result *res,
                         tend_tail *tail, const char **what)
{
	*what = "write object";
	if (!st->in && !(st->in = malloc(TEND_STORE_CHUNK)))
		return ENOMEM;
	size_t outcap = ZSTD_DStreamOutSize();
	char *out = malloc(outcap), tmp[PATH_MAX];
	ZSTD_DCtx *z = ZSTD_createDCtx();
	tend_sha256 *h = tend_sha256_new();
	loose_out o;
	int err = out && z && h ? start_loose(st, &o, tmp) : ENOMEM, started = !err;
	size_t last = 1;
	res->size = 0;
	res->added = 0;
	for (ssize_t r; !err && (r = src(ctx, st->in, TEND_STORE_CHUNK)) != 0;) {
		if (r < 0) {
			err = errno ? errno : EIO;
			*what = "read source";
			break;
		}
		if (frame_out(&o, st->in, (size_t)r) != 0) {
			err = errno;
			break;
		}
		ZSTD_inBuffer ib = {st->in, (size_t)r, 0};
		while (ib.pos < ib.size && !err) {
			ZSTD_outBuffer ob = {out, outcap, 0};
			last = ZSTD_decompressStream(z, &ob, &ib);
			if (ZSTD_isError(last)) {
				err = EBADMSG;
				*what = "read source: not a zstd frame";
			}
			tend_sha256_update(h, out, ob.pos);
			tend_tail_add(tail, out, ob.pos);
			res->size += (long long)ob.pos;
		}
	}
	if (!err && last != 0) {
		err = EBADMSG;
		*what = "read source: the zstd frame is cut short";
	}
	if (h)
		tend_sha256_hex(h, res->hex);
	if (started)
		err = finish_loose(st, &o, tmp, err, res);
	tend_sha256_free(h);
	ZSTD_freeDCtx(z);
	free(out);
	return err;
}

typedef struct {
	const char *p;
	size_t left;
} mem_source;

static ssize_t read_mem(void *ctx, char *buf, size_t n)
{
	mem_source *m = ctx;
	size_t k = n < m->left ? n : m->left;
	memcpy(buf, m->p, k);
	m->p += k;
	m->left -= k;
	return (ssize_t)k;
}

static int push_put(lua_State *L, int err, const char *what, tend_store_result *res)
{
	if (err)
		return tend_fail_errno(L, err, "store: %s", what);
	lua_pushstring(L, res->hex);
	lua_pushinteger(L, res->size);
	lua_pushboolean(L, res->added);
	return 3;
}

/* st:put_file(path) -> hex, size, added | nil, msg, code */
static int l_put_file(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	const char *path = luaL_checkstring(L, 2);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tend_fail_errno(L, errno, "%s", path);
	tend_store_result res;
	const char *what;
	int err = tend_store_put(st, tend_store_read_fd, &fd, &res, &what);
	close(fd);
	return push_put(L, err, what, &res);
}

/* st:put_string(data) -> hex, size, added | nil, msg, code */
static int l_put_string(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	mem_source m;
	m.p = luaL_checklstring(L, 2, &m.left);
	tend_store_result res;
	const char *what;
	int err = tend_store_put(st, read_mem, &m, &res, &what);
	return push_put(L, err, what, &res);
}

void tend_tail_add(tend_tail *t, const char *p, size_t k)
{
	if (k >= sizeof t->buf) {
		memcpy(t->buf, p + k - sizeof t->buf, sizeof t->buf);
		t->len = sizeof t->buf;
	} else if (k) {
		size_t keep = t->len + k > sizeof t->buf ? sizeof t->buf - k : t->len;
		memmove(t->buf, t->buf + t->len - keep, keep);
		memcpy(t->buf + keep, p, k);
		t->len = keep + k;
	}
}

typedef struct {
	tend_reader in;
	tend_tail tail;
	int failed;
} stream_source;

static ssize_t read_stream(void *ctx, char *buf, size_t n)
{
	stream_source *s = ctx;
	ssize_t r = s->in.read(s->in.ctx, buf, n);
	if (r < 0) {
		s->failed = 1;
		errno = EIO;
		return -1;
	}
	tend_tail_add(&s->tail, buf, (size_t)r);
	return r;
}

/* st:put_stream(stream) -> hex, size, added, tail | nil, msg, code.
 * stream: an ssh channel or proc.open stream; tail: its last bytes (up to 256). */
static int l_put_stream(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	stream_source *src = lua_newuserdatauv(L, sizeof *src, 0);
	tend_check_reader(L, 2, &src->in);
	src->tail.len = 0;
	src->failed = 0;
	tend_store_result res;
	const char *what;
	int err = tend_store_put(st, read_stream, src, &res, &what);
	if (err && src->failed)
		return tend_fail(L, "stream", "store: %s", src->in.error(src->in.ctx));
	int n = push_put(L, err, what, &res);
	if (err)
		return n;
	lua_pushlstring(L, src->tail.buf, src->tail.len);
	return n + 1;
}

const luaL_Reg tend_store_put_methods[] = {
	{"put_file", l_put_file}, {"put_string", l_put_string}, {"put_stream", l_put_stream}, {NULL, NULL}};
