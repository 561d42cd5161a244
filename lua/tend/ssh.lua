-- ssh: sessions to remote hosts, one per host per run, with the host key verified and
-- the user authenticated. The policy lives here; tend.core.ssh is the mechanism.
--   Host keys: $TEND_HOME/known_hosts, then ~/.ssh/known_hosts. Unknown keys are refused
--   (with the fingerprint and the command that trusts it) unless trust = true; a changed
--   key is always refused.
--   Auth, in order: the instance's --ssh-key (passphrase from the vault), its
--   --ssh-password-secret, ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
local core = require "tend.core"
local fs = core.fs

local M = {}

local pool = {}

-- Seconds to wait for connect, handshake and login (TEND_SSH_TIMEOUT, default 10).
function M.timeout()
  return tonumber(os.getenv("TEND_SSH_TIMEOUT") or "") or 10
end

-- Seconds a stream may move no data before it fails (TEND_SSH_IDLE_TIMEOUT, default 300).
function M.idle_timeout()
  return tonumber(os.getenv("TEND_SSH_IDLE_TIMEOUT") or "") or 300
end

function M.known_hosts_files(home)
  local files = { home .. "/known_hosts" }
  local user_home = os.getenv("HOME")
  if user_home and user_home ~= "" then files[#files + 1] = user_home .. "/.ssh/known_hosts" end
  return files
end

local function host_pattern(h)
  return h.port == 22 and not h.host:find(":") and h.host or ("[%s]:%d"):format(h.host, h.port)
end

-- trust(s, h, home): add the session's host key to $TEND_HOME/known_hosts.
local function trust(s, h, home)
  local key = s:hostkey()
  local file = home .. "/known_hosts"
  local old = fs.read(file) or ""
  local line = ("%s %s %s\n"):format(host_pattern(h), key.type, key.key)
  local ok, msg, code = fs.write_atomic(file, old .. line, 384)
  if not ok then return nil, msg, code end
  return key
end

local function verify(s, h, opts)
  local verdict = opts.verdict or assert(s:check_hostkey(M.known_hosts_files(opts.home)))
  if verdict == "match" then return true end
  local key = opts.key or s:hostkey()
  local where = ("%s:%d"):format(h.host, h.port)
  if verdict == "mismatch" then
    return nil, ("ssh %s: HOST KEY CHANGED: the server now shows %s key %s, which does not match "
      .. "known_hosts; this can be an attack. If the server was reinstalled, remove the old key "
      .. "(ssh-keygen -R '%s' -f FILE) and run: tend host trust %s"):format(
        where, key.type, key.fingerprint, host_pattern(h), opts.name or h.spec), "hostkey-changed"
  end
  if opts.trust then return trust(s, h, opts.home) end
  return nil, ("ssh %s: unknown host key %s %s; if that is the server's key, run: tend host trust %s")
    :format(where, key.type, key.fingerprint, opts.name or h.spec), "hostkey-unknown"
end

local function authenticate(s, h, opts)
  local user = h.user or os.getenv("USER") or "root"
  local tried = {}
  if opts.key_file then
    -- libssh2 calls a missing file "Unable to extract public key from private key file"
    local st, why = fs.stat(opts.key_file)
    if not st or st.type ~= "file" then
      return nil, ("ssh %s: the key file %s (--ssh-key) %s"):format(h.spec, opts.key_file,
        st and "is not a file" or ("cannot be read: " .. tostring(why))), "auth"
    end
    local ok, msg = s:auth_key(user, opts.key_file, opts.key_passphrase)
    if ok then return true end
    tried[#tried + 1] = msg
  end
  if opts.password then
    local ok, msg = s:auth_password(user, opts.password)
    if ok then return true end
    tried[#tried + 1] = msg
  end
  if os.getenv("SSH_AUTH_SOCK") then
    if s:auth_agent(user) then return true end
    tried[#tried + 1] = "ssh-agent"
  end
  if not opts.key_file and not opts.password then
    local home = os.getenv("HOME") or ""
    for _, name in ipairs({ "id_ed25519", "id_ecdsa", "id_rsa" }) do
      local file = home .. "/.ssh/" .. name
      if fs.stat(file) and s:auth_key(user, file) then return true end
    end
  end
  local last = tried[#tried]
  if last and last:match("^ssh ") then
    return nil, last .. " (user " .. user .. ")", "auth"
  end
  return nil, ("ssh %s:%d: no way to log in as %s was accepted (give --ssh-key, "
    .. "--ssh-password-secret, or load a key into ssh-agent)"):format(h.host, h.port, user), "auth"
end

-- trust_host(h, home) -> {type, fingerprint, added} | nil, msg: connect (no login) and
-- add the host's key to $TEND_HOME/known_hosts unless it is already known. A changed key
-- is refused here too: the old line must be removed on purpose.
function M.trust_host(h, home)
  local s, msg, code = core.ssh.connect(h.host, h.port, M.timeout())
  if not s then return nil, msg, code end
  local verdict = assert(s:check_hostkey(M.known_hosts_files(home)))
  local key = s:hostkey()
  if verdict == "mismatch" then
    s:close()
    return verify(nil, h, { home = home, verdict = "mismatch", key = key })
  end
  local added = verdict == "notfound"
  if added then
    local ok, tmsg, tcode = trust(s, h, home)
    if not ok then s:close(); return nil, tmsg, tcode end
  end
  s:close()
  return { type = key.type, fingerprint = key.fingerprint, added = added }
end

-- session(h, opts) -> session | nil, msg, code.  h from transport.parse; opts: home, name,
-- key_file, key_passphrase (secret), password (secret), timeout, trust, fresh.
function M.session(h, opts)
  local id = ("%s@%s:%d"):format(h.user or "", h.host, h.port)
  if pool[id] and not opts.fresh then return pool[id] end
  local s, msg, code = core.ssh.connect(h.host, h.port, opts.timeout or M.timeout(), M.idle_timeout())
  if not s then return nil, msg, code end
  local ok
  ok, msg, code = verify(s, h, opts)
  if ok then ok, msg, code = authenticate(s, h, opts) end
  if not ok then
    s:close()
    return nil, msg, code
  end
  pool[id] = s
  return s
end

-- close_all(): end every pooled session (at the end of a run).
function M.close_all()
  for id, s in pairs(pool) do
    s:close()
    pool[id] = nil
  end
end

return M
