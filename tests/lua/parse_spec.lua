-- Parsers: durations, PHP config files, database URLs, hosts.
local duration = require "tend.duration"
local php = require "tend.php"
local db = require "tend.db"
local transport = require "tend.transport"

describe("duration", function()
  it("parses units", function()
    assert.are.equal(90, duration.parse("90s"))
    assert.are.equal(900, duration.parse("15m"))
    assert.are.equal(43200, duration.parse("12h"))
    assert.are.equal(86400, duration.parse("1d"))
    assert.are.equal(7 * 86400, duration.parse("7d"))
    assert.are.equal(14 * 86400, duration.parse("2w"))
    assert.are.equal(30, duration.parse("30"))
  end)
  it("refuses junk with a message", function()
    local v, msg = duration.parse("1y")
    assert.is_nil(v)
    assert.matches("bad duration \"1y\"", msg)
    assert.is_nil(duration.parse("-1d"))
    assert.is_nil(duration.parse(""))
  end)
  it("formats back to the largest exact unit", function()
    assert.are.equal("7d", duration.format(7 * 86400))
    assert.are.equal("36h", duration.format(36 * 3600))
    assert.are.equal("90s", duration.format(90))
  end)
end)

describe("php config parsing", function()
  local wp = [[<?php
/** The name of the database for WordPress */
define( 'DB_NAME', 'wp_prod' );
// define( 'DB_NAME', 'commented_out' );
/* define('DB_USER', 'nobody'); */
define( "DB_USER", "wp" );
define( 'DB_PASSWORD', 'it\'s; a "pass" \\ word' );
define('DB_HOST', 'localhost:/run/mysqld/mysqld.sock');
define( 'WP_DEBUG', false );
define( 'WP_MEMORY', 256 );
$table_prefix = 'blog_';
]]
  it("reads defines as data", function()
    local d = php.defines(wp)
    assert.are.equal("wp_prod", d.DB_NAME)
    assert.are.equal("wp", d.DB_USER)
    assert.are.equal([[it's; a "pass" \ word]], d.DB_PASSWORD)
    assert.are.equal(false, d.WP_DEBUG)
    assert.are.equal(256, d.WP_MEMORY)
  end)
  it("reads assignments, double-quoted escapes included", function()
    local a = php.assignments(wp .. '$pass_tiki = "a\\"b\\$c";')
    assert.are.equal("blog_", a.table_prefix)
    assert.are.equal('a"b$c', a.pass_tiki)
  end)
  it("ignores what it cannot read as a literal", function()
    local a = php.assignments("<?php $x = getenv('X'); $y = 'ok';")
    assert.is_nil(a.x)
    assert.are.equal("ok", a.y)
  end)
end)

describe("database settings", function()
  it("splits DB_HOST forms", function()
    assert.are.same({ host = "db" }, db.mysql_host("db"))
    assert.are.same({ host = "127.0.0.1", port = 3307 }, db.mysql_host("127.0.0.1:3307"))
    assert.are.same({ host = "localhost", socket = "/run/m.sock" }, db.mysql_host("localhost:/run/m.sock"))
  end)
  it("parses database URLs", function()
    assert.are.same({ driver = "mysql", user = "u", host = "h", port = 3306, name = "d" },
      db.parse_url("mysql://u@h:3306/d"))
    assert.are.same({ driver = "mysql", user = "u", host = "localhost", name = "d", socket = "/s.sock" },
      db.parse_url("mysql://u@localhost/d?socket=/s.sock"))
    assert.are.same({ driver = "sqlite", path = "/srv/app.db" }, db.parse_url("sqlite:///srv/app.db"))
    local v, msg = db.parse_url("postgres://x")
    assert.is_nil(v)
    assert.matches("bad database URL", msg)
  end)
  it("describes settings without the password", function()
    local s = db.parse_url("mysql://u@h:3306/d")
    s.password = "hunter2"
    assert.are.equal("mysql:u@h:3306/d", db.describe(s))
  end)
end)

describe("hosts", function()
  it("parses local and ssh specs", function()
    assert.are.same({ kind = "local", spec = "local" }, transport.parse("local"))
    assert.are.same({ kind = "ssh", user = "deploy", host = "web1", port = 2222, spec = "ssh://deploy@web1:2222" },
      transport.parse("ssh://deploy@web1:2222"))
    assert.are.equal(22, transport.parse("ssh://web1").port)
    assert.are.same({ kind = "ssh", user = "u", host = "::1", port = 2200, spec = "ssh://u@[::1]:2200" },
      transport.parse("ssh://u@[::1]:2200"))
    assert.are.equal("2001:db8::5", transport.parse("ssh://[2001:db8::5]").host)
  end)
  it("refuses other schemes and bad ports", function()
    assert.is_nil(transport.parse("ftp://web1"))
    assert.is_nil(transport.parse("ssh://u@web1:99999"))
  end)
end)
