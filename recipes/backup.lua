-- backup: snapshot an instance's files and database into tend's deduplicated store.
local offsite = require "tend.offsite"

return {
  name = "backup",
  summary = "Snapshot files and database; only new or changed files cross the wire",
  description = [[
Lists the instance's files on its host in one round trip, compares them with the last
snapshot (type, mode, size, mtime), fetches only new and changed files in one tar
stream, dumps the database (mariadb-dump --single-transaction, or SQLite's .backup)
into the store, and records the snapshot last: a backup that fails records nothing.
Files are stored once whatever the number of snapshots or instances that hold them.
When the store has an off-site copy (tend store remote), what was stored is sent there
last, once for the whole run.]],
  params = {
    { name = "instance", type = "instance", positional = true, help = "the instance (or --all)" },
    { name = "all", type = "bool", help = "every instance" },
    { name = "jobs", type = "int", short = "j", default = 1, help = "with --all: back up this many instances at a time" },
    { name = "rehash", type = "bool", help = "read and hash every file, not only changed ones" },
    { name = "exclude", type = "string", list = true,
      help = "leave out paths matching this pattern (repeatable; with a slash from the web root)" },
  },

  -- One instance: its backup, step by step; a failure is one line, exit 1. Several
  -- (--all): each in turn, or -j N at a time in child tends; the failures are named at
  -- the end. Nothing is recorded for a backup that fails: the snapshot is its last step.
  run = function(ctx, args)
    for _, p in ipairs(args.exclude or {}) do tend.check_pattern(p) end -- bad input, before any work
    local ok, err = pcall(ctx.each, ctx, ctx:targets(args), function(inst)
      inst:recover() -- a restore of it that was killed midway is put back first
      local job <close> = ctx:step("prepare", inst.backup_start, inst, { rehash = args.rehash, exclude = args.exclude })
      ctx:step("files", job.files, job)       -- listed in one round trip; only what changed is fetched
      ctx:step("database", job.database, job) -- dumped beside the files since prepare
      local id, snap = ctx:step("record", job.record, job)
      return { instance = inst.name, snapshot = id, files = snap.files, bytes = snap.bytes,
        sent_bytes = snap.sent_bytes, stored_bytes = snap.stored_bytes, db_bytes = snap.db_bytes,
        healed = snap.healed, seconds = snap.finished_at - snap.started_at }
    end, { jobs = args.jobs, what = "backups", report = function(s)
      ctx:info("%s: snapshot %d: %d files (%d bytes), %d bytes sent, %d new in the store%s%s",
        s.instance, s.snapshot, s.files, s.bytes, s.sent_bytes, s.stored_bytes,
        s.db_bytes and (", database " .. s.db_bytes .. " bytes") or ", no database",
        s.healed > 0 and ("; healed %d damaged object%s"):format(s.healed, s.healed == 1 and "" or "s") or "")
    end })
    -- the store's off-site copy, when it has one, takes what was stored: once for the
    -- run, even when some backups of --all failed (their failure is the run's, then)
    if offsite.kept(ctx) then
      local synced, sync_err = pcall(ctx.step, ctx, "off-site copy", offsite.keep_up, ctx)
      if not synced and ok then error(sync_err, 0) end
    end
    if not ok then error(err, 0) end
  end,
}
