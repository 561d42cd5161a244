/* ssh_channel.c: streaming channels, for bulk data that must not pass through Lua.
 *   ch = s:open(cmd)          the command runs; several channels may be open at once
 *   ch:read([max])            next stdout chunk, nil at EOF
 *   ch:write(data)            all of data (string or secret)      ch:send_eof()
 *   ch:pump_to_file(path [, mode]) -> bytes    stdout into a file, in C
 *   ch:pump_from_file(path) -> bytes           a file into stdin, then EOF
 *   ch:pump_to_fds(out, err)                   live output to two local fds
 *   ch:wait() -> code, signal  (drains what is left)     ch:stderr() -> text so far
 *   ch = s:spare(cmd)         a warm channel: cmd starts transport.lua's SPARE driver,
 *                             which the login shell's rc files run before
 *   ch:begin(script)          the spare runs script; what the rc files printed on
 *                             either stream (up to the driver's mark) is dropped
 *   ch:settle(seconds)        wait for the driver's mark (the rc files have run)
 * A channel keeps its session alive (user value); stderr is collected as it comes so a
 * chatty command can never stall stdout. Failures return nil, msg, code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ssh.h"

#define CHANNEL_CLASS "tend.ssh.channel"
#define STDERR_CAP (1 << 20)
#define CHUNK (256 * 1024)

typedef struct {
	tend_ssh *ss;
	LIBSSH2_CHANNEL *ch; /* NULL once freed */
	double last_move;    /* when a byte last moved either way */
	char *err;           /* stderr collected so far, at most STDERR_CAP bytes */
	size_t errlen;
	int eof_sent;
	char cmd[128];       /* for messages */
	char mark[34];       /* a spare's "TOKEN\n": output before it is the rc files' */
	int out_marked, err_marked;
	char *pending;       /* stdout read past the mark, served first */
	size_t pending_len, pending_off;
} channel;

static channel *check_channel(lua_State *L)
{
	channel *c = luaL_checkudata(L, 1, CHANNEL_CLASS);
	if (!c->ch || !c->ss->s)
		luaL_error(L, "ssh channel used after close");
	return c;
}

/* Take whatever stderr is waiting; returns <0 on a channel error. */
static int take_stderr(channel *c)
{
	char buf[8192];
	ssize_t r;
	while ((r = libssh2_channel_read_stderr(c->ch, buf, sizeof buf)) > 0) {
		if (!c->err)
			c->err = malloc(STDERR_CAP);
		size_t room = c->err ? STDERR_CAP - c->errlen : 0;
		size_t n = (size_t)r < room ? (size_t)r : room;
		if (n)
			memcpy(c->err + c->errlen, buf, n);
		c->errlen += n;
		char *hit = c->mark[0] && !c->err_marked && c->err ? memmem(c->err, c->errlen, c->mark, 33) : NULL;
		if (hit) {
			c->err_marked = 1;
			c->errlen -= (size_t)(hit + 33 - c->err);
			memmove(c->err, hit + 33, c->errlen);
		}
	}
	return r == LIBSSH2_ERROR_EAGAIN || r == 0 ? 0 : (int)r;
}

static int chan_fail(lua_State *L, channel *c, const char *what)
{
	if (tend_now() >= c->last_move + c->ss->idle)
		return tend_fail(L, "timeout", "ssh %s:%d: %s: no data moved for %gs", c->ss->host,
		                 c->ss->port, what, c->ss->idle);
	return tend_ssh_fail(L, c->ss, "ssh", what);
}

#define STALLED (-99999)

/* Wait for the socket, with keepalives. STALLED once nothing has moved for the
 * session's idle limit: a frozen server must not hang a cron run. */
static int wait_io(channel *c)
{
	int next = 30;
	libssh2_keepalive_send(c->ss->s, &next);
	double stall_at = c->last_move + c->ss->idle, until = tend_now() + (next > 0 ? next : 30);
	tend_ssh_wait(c->ss, until < stall_at ? until : stall_at);
	return tend_now() >= stall_at ? STALLED : 0;
}

static void moved(channel *c) { c->last_move = tend_now(); }

