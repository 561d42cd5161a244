/* catalog.c: SQLite databases for Lua: the engine's catalog and apps' SQLite files.
 * Prepared statements only; parameters are bound, never spliced into SQL.
 *   db = catalog.open(path [, "ro"])     db:exec(sql)   db:query(sql, ...)   db:run(sql, ...)
 *   db:insert_many(sql, rows, fields)
 */
#include <sqlite3.h>
#include <string.h>

#include "tend.h"

#define DB_CLASS "tend.catalog.db"

typedef struct {
	sqlite3 *db;
	char path[512];
} catalog_db;

static catalog_db *check_open(lua_State *L)
{
	catalog_db *c = luaL_checkudata(L, 1, DB_CLASS);
	if (!c->db)
		luaL_error(L, "catalog %s: used after close", c->path);
	return c;
}

static int db_fail(lua_State *L, catalog_db *c)
{
	int rc = sqlite3_extended_errcode(c->db);
	const char *code = (rc & 0xff) == SQLITE_BUSY ? "busy"
	                 : (rc & 0xff) == SQLITE_FULL ? "enospc"
	                 : (rc & 0xff) == SQLITE_CONSTRAINT ? "constraint" : "sqlite";
	const char *why = (rc & 0xff) == SQLITE_FULL ? "disk full" : sqlite3_errmsg(c->db);
	return tend_fail(L, code, "sqlite %s: %s", c->path, why);
}

/* open(path [, mode]) -> db | nil, msg, code.  mode "ro" opens read-only, never creates. */
static int l_open(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	const char *mode = luaL_optstring(L, 2, "rwc");
	int flags = strcmp(mode, "ro") == 0 ? SQLITE_OPEN_READONLY
	          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	catalog_db *c = lua_newuserdatauv(L, sizeof *c, 0);
	c->db = NULL;
	snprintf(c->path, sizeof c->path, "%s", path);
	luaL_setmetatable(L, DB_CLASS);
	int err = flags & SQLITE_OPEN_CREATE && path[0] && path[0] != ':' ? tend_create_private(path) : 0;
	if (err)
		return tend_fail_errno(L, err, "catalog %s", path);
	if (sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		int n = db_fail(L, c);
		sqlite3_close(c->db);
		c->db = NULL;
		return n;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 5000);
	return 1;
}

/* db:exec(sql) -> true | nil, msg, code.  Several statements, no parameters. */
static int l_exec(lua_State *L)
{
	catalog_db *c = check_open(L);
	if (sqlite3_exec(c->db, luaL_checkstring(L, 2), NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(L, c);
	lua_pushboolean(L, 1);
	return 1;
}

static void bind_params(lua_State *L, sqlite3_stmt *st, int first)
{
	int top = lua_gettop(L);
	for (int i = first; i <= top; i++) {
		int n = i - first + 1;
		switch (lua_type(L, i)) {
		case LUA_TNIL: sqlite3_bind_null(st, n); break;
		case LUA_TBOOLEAN: sqlite3_bind_int(st, n, lua_toboolean(L, i)); break;
		case LUA_TNUMBER:
			if (lua_isinteger(L, i))
				sqlite3_bind_int64(st, n, lua_tointeger(L, i));
			else
				sqlite3_bind_double(st, n, lua_tonumber(L, i));
			break;
		case LUA_TSTRING: {
			size_t len;
			const char *s = lua_tolstring(L, i, &len);
			sqlite3_bind_text(st, n, s, (int)len, SQLITE_TRANSIENT);
			break;
		}
		default:
			luaL_argerror(L, i, "nil, boolean, number or string expected");
		}
	}
}

static void push_column(lua_State *L, sqlite3_stmt *st, int col)
{
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, col)); break;
	case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, col)); break;
	case SQLITE_NULL: lua_pushnil(L); break;
	default:
		lua_pushlstring(L, (const char *)sqlite3_column_blob(st, col),
		                (size_t)sqlite3_column_bytes(st, col));
	}
}

static int prepare(lua_State *L, catalog_db *c, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(c->db, luaL_checkstring(L, 2), -1, st, NULL) != SQLITE_OK)
		return 0;
	bind_params(L, *st, 3);
	return 1;
}

