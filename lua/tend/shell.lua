-- shell: build remote command lines from argv lists. Every remote command tend runs
-- goes through here, so a file name with spaces, quotes, newlines, $(...), backticks or
-- a leading dash is one argument on the far side and never code.
local M = {}

-- quote(s) -> s as one POSIX shell word.
function M.quote(s)
  s = tostring(s)
  if s ~= "" and s:match("^[%w@%%+=:,./_-]+$") and s:sub(1, 1) ~= "-" then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- join(argv) -> a command line that runs argv as it is.
function M.join(argv)
  local words = {}
  for i, a in ipairs(argv) do words[i] = M.quote(a) end
  return table.concat(words, " ")
end

-- printf_line(s) -> s as one line that a POSIX printf takes as its format and prints
-- back as it was (letters and digits kept, every other byte \ooo); secret:printf_line()
-- does the same in guarded memory.
function M.printf_line(s)
  return (s:gsub("[^%w]", function(c) return ("\\%03o"):format(c:byte()) end)) .. "\n"
end

-- script(argv, opts) -> a POSIX sh script that runs argv in opts.cwd with opts.env
-- added. With opts.fd3, argv's fd 3 is a pipe that holds what the first line of stdin
-- says (a printf_line): the line is read into a variable of the shell, printf writes it
-- into the pipe, and argv gets the rest of stdin. No file holds it at any moment, so
-- nothing is left behind whatever is killed when, and it is never in an argv or the
-- environment (printf is a builtin of every sh that matters: dash, bash, ksh, busybox).
function M.script(argv, opts)
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd -- " .. M.quote(opts.cwd) .. " || exit 126" end
  local env = {}
  for k, v in pairs(opts.env or {}) do
    if v ~= false then env[#env + 1] = M.quote(k .. "=" .. v) end
  end
  table.sort(env)
  local run = #env > 0 and ("exec env " .. table.concat(env, " ") .. " ") or "exec "
  parts[#parts + 1] = run .. M.join(argv)
  if not opts.fd3 then return table.concat(parts, "\n") end
  return "exec 4<&0\nIFS= read -r tend_fd3 || exit 125\n"
    .. 'printf "$tend_fd3" | { exec 3<&0 0<&4 4<&-\n' .. table.concat(parts, "\n") .. "\n}"
end

return M
