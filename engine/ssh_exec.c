/* ssh_exec.c: run one command on an SSH session and collect what it says.
 *   s:exec(cmd [, {stdin = string | secret | {piece, ...}, timeout = seconds}])
 *     -> {code=, signal=, stdout=, stderr=} | nil, msg, code
 * stdin pieces (strings or secrets) are written in order, then EOF; a secret's bytes
 * go from guarded memory straight to the channel.
 */
#include <stdlib.h>
#include <string.h>

#include "ssh.h"

void tend_job_add(lua_State *L, tend_job *j, int idx)
{
	if (j->nin == TEND_JOB_PIECES)
		luaL_error(L, "ssh exec: too many stdin pieces");
	tend_secret *s = tend_test_secret(L, idx);
	if (s)
		j->in[j->nin].data = (const char *)tend_secret_bytes(tend_check_secret(L, idx), &j->in[j->nin].len);
	else
		j->in[j->nin].data = luaL_checklstring(L, idx, &j->in[j->nin].len);
	j->nin++;
}

/* The pieces stay anchored by the stdin table (left on the stack). */
void tend_job_stdin(lua_State *L, tend_job *j, int opts)
{
	if (lua_getfield(L, opts, "stdin") == LUA_TTABLE) {
		for (lua_Integer i = 1; i <= luaL_len(L, -1); i++) {
			lua_rawgeti(L, -1, i);
			tend_job_add(L, j, lua_gettop(L));
			lua_pop(L, 1);
		}
	} else if (!lua_isnil(L, -1)) {
		tend_job_add(L, j, lua_gettop(L));
	}
}

/* Wait for the socket, sending keepalives; TEND_JOB_TIMEOUT past the deadline. */
int tend_job_wait(tend_job *j)
{
	int next;
	libssh2_keepalive_send(j->ss->s, &next);
	double until = tend_now() + (next > 0 ? next : 30);
	if (j->deadline > 0 && j->deadline < until)
		until = j->deadline;
	if (tend_ssh_wait(j->ss, until) != 0 && j->deadline > 0 && tend_now() >= j->deadline)
		return TEND_JOB_TIMEOUT;
	return 0;
}

/* Push stdin forward; returns bytes moved, 0 if blocked or done, <0 on error. */
static ssize_t feed(tend_job *j)
{
	while (j->cur < j->nin && j->off == j->in[j->cur].len) {
		j->cur++;
		j->off = 0;
	}
	if (j->cur == j->nin) {
		if (j->eof_sent || j->keep_open)
			return 0;
		int rc = libssh2_channel_send_eof(j->ch);
		if (rc == 0)
			j->eof_sent = 1;
		return rc == LIBSSH2_ERROR_EAGAIN ? 0 : rc;
	}
	ssize_t w = libssh2_channel_write(j->ch, j->in[j->cur].data + j->off, j->in[j->cur].len - j->off);
	if (w > 0)
		j->off += (size_t)w;
	return w == LIBSSH2_ERROR_EAGAIN ? 0 : w;
}

/* Read what is there from one stream; returns bytes read, 0 if none, <0 on error. */
static ssize_t drain(tend_job *j, int stream)
{
	__typeof__(j->out[0]) *b = &j->out[stream];
	if (b->cap - b->len < 32768) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		char *nb = realloc(b->buf, cap);
		if (!nb)
			return LIBSSH2_ERROR_ALLOC;
		b->buf = nb;
		b->cap = cap;
	}
	ssize_t r = libssh2_channel_read_ex(j->ch, stream, b->buf + b->len, b->cap - b->len);
	if (r > 0)
		b->len += (size_t)r;
	return r == LIBSSH2_ERROR_EAGAIN ? 0 : r;
}

/* Whether both streams have printed their marks, each followed by a newline (on
 * stdout the exit code comes between). Only the new bytes are searched. */
static int marked(tend_job *j)
{
	for (int i = 0; i < 2; i++) {
		if (j->end[i] >= 0)
			continue;
		size_t n = j->mark_len[i], len = j->out[i].len;
		char *buf = j->out[i].buf;
		char *hit = len > j->scan[i] ? memmem(buf + j->scan[i], len - j->scan[i], j->mark[i], n) : NULL;
		if (!hit) {
			j->scan[i] = len >= n ? len - n + 1 : 0;
			return 0;
		}
		j->scan[i] = (size_t)(hit - buf);
		if (!memchr(hit + n - 1, '\n', (size_t)(buf + len - (hit + n - 1))))
			return 0;
		j->end[i] = hit - buf;
	}
	return 1;
}

/* Move bytes both ways until the remote end closes its output, or until both marks are
 * in. TEND_JOB_DONE, TEND_JOB_TIMEOUT, TEND_JOB_ENDED (EOF before the marks), or an
 * error below that. */
