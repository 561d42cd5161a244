-- lock: run locks under $TEND_HOME/locks/, one per scheduled job and one per instance a
-- job touches. flock(2) holds them, so a process that dies never keeps one. Beside each
-- lock a record says who holds it (host, pid, boot id, since): a second run can name the
-- holder, and a run that finds the record of a holder that is gone (it died holding the
-- lock) says that it takes the lock over.
local core = require "tend.core"
local errors = require "tend.errors"
local cjson = require "cjson"

local M = {}

local function first_line(path)
  local text = core.fs.read(path)
  return text and text:match("[^\n]+")
end

local function holder()
  return { host = first_line("/etc/hostname") or "localhost", pid = core.proc.pid(),
    boot_id = first_line("/proc/sys/kernel/random/boot_id"), since = os.time() }
end

local function describe(who)
  return ("pid %s on %s since %s"):format(tostring(math.tointeger(who.pid) or who.pid), tostring(who.host),
    os.date("!%Y-%m-%d %H:%M UTC", tonumber(who.since) or 0))
end

local Lock = {}
Lock.__index = Lock

function Lock:release()
  if self.handle then
    core.fs.remove(self.record)
    self.handle:release()
    self.handle = nil
  end
end
Lock.__close = Lock.release
Lock.__gc = Lock.release

-- take(ctx, kind, name) -> lock, the record of a holder that died with it (or nil).
-- release() or a <close> variable lets go. Raises with exit code 4 when a live run
-- holds it.
function M.take(ctx, kind, name)
  local dir = ctx.home .. "/locks"
  errors.check(core.fs.mkdir_p(dir, 448))
  local path = ("%s/%s-%s.lock"):format(dir, kind, name:gsub("[^%w._-]", "_"))
  local record = path .. ".who"
  local handle, msg, code = core.fs.lock(path, "exclusive", false)
  if not handle then
    if code ~= "locked" then errors.fail("%s", msg) end
    local ok, who = pcall(cjson.decode, core.fs.read(record) or "")
    errors.raise(4, "%s %s is already running (%s)", kind, name,
      ok and type(who) == "table" and describe(who) or "holder unknown")
  end
  local ok, old = pcall(cjson.decode, core.fs.read(record) or "")
  if not (ok and type(old) == "table") then old = nil end
  if old then
    ctx:warn("%s %s: taking over the lock of %s, which ended without letting go%s", kind, name, describe(old),
      old.boot_id ~= holder().boot_id and " (the machine has restarted since)" or "")
  end
  errors.check(core.fs.write_atomic(record, cjson.encode(holder()), 384))
  return setmetatable({ handle = handle, record = record }, Lock), old
end

return M
