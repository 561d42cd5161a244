/* hash.c: SHA-256 through OpenSSL's EVP (it uses the CPU's SHA instructions).
 *   hash.sha256(data) -> hex     hash.file(path) -> hex, size | nil, msg, code
 *   h = hash.new(); h:update(data); h:hex()
 *   hash.tree(root [, {cache=, jobs=}]) (hash_tree.c)
 * tend_sha256_* are shared with store.c, which hashes while it compresses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tend.h"

#define HASHER_CLASS "tend.hash.sha256"

tend_sha256 *tend_sha256_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void tend_sha256_update(tend_sha256 *h, const void *p, size_t n) { EVP_DigestUpdate(h, p, n); }

void tend_sha256_hex(tend_sha256 *h, char hex[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_DigestFinal_ex(h, md, &len);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void tend_sha256_free(tend_sha256 *h) { EVP_MD_CTX_free(h); }

/* sha256(data) -> hex */
static int l_sha256(lua_State *L)
{
	size_t n;
	const char *p = luaL_checklstring(L, 1, &n);
	tend_sha256 *h = tend_sha256_new();
	char hex[65];
	tend_sha256_update(h, p, n);
	tend_sha256_hex(h, hex);
	tend_sha256_free(h);
	lua_pushstring(L, hex);
	return 1;
}

/* The SHA-256 of a file's bytes (opened relative to dirfd: AT_FDCWD or a tree's root;
 * a symlink only when follow), and its size. 0, or an errno value. buf: 1 << 17 bytes. */
int tend_sha256_file(int dirfd, const char *path, int follow, char *buf, char hex[65], long long *size)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	if (fd < 0)
		return errno;
	tend_sha256 *h = tend_sha256_new();
	ssize_t r = 0;
	*size = 0;
	while (h && (r = read(fd, buf, 1 << 17)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		tend_sha256_update(h, buf, (size_t)r);
		*size += r;
	}
	int err = !h ? ENOMEM : r < 0 ? errno : 0;
	close(fd);
	if (h)
		tend_sha256_hex(h, hex);
	tend_sha256_free(h);
	return err;
}

/* file(path) -> hex, size | nil, msg, code */
static int l_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char *buf = malloc(1 << 17), hex[65];
	long long size = 0;
	int err = buf ? tend_sha256_file(AT_FDCWD, path, 1, buf, hex, &size) : ENOMEM;
	free(buf);
	if (err)
		return tend_fail_errno(L, err, "%s", path);
	lua_pushstring(L, hex);
	lua_pushinteger(L, size);
	return 2;
}

typedef struct {
	tend_sha256 *h; /* NULL once finished */
} hasher;

/* new() -> hasher */
static int l_new(lua_State *L)
{
	hasher *u = lua_newuserdatauv(L, sizeof *u, 0);
	u->h = NULL;
	luaL_setmetatable(L, HASHER_CLASS);
	if (!(u->h = tend_sha256_new()))
		return luaL_error(L, "hash: cannot start SHA-256");
	return 1;
}

static hasher *check_hasher(lua_State *L)
{
	hasher *u = luaL_checkudata(L, 1, HASHER_CLASS);
	if (!u->h)
		luaL_error(L, "hasher used after hex()");
	return u;
}

/* h:update(data) -> h */
static int h_update(lua_State *L)
{
	hasher *u = check_hasher(L);
	size_t n;
	const char *p = luaL_checklstring(L, 2, &n);
	tend_sha256_update(u->h, p, n);
	lua_settop(L, 1);
	return 1;
}

/* h:hex() -> hex (finishes the hasher) */
static int h_hex(lua_State *L)
{
	hasher *u = check_hasher(L);
	char hex[65];
	tend_sha256_hex(u->h, hex);
	tend_sha256_free(u->h);
	u->h = NULL;
	lua_pushstring(L, hex);
	return 1;
}

static int h_gc(lua_State *L)
{
	hasher *u = luaL_checkudata(L, 1, HASHER_CLASS);
	if (u->h)
		tend_sha256_free(u->h);
	u->h = NULL;
	return 0;
}

int tend_open_hash(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"update", h_update}, {"hex", h_hex}, {"__gc", h_gc}, {"__close", h_gc}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {
		{"sha256", l_sha256}, {"file", l_file}, {"new", l_new}, {"tree", tend_hash_tree}, {NULL, NULL}};
	tend_new_class(L, HASHER_CLASS, methods);
	luaL_newlib(L, funcs);
	return 1;
}
