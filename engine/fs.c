/* fs.c: the file-system calls the Lua library needs, with failures as nil, msg, code.
 *   fs.stat(p)  fs.mkdir_p(p, mode)  fs.read(p)  fs.write_atomic(p, data, mode)
 *   fs.list(p)  fs.chmod(p, mode)  fs.remove(p)  fs.rename(a, b)  fs.free_space(p)
 *   fs.isatty(fd)  fs.lock(p, "shared"|"exclusive" [, wait])
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "tend.h"

static const char *type_name(mode_t m)
{
	return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "link"
	     : S_ISFIFO(m) ? "fifo" : S_ISSOCK(m) ? "socket" : "device";
}

/* stat(path) -> {type, mode, size, mtime, uid, gid} | nil, msg, code  (lstat) */
static int l_stat(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;
	if (lstat(path, &st) != 0)
		return tend_fail_errno(L, errno, "%s", path);
	lua_createtable(L, 0, 6);
	lua_pushstring(L, type_name(st.st_mode));
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, st.st_mode & 07777);
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, st.st_mtime);
	lua_setfield(L, -2, "mtime");
	lua_pushinteger(L, st.st_uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, st.st_gid);
	lua_setfield(L, -2, "gid");
	return 1;
}

/* mkdir_p(path [, mode]) -> true | nil, msg, code.  Existing dirs are left as they are. */
static int l_mkdir_p(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	mode_t mode = (mode_t)luaL_optinteger(L, 2, 0755);
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return tend_fail(L, "einval", "%s: path too long", path);
	for (char *p = buf + 1;; p++) {
		char c = *p;
		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return tend_fail_errno(L, errno, "mkdir %s", buf);
		*p = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return tend_fail(L, "enotdir", "mkdir %s: exists and is not a directory", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* read(path) -> string | nil, msg, code */
static int l_read(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	FILE *f = fopen(path, "rb");
	if (!f)
		return tend_fail_errno(L, errno, "%s", path);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	size_t n;
	do {
		char *p = luaL_prepbuffer(&b);
		n = fread(p, 1, LUAL_BUFFERSIZE, f);
		luaL_addsize(&b, n);
	} while (n == LUAL_BUFFERSIZE);
	int err = ferror(f) ? errno : 0;
	fclose(f);
	if (err)
		return tend_fail_errno(L, err, "read %s", path);
	luaL_pushresult(&b);
	return 1;
}

/* write_atomic(path, data [, mode]) -> true | nil, msg, code.  Temp file in the same
 * directory, fsync, rename: readers see the old content or the new, never a mix.
 * data may be a secret: its bytes go from guarded memory to the file. */
static int l_write_atomic(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t len;
	tend_secret *secret = tend_test_secret(L, 2);
	const char *data = secret ? (const char *)tend_secret_bytes(tend_check_secret(L, 2), &len)
	                          : luaL_checklstring(L, 2, &len);
	mode_t mode = (mode_t)luaL_optinteger(L, 3, 0644);
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
		return tend_fail(L, "einval", "%s: path too long", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return tend_fail_errno(L, errno, "write %s", path);
	int ok = fchmod(fd, mode) == 0 && tend_write_all(fd, data, len) == 0 && fsync(fd) == 0;
	int err = errno;
	ok = close(fd) == 0 && ok;
	if (ok && rename(tmp, path) == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	err = ok ? errno : err;
	unlink(tmp);
	return tend_fail_errno(L, err, "write %s", path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list(dir) -> {name, ...} sorted, without . and .. | nil, msg, code */
static int l_list(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	DIR *d = opendir(path);
	if (!d)
		return tend_fail_errno(L, errno, "%s", path);
	lua_newtable(L);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, ++n);
	}
	closedir(d);
	/* sort through a C array of the Lua strings (all anchored in the table) */
	const char **names = lua_newuserdatauv(L, sizeof *names * (size_t)(n ? n : 1), 0);
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, -2, i + 1);
		names[i] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	qsort(names, (size_t)n, sizeof *names, cmp_str);
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushstring(L, names[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* chmod(path, mode) -> true | nil, msg, code */
static int l_chmod(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	if (chmod(path, (mode_t)luaL_checkinteger(L, 2)) != 0)
		return tend_fail_errno(L, errno, "chmod %s", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* remove(path) -> true | nil, msg, code  (a file or an empty directory) */
static int l_remove(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	if (remove(path) != 0)
		return tend_fail_errno(L, errno, "remove %s", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* rename(from, to) -> true | nil, msg, code  (atomic within one file system) */
static int l_rename(lua_State *L)
{
	const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
	if (rename(from, to) != 0)
		return tend_fail_errno(L, errno, "rename %s", from);
	lua_pushboolean(L, 1);
	return 1;
}

/* free_space(path) -> bytes available to us | nil, msg, code */
static int l_free_space(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct statvfs v;
	if (statvfs(path, &v) != 0)
		return tend_fail_errno(L, errno, "statvfs %s", path);
	lua_pushinteger(L, (lua_Integer)(v.f_bavail * v.f_frsize));
	return 1;
}

/* isatty(fd) -> boolean */
static int l_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

#define LOCK_CLASS "tend.fs.lock"

typedef struct {
	int fd; /* -1 once released */
} lock_handle;

/* lock(path, "shared"|"exclusive" [, wait]) -> lock | nil, msg, code ("locked" when
 * another process holds it and wait is false). flock(2): released on close, on __gc, or
 * when the process dies, so a crashed run never leaves it held. */
static int l_lock(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	static const char *const kinds[] = {"shared", "exclusive", NULL};
	int op = luaL_checkoption(L, 2, NULL, kinds) == 0 ? LOCK_SH : LOCK_EX;
	int wait = lua_toboolean(L, 3);
	lock_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->fd = -1;
	luaL_setmetatable(L, LOCK_CLASS);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return tend_fail_errno(L, errno, "lock %s", path);
	int rc;
	while ((rc = flock(fd, op | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR)
		;
	if (rc != 0) {
		int err = errno;
		close(fd);
		if (err == EWOULDBLOCK)
			return tend_fail(L, "locked", "%s is locked by another run", path);
		return tend_fail_errno(L, err, "lock %s", path);
	}
	h->fd = fd;
	return 1;
}

static int lock_release(lua_State *L)
{
	lock_handle *h = luaL_checkudata(L, 1, LOCK_CLASS);
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	return 0;
}

int tend_open_fs(lua_State *L)
{
	static const luaL_Reg lock_methods[] = {
		{"release", lock_release}, {"__gc", lock_release}, {"__close", lock_release}, {NULL, NULL}};
	tend_new_class(L, LOCK_CLASS, lock_methods);
	static const luaL_Reg funcs[] = {
		{"stat", l_stat}, {"mkdir_p", l_mkdir_p}, {"read", l_read},
		{"write_atomic", l_write_atomic}, {"list", l_list}, {"chmod", l_chmod},
		{"remove", l_remove}, {"rename", l_rename}, {"free_space", l_free_space},
		{"isatty", l_isatty}, {"lock", l_lock},
		{NULL, NULL}};
	luaL_newlib(L, funcs);
	return 1;
}
