/* sftp.c: SFTP for small files (configs, maintenance pages, markers).
 *   f = s:sftp()   f:get(path) -> data   f:put(path, data [, mode])   f:stat(path)
 *   f:mkdir_p(path [, mode])   f:rename(from, to)   f:remove(path)   f:rmdir(path)
 * Bulk data goes through channels and tar instead. The handle keeps its session alive;
 * every call runs against the session's timeout. Failures: nil, msg, code with code
 * "enoent", "eacces", "eexist" or "sftp".
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libssh2_sftp.h>

#include "ssh.h"

#define SFTP_CLASS "tend.ssh.sftp"

typedef struct {
	tend_ssh *ss;
	LIBSSH2_SFTP *sftp; /* NULL once closed */
} sftp_handle;

static sftp_handle *check_sftp(lua_State *L)
{
	sftp_handle *h = luaL_checkudata(L, 1, SFTP_CLASS);
	if (!h->sftp || !h->ss->s)
		luaL_error(L, "sftp handle used after close");
	return h;
}

static double deadline_of(sftp_handle *h) { return tend_now() + (h->ss->timeout > 30 ? h->ss->timeout : 30); }

/* Repeat a call while libssh2 says EAGAIN, waiting on the socket; its last result. */
#define AGAIN(h, dl, expr)                                                             \
	({                                                                             \
		long rc_;                                                              \
		while ((rc_ = (long)(expr)) == LIBSSH2_ERROR_EAGAIN &&                 \
		       tend_ssh_wait((h)->ss, (dl)) == 0)                              \
			;                                                              \
		rc_;                                                                   \
	})

static int sftp_fail(lua_State *L, sftp_handle *h, long rc, const char *what, const char *path)
{
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return tend_fail(L, "timeout", "sftp %s:%d: %s %s: timed out", h->ss->host, h->ss->port, what, path);
	if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL && libssh2_session_last_errno(h->ss->s) != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return tend_ssh_fail(L, h->ss, "sftp", what);
	unsigned long fx = libssh2_sftp_last_error(h->sftp);
	const char *code = fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NO_SUCH_PATH ? "enoent"
	                 : fx == LIBSSH2_FX_PERMISSION_DENIED ? "eacces"
	                 : fx == LIBSSH2_FX_FILE_ALREADY_EXISTS ? "eexist"
	                 : fx == LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM ? "enospc" : "sftp";
	const char *why = strcmp(code, "enoent") == 0 ? "No such file or directory"
	                : strcmp(code, "eacces") == 0 ? "Permission denied"
	                : strcmp(code, "eexist") == 0 ? "File exists"
	                : strcmp(code, "enospc") == 0 ? "disk full" : "failed";
	return tend_fail(L, code, "sftp %s:%d: %s %s: %s", h->ss->host, h->ss->port, what, path, why);
}

/* s:sftp() -> handle | nil, msg, code */
int tend_ssh_sftp(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	sftp_handle *h = lua_newuserdatauv(L, sizeof *h, 1);
	h->ss = ss;
	h->sftp = NULL;
	luaL_setmetatable(L, SFTP_CLASS);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	double dl = deadline_of(h);
	while (!(h->sftp = libssh2_sftp_init(ss->s)) &&
	       libssh2_session_last_errno(ss->s) == LIBSSH2_ERROR_EAGAIN)
		if (tend_ssh_wait(ss, dl) != 0)
			return tend_fail(L, "timeout", "sftp %s:%d: start timed out", ss->host, ss->port);
	if (!h->sftp)
		return tend_ssh_fail(L, ss, "sftp", "start sftp");
	return 1;
}

static LIBSSH2_SFTP_HANDLE *open_file(sftp_handle *h, double dl, const char *path, unsigned long flags,
                                      long mode)
{
	LIBSSH2_SFTP_HANDLE *f;
	while (!(f = libssh2_sftp_open_ex(h->sftp, path, (unsigned)strlen(path), flags, mode,
	                                  LIBSSH2_SFTP_OPENFILE)) &&
	       libssh2_session_last_errno(h->ss->s) == LIBSSH2_ERROR_EAGAIN)
		if (tend_ssh_wait(h->ss, dl) != 0)
			break;
	return f;
}

