-- clone: make one instance a copy of another, files and database.
return {
  name = "clone",
  summary = "Copy SRC onto DST: only what DST lacks crosses, DST's URL and config kept, behind a maintenance page",
  description = [[
Takes a fresh snapshot of SRC (or uses --snapshot), then builds it into DST the way
restore does: a staging tree beside DST's web root, where files DST already holds are
copied on its host and only the rest crosses the wire, swapped in by rename. DST keeps
its own config files when they name its own database; otherwise it gets SRC's with
DST's database, URL and web root written in (for a generic app, the files given with
--config; --dry-run shows each change), read back before the new tree goes live. If
tend cannot make them name DST's database, the clone refuses before any change. Its
database gets SRC's dump with SRC's URL and path replaced by DST's as it streams,
PHP-serialized lengths fixed. A WordPress copy that is not tagged production sends no
e-mail. DST shows its maintenance page from start to end; on failure it is left as it
was. --redact runs an SQL file in DST's database before the page is lifted.]],
  params = {
    { name = "src", type = "instance", positional = true, required = true, help = "the instance to copy" },
    { name = "dst", type = "instance", positional = true, required = true, help = "the instance to make a copy" },
    { name = "snapshot", type = "string", help = "copy this snapshot of SRC instead of taking a new one" },
    { name = "files-only", type = "bool", help = "only the files" },
    { name = "db-only", type = "bool", help = "only the database" },
    { name = "redact", type = "path", help = "an SQL file to run in DST's database before it comes back" },
    { name = "yes-overwrite-production", type = "bool", help = "DST may be tagged production" },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
    { name = "dry-run", type = "bool", help = "say what DST's config files would become, change nothing" },
  },

  run = function(ctx, args)
    local src, dst = args.src, args.dst
    if args["files-only"] and args["db-only"] then ctx:usage("--files-only and --db-only exclude each other") end
    local given = args.snapshot and src:snapshot(args.snapshot)
    -- every refusal before anything is done on either side: dst is not production, its
    -- database is not src's, its config will name its own database, URL and folders
    local plan, lines = ctx:step("check", dst.copy_check, dst, src,
      { overwrite_production = args["yes-overwrite-production"], db_only = args["db-only"] }, given)
    if args["dry-run"] then
      for _, line in ipairs(lines) do ctx:info("%s", line) end
      if #lines == 0 then ctx:info("%s: no config file to write", dst.name) end
      ctx:result({ dry_run = true, changes = lines })
      return
    end
    local snap = given or ctx:step("backup", src.backup, src) -- a snapshot of src now
    -- behind dst's maintenance page: the snapshot restored into dst (only what it lacks
    -- crosses), its config its own, its database rewritten for its URL; redacted; seen
    -- over HTTP answering with dst's URL; the page off
    local summary = ctx:step("copy", dst.copy_from, dst, src, snap, { plan = plan,
      files_only = args["files-only"], db_only = args["db-only"], redact = args.redact,
      overwrite_production = args["yes-overwrite-production"], without_page = args["without-maintenance-page"] })
    if not args["db-only"] then ctx:step("patches", dst.patches_from, dst, src) end -- src's fixes, kept on through dst's updates
    ctx:info("%s: now a copy of %s (snapshot %d): %s files, %s sent%s", dst.name, src.name, snap.id,
      summary.files or "no", summary.sent_files or 0,
      summary.db_bytes and (", database " .. summary.db_bytes .. " bytes") or "")
    ctx:result(summary)
  end,
}
