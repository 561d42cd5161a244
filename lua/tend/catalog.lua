-- catalog: tend's own state in $TEND_HOME/catalog.db (SQLite, WAL, file 0600).
-- The schema grows by appending to `migrations`; PRAGMA user_version says how many
-- have been applied. Never edit a migration that has shipped: add a new one.
local core = require "tend.core"
local errors = require "tend.errors"
local fs = core.fs

local migrations = {
  [[
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    app TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT 'local',
    path TEXT NOT NULL,
    url TEXT,
    db TEXT,
    db_password_secret TEXT,
    ssh_key TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE instance_tags (
    instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (instance_id, key)
  );
  CREATE TABLE relations (
    instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('dev-of', 'mirror-of', 'pre-dogfood-of', 'template-of')),
    source_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    lag INTEGER,
    PRIMARY KEY (instance_id, kind)
  );
  CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  ]],
  [[
  ALTER TABLE instances ADD COLUMN ssh_password_secret TEXT;
  ALTER TABLE instances ADD COLUMN ssh_key_passphrase_secret TEXT;
  ]],
  [[
  CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- ids are never reused: `restore NAME 42` means one thing
    instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    app TEXT,
    version TEXT,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sent_bytes INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL,
    db_driver TEXT,
    db_object TEXT,
    db_bytes INTEGER,
    consistent INTEGER NOT NULL DEFAULT 1,
    note TEXT
  );
  CREATE INDEX snapshots_by_instance ON snapshots(instance_id, started_at);
  CREATE TABLE snapshot_files (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    mode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    sha256 TEXT,
    link TEXT,
    PRIMARY KEY (snapshot_id, path)
  ) WITHOUT ROWID;
  ]],
  -- Manifests stand apart from snapshots so that an unchanged tree's next snapshot
  -- shares its manifest (one row) instead of copying it (a row per path). `listing` is
  -- the digest of the host's listing it was built from; the view keeps the old shape.
  [[
  CREATE TABLE manifests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    listing TEXT
  );
  CREATE TABLE manifest_files (
    manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    mode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    sha256 TEXT,
    link TEXT,
    PRIMARY KEY (manifest_id, path)
  ) WITHOUT ROWID;
  ALTER TABLE snapshots ADD COLUMN manifest_id INTEGER REFERENCES manifests(id);
  CREATE INDEX snapshots_by_manifest ON snapshots(manifest_id);
  INSERT INTO manifests(id) SELECT id FROM snapshots;
  UPDATE snapshots SET manifest_id = id;
  INSERT INTO manifest_files SELECT * FROM snapshot_files;
  DROP TABLE snapshot_files;
  CREATE VIEW snapshot_files AS
    SELECT s.id AS snapshot_id, f.path, f.type, f.mode, f.size, f.mtime, f.sha256, f.link
    FROM snapshots s JOIN manifest_files f ON f.manifest_id = s.manifest_id;
  -- The last snapshot to let go of a manifest takes it along (cascades fire this too).
  CREATE TRIGGER snapshots_release_manifest AFTER DELETE ON snapshots
  WHEN NOT EXISTS (SELECT 1 FROM snapshots WHERE manifest_id = OLD.manifest_id)
  BEGIN
    DELETE FROM manifests WHERE id = OLD.manifest_id;
  END;
  ALTER TABLE instances ADD COLUMN exclude TEXT;
  ]],
  [[
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    cron TEXT NOT NULL,
    argv TEXT NOT NULL,               -- JSON: the recipe and its arguments
    mail_to TEXT,                     -- addresses, comma-separated
    mail_on_success INTEGER NOT NULL DEFAULT 0,
    webhook TEXT,
    timeout INTEGER NOT NULL,         -- seconds
    created_at INTEGER NOT NULL
  );
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,                -- by name: the history outlives the job
    instance TEXT,                    -- the instances the run was about, comma-separated
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    exit_code INTEGER,
    error TEXT,                       -- the one-line cause
    log TEXT,
    alert TEXT                        -- what became of the alert: sent to ..., or why not
  );
  CREATE INDEX runs_by_job ON runs(job, id);
  ]],
  [[
  CREATE TABLE copies (                 -- what each copy (clone, mirror) holds now
    instance_id INTEGER PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
    source_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    snapshot_id INTEGER NOT NULL,       -- the source's; no foreign key: forget may drop it
    kind TEXT NOT NULL,                 -- copy (files and database) | data (migrate-data)
    at INTEGER NOT NULL
  );
  ]],
  [[
  ALTER TABLE instances ADD COLUMN contact TEXT;        -- who hears of watch findings
  ALTER TABLE instances ADD COLUMN watch_paths TEXT;    -- absolute paths outside the web root, one a line
  ALTER TABLE instances ADD COLUMN watch_ignore TEXT;   -- patterns watch leaves out, one a line
  CREATE TABLE watch_files (                            -- the accepted baseline
    instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    path TEXT NOT NULL,                                 -- from the web root, or absolute outside it
    type TEXT NOT NULL,
    mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER,
    sha256 TEXT,
    link TEXT,
    PRIMARY KEY (instance_id, path)
  );
  ]],
  [[
  ALTER TABLE instances ADD COLUMN migrate TEXT;        -- the app's database migration command, run in its web root
  ALTER TABLE instances ADD COLUMN releases TEXT;       -- where release tarballs and their SHA256SUMS are
  ALTER TABLE snapshots ADD COLUMN listed_at REAL;      -- the host's clock when the listing began (ctime checks)
  ]],
  [[
  ALTER TABLE manifest_files ADD COLUMN hardlink TEXT;  -- another name of this path's file: the path that holds it
  ALTER TABLE manifest_files ADD COLUMN mtime_ns INTEGER; -- mtime to the nanosecond, where it was known
  ALTER TABLE snapshots ADD COLUMN root_mode INTEGER;   -- the web root's own mode
  ALTER TABLE snapshots ADD COLUMN root_mtime_ns INTEGER; -- and mtime
  ]],
  [[
  ALTER TABLE manifest_files ADD COLUMN uid INTEGER;    -- owner and group, as numbers
  ALTER TABLE manifest_files ADD COLUMN gid INTEGER;
  ALTER TABLE manifest_files ADD COLUMN sparse TEXT;    -- a sparse file's data regions: OFFSET+LENGTH,...
  ALTER TABLE manifest_files ADD COLUMN rdev TEXT;      -- a device node's number: char|block MAJOR,MINOR
  ALTER TABLE snapshots ADD COLUMN root_uid INTEGER;    -- the web root's own owner
  ALTER TABLE snapshots ADD COLUMN root_gid INTEGER;
  ]],
  [[
  ALTER TABLE instances ADD COLUMN data_dirs TEXT;      -- declared data folders (from the web root), one a line
  ]],
  [[
  ALTER TABLE instances ADD COLUMN config_files TEXT;   -- declared config files (from the web root), one a line
  ]],
  [[
  ALTER TABLE instances ADD COLUMN version_file TEXT;   -- where its version is written (from the web root)
  ALTER TABLE instances ADD COLUMN version_pattern TEXT; -- and how (a Lua pattern with one capture)
  ]],
  [[
  CREATE TABLE patches (                -- fixes kept on an instance's code (tend patch)
    id INTEGER PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    name TEXT NOT NULL,                 -- the file's name, as the source gave it
    source TEXT NOT NULL,               -- the file or URL it came from
    body TEXT NOT NULL,                 -- the diff itself: the source may go away
    added_at INTEGER NOT NULL
  );
  ]],
  [[
  CREATE TABLE offsite_files (          -- what the store's off-site copy holds (tend.offsite)
    name TEXT PRIMARY KEY,              -- its key under the copy's prefix: packs/X.pack, objects/ab/..., manifests/7
    size INTEGER NOT NULL,              -- bytes sent
    sha256 TEXT                         -- of the plaintext, for records rewritten in place (vault)
  );
  ]],
  [[
  ALTER TABLE snapshots ADD COLUMN db_signal TEXT; -- how the server described the database's tables (tend.backup's look)
  ]],
}

