-- core.rewrite: strings replaced inside a SQL dump's literals as it streams, with
-- PHP-serialized lengths fixed; what holds no match passes byte for byte.
local core = require "tend.core"

local A, B = "http://a.example.org", "https://copy.example.net/site"
local PAIRS = { { A, B }, { "http:\\/\\/a.example.org", "https:\\/\\/copy.example.net\\/site" }, { "/srv/a", "/var/www/copy" } }

-- through(sql [, dialect [, step]]) -> rewritten text, stats: sql fed in pieces of step bytes
local function through(sql, dialect, step)
  local path = os.tmpname()
  local sink = assert(core.proc.open({ "sh", "-c", 'cat > "$1"', "sh", path }, { stdin_pipe = true }))
  local rw = core.rewrite.new(PAIRS, dialect or "mysql", sink)
  step = step or #sql
  for i = 1, #sql, step do assert(rw:write(sql:sub(i, i + step - 1))) end
  assert(rw:send_eof())
  assert.are.equal(0, sink:wait())
  local f = assert(io.open(path, "rb"))
  local out = f:read("a")
  f:close()
  os.remove(path)
  local stats = rw:stats()
  rw:close()
  return out, stats
end

describe("core.rewrite", function()
  it("replaces inside literals and leaves the rest as it was", function()
    local sql = "INSERT INTO `wp_options` VALUES (1,'siteurl','" .. A .. "','yes'),(2,'x','it\\'s \\\"q\\\"','no');\n"
    local out, st = through(sql)
    assert.are.equal("INSERT INTO `wp_options` VALUES (1,'siteurl','" .. B .. "','yes'),(2,'x','it\\'s \\\"q\\\"','no');\n", out)
    assert.are.equal(1, st.changed)
    assert.are.equal(6, st.literals)
    assert.are.equal(#sql, st.bytes_in)
    assert.are.equal(#out, st.bytes_out)
  end)

  it("fixes the byte counts of PHP-serialized strings, nested ones too", function()
    local inner = 's:' .. #(A .. "/x") .. ':"' .. A .. '/x";'
    local value = 'a:2:{s:4:"home";s:' .. #(A .. "/") .. ':"' .. A .. '/";s:5:"inner";s:' .. #inner .. ':"' .. inner .. '";}'
    local escaped = value:gsub('"', '\\"')
    local out, st = through("INSERT INTO t VALUES ('" .. escaped .. "');\n")
    local inner2 = 's:' .. #(B .. "/x") .. ':"' .. B .. '/x";'
    local want = 'a:2:{s:4:"home";s:' .. #(B .. "/") .. ':"' .. B .. '/";s:5:"inner";s:' .. #inner2 .. ':"' .. inner2 .. '";}'
    assert.are.equal("INSERT INTO t VALUES ('" .. want:gsub('"', '\\"') .. "');\n", out)
    assert.are.equal(3, st.serialized) -- home, inner's own string, and inner
    assert.are.equal(2, st.replaced)
  end)

  it("leaves a serialized string whose count does not match as text", function()
    local out = through("('s:3:\\\"" .. A .. "\\\";')")
    assert.are.equal("('s:3:\\\"" .. B .. "\\\";')", out)
  end)

  it("rewrites JSON's escaped form and paths, and escapes what it writes back", function()
    local out = through("('{\\\"u\\\":\\\"http:\\\\/\\\\/a.example.org\\\"}\\n/srv/a/wp')")
    assert.are.equal("('{\\\"u\\\":\\\"https:\\\\/\\\\/copy.example.net\\\\/site\\\"}\\n/var/www/copy/wp')", out)
  end)

  it("gives the same bytes whatever the pieces it is fed in", function()
    local sql = "-- a comment naming " .. A .. " 'with a quote\nINSERT INTO `t'x` VALUES ('" .. A .. "','a''b\\\\','s:20:\\\"" .. A .. "\\\";');\n"
    local whole = through(sql)
    for _, step in ipairs({ 1, 2, 3, 7 }) do assert.are.equal(whole, (through(sql, "mysql", step))) end
    assert.truthy(whole:find("-- a comment naming " .. A .. " 'with a quote\n", 1, true)) -- comments pass as they are
    assert.truthy(whole:find("s:" .. #B .. ":\\\"" .. B .. "\\\";", 1, true))
  end)

  it("reads SQLite's dialect: '' is a quote and backslashes are plain", function()
    local out = through("INSERT INTO \"notes\" VALUES(1,'it''s at " .. A .. "\\n');\n", "sqlite")
    assert.are.equal("INSERT INTO \"notes\" VALUES(1,'it''s at " .. B .. "\\n');\n", out)
  end)

  it("refuses bad pairs", function()
    local sink = assert(core.proc.open({ "true" }, { stdin_pipe = true }))
    assert.has_error(function() core.rewrite.new({ { "", "x" } }, "mysql", sink) end, "rewrite.new: pair 1 replaces the empty string")
    assert.has_error(function() core.rewrite.new({ "x" }, "mysql", sink) end, "rewrite.new: pair 1 is not {from, to}")
    assert.has_error(function() core.rewrite.new({}, "postgres", sink) end)
    sink:wait()
  end)
end)