static void close_file(sftp_handle *h, LIBSSH2_SFTP_HANDLE *f, double dl)
{
	AGAIN(h, dl, libssh2_sftp_close_handle(f));
}

/* f:get(path) -> data | nil, msg, code */
static int l_get(lua_State *L)
{
	sftp_handle *h = check_sftp(L);
	const char *path = luaL_checkstring(L, 2);
	double dl = deadline_of(h);
	LIBSSH2_SFTP_HANDLE *f = open_file(h, dl, path, LIBSSH2_FXF_READ, 0);
	if (!f)
		return sftp_fail(L, h, libssh2_session_last_errno(h->ss->s), "get", path);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	long r;
	do {
		char *p = luaL_prepbuffer(&b);
		r = AGAIN(h, dl, libssh2_sftp_read(f, p, LUAL_BUFFERSIZE));
		if (r > 0)
			luaL_addsize(&b, (size_t)r);
	} while (r > 0);
	close_file(h, f, dl);
	if (r < 0)
		return sftp_fail(L, h, r, "get", path);
	luaL_pushresult(&b);
	return 1;
}

/* f:put(path, data [, mode]) -> true | nil, msg, code.  Creates or truncates path;
 * a new file is created with mode (so a 0600 file is never readable by others); data
 * may be a secret. */
static int l_put(lua_State *L)
{
	sftp_handle *h = check_sftp(L);
	const char *path = luaL_checkstring(L, 2);
	size_t len;
	tend_secret *secret = tend_test_secret(L, 3);
	const char *data = secret ? (const char *)tend_secret_bytes(tend_check_secret(L, 3), &len)
	                          : luaL_checklstring(L, 3, &len);
	long mode = (long)luaL_optinteger(L, 4, 0644);
	double dl = deadline_of(h);
	LIBSSH2_SFTP_HANDLE *f = open_file(h, dl, path, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT |
	                                   LIBSSH2_FXF_TRUNC, mode);
	if (!f)
		return sftp_fail(L, h, libssh2_session_last_errno(h->ss->s), "put", path);
	long w = 0;
	for (size_t off = 0; off < len; off += (size_t)w) {
		w = AGAIN(h, dl, libssh2_sftp_write(f, data + off, len - off));
		if (w <= 0)
			break;
	}
	/* The server applies mode only to new files (and under its umask): set it. */
	LIBSSH2_SFTP_ATTRIBUTES a = {.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS, .permissions = (unsigned long)mode};
	long rc = w < 0 ? w : AGAIN(h, dl, libssh2_sftp_fsetstat(f, &a));
	close_file(h, f, dl);
	if (w < 0 || rc < 0)
		return sftp_fail(L, h, w < 0 ? w : rc, "put", path);
	lua_pushboolean(L, 1);
	return 1;
}

static const char *type_of(unsigned long perms)
{
	switch (perms & LIBSSH2_SFTP_S_IFMT) {
	case LIBSSH2_SFTP_S_IFREG: return "file";
	case LIBSSH2_SFTP_S_IFDIR: return "dir";
	case LIBSSH2_SFTP_S_IFLNK: return "link";
	case LIBSSH2_SFTP_S_IFIFO: return "fifo";
	case LIBSSH2_SFTP_S_IFSOCK: return "socket";
	default: return "device";
	}
}

/* f:stat(path) -> {type, mode, size, mtime, uid, gid} (lstat) | nil, msg, code */
static int l_stat(lua_State *L)
{
	sftp_handle *h = check_sftp(L);
	const char *path = luaL_checkstring(L, 2);
	LIBSSH2_SFTP_ATTRIBUTES a;
	long rc = AGAIN(h, deadline_of(h), libssh2_sftp_stat_ex(h->sftp, path, (unsigned)strlen(path),
	                                                         LIBSSH2_SFTP_LSTAT, &a));
	if (rc != 0)
		return sftp_fail(L, h, rc, "stat", path);
	lua_createtable(L, 0, 6);
	lua_pushstring(L, type_of(a.permissions));
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, (lua_Integer)(a.permissions & 07777));
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, (lua_Integer)a.filesize);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)a.mtime);
	lua_setfield(L, -2, "mtime");
	lua_pushinteger(L, (lua_Integer)a.uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, (lua_Integer)a.gid);
	lua_setfield(L, -2, "gid");
	return 1;
}

