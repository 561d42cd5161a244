-- tend: the Lua library over the engine. Checks that the engine it runs on speaks the
-- API this library was written for, then hands out the pieces.
local core = require "tend.core"

local API = 1
if core.api ~= API then
  error(("this Lua library needs engine API %d, the engine has %d; rebuild tend")
    :format(API, core.api), 0)
end

return { core = core, version = core.version, API = API }
