/* vault.c: libsodium for Lua. Keys and secret plaintexts live in guarded memory
 * (sodium_malloc: wiped and freed on close/__gc) and are never Lua strings unless a
 * caller asks with secret:reveal(). Values are sealed with XChaCha20-Poly1305, the
 * secret's name as associated data, and stored as base64 text.
 *   vault.new_key()  vault.load_key(path)  vault.derive_key(pass, salt)  vault.new_salt()
 *   key:save(path)  key:seal(plain, ad)  key:open(b64, ad)
 *   vault.secret(str)  vault.random_secret(n [, "password"])  vault.read_secret(prompt)  secret:reveal()  secret:format(t, esc)
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "tend.h"

#define KEY_CLASS "tend.vault.key"
#define SECRET_CLASS "tend.secret"
#define KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

typedef struct {
	unsigned char *bytes; /* KEY_LEN, sodium_malloc'd; NULL once wiped */
} vault_key;

struct tend_secret {
	unsigned char *bytes; /* sodium_malloc'd; NULL once wiped */
	size_t len;
};

/* ---- secrets ---- */

tend_secret *tend_test_secret(lua_State *L, int idx)
{
	return luaL_testudata(L, idx, SECRET_CLASS);
}

tend_secret *tend_check_secret(lua_State *L, int idx)
{
	tend_secret *s = luaL_checkudata(L, idx, SECRET_CLASS);
	if (!s->bytes)
		luaL_error(L, "secret used after wipe");
	return s;
}

const unsigned char *tend_secret_bytes(const tend_secret *s, size_t *len)
{
	*len = s->len;
	return s->bytes;
}

/* Push a new secret of len bytes; returns its buffer for the caller to fill. A NUL
 * follows the bytes, so C libraries that want a string can take the buffer as it is. */
static unsigned char *new_secret(lua_State *L, size_t len)
{
	tend_secret *s = lua_newuserdatauv(L, sizeof *s, 0);
	s->bytes = NULL;
	s->len = len;
	luaL_setmetatable(L, SECRET_CLASS);
	s->bytes = sodium_malloc(len + 1);
	if (!s->bytes)
		luaL_error(L, "vault: out of guarded memory");
	s->bytes[len] = '\0';
	return s->bytes;
}

/* A string or a secret argument as bytes (secrets stay in guarded memory). */
static const unsigned char *plain_arg(lua_State *L, int idx, size_t *len)
{
	tend_secret *s = tend_test_secret(L, idx);
	if (s)
		return tend_secret_bytes(tend_check_secret(L, idx), len);
	return (const unsigned char *)luaL_checklstring(L, idx, len);
}

/* secret(str) -> secret */
static int l_secret(lua_State *L)
{
	size_t len;
	const char *str = luaL_checklstring(L, 1, &len);
	memcpy(new_secret(L, len), str, len);
	return 1;
}

static int secret_wipe(lua_State *L)
{
	tend_secret *s = luaL_checkudata(L, 1, SECRET_CLASS);
	if (s->bytes)
		sodium_free(s->bytes);
	s->bytes = NULL;
	s->len = 0;
	return 0;
}

/* secret:reveal() -> string (the plaintext, for a caller that truly needs it) */
static int secret_reveal(lua_State *L)
{
	tend_secret *s = tend_check_secret(L, 1);
	lua_pushlstring(L, (const char *)s->bytes, s->len);
	return 1;
}

/* secret:write_fd(fd) -> true | nil, msg, code: the bytes to a descriptor, never
 * through a Lua string (for `tend secret get`). */
static int secret_write_fd(lua_State *L)
{
	tend_secret *s = tend_check_secret(L, 1);
	int fd = (int)luaL_checkinteger(L, 2);
	if (tend_write_all(fd, s->bytes, s->len) != 0)
		return tend_fail_errno(L, errno, "write the secret");
	lua_pushboolean(L, 1);
	return 1;
}

/* secret:equals(str | secret) -> boolean: the same bytes, compared in constant time
 * (is this config value the source's password?) without a Lua string of the secret. */