local Catalog = {}
Catalog.__index = Catalog

local function migrate(db, path)
  local version = errors.check(db:query("PRAGMA user_version"))[1].user_version
  if version > #migrations then
    errors.fail("catalog %s has schema %d, newer than this tend knows (%d); upgrade tend",
      path, version, #migrations)
  end
  for v = version + 1, #migrations do
    errors.check(db:exec("BEGIN IMMEDIATE"))
    local ok, msg = db:exec(migrations[v])
    if ok then ok, msg = db:exec(("PRAGMA user_version = %d"):format(v)) end
    if not ok then
      db:exec("ROLLBACK")
      errors.fail("catalog %s: migration %d failed: %s", path, v, msg)
    end
    errors.check(db:exec("COMMIT"))
  end
end

-- open(home) -> Catalog.  Creates the file 0600 on first use and migrates the schema.
function Catalog.open(home)
  local path = home .. "/catalog.db"
  if not fs.stat(path) then errors.check(fs.write_atomic(path, "", 384)) end
  local db = errors.check(core.catalog.open(path))
  errors.check(db:exec("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;"))
  migrate(db, path)
  return setmetatable({ db = db, path = path }, Catalog)
end

Catalog.migrations = migrations

function Catalog:query(sql, ...) return errors.check(self.db:query(sql, ...)) end
function Catalog:first(sql, ...) return self:query(sql, ...)[1] end
function Catalog:run(sql, ...) return errors.check(self.db:run(sql, ...)) end

-- transaction(fn): fn() inside BEGIN IMMEDIATE .. COMMIT; rolled back if fn raises.
function Catalog:transaction(fn)
  errors.check(self.db:exec("BEGIN IMMEDIATE"))
  local ok, err = pcall(fn)
  if not ok then
    self.db:exec("ROLLBACK")
    error(err, 0)
  end
  errors.check(self.db:exec("COMMIT"))
end

function Catalog:meta(key, value)
  if value == nil then
    local row = self:first("SELECT value FROM meta WHERE key = ?", key)
    return row and row.value
  end
  self:run("INSERT INTO meta(key, value) VALUES (?, ?) "
    .. "ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value)
end

function Catalog:close() self.db:close() end

return Catalog
