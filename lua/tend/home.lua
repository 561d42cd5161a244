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

return M
