-- output: what tend prints. Humans get aligned tables and short reports; --json gets
-- one JSON document on stdout. Messages and errors go to stderr.
-- JSON through dkjson: an empty table is an empty list ([]), unless marked with
-- M.object; slashes are not escaped; times are ISO 8601 in UTC (M.time).
local dkjson = require "dkjson"
local null = require("cjson").null -- what a child tend's answer holds for null

local M = {}

local function exception(reason, value, state, message)
  if value == null then return "null" end
  return dkjson.encodeexception(reason, value, state, message)
end

-- json(value) -> text.  Every command answers a list or an object. (A state of its own
-- each time: dkjson keeps its buffer in the state after a failed call.)
function M.json(value)
  if value == nil then return "[]" end
  return dkjson.encode(value, { exception = exception })
end

-- object(t) -> t, marked to be a JSON object even when it is empty ({} rather than []).
function M.object(t) return setmetatable(t or {}, { __jsontype = "object" }) end

-- time(t) -> "2026-12-04T08:30:00Z" for a Unix time, nil for nil: how JSON gives times.
function M.time(t) return t and os.date("!%Y-%m-%dT%H:%M:%SZ", math.tointeger(t) or math.floor(t)) or nil end

-- table_text(rows, columns) -> aligned text with a header row.
function M.table_text(rows, columns)
  local widths, lines = {}, {}
  for i, c in ipairs(columns) do widths[i] = #c end
  local cells = {}
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i, c in ipairs(columns) do
      local v = row[c]
      v = v == nil and "-" or tostring(v)
      cells[r][i] = v
      if #v > widths[i] then widths[i] = #v end
    end
  end
  local function line(vals)
    local parts = {}
    for i, v in ipairs(vals) do parts[i] = i < #vals and v .. string.rep(" ", widths[i] - #v) or v end
    return table.concat(parts, "  ")
  end
  local header = {}
  for i, c in ipairs(columns) do header[i] = c:upper() end
  lines[1] = line(header)
  for r = 1, #rows do lines[#lines + 1] = line(cells[r]) end
  return table.concat(lines, "\n")
end

-- report_text({{label, value}, ...}) -> "label:  value" lines, aligned.
function M.report_text(pairs_list)
  local width, lines = 0, {}
  for _, kv in ipairs(pairs_list) do if #kv[1] > width then width = #kv[1] end end
  for _, kv in ipairs(pairs_list) do
    lines[#lines + 1] = ("%-" .. (width + 1) .. "s %s"):format(kv[1] .. ":", tostring(kv[2]))
  end
  return table.concat(lines, "\n")
end

return M