/* A spare's stdout up to its mark, dropped; what came after it is kept in pending.
 * 0 (found, or EOF without it), <0 an error or STALLED. */
static int skip_to_mark(channel *c)
{
	char buf[16384];
	size_t have = 0;
	while (!c->out_marked) {
		ssize_t r = libssh2_channel_read(c->ch, buf + have, sizeof buf - have);
		if (take_stderr(c) < 0)
			return -1;
		if (r > 0) {
			moved(c);
			have += (size_t)r;
			char *hit = memmem(buf, have, c->mark, 33);
			if (hit) {
				c->out_marked = 1;
				c->pending_len = (size_t)(buf + have - (hit + 33));
				c->pending = c->pending_len ? malloc(c->pending_len) : NULL;
				if (c->pending_len && !c->pending)
					return LIBSSH2_ERROR_ALLOC;
				if (c->pending_len)
					memcpy(c->pending, hit + 33, c->pending_len);
				return 0;
			}
			if (have >= 32) { /* keep what may be the start of the mark */
				memmove(buf, buf + have - 32, 32);
				have = 32;
			}
		} else if (r != LIBSSH2_ERROR_EAGAIN && r < 0) {
			return (int)r;
		} else if (libssh2_channel_eof(c->ch)) {
			c->out_marked = 1;
		} else if (wait_io(c) == STALLED) {
			return STALLED;
		}
	}
	return 0;
}

/* Read up to max bytes of stdout into buf: >0 bytes, 0 at EOF, <0 error. */
static ssize_t read_some(channel *c, char *buf, size_t max)
{
	if (c->mark[0] && !c->out_marked) {
		int rc = skip_to_mark(c);
		if (rc < 0)
			return rc;
	}
	if (c->pending_off < c->pending_len) {
		size_t n = c->pending_len - c->pending_off < max ? c->pending_len - c->pending_off : max;
		memcpy(buf, c->pending + c->pending_off, n);
		c->pending_off += n;
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t r = libssh2_channel_read(c->ch, buf, max);
		if (take_stderr(c) < 0)
			return -1;
		if (r > 0) {
			moved(c);
			return r;
		}
		if (r != LIBSSH2_ERROR_EAGAIN && r < 0)
			return r;
		if (libssh2_channel_eof(c->ch))
			return 0;
		if (wait_io(c) == STALLED)
			return STALLED;
	}
}

static int channel_write_all(channel *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = libssh2_channel_write(c->ch, p, n);
		if (take_stderr(c) < 0)
			return -1;
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			moved(c);
		} else if (w == LIBSSH2_ERROR_EAGAIN) {
			if (wait_io(c) == STALLED)
				return STALLED;
		} else {
			return -1;
		}
	}
	return 0;
}

static int send_eof(channel *c)
{
	int rc;
	if (c->eof_sent)
		return 0;
	while ((rc = libssh2_channel_send_eof(c->ch)) == LIBSSH2_ERROR_EAGAIN)
		if (wait_io(c) == STALLED)
			return STALLED;
	c->eof_sent = rc == 0;
	return rc;
}

/* s:open(cmd) -> channel | nil, msg, code */
int tend_ssh_open(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	const char *cmd = luaL_checkstring(L, 2);
	channel *c = lua_newuserdatauv(L, sizeof *c, 1);
	memset(c, 0, sizeof *c);
	c->ss = ss;
	c->last_move = tend_now();
	snprintf(c->cmd, sizeof c->cmd, "%s", cmd);
	luaL_setmetatable(L, CHANNEL_CLASS);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1); /* the channel keeps its session alive */
	double deadline = tend_now() + ss->timeout;
	while (!(c->ch = libssh2_channel_open_session(ss->s)) &&
	       libssh2_session_last_errno(ss->s) == LIBSSH2_ERROR_EAGAIN)
		if (tend_ssh_wait(ss, deadline) != 0)
			return tend_fail(L, "timeout", "ssh %s:%d: open channel timed out", ss->host, ss->port);
	if (!c->ch)
		return tend_ssh_fail(L, ss, "ssh", "open channel");
	int rc;
	while ((rc = libssh2_channel_exec(c->ch, cmd)) == LIBSSH2_ERROR_EAGAIN)
		if (wait_io(c) == STALLED)
			break;
	if (rc != 0)
		return chan_fail(L, c, c->cmd);
	return 1;
}

