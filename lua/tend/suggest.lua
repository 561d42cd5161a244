-- suggest: "did you mean": the known name closest to a mistyped one.
local M = {}

-- distance(a, b) -> the edits (insert, delete, change, swap of neighbours) from a to b
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
      end
    end
  end
  return d[#a][#b]
end

-- closest(word, names) -> the name nearest word when it is near enough (a third of its
-- letters, at least one), else nil. Ties go to the first in names.
function M.closest(word, names)
  local best, best_d = nil, math.max(1, #word // 3) + 1
  for _, name in ipairs(names) do
    local d = distance(word, name)
    if d < best_d then best, best_d = name, d end
  end
  return best
end

-- hint(word, names) -> "; did you mean NAME?" or "".
function M.hint(word, names)
  local name = M.closest(word, names)
  return name and ("; did you mean %s?"):format(name) or ""
end

return M
