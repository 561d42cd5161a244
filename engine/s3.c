/* s3.c: a bucket of S3-compatible object storage, through libcurl, which signs each
 * request itself (AWS Signature Version 4); the off-site copy of the store uses it
 * (lua/tend/offsite.lua).
 *   b = s3.open{endpoint = URL, bucket = NAME, region = "us-east-1", key_id = ID, secret = S}
 *   b:transfer(jobs [, parallel]) -> n done | nil, msg, code
 *       jobs: {put = KEY, file = PATH} | {put = KEY, data = STRING} | {get = KEY, file = PATH}
 *             | {delete = KEY}; `parallel` at once (default 8). A request that got no
 *       answer, a 5xx, 429 or 408 is tried again (5 tries, waiting 0.25 s, 0.5 s, ...).
 *       After the first failure no new job starts; those under way finish. Each put
 *       job gets `size`: the bytes sent (a file's size when it was hashed).
 *   b:get(key) -> data | nil, msg, code ("enoent": no such key)
 *   b:list(prefix) -> {{key = KEY, size = N}, ...} | nil, msg, code
 * Every body is signed by its SHA-256 (x-amz-content-sha256), so the server checks what
 * arrived. Keys are path-style (ENDPOINT/BUCKET/KEY) and kept to [A-Za-z0-9._/-].
 * A failure is one line: "s3 PUT KEY: 403 SignatureDoesNotMatch: ...". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <sodium.h>

#include "tend.h"

#define S3_CLASS "tend.s3"
#define S3_TRIES 5
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
	char *endpoint, *bucket, *sigv4, *key_id, *secret;
} bucket;

typedef struct {
	char *p;
	size_t len, cap;
} membuf;

enum { OP_PUT, OP_GET, OP_DELETE, OP_LIST };
static const char *const op_names[] = {"PUT", "GET", "DELETE", "LIST"};

typedef struct {
	int op;
	const char *key;         /* as the caller gave it (pinned by the jobs table) */
	char *url;
	const char *data;        /* a put's bytes, or NULL: path */
	size_t len;
	const char *path;        /* a put's source, a get's destination */
	FILE *f;
	size_t off;              /* how much of data has gone */
	char sha[65];
	CURL *c;
	struct curl_slist *headers;
	int tries;
	double retry_at;
	long status;
	membuf body;             /* a get's bytes in memory, or an error's */
	char err[CURL_ERROR_SIZE];
} job;

static int mem_add(membuf *m, const char *p, size_t n)
{
	if (m->len + n + 1 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4096;
		while (cap < m->len + n + 1)
			cap *= 2;
		char *q = realloc(m->p, cap);
		if (!q)
			return -1;
		m->p = q;
		m->cap = cap;
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
	m->p[m->len] = '\0';
	return 0;
}

static int valid_key(const char *k)
{
	if (!*k || *k == '/' || strlen(k) > 900)
		return 0;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '/' || *p == '-'))
			return 0;
	return !strstr(k, "..") && !strstr(k, "//");
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	job *j = ctx;
	long status = 0;
	curl_easy_getinfo(j->c, CURLINFO_RESPONSE_CODE, &status);
	if (j->op == OP_GET && j->f && status / 100 == 2)
		return fwrite(p, 1, size * n, j->f); /* short: curl stops with a write error */
	if (j->op != OP_GET && j->op != OP_LIST && j->body.len > 65536)
		return size * n; /* an error's first bytes are enough */
	return mem_add(&j->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ctx)
{
	job *j = ctx;
	size_t k;
	if (j->f) { /* no more than was hashed: a pack may grow meanwhile (appends only) */
		k = fread(buf, 1, j->len - j->off < size * n ? j->len - j->off : size * n, j->f);
		j->off += k;
		return k;
	}
	k = j->len - j->off < size * n ? j->len - j->off : size * n;
	memcpy(buf, j->data + j->off, k);
	j->off += k;
	return k;
}