/* s:spare(cmd) -> channel | nil, msg, code: cmd is the SPARE driver, sent its token. */
int tend_ssh_spare(lua_State *L)
{
	int n = tend_ssh_open(L);
	channel *c = luaL_testudata(L, -1, CHANNEL_CLASS);
	if (n != 1 || !c)
		return n;
	tend_ssh_token(c->mark);
	c->mark[32] = '\n';
	c->mark[33] = 0;
	if (channel_write_all(c, c->mark, 33) != 0)
		return chan_fail(L, c, c->cmd);
	return 1;
}

/* ch:begin(script) -> true | nil, msg, code: the spare runs script (sh -c). */
static int l_begin(lua_State *L)
{
	channel *c = check_channel(L);
	size_t n;
	const char *script = luaL_checklstring(L, 2, &n);
	if (!c->mark[0])
		return luaL_error(L, "ssh channel: begin on a channel that is not a spare");
	char head[32];
	int hl = snprintf(head, sizeof head, "%zu\n", n);
	if (channel_write_all(c, head, (size_t)hl) != 0 || channel_write_all(c, script, n) != 0)
		return chan_fail(L, c, c->cmd);
	snprintf(c->cmd, sizeof c->cmd, "%s", script);
	lua_pushboolean(L, 1);
	return 1;
}

/* ch:settle(seconds) -> whether the driver has said its mark (its rc files have run). */
static int l_settle(lua_State *L)
{
	channel *c = check_channel(L);
	double was = c->ss->idle;
	c->ss->idle = luaL_checknumber(L, 2);
	c->last_move = tend_now();
	int rc = c->mark[0] ? skip_to_mark(c) : 0;
	c->ss->idle = was;
	lua_pushboolean(L, rc == 0);
	return 1;
}

/* ch:read([max]) -> string | nil (EOF) | nil, msg, code */
static int l_read(lua_State *L)
{
	channel *c = check_channel(L);
	size_t max = (size_t)luaL_optinteger(L, 2, CHUNK);
	luaL_Buffer b;
	char *buf = luaL_buffinitsize(L, &b, max);
	ssize_t r = read_some(c, buf, max);
	if (r < 0)
		return chan_fail(L, c, c->cmd);
	if (r == 0) {
		lua_pushnil(L);
		return 1;
	}
	luaL_pushresultsize(&b, (size_t)r);
	return 1;
}

/* ch:write(data) -> true | nil, msg, code.  data a string or a secret. */
static int l_write(lua_State *L)
{
	channel *c = check_channel(L);
	size_t n;
	const char *p;
	tend_secret *s = tend_test_secret(L, 2);
	p = s ? (const char *)tend_secret_bytes(tend_check_secret(L, 2), &n) : luaL_checklstring(L, 2, &n);
	if (channel_write_all(c, p, n) != 0)
		return chan_fail(L, c, c->cmd);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_send_eof(lua_State *L)
{
	channel *c = check_channel(L);
	if (send_eof(c) != 0)
		return chan_fail(L, c, c->cmd);
	lua_pushboolean(L, 1);
	return 1;
}

/* ch:pump_to_file(path [, mode]) -> bytes | nil, msg, code.  The file is created (or
 * truncated) with mode (default 0600); a short write, disk full included, fails. */
static int l_pump_to_file(lua_State *L)
{
	channel *c = check_channel(L);
	const char *path = luaL_checkstring(L, 2);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)luaL_optinteger(L, 3, 0600));
	if (fd < 0)
		return tend_fail_errno(L, errno, "%s", path);
	char *buf = malloc(CHUNK);
	lua_Integer total = 0;
	ssize_t r = 0;
	int err = 0;
	while (buf && (r = read_some(c, buf, CHUNK)) > 0) {
		if (tend_write_all(fd, buf, (size_t)r) != 0) {
			err = errno;
			break;
		}
		total += r;
	}
	free(buf);
	if (!err && close(fd) != 0)
		err = errno;
	else if (err)
		close(fd);
	if (err)
		return tend_fail_errno(L, err, "write %s", path);
	if (r < 0 || !buf)
		return chan_fail(L, c, c->cmd);
	lua_pushinteger(L, total);
	return 1;
}

