-- tap.lua: TAP for Lua test scripts run by stock lua5.4 (binding tests).
local M = { n = 0, failed = 0 }

function M.ok(cond, desc, diag)
  M.n = M.n + 1
  print((cond and "ok " or "not ok ") .. M.n .. " - " .. desc)
  if not cond then
    M.failed = M.failed + 1
    if diag then print("#   " .. tostring(diag):gsub("\n", "\n#   ")) end
  end
  return cond
end

function M.is(got, expected, desc)
  return M.ok(got == expected, desc, ("got:      %s\nexpected: %s"):format(tostring(got), tostring(expected)))
end

function M.like(got, pattern, desc)
  return M.ok(type(got) == "string" and got:find(pattern) ~= nil, desc,
    ("got:      %s\nexpected to match: %s"):format(tostring(got), pattern))
end

function M.done()
  print("1.." .. M.n)
  os.exit(M.failed == 0 and 0 or 1)
end

return M
