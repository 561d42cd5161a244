/* store.c: a content-addressed object store on local disk.
 * An object is the zstd frame of some bytes, named by the SHA-256 of those bytes.
 * Large objects are files, DIR/objects/ab/cdef... (plain `zstd -d` reads one), written
 * into DIR/tmp and renamed. Small ones (up to TEND_PACK_MAX bytes, most files of a
 * site) go into packs (store_pack.c). An object that exists is never written twice, nor
 * compressed twice. Durability is batched: st:sync() makes the packs and loose objects
 * durable, then indexes the new packed objects, before a snapshot that needs them is
 * recorded; packs whose objects never got indexed are removed when the handle goes (a
 * failed run), or by gc (a killed one).
 *   st = store.open(dir [, level])   st:put_file(path) / st:put_string(data)
 *     -> hex, size, added | nil, msg, code
 *   st:put_stream(stream) -> the same, and the stream's last bytes (a dump's end)
 *   st:has(hex)  st:get_file(hex, dest [, mode])  st:get_string(hex)  st:verify(hex)
 *   st:write_to(hex, stream)  st:write_frame_to(hex, stream)  st:sync()  st:written()  st:list()  st:remove(hex)
 *   st:prune()  st:locate(hex) -> "file", path | "pack", path, offset, length
 *   st:encrypt(key): new objects are sealed (store_crypt.c); store.open(dir, level, key);
 *   st:sealed(hex) -> whether that object is
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
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

static int loose_exists(tend_store *st, const char *hex)
{
	char path[PATH_MAX];
	object_path(st, hex, path);
	return access(path, F_OK) == 0;
}

/* Where an object's frame is: a loose file (whole), or a range of a pack. 0 or ENOENT.
 * An object still with a worker is waited for (only then: a look-up of an object on
 * disk must not stall the packing pipeline). */
static int locate(tend_store *st, const char *hex, char path[PATH_MAX], long long *off, long long *len)
{
	object_path(st, hex, path);
	*off = 0;
	*len = -1; /* the whole file */
	if (access(path, F_OK) == 0)
		return 0;
	char pack[40] = "";
	pthread_mutex_lock(&st->mu);
	tend_pending *p = tend_pack_pending(st, hex);
	int with_worker = p && !p->pack[0];
	pthread_mutex_unlock(&st->mu);
	if (with_worker)
		tend_pack_drain(st); /* a worker's failure leaves its object without a pack: ENOENT */
	pthread_mutex_lock(&st->mu);
	p = tend_pack_pending(st, hex);
	if (p) {
		snprintf(pack, sizeof pack, "%s", p->pack);
		*off = p->offset;
		*len = p->length;
	}
	pthread_mutex_unlock(&st->mu);
	if (p ? !pack[0] : !tend_pack_index_find(st, hex, pack, off, len))
		return ENOENT;
	snprintf(path, PATH_MAX, "%s/packs/%s.pack", st->dir, pack);
	return 0;
}

static int object_exists(tend_store *st, const char *hex)
{
	char pack[40];
	long long off, len;
	pthread_mutex_lock(&st->mu);
	int pending = tend_pack_pending(st, hex) != NULL;
	pthread_mutex_unlock(&st->mu);
	return pending || loose_exists(st, hex) || tend_pack_index_find(st, hex, pack, &off, &len);
}

static int read_object(tend_store *st, const char *hex, tend_emit sink, void *ctx, tend_emit frame, void *frame_ctx);
static int sink_none(void *ctx, const char *p, size_t n);

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
	if (!object_exists(st, hex))
		return 0;
	if (read_object(st, hex, sink_none, NULL, NULL, NULL) != EBADMSG)
		return 1;
	char path[PATH_MAX];
	object_path(st, hex, path);
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
		object_path(st, res->hex, final);
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
		st->in = malloc(CHUNK);
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
			ssize_t r = src(ctx, st->in, CHUNK);
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
	if (!st->in && !(st->in = malloc(CHUNK)))
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
	for (ssize_t r; !err && (r = src(ctx, st->in, CHUNK)) != 0;) {
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
	return 3;
}

/* st:put_file(path) -> hex, size, added | nil, msg, code */
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

/* st:put_string(data) -> hex, size, added | nil, msg, code */
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
	tend_store *st = check_store(L);
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

static int fail_read(lua_State *L, int err, const char *hex);

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
	lua_pushboolean(L, object_exists(st, check_hex(L, 2)));
	return 1;
}

