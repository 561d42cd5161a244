-- home: tend's state directory ($TEND_HOME, default ~/.local/share/tend), kept 0700.
local core = require "tend.core"
local errors = require "tend.errors"
local fs = core.fs

local M = {}

function M.path(override)
  local dir = override or os.getenv("TEND_HOME")
  if dir and dir ~= "" then return dir end
  local data = os.getenv("XDG_DATA_HOME")
  if data and data ~= "" then return data .. "/tend" end
  local home = os.getenv("HOME")
  if not home or home == "" then errors.usage("HOME is not set; set TEND_HOME") end
  return home .. "/.local/share/tend"
end

-- ensure(dir) -> dir: created if missing, made 0700 (it holds the catalog and vault key).
function M.ensure(dir)
  errors.check(fs.mkdir_p(dir, 448))
  local st = errors.check(fs.stat(dir))
  if st.mode & 63 ~= 0 then errors.check(fs.chmod(dir, 448)) end
  return dir
end

-- scratch(dir) -> a new temp file name in dir/tmp (0700), for bytes that must not sit in
-- a shared /tmp (database dumps, a copy's database): named after this process, so that
-- what a killed run left is removed by the next (sweep_scratch). The caller removes it.
function M.scratch(dir)
  local tmp = M.ensure(dir) .. "/tmp"
  errors.check(fs.mkdir_p(tmp, 448))
  return ("%s/%d-%d-%d"):format(tmp, core.proc.pid(), os.time(), math.random(1, 1 << 30))
end

-- sweep_scratch(dir): the temp files of runs that are gone (no such process) removed.
function M.sweep_scratch(dir)
  local tmp = dir .. "/tmp"
  for _, name in ipairs(fs.list(tmp) or {}) do
    local pid = name:match("^(%d+)%-")
    if pid and not fs.stat("/proc/" .. pid) then core.proc.run({ "rm", "-rf", "--", tmp .. "/" .. name }) end
  end
end

return M
