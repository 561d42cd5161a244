/* tend.h: what the engine's rooms share. Each primitive lives in its own file with its
 * Lua binding; this header declares their openers and the few helpers they all use. */
#ifndef TEND_H
#define TEND_H

#include <stddef.h>
#include <sys/types.h>
#include <lua.h>
#include <lauxlib.h>
#include <openssl/evp.h>

/* Bumped when the C API that lua/tend relies on changes; lua/tend/init.lua checks it. */
#define TEND_API 1

int luaopen_tend_core(lua_State *L);
int tend_open_catalog(lua_State *L);
int tend_open_vault(lua_State *L);
int tend_open_fs(lua_State *L);
int tend_open_proc(lua_State *L);
int tend_open_ssh(lua_State *L);
int tend_open_hash(lua_State *L);
int tend_open_store(lua_State *L);

/* A byte stream C can pull from (an SSH channel's stdout, a local pipe):
 * read yields >0 bytes, 0 at the end, <0 on failure, when error() says why. */
typedef struct {
	ssize_t (*read)(void *ctx, char *buf, size_t n);
	const char *(*error)(void *ctx);
	void *ctx;
} tend_reader;
/* The stream userdata at idx as a reader: an ssh channel or a proc.open stream;
 * raises otherwise. tend_proc_reader answers 0 for anything but a proc stream. */
void tend_check_reader(lua_State *L, int idx, tend_reader *r);
int tend_proc_reader(lua_State *L, int idx, tend_reader *r);
int tend_open_archive(lua_State *L);
int tend_open_mail(lua_State *L);
int tend_open_lineedit(lua_State *L);

/* A byte stream C can push into (an SSH channel's stdin, a local pipe):
 * write returns 0 or -1; finish sends end-of-file; error() says why. */
typedef struct {
	int (*write)(void *ctx, const char *p, size_t n);
	int (*finish)(void *ctx);
	const char *(*error)(void *ctx);
	void *ctx;
} tend_writer;
void tend_check_writer(lua_State *L, int idx, tend_writer *w);
int tend_proc_writer(lua_State *L, int idx, tend_writer *w);
int tend_rewrite_writer(lua_State *L, int idx, tend_writer *w);
int tend_open_rewrite(lua_State *L);
int tend_open_http(lua_State *L);
int tend_open_httpd(lua_State *L);
int tend_open_rowdiff(lua_State *L);
int tend_open_s3(lua_State *L);
int tend_open_listing(lua_State *L);
/* The zstd frames (p, n), decompressed, pushed as one string (store_record.c): 0, or
 * EBADMSG (nothing pushed) when they are damaged or cut short. */
int tend_push_unzstd(lua_State *L, const char *p, size_t n);

/* SHA-256 (hash.c): new, update as bytes arrive, hex finishes. */
typedef EVP_MD_CTX tend_sha256;
tend_sha256 *tend_sha256_new(void);
void tend_sha256_update(tend_sha256 *h, const void *p, size_t n);
void tend_sha256_hex(tend_sha256 *h, char hex[65]);
void tend_sha256_free(tend_sha256 *h);
int tend_sha256_file(int dirfd, const char *path, int follow, char *buf, char hex[65], long long *size);
int tend_hash_tree(lua_State *L); /* hash_tree.c: core.hash.tree */

/* Failure of the outside world: push nil, "what: why", code; return 3 (style habit 3). */
int tend_fail(lua_State *L, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with strerror(errno) appended and the code derived from errno. */
int tend_fail_errno(lua_State *L, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A short machine-readable code for an errno value: "enoent", "enospc", ... */
const char *tend_errno_code(int err);

/* Seconds on the monotonic clock, for deadlines and rates. */
double tend_now(void);

/* Write all n bytes to fd, retrying short writes and EINTR; 0, or -1 with errno set. */
int tend_write_all(int fd, const void *p, size_t n);

/* Create path empty with mode 0600 when it does not exist yet (a database SQLite is about
 * to open: it gives its -wal and -shm files the same mode). 0, or an errno value. */
int tend_create_private(const char *path);

/* Register a metatable with methods, __index pointing at itself. */
void tend_new_class(lua_State *L, const char *name, const luaL_Reg *methods);

/* Secrets: plaintext kept in guarded memory (sodium_malloc), never a Lua string unless
 * asked for with :reveal(). Defined in vault.c, used by proc.c to feed children. */
typedef struct tend_secret tend_secret;
tend_secret *tend_check_secret(lua_State *L, int idx);
tend_secret *tend_test_secret(lua_State *L, int idx);
/* The plaintext and its length; a NUL always follows the last byte. */
const unsigned char *tend_secret_bytes(const tend_secret *s, size_t *len);

#endif
