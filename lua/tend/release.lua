-- release: new code for an instance from release tarballs, for a web root that is no
-- checkout (a WordPress or Tiki unpacked from its release). The instance's --releases
-- URL is a folder holding the tarballs and a SHA256SUMS file in sha256sum's format
-- ("HEX  app-1.1.tar.gz"), as many projects publish them. The version of each tarball
-- is in its name. A tarball is downloaded here (libcurl), checked against its sum,
-- sent to the host and unpacked over the web root, its top folder stripped.
local core = require "tend.core"
local errors = require "tend.errors"
local vcs = require "tend.vcs"

local M = {}

-- list(base) -> {{version, file, sha256}, ...}: what SHA256SUMS says is there.
function M.list(base)
  local url = base:gsub("/+$", "") .. "/SHA256SUMS"
  local r, msg = core.http.request({ url = url, timeout = 60, max_body = 1 << 20 })
  if not r then errors.fail("%s", msg) end
  if r.status ~= 200 then errors.fail("%s answered %d", url, r.status) end
  local out = {}
  for hex, file in r.body:gmatch("(%x+) [ *]([^\n]+)") do
    local version = file:match("%-(%d[%w.]*)%.tar%.%a+$") or file:match("%-(%d[%w.]*)%.zip$")
    if version and #hex == 64 then out[#out + 1] = { version = version, file = file, sha256 = hex:lower() } end
  end
  if #out == 0 then errors.fail("%s lists no tarball with a version in its name", url) end
  return out
end

-- target(list, current, to, latest) -> the entry to install, or nil when none is newer:
-- to names one; latest takes the newest of all; else the newest of current's major.
function M.target(list, current, to, latest)
  if to then
    for _, e in ipairs(list) do if e.version == to then return e end end
    local have = {}
    for i, e in ipairs(list) do have[i] = e.version end
    errors.usage("no release %s (there are %s)", to, table.concat(have, ", "))
  end
  local best
  for _, e in ipairs(list) do
    local fits = latest or (current and vcs.major(e.version) == vcs.major(current))
    if fits and (not best or vcs.newer(e.version, best.version)) then best = e end
  end
  if best and current and not vcs.newer(best.version, current) then return nil end
  return best
end

-- install(t, root, base, entry): the tarball downloaded, checked and unpacked over root.
function M.install(t, root, base, entry)
  local url = base:gsub("/+$", "") .. "/" .. entry.file
  local tmp = os.tmpname()
  local ok, err = pcall(function()
    local r, msg = core.http.request({ url = url, to = tmp, timeout = 1800 })
    if not r then errors.fail("%s", msg) end
    if r.status ~= 200 then errors.fail("%s answered %d", url, r.status) end
    local got = core.hash.file(tmp)
    if got ~= entry.sha256 then
      errors.fail("%s: checksum mismatch (SHA256SUMS says %s, the download is %s); nothing unpacked", entry.file,
        entry.sha256:sub(1, 12), tostring(got):sub(1, 12))
    end
    -- one top folder (wordpress/, app-1.1/) is stripped
    local names = errors.check(core.proc.run({ "tar", "-tf", tmp })).stdout
    local top, strip = names:match("^([^/\n]+)/"), 1
    for name in names:gmatch("[^\n]+") do
      if name:match("^([^/]+)") ~= top then strip = 0 break end
    end
    local remote = ("%s/.tend-release-%d"):format(root, math.random(1, 1 << 30))
    errors.check(t:write(remote, errors.check(core.fs.read(tmp)), 384))
    -- -m: the files get the time of unpacking, so that the next backup sees them changed
    -- (a release can hold a file of the same size and mtime as the one it replaces)
    local x, xmsg = t:exec({ "tar", "-xmf", remote, "--no-same-owner", "--strip-components=" .. strip, "-C", root })
    t:exec({ "rm", "-f", "--", remote })
    if not x then errors.fail("%s", xmsg) end
    if x.code ~= 0 then errors.fail("unpacking %s: %s", entry.file, require("tend.transport").why(x)) end
  end)
  os.remove(tmp)
  if not ok then error(err, 0) end
end

return M