/* A put's body hashed, and its size: the signature covers it. 0 or an errno value. */
static int hash_body(job *j)
{
	if (!j->path) {
		unsigned char d[crypto_hash_sha256_BYTES];
		crypto_hash_sha256(d, (const unsigned char *)j->data, j->len);
		sodium_bin2hex(j->sha, sizeof j->sha, d, sizeof d);
		return 0;
	}
	char *buf = malloc(1 << 17);
	long long size = 0;
	int err = buf ? tend_sha256_file(AT_FDCWD, j->path, 1, buf, j->sha, &size) : ENOMEM;
	free(buf);
	j->len = (size_t)size;
	return err;
}

/* The job's handle, ready for (another) try. 0, or an errno value. */
static int prepare(const bucket *b, job *j)
{
	if (j->f) {
		if (j->op == OP_GET && (fflush(j->f) != 0 || ftruncate(fileno(j->f), 0) != 0))
			return errno;
		rewind(j->f);
	} else if (j->path) {
		j->f = fopen(j->path, j->op == OP_PUT ? "rbe" : "wbe");
		if (!j->f)
			return errno;
	}
	j->off = 0;
	j->body.len = 0;
	j->err[0] = '\0';
	if (!j->c && !(j->c = curl_easy_init()))
		return ENOMEM;
	CURL *c = j->c;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, j->url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, j->err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* no byte for a minute: a lost link */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tend");
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, b->sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, b->key_id);
	curl_easy_setopt(c, CURLOPT_PASSWORD, b->secret);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
	if (!j->headers) {
		char h[96];
		snprintf(h, sizeof h, "x-amz-content-sha256: %s", j->op == OP_PUT ? j->sha : EMPTY_SHA256);
		j->headers = curl_slist_append(NULL, h);
		if (j->headers && j->op == OP_PUT)
			j->headers = curl_slist_append(j->headers, "Content-Type: application/octet-stream");
		if (!j->headers)
			return ENOMEM;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->headers);
	curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)j);
	if (j->op == OP_PUT) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, j);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->len);
	} else if (j->op == OP_DELETE) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	return 0;
}

