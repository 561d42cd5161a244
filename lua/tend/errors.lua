-- errors: the two kinds of failure the CLI turns into exit codes.
-- usage(...) for bad input (exit 2), fail(...) for a job that failed (exit 1); other
-- codes (3 differences, 4 locked) through raise(code, ...). Messages are one line.
local M = {}

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.msg end

-- new(code, msg) -> a failure, to raise later (error(e, 0)).
function M.new(code, msg) return setmetatable({ msg = msg, code = code }, Error) end

function M.raise(code, fmt, ...)
  error(M.new(code, select("#", ...) > 0 and fmt:format(...) or fmt), 2)
end

function M.usage(fmt, ...) M.raise(2, fmt, ...) end
function M.fail(fmt, ...) M.raise(1, fmt, ...) end

function M.is(e) return getmetatable(e) == Error end

-- message(e) -> the text of an error caught by pcall: ours, or anything else.
function M.message(e) return M.is(e) and e.msg or tostring(e) end

-- within(e, label) -> a failure like e (its exit code kept) whose message says where it
-- happened: "label: message". A message that already starts with label is left alone.
function M.within(e, label)
  local msg = M.message(e)
  if msg:sub(1, #label + 2) ~= label .. ": " then msg = label .. ": " .. msg end
  return M.new(M.is(e) and e.code or 1, msg)
end

-- check(v, msg, ...): v, or raise a job failure with msg (the nil, msg, code convention).
function M.check(v, msg, ...)
  if v == nil or v == false then M.raise(1, "%s", tostring(msg)) end
  return v, msg, ...
end

return M