static int secret_equals(lua_State *L)
{
	tend_secret *s = tend_check_secret(L, 1);
	size_t n;
	const unsigned char *other = plain_arg(L, 2, &n);
	lua_pushboolean(L, n == s->len && sodium_memcmp(s->bytes, other, n) == 0);
	return 1;
}

static int secret_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)tend_check_secret(L, 1)->len);
	return 1;
}

static int secret_tostring(lua_State *L)
{
	luaL_checkudata(L, 1, SECRET_CLASS);
	lua_pushliteral(L, "secret(********)");
	return 1;
}

/* Does byte c need a backslash before it, in escape mode esc: 'n' none, 'q' inside a
 * double-quoted option-file value (\ " newline), 's' inside a single-quoted PHP or SQL
 * string (\ ')? */
static int needs_escape(unsigned char c, char esc)
{
	if (esc == 'q')
		return c == '"' || c == '\\' || c == '\n';
	if (esc == 's')
		return c == '\'' || c == '\\';
	return 0;
}

/* Is byte c written as %XX in a URL's user-information part? Everything but RFC 3986's
 * unreserved characters is, so no byte of a password can end the field. */
static int needs_percent(unsigned char c)
{
	return !(isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~');
}

static size_t escaped_len(const unsigned char *src, size_t n, char esc)
{
	size_t out = n;
	for (size_t i = 0; i < n; i++)
		out += esc == 'u' ? 2 * (size_t)needs_percent(src[i]) : (size_t)needs_escape(src[i], esc);
	return out;
}

static unsigned char *put_escaped(unsigned char *dst, const unsigned char *src, size_t n,
                                  char esc)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		if (esc == 'u' && needs_percent(src[i])) {
			*dst++ = '%';
			*dst++ = (unsigned char)hex[src[i] >> 4];
			*dst++ = (unsigned char)hex[src[i] & 15];
		} else if (needs_escape(src[i], esc)) {
			*dst++ = '\\';
			*dst++ = src[i] == '\n' ? 'n' : src[i];
		} else {
			*dst++ = src[i];
		}
	}
	return dst;
}

/* Where is mark in the n bytes of t, from t on? NULL when nowhere. */
static const unsigned char *find_mark(const unsigned char *t, size_t n, const char *mark, size_t mlen)
{
	for (size_t i = 0; mlen && i + mlen <= n; i++)
		if (memcmp(t + i, mark, mlen) == 0)
			return t + i;
	return NULL;
}

/* secret:format(template [, "quoted" | "single" | "url" [, mark]]) -> secret with every
 * "%s" (or mark) of template replaced by the plaintext; "quoted" escapes \ " and newline
 * as MySQL option files expect inside double quotes, "single" escapes \ and ' for a
 * single-quoted PHP or SQL string, "url" percent-encodes all but letters, digits and
 * -._~ (a DSN's password). The template may itself be a secret (a file that already
 * holds the password once, written another way); the result stays in guarded memory. */
static int secret_format(lua_State *L)
{
	tend_secret *s = tend_check_secret(L, 1);
	size_t tlen;
	const unsigned char *t = plain_arg(L, 2, &tlen);
	static const char *const modes[] = {"none", "quoted", "single", "url", NULL};
	char esc = "nqsu"[luaL_checkoption(L, 3, "none", modes)];
	const char *mark = luaL_optstring(L, 4, "%s");
	size_t mlen = strlen(mark), holes = 0;
	for (const unsigned char *h = t; (h = find_mark(h, tlen - (size_t)(h - t), mark, mlen)); h += mlen)
		holes++;
	if (!holes)
		return luaL_argerror(L, 2, "template has no place for the secret");
	size_t len = tlen - holes * mlen + holes * escaped_len(s->bytes, s->len, esc);
	unsigned char *p = new_secret(L, len);
	const unsigned char *from = t, *h;
	while ((h = find_mark(from, tlen - (size_t)(from - t), mark, mlen))) {
		memcpy(p, from, (size_t)(h - from));
		p = put_escaped(p + (h - from), s->bytes, s->len, esc);
		from = h + mlen;
	}
	memcpy(p, from, tlen - (size_t)(from - t));
	return 1;
}

