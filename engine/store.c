/* store.c: a content-addressed object store on local disk: the handle (open, close,
 * sync, encrypt) and where an object is. Putting objects in is store_put.c, reading
 * them out store_read.c, listing and removing them (gc) store_gc.c, packs of small
 * objects store_pack.c, sealing store_crypt.c.
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
 *   st:close() (also <close> and __gc): packs never indexed removed, buffers freed
 */
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

/* The store at idx; misuse (another type, a closed handle) raises. */
tend_store *tend_store_check(lua_State *L, int idx)
{
	tend_store *st = luaL_checkudata(L, idx, TEND_STORE_CLASS);
	if (st->closed)
		luaL_error(L, "store: used after close");
	return st;
}

static int valid_hex(const char *hex)
{
	if (strlen(hex) != 64)
		return 0;
	for (const char *p = hex; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

void tend_store_object_path(const tend_store *st, const char *hex, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/objects/%.2s/%s", st->dir, hex, hex + 2);
}

static int loose_exists(tend_store *st, const char *hex)
{
	char path[PATH_MAX];
	tend_store_object_path(st, hex, path);
	return access(path, F_OK) == 0;
}

/* Where an object's frame is: a loose file (whole), or a range of a pack. 0 or ENOENT.
 * An object still with a worker is waited for (only then: a look-up of an object on
 * disk must not stall the packing pipeline). */
int tend_store_locate(tend_store *st, const char *hex, char path[PATH_MAX], long long *off, long long *len)
{
	tend_store_object_path(st, hex, path);
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

int tend_store_exists(tend_store *st, const char *hex)
{
	char pack[40];
	long long off, len;
	pthread_mutex_lock(&st->mu);
	int pending = tend_pack_pending(st, hex) != NULL;
	pthread_mutex_unlock(&st->mu);
	return pending || loose_exists(st, hex) || tend_pack_index_find(st, hex, pack, &off, &len);
}

const char *tend_store_check_hex(lua_State *L, int idx)
{
	const char *hex = luaL_checkstring(L, idx);
	luaL_argcheck(L, valid_hex(hex), idx, "not a SHA-256 in hex");
	return hex;
}

/* A source (tend_store_source) reading the fd *ctx, EINTR retried. */
ssize_t tend_store_read_fd(void *ctx, char *buf, size_t n)
{
	ssize_t r;
	while ((r = read(*(int *)ctx, buf, n)) < 0 && errno == EINTR)
		;
	return r;
}

/* st:has(hex) -> boolean */
static int l_has(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	lua_pushboolean(L, tend_store_exists(st, tend_store_check_hex(L, 2)));
	return 1;
}

/* st:locate(hex) -> "file", path | "pack", path, offset, length | nil */
static int l_locate(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	char path[PATH_MAX];
	long long off, len;
	if (tend_store_locate(st, tend_store_check_hex(L, 2), path, &off, &len) != 0) {
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
	tend_store *st = tend_store_check(L, 1);
	const char *hex = tend_store_check_hex(L, 2);
	char path[PATH_MAX], head[TEND_SEAL_MAGIC_LEN];
	long long off, len;
	if (tend_store_locate(st, hex, path, &off, &len) != 0)
		return tend_store_fail_read(L, ENOENT, hex);
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

/* st:sync() -> true | nil, msg, code: everything written to the store is on disk, and
 * the objects packed since the last sync are in the index (in that order: an index row
 * never points at bytes a crash could lose). */
static int l_sync(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
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
	lua_pushinteger(L, tend_store_check(L, 1)->written);
	return 1;
}

/* st:healed() -> how many damaged objects this handle replaced with good copies */
static int l_healed(lua_State *L)
{
	lua_pushinteger(L, tend_store_check(L, 1)->healed);
	return 1;
}

/* st:note_added(path | nil) -> true | nil, msg, code: from now on each object this
 * handle adds is noted in path (appended, 0600); nil stops noting. */
static int l_note_added(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	const char *path = luaL_optstring(L, 2, NULL);
	if (st->added_fd >= 0)
		close(st->added_fd);
	st->added_fd = -1;
	if (path && (st->added_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return tend_fail_errno(L, errno, "store: %s", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:close(), also __close and __gc: once; the handle is unusable after. */
static int l_gc(lua_State *L)
{
	tend_store *st = luaL_checkudata(L, 1, TEND_STORE_CLASS);
	if (st->closed)
		return 0;
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
	ZSTD_freeDCtx(st->dz);
	free(st->rd_in);
	free(st->rd_out);
	if (st->rd_seal)
		sodium_memzero(st->rd_seal, sizeof *st->rd_seal);
	free(st->rd_seal);
	pthread_cond_destroy(&st->more);
	pthread_cond_destroy(&st->room);
	pthread_mutex_destroy(&st->mu);
	memset(st, 0, sizeof *st);
	st->pack_fd = -1;
	st->added_fd = -1;
	st->closed = 1;
	return 0;
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
	tend_store *st = tend_store_check(L, 1);
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
	luaL_setmetatable(L, TEND_STORE_CLASS);
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
	lua_pushfstring(L, "store(%s)", tend_store_check(L, 1)->dir);
	return 1;
}

int tend_open_store(lua_State *L)
{
	if (sodium_init() < 0)
		return luaL_error(L, "store: libsodium failed to start");
	static const luaL_Reg methods[] = {
		{"has", l_has}, {"locate", l_locate}, {"sealed", l_sealed},
		{"sync", l_sync}, {"encrypt", l_encrypt}, {"written", l_written}, {"healed", l_healed},
		{"note_added", l_note_added}, {"close", l_gc}, {"__gc", l_gc}, {"__close", l_gc},
		{"__tostring", l_tostring}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
	tend_new_class(L, TEND_STORE_CLASS, methods);
	luaL_getmetatable(L, TEND_STORE_CLASS);
	luaL_setfuncs(L, tend_store_put_methods, 0);
	luaL_setfuncs(L, tend_store_read_methods, 0);
	luaL_setfuncs(L, tend_store_gc_methods, 0);
	luaL_setfuncs(L, tend_store_record_methods, 0);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
