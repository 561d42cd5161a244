/* ssh.c: libssh2 for Lua. Every blocking step runs non-blocking against a deadline, so
 * a dead server cannot hang a cron run. Policy (which known_hosts, which auth, retries,
 * messages for people) lives in lua/tend/ssh.lua.
 *   s = ssh.connect(host, port [, timeout])     s:hostkey()   s:check_hostkey(files)
 *   s:auth_agent(user)  s:auth_key(user, file [, pass])  s:auth_password(user, secret)
 *   s:exec(cmd [, {stdin=, timeout=}]) -> {code, signal, stdout, stderr}   s:close()
 *   s:open(cmd), s:spare(cmd) -> channel (ssh_channel.c)   s:runner(cmd) (ssh_runner.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tend.h"
#include "ssh.h"

#define SESSION_CLASS "tend.ssh.session"

/* Wait until the socket is ready in the direction libssh2 is blocked on.
 * Returns 0, or -1 once the deadline has passed. */
int tend_ssh_wait(tend_ssh *ss, double deadline)
{
	int dir = libssh2_session_block_directions(ss->s);
	struct pollfd p = {ss->sock, 0, 0};
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (!p.events)
		p.events = POLLIN;
	double left = deadline - tend_now();
	if (left <= 0)
		return -1;
	int r = poll(&p, 1, (int)(left * 1000) + 1);
	return r < 0 && errno != EINTR ? -1 : 0;
}

int tend_ssh_fail(lua_State *L, tend_ssh *ss, const char *code, const char *what)
{
	char *msg = NULL;
	int rc = libssh2_session_last_error(ss->s, &msg, NULL, 0);
	if (rc == LIBSSH2_ERROR_SOCKET_RECV || rc == LIBSSH2_ERROR_SOCKET_SEND ||
	    rc == LIBSSH2_ERROR_SOCKET_DISCONNECT)
		code = "disconnected";
	return tend_fail(L, code, "ssh %s:%d: %s: %s", ss->host, ss->port, what,
	                 msg && *msg ? msg : "failed");
}

tend_ssh *tend_ssh_check(lua_State *L, int idx)
{
	tend_ssh *ss = luaL_checkudata(L, idx, SESSION_CLASS);
	if (!ss->s)
		luaL_error(L, "ssh session used after close");
	return ss;
}

/* A non-blocking TCP connection to the first address that answers before deadline. */
static int dial(lua_State *L, tend_ssh *ss, double deadline)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char port[16];
	snprintf(port, sizeof port, "%d", ss->port);
	int gai = getaddrinfo(ss->host, port, &hints, &res);
	if (gai != 0)
		return tend_fail(L, "unreachable", "ssh %s:%d: %s", ss->host, ss->port, gai_strerror(gai));
	int err = ETIMEDOUT;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		struct pollfd p = {fd, POLLOUT, 0};
		double left = deadline - tend_now();
		socklen_t len = sizeof err;
		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
			err = ETIMEDOUT;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
			/* Small request/reply exchanges must not wait for delayed ACKs (~40 ms). */
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			ss->sock = fd;
			freeaddrinfo(res);
			return 0;
		}
		close(fd);
	}
	freeaddrinfo(res);
	if (err == ETIMEDOUT)
		return tend_fail(L, "timeout", "ssh %s:%d: no answer within %gs", ss->host, ss->port,
		                 ss->timeout);
	return tend_fail(L, err == ECONNREFUSED ? "refused" : "unreachable", "ssh %s:%d: %s",
	                 ss->host, ss->port, strerror(err));
}

static void session_free(tend_ssh *ss)
{
	if (ss->s) {
		double deadline = tend_now() + 2;
		while (libssh2_session_disconnect(ss->s, "bye") == LIBSSH2_ERROR_EAGAIN &&
		       tend_ssh_wait(ss, deadline) == 0)
			;
		/* Non-blocking, free says EAGAIN while it closes channels, and frees nothing:
		 * repeat; past the deadline, finish in blocking mode with a short timeout. */
		while (libssh2_session_free(ss->s) == LIBSSH2_ERROR_EAGAIN) {
			if (tend_ssh_wait(ss, deadline) != 0) {
				libssh2_session_set_timeout(ss->s, 1000);
				libssh2_session_set_blocking(ss->s, 1);
			}
		}
		ss->s = NULL;
	}
	if (ss->sock >= 0)
		close(ss->sock);
	ss->sock = -1;
}

/* connect(host, port [, timeout [, idle]]) -> session | nil, msg, code.  Handshake
 * done; the host key is not checked yet: the caller must call check_hostkey before
 * auth. idle (default 300 s) bounds how long a channel may move no data. */
