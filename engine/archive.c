/* archive.c: tar streams (libarchive) between channels and the object store.
 *   archive.store_tar(stream, store) -> {entry, ...} | nil, msg, code
 * reads a tar stream (any compression libarchive knows) from a channel; each regular
 * file goes straight into the store (hashed and compressed in C, never a Lua string);
 * every entry comes back as {path, type, mode, size, mtime, mtime_ns, uid, gid, sha256 |
 * link}, a sparse file's data regions as sparse = "OFFSET+LENGTH,..." (its holes are
 * never stored: the store holds the whole bytes, zeros included, compressed), a device
 * node's number as rdev = "char MAJOR,MINOR" | "block MAJOR,MINOR".
 * Paths are normalised ("./a" -> "a"); an absolute path or a ".." component fails the
 * whole stream: a backup never records what it could not restore safely.
 *   archive.write_tar(stream | path, store, entries [, {compression=, prefix=, progress=}])
 *     -> files, bytes | nil, msg, code
 * writes a tar (POSIX pax) of entries (manifest rows; a row may carry `data` instead of
 * a stored object) into a stream (then end-of-file) or a compressed file, each file's
 * bytes from the store, verified; owners as numbers (uid, gid), a sparse file as its
 * data regions only (GNU sparse 1.0: tar makes the holes again), a device node from its
 * rdev (a socket, or a device without one, is left out). Unsafe paths are refused.
 * store_tar also takes a path: an archive file (tar, any compression).
 *   archive.store_stream(stream, store) -> hex, size, added, tail | nil, msg, code
 * stores one compressed stream (a database dump zstd'd on its host) as its plain bytes
 * (a zstd stream is kept as the host made it: the object is that frame).
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tend.h"
#include "store.h"

#define BLOCK (1 << 17)

typedef struct {
	tend_reader in;
	char buf[BLOCK];
	size_t held; /* bytes in buf read already (a first look at the stream), given out first */
	int failed;  /* the reader failed (not the archive's fault) */
} tar_source;

static la_ssize_t on_read(struct archive *a, void *ctx, const void **buf)
{
	tar_source *s = ctx;
	if (s->held) {
		*buf = s->buf;
		la_ssize_t n = (la_ssize_t)s->held;
		s->held = 0;
		return n;
	}
	ssize_t n = s->in.read(s->in.ctx, s->buf, sizeof s->buf);
	if (n < 0) {
		s->failed = 1;
		archive_set_error(a, EIO, "%s", s->in.error(s->in.ctx));
		return -1;
	}
	*buf = s->buf;
	return n;
}

/* One entry's data for the store, from libarchive's blocks: each at its offset, the
 * gaps before and after them (a sparse file's holes) as zeros, up to the entry's size. */
typedef struct {
	struct archive *a;
	const char *block; /* what is left of the current block */
	size_t block_left;
	la_int64_t block_at; /* its offset in the file */
	la_int64_t pos, size;
	int eof;
} entry_source;

static ssize_t entry_data(void *ctx, char *buf, size_t n)
{
	entry_source *s = ctx;
	while (!s->block_left && !s->eof) {
		const void *b;
		size_t len;
		la_int64_t at;
		int rc = archive_read_data_block(s->a, &b, &len, &at);
		if (rc == ARCHIVE_EOF)
			s->eof = 1;
		else if (rc < ARCHIVE_WARN || at < s->pos) {
			errno = EIO;
			return -1;
		} else
			s->block = b, s->block_left = len, s->block_at = at;
	}
	la_int64_t upto = s->block_left ? s->block_at : s->size; /* zeros before the next block */
	size_t k;
	if (s->pos < upto) {
		k = upto - s->pos < (la_int64_t)n ? (size_t)(upto - s->pos) : n;
		memset(buf, 0, k);
	} else if (!s->block_left) {
		return 0; /* the end */
	} else {
		k = s->block_left < n ? s->block_left : n;
		memcpy(buf, s->block, k);
		s->block += k, s->block_left -= k, s->block_at += (la_int64_t)k;
	}
	s->pos += (la_int64_t)k;
	return (ssize_t)k;
}

