-- web: the show server's page (tend show serve): log in, see the show instances, ask for
-- one of a version (its job's progress, then its URL and password), extend or destroy
-- your own. Plain HTML forms, no JavaScript. Nothing is served without a session; every
-- form that changes something carries the session's CSRF token and must come from our
-- own origin. A create runs as a tend of its own in the background (the server never
-- waits on one); its log and its result file are what the job page shows.
local core = require "tend.core"
local cjson = require "cjson"
local show = require "tend.show"
local shell = require "tend.shell"

local M = {}

local SESSION_TTL = 8 * 3600

local function esc(s)
  return (tostring(s or ""):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function token() return (core.hash.sha256(core.vault.random_secret(32):reveal())) end

-- form(body) -> {name = value}: an application/x-www-form-urlencoded body.
function M.form(body)
  local out = {}
  for pair in (body or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    local function dec(s) return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
    out[dec(k)] = dec(v)
  end
  return out
end

local HEADERS = {
  ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store", ["X-Frame-Options"] = "DENY",
  ["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
  ["Referrer-Policy"] = "no-referrer", ["X-Content-Type-Options"] = "nosniff",
}

local function page(title, body, extra_head, status)
  return { status = status or 200, headers = HEADERS, body = ([[<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>%s
<style>body{font:15px sans-serif;margin:2em;max-width:70em} table{border-collapse:collapse}
td,th{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left} .err{color:#a00} pre{background:#f4f4f4;padding:1em}</style>
</head><body><h1>%s</h1>
%s</body></html>
]]):format(esc(title), extra_head or "", esc(title), body) }
end

local function redirect(to, cookie)
  local h = { Location = to, ["Cache-Control"] = "no-store" }
  if cookie then h["Set-Cookie"] = cookie end
  return { status = 303, headers = h, body = "" }
end

-- new(ctx, opts) -> app: the page's state (sessions, jobs) and its handler.
function M.new(ctx)
  local app = { ctx = ctx, sessions = {}, jobs = {}, dir = ctx.home .. "/show-jobs" }
  core.fs.mkdir_p(app.dir, 448)
  return setmetatable(app, { __index = M })
end

function M:session(req)
  local tok = (req.headers.cookie or ""):match("tend_show=(%x+)")
  local s = tok and self.sessions[tok]
  if s and s.expires > os.time() then return s, tok end
  if tok then self.sessions[tok] = nil end
end

-- a POST that changes something: our session, its CSRF token, our own origin.
function M:checked(req, s)
  local f = M.form(req.body)
  local origin = req.headers.origin
  if origin and origin ~= "null" and origin:gsub("^https?://", "") ~= req.headers.host then return nil end
  if not s or f.csrf ~= s.csrf then return nil end
  return f
end

local function forbidden()
  return page("Refused", '<p class="err">This form is not valid any more (or was not ours). <a href="/">Back</a></p>', nil, 403)
end

function M:login_page(msg)
  return page("tend show: log in", (msg and ('<p class="err">' .. esc(msg) .. "</p>") or "") .. [[
<form method="post" action="/login">
<p><label>E-mail <input name="email" type="email" required autofocus></label></p>
<p><label>Password <input name="password" type="password" required></label></p>
<p><button type="submit">Log in</button></p></form>]], nil, msg and 401 or 200)
end

function M:login(req)
  local f = M.form(req.body)
  local hash = f.email and self.ctx:catalog():meta("show.user." .. f.email)
  if not hash or not core.vault.password_verify(hash, f.password or "") then
    return self:login_page("Wrong e-mail or password.")
  end
  local tok = token()
  self.sessions[tok] = { email = f.email, csrf = token(), expires = os.time() + SESSION_TTL }
  return redirect("/", ("tend_show=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d"):format(tok, SESSION_TTL))
end

-- versions(cfg) -> {name, ...}: the repository's tags, newest first, then its branches (asked
-- at most once a minute).
function M:versions(cfg)
  if self.vcache and self.vcache.at > os.time() - 60 then return self.vcache.list end
  local list = {}
  if cfg.repo then
    local r = show.host(self.ctx, cfg):exec({ "git", "ls-remote", "--tags", "--heads", "--refs", cfg.repo }, { timeout = 60 })
    local tags, heads = {}, {}
    for kind, ref in ((r and r.code == 0 and r.stdout or "") .. "\n"):gmatch("%x+%s+refs/(%a+)/([^\n]+)\n") do
      table.insert(kind == "tags" and tags or heads, ref)
    end
    table.sort(tags, function(a, b) return require("tend.vcs").newer(a, b) end) -- newest first
    table.sort(heads)
    table.move(heads, 1, #heads, #tags + 1, tags)
    list = tags
  end
  self.vcache = { at = os.time(), list = list }
  return list
end

function M:home(s)
  local cfg = show.config(self.ctx)
  local rows = {}
  for _, i in ipairs(show.list(self.ctx)) do
    local mine = i.owner == s.email
    local actions = mine and (([[<form method="post" action="/extend"><input type="hidden" name="csrf" value="%s"><input type="hidden" name="name" value="%s"><button>Extend</button></form>
<form method="post" action="/destroy"><input type="hidden" name="csrf" value="%s"><input type="hidden" name="name" value="%s"><button>Destroy</button></form>]])
      :format(esc(s.csrf), esc(i.name), esc(s.csrf), esc(i.name))) or ""
    rows[#rows + 1] = ('<tr><td>%s</td><td>%s</td><td>%s</td><td><a href="%s">%s</a></td><td>%s</td><td>%s</td></tr>'):format(
      esc(i.name), esc(i.version), esc(i.owner), esc(i.url), esc(i.url), os.date("!%Y-%m-%d %H:%M", i.expires), actions)
  end
  local opts = {}
  for _, v in ipairs(self:versions(cfg)) do opts[#opts + 1] = ('<option value="%s">%s</option>'):format(esc(v), esc(v)) end
  return page("tend show", ([[<div>Logged in as %s. <form method="post" action="/logout" style="display:inline"><input type="hidden" name="csrf" value="%s"><button>Log out</button></form></div>
<h2>Show instances</h2>
<table id="instances"><tr><th>Name</th><th>Version</th><th>Owner</th><th>URL</th><th>Expires (UTC)</th><th></th></tr>
%s</table>
<h2>A new one</h2>
<form method="post" action="/create"><input type="hidden" name="csrf" value="%s">
<p><label>Version <select name="version">%s</select></label> or a commit <input name="commit" size="12" pattern="[0-9a-fA-F]{7,40}"></p>
<p><button type="submit">Create</button></p></form>]]):format(esc(s.email), esc(s.csrf),
    #rows > 0 and table.concat(rows, "\n") or '<tr><td colspan="6">none</td></tr>', esc(s.csrf), table.concat(opts)))
end

-- create: `tend show create` started in the background, its log and result in app.dir.
function M:create(s, f)
  local version = (f.commit or "") ~= "" and f.commit or f.version
  if not version or not version:match("^[%w._/-]+$") or version:match("^%-") then
    return page("Refused", '<p class="err">Pick a version.</p><p><a href="/">Back</a></p>', nil, 400)
  end
  local id = token():sub(1, 16)
  local log, result = self.dir .. "/" .. id .. ".log", self.dir .. "/" .. id .. ".result"
  local argv = { core.exe or "tend", "--home", self.ctx.home, "show", "create", "--version", version, "--for", s.email }
  -- sh backgrounds it and exits at once: the server never waits on it, init reaps it
  core.proc.run({ "sh", "-c", ('%s >%s 2>&1 </dev/null &'):format(shell.join(argv), shell.quote(log)) },
    { env = { TEND_RESULT_FILE = result, TEND_LUA_DIR = core.lua_dir or false }, timeout = 10 })
  self.jobs[id] = { owner = s.email, version = version, log = log, result = result }
  return redirect("/job/" .. id)
end

function M:job(s, id)
  local j = self.jobs[id]
  if not j or j.owner ~= s.email then return page("Not found", "<p>No such job. <a href=\"/\">Back</a></p>", nil, 404) end
  local text = core.fs.read(j.result)
  local log = core.fs.read(j.log) or ""
  if not text then
    return page("Creating " .. j.version, ('<p>Working on it&hellip;</p><pre id="log">%s</pre>'):format(esc(log)),
      '<meta http-equiv="refresh" content="2">')
  end
  local ok, done = pcall(cjson.decode, text)
  local r = ok and type(done.result) == "table" and done.result
  if not r or done.code ~= 0 then
    return page("It failed", ('<p class="err" id="error">%s</p><pre>%s</pre><p><a href="/">Back</a></p>'):format(
      esc(ok and done.error or "the job ended without a word"), esc(log)))
  end
  local pw = r.password_secret and self.ctx:vault():get(r.password_secret)
  return page("Ready", ([[<p>%s (version %s) is at <a id="url" href="%s">%s</a> until %s UTC.</p>
%s<p><a href="/">Back to the list</a></p>]]):format(esc(r.instance), esc(r.version), esc(r.url), esc(r.url),
    os.date("!%Y-%m-%d %H:%M", r.expires), pw and ('<p>Admin password: <code id="password">%s</code></p>'):format(esc(pw:reveal())) or ""))
end

-- own(s, name) -> the show instance of that name when it is s's.
function M:own(s, name)
  for _, i in ipairs(show.list(self.ctx, s.email)) do if i.name == name then return self.ctx:instance(name) end end
end

-- handle(req) -> response: every request, through the session check.
function M:handle(req)
  local path, method = req.path, req.method
  if path == "/login" then
    if method == "POST" then return self:login(req) end
    return self:login_page()
  end
  local s, tok = self:session(req)
  if not s then return method == "GET" and redirect("/login") or forbidden() end
  if method == "GET" and path == "/" then return self:home(s) end
  if method == "GET" and path:match("^/job/%x+$") then return self:job(s, path:match("%x+$")) end
  if method ~= "POST" then return page("Not found", "<p>Nothing here. <a href=\"/\">Back</a></p>", nil, 404) end
  local f = self:checked(req, s)
  if not f then return forbidden() end
  if path == "/logout" then
    self.sessions[tok] = nil
    return redirect("/login", "tend_show=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
  end
  if path == "/create" then return self:create(s, f) end
  local inst = self:own(s, f.name)
  if not inst then return page("Refused", '<p class="err">That is not one of yours.</p><p><a href="/">Back</a></p>', nil, 403) end
  local cfg = show.config(self.ctx)
  if path == "/extend" then show.extend(self.ctx, inst, os.time() + cfg.expires) end
  if path == "/destroy" then show.remove(self.ctx, cfg, inst) end
  return redirect("/")
end

-- serve(ctx, addr, port, say): the page until the process is stopped.
function M.serve(ctx, addr, port, say)
  local srv = assert(core.httpd.listen(addr, port))
  local app = M.new(ctx)
  say("show server at http://%s:%d/", addr, srv:port())
  io.stderr:flush()
  local function handler(req) return app:handle(req) end
  while true do srv:run(handler, 1) end
end

return M