static int l_connect(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	int port = (int)luaL_checkinteger(L, 2);
	double timeout = luaL_optnumber(L, 3, 10);
	double idle = luaL_optnumber(L, 4, 300);
	tend_ssh *ss = lua_newuserdatauv(L, sizeof *ss, 0);
	memset(ss, 0, sizeof *ss);
	ss->sock = -1;
	ss->timeout = timeout;
	ss->idle = idle;
	ss->port = port;
	snprintf(ss->host, sizeof ss->host, "%s", host);
	luaL_setmetatable(L, SESSION_CLASS);
	int self = lua_gettop(L);
	double deadline = tend_now() + timeout;
	int n = dial(L, ss, deadline);
	if (n)
		return n;
	ss->s = libssh2_session_init();
	if (!ss->s)
		return luaL_error(L, "ssh: out of memory");
	libssh2_session_set_blocking(ss->s, 0);
	int rc;
	while ((rc = libssh2_session_handshake(ss->s, ss->sock)) == LIBSSH2_ERROR_EAGAIN)
		if (tend_ssh_wait(ss, deadline) != 0)
			break;
	if (rc != 0) {
		n = rc == LIBSSH2_ERROR_EAGAIN
		  ? tend_fail(L, "timeout", "ssh %s:%d: handshake timed out after %gs", host, port, timeout)
		  : tend_ssh_fail(L, ss, "handshake", "handshake");
		session_free(ss);
		return n;
	}
	libssh2_keepalive_config(ss->s, 1, 30);
	lua_pushvalue(L, self);
	return 1;
}

static const char *key_type_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519";
	default: return "unknown";
	}
}

