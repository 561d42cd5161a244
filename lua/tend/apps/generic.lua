-- Generic PHP app: nothing to detect; the database is whatever `--db` says.
local M = { name = "generic", data_dirs = {}, maintenance = "htaccess" }

function M.detect() return true end

function M.db_settings() return nil, "a generic app has no known config file; give the instance --db" end

return M
