-- Generic PHP app: any web root; its version is its VERSION file's first line if it
-- has one; the database is whatever `--db` says.
local M = { name = "generic", data_dirs = {}, maintenance = "htaccess" }

function M.detect(t, path)
  local v = t:read(path .. "/VERSION")
  return v and v:match("^%s*([^%s]+)") or true
end

function M.db_settings() return nil, "a generic app has no known config file; give the instance --db" end

return M
