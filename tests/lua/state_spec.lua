-- The catalog's migrations, instances and the vault, on a temp state dir, through the
-- real engine module (tend.core from the build).
local core = require "tend.core"
local Catalog = require "tend.catalog"
local Vault = require "tend.vault"
local instance = require "tend.instance"
local errors = require "tend.errors"

local function tempdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(core.fs.mkdir_p(dir, tonumber("700", 8)))
  return dir
end

describe("catalog", function()
  it("creates the file 0600 and applies every migration once", function()
    local home = tempdir()
    local c = Catalog.open(home)
    assert.are.equal(#Catalog.migrations, c:first("PRAGMA user_version").user_version)
    assert.are.equal(tonumber("600", 8), core.fs.stat(home .. "/catalog.db").mode)
    c:close()
    c = Catalog.open(home) -- a second open migrates nothing and keeps the data
    assert.are.equal(#Catalog.migrations, c:first("PRAGMA user_version").user_version)
    assert.are.equal("wal", c:first("PRAGMA journal_mode").journal_mode)
    c:close()
  end)
  it("refuses a catalog newer than this tend", function()
    local home = tempdir()
    local c = Catalog.open(home)
    c.db:exec("PRAGMA user_version = 999")
    c:close()
    local ok, err = pcall(Catalog.open, home)
    assert.is_false(ok)
    assert.matches("newer than this tend knows", err.msg)
  end)
  it("rolls back a transaction that raises", function()
    local c = Catalog.open(tempdir())
    pcall(c.transaction, c, function()
      c:meta("k", "v")
      error("boom")
    end)
    assert.is_nil(c:meta("k"))
    c:close()
  end)
end)

describe("instances", function()
  local c
  before_each(function() c = Catalog.open(tempdir()) end)
  after_each(function() c:close() end)

  it("adds, gets, edits, links and removes", function()
    instance.add(c, "prod", { app = "wordpress", path = "/srv/www/", url = "https://example.org/" }, { env = "production" })
    instance.add(c, "yesterday", { app = "wordpress", path = "/srv/y" })
    local p = instance.get(c, "prod")
    assert.are.equal("/srv/www", p.path)
    assert.are.equal("https://example.org", p.url)
    assert.are.equal("local", p.host)
    assert.are.same({ env = "production" }, p.tags)
    instance.link(c, "yesterday", "mirror-of", "prod", 86400)
    assert.are.same({ { kind = "mirror-of", source = "prod", lag = 86400 } }, instance.get(c, "yesterday").relations)
    instance.edit(c, "prod", { url = "" }, {})
    assert.is_nil(instance.get(c, "prod").url)
    instance.rm(c, "prod")
    assert.is_nil(instance.get(c, "prod"))
    assert.are.same({}, instance.get(c, "yesterday").relations)
  end)
  it("refuses bad input as usage errors", function()
    for _, case in ipairs({
      { "x y", { app = "generic", path = "/a" }, "bad instance name" },
      { "a", { app = "joomla", path = "/a" }, "unknown app" },
      { "a", { app = "generic", path = "a" }, "must be absolute" },
      { "a", { app = "generic" }, "%-%-path is required" },
      { "a", { app = "generic", path = "/a", url = "example.org" }, "bad %-%-url" },
    }) do
      local ok, err = pcall(instance.add, c, case[1], case[2], {})
      assert.is_false(ok)
      assert.are.equal(2, err.code)
      assert.matches(case[3], err.msg)
    end
  end)
end)

describe("vault", function()
  local saved = {}
  setup(function()
    for _, k in ipairs({ "TEND_VAULT_KEY_FILE", "TEND_VAULT_PASSPHRASE" }) do saved[k] = os.getenv(k) end
  end)
  it("stores sealed values and opens them again in a new process-like session", function()
    local home = tempdir()
    local c = Catalog.open(home)
    local v = Vault.open(home, c)
    v:set("db", "hunter2")
    v:close()
    v = Vault.open(home, c)
    assert.are.equal("hunter2", v:get("db"):reveal())
    local row = c:first("SELECT value FROM secrets WHERE name = 'db'")
    assert.is_nil(row.value:find("hunter2", 1, true))
    assert.are.equal("db", v:list()[1].name)
    v:rm("db")
    local none, msg = v:get("db")
    assert.is_nil(none)
    assert.matches("no secret named db", msg)
    c:close()
  end)
  it("tells a wrong key from the right one", function()
    local home = tempdir()
    local c = Catalog.open(home)
    Vault.open(home, c):set("db", "x")
    os.rename(home .. "/vault.key", home .. "/vault.key.old")
    assert(core.vault.new_key():save(home .. "/vault.key"))
    local ok, err = pcall(Vault.get, Vault.open(home, c), "db")
    assert.is_false(ok)
    assert.matches("wrong vault key", err.msg)
    c:close()
  end)
end)
