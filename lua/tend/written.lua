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

-- record(ctx, inst, t, root, manifest [, skip]): root listed now, a moment from now (the
-- files written last settle meanwhile, so that they are recorded too); each file of the
-- manifest (what was just written there, nil to forget the last record) but those in
-- skip (a copy's own config) kept with its inode and ctime, when the listing agrees
-- with it and its ctime is older than the listing's start. A listing that fails
-- records nothing (the next copy hashes all).
function M.record(ctx, inst, t, root, manifest, skip)
  ctx:catalog():meta(key(inst), "")
  if not manifest then return 0 end
  local raw, built_at = backup.listing(t, root, {}, 0.12)
  if not raw or not built_at then return 0 end
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