/* The text between <tag> and </tag> at or after p, into out (cut to n); the end, or NULL. */
static const char *xml_field(const char *p, const char *tag, char *out, size_t n)
{
	char open[64], close[64];
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	const char *s = strstr(p, open), *e;
	if (!s || !(e = strstr(s += strlen(open), close)))
		return NULL;
	size_t k = 0;
	for (const char *q = s; q < e && k + 1 < n; q++) { /* the five entities XML predefines */
		static const struct { const char *name; char c; } ents[] = {
		    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
		char c = *q;
		for (size_t i = 0; c == '&' && i < sizeof ents / sizeof ents[0]; i++)
			if (!strncmp(q, ents[i].name, strlen(ents[i].name))) {
				c = ents[i].c;
				q += strlen(ents[i].name) - 1;
				break;
			}
		out[k++] = c;
	}
	out[k] = '\0';
	return e + strlen(close);
}

static int retryable(const job *j, CURLcode rc)
{
	if (rc != CURLE_OK)
		return rc != CURLE_WRITE_ERROR && rc != CURLE_READ_ERROR && rc != CURLE_LOGIN_DENIED;
	return j->status >= 500 || j->status == 429 || j->status == 408;
}

/* "s3 PUT key: 403 Code: message" into L; the code for tend_fail. */
static const char *describe(lua_State *L, const job *j, CURLcode rc)
{
	if (rc != CURLE_OK) {
		lua_pushfstring(L, "s3 %s %s: %s", op_names[j->op], j->key, j->err[0] ? j->err : curl_easy_strerror(rc));
		return rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "s3";
	}
	char code[128] = "", msg[512] = "";
	if (j->body.p) {
		xml_field(j->body.p, "Code", code, sizeof code);
		xml_field(j->body.p, "Message", msg, sizeof msg);
	}
	lua_pushfstring(L, "s3 %s %s: %d %s%s%s", op_names[j->op], j->key, (int)j->status, code[0] ? code : "error",
	                msg[0] ? ": " : "", msg);
	return j->status == 404 ? "enoent" : j->status == 403 ? "auth" : "s3";
}

static void job_free(job *j)
{
	if (j->c)
		curl_easy_cleanup(j->c);
	curl_slist_free_all(j->headers);
	if (j->f)
		fclose(j->f);
	free(j->url);
	free(j->body.p);
}

/* Run n jobs, `parallel` at a time. 0 when all succeeded, else 3: nil, the first
 * failure's message and its code pushed. A missing key is success for a
 * delete. Retries back off. */
static int run_jobs(lua_State *L, const bucket *b, job *jobs, size_t n, int parallel)
{
	CURLM *m = curl_multi_init();
	if (!m)
		return tend_fail(L, "s3", "s3: cannot start libcurl");
	size_t next = 0, active = 0, waiting = 0, failed = (size_t)-1;
	size_t *retry = calloc(n ? n : 1, sizeof *retry); /* jobs waiting to be tried again */
	const char *code = NULL;
	int pushed = 0;
	if (!retry) {
		curl_multi_cleanup(m);
		return tend_fail(L, "enomem", "s3: out of memory");
	}
	while (failed == (size_t)-1 ? next < n || active || waiting : active > 0) {
		double now = tend_now();
		for (size_t i = 0; failed == (size_t)-1 && i < waiting && (int)active < parallel;) {
			job *j = &jobs[retry[i]];
			if (j->retry_at > now) {
				i++;
				continue;
			}
			retry[i] = retry[--waiting];
			int err = prepare(b, j);
			if (err) {
				failed = (size_t)(j - jobs);
				lua_pushfstring(L, "s3 %s %s: %s", op_names[j->op], j->key, strerror(err));
				code = tend_errno_code(err);
				pushed = 1;
				break;
			}
			curl_multi_add_handle(m, j->c);
			active++;
		}
		while (failed == (size_t)-1 && next < n && (int)active < parallel) {
			job *j = &jobs[next++];
			int err = (j->op == OP_PUT ? hash_body(j) : 0);
			if (!err)
				err = prepare(b, j);
			if (err) {
				failed = (size_t)(j - jobs);
				lua_pushfstring(L, "s3 %s %s: %s%s%s", op_names[j->op], j->key, j->path ? j->path : "",
				                j->path ? ": " : "", strerror(err));
				code = tend_errno_code(err);
				pushed = 1;
				break;
			}
			curl_multi_add_handle(m, j->c);
			active++;
		}
		int running = 0;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			job *j = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			CURLcode rc = msg->data.result;
			curl_multi_remove_handle(m, j->c);
			active--;
			curl_easy_getinfo(j->c, CURLINFO_RESPONSE_CODE, &j->status);
			int ok = rc == CURLE_OK && (j->status / 100 == 2 || (j->op == OP_DELETE && j->status == 404));
			if (ok)
				continue;
			if (retryable(j, rc) && ++j->tries < S3_TRIES) {
				j->retry_at = tend_now() + 0.25 * (1 << (j->tries - 1));
				retry[waiting++] = (size_t)(j - jobs);
				continue;
			}
			if (failed == (size_t)-1) {
				failed = (size_t)(j - jobs);
				code = describe(L, j, rc);
				pushed = 1;
			}
		}
		if (active || waiting)
			curl_multi_poll(m, NULL, 0, active ? 100 : 20, NULL);
	}
	free(retry);
	curl_multi_cleanup(m);
	if (!pushed)
		return 0;
	lua_pushnil(L);
	lua_insert(L, -2);
	lua_pushstring(L, code);
	return 3;
}

static bucket *check_bucket(lua_State *L) { return luaL_checkudata(L, 1, S3_CLASS); }

static char *object_url(const bucket *b, const char *key)
{
	size_t n = strlen(b->endpoint) + strlen(b->bucket) + strlen(key) + 3;
	char *url = malloc(n);
	if (url)
		snprintf(url, n, "%s/%s/%s", b->endpoint, b->bucket, key);
	return url;
}