/* f:mkdir_p(path [, mode]) -> true | nil, msg, code.  Existing dirs are fine. */
static int l_mkdir_p(lua_State *L)
{
	sftp_handle *h = check_sftp(L);
	const char *path = luaL_checkstring(L, 2);
	long mode = (long)luaL_optinteger(L, 3, 0755);
	size_t len = strlen(path);
	char *buf = lua_newuserdatauv(L, len + 1, 0);
	memcpy(buf, path, len + 1);
	double dl = deadline_of(h);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		LIBSSH2_SFTP_ATTRIBUTES a;
		long rc = AGAIN(h, dl, libssh2_sftp_stat_ex(h->sftp, buf, (unsigned)strlen(buf), LIBSSH2_SFTP_STAT, &a));
		if (rc != 0) {
			rc = AGAIN(h, dl, libssh2_sftp_mkdir_ex(h->sftp, buf, (unsigned)strlen(buf), mode));
			if (rc != 0)
				return sftp_fail(L, h, rc, "mkdir", buf);
		} else if ((a.permissions & LIBSSH2_SFTP_S_IFMT) != LIBSSH2_SFTP_S_IFDIR) {
			return tend_fail(L, "enotdir", "sftp %s:%d: mkdir %s: exists and is not a directory",
			                 h->ss->host, h->ss->port, buf);
		}
		*p = c;
		if (c == '\0')
			break;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* f:rename(from, to) -> true | nil, msg, code.  Replaces to (POSIX rename semantics). */
static int l_rename(lua_State *L)
{
	sftp_handle *h = check_sftp(L);
	const char *from = luaL_checkstring(L, 2), *to = luaL_checkstring(L, 3);
	long rc = AGAIN(h, deadline_of(h), libssh2_sftp_rename_ex(h->sftp, from, (unsigned)strlen(from), to,
	                (unsigned)strlen(to), LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
	                LIBSSH2_SFTP_RENAME_NATIVE));
	if (rc != 0)
		return sftp_fail(L, h, rc, "rename", from);
	lua_pushboolean(L, 1);
	return 1;
}

static int remove_with(lua_State *L, int dir)
{
	sftp_handle *h = check_sftp(L);
	const char *path = luaL_checkstring(L, 2);
	long rc = dir ? AGAIN(h, deadline_of(h), libssh2_sftp_rmdir_ex(h->sftp, path, (unsigned)strlen(path)))
	              : AGAIN(h, deadline_of(h), libssh2_sftp_unlink_ex(h->sftp, path, (unsigned)strlen(path)));
	if (rc != 0)
		return sftp_fail(L, h, rc, dir ? "rmdir" : "remove", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* f:remove(path) / f:rmdir(path) -> true | nil, msg, code */
static int l_remove(lua_State *L) { return remove_with(L, 0); }
static int l_rmdir(lua_State *L) { return remove_with(L, 1); }

static int l_close(lua_State *L)
{
	sftp_handle *h = luaL_checkudata(L, 1, SFTP_CLASS);
	if (h->sftp && h->ss->s) {
		double dl = tend_now() + 2;
		AGAIN(h, dl, libssh2_sftp_shutdown(h->sftp));
	}
	h->sftp = NULL;
	return 0;
}

static int l_tostring(lua_State *L)
{
	sftp_handle *h = luaL_checkudata(L, 1, SFTP_CLASS);
	lua_pushfstring(L, "sftp(%s:%d%s)", h->ss->host, h->ss->port, h->sftp ? "" : ", closed");
	return 1;
}

void tend_ssh_sftp_class(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"get", l_get}, {"put", l_put}, {"stat", l_stat}, {"mkdir_p", l_mkdir_p},
		{"rename", l_rename}, {"remove", l_remove}, {"rmdir", l_rmdir}, {"close", l_close},
		{"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};
	tend_new_class(L, SFTP_CLASS, methods);
}
