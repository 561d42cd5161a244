-- Generic PHP app: any web root; its version is its VERSION file's first line if it
-- has one; the database is what `--db` says, or what its declared config files
-- (`--config`) name, read by tend.settings.
local M = { name = "generic", data_dirs = {}, maintenance = "htaccess" }

M.probes = { "VERSION" }
function M.detect(t, path)
  local v = t:read(path .. "/VERSION")
  return v and v:match("^%s*([^%s]+)") or true
end

-- db_settings(t, path, files) -> settings | nil, msg: from the declared config files.
M.db_settings = require("tend.apps").default_db_settings(M)

return M
