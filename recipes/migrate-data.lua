-- migrate-data: production's data into a dev, test or acceptance copy; its code untouched.
return {
  name = "migrate-data",
  summary = "Copy SRC's database and data folders (uploads) into DST, leaving DST's code as it is",
  description = [[
For a dev-test-acceptance-production workflow: DST gets SRC's database (a fresh
snapshot, or --snapshot), rewritten for DST's URL and path, and the app's data folders
(WordPress wp-content/uploads; Tiki files/, img/wiki/, img/wiki_up/, img/trackers/),
while every other file of DST (its code, its config) stays as it is. DST shows its
maintenance page meanwhile; its database is dumped first and put back on failure.]],
  params = {
    { name = "src", type = "instance", positional = true, required = true, help = "where the data comes from" },
    { name = "dst", type = "instance", positional = true, required = true, help = "where it goes" },
    { name = "snapshot", type = "string", help = "use this snapshot of SRC instead of taking a new one" },
    { name = "yes-overwrite-production", type = "bool", help = "DST may be tagged production" },
    { name = "without-maintenance-page", type = "bool", help = "go on when the maintenance page cannot be seen (php -S, no AllowOverride)" },
  },

  run = function(ctx, args)
    local src, dst = args.src, args.dst
    -- every refusal before a change: dst is not production, its database is not src's
    ctx:step("check", dst.copy_check, dst, src, { overwrite_production = args["yes-overwrite-production"], db_only = true })
    local snap = args.snapshot and src:snapshot(args.snapshot) or ctx:step("backup", src.backup, src)
    -- behind dst's maintenance page: its database dumped, then src's loaded (rewritten for
    -- dst); the data folders built beside dst's and swapped in; dst's code untouched
    local summary = ctx:step("data", dst.data_from, dst, src, snap,
      { overwrite_production = args["yes-overwrite-production"], without_page = args["without-maintenance-page"] })
    ctx:info("%s: data of %s (snapshot %d): database%s, %d files in data folders", dst.name, src.name, snap.id,
      summary.db_bytes and (" " .. summary.db_bytes .. " bytes") or " none", summary.data_files)
    ctx:result(summary)
  end,
}
