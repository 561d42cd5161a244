/* store_gc.c: what gc needs of the store: every object, one removed, packs pruned.
 *   st:list() -> {hex, ...}   st:remove(hex) -> true | nil, msg, code
 *   st:prune() -> packs removed, bytes freed */
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

#include "tend.h"
#include "store.h"

/* st:list() -> {hex, ...}: every object, loose or packed (indexed). */
static int l_list(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
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
	tend_store *st = tend_store_check(L, 1);
	const char *hex = tend_store_check_hex(L, 2);
	char path[PATH_MAX];
	tend_store_object_path(st, hex, path);
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
	tend_store *st = tend_store_check(L, 1);
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

const luaL_Reg tend_store_gc_methods[] = {{"list", l_list}, {"remove", l_remove}, {"prune", l_prune}, {NULL, NULL}};
