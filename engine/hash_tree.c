/* hash_tree.c: the SHA-256 of every file of a local tree, read on a few threads, with a
 * stat cache so that an unchanged file is not read again.
 *   hash.tree(root [, {cache = path, jobs = n}]) -> {entry, ...}, stats | nil, msg, code
 * entry: {path, type = "file" | "dir" | "link" | "other", mode, size, mtime,
 *         sha256 (files), link (links), error (what could not be read)}, sorted by path.
 * stats: {files, hashed, cached, bytes_hashed}.
 * The cache (a SQLite file) keeps, per path, the size, the inode, and mtime and ctime
 * to the nanosecond; a file whose four match reuses its hash. ctime is part of the key
 * because anyone who can write a file can set its mtime back (touch -d) but not its
 * ctime: a file watch built on this is not fooled that way. A file changed in the
 * second before the scan is not cached (a change within the same clock tick could
 * keep the same times). Symlinks are recorded, never followed.
 */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "tend.h"

#define MAX_JOBS 8

typedef struct {
	char *path; /* relative to the root */
	char type;  /* f d l o */
	mode_t mode;
	long long size, mtime_ns, ctime_ns, ino;
	char hex[65];
	char *link;
	int err;  /* errno while reading it, or 0 */
	int need; /* to be hashed (not in the cache) */
} tree_entry;

typedef struct {
	tree_entry *e;
	size_t n, cap;
	int rootfd;
	size_t *todo; /* indexes of entries to hash */
	size_t ntodo;
	size_t next;  /* the next todo to take (atomic) */
	long long bytes;
} tree;

static long long ns(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }

static void *hash_worker(void *arg)
{
	tree *t = arg;
	char *buf = malloc(1 << 17);
	for (;;) {
		size_t i = __atomic_fetch_add(&t->next, 1, __ATOMIC_RELAXED);
		if (i >= t->ntodo)
			break;
		tree_entry *e = &t->e[t->todo[i]];
		long long size = 0;
		e->err = buf ? tend_sha256_file(t->rootfd, e->path, 0, buf, e->hex, &size) : ENOMEM;
		if (!e->err)
			__atomic_fetch_add(&t->bytes, size, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const tree_entry *)a)->path, ((const tree_entry *)b)->path);
}

static void tree_free(tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].path);
		free(t->e[i].link);
	}
	free(t->e);
	free(t->todo);
	if (t->rootfd >= 0)
		close(t->rootfd);
}

/* Walk root (without following symlinks, without crossing into other file systems). */
static int walk(tree *t, const char *root)
{
	char *const roots[] = {(char *)root, NULL};
	FTS *fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
	if (!fts)
		return errno;
	size_t skip = strlen(root);
	int err = 0;
	for (;;) {
		errno = 0;
		FTSENT *f = fts_read(fts);
		if (!f) {
			err = errno;
			break;
		}
		if (f->fts_info == FTS_DP || f->fts_level == 0)
			continue;
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 1024;
			tree_entry *e = realloc(t->e, cap * sizeof *e);
			if (!e) {
				fts_close(fts);
				return ENOMEM;
			}
			t->e = e;
			t->cap = cap;
		}
		tree_entry *e = &t->e[t->n];
		memset(e, 0, sizeof *e);
		const char *rel = f->fts_path + skip;
		while (*rel == '/')
			rel++;
		if (!(e->path = strdup(rel))) {
			fts_close(fts);
			return ENOMEM;
		}
		t->n++;
		struct stat *sb = f->fts_statp;
		switch (f->fts_info) {
		case FTS_F: e->type = 'f'; break;
		case FTS_D: e->type = 'd'; break;
		case FTS_SL: case FTS_SLNONE: e->type = 'l'; break;
		case FTS_DNR: case FTS_ERR: case FTS_NS: e->type = 'o'; e->err = f->fts_errno; break;
		default: e->type = 'o'; break;
		}
		if (f->fts_info != FTS_NS && f->fts_info != FTS_ERR) {
			e->mode = sb->st_mode & 07777;
			e->size = (long long)sb->st_size;
			e->mtime_ns = ns(sb->st_mtim);
			e->ctime_ns = ns(sb->st_ctim);
			e->ino = (long long)sb->st_ino;
		}
		if (e->type == 'l') {
			char target[4096];
			ssize_t k = readlink(f->fts_accpath, target, sizeof target - 1);
			if (k >= 0) {
				target[k] = '\0';
				e->link = strdup(target);
			} else {
				e->err = errno;
			}
		}
	}
	fts_close(fts);
	return err;
}

