/* store_read.c: objects out of the store, each checked against its name (the SHA-256
 * of its bytes) as it is read: damage is a failure ("corrupt"), never wrong bytes.
 *   st:get_file(hex, dest [, mode])  st:get_string(hex)  st:verify(hex)
 *   st:write_to(hex, stream)  st:write_frame_to(hex, stream) -> true | nil, msg, code */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "tend.h"
#include "store.h"

/* The reading end: a frame's bytes are decompressed, hashed and handed to the sink. */
typedef struct {
	ZSTD_DCtx *z;
	tend_sha256 *h;
	char *out;
	size_t outcap, last;
	tend_emit sink, frame; /* the plain bytes go to sink; the frame, as it is, to frame */
	void *ctx, *frame_ctx;
} inflating;

static int inflate(void *ctx, const char *p, size_t n)
{
	inflating *f = ctx;
	if (f->frame && f->frame(f->frame_ctx, p, n) != 0) {
		if (!errno)
			errno = EIO;
		return -1;
	}
	ZSTD_inBuffer ib = {p, n, 0};
	while (ib.pos < ib.size) {
		ZSTD_outBuffer ob = {f->out, f->outcap, 0};
		f->last = ZSTD_decompressStream(f->z, &ob, &ib);
		if (ZSTD_isError(f->last)) {
			errno = EBADMSG;
			return -1;
		}
		tend_sha256_update(f->h, f->out, ob.pos);
		if (ob.pos && f->sink(f->ctx, f->out, ob.pos) != 0) {
			if (!errno)
				errno = EIO;
			return -1;
		}
	}
	return 0;
}

int tend_store_read_object(tend_store *st, const char *hex, tend_emit sink, void *ctx, tend_emit frame, void *frame_ctx)
{
	char path[PATH_MAX];
	long long off, len;
	if (tend_store_locate(st, hex, path, &off, &len) != 0)
		return ENOENT;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
	if (fd < 0)
		return errno == ENOENT ? EBADMSG : errno; /* indexed but its pack is gone */
	if (off && lseek(fd, off, SEEK_SET) < 0) {
		close(fd);
		return errno;
	}
	/* the store's own context and buffers, unless a read is under way (its sink reads) */
	int own = !st->reading;
	if (own) {
		if (!st->dz)
			st->dz = ZSTD_createDCtx();
		if (!st->rd_out)
			st->rd_out = malloc(ZSTD_DStreamOutSize());
		if (!st->rd_in)
			st->rd_in = malloc(TEND_STORE_CHUNK);
		if (st->dz) /* the last read may have stopped mid-frame */
			ZSTD_DCtx_reset(st->dz, ZSTD_reset_session_only);
		st->reading = 1;
	}
	inflating f = {own ? st->dz : ZSTD_createDCtx(), tend_sha256_new(), own ? st->rd_out : malloc(ZSTD_DStreamOutSize()),
	               ZSTD_DStreamOutSize(), 1, sink, frame, ctx, frame_ctx};
	char *in = own ? st->rd_in : malloc(TEND_STORE_CHUNK);
	tend_seal *seal = NULL;
	int first = 1;
	long long left = len; /* -1: to the end of the file */
	ssize_t r;
	while (!err && in && f.out && f.z && left != 0) {
		size_t want = left < 0 || left > TEND_STORE_CHUNK ? TEND_STORE_CHUNK : (size_t)left;
		if ((r = tend_store_read_fd(&fd, in, want)) <= 0) {
			err = r < 0 ? errno : left > 0 ? EBADMSG : 0; /* a pack cut short is damage */
			break;
		}
		if (left > 0)
			left -= r;
		if (first && tend_is_sealed(in, (size_t)r)) {
			if (!st->key)
				err = ENOKEY;
			else if (own && !st->rd_seal && !(st->rd_seal = malloc(sizeof *seal)))
				err = ENOMEM;
			else if (!(seal = own ? st->rd_seal : malloc(sizeof *seal)))
				err = ENOMEM;
			else
				seal->have = seal->stage = 0;
		}
		first = 0;
		errno = 0;
		if (!err && (seal ? tend_unseal_push(seal, st->key, in, (size_t)r, inflate, &f)
		                  : inflate(&f, in, (size_t)r)) != 0)
			err = errno ? errno : EBADMSG;
	}
	if (!err && seal)
		err = tend_unseal_end(seal, inflate, &f, 1);
	if (!in || !f.out || !f.z)
		err = ENOMEM;
	char got[65];
	tend_sha256_hex(f.h, got);
	if (!err && (f.last != 0 || strcmp(got, hex) != 0))
		err = EBADMSG;
	if (seal)
		sodium_memzero(seal, sizeof *seal);
	if (own) {
		st->reading = 0;
	} else {
		free(seal);
		free(in);
		free(f.out);
		ZSTD_freeDCtx(f.z);
	}
	tend_sha256_free(f.h);
	close(fd);
	return err;
}