/* secret:printf_line() -> secret: the bytes as one line that a POSIX printf takes as its
 * format and prints back as they were: letters and digits kept, every other byte \ooo,
 * then a newline. It crosses a shell's stdin into a variable (`read -r`), so a remote
 * script can hand it to a program through a pipe, never a file. */
static int printf_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int secret_printf_line(lua_State *L)
{
	tend_secret *s = tend_check_secret(L, 1);
	size_t len = 1;
	for (size_t i = 0; i < s->len; i++)
		len += printf_plain(s->bytes[i]) ? 1 : 4;
	unsigned char *p = new_secret(L, len);
	for (size_t i = 0; i < s->len; i++) {
		unsigned char c = s->bytes[i];
		if (printf_plain(c)) {
			*p++ = c;
		} else {
			*p++ = '\\';
			*p++ = (unsigned char)('0' + (c >> 6));
			*p++ = (unsigned char)('0' + ((c >> 3) & 7));
			*p++ = (unsigned char)('0' + (c & 7));
		}
	}
	*p = '\n';
	return 1;
}

/* Read one line from the terminal with echo off, into guarded memory. */
static int read_tty_line(lua_State *L, int fd, const char *prompt)
{
	struct termios old, quiet;
	dprintf(STDERR_FILENO, "%s", prompt);
	if (tcgetattr(fd, &old) != 0)
		return tend_fail_errno(L, errno, "read secret: terminal");
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	unsigned char *buf = new_secret(L, 4096);
	ssize_t n = read(fd, buf, 4096);
	tcsetattr(fd, TCSAFLUSH, &old);
	dprintf(STDERR_FILENO, "\n");
	if (n < 0)
		return tend_fail_errno(L, errno, "read secret");
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	((tend_secret *)lua_touserdata(L, -1))->len = (size_t)n;
	buf[n] = '\0';
	return 1;
}

/* Read all of a pipe into guarded memory; one trailing newline is dropped. */
static int read_pipe(lua_State *L, int fd)
{
	size_t cap = 4096, len = 0;
	unsigned char *buf = sodium_malloc(cap);
	for (ssize_t n; buf && (n = read(fd, buf + len, cap - len)) != 0;) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (len += (size_t)n) == cap) {
			unsigned char *bigger = n < 0 || cap >= (1u << 20) ? NULL : sodium_malloc(cap * 2);
			if (bigger)
				memcpy(bigger, buf, len);
			sodium_free(buf);
			buf = bigger;
			cap *= 2;
		}
	}
	if (!buf)
		return tend_fail(L, "io", "read secret: standard input failed or exceeds 1 MiB");
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	memcpy(new_secret(L, len), buf, len);
	sodium_free(buf);
	return 1;
}

/* read_secret(prompt) -> secret | nil, msg, code.  Hidden prompt on a TTY, else stdin. */
static int l_read_secret(lua_State *L)
{
	const char *prompt = luaL_optstring(L, 1, "Secret: ");
	if (isatty(STDIN_FILENO))
		return read_tty_line(L, STDIN_FILENO, prompt);
	return read_pipe(L, STDIN_FILENO);
}

/* ---- keys ---- */

static vault_key *check_key(lua_State *L, int idx)
{
	vault_key *k = luaL_checkudata(L, idx, KEY_CLASS);
	if (!k->bytes)
		luaL_error(L, "vault key used after close");
	return k;
}

static unsigned char *new_key(lua_State *L)
{
	vault_key *k = lua_newuserdatauv(L, sizeof *k, 0);
	k->bytes = NULL;
	luaL_setmetatable(L, KEY_CLASS);
	if (!(k->bytes = sodium_malloc(KEY_LEN)))
		luaL_error(L, "vault: out of guarded memory");
	return k->bytes;
}

/* new_key() -> key (random) */
static int l_new_key(lua_State *L)
{
	crypto_aead_xchacha20poly1305_ietf_keygen(new_key(L));
	return 1;
}

/* new_salt() -> string (random salt for derive_key, not secret) */
static int l_new_salt(lua_State *L)
{
	unsigned char salt[crypto_pwhash_SALTBYTES];
	randombytes_buf(salt, sizeof salt);
	lua_pushlstring(L, (const char *)salt, sizeof salt);
	return 1;
}