int tend_job_pump(tend_job *j)
{
	for (;;) {
		ssize_t w = feed(j), r1 = drain(j, 0), r2 = drain(j, SSH_EXTENDED_DATA_STDERR);
		if (w < 0 || r1 < 0 || r2 < 0)
			return (int)(w < 0 ? w : r1 < 0 ? r1 : r2) - 1000;
		if (j->mark[0] && (r1 > 0 || r2 > 0) && marked(j))
			return TEND_JOB_DONE;
		if (w > 0 || r1 > 0 || r2 > 0)
			continue;
		if (libssh2_channel_eof(j->ch))
			return j->mark[0] ? TEND_JOB_ENDED : TEND_JOB_DONE;
		if (tend_job_wait(j) != 0)
			return TEND_JOB_TIMEOUT;
	}
}

void tend_job_release(tend_job *j)
{
	for (int i = 0; i < 2; i++) {
		free(j->out[i].buf);
		j->out[i].buf = NULL;
		j->out[i].len = j->out[i].cap = 0;
	}
}

/* Run fn(ch) until it stops saying EAGAIN; its result, or EAGAIN past the deadline. */
#define RETRY(j, call)                                                                 \
	({                                                                             \
		int rc_;                                                               \
		while ((rc_ = (call)) == LIBSSH2_ERROR_EAGAIN && tend_job_wait(j) == 0) \
			;                                                              \
		rc_;                                                                   \
	})

static void push_result(lua_State *L, tend_job *j)
{
	lua_createtable(L, 0, 4);
	char *sig = NULL;
	libssh2_channel_get_exit_signal(j->ch, &sig, NULL, NULL, NULL, NULL, NULL);
	if (sig) {
		lua_pushstring(L, sig);
		lua_setfield(L, -2, "signal");
		libssh2_free(j->ss->s, sig);
		lua_pushinteger(L, 255);
	} else {
		lua_pushinteger(L, libssh2_channel_get_exit_status(j->ch));
	}
	lua_setfield(L, -2, "code");
	static const char *names[2] = {"stdout", "stderr"};
	for (int i = 0; i < 2; i++) {
		lua_pushlstring(L, j->out[i].buf ? j->out[i].buf : "", j->out[i].len);
		lua_setfield(L, -2, names[i]);
	}
}

static int finish(lua_State *L, tend_job *j, int status, const char *cmd)
{
	int n;
	if (status == -1)
		n = tend_fail(L, "timeout", "ssh %s:%d: %s: timed out", j->ss->host, j->ss->port, cmd);
	else if (status < -1)
		n = tend_ssh_fail(L, j->ss, "ssh", cmd);
	else {
		push_result(L, j);
		n = 1;
	}
	if (j->ch) {
		double deadline = tend_now() + 2;
		while (libssh2_channel_free(j->ch) == LIBSSH2_ERROR_EAGAIN &&
		       tend_ssh_wait(j->ss, deadline) == 0)
			;
	}
	tend_job_release(j);
	return n;
}

int tend_ssh_exec(lua_State *L)
{
	tend_job j;
	memset(&j, 0, sizeof j);
	j.ss = tend_ssh_check(L, 1);
	const char *cmd = luaL_checkstring(L, 2);
	if (lua_isnoneornil(L, 3)) {
		lua_settop(L, 2);
		lua_newtable(L);
	}
	luaL_checktype(L, 3, LUA_TTABLE);
	tend_job_stdin(L, &j, 3);
	lua_getfield(L, 3, "timeout");
	double timeout = luaL_optnumber(L, -1, 0);
	j.deadline = timeout > 0 ? tend_now() + timeout : 0;
	while (!(j.ch = libssh2_channel_open_session(j.ss->s)) &&
	       libssh2_session_last_errno(j.ss->s) == LIBSSH2_ERROR_EAGAIN)
		if (tend_job_wait(&j) != 0)
			return finish(L, &j, -1, cmd);
	if (!j.ch)
		return finish(L, &j, -2, "open channel");
	int rc = RETRY(&j, libssh2_channel_exec(j.ch, cmd));
	if (rc != 0)
		return finish(L, &j, rc == LIBSSH2_ERROR_EAGAIN ? -1 : -2, cmd);
	int status = tend_job_pump(&j);
	if (status == 0) {
		rc = RETRY(&j, libssh2_channel_close(j.ch));
		if (rc == 0)
			rc = RETRY(&j, libssh2_channel_wait_closed(j.ch));
		status = rc == 0 ? 0 : rc == LIBSSH2_ERROR_EAGAIN ? -1 : -2;
	}
	return finish(L, &j, status, cmd);
}
