/* ssh_shell.c: an interactive session, for a person at a terminal (tend shell).
 *   s:interactive(cmd) -> code, signal | nil, msg, code
 * When our stdin is a terminal: a pseudo-terminal on the host (our TERM and window size,
 * resized on SIGWINCH), our terminal raw while it runs and put back after, whatever
 * happens. Otherwise stdin is copied to the command until it ends, then EOF, so a script
 * can pipe commands in. Output goes straight to our stdout and stderr. There is no idle
 * limit: a person may think for as long as they like.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "ssh.h"

static volatile sig_atomic_t resized;
static void on_winch(int sig) { (void)sig; resized = 1; }

/* Wait (blocking mode off) for an open session channel, its pty and its command. */
static LIBSSH2_CHANNEL *start(tend_ssh *ss, const char *cmd, int tty)
{
	LIBSSH2_CHANNEL *ch;
	double deadline = tend_now() + ss->timeout;
	while (!(ch = libssh2_channel_open_session(ss->s)) &&
	       libssh2_session_last_errno(ss->s) == LIBSSH2_ERROR_EAGAIN)
		if (tend_ssh_wait(ss, deadline) != 0)
			return NULL;
	if (!ch)
		return NULL;
	int rc = 0;
	if (tty) {
		struct winsize w = {.ws_row = 24, .ws_col = 80};
		ioctl(0, TIOCGWINSZ, &w);
		const char *term = getenv("TERM");
		if (!term || !*term)
			term = "vt100";
		while ((rc = libssh2_channel_request_pty_ex(ch, term, (unsigned)strlen(term), NULL, 0, w.ws_col,
		                                            w.ws_row, 0, 0)) == LIBSSH2_ERROR_EAGAIN)
			tend_ssh_wait(ss, deadline);
	}
	if (rc == 0)
		while ((rc = libssh2_channel_exec(ch, cmd)) == LIBSSH2_ERROR_EAGAIN)
			tend_ssh_wait(ss, deadline);
	if (rc != 0) {
		libssh2_channel_free(ch);
		return NULL;
	}
	return ch;
}

/* Copy what the channel has for us to our stdout and stderr: >0 moved, 0 nothing,
 * <0 a broken channel or an unwritable fd. */
static ssize_t drain(LIBSSH2_CHANNEL *ch)
{
	char buf[16384];
	ssize_t moved = 0, r;
	while ((r = libssh2_channel_read(ch, buf, sizeof buf)) > 0) {
		if (tend_write_all(1, buf, (size_t)r) != 0)
			return -1;
		moved += r;
	}
	if (r < 0 && r != LIBSSH2_ERROR_EAGAIN)
		return -1;
	while ((r = libssh2_channel_read_stderr(ch, buf, sizeof buf)) > 0) {
		if (tend_write_all(2, buf, (size_t)r) != 0)
			return -1;
		moved += r;
	}
	return r < 0 && r != LIBSSH2_ERROR_EAGAIN ? -1 : moved;
}

/* One chunk of our stdin to the channel; at its end, EOF to the command. 1 on, 0 ended,
 * -1 failed. */
static int feed(tend_ssh *ss, LIBSSH2_CHANNEL *ch)
{
	char buf[4096];
	ssize_t n = read(0, buf, sizeof buf);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -1;
	if (n == 0) {
		while (libssh2_channel_send_eof(ch) == LIBSSH2_ERROR_EAGAIN)
			tend_ssh_wait(ss, tend_now() + 30);
		return 0;
	}
	for (ssize_t off = 0; off < n;) {
		ssize_t w = libssh2_channel_write(ch, buf + off, (size_t)(n - off));
		if (w == LIBSSH2_ERROR_EAGAIN)
			tend_ssh_wait(ss, tend_now() + 30);
		else if (w < 0)
			return -1;
		else
			off += w;
	}
	return 1;
}

/* The session until the command's output ends: 0, or -1 when the link broke. */
static int run(tend_ssh *ss, LIBSSH2_CHANNEL *ch, int tty)
{
	int stdin_open = 1;
	for (;;) {
		if (resized && tty) {
			struct winsize w;
			resized = 0;
			if (ioctl(0, TIOCGWINSZ, &w) == 0)
				libssh2_channel_request_pty_size(ch, w.ws_col, w.ws_row);
		}
		ssize_t moved = drain(ch);
		if (moved < 0)
			return -1;
		if (libssh2_channel_eof(ch))
			return 0;
		if (moved > 0)
			continue;
		int next = 30;
		libssh2_keepalive_send(ss->s, &next);
		struct pollfd p[2] = {{ss->sock, POLLIN, 0}, {0, POLLIN, 0}};
		if (libssh2_session_block_directions(ss->s) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			p[0].events |= POLLOUT;
		if (poll(p, stdin_open ? 2 : 1, (next > 0 ? next : 30) * 1000) < 0 && errno != EINTR)
			return -1;
		if (stdin_open && (p[1].revents & (POLLIN | POLLHUP))) {
			int r = feed(ss, ch);
			if (r < 0)
				return -1;
			stdin_open = r;
		}
	}
}

/* s:interactive(cmd) -> code, signal | nil, msg, code */
int tend_ssh_interactive(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	const char *cmd = luaL_checkstring(L, 2);
	int tty = isatty(0) && isatty(1);
	LIBSSH2_CHANNEL *ch = start(ss, cmd, tty);
	if (!ch)
		return tend_ssh_fail(L, ss, "ssh", "open a shell");
	struct termios saved, raw;
	struct sigaction winch = {.sa_handler = on_winch}, old_winch;
	if (tty && tcgetattr(0, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
		sigaction(SIGWINCH, &winch, &old_winch);
	} else {
		tty = 0;
	}
	int broken = run(ss, ch, tty);
	if (tty) {
		tcsetattr(0, TCSANOW, &saved);
		sigaction(SIGWINCH, &old_winch, NULL);
	}
	if (broken) {
		libssh2_channel_free(ch);
		return tend_ssh_fail(L, ss, "disconnected", "shell");
	}
	while (libssh2_channel_close(ch) == LIBSSH2_ERROR_EAGAIN)
		tend_ssh_wait(ss, tend_now() + 10);
	while (libssh2_channel_wait_closed(ch) == LIBSSH2_ERROR_EAGAIN)
		tend_ssh_wait(ss, tend_now() + 10);
	char *sig = NULL;
	libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL);
	lua_pushinteger(L, sig ? 255 : libssh2_channel_get_exit_status(ch));
	if (sig) {
		lua_pushstring(L, sig);
		libssh2_free(ss->s, sig);
	} else {
		lua_pushnil(L);
	}
	libssh2_channel_free(ch);
	return 2;
}