/* random_secret(n [, "password"]) -> a secret of n random bytes (a key for another
 * primitive), or of n letters and digits (a password any config file can quote) */
static int l_random_secret(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	luaL_argcheck(L, n > 0 && n <= 4096, 1, "1 to 4096 bytes");
	static const char *const kinds[] = {"bytes", "password", NULL};
	int password = luaL_checkoption(L, 2, "bytes", kinds);
	unsigned char *p = new_secret(L, (size_t)n);
	if (!password) {
		randombytes_buf(p, (size_t)n);
		return 1;
	}
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (lua_Integer i = 0; i < n; i++)
		p[i] = (unsigned char)alnum[randombytes_uniform(sizeof alnum - 1)];
	return 1;
}

/* password_hash(password) -> text: an Argon2id hash of a login password, to keep (the
 * web page's accounts); password_verify(hash, password) -> bool. */
static int l_password_hash(lua_State *L)
{
	size_t n;
	const unsigned char *pw = plain_arg(L, 1, &n);
	char out[crypto_pwhash_STRBYTES];
	if (crypto_pwhash_str(out, (const char *)pw, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return tend_fail(L, "nomem", "password hash: out of memory");
	lua_pushstring(L, out);
	return 1;
}

static int l_password_verify(lua_State *L)
{
	const char *hash = luaL_checkstring(L, 1);
	size_t n;
	const unsigned char *pw = plain_arg(L, 2, &n);
	lua_pushboolean(L, crypto_pwhash_str_verify(hash, (const char *)pw, n) == 0);
	return 1;
}

/* derive_key(passphrase, salt) -> key.  Argon2id; passphrase a string or secret. */
static int l_derive_key(lua_State *L)
{
	size_t plen, slen;
	const unsigned char *pass = plain_arg(L, 1, &plen);
	const char *salt = luaL_checklstring(L, 2, &slen);
	luaL_argcheck(L, slen == crypto_pwhash_SALTBYTES, 2, "bad salt length");
	unsigned char *key = new_key(L);
	if (crypto_pwhash(key, KEY_LEN, (const char *)pass, plen, (const unsigned char *)salt,
	                  crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
	                  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return tend_fail(L, "nomem", "vault: not enough memory to derive the key");
	return 1;
}

/* load_key(path) -> key | nil, msg, code.  The file holds the key in base64 and must
 * not be readable by group or others. */
static int l_load_key(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tend_fail_errno(L, errno, "vault key file %s", path);
	struct stat st;
	char b64[128];
	ssize_t n = fstat(fd, &st) == 0 ? read(fd, b64, sizeof b64 - 1) : -1;
	close(fd);
	if (n < 0)
		return tend_fail_errno(L, errno, "vault key file %s", path);
	if (st.st_mode & 077) {
		sodium_memzero(b64, sizeof b64);
		return tend_fail(L, "eacces", "vault key file %s is readable by others (mode %03o);"
		                 " run: chmod 600 %s", path, st.st_mode & 0777, path);
	}
	unsigned char *key = new_key(L);
	size_t klen = 0;
	int bad = sodium_base642bin(key, KEY_LEN, b64, (size_t)n, " \r\n", &klen, NULL,
	                            sodium_base64_VARIANT_ORIGINAL) != 0 || klen != KEY_LEN;
	sodium_memzero(b64, sizeof b64);
	if (bad)
		return tend_fail(L, "badkey", "vault key file %s: not a tend vault key", path);
	return 1;
}

/* key:save(path) -> true | nil, msg, code.  Creates the file 0600; never overwrites. */
static int key_save(lua_State *L)
{
	vault_key *k = check_key(L, 1);
	const char *path = luaL_checkstring(L, 2);
	char b64[sodium_base64_ENCODED_LEN(KEY_LEN, sodium_base64_VARIANT_ORIGINAL) + 1];
	sodium_bin2base64(b64, sizeof b64 - 1, k->bytes, KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
	size_t len = strlen(b64);
	b64[len++] = '\n';
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int ok = fd >= 0 && write(fd, b64, len) == (ssize_t)len && fsync(fd) == 0;
	int err = errno;
	sodium_memzero(b64, sizeof b64);
	if (fd >= 0)
		close(fd);
	if (!ok) {
		if (fd >= 0)
			unlink(path);
		return tend_fail_errno(L, err, "vault key file %s", path);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* key:seal(plain, ad) -> base64 of nonce || ciphertext.  plain a string or secret. */
static int key_seal(lua_State *L)
{
	vault_key *k = check_key(L, 1);
	size_t plen, adlen;
	const unsigned char *plain = plain_arg(L, 2, &plen);
	const unsigned char *ad = (const unsigned char *)luaL_checklstring(L, 3, &adlen);
	size_t blen = NONCE_LEN + plen + TAG_LEN;
	unsigned char *box = lua_newuserdatauv(L, blen, 0);
	randombytes_buf(box, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(box + NONCE_LEN, NULL, plain, plen, ad, adlen,
	                                           NULL, box, k->bytes);
	size_t b64len = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = lua_newuserdatauv(L, b64len, 0);
	sodium_bin2base64(b64, b64len, box, blen, sodium_base64_VARIANT_ORIGINAL);
	lua_pushstring(L, b64);
	return 1;
}

/* key:open(b64, ad) -> secret | nil, msg, "auth" */
static int key_open(lua_State *L)
{
	vault_key *k = check_key(L, 1);
	size_t b64len, adlen, blen = 0;
	const char *b64 = luaL_checklstring(L, 2, &b64len);
	const unsigned char *ad = (const unsigned char *)luaL_checklstring(L, 3, &adlen);
	unsigned char *box = lua_newuserdatauv(L, b64len, 0);
	if (sodium_base642bin(box, b64len, b64, b64len, NULL, &blen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 || blen < NONCE_LEN + TAG_LEN)
		return tend_fail(L, "auth", "vault: stored value for %s is damaged", ad);
	unsigned char *plain = new_secret(L, blen - NONCE_LEN - TAG_LEN);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, box + NONCE_LEN,
	                                               blen - NONCE_LEN, ad, adlen, box,
	                                               k->bytes) != 0)
		return tend_fail(L, "auth", "vault: cannot decrypt %s: wrong vault key or tampered value",
		                 ad);
	return 1;
}

static int key_close(lua_State *L)
{
	vault_key *k = luaL_checkudata(L, 1, KEY_CLASS);
	if (k->bytes)
		sodium_free(k->bytes);
	k->bytes = NULL;
	return 0;
}

static int key_tostring(lua_State *L)
{
	luaL_checkudata(L, 1, KEY_CLASS);
	lua_pushliteral(L, "vault.key(********)");
	return 1;
}

int tend_open_vault(lua_State *L)
{
	static const luaL_Reg key_methods[] = {
		{"save", key_save}, {"seal", key_seal}, {"open", key_open}, {"close", key_close},
		{"__gc", key_close}, {"__close", key_close}, {"__tostring", key_tostring},
		{NULL, NULL}};
	static const luaL_Reg secret_methods[] = {
		{"reveal", secret_reveal}, {"len", secret_len}, {"format", secret_format}, {"printf_line", secret_printf_line},
		{"write_fd", secret_write_fd}, {"equals", secret_equals},
		{"wipe", secret_wipe}, {"close", secret_wipe}, {"__gc", secret_wipe},
		{"__close", secret_wipe}, {"__tostring", secret_tostring}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {
		{"new_key", l_new_key}, {"new_salt", l_new_salt}, {"random_secret", l_random_secret}, {"derive_key", l_derive_key},
		{"password_hash", l_password_hash}, {"password_verify", l_password_verify},
		{"load_key", l_load_key}, {"secret", l_secret}, {"read_secret", l_read_secret},
		{NULL, NULL}};
	if (sodium_init() < 0)
		return luaL_error(L, "vault: libsodium failed to initialise");
	tend_new_class(L, KEY_CLASS, key_methods);
	tend_new_class(L, SECRET_CLASS, secret_methods);
	luaL_newlib(L, funcs);
	return 1;
}
