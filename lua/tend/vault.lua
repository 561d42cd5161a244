-- vault: named secrets sealed with the master key and kept in the catalog.
-- The master key comes from, in order: TEND_VAULT_KEY_FILE; a passphrase
-- (TEND_VAULT_PASSPHRASE, or a hidden prompt) through Argon2id when the vault was set up
-- with one; else $TEND_HOME/vault.key, created 0600 on first use. A check value sealed
-- with the key tells a wrong key from a damaged secret.
local core = require "tend.core"
local errors = require "tend.errors"
local cv, fs = core.vault, core.fs

local Vault = {}
Vault.__index = Vault

local CHECK = "tend vault check"

-- The object store's key (tend store encrypt), kept here like any secret.
Vault.STORE_KEY = "tend.store.key"

local function key_from_passphrase(catalog)
  local salt_hex = catalog:meta("vault.salt")
  local pass = os.getenv("TEND_VAULT_PASSPHRASE")
  if pass then
    pass = cv.secret(pass)
  elseif fs.isatty(0) then
    pass = errors.check(cv.read_secret("Vault passphrase: "))
  else
    errors.fail("the vault is protected by a passphrase: set TEND_VAULT_PASSPHRASE "
      .. "or run on a terminal")
  end
  local salt = salt_hex and (salt_hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
  if not salt then
    salt = cv.new_salt()
    catalog:meta("vault.salt", (salt:gsub(".", function(c) return ("%02x"):format(c:byte()) end)))
  end
  local key = errors.check(cv.derive_key(pass, salt))
  pass:wipe()
  return key, "passphrase"
end

local function master_key(home, catalog)
  local file = os.getenv("TEND_VAULT_KEY_FILE")
  if file and file ~= "" then
    return errors.check(cv.load_key(file)), "key file " .. file
  end
  if os.getenv("TEND_VAULT_PASSPHRASE") or catalog:meta("vault.kdf") == "argon2id" then
    return key_from_passphrase(catalog)
  end
  file = home .. "/vault.key"
  if not fs.stat(file) then
    errors.check(cv.new_key():save(file))
  end
  return errors.check(cv.load_key(file)), "key file " .. file
end

-- open(home, catalog) -> Vault.  The key is only loaded when a secret is touched.
function Vault.open(home, catalog)
  return setmetatable({ home = home, catalog = catalog }, Vault)
end

function Vault:key()
  if self._key then return self._key end
  local key, source = master_key(self.home, self.catalog)
  local check = self.catalog:meta("vault.check")
  if check then
    local ok = key:open(check, "vault.check")
    if not ok then
      key:close()
      errors.fail("wrong vault key (from %s): it does not open this vault", source)
    end
  else -- a new vault: remember how its key is made
    self.catalog:meta("vault.check", key:seal(CHECK, "vault.check"))
    if source == "passphrase" then self.catalog:meta("vault.kdf", "argon2id") end
  end
  self._key = key
  return key
end

local function check_name(name)
  if type(name) ~= "string" or not name:match("^[%w][%w._@:-]*$") or #name > 200 then
    errors.usage("bad secret name %q: use letters, digits and . _ - @ :", tostring(name))
  end
end

-- set(name, value): value a string or a secret (from core.vault.read_secret).
function Vault:set(name, value)
  check_name(name)
  local sealed = self:key():seal(value, name)
  local now = os.time()
  self.catalog:run("INSERT INTO secrets(name, value, created_at, updated_at) VALUES (?, ?, ?, ?) "
    .. "ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    name, sealed, now, now)
end

-- set_password(name, n) -> the secret: a new random password of n characters kept as name.
function Vault:set_password(name, n)
  self:set(name, core.vault.random_secret(n, "password"))
  return assert(self:get(name))
end

-- get(name) -> secret (guarded memory; :reveal() for the plaintext) | nil, msg, code
function Vault:get(name)
  check_name(name)
  local row = self.catalog:first("SELECT value FROM secrets WHERE name = ?", name)
  if not row then return nil, ("no secret named %s (tend secret set %s)"):format(name, name), "enoent" end
  return self:key():open(row.value, name)
end

function Vault:list()
  return self.catalog:query("SELECT name, created_at, updated_at FROM secrets ORDER BY name")
end

function Vault:rm(name)
  check_name(name)
  if name == Vault.STORE_KEY then
    errors.usage("%s is the encrypted store's key: without it no backup can be read", name)
  end
  local n = self.catalog:run("DELETE FROM secrets WHERE name = ?", name)
  if n == 0 then errors.usage("no secret named %s", name) end
end

function Vault:close()
  if self._key then self._key:close() end
  self._key = nil
end

return Vault
