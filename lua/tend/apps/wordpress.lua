-- WordPress: wp-includes/version.php says the version, wp-config.php the database.
local php = require "tend.php"
local db = require "tend.db"

local M = { name = "wordpress", config = "wp-config.php",
  ignore = { "wp-content/cache/*", "wp-content/upgrade/*" } } -- rebuilt by WordPress

function M.detect(t, path)
  local src = t:read(path .. "/wp-includes/version.php")
  if not src then return false end
  return php.assignments(src).wp_version or true
end

function M.db_settings(t, path)
  local src, msg = t:read(path .. "/wp-config.php")
  if not src then return nil, msg end
  local d = php.defines(src)
  if not d.DB_NAME then return nil, path .. "/wp-config.php: no DB_NAME defined" end
  local s = db.mysql_host(d.DB_HOST or "localhost")
  s.driver, s.name, s.user = "mysql", d.DB_NAME, d.DB_USER
  s.password = d.DB_PASSWORD
  s.prefix = php.assignments(src).table_prefix or "wp_"
  s.source = path .. "/wp-config.php"
  return s
end

return M