/* "./a//b/" -> "a/b"; NULL for an absolute path or one with a ".." component. */
static const char *clean_path(const char *in, char *out, size_t cap)
{
	if (in[0] == '/')
		return NULL;
	size_t o = 0;
	for (const char *p = in; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return NULL;
		if (len && !(len == 1 && p[0] == '.')) {
			if (o + len + 2 > cap)
				return NULL;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len + (slash ? 1 : 0);
	}
	out[o] = '\0';
	return o ? out : ".";
}

static const char *entry_type(struct archive_entry *e)
{
	if (archive_entry_hardlink(e))
		return "hardlink";
	switch (archive_entry_filetype(e)) {
	case AE_IFREG: return "file";
	case AE_IFDIR: return "dir";
	case AE_IFLNK: return "link";
	case AE_IFIFO: return "fifo";
	default: return "device";
	}
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

/* Push the entry's row; store its data when it is a regular file. 0, or a message. */
static const char *take_entry(lua_State *L, struct archive *a, struct archive_entry *e,
                              tend_store *st, const char *path)
{
	const char *type = entry_type(e);
	lua_createtable(L, 0, 9);
	set_str(L, "path", path);
	set_str(L, "type", type);
	set_int(L, "mode", archive_entry_perm(e));
	set_int(L, "mtime", (lua_Integer)archive_entry_mtime(e));
	/* to the nanosecond where 64 bits hold it (until 2262; beyond, to the second) */
	if (archive_entry_mtime_is_set(e) && archive_entry_mtime(e) > -9000000000LL && archive_entry_mtime(e) < 9000000000LL)
		set_int(L, "mtime_ns", (lua_Integer)archive_entry_mtime(e) * 1000000000 + archive_entry_mtime_nsec(e));
	set_int(L, "uid", (lua_Integer)archive_entry_uid(e));
	set_int(L, "gid", (lua_Integer)archive_entry_gid(e));
	if (strcmp(type, "link") == 0)
		set_str(L, "link", archive_entry_symlink(e));
	if (strcmp(type, "device") == 0 && (archive_entry_filetype(e) == AE_IFCHR || archive_entry_filetype(e) == AE_IFBLK)) {
		lua_pushfstring(L, "%s %d,%d", archive_entry_filetype(e) == AE_IFCHR ? "char" : "block",
		                (int)archive_entry_rdevmajor(e), (int)archive_entry_rdevminor(e));
		lua_setfield(L, -2, "rdev");
	}
	if (strcmp(type, "file") == 0 && archive_entry_sparse_reset(e) > 0) {
		luaL_Buffer b;
		la_int64_t off, len;
		luaL_buffinit(L, &b);
		for (int i = 0; archive_entry_sparse_next(e, &off, &len) == ARCHIVE_OK; i++) {
			char region[48];
			snprintf(region, sizeof region, "%s%lld+%lld", i ? "," : "", (long long)off, (long long)len);
			luaL_addstring(&b, region);
		}
		luaL_pushresult(&b);
		lua_setfield(L, -2, "sparse");
	}
	if (strcmp(type, "hardlink") == 0) {
		char target[4096];
		const char *t = clean_path(archive_entry_hardlink(e), target, sizeof target);
		if (!t)
			return "hard link target outside the tree";
		set_str(L, "link", t);
	}
	if (strcmp(type, "file") != 0) {
		set_int(L, "size", 0);
		return NULL;
	}
	tend_store_result res;
	const char *what;
	entry_source src = {a, NULL, 0, 0, 0, archive_entry_size(e), 0};
	int err = tend_store_put(st, entry_data, &src, &res, &what);
	if (err)
		return err == ENOSPC || err == EDQUOT ? "store: disk full"
		     : strcmp(what, "read source") == 0 ? archive_error_string(a) : strerror(err);
	set_int(L, "size", res.size);
	set_str(L, "sha256", res.hex);
	return NULL;
}

/* Progress: fn(files, bytes) at most every 0.2 s, and once at the end (last). */
typedef struct {
	lua_State *L;
	int fn; /* stack index of the function, or 0 */
	double next;
} progress;

static void progress_tick(progress *p, lua_Integer files, lua_Integer bytes, int last)
{
	if (!p->fn || (!last && tend_now() < p->next))
		return;
	lua_pushvalue(p->L, p->fn);
	lua_pushinteger(p->L, files);
	lua_pushinteger(p->L, bytes);
	lua_call(p->L, 2, 0);
	p->next = tend_now() + 0.2;
}

/* store_tar(stream | path, store [, progress]) -> {entry...} | nil, msg, code.
 * progress(files, bytes), when given, is called at most every 0.2 s and at the end. */
static int l_store_tar(lua_State *L)
{
	tar_source *src = lua_newuserdatauv(L, sizeof *src, 0);
	const char *path_in = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
	if (!path_in)
		tend_check_reader(L, 1, &src->in);
	src->failed = 0;
	src->held = 0;
	tend_store *st = tend_store_check(L, 2);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_filter_all(a);
	int opened = path_in ? archive_read_open_filename(a, path_in, BLOCK)
	                     : archive_read_open(a, src, NULL, on_read, NULL);
	if (opened != ARCHIVE_OK) {
		int n = tend_fail(L, src->failed ? "stream" : "archive", "tar: %s", archive_error_string(a));
		archive_read_free(a);
		return n;
	}
	progress prog = {L, lua_isfunction(L, 3) ? 3 : 0, tend_now() + 0.2};
	lua_newtable(L);
	int count = 0, rc, list = lua_gettop(L);
	lua_Integer files = 0, bytes = 0;
	const char *bad = NULL;
	char path[4096];
	struct archive_entry *e;
	while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
		const char *p = clean_path(archive_entry_pathname(e), path, sizeof path);
		if (!p) {
			bad = "unsafe path in tar stream (absolute or ..)";
			break;
		}
		if ((bad = take_entry(L, a, e, st, p)) != NULL)
			break;
		if (archive_entry_filetype(e) == AE_IFREG) {
			files++;
			bytes += archive_entry_size(e);
		}
		lua_rawseti(L, list, ++count);
		progress_tick(&prog, files, bytes, 0);
	}
	if (!bad)
		progress_tick(&prog, files, bytes, 1);
	if (!bad && rc != ARCHIVE_EOF)
		bad = archive_error_string(a);
	int n = 1;
	if (bad) {
		const char *code = src->failed ? "stream" : strstr(bad, "disk full") ? "enospc" : "archive";
		n = tend_fail(L, code, "tar: %s", bad);
	}
	archive_read_free(a);
	return n;
}

typedef struct {
	struct archive *a;
	tend_tail tail;
} raw_source;

static ssize_t raw_data(void *ctx, char *buf, size_t n)
{
	raw_source *r = ctx;
	la_ssize_t k = r->a ? archive_read_data(r->a, buf, n) : 0;
	if (k < 0) {
		errno = EIO;
		return -1;
	}
	tend_tail_add(&r->tail, buf, (size_t)k);
	return k;
}

/* The stream's bytes: those held from the first look, then the rest. */
static ssize_t held_then_stream(void *ctx, char *buf, size_t n)
{
	tar_source *s = ctx;
	if (s->held) {
		size_t k = s->held < n ? s->held : n;
		memcpy(buf, s->buf, k);
		memmove(s->buf, s->buf + k, s->held - k);
		s->held -= k;
		return (ssize_t)k;
	}
	ssize_t r = s->in.read(s->in.ctx, buf, n);
	if (r < 0) {
		s->failed = 1;
		errno = EIO;
	}
	return r;
}

static int store_frame(lua_State *L, tar_source *src, tend_store *st)
{
	tend_store_result res;
	tend_tail tail = {{0}, 0};
	const char *what;
	int err = tend_store_put_frame(st, held_then_stream, src, &res, &tail, &what);
	if (err && src->failed)
		return tend_fail(L, "stream", "read stream: %s", src->in.error(src->in.ctx));
	if (err == EBADMSG)
		return tend_fail(L, "archive", "%s", what);
	if (err)
		return tend_fail_errno(L, err, "store: %s", what);
	lua_pushstring(L, res.hex);
	lua_pushinteger(L, res.size);
	lua_pushboolean(L, res.added);
	lua_pushlstring(L, tail.buf, tail.len);
	return 4;
}

/* store_stream(stream, store) -> hex, size, added, tail | nil, msg, code: a stream
 * compressed any way libarchive reads (zstd, gzip, xz, or not at all), stored as its
 * plain bytes; tail: the last of them (up to 256), for a caller that checks the end. */
static int l_store_stream(lua_State *L)
{
	tar_source *src = lua_newuserdatauv(L, sizeof *src, 0);
	tend_check_reader(L, 1, &src->in);
	src->failed = 0;
	src->held = 0;
	tend_store *st = tend_store_check(L, 2);
	/* A zstd stream is stored as it came, not decompressed and compressed again. */
	while (src->held < 4) {
		ssize_t k = src->in.read(src->in.ctx, src->buf + src->held, sizeof src->buf - src->held);
		if (k < 0)
			return tend_fail(L, "stream", "read stream: %s", src->in.error(src->in.ctx));
		if (k == 0)
			break;
		src->held += (size_t)k;
	}
	if (src->held >= 4 && memcmp(src->buf, "\x28\xb5\x2f\xfd", 4) == 0)
		return store_frame(L, src, st);
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	archive_read_support_format_empty(a); /* nothing at all: an empty object */
	int rc = archive_read_open(a, src, NULL, on_read, NULL);
	if (rc == ARCHIVE_OK)
		rc = archive_read_next_header(a, &e);
	if (rc != ARCHIVE_OK && rc != ARCHIVE_EOF) {
		int n = tend_fail(L, src->failed ? "stream" : "archive", "read stream: %s",
		                  archive_error_string(a) ? archive_error_string(a) : "empty");
		archive_read_free(a);
		return n;
	}
	raw_source raw = {rc == ARCHIVE_OK ? a : NULL, {{0}, 0}};
	tend_store_result res;
	const char *what;
	int err = tend_store_put(st, raw_data, &raw, &res, &what);
	int n;
	if (err && src->failed)
		n = tend_fail(L, "stream", "read stream: %s", src->in.error(src->in.ctx));
	else if (err && strcmp(what, "read source") == 0)
		n = tend_fail(L, "archive", "read stream: %s", archive_error_string(a));
	else if (err)
		n = tend_fail_errno(L, err, "store: %s", what);
	else {
		lua_pushstring(L, res.hex);
		lua_pushinteger(L, res.size);
		lua_pushboolean(L, res.added);
		lua_pushlstring(L, raw.tail.buf, raw.tail.len);
		n = 4;
	}
	archive_read_free(a);
	return n;
}

typedef struct {
	tend_writer out;
	int failed;
} tar_sink;

static la_ssize_t on_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
	tar_sink *s = ctx;
	if (s->out.write(s->out.ctx, buf, n) != 0) {
		s->failed = 1;
		archive_set_error(a, EPIPE, "%s", s->out.error(s->out.ctx));
		return -1;
	}
	return (la_ssize_t)n;
}

