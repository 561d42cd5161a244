/* listing.c under the sanitizers: find's eleven NUL-ended fields made into entries, as
 * tend.backup reads them: the web root's own row apart, types (a device for c, b and
 * anything unknown), octal modes, sizes only for files, mtime to the nanosecond from
 * find's fraction (short, long, none), symlink targets, a name that is not UTF-8 and
 * one with a newline, and a cut last row left out; a listing compressed by zstd, whole
 * and cut. */
#include "ctest.h"

#define Z "\\x00" /* not \\0: a digit after it would join the escape */
#define ROW(y, m, s, t, p, l, c, i, n, u, g) y Z m Z s Z t Z p Z l Z c Z i Z n Z u Z g Z

static const char *RAW =
	"raw = '"
	ROW("d", "755", "4096", "1700000000.5", ".", "", "1700000001.0", "8:1", "3", "33", "33")
	ROW("f", "644", "12", "1700000000.123456789", "./index.php", "", "1700000002.25", "8:2", "2", "33", "33")
	ROW("l", "777", "9", "1700000000", "./current", "index.php", "1700000000", "8:3", "1", "0", "0")
	ROW("d", "2775", "4096", "1700000000.1", "./up\\255loads", "", "1.5", "8:4", "2", "33", "33")
	ROW("c", "600", "0", "1.000000000123", "./dev/null", "", "2", "8:5", "1", "0", "0")
	ROW("f", "640", "7", "5.", "./a\\nb", "", "5", "8:6", "1", "", "x")
	"f" Z "644" Z "3" Z
	"'\n";

static void test_parse(void **state)
{
	lua_State *L = *state;
	lua_ok(L, RAW);
	lua_is(L,
	       "local e, root = core.listing.parse(raw)\n"
	       "local names = {}\n"
	       "for p in pairs(e) do names[#names + 1] = p end\n"
	       "table.sort(names)\n"
	       "return table.concat(names, '|') .. ' root ' .. root.mode .. ' ' .. root.mtime_ns .. ' ' .. root.uid",
	       "a\nb|current|dev/null|index.php|up\377loads root 493 1700000000500000000 33");
	lua_is(L,
	       "local e = core.listing.parse(raw)['index.php']\n"
	       "return ('%s %s %d %s %s %d %s %s %d %s %d %d %s'):format(e.path, e.type, e.mode, math.type(e.size), e.size,\n"
	       "  e.mtime_ns, e.mtime, e.ctime, e.nlink, e.inode, e.uid, e.gid, tostring(e.link))",
	       "index.php file 420 integer 12 1700000000123456789 1700000000.1235 1700000002.25 2 8:2 33 33 nil");
	lua_is(L,
	       "local e = core.listing.parse(raw)\n"
	       "local l, d, c, n = e.current, e['up\\255loads'], e['dev/null'], e['a\\nb']\n"
	       "return ('%s %s %d %d|%s %o %d|%s %d|%d %s %s %s'):format(l.type, l.link, l.size, l.mtime_ns,\n"
	       "  d.type, d.mode, d.size, c.type, c.mtime_ns, n.mtime_ns, math.type(n.mtime), tostring(n.uid), tostring(n.gid))",
	       "link index.php 0 1700000000000000000|dir 2775 0|device 1000000000|5000000000 float nil nil");
	lua_is(L, "local e, root = core.listing.parse('')\nreturn tostring(next(e)) .. ' ' .. tostring(root)", "nil nil");
}

/* A listing the host compressed with zstd comes back whole; a cut one is refused. */
static void test_decompress(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_ok(L, RAW);
	lua_is(L,
	       "local f = assert(io.open(dir .. '/raw', 'wb')); f:write(raw:rep(500)); f:close()\n"
	       "assert(os.execute('zstd -q -1 -c ' .. dir .. '/raw > ' .. dir .. '/raw.zst'))\n"
	       "local z = assert(io.open(dir .. '/raw.zst', 'rb')):read('a')\n"
	       "local plain = assert(core.listing.decompress(z))\n"
	       "local ok, msg, code = core.listing.decompress(z:sub(1, #z - 4))\n"
	       "return tostring(plain == raw:rep(500) and #z < #plain) .. ' ' .. tostring(ok) .. ' ' .. code .. ' ' .. msg",
	       "true nil badmsg listing: the host's compressed listing is damaged or cut short");
	ctest_rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_decompress),
	};
	return CTEST_RUN("listing", tests);
}
