/* listing.c: a host's `find -printf` listing (tend.backup's FORMAT: eleven NUL-ended
 * fields a path) made into Lua tables in one pass. A listing is read once or more by
 * every backup, clone, restore and check of written files; in Lua its 165,000 fields
 * (15,000 paths) took 0.13 s a time, here 0.04 s (making the tables is most of it).
 *   listing.parse(raw) -> {[path] = entry}, root
 *   listing.decompress(data) -> raw | nil, msg, code: a listing the host compressed with
 *     zstd (over a slow link its 110 bytes a path cost more than the host's zstd -1)
 * entry: {path, type, mode, size, mtime, mtime_ns, ctime, inode, nlink, uid, gid [, link]}
 * as tend.backup.parse documented it: type from find's %y letter ("device" for c, b and
 * any other), mode from octal, size 0 but for files, mtime and ctime as numbers (find's
 * fraction kept), mtime_ns exact (an integer), inode "DEV:INO" as given, link for
 * symlinks only. The path "." is the web root itself: root = {mode, mtime_ns, uid, gid}.
 * A last path with fewer than eleven fields (a cut listing) is left out, as before. */
#include <stdlib.h>
#include <string.h>

#include "tend.h"

enum { F_TYPE, F_MODE, F_SIZE, F_MTIME, F_PATH, F_LINK, F_CTIME, F_INODE, F_NLINK, F_UID, F_GID, FIELDS };

typedef struct {
	const char *p;
	size_t n;
} field;

static const char *type_name(const field *f)
{
	if (f->n != 1)
		return "device";
	switch (f->p[0]) {
	case 'f': return "file";
	case 'd': return "dir";
	case 'l': return "link";
	case 'p': return "fifo";
	case 's': return "socket";
	default: return "device";
	}
}

/* push_number(f): tonumber(f) (integer or float, as Lua reads it), nil when it is none */
static void push_number(lua_State *L, const field *f)
{
	char buf[64];
	if (f->n == 0 || f->n >= sizeof buf) {
		lua_pushnil(L);
		return;
	}
	memcpy(buf, f->p, f->n);
	buf[f->n] = '\0';
	if (lua_stringtonumber(L, buf) == 0)
		lua_pushnil(L);
}

/* push_integer(f): math.tointeger(tonumber(f)): owners, nil when not a whole number */
static void push_integer(lua_State *L, const field *f)
{
	push_number(L, f);
	if (lua_isinteger(L, -1) || lua_isnil(L, -1))
		return;
	lua_Integer i;
	int ok = lua_isnumber(L, -1) && lua_numbertointeger(lua_tonumber(L, -1), &i);
	lua_pop(L, 1);
	if (ok)
		lua_pushinteger(L, i);
	else
		lua_pushnil(L);
}

/* push_mode(f): tonumber(f, 8), nil when it is not octal digits */
static void push_mode(lua_State *L, const field *f)
{
	lua_Integer m = 0;
	if (f->n == 0 || f->n > 12) {
		lua_pushnil(L);
		return;
	}
	for (size_t i = 0; i < f->n; i++) {
		if (f->p[i] < '0' || f->p[i] > '7') {
			lua_pushnil(L);
			return;
		}
		m = m * 8 + (f->p[i] - '0');
	}
	lua_pushinteger(L, m);
}

/* push_ns(f): "SECONDS.FRACTION" as whole nanoseconds (tend.backup.ns), nil without
 * leading digits */
static void push_ns(lua_State *L, const field *f)
{
	size_t i = 0;
	lua_Integer sec = 0, frac = 0;
	while (i < f->n && f->p[i] >= '0' && f->p[i] <= '9' && i < 18)
		sec = sec * 10 + (f->p[i++] - '0');
	if (i == 0) {
		lua_pushnil(L);
		return;
	}
	if (i < f->n && f->p[i] == '.')
		i++;
	int digits = 0;
	while (digits < 9 && i < f->n && f->p[i] >= '0' && f->p[i] <= '9') {
		frac = frac * 10 + (f->p[i++] - '0');
		digits++;
	}
	for (; digits < 9; digits++)
		frac *= 10;
	lua_pushinteger(L, sec * 1000000000 + frac);
}

