-- apps: one adapter per application. Each adapter is a table:
--   name                      "wordpress"
--   detect(t, path)           -> version string | false (not this app) | nil, msg
--   db_settings(t, path)      -> settings (see tend.db) | nil, msg
--   config                    the file holding the database settings ("wp-config.php")
--   db_keys                   how that file names them: {kind = "define"|"assign", name=,
--                             user=, password=, host=}; config_for writes a copy's
--   data_dirs                 folders of user data (uploads), for migrate-data
--   maintenance               "wordpress" (its .maintenance) or "htaccess" (a page and a
--                             rewrite rule; see tend.maintenance)
--   mail_off(t, root)         optional: make a copy's tree send no e-mail
-- t is the instance's transport, so adapters work the same on any host.
-- Order matters for detection: the most specific app first, generic last.
local M = {}

M.order = { "wordpress", "tiki", "generic" }

local known = {}
for _, name in ipairs(M.order) do known[name] = true end

function M.get(name)
  if not known[name] then return nil, ("unknown app %q (known: %s)"):format(tostring(name), table.concat(M.order, ", ")) end
  return require("tend.apps." .. name)
end

-- detect(t, path) -> adapter, version | nil, msg
function M.detect(t, path)
  for _, name in ipairs(M.order) do
    local adapter = M.get(name)
    local version, msg = adapter.detect(t, path)
    if version == nil and msg then return nil, msg end
    if version then return adapter, version ~= true and version or nil end
  end
end

-- config_for(adapter, src, settings) -> secret | nil, msg: the app's config file src with
-- the database settings of a copy (name, user, host, password) put in. A secret, since
-- the password is in it.
function M.config_for(adapter, src, s)
  local php, core = require "tend.php", require "tend.core"
  local keys = adapter.db_keys
  if not keys then return nil, ("%s has no database settings to write"):format(adapter.name) end
  local MARK = "@@tend-password@@"
  local values = { name = s.name, user = s.user, host = require("tend.db").host_spec(s) }
  for _, field in ipairs({ "name", "user", "host" }) do
    local out = php.set(src, keys.kind, keys[field], php.quote(values[field] or ""))
    if not out then return nil, ("%s sets no %s"):format(adapter.config, keys[field]) end
    src = out
  end
  src = php.set(src, keys.kind, keys.password, "'" .. MARK .. "'")
  if not src then return nil, ("%s sets no %s"):format(adapter.config, keys.password) end
  local pw = s.password
  if type(pw) ~= "userdata" then pw = core.vault.secret(pw or "") end
  return pw:format(src, "single", MARK)
end

return M
