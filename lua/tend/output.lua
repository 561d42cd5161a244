-- output: what tend prints. Humans get aligned tables and short reports; --json gets
-- one JSON document on stdout. Messages and errors go to stderr.
local cjson = require "cjson"

local M = {}

-- json(value) -> text.  Every command answers a list or an object; an empty answer is
-- a list with nothing in it (cjson cannot tell an empty list from an empty object).
function M.json(value)
  if value == nil or next(value) == nil then return "[]" end
  return cjson.encode(value)
end

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