int tend_store_read(tend_store *st, const char *hex, tend_emit sink, void *ctx)
{
	return tend_store_read_object(st, hex, sink, ctx, NULL, NULL);
}

int tend_store_fail_read(lua_State *L, int err, const char *hex)
{
	if (err == EBADMSG)
		return tend_fail(L, "corrupt", "store: object %.12s is damaged", hex);
	if (err == ENOENT)
		return tend_fail(L, "enoent", "store: no object %.12s", hex);
	if (err == ENOKEY)
		return tend_fail(L, "locked", "store: object %.12s is encrypted, and the store was opened without its key", hex);
	return tend_fail_errno(L, err, "store: object %.12s", hex);
}

static int sink_buffer(void *ctx, const char *p, size_t n)
{
	luaL_addlstring(ctx, p, n);
	return 0;
}

/* st:get_string(hex) -> data | nil, msg, code */
static int l_get_string(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	const char *hex = tend_store_check_hex(L, 2);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	int err = tend_store_read(st, hex, sink_buffer, &b);
	if (err)
		return tend_store_fail_read(L, err, hex);
	luaL_pushresult(&b);
	return 1;
}

static int sink_fd(void *ctx, const char *p, size_t n) { return tend_write_all(*(int *)ctx, p, n); }

int tend_store_sink_none(void *ctx, const char *p, size_t n)
{
	(void)ctx, (void)p, (void)n;
	return 0;
}

/* st:get_file(hex, dest [, mode]) -> true | nil, msg, code.  dest appears whole or not
 * at all (temp file beside it, then rename). */
static int l_get_file(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	const char *hex = tend_store_check_hex(L, 2);
	const char *dest = luaL_checkstring(L, 3);
	mode_t mode = (mode_t)luaL_optinteger(L, 4, 0644);
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tend-XXXXXX", dest);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return tend_fail_errno(L, errno, "write %s", dest);
	int err = tend_store_read(st, hex, sink_fd, &fd);
	if (!err && fchmod(fd, mode) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err && rename(tmp, dest) != 0)
		err = errno;
	if (err) {
		unlink(tmp);
		return err == EBADMSG || err == ENOENT ? tend_store_fail_read(L, err, hex)
		                                       : tend_fail_errno(L, err, "write %s", dest);
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int sink_writer(void *ctx, const char *p, size_t n)
{
	tend_writer *w = ctx;
	if (w->write(w->ctx, p, n) != 0) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

/* The object's plain bytes (frame = 0), or its zstd frame as stored (frame = 1, opened
 * first if sealed), into the stream at index 3; verified either way, no end-of-file. */
static int write_stream(lua_State *L, int frame)
{
	tend_store *st = tend_store_check(L, 1);
	const char *hex = tend_store_check_hex(L, 2);
	tend_writer w;
	tend_check_writer(L, 3, &w);
	int err = frame ? tend_store_read_object(st, hex, tend_store_sink_none, NULL, sink_writer, &w)
	                : tend_store_read_object(st, hex, sink_writer, &w, NULL, NULL);
	if (err == EPIPE)
		return tend_fail(L, "stream", "store: object %.12s: %s", hex, w.error(w.ctx));
	if (err)
		return tend_store_fail_read(L, err, hex);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:write_to(hex, stream) -> true | nil, msg, code.  The object's bytes into a stream
 * (an ssh channel, or proc.open with stdin_pipe). */
static int l_write_to(lua_State *L) { return write_stream(L, 0); }

/* st:write_frame_to(hex, stream) -> true | nil, msg, code.  The object's zstd frame, for
 * `zstd -dc` at the other end: fewer bytes cross the wire. A damaged object fails the
 * call after its bytes went out: the receiving end must be undone by the caller. */
static int l_write_frame_to(lua_State *L) { return write_stream(L, 1); }

/* st:verify(hex) -> true | nil, msg, code ("corrupt" when damaged) */
static int l_verify(lua_State *L)
{
	tend_store *st = tend_store_check(L, 1);
	const char *hex = tend_store_check_hex(L, 2);
	int err = tend_store_read(st, hex, tend_store_sink_none, NULL);
	if (err)
		return tend_store_fail_read(L, err, hex);
	lua_pushboolean(L, 1);
	return 1;
}

const luaL_Reg tend_store_read_methods[] = {
	{"get_file", l_get_file}, {"get_string", l_get_string}, {"verify", l_verify},
	{"write_to", l_write_to}, {"write_frame_to", l_write_frame_to}, {NULL, NULL}};