/* Fill j from the jobs table's entry on top of the stack; a message on misuse. */
static const char *read_job(lua_State *L, const bucket *b, job *j)
{
	static const char *const ops[] = {"put", "get", "delete"};
	for (int op = 0; op < 3; op++) {
		lua_getfield(L, -1, ops[op]);
		if (lua_type(L, -1) == LUA_TSTRING) {
			j->op = op == 0 ? OP_PUT : op == 1 ? OP_GET : OP_DELETE;
			j->key = lua_tostring(L, -1);
		}
		lua_pop(L, 1); /* the key stays alive in the job table */
	}
	if (!j->key || !valid_key(j->key))
		return "each job needs put, get or delete = KEY (letters, digits, . _ / -)";
	lua_getfield(L, -1, "file");
	j->path = lua_tostring(L, -1);
	lua_getfield(L, -2, "data");
	j->data = lua_tolstring(L, -1, &j->len);
	lua_pop(L, 2);
	if (j->op == OP_PUT && !j->path == !j->data)
		return "a put needs file or data";
	if (j->op == OP_GET && !j->path)
		return "a get in a transfer needs file";
	j->url = object_url(b, j->key);
	return j->url ? NULL : "out of memory";
}

/* b:transfer(jobs [, parallel]) -> n | nil, msg, code */
static int l_transfer(lua_State *L)
{
	bucket *b = check_bucket(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	int parallel = (int)luaL_optinteger(L, 3, 8);
	luaL_argcheck(L, parallel >= 1 && parallel <= 64, 3, "1 to 64");
	size_t n = lua_rawlen(L, 2);
	job *jobs = calloc(n ? n : 1, sizeof *jobs);
	if (!jobs)
		return luaL_error(L, "s3: out of memory");
	const char *bad = NULL;
	for (size_t i = 0; i < n && !bad; i++) {
		lua_rawgeti(L, 2, (lua_Integer)i + 1);
		bad = lua_istable(L, -1) ? read_job(L, b, &jobs[i]) : "each job is a table";
		lua_pop(L, 1);
	}
	int r = bad ? 0 : run_jobs(L, b, jobs, n, parallel);
	for (size_t i = 0; i < n && !bad && !r; i++)
		if (jobs[i].op == OP_PUT) { /* what went: the size the signature covered */
			lua_rawgeti(L, 2, (lua_Integer)i + 1);
			lua_pushinteger(L, (lua_Integer)jobs[i].len);
			lua_setfield(L, -2, "size");
			lua_pop(L, 1);
		}
	for (size_t i = 0; i < n; i++)
		job_free(&jobs[i]);
	free(jobs);
	if (bad)
		return luaL_error(L, "s3 transfer: %s", bad);
	if (r)
		return 3;
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* One request into memory, tried again as a transfer's are: 0 with the job's body
 * filled, or 3 pushed (nil, msg, code). */
static int fetch(lua_State *L, const bucket *b, job *j) { return run_jobs(L, b, j, 1, 1); }

/* b:get(key) -> data | nil, msg, code */
static int l_get(lua_State *L)
{
	bucket *b = check_bucket(L);
	job j = {.op = OP_GET, .key = luaL_checkstring(L, 2)};
	luaL_argcheck(L, valid_key(j.key), 2, "letters, digits, . _ / - only");
	j.url = object_url(b, j.key);
	int r = j.url ? fetch(L, b, &j) : tend_fail(L, "enomem", "s3: out of memory");
	if (r == 0) {
		lua_pushlstring(L, j.body.p ? j.body.p : "", j.body.len);
		r = 1;
	}
	job_free(&j);
	return r;
}

/* b:list(prefix) -> {{key, size}, ...} | nil, msg, code: ListObjectsV2, page by page. */
static int l_list(lua_State *L)
{
	bucket *b = check_bucket(L);
	const char *prefix = luaL_optstring(L, 2, "");
	luaL_argcheck(L, !*prefix || valid_key(prefix), 2, "letters, digits, . _ / - only");
	CURL *esc = curl_easy_init();
	if (!esc)
		return tend_fail(L, "enomem", "s3: out of memory");
	lua_newtable(L);
	int out = lua_gettop(L);
	lua_Integer count = 0;
	char token[1024] = "";
	for (;;) {
		char *p = curl_easy_escape(esc, prefix, 0), *t = curl_easy_escape(esc, token, 0);
		size_t n = strlen(b->endpoint) + strlen(b->bucket) + strlen(p) + strlen(t) + 80;
		job j = {.op = OP_LIST, .key = prefix, .url = malloc(n)};
		if (j.url) /* query parameters in the order SigV4 sorts them */
			snprintf(j.url, n, "%s/%s?%s%s%slist-type=2&prefix=%s", b->endpoint, b->bucket,
			         token[0] ? "continuation-token=" : "", t, token[0] ? "&" : "", p);
		curl_free(p);
		curl_free(t);
		int r = j.url ? fetch(L, b, &j) : tend_fail(L, "enomem", "s3: out of memory");
		if (r) {
			job_free(&j);
			curl_easy_cleanup(esc);
			return r;
		}
		const char *q = j.body.p ? j.body.p : "";
		char key[1024], size[32];
		while ((q = strstr(q, "<Contents>"))) {
			const char *end = strstr(q, "</Contents>");
			if (!end || !xml_field(q, "Key", key, sizeof key) || !xml_field(q, "Size", size, sizeof size))
				break;
			lua_createtable(L, 0, 2);
			lua_pushstring(L, key);
			lua_setfield(L, -2, "key");
			lua_pushinteger(L, strtoll(size, NULL, 10));
			lua_setfield(L, -2, "size");
			lua_rawseti(L, out, ++count);
			q = end;
		}
		char truncated[8] = "";
		xml_field(j.body.p ? j.body.p : "", "IsTruncated", truncated, sizeof truncated);
		int more = !strcmp(truncated, "true") &&
		           xml_field(j.body.p, "NextContinuationToken", token, sizeof token) && token[0];
		job_free(&j);
		if (!more)
			break;
	}
	curl_easy_cleanup(esc);
	return 1;
}

static int l_gc(lua_State *L)
{
	bucket *b = luaL_checkudata(L, 1, S3_CLASS);
	if (b->secret)
		sodium_memzero(b->secret, strlen(b->secret));
	free(b->endpoint);
	free(b->bucket);
	free(b->sigv4);
	free(b->key_id);
	free(b->secret);
	memset(b, 0, sizeof *b);
	return 0;
}

static char *field_dup(lua_State *L, const char *name, const char *fallback)
{
	lua_getfield(L, 1, name);
	const char *s = lua_tostring(L, -1);
	char *d = s ? strdup(s) : fallback ? strdup(fallback) : NULL;
	lua_pop(L, 1);
	if (!d && (s || fallback))
		luaL_error(L, "s3: out of memory");
	return d;
}

/* open{endpoint, bucket, region, key_id, secret} -> bucket */
static int l_open(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	bucket *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	luaL_setmetatable(L, S3_CLASS);
	b->endpoint = field_dup(L, "endpoint", NULL);
	b->bucket = field_dup(L, "bucket", NULL);
	b->key_id = field_dup(L, "key_id", NULL);
	b->secret = field_dup(L, "secret", NULL);
	if (!b->endpoint || !b->bucket || !b->key_id || !b->secret)
		return luaL_error(L, "s3.open needs endpoint, bucket, key_id and secret"); /* __gc frees */
	char *region = field_dup(L, "region", "us-east-1");
	size_t n = strlen(region) + 16;
	b->sigv4 = malloc(n);
	if (b->sigv4)
		snprintf(b->sigv4, n, "aws:amz:%s:s3", region);
	free(region);
	size_t e = strlen(b->endpoint);
	while (e > 0 && b->endpoint[e - 1] == '/')
		b->endpoint[--e] = '\0';
	return b->sigv4 ? 1 : luaL_error(L, "s3: out of memory");
}

int tend_open_s3(lua_State *L)
{
	static const luaL_Reg methods[] = {
	    {"transfer", l_transfer}, {"get", l_get}, {"list", l_list}, {"__gc", l_gc}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (luaL_newmetatable(L, S3_CLASS)) {
		luaL_setfuncs(L, methods, 0);
		lua_pushvalue(L, -1);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
