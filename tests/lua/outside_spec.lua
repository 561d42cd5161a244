-- tend.outside: an instance's data outside its web root, in a manifest under absolute
-- paths, and where a copy keeps its own.
local outside = require "tend.outside"
local snapshot = require "tend.snapshot"

local src = { id = 1, name = "prod", path = "/var/www/prod" }
local dst = { id = 2, name = "dev", path = "/var/www/dev" }

describe("outside.normal", function()
  it("makes paths absolute and plain", function()
    assert.equal("/srv/files", outside.normal("/srv//files/"))
    assert.equal("/var/www/files", outside.normal("../files/", "/var/www/prod"))
    assert.equal("/var/www/prod/files", outside.normal("files", "/var/www/prod"))
    assert.is_nil(outside.normal("/"))
    assert.is_nil(outside.normal("/../etc/.."))
    assert.is_nil(outside.normal("files"))
  end)
end)

describe("outside.roots and split", function()
  local rows = {
    { path = "index.php", type = "file" },
    { path = "/srv/prod-files", type = "dir", mode = 448, mtime_ns = 5 },
    { path = "/srv/prod-files/a/b.pdf", type = "file", hardlink = "/srv/prod-files/c.pdf" },
    { path = "/srv/prod-files/a", type = "dir" },
    { path = "/srv/prod-files/c.pdf", type = "file" },
    { path = "/data/up", type = "dir" },
  }
  it("finds each folder by its own row", function()
    assert.same({ "/data/up", "/srv/prod-files" }, outside.roots(rows))
  end)
  it("cuts the manifest into its trees, paths from each folder", function()
    local web, under, own = outside.split(rows, outside.roots(rows))
    assert.equal(1, #web)
    assert.equal(448, own["/srv/prod-files"].mode)
    local paths = {}
    for _, r in ipairs(under["/srv/prod-files"]) do paths[#paths + 1] = r.path .. (r.hardlink and ("=" .. r.hardlink) or "") end
    table.sort(paths)
    assert.same({ "a", "a/b.pdf=c.pdf", "c.pdf" }, paths)
    assert.same({}, under["/data/up"])
  end)
  it("lets a snapshot hold absolute paths only inside such a folder", function()
    assert.is_nil(snapshot.unsafe(rows))
    local bad = { { path = "/etc/passwd", type = "file" }, { path = "x", type = "file" } }
    assert.equal("/etc/passwd", (snapshot.unsafe(bad)))
    local across = { { path = "/srv/f", type = "dir" }, { path = "/srv/f/x", type = "file", hardlink = "index.php" } }
    assert.equal("/srv/f/x", (snapshot.unsafe(across)))
    local dots = { { path = "/srv/f", type = "dir" }, { path = "/srv/f/../x", type = "file" } }
    assert.truthy(snapshot.unsafe(dots))
  end)
end)

describe("outside.map", function()
  it("keeps an in-place restore where the instance keeps its data", function()
    local m = outside.map(src, {}, src, { "/srv/prod-files" }, { "/srv/prod-files" })
    assert.same({ { from = "/srv/prod-files", to = "/srv/prod-files", declared = true } }, m)
  end)
  it("refuses to write in place where the instance keeps no data", function()
    local ok, err = pcall(outside.map, src, {}, src, { "/srv/prod-files" }, { "/etc" })
    assert.is_false(ok)
    assert.matches("not where prod keeps data.*nothing was changed", err.message or tostring(err))
  end)
  it("gives a copy its own folder: declared by name, in order, else beside its web root", function()
    assert.same({ { from = "/srv/prod/files", to = "/srv/dev/files", declared = true } },
      outside.map(src, {}, dst, { "/srv/dev/files" }, { "/srv/prod/files" }))
    assert.same({ { from = "/srv/prod-files", to = "/srv/dev-files", declared = true } },
      outside.map(src, {}, dst, { "/srv/dev-files" }, { "/srv/prod-files" }))
    assert.same({ { from = "/srv/prod-files", to = "/var/www/dev-data/prod-files", declared = false } },
      outside.map(src, {}, dst, {}, { "/srv/prod-files" }))
    -- two left on one side, one on the other: no guessing
    local m = outside.map(src, {}, dst, { "/srv/x", "/srv/y" }, { "/srv/prod-files" })
    assert.equal("/var/www/dev-data/prod-files", m[1].to)
  end)
  it("never lets a copy's folder be its source's", function()
    local ok, err = pcall(outside.map, src, { "/srv/shared" }, dst, { "/srv/shared" }, { "/srv/shared" })
    assert.is_false(ok)
    assert.matches("prod's own", err.message or tostring(err))
    ok = pcall(outside.map, src, {}, dst, { "/var/www/dev/files" }, { "/srv/prod-files" })
    assert.is_false(ok)
  end)
  it("gives the rewrites longest first", function()
    local p = outside.pairs_of({ { from = "/a", to = "/b" }, { from = "/a-files", to = "/b-files" }, { from = "/c", to = "/c" } })
    assert.same({ { "/a-files", "/b-files" }, { "/a", "/b" } }, p)
  end)
end)
