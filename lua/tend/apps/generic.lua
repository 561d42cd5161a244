-- Generic PHP app: any web root; its version is its VERSION file's first line if it
-- has one; the database is what `--db` says, or what its declared config files
-- (`--config`) name, read by tend.settings.
local settings = require "tend.settings"

local M = { name = "generic", data_dirs = {}, maintenance = "htaccess" }

function M.detect(t, path)
  local v = t:read(path .. "/VERSION")
  return v and v:match("^%s*([^%s]+)") or true
end

-- db_settings(t, path, files) -> settings | nil, msg: from the declared config files.
function M.db_settings(t, path, files)
  if not files or #files == 0 then
    return nil, "tend knows no config file of a generic app: give the instance --db URL, or --config FILE"
  end
  local texts = {}
  for _, f in ipairs(files) do
    local text, msg = t:read(path .. "/" .. f)
    if not text then return nil, msg end
    texts[#texts + 1] = { file = f, text = text }
  end
  local s = settings.read(texts)
  if not s then
    return nil, ("%s name no database tend can read: give the instance --db URL"):format(table.concat(files, ", "))
  end
  s.source = path .. "/" .. files[1]
  return s
end

return M