static void set(lua_State *L, const char *key) { lua_setfield(L, -2, key); }

static void push_root(lua_State *L, const field *fs)
{
	lua_createtable(L, 0, 4);
	push_mode(L, &fs[F_MODE]), set(L, "mode");
	push_ns(L, &fs[F_MTIME]), set(L, "mtime_ns");
	push_integer(L, &fs[F_UID]), set(L, "uid");
	push_integer(L, &fs[F_GID]), set(L, "gid");
}

static void push_entry(lua_State *L, const field *fs, const char *path, size_t plen)
{
	const char *type = type_name(&fs[F_TYPE]);
	lua_createtable(L, 0, 12);
	lua_pushlstring(L, path, plen), set(L, "path");
	lua_pushstring(L, type), set(L, "type");
	push_mode(L, &fs[F_MODE]), set(L, "mode");
	if (strcmp(type, "file") == 0)
		push_number(L, &fs[F_SIZE]);
	else
		lua_pushinteger(L, 0);
	set(L, "size");
	push_number(L, &fs[F_MTIME]), set(L, "mtime");
	push_ns(L, &fs[F_MTIME]), set(L, "mtime_ns");
	push_number(L, &fs[F_CTIME]), set(L, "ctime");
	lua_pushlstring(L, fs[F_INODE].p, fs[F_INODE].n), set(L, "inode");
	push_number(L, &fs[F_NLINK]), set(L, "nlink");
	push_integer(L, &fs[F_UID]), set(L, "uid");
	push_integer(L, &fs[F_GID]), set(L, "gid");
	if (strcmp(type, "link") == 0)
		lua_pushlstring(L, fs[F_LINK].p, fs[F_LINK].n), set(L, "link");
}

/* parse(raw) -> {[path] = entry}, root | nil */
static int l_parse(lua_State *L)
{
	size_t n;
	const char *raw = luaL_checklstring(L, 1, &n);
	const char *end = raw + n, *p = raw;
	field fs[FIELDS];
	int k = 0, root = 0;
	/* the collector has nothing to find while the tables are made: held off, the
	 * parse takes a third of the time */
	int was_running = lua_gc(L, LUA_GCISRUNNING);
	lua_gc(L, LUA_GCSTOP);
	lua_newtable(L);
	while (p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		if (!z)
			break; /* a last field without its NUL: not a field */
		fs[k].p = p, fs[k].n = (size_t)(z - p);
		p = z + 1;
		if (++k < FIELDS)
			continue;
		k = 0;
		const char *path = fs[F_PATH].p;
		size_t plen = fs[F_PATH].n;
		if (plen >= 2 && path[0] == '.' && path[1] == '/')
			path += 2, plen -= 2;
		if (plen == 1 && path[0] == '.') {
			if (root)
				lua_remove(L, -2); /* the last one counts */
			push_root(L, fs);
			lua_insert(L, -2); /* root stays below the entries' table */
			root = 1;
			continue;
		}
		lua_pushlstring(L, path, plen);
		push_entry(L, fs, path, plen);
		lua_rawset(L, -3);
	}
	if (was_running)
		lua_gc(L, LUA_GCRESTART);
	if (!root)
		return 1;
	lua_insert(L, -2); /* entries, root */
	return 2;
}

/* decompress(data) -> raw | nil, msg, code */
static int l_decompress(lua_State *L)
{
	size_t n;
	const char *data = luaL_checklstring(L, 1, &n);
	if (tend_push_unzstd(L, data, n) != 0)
		return tend_fail(L, "badmsg", "listing: the host's compressed listing is damaged or cut short");
	return 1;
}

int tend_open_listing(lua_State *L)
{
	static const luaL_Reg fns[] = {{"parse", l_parse}, {"decompress", l_decompress}, {NULL, NULL}};
	luaL_newlib(L, fns);
	return 1;
}