static int to_archive(void *ctx, const char *p, size_t n)
{
	if (archive_write_data(ctx, p, n) < 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static const char *field_str(lua_State *L, int t, const char *k)
{
	lua_getfield(L, t, k);
	const char *v = lua_tostring(L, -1);
	lua_pop(L, 1); /* still referenced by the row table */
	return v;
}

static lua_Integer field_int(lua_State *L, int t, const char *k)
{
	lua_getfield(L, t, k);
	lua_Integer v = lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

/* One manifest row into the archive, its path under prefix; NULL, or why not.
 * A row may carry its bytes in `data` instead of a stored object. */
static int ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* Are the paths and link targets of the entries at idx all plain ASCII? */
static int all_ascii(lua_State *L, int idx)
{
	int yes = 1;
	for (lua_Integer i = 1; yes && i <= luaL_len(L, idx); i++) {
		lua_rawgeti(L, idx, i);
		if (lua_istable(L, -1)) {
			const char *path = field_str(L, -1, "path"), *link = field_str(L, -1, "link");
			yes = ascii(path ? path : "") && ascii(link ? link : "");
		}
		lua_pop(L, 1);
	}
	return yes;
}

/* The entry's data regions from "OFFSET+LENGTH,..." (ascending, within size); 0, or -1
 * for a map that is not one. */
static int add_sparse(struct archive_entry *e, const char *map, la_int64_t size)
{
	long long end = 0;
	for (const char *p = map; *p;) {
		char *rest;
		errno = 0;
		long long off = strtoll(p, &rest, 10);
		if (errno || rest == p || *rest != '+' || off < end)
			return -1;
		p = rest + 1;
		long long len = strtoll(p, &rest, 10);
		if (errno || rest == p || len < 0 || off > size - len || (*rest && *rest != ','))
			return -1;
		archive_entry_sparse_add_entry(e, off, len);
		end = off + len;
		p = *rest ? rest + 1 : rest;
	}
	return 0;
}

/* A device node's "char MAJOR,MINOR" | "block MAJOR,MINOR"; 0, or -1. */
static int set_rdev(struct archive_entry *e, const char *rdev)
{
	char kind[8];
	unsigned major, minor;
	if (sscanf(rdev, "%7s %u,%u", kind, &major, &minor) != 3)
		return -1;
	if (strcmp(kind, "char") == 0)
		archive_entry_set_filetype(e, AE_IFCHR);
	else if (strcmp(kind, "block") == 0)
		archive_entry_set_filetype(e, AE_IFBLK);
	else
		return -1;
	archive_entry_set_rdevmajor(e, major);
	archive_entry_set_rdevminor(e, minor);
	return 0;
}

/* The row's mtime on e: mtime_ns to the nanosecond, else mtime (seconds, a float). */
static void set_mtime(lua_State *L, int row, struct archive_entry *e)
{
	lua_getfield(L, row, "mtime_ns");
	lua_getfield(L, row, "mtime");
	if (lua_isinteger(L, -2)) {
		lua_Integer ns = lua_tointeger(L, -2);
		archive_entry_set_mtime(e, (time_t)(ns / 1000000000), (long)(ns % 1000000000));
	} else {
		double mtime = lua_tonumber(L, -1);
		archive_entry_set_mtime(e, (time_t)mtime, (long)((mtime - (double)(time_t)mtime) * 1e9));
	}
	lua_pop(L, 2);
}

/* The row's type on e (all but a hard link): NULL, or what is wrong. *skip: a type tar
 * does not make (a socket, a device of unknown number); restore keeps the live one. */
static const char *set_type(lua_State *L, int row, struct archive_entry *e, const char *type, int has_data,
                            size_t dlen, int *skip)
{
	const char *link = field_str(L, row, "link");
	*skip = 0;
	if (strcmp(type, "file") == 0) {
		if (!field_str(L, row, "sha256") && !has_data)
			return "a file without sha256 in the manifest";
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, has_data ? (la_int64_t)dlen : field_int(L, row, "size"));
		const char *sparse = has_data ? NULL : field_str(L, row, "sparse");
		if (sparse && add_sparse(e, sparse, archive_entry_size(e)) != 0)
			return "a bad sparse map in the manifest";
	} else if (strcmp(type, "dir") == 0) {
		archive_entry_set_filetype(e, AE_IFDIR);
	} else if (strcmp(type, "link") == 0 && link) {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, link);
	} else if (strcmp(type, "fifo") == 0) {
		archive_entry_set_filetype(e, AE_IFIFO);
	} else if (strcmp(type, "device") == 0 && field_str(L, row, "rdev")) {
		if (set_rdev(e, field_str(L, row, "rdev")) != 0)
			return "a bad device number in the manifest";
	} else {
		*skip = 1;
	}
	return NULL;
}

static const char *put_entry(lua_State *L, int row, struct archive *a, struct archive_entry *e,
                             tend_store *st, const char *prefix)
{
	char clean[4096], full[8192];
	const char *path = field_str(L, row, "path"), *type = field_str(L, row, "type");
	if (!path || !type || !clean_path(path, clean, sizeof clean) || strcmp(clean, path) != 0)
		return "unsafe or missing path in the manifest";
	const char *hex = field_str(L, row, "sha256");
	size_t dlen = 0;
	lua_getfield(L, row, "data");
	const char *data = lua_tolstring(L, -1, &dlen);
	lua_pop(L, 1); /* anchored by the row */
	snprintf(full, sizeof full, "%s%s", prefix, path);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, full);
	archive_entry_set_perm(e, (mode_t)field_int(L, row, "mode"));
	archive_entry_set_uid(e, field_int(L, row, "uid"));
	archive_entry_set_gid(e, field_int(L, row, "gid"));
	set_mtime(L, row, e);
	const char *hardlink = field_str(L, row, "hardlink");
	char target[8192];
	if (strcmp(type, "file") == 0 && hardlink) { /* another name of a file written before */
		if (!clean_path(hardlink, clean, sizeof clean) || strcmp(clean, hardlink) != 0)
			return "unsafe hard link target in the manifest";
		snprintf(target, sizeof target, "%s%s", prefix, hardlink);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_hardlink(e, target);
		archive_entry_set_size(e, 0);
		return archive_write_header(a, e) != ARCHIVE_OK ? archive_error_string(a) : NULL;
	}
	int skip;
	const char *bad = set_type(L, row, e, type, data != NULL, dlen, &skip);
	if (bad || skip)
		return bad;
	if (archive_write_header(a, e) != ARCHIVE_OK)
		return archive_error_string(a);
	if (data)
		return archive_write_data(a, data, dlen) < 0 ? archive_error_string(a) : NULL;
	if (strcmp(type, "file") == 0) {
		int err = tend_store_read(st, hex, to_archive, a);
		if (err == EBADMSG)
			return "a stored object is damaged (tend verify)";
		if (err == ENOENT)
			return "a stored object is missing (tend verify)";
		if (err)
			return archive_error_string(a) ? archive_error_string(a) : strerror(err);
	}
	return NULL;
}

