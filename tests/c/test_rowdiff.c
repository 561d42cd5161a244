/* rowdiff.c under the sanitizers: two small dumps in both of mysqldump's forms (one
 * INSERT a row; a tuple a line, as MariaDB 10.11 writes extended inserts), with tables
 * on one side only, rows that differ or are missing, composite and text keys, a table
 * whose rows are out of key order, and a side that cannot be opened. */
#include "ctest.h"

static const char *DUMPS =
	"local a = dir .. '/a.sql'\n"
	"local b = dir .. '/b.sql'\n"
	"local function put(p, s) local f = assert(io.open(p, 'w')); f:write(s); f:close() end\n"
	"put(a, [[-- MariaDB dump\n"
	"CREATE TABLE `aonly` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"
	"INSERT INTO `aonly` VALUES (1),(2);\n"
	"CREATE TABLE `opts` (\n  `name` varchar(40) NOT NULL,\n  `v` text,\n  PRIMARY KEY (`name`)\n) ENGINE=InnoDB AUTO_INCREMENT=9;\n"
	"INSERT INTO `opts` VALUES\n('Alpha','x, (y)'),\n('beta','it\\'s'),\n('gamma','g');\n"
	"CREATE TABLE `rel` (\n  `o` int(11) NOT NULL,\n  `t` int(11) NOT NULL,\n  PRIMARY KEY (`o`,`t`)\n);\n"
	"INSERT INTO `rel` VALUES (1,1),(1,2),(2,1),(10,1);\n"
	"CREATE TABLE `messy` (\n  `a` int(11) DEFAULT NULL\n);\n"
	"INSERT INTO `messy` VALUES (3),(1),(2);\n"
	"]])\n"
	"put(b, [[-- MariaDB dump\n"
	"CREATE TABLE `bonly` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n);\n"
	"INSERT INTO `bonly` VALUES (7);\n"
	"CREATE TABLE `opts` (\n  `name` varchar(40) NOT NULL,\n  `v` text,\n  PRIMARY KEY (`name`)\n) ENGINE=InnoDB AUTO_INCREMENT=12;\n"
	"INSERT INTO `opts` VALUES ('alpha','x, (y)');\n"
	"INSERT INTO `opts` VALUES ('beta','changed');\n"
	"INSERT INTO `opts` VALUES ('delta','d');\n"
	"CREATE TABLE `rel` (\n  `o` int(11) NOT NULL,\n  `t` int(11) NOT NULL,\n  PRIMARY KEY (`o`,`t`)\n);\n"
	"INSERT INTO `rel` VALUES (1,1),(2,1),(9,9),(10,1);\n"
	"CREATE TABLE `messy` (\n  `a` int(11) DEFAULT NULL\n);\n"
	"INSERT INTO `messy` VALUES (3),(1),(2);\n"
	"]])\n";

static void test_compare(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_ok(L, DUMPS);
	lua_is(L,
	       "local r = assert(core.rowdiff.compare(dir .. '/a.sql', dir .. '/b.sql', {rows = 'opts'}))\n"
	       "local out = {}\n"
	       "for _, t in ipairs(r) do\n"
	       "  out[#out + 1] = ('%s %s%s s%d d%d a%d b%d%s [%s|%s|%s]'):format(t.name, t.in_a and 'A' or '-', t.in_b and 'B' or '-',\n"
	       "    t.same, t.differ, t.only_a, t.only_b, t.unordered and ' unordered' or '',\n"
	       "    table.concat(t.keys.differ, ' '), table.concat(t.keys.only_a, ' '), table.concat(t.keys.only_b, ' '))\n"
	       "end\n"
	       "return table.concat(out, '\\n')",
	       "aonly A- s0 d0 a2 b0 [|1 2|]\n"
	       "bonly -B s0 d0 a0 b1 [||7]\n"
	       "opts AB s0 d2 a1 b1 ['Alpha' 'beta'|'gamma'|'delta']\n"
	       "rel AB s3 d0 a1 b1 [|1,2|9,9]\n"
	       "messy AB s3 d0 a0 b0 unordered [||]");
	lua_is(L,
	       "local r = assert(core.rowdiff.compare(dir .. '/a.sql', dir .. '/b.sql', {rows = 'opts'}))\n"
	       "local t = r[3]\n"
	       "return t.rows[2][1] .. ' ' .. t.rows[2][2] .. ' ' .. t.rows[2][3] .. ' ' .. tostring(t.create_a:find('AUTO_INCREMENT=9') ~= nil)",
	       "differ ('beta','it\\'s') ('beta','changed') true");
	lua_is(L,
	       "local r = assert(core.rowdiff.compare(dir .. '/a.sql', dir .. '/a.sql', {ignore = {rel = true}}))\n"
	       "local n = 0\n"
	       "for _, t in ipairs(r) do n = n + t.differ + t.only_a + t.only_b end\n"
	       "return n .. ' ' .. r[2].same .. ' ' .. tostring(r[3].ignored) .. ' ' .. r[3].same",
	       "0 3 true 0");
	lua_is(L, "local ok, msg, code = core.rowdiff.compare(dir .. '/none.sql', dir .. '/a.sql')\n"
	          "return tostring(ok) .. ' ' .. code .. ' ' .. msg",
	       "nil io rowdiff: No such file or directory");
	ctest_rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare),
	};
	return CTEST_RUN("rowdiff", tests);
}
