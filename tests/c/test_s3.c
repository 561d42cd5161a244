/* s3.c under the sanitizers, against a server forked here that answers each connection
 * with the next canned reply and writes down what it was sent: the signed request, a
 * listing's XML read back (entities, pages), an error in one line, a 5xx tried again,
 * a put's body hash. The real S3 server (signatures checked) is tests/integration/offsite.t. */
#include "ctest_server.h"

#define OPEN "b = core.s3.open{endpoint = 'http://127.0.0.1:' .. port .. '/', bucket = 'bk', key_id = 'AKID', " \
             "secret = 'SECRETKEY', region = 'eu-west-3'}\n"
#define READ_REQUESTS "local f = io.open(dir .. '/requests'); local req = f:read('a'); f:close()\n"

static void test_get_signed(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	const char *replies[] = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"};
	pid_t pid = serve(L, dir, replies, 1);
	lua_is(L,
	       OPEN "local data = assert(b:get('managers/one/catalog'))\n" READ_REQUESTS
	       "return table.concat({data, req:match('^GET (%S+)'),\n"
	       "  req:match('Authorization: AWS4%-HMAC%-SHA256 Credential=AKID/%d+/(eu%-west%-3/s3/aws4_request)'),\n"
	       "  req:match('x%-amz%-content%-sha256: (%x+)'), tostring(req:find('SECRETKEY', 1, true))}, ' ')",
	       "hello /bk/managers/one/catalog eu-west-3/s3/aws4_request "
	       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 nil");
	reap(pid);
	ctest_rm_tree(dir);
}

static void test_list_pages(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	const char *replies[] = {
	    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n<?xml version=\"1.0\"?><ListBucketResult>"
	    "<IsTruncated>true</IsTruncated><Contents><Key>p/a&amp;b</Key><Size>12</Size></Contents>"
	    "<Contents><Key>p/c</Key><Size>0</Size></Contents><NextContinuationToken>tok/1=</NextContinuationToken>"
	    "</ListBucketResult>",
	    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n<ListBucketResult><IsTruncated>false</IsTruncated>"
	    "<Contents><Key>p/d</Key><Size>7</Size></Contents></ListBucketResult>"};
	pid_t pid = serve(L, dir, replies, 2);
	lua_is(L,
	       OPEN "local out = {}\n"
	       "for _, o in ipairs(assert(b:list('p/'))) do out[#out + 1] = o.key .. '=' .. o.size end\n" READ_REQUESTS
	       "local second = req:match('%-%-%-%-\\n(GET %S+)')\n"
	       "return table.concat(out, ' ') .. ' | ' .. second",
	       "p/a&b=12 p/c=0 p/d=7 | GET /bk?continuation-token=tok%2F1%3D&list-type=2&prefix=p%2F");
	reap(pid);
	ctest_rm_tree(dir);
}

static void test_error_one_line(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	const char *replies[] = {
	    "HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n<?xml version=\"1.0\"?><Error>"
	    "<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>",
	    "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n<Error><Code>NoSuchKey</Code></Error>"};
	pid_t pid = serve(L, dir, replies, 2);
	lua_is(L,
	       OPEN "local _, msg, code = b:transfer({{put = 'x/y', data = 'abc'}})\n"
	       "local _, msg2, code2 = b:get('x/z')\n"
	       "return table.concat({msg, code, msg2, code2}, ' | ')",
	       "s3 PUT x/y: 403 SignatureDoesNotMatch: The request signature we calculated does not match | auth | "
	       "s3 GET x/z: 404 NoSuchKey | enoent");
	reap(pid);
	ctest_rm_tree(dir);
}

/* A 500 and a 503 are tried again; the put's body goes each time, with its hash. */
static void test_retry_and_put(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	const char *replies[] = {"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n",
	                         "HTTP/1.1 503 Slow Down\r\nConnection: close\r\n\r\n",
	                         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};
	pid_t pid = serve(L, dir, replies, 3);
	lua_is(L,
	       OPEN "local f = io.open(dir .. '/src', 'wb'); f:write(string.rep('z', 3000)); f:close()\n"
	       "local jobs = {{put = 'packs/a.pack', file = dir .. '/src'}}\n"
	       "local n = assert(b:transfer(jobs, 2))\n" READ_REQUESTS
	       "local _, puts = req:gsub('PUT /bk/packs/a%.pack', '')\n"
	       "local _, bodies = req:gsub(string.rep('z', 3000), '')\n"
	       "return table.concat({n, jobs[1].size, puts, bodies, req:match('x%-amz%-content%-sha256: (%x+)') ==\n"
	       "  core.hash.sha256(string.rep('z', 3000)) and 'hashed' or 'not hashed'}, ' ')",
	       "1 3000 3 3 hashed");
	reap(pid);
	ctest_rm_tree(dir);
}

static void test_misuse(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "b = core.s3.open{endpoint = 'http://127.0.0.1:1', bucket = 'bk', key_id = 'K', secret = 'S'}\n"
	       "local ok1 = pcall(b.get, b, '../etc/passwd')\n"
	       "local ok2, msg = pcall(b.transfer, b, {{put = 'a b', data = 'x'}})\n"
	       "local ok3 = pcall(core.s3.open, {bucket = 'bk'})\n"
	       "return table.concat({tostring(ok1), tostring(ok2), tostring(msg:find('letters, digits') ~= nil), tostring(ok3)}, ' ')",
	       "false false true false");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_signed),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_error_one_line),
		cmocka_unit_test(test_retry_and_put),
		cmocka_unit_test(test_misuse),
	};
	return CTEST_RUN("s3", tests);
}