static int add_filter(struct archive *a, const char *compression)
{
	if (strcmp(compression, "zstd") == 0)
		return archive_write_add_filter_zstd(a);
	if (strcmp(compression, "bzip2") == 0)
		return archive_write_add_filter_bzip2(a);
	if (strcmp(compression, "gzip") == 0)
		return archive_write_add_filter_gzip(a);
	return strcmp(compression, "none") == 0 ? ARCHIVE_OK : ARCHIVE_FATAL;
}

/* Open a's output: the file dest (through its temp name tmp, 0600: an export holds the
 * config file with its password, and the users table) or the sink. NULL, or what failed. */
static const char *open_output(struct archive *a, tar_sink *sink, const char *dest, char tmp[4096], int *fd)
{
	if (!dest) {
		/* large blocks: the channel sends each as SSH packets of 32 KB in a row, and the
		 * host's sshd wakes the fewer times (10 KB blocks: 2.6 s of its CPU for the bench
		 * site's restore; 32 KB: 1.1 to 1.5 s; 128 KB: 0.8 to 1.1 s) */
		archive_write_set_bytes_per_block(a, 131072);
		archive_write_set_bytes_in_last_block(a, 1);
		return archive_write_open(a, sink, NULL, on_write, NULL) != ARCHIVE_OK ? archive_error_string(a) : NULL;
	}
	snprintf(tmp, 4096, "%s.tend-tmp", dest);
	*fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (*fd < 0 || fchmod(*fd, 0600) != 0)
		return strerror(errno);
	return archive_write_open_fd(a, *fd) != ARCHIVE_OK ? archive_error_string(a) : NULL;
}

