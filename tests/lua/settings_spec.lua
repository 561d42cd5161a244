-- tend.settings: config files of apps tend has no adapter for, read and rewritten for a
-- copy in the forms real apps use; what still names the source is reported.
local settings = require "tend.settings"
local core = require "tend.core"

local from = { url = "https://shop.example.com", root = "/srv/shop",
  db = { driver = "mysql", name = "shop", user = "shop", host = "127.0.0.1", port = 3306,
    password = core.vault.secret("s3cr'et") } }
local to = { url = "http://copy.test:8080", root = "/srv/shop-copy",
  db = { driver = "mysql", name = "shop_copy", user = "shop_cp", host = "127.0.0.1", port = 3306 } }

local function filled(r, pw)
  local out = r.text
  local secret = core.vault.secret(pw)
  for mode in pairs(r.modes) do out = secret:format(out, mode, settings.MARKS[mode]) end
  return type(out) == "string" and out or out:reveal()
end

describe("settings.role", function()
  it("tells keys apart by what they say", function()
    assert.are.equal("user", settings.role("DB_USER"))
    assert.are.equal("user", settings.role("username"))
    assert.are.equal("password", settings.role("DB_PASSWORD"))
    assert.are.equal("password", settings.role("db_pass"))
    assert.are.equal("host", settings.role("hostname"))
    assert.are.equal("name", settings.role("DB_NAME"))
    assert.are.equal("name", settings.role("DB_DATABASE"))
    assert.are.equal("name", settings.role("dbname"))
    assert.are.equal("port", settings.role("DB_PORT"))
    assert.is_nil(settings.role("theme"))
  end)
end)

describe("settings.rewrite", function()
  it("rewrites define() files", function()
    local src = [[<?php
// define('SHOP_DB_NAME', 'shop'); an old line
define('SHOP_DB_NAME', 'shop');
define("SHOP_DB_USER", "shop");
define('SHOP_DB_PASS', 's3cr\'et');
define('SHOP_DB_HOST', '127.0.0.1');
define('SHOP_URL', 'https://shop.example.com/');
define('SHOP_FILES', '/srv/shop/var/files');
define('SHOP_THEME', 'shopfront');
]]
    local r = settings.rewrite(src, "config.php", from, to)
    assert.are.same({}, r.problems)
    local out = filled(r, "new'pw")
    assert.matches("// define%('SHOP_DB_NAME', 'shop'%); an old line", out)
    assert.matches("define%('SHOP_DB_NAME', 'shop_copy'%);", out)
    assert.matches('define%("SHOP_DB_USER", "shop_cp"%);', out)
    assert.matches("define%('SHOP_DB_PASS', 'new\\'pw'%);", out)
    assert.matches("define%('SHOP_URL', 'http://copy.test:8080/'%);", out)
    assert.matches("define%('SHOP_FILES', '/srv/shop%-copy/var/files'%);", out)
    assert.matches("SHOP_THEME', 'shopfront'", out)
    assert.is_nil(settings.check({ { file = "config.php", text = r.text } }, to))
    for _, c in ipairs(r.changes) do assert.is_nil(c:find("s3cr", 1, true)) end
  end)

  it("rewrites a DSN URL, percent-encoding the password", function()
    local src = "<?php\nreturn [\n  'db' => 'mysqli://shop:s3cr%27et@127.0.0.1:3306/shop?charset=utf8mb4',\n"
      .. "  'base_url' => 'https://shop.example.com',\n];\n"
    local r = settings.rewrite(src, "settings.php", from, to)
    assert.are.same({}, r.problems)
    assert.matches("settings.php:3 db: mysqli://shop:%*+@127%.0%.0%.1:3306/shop%?charset=utf8mb4 %-> mysqli://shop_cp:%*+@127", r.changes[1])
    assert.is_nil(r.changes[1]:find("s3cr", 1, true))
    local out = filled(r, "p@ss/w")
    assert.matches("'mysqli://shop_cp:p%%40ss%%2Fw@127%.0%.0%.1:3306/shop_copy%?charset=utf8mb4'", out)
    assert.matches("'base_url' => 'http://copy.test:8080'", out)
    local got = settings.read({ { file = "settings.php", text = out } })
    assert.are.equal("shop_copy", got.name)
    assert.are.equal("shop_cp", got.user)
  end)

  it("rewrites PDO DSNs and nested arrays", function()
    local src = [[<?php
$config['database']['dsn'] = "mysql:host=127.0.0.1;port=3306;dbname=shop;charset=utf8";
$config['database']['username'] = 'shop';
$config['database']['password'] = 's3cr\'et';
]]
    local r = settings.rewrite(src, "app.php", from, to)
    assert.are.same({}, r.problems)
    local out = filled(r, "x")
    assert.matches('"mysql:host=127%.0%.0%.1;port=3306;dbname=shop_copy;charset=utf8"', out)
    assert.matches("%['username'%] = 'shop_cp'", out)
    assert.matches("%['password'%] = 'x'", out)
  end)

  it("rewrites .env and INI files", function()
    local env = "# the shop\nAPP_URL=https://shop.example.com\nDB_DATABASE=shop\nDB_USERNAME=shop\n"
      .. "DB_PASSWORD=\"s3cr'et\"\nexport DB_HOST=127.0.0.1\n"
    local r = settings.rewrite(env, ".env", from, to)
    assert.are.same({}, r.problems)
    local out = filled(r, 'a"b')
    assert.matches("APP_URL=http://copy%.test:8080\n", out)
    assert.matches("DB_DATABASE=shop_copy\n", out)
    assert.matches("DB_USERNAME=shop_cp\n", out)
    assert.matches('DB_PASSWORD="a\\"b"\n', out)
    local ini = "[database]\nname = \"shop\" ; the live one\nuser = shop\npassword = 's3cr'et'\n"
    r = settings.rewrite(ini, "config.ini", from, to)
    assert.matches('name = "shop_copy" ; the live one', r.text)
    assert.matches("user = shop_cp", r.text)
    assert.is_nil(settings.check({ { file = "config.ini", text = r.text } }, to))
  end)

  it("reports what still names the source", function()
    local src = "<?php\n$cfg = ['store' => 'shop', 'mirror' => 'https://shop.example.com/api'];\n$db = 'shop';\n"
    local r = settings.rewrite(src, "c.php", from, to)
    -- 'store' => 'shop' is no key tend knows as the database's, so it is not touched:
    -- it is reported; the URL and $db are rewritten
    assert.are.equal(1, #r.problems)
    assert.matches("c.php:2 store = \"shop\" still names the source's database name", r.problems[1])
    assert.matches("'mirror' => 'http://copy.test:8080/api'", r.text)
  end)

  it("check says when the files name another database", function()
    local why = settings.check({ { file = "c.php", text = "<?php\ndefine('DB_NAME', 'other');\n" } }, to)
    assert.matches('they name database "other", the copy\'s is "shop_copy"', why)
    assert.matches("name no database", settings.check({ { file = "c.php", text = "<?php\n$x = 1;\n" } }, to))
  end)
end)
