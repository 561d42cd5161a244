-- duration: "90s", "15m", "12h", "1d", "7d", "2w", "30d" <-> seconds.
local M = {}

local UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400 }

-- parse(text) -> seconds | nil, msg.  A bare number means seconds.
function M.parse(text)
  local n, unit = tostring(text):match("^(%d+)([smhdw]?)$")
  if not n then return nil, ("bad duration %q: use a number and s, m, h, d or w (90s, 12h, 7d)"):format(tostring(text)) end
  return tonumber(n) * UNITS[unit ~= "" and unit or "s"]
end

-- format(seconds) -> the largest exact unit up to days: 86400 -> "1d", 604800 -> "7d"
function M.format(seconds)
  for _, u in ipairs({ "d", "h", "m" }) do
    if seconds > 0 and seconds % UNITS[u] == 0 then return (seconds // UNITS[u]) .. u end
  end
  return seconds .. "s"
end

return M