/* Every row of the entries table at idx into a, counting files and their bytes. */
static const char *put_entries(lua_State *L, int idx, struct archive *a, tend_store *st, const char *prefix,
                               progress *prog, lua_Integer *files, lua_Integer *bytes)
{
	struct archive_entry *e = archive_entry_new();
	const char *bad = NULL;
	for (lua_Integer i = 1; !bad && i <= luaL_len(L, idx); i++) {
		lua_rawgeti(L, idx, i);
		luaL_checktype(L, -1, LUA_TTABLE);
		bad = put_entry(L, lua_gettop(L), a, e, st, prefix);
		if (!bad && strcmp(field_str(L, -1, "type"), "file") == 0) {
			(*files)++;
			*bytes += field_int(L, -1, "size");
		}
		lua_pop(L, 1);
		if (!bad)
			progress_tick(prog, *files, *bytes, 0);
	}
	if (!bad)
		progress_tick(prog, *files, *bytes, 1);
	archive_entry_free(e);
	return bad;
}

/* write_tar(stream | path, store, entries [, {compression=, prefix=}]) -> files, bytes
 * | nil, msg, code.  To a path: compressed (zstd, bzip2, gzip or none), written to a
 * temp file beside it and renamed, so the archive appears whole or not at all. */
static int l_write_tar(lua_State *L)
{
	tar_sink *sink = lua_newuserdatauv(L, sizeof *sink, 0);
	const char *dest = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
	if (!dest)
		tend_check_writer(L, 1, &sink->out);
	sink->failed = 0;
	tend_store *st = tend_store_check(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	const char *compression = "none", *prefix = "";
	progress prog = {L, 0, tend_now() + 0.2};
	if (lua_istable(L, 4)) {
		lua_getfield(L, 4, "compression");
		compression = luaL_optstring(L, -1, "none");
		lua_getfield(L, 4, "prefix");
		prefix = luaL_optstring(L, -1, "");
		lua_getfield(L, 4, "progress");
		prog.fn = lua_isfunction(L, -1) ? lua_gettop(L) : 0;
	}
	char tmp[4096];
	struct archive *a = archive_write_new();
	/* pax, not pax_restricted: every entry carries its mtime to the sub-second. Names are
	 * bytes, not text: when one is not plain ASCII, all go out as they are, marked
	 * hdrcharset=BINARY (GNU tar reads them back byte for byte, saying it ignores the
	 * keyword; libarchive takes it) */
	archive_write_set_format_pax(a);
	if (!all_ascii(L, 3))
		archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY");

	const char *bad = NULL;
	int fd = -1;
	lua_Integer files = 0, bytes = 0;
	if (add_filter(a, compression) != ARCHIVE_OK)
		bad = "unknown compression (zstd, bzip2, gzip or none)";
	else {
		/* a stream only crosses a link: the fastest level; a file is kept */
		if (!dest && strcmp(compression, "zstd") == 0)
			archive_write_set_filter_option(a, "zstd", "compression-level", "1");
		bad = open_output(a, sink, dest, tmp, &fd);
	}
	if (!bad)
		bad = put_entries(L, 3, a, st, prefix, &prog, &files, &bytes);
	/* closed before fd is: nothing may write to a descriptor number that was reused */
	if ((!bad || fd >= 0) && archive_write_close(a) != ARCHIVE_OK && !bad)
		bad = archive_error_string(a);
	if (fd >= 0 && (fsync(fd) != 0 || close(fd) != 0) && !bad)
		bad = strerror(errno);
	int n;
	if (!bad && dest && rename(tmp, dest) != 0)
		bad = strerror(errno);
	if (bad) {
		n = tend_fail(L, sink->failed ? "stream" : strstr(bad, "space") ? "enospc" : "archive", "tar: %s", bad);
		if (dest)
			unlink(tmp);
	} else if (!dest && sink->out.finish(sink->out.ctx) != 0)
		n = tend_fail(L, "stream", "tar: %s", sink->out.error(sink->out.ctx));
	else {
		lua_pushinteger(L, files);
		lua_pushinteger(L, bytes);
		n = 2;
	}
	archive_write_free(a);
	return n;
}

int tend_open_archive(lua_State *L)
{
	static const luaL_Reg funcs[] = {{"store_tar", l_store_tar}, {"store_stream", l_store_stream}, {"write_tar", l_write_tar},
	                                 {NULL, NULL}};
	luaL_newlib(L, funcs);
	lua_pushstring(L, archive_version_details());
	lua_setfield(L, -2, "version");
	return 1;
}