/* st:locate(hex) -> "file", path | "pack", path, offset, length | nil */
static int l_locate(lua_State *L)
{
	tend_store *st = check_store(L);
	char path[PATH_MAX];
	long long off, len;
	if (locate(st, check_hex(L, 2), path, &off, &len) != 0) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushstring(L, len < 0 ? "file" : "pack");
	lua_pushstring(L, path);
	if (len < 0)
		return 2;
	lua_pushinteger(L, off);
	lua_pushinteger(L, len);
	return 4;
}

/* st:sealed(hex) -> boolean (encrypted) | nil, msg, code */
static int l_sealed(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *hex = check_hex(L, 2);
	char path[PATH_MAX], head[TEND_SEAL_MAGIC_LEN];
	long long off, len;
	if (locate(st, hex, path, &off, &len) != 0)
		return fail_read(L, ENOENT, hex);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, head, sizeof head, off);
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return tend_fail_errno(L, err, "store: object %.12s", hex);
	lua_pushboolean(L, tend_is_sealed(head, (size_t)n));
	return 1;
}

/* st:list() -> {hex, ...}: every object, loose or packed (indexed). */
static int l_list(lua_State *L)
{
	tend_store *st = check_store(L);
	lua_newtable(L);
	int n = 0;
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s/objects", st->dir);
	DIR *d = opendir(base);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (strlen(e->d_name) != 2)
			continue;
		char sub[PATH_MAX + 300];
		snprintf(sub, sizeof sub, "%s/%s", base, e->d_name);
		DIR *d2 = opendir(sub);
		for (struct dirent *f; d2 && (f = readdir(d2));)
			if (strlen(f->d_name) == 62) {
				lua_pushfstring(L, "%s%s", e->d_name, f->d_name);
				lua_rawseti(L, -2, ++n);
			}
		if (d2)
			closedir(d2);
	}
	if (d)
		closedir(d);
	sqlite3 *db = tend_pack_index_db(st);
	sqlite3_stmt *q = NULL;
	if (db && sqlite3_prepare_v2(db, "SELECT hex FROM packed", -1, &q, NULL) == SQLITE_OK)
		while (sqlite3_step(q) == SQLITE_ROW) {
			lua_pushstring(L, (const char *)sqlite3_column_text(q, 0));
			lua_rawseti(L, -2, ++n);
		}
	sqlite3_finalize(q);
	return 1;
}

/* st:remove(hex) -> true | nil, msg, code: a loose file is deleted, a packed object
 * unindexed (its bytes stay in the pack until no object of the pack is left). */