static sqlite3 *cache_open(const char *path)
{
	sqlite3 *db = NULL;
	if (tend_create_private(path) != 0 ||
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL;"
	                     "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, ino INTEGER,"
	                     " mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT) WITHOUT ROWID;",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	return db;
}

/* Bind a file's key (path, size, inode, mtime, ctime) to q's first five parameters,
 * in the order of the hashes table. */
static void bind_key(sqlite3_stmt *q, const tree_entry *e)
{
	sqlite3_bind_text(q, 1, e->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, e->size);
	sqlite3_bind_int64(q, 3, e->ino);
	sqlite3_bind_int64(q, 4, e->mtime_ns);
	sqlite3_bind_int64(q, 5, e->ctime_ns);
}

/* Mark each file to hash, or fill its hash from the cache. */
static void cache_look(tree *t, sqlite3 *db)
{
	sqlite3_stmt *q = NULL;
	if (db)
		sqlite3_prepare_v2(db, "SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND ino = ?"
		                       " AND mtime_ns = ? AND ctime_ns = ?", -1, &q, NULL);
	for (size_t i = 0; i < t->n; i++) {
		tree_entry *e = &t->e[i];
		if (e->type != 'f' || e->err)
			continue;
		e->need = 1;
		if (!q)
			continue;
		bind_key(q, e);
		if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 64) {
			memcpy(e->hex, sqlite3_column_text(q, 0), 65);
			e->need = 0;
		}
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
}

/* The cache becomes this scan (files changed in the last second left out). */
static int cache_store(tree *t, sqlite3 *db, long long since_ns)
{
	sqlite3_stmt *q = NULL;
	int ok = sqlite3_exec(db, "BEGIN IMMEDIATE; DELETE FROM hashes;", NULL, NULL, NULL) == SQLITE_OK &&
	         sqlite3_prepare_v2(db, "INSERT INTO hashes VALUES (?, ?, ?, ?, ?, ?)", -1, &q, NULL) == SQLITE_OK;
	for (size_t i = 0; ok && i < t->n; i++) {
		tree_entry *e = &t->e[i];
		if (e->type != 'f' || e->err || e->mtime_ns >= since_ns || e->ctime_ns >= since_ns)
			continue;
		bind_key(q, e);
		sqlite3_bind_text(q, 6, e->hex, 64, SQLITE_STATIC);
		ok = sqlite3_step(q) == SQLITE_DONE;
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	if (!ok || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	return 1;
}

static void push_entry(lua_State *L, const tree_entry *e)
{
	static const char *types[] = {['f'] = "file", ['d'] = "dir", ['l'] = "link", ['o'] = "other"};
	lua_createtable(L, 0, 8);
	lua_pushstring(L, e->path);
	lua_setfield(L, -2, "path");
	lua_pushstring(L, types[(unsigned char)e->type]);
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, e->mode);
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, e->size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, e->mtime_ns / 1000000000LL);
	lua_setfield(L, -2, "mtime");
	if (e->type == 'f' && !e->err) {
		lua_pushstring(L, e->hex);
		lua_setfield(L, -2, "sha256");
	}
	if (e->link) {
		lua_pushstring(L, e->link);
		lua_setfield(L, -2, "link");
	}
	if (e->err) {
		lua_pushstring(L, strerror(e->err));
		lua_setfield(L, -2, "error");
	}
}

/* Hash the entries the cache could not vouch for, on up to jobs threads (here, when
 * none can start). 0, or ENOMEM. */
static int hash_needed(tree *t, long jobs)
{
	t->todo = malloc((t->n ? t->n : 1) * sizeof *t->todo);
	if (!t->todo)
		return ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].need)
			t->todo[t->ntodo++] = i;
	pthread_t th[MAX_JOBS];
	int started = 0;
	for (long k = 0; k < jobs && (size_t)k < t->ntodo; k++)
		if (pthread_create(&th[started], NULL, hash_worker, t) == 0)
			started++;
	if (t->ntodo && !started)
		hash_worker(t);
	for (int k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	return 0;
}

/* The entries, sorted by path, and the counts: two values on the stack. */
static int push_tree(lua_State *L, tree *t)
{
	qsort(t->e, t->n, sizeof *t->e, by_path);
	lua_createtable(L, (int)t->n, 0);
	lua_Integer files = 0, cached = 0;
	for (size_t i = 0; i < t->n; i++) {
		push_entry(L, &t->e[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
		files += t->e[i].type == 'f';
		cached += t->e[i].type == 'f' && !t->e[i].need && !t->e[i].err;
	}
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, files);
	lua_setfield(L, -2, "files");
	lua_pushinteger(L, (lua_Integer)t->ntodo);
	lua_setfield(L, -2, "hashed");
	lua_pushinteger(L, cached);
	lua_setfield(L, -2, "cached");
	lua_pushinteger(L, t->bytes);
	lua_setfield(L, -2, "bytes_hashed");
	return 2;
}

int tend_hash_tree(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	const char *cache = NULL;
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	if (lua_istable(L, 2)) {
		lua_getfield(L, 2, "cache");
		cache = lua_tostring(L, -1);
		lua_getfield(L, 2, "jobs");
		jobs = (long)luaL_optinteger(L, -1, jobs);
		lua_pop(L, 1); /* cache's string stays on the stack while we use it */
	}
	jobs = jobs < 1 ? 1 : jobs > MAX_JOBS ? MAX_JOBS : jobs;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long since_ns = ns(now) - 1000000000LL;

	tree t = {0};
	t.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t.rootfd < 0)
		return tend_fail_errno(L, errno, "%s", root);
	int err = walk(&t, root);
	if (err) {
		tree_free(&t);
		return tend_fail_errno(L, err, "walk %s", root);
	}
	sqlite3 *db = cache ? cache_open(cache) : NULL;
	if (cache && !db) {
		tree_free(&t);
		return tend_fail(L, "sqlite", "hash cache %s: cannot open it", cache);
	}
	cache_look(&t, db);
	if (hash_needed(&t, jobs) != 0) {
		sqlite3_close(db);
		tree_free(&t);
		return luaL_error(L, "hash.tree: out of memory");
	}
	if (db && !cache_store(&t, db, since_ns)) {
		int n = tend_fail(L, "sqlite", "hash cache %s: %s", cache, sqlite3_errmsg(db));
		sqlite3_close(db);
		tree_free(&t);
		return n;
	}
	sqlite3_close(db);
	int n = push_tree(L, &t);
	tree_free(&t);
	return n;
}
