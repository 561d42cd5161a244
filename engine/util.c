/* util.c: error results and class registration shared by every binding. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tend.h"

const char *tend_errno_code(int err)
{
	switch (err) {
	case ENOENT: return "enoent";
	case EEXIST: return "eexist";
	case EACCES: case EPERM: return "eacces";
	case ENOSPC: case EDQUOT: return "enospc";
	case ENOTDIR: return "enotdir";
	case EISDIR: return "eisdir";
	case ETIMEDOUT: return "timeout";
	case EROFS: return "erofs";
	default: return "io";
	}
}

static int push_failure(lua_State *L, const char *code, const char *fmt, va_list ap,
                        const char *suffix)
{
	char buf[1024];
	vsnprintf(buf, sizeof buf, fmt, ap);
	lua_pushnil(L);
	if (suffix)
		lua_pushfstring(L, "%s: %s", buf, suffix);
	else
		lua_pushstring(L, buf);
	lua_pushstring(L, code);
	return 3;
}

int tend_fail(lua_State *L, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = push_failure(L, code, fmt, ap, NULL);
	va_end(ap);
	return n;
}

int tend_fail_errno(lua_State *L, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	/* Say "disk full" in words an operator recognises, not "No space left on device". */
	const char *why = (err == ENOSPC || err == EDQUOT) ? "disk full" : strerror(err);
	int n = push_failure(L, tend_errno_code(err), fmt, ap, why);
	va_end(ap);
	return n;
}

void tend_new_class(lua_State *L, const char *name, const luaL_Reg *methods)
{
	luaL_newmetatable(L, name);
	luaL_setfuncs(L, methods, 0);
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

int tend_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

double tend_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tend_create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : errno;
	close(fd);
	return 0;
}
