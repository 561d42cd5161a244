-- written: what tend last wrote into an instance's web root (a restore, a clone), listed
-- right after the swap with each file's inode and ctime and kept in the catalog. The
-- next restore or clone onto that tree trusts a file whose inode, size, mtime and ctime
-- are still as listed: nothing has written, renamed over, chmod'ed or linked it since
-- (each moves ctime, which no writer can set back), so its content is what tend wrote
-- and the host need not read it through sha256sum again. A file is recorded only if
-- its ctime is older than the record's start by more than the file system's clock can
-- lag (tend.backup.settled), so a write just after is never mistaken for tend's. The record is
-- taken once the old tree is deleted (unlinking the reused files' other names moves their
-- ctime), while the site is still held in maintenance; what an app writes in place into
-- a reused file before then is in the new tree either way.
local backup = require "tend.backup"

local M = {}

local function key(inst) return "written." .. inst.id end


-- clock(t) -> the host's time a moment from now, in seconds (fractions where date has
-- them), or nil when it cannot be asked (then nothing is recorded: the next copy hashes
-- as before). The moment (where sleep takes fractions) lets the files written last
-- settle, so that they are recorded too.
function M.clock(t)
  local r = t:exec({ "sh", "-c", "sleep 0.12 2>/dev/null; exec date +%s.%N" })
  if not r or r.code ~= 0 then return nil end
  local sec, frac = r.stdout:match("^(%d+)%.?(%d*)")
  if not sec then return nil end
  return tonumber(sec .. (frac ~= "" and ("." .. frac) or ""))
end

-- record(ctx, inst, t, root, manifest, built_at [, skip]): root listed now (built_at:
-- clock(t) just before, nil to forget the last record); each file of
-- the manifest (what was just written there) but those in skip (a copy's own config)
-- kept with its inode and ctime, when the listing agrees with it. A listing that fails
-- records nothing (the next copy hashes all).
function M.record(ctx, inst, t, root, manifest, built_at, skip)
  ctx:catalog():meta(key(inst), "")
  local raw = built_at and manifest and backup.listing(t, root, {})
  if not raw then return 0 end
  local now, parts = backup.parse(raw), { ("%s\n"):format(root) }
  for _, f in ipairs(manifest) do
    local e = now[f.path]
    if f.type == "file" and f.sha256 and not (skip and skip[f.path]) and e and e.type == "file" and e.size == f.size and e.mtime_ns
      and e.mtime_ns == f.mtime_ns and e.ctime and e.inode and backup.settled(e.ctime, built_at) then
      parts[#parts + 1] = ("%s\t%d\t%d\t%.17g\t%s\t%s\0"):format(f.sha256, e.size, e.mtime_ns, e.ctime, e.inode, f.path)
    end
  end
  ctx:catalog():meta(key(inst), table.concat(parts))
  return #parts - 1
end

-- trusted(ctx, inst, root) -> {path = {sha256, size, mtime_ns, ctime, inode}}: what the
-- last record says of root (empty when it was for another folder, or there is none).
function M.trusted(ctx, inst, root)
  local text = ctx:catalog():meta(key(inst)) or ""
  local at, body = text:match("^([^\n]*)\n(.*)$")
  local out = {}
  if at ~= root then return out end
  for sha, size, mtime_ns, ctime, inode, path in body:gmatch("(%x+)\t(%d+)\t(%d+)\t([^\t]+)\t([^\t]+)\t([^%z]*)%z") do
    out[path] = { sha256 = sha, size = tonumber(size), mtime_ns = math.tointeger(tonumber(mtime_ns)),
      ctime = tonumber(ctime), inode = inode }
  end
  return out
end

-- same(rec, e) -> whether the listing's entry e is the file the record r describes
function M.same(rec, e)
  return rec ~= nil and e.inode == rec.inode and e.ctime == rec.ctime and e.size == rec.size
    and e.mtime_ns == rec.mtime_ns
end

return M