/* db:query(sql, ...) -> {row, ...} (rows keyed by column name) | nil, msg, code */
static int l_query(lua_State *L)
{
	catalog_db *c = check_open(L);
	sqlite3_stmt *st = NULL;
	if (!prepare(L, c, &st))
		return db_fail(L, c);
	lua_newtable(L);
	int rc, nrow = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		lua_createtable(L, 0, sqlite3_column_count(st));
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			push_column(L, st, i);
			lua_setfield(L, -2, sqlite3_column_name(st, i));
		}
		lua_rawseti(L, -2, ++nrow);
	}
	if (rc != SQLITE_DONE) {
		int n = db_fail(L, c);
		sqlite3_finalize(st);
		return n;
	}
	sqlite3_finalize(st);
	return 1;
}

/* db:run(sql, ...) -> changes, last_insert_rowid | nil, msg, code */
static int l_run(lua_State *L)
{
	catalog_db *c = check_open(L);
	sqlite3_stmt *st = NULL;
	if (!prepare(L, c, &st))
		return db_fail(L, c);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(L, c);
	lua_pushinteger(L, sqlite3_changes(c->db));
	lua_pushinteger(L, sqlite3_last_insert_rowid(c->db));
	return 2;
}

/* db:insert_many(sql, rows, fields) -> count | nil, msg, code.  One prepared statement
 * for many rows: row[fields[1]], row[fields[2]]... bound in order, stepped, reset. */
static int l_insert_many(lua_State *L)
{
	catalog_db *c = check_open(L);
	luaL_checktype(L, 3, LUA_TTABLE);
	luaL_checktype(L, 4, LUA_TTABLE);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(c->db, luaL_checkstring(L, 2), -1, &st, NULL) != SQLITE_OK)
		return db_fail(L, c);
	lua_Integer nrows = luaL_len(L, 3), nfields = luaL_len(L, 4);
	for (lua_Integer r = 1; r <= nrows; r++) {
		lua_rawgeti(L, 3, r);
		int row = lua_gettop(L);
		for (lua_Integer f = 1; f <= nfields; f++) {
			lua_rawgeti(L, 4, f);
			lua_gettable(L, row);
			int t = lua_type(L, -1);
			if (t == LUA_TNIL)
				sqlite3_bind_null(st, (int)f);
			else if (t == LUA_TNUMBER && lua_isinteger(L, -1))
				sqlite3_bind_int64(st, (int)f, lua_tointeger(L, -1));
			else if (t == LUA_TNUMBER)
				sqlite3_bind_double(st, (int)f, lua_tonumber(L, -1));
			else if (t == LUA_TBOOLEAN)
				sqlite3_bind_int(st, (int)f, lua_toboolean(L, -1));
			else {
				size_t len;
				const char *v = luaL_checklstring(L, -1, &len);
				sqlite3_bind_text(st, (int)f, v, (int)len, SQLITE_TRANSIENT);
			}
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		if (sqlite3_step(st) != SQLITE_DONE) {
			int n = db_fail(L, c);
			sqlite3_finalize(st);
			return n;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	lua_pushinteger(L, nrows);
	return 1;
}

/* db:close() -> true; safe to call twice. */
static int l_close(lua_State *L)
{
	catalog_db *c = luaL_checkudata(L, 1, DB_CLASS);
	if (c->db) {
		sqlite3_close_v2(c->db);
		c->db = NULL;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_tostring(lua_State *L)
{
	catalog_db *c = luaL_checkudata(L, 1, DB_CLASS);
	lua_pushfstring(L, "sqlite(%s%s)", c->path, c->db ? "" : ", closed");
	return 1;
}

int tend_open_catalog(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"exec", l_exec}, {"query", l_query}, {"run", l_run}, {"insert_many", l_insert_many},
		{"close", l_close},
		{"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring},
		{NULL, NULL}};
	static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
	tend_new_class(L, DB_CLASS, methods);
	luaL_newlib(L, funcs);
	lua_pushstring(L, sqlite3_libversion());
	lua_setfield(L, -2, "sqlite_version");
	return 1;
}
