-- WordPress: wp-includes/version.php says the version, wp-config.php the database.
local php = require "tend.php"
local db = require "tend.db"

local M = { name = "wordpress", config = "wp-config.php",
  ignore = { "wp-content/cache/*", "wp-content/upgrade/*" }, -- rebuilt by WordPress
  data_dirs = { "wp-content/uploads" },
  db_keys = { kind = "define", name = "DB_NAME", user = "DB_USER", password = "DB_PASSWORD", host = "DB_HOST" },
  -- its own switch: while .maintenance is there WordPress answers 503 (Retry-After).
  -- $upgrading is read at each request: time() keeps WordPress from calling it stale
  -- after its 10 minutes; tend's own look behind the page (the bypass header) gets 0,
  -- long past, so WordPress runs.
  maintenance = { file = ".maintenance", php = function(bypass)
    return "<?php $upgrading = (($_SERVER['HTTP_X_TEND_BYPASS'] ?? '') === '" .. bypass
      .. "') ? 0 : time(); // written by tend; removed when it is done\n"
  end },
}

M.probes = { "wp-includes/version.php" }
function M.detect(t, path)
  local src = t:read(path .. "/wp-includes/version.php")
  if not src then return false end
  return php.assignments(src).wp_version or true
end

-- parse_config(src, where) -> settings | nil, msg: the database wp-config.php's text names.
function M.parse_config(src, where)
  local d = php.defines(src)
  if not d.DB_NAME then return nil, where .. ": no DB_NAME defined" end
  local s = db.mysql_host(d.DB_HOST or "localhost")
  s.driver, s.name, s.user = "mysql", d.DB_NAME, d.DB_USER
  s.password = d.DB_PASSWORD
  s.prefix = php.assignments(src).table_prefix or "wp_"
  s.source = where
  return s
end

function M.db_settings(t, path)
  local src, msg = t:read(path .. "/wp-config.php")
  if not src then return nil, msg end
  return M.parse_config(src, path .. "/wp-config.php")
end

-- Copies that are not production send no mail: a must-use plugin that turns wp_mail()
-- into a no-op (WordPress 5.7+ asks pre_wp_mail first).
M.MAIL_OFF = "wp-content/mu-plugins/tend-no-mail.php"
function M.mail_off(t, root)
  local ok, msg, code = t:mkdir_p(root .. "/wp-content/mu-plugins", 493)
  if not ok then return nil, msg, code end
  return t:write(root .. "/" .. M.MAIL_OFF, "<?php\n// Written by tend: this copy of the site sends no e-mail.\n"
    .. "add_filter( 'pre_wp_mail', '__return_false' );\n", 420)
end

return M
