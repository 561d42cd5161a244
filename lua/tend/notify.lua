-- notify: e-mail alerts. Settings live in the catalog's meta (mail.url, mail.from,
-- mail.user, mail.tls); the SMTP password, when the server wants one, is the vault
-- secret tend.mail.password. core.mail sends; this module writes the message.
local core = require "tend.core"
local errors = require "tend.errors"

local M = {}

M.PASSWORD = "tend.mail.password"
M.KEYS = { "url", "from", "user", "tls" }

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a << 16 | (b or 0) << 8 | (c or 0)
    local keep = c and 4 or b and 3 or 2
    for k = 1, 4 do
      local v = n >> (6 * (4 - k)) & 63
      out[#out + 1] = k <= keep and B64:sub(v + 1, v + 1) or "="
    end
  end
  return table.concat(out)
end

-- A header value: as it is when plain ASCII, else RFC 2047 encoded.
local function header_text(s)
  s = s:gsub("[\r\n]+", " ")
  if not s:find("[\128-\255]") then return s end
  return "=?UTF-8?B?" .. base64(s) .. "?="
end

-- settings(ctx) -> {url, from, user, tls, password} | nil, why
function M.settings(ctx)
  local catalog = ctx:catalog()
  local s = {}
  for _, k in ipairs(M.KEYS) do s[k] = catalog:meta("mail." .. k) end
  if not s.url or not s.from then
    return nil, "mail is not set up (tend mail config --url smtp://HOST:PORT --from ADDRESS)"
  end
  if s.user then s.password = ctx:vault():get(M.PASSWORD) end
  return s
end

-- message(from, to, subject, body) -> the RFC 5322 text, CRLF line ends.
function M.message(from, to, subject, body)
  local f = io.open("/etc/hostname")
  local host = f and f:read("l") or "localhost"
  if f then f:close() end
  local lines = {
    "From: " .. from,
    "To: " .. table.concat(to, ", "),
    "Subject: " .. header_text(subject),
    "Date: " .. os.date("!%a, %d %b %Y %H:%M:%S +0000"),
    ("Message-ID: <%d.%d@%s>"):format(os.time(), math.random(1, 1 << 30), host),
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "Auto-Submitted: auto-generated",
    "",
  }
  -- a line of a lone "." would end the SMTP data early: libcurl escapes it, we only fix ends
  body = body:gsub("\r?\n", "\r\n")
  return table.concat(lines, "\r\n") .. "\r\n" .. body .. (body:sub(-2) == "\r\n" and "" or "\r\n")
end

-- send(ctx, to, subject, body) -> true | nil, msg, code.  to: an address or a list.
function M.send(ctx, to, subject, body)
  if type(to) == "string" then to = { to } end
  local s, why = M.settings(ctx)
  if not s then return nil, why, "config" end
  return core.mail.send({ url = s.url, from = s.from, to = to, user = s.user, password = s.password,
    tls = s.tls, message = M.message(s.from, to, subject, body) })
end

-- post(url, data) -> true | nil, msg, code: data as JSON to a webhook; any 2xx answer is
-- taken, anything else is a failure naming the status.
function M.post(url, data)
  local r, msg, code = core.http.request({ url = url, method = "POST", body = require("tend.output").json(data),
    headers = { "Content-Type: application/json" }, timeout = 30, max_body = 4096 })
  if not r then return nil, msg, code end
  if r.status < 200 or r.status > 299 then return nil, ("webhook %s answered %d"):format(url, r.status), "http" end
  return true
end

-- check_address(a): a usage error unless it looks like an address.
function M.check_address(a)
  if type(a) ~= "string" or not a:match("^[^@%s<>,]+@[^@%s<>,]+$") then
    errors.usage("bad e-mail address %q", tostring(a))
  end
  return a
end

return M