/* ch:pump_from_file(path) -> bytes | nil, msg, code.  Sends EOF after the file. */
static int l_pump_from_file(lua_State *L)
{
	channel *c = check_channel(L);
	const char *path = luaL_checkstring(L, 2);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tend_fail_errno(L, errno, "%s", path);
	char *buf = malloc(CHUNK);
	lua_Integer total = 0;
	ssize_t r = 0;
	int failed = !buf;
	while (!failed && (r = read(fd, buf, CHUNK)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		failed = channel_write_all(c, buf, (size_t)r) != 0;
		total += r;
	}
	int err = r < 0 ? errno : 0;
	free(buf);
	close(fd);
	if (err)
		return tend_fail_errno(L, err, "read %s", path);
	if (failed || send_eof(c) != 0)
		return chan_fail(L, c, c->cmd);
	lua_pushinteger(L, total);
	return 1;
}

/* ch:pump_to_fds(out_fd, err_fd) -> true | nil, msg, code.  stdout and stderr copied
 * to two local fds as they arrive (live output), until the command's output ends. */
static int l_pump_to_fds(lua_State *L)
{
	channel *c = check_channel(L);
	int out = (int)luaL_checkinteger(L, 2), err = (int)luaL_checkinteger(L, 3);
	char buf[32768];
	if (send_eof(c) != 0)
		return chan_fail(L, c, c->cmd);
	for (;;) {
		ssize_t r1 = libssh2_channel_read(c->ch, buf, sizeof buf);
		if (r1 > 0 && tend_write_all(out, buf, (size_t)r1) != 0)
			return tend_fail_errno(L, errno, "write output");
		ssize_t r2 = libssh2_channel_read_stderr(c->ch, buf, sizeof buf);
		if (r2 > 0 && tend_write_all(err, buf, (size_t)r2) != 0)
			return tend_fail_errno(L, errno, "write output");
		if ((r1 < 0 && r1 != LIBSSH2_ERROR_EAGAIN) || (r2 < 0 && r2 != LIBSSH2_ERROR_EAGAIN))
			return chan_fail(L, c, c->cmd);
		if (r1 > 0 || r2 > 0) {
			moved(c);
			continue;
		}
		if (libssh2_channel_eof(c->ch))
			break;
		if (wait_io(c) == STALLED)
			return chan_fail(L, c, c->cmd);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* ch:wait() -> code, signal | nil, msg, code.  Sends EOF, drains stdout, waits. */
static int l_wait(lua_State *L)
{
	channel *c = check_channel(L);
	char buf[16384];
	ssize_t r;
	if (send_eof(c) != 0)
		return chan_fail(L, c, c->cmd);
	while ((r = read_some(c, buf, sizeof buf)) > 0)
		;
	if (r < 0)
		return chan_fail(L, c, c->cmd);
	int rc;
	while ((rc = libssh2_channel_close(c->ch)) == LIBSSH2_ERROR_EAGAIN)
		if (wait_io(c) == STALLED)
			break;
	while (rc == 0 && (rc = libssh2_channel_wait_closed(c->ch)) == LIBSSH2_ERROR_EAGAIN)
		if (wait_io(c) == STALLED)
			break;
	if (rc != 0)
		return chan_fail(L, c, c->cmd);
	char *sig = NULL;
	libssh2_channel_get_exit_signal(c->ch, &sig, NULL, NULL, NULL, NULL, NULL);
	lua_pushinteger(L, sig ? 255 : libssh2_channel_get_exit_status(c->ch));
	if (sig) {
		lua_pushstring(L, sig);
		libssh2_free(c->ss->s, sig);
		return 2;
	}
	return 1;
}

/* ch:stderr() -> what the command wrote to stderr so far (first MiB) */
static int l_stderr(lua_State *L)
{
	channel *c = luaL_checkudata(L, 1, CHANNEL_CLASS);
	lua_pushlstring(L, c->err ? c->err : "", c->errlen < STDERR_CAP ? c->errlen : STDERR_CAP);
	return 1;
}

static int l_close(lua_State *L)
{
	channel *c = luaL_checkudata(L, 1, CHANNEL_CLASS);
	/* A closed session has freed its channels already. */
	if (c->ch && c->ss->s) {
		double deadline = tend_now() + 2;
		while (libssh2_channel_free(c->ch) == LIBSSH2_ERROR_EAGAIN &&
		       tend_ssh_wait(c->ss, deadline) == 0)
			;
	}
	c->ch = NULL;
	free(c->err);
	c->err = NULL;
	free(c->pending);
	c->pending = NULL;
	return 0;
}

static int l_tostring(lua_State *L)
{
	channel *c = luaL_checkudata(L, 1, CHANNEL_CLASS);
	lua_pushfstring(L, "ssh.channel(%s:%d: %s%s)", c->ss->host, c->ss->port, c->cmd,
	                c->ch ? "" : ", closed");
	return 1;
}

static ssize_t reader_read(void *ctx, char *buf, size_t n)
{
	channel *c = ctx;
	if (!c->ch || !c->ss->s)
		return -1;
	ssize_t r = read_some(c, buf, n);
	return r < 0 ? -1 : r;
}

static const char *reader_error(void *ctx)
{
	channel *c = ctx;
	static char msg[512];
	char *why = NULL;
	if (!c->ss->s)
		return "session closed";
	if (tend_now() >= c->last_move + c->ss->idle)
		snprintf(msg, sizeof msg, "ssh %s:%d: no data moved for %gs", c->ss->host, c->ss->port, c->ss->idle);
	else {
		int rc = libssh2_session_last_error(c->ss->s, &why, NULL, 0);
		int lost = rc == LIBSSH2_ERROR_SOCKET_RECV || rc == LIBSSH2_ERROR_SOCKET_SEND ||
		           rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT;
		snprintf(msg, sizeof msg, "ssh %s:%d: %s%s%s", c->ss->host, c->ss->port,
		         lost ? "connection lost (" : "", why && *why ? why : "read failed", lost ? ")" : "");
	}
	return msg;
}

void tend_check_reader(lua_State *L, int idx, tend_reader *r)
{
	if (tend_proc_reader(L, idx, r))
		return;
	channel *c = luaL_testudata(L, idx, CHANNEL_CLASS);
	if (!c)
		luaL_typeerror(L, idx, "stream (ssh channel or proc.open)");
	if (!c->ch || !c->ss->s)
		luaL_error(L, "ssh channel used after close");
	r->read = reader_read;
	r->error = reader_error;
	r->ctx = c;
}

static int writer_write(void *ctx, const char *p, size_t n)
{
	channel *c = ctx;
	return c->ch && c->ss->s && channel_write_all(c, p, n) == 0 ? 0 : -1;
}

static int writer_finish(void *ctx)
{
	channel *c = ctx;
	return c->ch && c->ss->s && send_eof(c) == 0 ? 0 : -1;
}

void tend_check_writer(lua_State *L, int idx, tend_writer *w)
{
	if (tend_proc_writer(L, idx, w) || tend_rewrite_writer(L, idx, w))
		return;
	channel *c = luaL_testudata(L, idx, CHANNEL_CLASS);
	if (!c)
		luaL_typeerror(L, idx, "stream (ssh channel, proc.open with stdin_pipe, or rewriter)");
	if (!c->ch || !c->ss->s)
		luaL_error(L, "ssh channel used after close");
	w->write = writer_write;
	w->finish = writer_finish;
	w->error = reader_error;
	w->ctx = c;
}

void tend_ssh_channel_class(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"read", l_read}, {"write", l_write}, {"send_eof", l_send_eof},
		{"begin", l_begin}, {"settle", l_settle},
		{"pump_to_file", l_pump_to_file}, {"pump_from_file", l_pump_from_file},
		{"pump_to_fds", l_pump_to_fds}, {"wait", l_wait}, {"stderr", l_stderr}, {"close", l_close}, {"__gc", l_close},
		{"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};
	tend_new_class(L, CHANNEL_CLASS, methods);
}
