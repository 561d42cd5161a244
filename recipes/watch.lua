-- watch: know when any file of an instance changes behind your back.
return {
  name = "watch",
  summary = "Hash every file of an instance and report what differs from the accepted baseline (exit 3)",
  description = [[
tend watch NAME hashes every file of the instance on its host (the host's sha256sum, by
content: a file changed with its mtime put back is caught), plus its --watch-path
entries outside the web root, and compares them with the accepted baseline: files
added, removed, changed, and changes of type, mode or owner. The first run sets the
baseline. Exit 0 when nothing differs, 3 when something does, 1 when the check itself
failed; both of the last two mail the instance's --contact (and --mail-to).
tend watch accept NAME [PATH ...] makes what is there now the baseline, whole or for
the paths given. A clone, mirror or migrate-data done by tend re-baselines a watched
copy by itself. Leave caches and logs out with instance edit NAME --watch-ignore PATTERN.]],
  params = {
    { name = "instance", type = "string", positional = true, required = true,
      help = "the instance (tend watch accept NAME [PATH ...] moves its baseline)" },
    { name = "paths", type = "string", positional = true, list = true,
      help = "after accept NAME: the paths whose baseline moves (default: all)" },
    { name = "mail-to", type = "string", list = true, help = "also mail this address (besides the instance's --contact)" },
  },

  run = function(ctx, args)
    local words = { args.instance, table.unpack(args.paths or {}) }
    local accepting = words[1] == "accept"
    if accepting then table.remove(words, 1) end
    if not words[1] then ctx:usage("say which instance: tend watch NAME | tend watch accept NAME [PATH ...]") end
    local inst = ctx:instance(table.remove(words, 1))
    if #words > 0 and not accepting then ctx:usage("unexpected %q: only watch accept takes paths", words[1]) end
    local to = {}
    if inst.contact then to[#to + 1] = inst.contact end
    for _, a in ipairs(args["mail-to"] or {}) do to[#to + 1] = tend.check_address(a) end
    local function mail(subject, body)
      if #to == 0 then return end
      local ok, msg = ctx:mail(to, subject, body)
      if not ok then ctx:warn("%s: the alert mail failed: %s", inst.name, msg) end
    end

    local ok, now = pcall(inst.watch_scan, inst) -- every file hashed on its host
    if not ok then
      local msg = tend.message(now)
      mail(("tend: watch %s FAILED"):format(inst.name),
        ("The file check of %s (%s:%s) could not run:\n\n%s\n"):format(inst.name, inst.host, inst.path, msg))
      error(msg, 0)
    end
    local before, accepted_at = inst:watch_baseline()
    if accepting or not before then -- the first run, or the operator's word: this is how it should be
      inst:watch_set(now, accepting and #words > 0 and words or nil)
      local n = 0
      for _ in pairs(now) do n = n + 1 end
      ctx:info("%s: baseline %s: %d entries", inst.name, before and "moved" or "set", n)
      ctx:result({ instance = inst.name, accepted = true, entries = n, paths = #words > 0 and words or nil })
      return 0
    end
    local d, count, lines = tend.files_diff(before, now)
    local when = os.date("%Y-%m-%d %H:%M", accepted_at)
    local text = count == 0 and ("%s: no file differs from the baseline of %s"):format(inst.name, when)
      or ("%s: %d %s from the baseline of %s\n%s"):format(inst.name, count, count == 1 and "difference" or "differences",
        when, table.concat(lines, "\n"))
    ctx:result({ instance = inst.name, differences = count, added = d.added, removed = d.removed, changed = d.changed }, text)
    if count == 0 then return 0 end
    mail(("tend: watch %s: %d %s"):format(inst.name, count, count == 1 and "file differs" or "files differ"),
      ("Files of %s (%s:%s) differ from the baseline accepted %s:\n\n%s\n\nIf these changes are yours: tend watch accept %s\n")
        :format(inst.name, inst.host, inst.path, when, table.concat(lines, "\n"), inst.name))
    return 3
  end,
}