static int l_remove(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *hex = check_hex(L, 2);
	char path[PATH_MAX];
	object_path(st, hex, path);
	if (unlink(path) == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	sqlite3 *db = tend_pack_index_db(st);
	sqlite3_stmt *q = NULL;
	int ok = db && sqlite3_prepare_v2(db, "DELETE FROM packed WHERE hex = ?", -1, &q, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(q, 1, hex, 64, SQLITE_STATIC);
		ok = sqlite3_step(q) == SQLITE_DONE && sqlite3_changes(db) == 1;
	}
	sqlite3_finalize(q);
	if (!ok)
		return tend_fail(L, "enoent", "store: no object %.12s", hex);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:prune() -> packs removed, bytes freed: packs no indexed object lives in. */
static int l_prune(lua_State *L)
{
	tend_store *st = check_store(L);
	sqlite3 *db = tend_pack_index_db(st);
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s/packs", st->dir);
	DIR *d = opendir(base);
	lua_Integer removed = 0, freed = 0;
	for (struct dirent *e; db && d && (e = readdir(d));) {
		char name[40];
		size_t len = strlen(e->d_name);
		if (len < 6 || len > 40 || strcmp(e->d_name + len - 5, ".pack") != 0)
			continue;
		snprintf(name, sizeof name, "%.*s", (int)(len - 5), e->d_name);
		pthread_mutex_lock(&st->mu);
		int writing = st->pack_fd >= 0 && strcmp(name, st->pack) == 0;
		pthread_mutex_unlock(&st->mu);
		if (writing)
			continue;
		sqlite3_stmt *q = NULL;
		int used = 1;
		if (sqlite3_prepare_v2(db, "SELECT 1 FROM packed WHERE pack = ? LIMIT 1", -1, &q, NULL) == SQLITE_OK) {
			sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
			used = sqlite3_step(q) == SQLITE_ROW;
		}
		sqlite3_finalize(q);
		char path[PATH_MAX + 300];
		struct stat sb;
		snprintf(path, sizeof path, "%s/%s", base, e->d_name);
		if (!used && stat(path, &sb) == 0 && unlink(path) == 0) {
			removed++;
			freed += sb.st_size;
		}
	}
	if (d)
		closedir(d);
	lua_pushinteger(L, removed);
	lua_pushinteger(L, freed);
	return 2;
}

/* The reading end: a frame's bytes are decompressed, hashed and handed to the sink. */
typedef struct {
	ZSTD_DCtx *z;
	tend_sha256 *h;
	char *out;
	size_t outcap, last;
	tend_emit sink, frame; /* the plain bytes go to sink; the frame, as it is, to frame */
	void *ctx, *frame_ctx;
} inflating;

static int inflate(void *ctx, const char *p, size_t n)
{
	inflating *f = ctx;
	if (f->frame && f->frame(f->frame_ctx, p, n) != 0) {
		if (!errno)
			errno = EIO;
		return -1;
	}
	ZSTD_inBuffer ib = {p, n, 0};
	while (ib.pos < ib.size) {
		ZSTD_outBuffer ob = {f->out, f->outcap, 0};
		f->last = ZSTD_decompressStream(f->z, &ob, &ib);
		if (ZSTD_isError(f->last)) {
			errno = EBADMSG;
			return -1;
		}
		tend_sha256_update(f->h, f->out, ob.pos);
		if (ob.pos && f->sink(f->ctx, f->out, ob.pos) != 0) {
			if (!errno)
				errno = EIO;
			return -1;
		}
	}
	return 0;
}

static int read_object(tend_store *st, const char *hex, tend_emit sink, void *ctx, tend_emit frame, void *frame_ctx)
{
	char path[PATH_MAX];
	long long off, len;
	if (locate(st, hex, path, &off, &len) != 0)
		return ENOENT;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
	if (fd < 0)
		return errno == ENOENT ? EBADMSG : errno; /* indexed but its pack is gone */
	if (off && lseek(fd, off, SEEK_SET) < 0) {
		close(fd);
		return errno;
	}
	inflating f = {ZSTD_createDCtx(), tend_sha256_new(), NULL, ZSTD_DStreamOutSize(), 1, sink, frame, ctx, frame_ctx};
	f.out = malloc(f.outcap);
	char *in = malloc(CHUNK);
	tend_seal *seal = NULL;
	int first = 1;
	long long left = len; /* -1: to the end of the file */
	ssize_t r;
	while (!err && in && f.out && f.z && left != 0) {
		size_t want = left < 0 || left > CHUNK ? CHUNK : (size_t)left;
		if ((r = read_fd(&fd, in, want)) <= 0) {
			err = r < 0 ? errno : left > 0 ? EBADMSG : 0; /* a pack cut short is damage */
			break;
		}
		if (left > 0)
			left -= r;
		if (first && tend_is_sealed(in, (size_t)r)) {
			if (!st->key)
				err = ENOKEY;
			else if (!(seal = malloc(sizeof *seal)))
				err = ENOMEM;
			else
				seal->have = seal->stage = 0;
		}
		first = 0;
		errno = 0;
		if (!err && (seal ? tend_unseal_push(seal, st->key, in, (size_t)r, inflate, &f)
		                  : inflate(&f, in, (size_t)r)) != 0)
			err = errno ? errno : EBADMSG;
	}
	if (!err && seal)
		err = tend_unseal_end(seal, inflate, &f, 1);
	if (!in || !f.out || !f.z)
		err = ENOMEM;
	char got[65];
	tend_sha256_hex(f.h, got);
	if (!err && (f.last != 0 || strcmp(got, hex) != 0))
		err = EBADMSG;
	if (seal)
		sodium_memzero(seal, sizeof *seal);
	free(seal);
	free(in);
	free(f.out);
	ZSTD_freeDCtx(f.z);
	tend_sha256_free(f.h);
	close(fd);
	return err;
}

int tend_store_read(tend_store *st, const char *hex, tend_emit sink, void *ctx)
{
	return read_object(st, hex, sink, ctx, NULL, NULL);
}

static int fail_read(lua_State *L, int err, const char *hex)
{
	if (err == EBADMSG)
		return tend_fail(L, "corrupt", "store: object %.12s is damaged", hex);
	if (err == ENOENT)
		return tend_fail(L, "enoent", "store: no object %.12s", hex);
	if (err == ENOKEY)
		return tend_fail(L, "locked", "store: object %.12s is encrypted, and the store was opened without its key", hex);
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

/* The object's plain bytes (frame = 0), or its zstd frame as stored (frame = 1, opened
 * first if sealed), into the stream at index 3; verified either way, no end-of-file. */
static int write_stream(lua_State *L, int frame)
{
	tend_store *st = check_store(L);
	const char *hex = check_hex(L, 2);
	tend_writer w;
	tend_check_writer(L, 3, &w);
	int err = frame ? read_object(st, hex, sink_none, NULL, sink_writer, &w)
	                : read_object(st, hex, sink_writer, &w, NULL, NULL);
	if (err == EPIPE)
		return tend_fail(L, "stream", "store: object %.12s: %s", hex, w.error(w.ctx));
	if (err)
		return fail_read(L, err, hex);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:write_to(hex, stream) -> true | nil, msg, code.  The object's bytes into a stream
 * (an ssh channel, or proc.open with stdin_pipe). */
static int l_write_to(lua_State *L) { return write_stream(L, 0); }

/* st:write_frame_to(hex, stream) -> true | nil, msg, code.  The object's zstd frame, for
 * `zstd -dc` at the other end: fewer bytes cross the wire. A damaged object fails the
 * call after its bytes went out: the receiving end must be undone by the caller. */
static int l_write_frame_to(lua_State *L) { return write_stream(L, 1); }

/* st:sync() -> true | nil, msg, code: everything written to the store is on disk, and
 * the objects packed since the last sync are in the index (in that order: an index row
 * never points at bytes a crash could lose). */
static int l_sync(lua_State *L)
{
	tend_store *st = check_store(L);
	int err = tend_pack_drain(st);
	if (err)
		return tend_fail_errno(L, err, "store %s: write object", st->dir);
	int fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return tend_fail_errno(L, err, "store %s: sync", st->dir);
	}
	close(fd);
	const char *why;
	int rc = tend_pack_index(st, &why);
	if (rc)
		return tend_fail(L, rc == SQLITE_FULL ? "enospc" : "sqlite", "store %s: index: %s", st->dir, why);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:written() -> compressed bytes this handle added to the store (after a sync) */
static int l_written(lua_State *L)
{
	lua_pushinteger(L, check_store(L)->written);
	return 1;
}

/* st:healed() -> how many damaged objects this handle replaced with good copies */
static int l_healed(lua_State *L)
{
	lua_pushinteger(L, check_store(L)->healed);
	return 1;
}

/* st:note_added(path | nil) -> true | nil, msg, code: from now on each object this
 * handle adds is noted in path (appended, 0600); nil stops noting. */
static int l_note_added(lua_State *L)
{
	tend_store *st = check_store(L);
	const char *path = luaL_optstring(L, 2, NULL);
	if (st->added_fd >= 0)
		close(st->added_fd);
	st->added_fd = -1;
	if (path && (st->added_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return tend_fail_errno(L, errno, "store: %s", path);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_gc(lua_State *L)
{
	tend_store *st = luaL_checkudata(L, 1, STORE_CLASS);
	tend_pack_close(st); /* packs never indexed are removed */
	if (st->added_fd >= 0)
		close(st->added_fd);
	ZSTD_freeCCtx(st->zc);
	if (st->key)
		sodium_free(st->key);
	if (st->seal)
		sodium_memzero(st->seal, sizeof *st->seal);
	free(st->seal);
	free(st->raw);
	free(st->in);
	free(st->out);
	pthread_cond_destroy(&st->more);
	pthread_cond_destroy(&st->room);
	pthread_mutex_destroy(&st->mu);
	memset(st, 0, sizeof *st);
	st->pack_fd = -1;
	st->added_fd = -1;
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

/* DIR/encryption marks a store whose new objects are sealed, and holds a check value
 * of its key, so a wrong key is named as such rather than as damage everywhere. */
static void key_check(const unsigned char *key, char hex[33])
{
	static const unsigned char label[] = "tend store key check";
	unsigned char sum[16];
	crypto_generichash(sum, sizeof sum, label, sizeof label - 1, key, crypto_secretstream_xchacha20poly1305_KEYBYTES);
	sodium_bin2hex(hex, 33, sum, sizeof sum);
}

#define MARKER_HEAD "tend store encryption v1: xchacha20poly1305 secretstream, zstd inside\ncheck "

/* Take the key argument at idx (a vault secret) into st->key: 1, or 0 when it is not
 * a key's length. */
static int take_key(lua_State *L, tend_store *st, int idx)
{
	size_t n;
	const unsigned char *bytes = tend_secret_bytes(tend_check_secret(L, idx), &n);
	if (n != crypto_secretstream_xchacha20poly1305_KEYBYTES)
		return 0;
	if (!st->key && !(st->key = sodium_malloc(n)))
		luaL_error(L, "store: out of guarded memory");
	memcpy(st->key, bytes, n);
	return 1;
}

/* st:encrypt(key) -> true | nil, msg, code: from now on, new objects are sealed with key
 * (a vault secret). Objects already stored stay as they are, and readable. */
static int l_encrypt(lua_State *L)
{
	tend_store *st = check_store(L);
	char marker[PATH_MAX], tmp[PATH_MAX], check[33];
	snprintf(marker, sizeof marker, "%s/encryption", st->dir);
	if (access(marker, F_OK) == 0)
		return tend_fail(L, "exists", "store %s is encrypted already", st->dir);
	if (!take_key(L, st, 2))
		return tend_fail(L, "badkey", "store %s: a store key is 32 bytes", st->dir);
	key_check(st->key, check);
	snprintf(tmp, sizeof tmp, "%s/tmp/encryption-XXXXXX", st->dir);
	int fd = mkstemp(tmp), err = 0;
	if (fd < 0)
		err = errno;
	else if (tend_write_all(fd, MARKER_HEAD, strlen(MARKER_HEAD)) != 0 || tend_write_all(fd, check, 32) != 0 ||
	         tend_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0)
		err = errno;
	if (fd >= 0 && close(fd) != 0 && !err)
		err = errno;
	if (!err && rename(tmp, marker) != 0)
		err = errno;
	if (err) {
		unlink(tmp);
		sodium_free(st->key);
		st->key = NULL;
		return tend_fail_errno(L, err, "store %s: write %s", st->dir, marker);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* open(dir [, level [, key]]) -> store | nil, msg, code.  Creates dir/objects and
 * dir/tmp (0700). An encrypted store opens only with its key ("locked" without one,
 * "badkey" with another); a plain one only without. */
static int l_open(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	int level = (int)luaL_optinteger(L, 2, 3);
	int keyed = !lua_isnoneornil(L, 3);
	tend_store *st = lua_newuserdatauv(L, sizeof *st, 0);
	memset(st, 0, sizeof *st);
	st->pack_fd = -1;
	st->added_fd = -1;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->more, NULL);
	pthread_cond_init(&st->room, NULL);
	luaL_setmetatable(L, STORE_CLASS);
	if (snprintf(st->dir, sizeof st->dir, "%s", dir) >= (int)sizeof st->dir)
		return tend_fail(L, "einval", "store %s: path too long", dir);
	st->level = level;
	const char *subs[] = {"", "/objects", "/tmp", "/packs"};
	for (int i = 0; i < 4; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s%s", dir, subs[i]);
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return tend_fail_errno(L, errno, "store %s", p);
	}
	char marker[PATH_MAX], text[256], check[33];
	snprintf(marker, sizeof marker, "%s/encryption", dir);
	FILE *f = fopen(marker, "re");
	size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
	if (f)
		fclose(f);
	else if (errno != ENOENT)
		return tend_fail_errno(L, errno, "store %s", marker);
	text[n] = '\0';
	if (!f && keyed)
		return tend_fail(L, "einval", "store %s is not encrypted (tend store encrypt)", dir);
	if (f && !keyed)
		return tend_fail(L, "locked", "store %s is encrypted: it opens only with its key", dir);
	if (keyed) {
		const char *at = strstr(text, "\ncheck ");
		if (take_key(L, st, 3))
			key_check(st->key, check);
		if (!st->key || !at || strncmp(at + 7, check, 32) != 0)
			return tend_fail(L, "badkey", "store %s: wrong store key (it does not match %s)", dir, marker);
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
	if (sodium_init() < 0)
		return luaL_error(L, "store: libsodium failed to start");
	static const luaL_Reg methods[] = {
		{"put_file", l_put_file}, {"put_string", l_put_string}, {"put_stream", l_put_stream},
		{"has", l_has}, {"write_to", l_write_to}, {"write_frame_to", l_write_frame_to},
		{"get_file", l_get_file}, {"get_string", l_get_string}, {"verify", l_verify},
		{"sync", l_sync}, {"encrypt", l_encrypt}, {"written", l_written}, {"healed", l_healed}, {"note_added", l_note_added}, {"locate", l_locate}, {"sealed", l_sealed}, {"list", l_list}, {"remove", l_remove},
		{"prune", l_prune}, {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
	tend_new_class(L, STORE_CLASS, methods);
	luaL_newlib(L, funcs);
	return 1;
}
