-- apps: one adapter per application. Each adapter is a table:
--   name                      "wordpress"
--   detect(t, path)           -> version string | false (not this app) | nil, msg
--   db_settings(t, path)      -> settings (see tend.db) | nil, msg
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

return M
