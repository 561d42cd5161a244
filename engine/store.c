/* store.c: a content-addressed object store on local disk.
 * An object is the zstd frame of some bytes, named by the SHA-256 of those bytes:
 * DIR/objects/ab/cdef... (plain `zstd -d` reads one). Writes hash and compress in one
 * pass into DIR/tmp, then rename: a half-object never has its final name, and an object
 * that exists is never written twice. Durability is batched: st:sync() (syncfs) before
 * a snapshot that needs the objects is recorded, instead of an fsync per object.
 *   st = store.open(dir [, level])   st:put_file(path) / st:put_string(data)
 *     -> hex, size, added, stored_bytes | nil, msg, code
 *   st:put_stream(stream) -> the same, and the stream's last bytes (a dump's end)
 *   st:has(hex)  st:get_file(hex, dest [, mode])  st:get_string(hex)  st:verify(hex)
 *   st:write_to(hex, stream)
 */
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

#define STORE_CLASS "tend.store"
#define CHUNK (1 << 17)

static tend_store *check_store(lua_State *L) { return luaL_checkudata(L, 1, STORE_CLASS); }

static int valid_hex(const char *hex)
{
	if (strlen(hex) != 64)
		return 0;
	for (const char *p = hex; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static void object_path(const tend_store *st, const char *hex, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/objects/%.2s/%s", st->dir, hex, hex + 2);
}

/* Compress what src yields into a temp file while hashing it, then move it into place.
 * Returns 0 and fills res, or an errno value (ENOSPC for a full disk) with *what set. */
int tend_store_put(tend_store *st, tend_store_source src, void *ctx, tend_store_result *res,
                   const char **what)
{
	char tmp[PATH_MAX], final[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s/tmp/obj-XXXXXX", st->dir);
	int fd = mkstemp(tmp), err = 0;
	*what = "write object";
	if (fd < 0)
		return errno;
	if (!st->zc) {
		st->zc = ZSTD_createCCtx();
		st->in = malloc(CHUNK);
		st->out = malloc(ZSTD_CStreamOutSize());
	}
	ZSTD_CCtx *z = st->zc;
	ZSTD_CCtx_reset(z, ZSTD_reset_session_only);
	ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, st->level);
	tend_sha256 *h = tend_sha256_new();
	char *in = st->in, *out = st->out;
	res->size = res->stored = 0;
	for (int done = 0; !done && !err && z && in && out;) {
		ssize_t n = src(ctx, in, CHUNK);
		if (n < 0) {
			err = errno ? errno : EIO;
			*what = "read source";
			break;
		}
		done = n == 0;
		tend_sha256_update(h, in, (size_t)n);
		res->size += (long long)n;
		ZSTD_inBuffer ib = {in, (size_t)n, 0};
		size_t left;
		do {
			ZSTD_outBuffer ob = {out, ZSTD_CStreamOutSize(), 0};
			left = ZSTD_compressStream2(z, &ob, &ib, done ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(left) || tend_write_all(fd, out, ob.pos) != 0) {
				err = ZSTD_isError(left) ? EIO : errno;
				break;
			}
			res->stored += (long long)ob.pos;
		} while (done ? left != 0 : ib.pos < ib.size);
	}
	if (!z || !in || !out)
		err = ENOMEM;
	tend_sha256_hex(h, res->hex);
	tend_sha256_free(h);
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err) {
		object_path(st, res->hex, final);
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/objects/%.2s", st->dir, res->hex);
		res->added = access(final, F_OK) != 0;
		if (res->added && mkdir(dir, 0700) != 0 && errno != EEXIST)
			err = errno;
		else if (res->added && rename(tmp, final) != 0)
			err = errno;
	}
	if (err || !res->added)
		unlink(tmp);
	return err;
}

static ssize_t read_fd(void *ctx, char *buf, size_t n)
{
	ssize_t r;
	while ((r = read(*(int *)ctx, buf, n)) < 0 && errno == EINTR)
		;
	return r;
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
	lua_pushinteger(L, res->added ? res->stored : 0);
	return 4;
}

/* st:put_file(path) -> hex, size, added, stored_bytes | nil, msg, code */
static int l_put_file(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *path = luaL_checkstring(L, 2);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tend_fail_errno(L, errno, "%s", path);
	tend_store_result res;
	const char *what;
	int err = tend_store_put(st, read_fd, &fd, &res, &what);
	close(fd);
	return push_put(L, err, what, &res);
}

/* st:put_string(data) -> hex, size, added, stored_bytes | nil, msg, code */
static int l_put_string(lua_State *L)
{
	tend_store *st = check_store(L);
	mem_source m;
	m.p = luaL_checklstring(L, 2, &m.left);
	tend_store_result res;
	const char *what;
	int err = tend_store_put(st, read_mem, &m, &res, &what);
	return push_put(L, err, what, &res);
}

typedef struct {
	tend_reader in;
	char tail[256]; /* the last bytes that went by, for a caller that checks the end */
	size_t taillen;
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
	size_t k = (size_t)r;
	if (k >= sizeof s->tail) {
		memcpy(s->tail, buf + k - sizeof s->tail, sizeof s->tail);
		s->taillen = sizeof s->tail;
	} else if (k) {
		size_t keep = s->taillen + k > sizeof s->tail ? sizeof s->tail - k : s->taillen;
		memmove(s->tail, s->tail + s->taillen - keep, keep);
		memcpy(s->tail + keep, buf, k);
		s->taillen = keep + k;
	}
	return r;
}

/* st:put_stream(stream) -> hex, size, added, stored_bytes, tail | nil, msg, code.
 * stream: an ssh channel or proc.open stream; tail: its last bytes (up to 256). */
static int l_put_stream(lua_State *L)
{
	tend_store *st = check_store(L);
	stream_source *src = lua_newuserdatauv(L, sizeof *src, 0);
	tend_check_reader(L, 2, &src->in);
	src->taillen = 0;
	src->failed = 0;
	tend_store_result res;
	const char *what;
	int err = tend_store_put(st, read_stream, src, &res, &what);
	if (err && src->failed)
		return tend_fail(L, "stream", "store: %s", src->in.error(src->in.ctx));
	int n = push_put(L, err, what, &res);
	if (err)
		return n;
	lua_pushlstring(L, src->tail, src->taillen);
	return n + 1;
}

static const char *check_hex(lua_State *L, int idx)
{
	const char *hex = luaL_checkstring(L, idx);
	luaL_argcheck(L, valid_hex(hex), idx, "not a SHA-256 in hex");
	return hex;
}

/* st:has(hex) -> boolean */
static int l_has(lua_State *L)
{
	tend_store *st = check_store(L);
	char path[PATH_MAX];
	object_path(st, check_hex(L, 2), path);
	lua_pushboolean(L, access(path, F_OK) == 0);
	return 1;
}

int tend_store_read(tend_store *st, const char *hex, tend_store_sink sink, void *ctx)
{
	char path[PATH_MAX];
	object_path(st, hex, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
	if (fd < 0)
		return errno;
	ZSTD_DCtx *z = ZSTD_createDCtx();
	tend_sha256 *h = tend_sha256_new();
	size_t outcap = ZSTD_DStreamOutSize();
	char *in = malloc(CHUNK), *out = malloc(outcap);
	size_t last = 1;
	ssize_t r;
	while (!err && in && out && (r = read_fd(&fd, in, CHUNK)) != 0) {
		if (r < 0) {
			err = errno;
			break;
		}
		ZSTD_inBuffer ib = {in, (size_t)r, 0};
		while (ib.pos < ib.size && !err) {
			ZSTD_outBuffer ob = {out, outcap, 0};
			last = ZSTD_decompressStream(z, &ob, &ib);
			if (ZSTD_isError(last))
				err = EBADMSG;
			else if (ob.pos) {
				tend_sha256_update(h, out, ob.pos);
				if (sink(ctx, out, ob.pos) != 0)
					err = errno ? errno : EIO;
			}
		}
	}
	if (!in || !out)
		err = ENOMEM;
	char got[65];
	tend_sha256_hex(h, got);
	if (!err && (last != 0 || strcmp(got, hex) != 0))
		err = EBADMSG;
	free(in);
	free(out);
	ZSTD_freeDCtx(z);
	tend_sha256_free(h);
	close(fd);
	return err;
}

static int fail_read(lua_State *L, int err, const char *hex)
{
	if (err == EBADMSG)
		return tend_fail(L, "corrupt", "store: object %.12s is damaged", hex);
	if (err == ENOENT)
		return tend_fail(L, "enoent", "store: no object %.12s", hex);
	return tend_fail_errno(L, err, "store: object %.12s", hex);
}

static int sink_buffer(void *ctx, const char *p, size_t n)
{
	luaL_addlstring(ctx, p, n);
	return 0;
}

/* st:get_string(hex) -> data | nil, msg, code */
static int l_get_string(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *hex = check_hex(L, 2);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	int err = tend_store_read(st, hex, sink_buffer, &b);
	if (err)
		return fail_read(L, err, hex);
	luaL_pushresult(&b);
	return 1;
}

static int sink_fd(void *ctx, const char *p, size_t n) { return tend_write_all(*(int *)ctx, p, n); }

static int sink_none(void *ctx, const char *p, size_t n)
{
	(void)ctx, (void)p, (void)n;
	return 0;
}

/* st:get_file(hex, dest [, mode]) -> true | nil, msg, code.  dest appears whole or not
 * at all (temp file beside it, then rename). */
static int l_get_file(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *hex = check_hex(L, 2);
	const char *dest = luaL_checkstring(L, 3);
	mode_t mode = (mode_t)luaL_optinteger(L, 4, 0644);
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tend-XXXXXX", dest);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return tend_fail_errno(L, errno, "write %s", dest);
	int err = tend_store_read(st, hex, sink_fd, &fd);
	if (!err && fchmod(fd, mode) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err && rename(tmp, dest) != 0)
		err = errno;
	if (err) {
		unlink(tmp);
		return err == EBADMSG || err == ENOENT ? fail_read(L, err, hex)
		                                       : tend_fail_errno(L, err, "write %s", dest);
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int sink_writer(void *ctx, const char *p, size_t n)
{
	tend_writer *w = ctx;
	if (w->write(w->ctx, p, n) != 0) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

/* st:write_to(hex, stream) -> true | nil, msg, code.  The object's bytes into a stream
 * (an ssh channel, or proc.open with stdin_pipe), verified; no end-of-file is sent. */
static int l_write_to(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *hex = check_hex(L, 2);
	tend_writer w;
	tend_check_writer(L, 3, &w);
	int err = tend_store_read(st, hex, sink_writer, &w);
	if (err == EPIPE)
		return tend_fail(L, "stream", "store: object %.12s: %s", hex, w.error(w.ctx));
	if (err)
		return fail_read(L, err, hex);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:sync() -> true | nil, msg, code: everything written to the store is on disk. */
static int l_sync(lua_State *L)
{
	tend_store *st = check_store(L);
	int fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return tend_fail_errno(L, err, "store %s: sync", st->dir);
	}
	close(fd);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_gc(lua_State *L)
{
	tend_store *st = luaL_checkudata(L, 1, STORE_CLASS);
	ZSTD_freeCCtx(st->zc);
	free(st->in);
	free(st->out);
	st->zc = NULL;
	st->in = st->out = NULL;
	return 0;
}

/* st:verify(hex) -> true | nil, msg, code ("corrupt" when damaged) */
static int l_verify(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *hex = check_hex(L, 2);
	int err = tend_store_read(st, hex, sink_none, NULL);
	if (err)
		return fail_read(L, err, hex);
	lua_pushboolean(L, 1);
	return 1;
}

/* open(dir [, level]) -> store | nil, msg, code.  Creates dir/objects and dir/tmp (0700). */
static int l_open(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	int level = (int)luaL_optinteger(L, 2, 3);
	tend_store *st = lua_newuserdatauv(L, sizeof *st, 0);
	memset(st, 0, sizeof *st);
	luaL_setmetatable(L, STORE_CLASS);
	if (snprintf(st->dir, sizeof st->dir, "%s", dir) >= (int)sizeof st->dir)
		return tend_fail(L, "einval", "store %s: path too long", dir);
	st->level = level;
	const char *subs[] = {"", "/objects", "/tmp"};
	for (int i = 0; i < 3; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s%s", dir, subs[i]);
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return tend_fail_errno(L, errno, "store %s", p);
	}
	return 1;
}

static int l_tostring(lua_State *L)
{
	lua_pushfstring(L, "store(%s)", check_store(L)->dir);
	return 1;
}

int tend_open_store(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"put_file", l_put_file}, {"put_string", l_put_string}, {"put_stream", l_put_stream},
		{"has", l_has}, {"write_to", l_write_to},
		{"get_file", l_get_file}, {"get_string", l_get_string}, {"verify", l_verify},
		{"sync", l_sync}, {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
	tend_new_class(L, STORE_CLASS, methods);
	luaL_newlib(L, funcs);
	return 1;
}
