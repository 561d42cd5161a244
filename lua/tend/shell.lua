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

-- script(argv, opts) -> a POSIX sh script that runs argv in opts.cwd with opts.env
-- added; with fd3_len, the first fd3_len bytes of stdin become fd 3 (through a 0600
-- temp file that is removed before argv starts).
function M.script(argv, opts)
  local parts = {}
  if opts.fd3_len then
    parts[#parts + 1] = ("umask 077 && f=$(mktemp) && { dd bs=1 count=%d of=\"$f\" 2>/dev/null"
      .. " && exec 3<\"$f\"; } ; s=$?; rm -f -- \"$f\"; [ $s -eq 0 ] || exit 125"):format(opts.fd3_len)
  end
  if opts.cwd then parts[#parts + 1] = "cd -- " .. M.quote(opts.cwd) .. " || exit 126" end
  local env = {}
  for k, v in pairs(opts.env or {}) do
    if v ~= false then env[#env + 1] = M.quote(k .. "=" .. v) end
  end
  table.sort(env)
  local run = #env > 0 and ("exec env " .. table.concat(env, " ") .. " ") or "exec "
  parts[#parts + 1] = run .. M.join(argv)
  return table.concat(parts, "\n")
end

return M