static int known_key_type(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

/* s:hostkey() -> {type=, key= (base64 blob), fingerprint= "SHA256:..."} */
static int l_hostkey(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	size_t len;
	int type;
	const char *key = libssh2_session_hostkey(ss->s, &len, &type);
	const char *hash = libssh2_hostkey_hash(ss->s, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (!key || !hash)
		return tend_ssh_fail(L, ss, "hostkey", "host key");
	lua_createtable(L, 0, 3);
	lua_pushstring(L, key_type_name(type));
	lua_setfield(L, -2, "type");
	size_t b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = lua_newuserdatauv(L, b64len, 0);
	sodium_bin2base64(b64, b64len, (const unsigned char *)key, len, sodium_base64_VARIANT_ORIGINAL);
	lua_pushstring(L, b64);
	lua_setfield(L, -3, "key");
	lua_pop(L, 1);
	char fp[64];
	sodium_bin2base64(fp, sizeof fp, (const unsigned char *)hash, 32,
	                  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	lua_pushfstring(L, "SHA256:%s", fp);
	lua_setfield(L, -2, "fingerprint");
	return 1;
}

/* s:check_hostkey({file, ...}) -> "match" | "mismatch" | "notfound" | nil, msg, code.
 * Missing files are skipped; hashed entries and [host]:port forms are understood. */
static int l_check_hostkey(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	size_t len;
	int type;
	const char *key = libssh2_session_hostkey(ss->s, &len, &type);
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(ss->s);
	if (!key || !kh)
		return tend_ssh_fail(L, ss, "hostkey", "host key");
	for (lua_Integer i = 1; i <= luaL_len(L, 2); i++) {
		lua_rawgeti(L, 2, i);
		const char *file = luaL_checkstring(L, -1);
		if (access(file, R_OK) == 0 &&
		    libssh2_knownhost_readfile(kh, file, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
			libssh2_knownhost_free(kh);
			return tend_fail(L, "knownhosts", "ssh: cannot read known hosts file %s", file);
		}
		lua_pop(L, 1);
	}
	int r = libssh2_knownhost_checkp(kh, ss->host, ss->port, key, len,
	                                 LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	                                 known_key_type(type), NULL);
	libssh2_knownhost_free(kh);
	lua_pushstring(L, r == LIBSSH2_KNOWNHOST_CHECK_MATCH ? "match"
	                : r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH ? "mismatch" : "notfound");
	return 1;
}

static int auth_result(lua_State *L, tend_ssh *ss, int rc, const char *how)
{
	if (rc == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return tend_fail(L, "timeout", "ssh %s:%d: %s timed out", ss->host, ss->port, how);
	return tend_ssh_fail(L, ss, "auth", how);
}

/* s:auth_password(user, secret) -> true | nil, msg, "auth" */
static int l_auth_password(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	const char *user = luaL_checkstring(L, 2);
	size_t plen;
	const unsigned char *pw = tend_secret_bytes(tend_check_secret(L, 3), &plen);
	double deadline = tend_now() + ss->timeout;
	int rc;
	while ((rc = libssh2_userauth_password_ex(ss->s, user, (unsigned)strlen(user), (const char *)pw,
	                                          (unsigned)plen, NULL)) == LIBSSH2_ERROR_EAGAIN)
		if (tend_ssh_wait(ss, deadline) != 0)
			break;
	return auth_result(L, ss, rc, "password authentication");
}

/* s:auth_key(user, private_key_file [, passphrase secret]) -> true | nil, msg, "auth" */
static int l_auth_key(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	const char *user = luaL_checkstring(L, 2);
	const char *file = luaL_checkstring(L, 3);
	size_t n;
	/* secrets end in a spare NUL, so libssh2 can take the passphrase as a C string */
	const char *pass = lua_isnoneornil(L, 4) ? NULL
	                 : (const char *)tend_secret_bytes(tend_check_secret(L, 4), &n);
	double deadline = tend_now() + ss->timeout;
	int rc;
	while ((rc = libssh2_userauth_publickey_fromfile_ex(ss->s, user, (unsigned)strlen(user), NULL,
	                                                    file, pass)) == LIBSSH2_ERROR_EAGAIN)
		if (tend_ssh_wait(ss, deadline) != 0)
			break;
	return auth_result(L, ss, rc, "key authentication");
}

/* s:auth_agent(user) -> true | nil, msg, "auth".  Tries each identity ssh-agent holds. */
static int l_auth_agent(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	const char *user = luaL_checkstring(L, 2);
	LIBSSH2_AGENT *agent = libssh2_agent_init(ss->s);
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	int rc = -1;
	/* The agent talks over a local socket: blocking mode is fine and simpler there. */
	libssh2_session_set_blocking(ss->s, 1);
	libssh2_session_set_timeout(ss->s, (long)(ss->timeout * 1000));
	if (agent && libssh2_agent_connect(agent) == 0 && libssh2_agent_list_identities(agent) == 0)
		while (rc != 0 && libssh2_agent_get_identity(agent, &id, prev) == 0) {
			rc = libssh2_agent_userauth(agent, user, id);
			prev = id;
		}
	libssh2_session_set_timeout(ss->s, 0);
	libssh2_session_set_blocking(ss->s, 0);
	if (agent) {
		libssh2_agent_disconnect(agent);
		libssh2_agent_free(agent);
	}
	if (rc != 0)
		return tend_fail(L, "auth", "ssh %s:%d: no key in ssh-agent was accepted for %s",
		                 ss->host, ss->port, user);
	lua_pushboolean(L, 1);
	return 1;
}

/* s:methods() -> {kex=, hostkey=, cipher=, mac=, compression=} as negotiated */
static int l_methods(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	static const struct { const char *name; int type; } m[] = {
		{"kex", LIBSSH2_METHOD_KEX}, {"hostkey", LIBSSH2_METHOD_HOSTKEY},
		{"cipher", LIBSSH2_METHOD_CRYPT_SC}, {"mac", LIBSSH2_METHOD_MAC_SC},
		{"compression", LIBSSH2_METHOD_COMP_SC}, {NULL, 0}};
	lua_newtable(L);
	for (int i = 0; m[i].name; i++) {
		const char *v = libssh2_session_methods(ss->s, m[i].type);
		lua_pushstring(L, v ? v : "?");
		lua_setfield(L, -2, m[i].name);
	}
	return 1;
}

/* s:set_idle(seconds) -> the limit it replaces: how long a channel may move no data
 * from now on (a long dump may want more than a listing). */
static int l_set_idle(lua_State *L)
{
	tend_ssh *ss = luaL_checkudata(L, 1, SESSION_CLASS);
	double idle = luaL_checknumber(L, 2);
	luaL_argcheck(L, idle > 0, 2, "seconds must be positive");
	lua_pushnumber(L, ss->idle);
	ss->idle = idle;
	return 1;
}

static int l_close(lua_State *L)
{
	tend_ssh *ss = luaL_checkudata(L, 1, SESSION_CLASS);
	session_free(ss);
	return 0;
}

static int l_tostring(lua_State *L)
{
	tend_ssh *ss = luaL_checkudata(L, 1, SESSION_CLASS);
	lua_pushfstring(L, "ssh(%s:%d%s)", ss->host, ss->port, ss->s ? "" : ", closed");
	return 1;
}

int tend_open_ssh(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"hostkey", l_hostkey}, {"check_hostkey", l_check_hostkey},
		{"auth_password", l_auth_password}, {"auth_key", l_auth_key},
		{"auth_agent", l_auth_agent}, {"exec", tend_ssh_exec}, {"open", tend_ssh_open},
		{"runner", tend_ssh_runner}, {"spare", tend_ssh_spare},
		{"interactive", tend_ssh_interactive},
		{"methods", l_methods}, {"set_idle", l_set_idle}, {"close", l_close},
		{"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {{"connect", l_connect}, {NULL, NULL}};
	if (libssh2_init(0) != 0)
		return luaL_error(L, "ssh: libssh2 failed to initialise");
	tend_new_class(L, SESSION_CLASS, methods);
	tend_ssh_channel_class(L);
	tend_ssh_runner_class(L);
	luaL_newlib(L, funcs);
	return 1;
}
