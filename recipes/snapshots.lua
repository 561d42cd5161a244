-- snapshots: list an instance's snapshots, newest first.
return {
  name = "snapshots",
  summary = "List an instance's snapshots, newest first",
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
  },

  run = function(ctx, args)
    local snapshot = require "tend.snapshot"
    local output = require "tend.output"
    local rows = {}
    for _, s in ipairs(snapshot.list(ctx:catalog(), args.instance)) do
      rows[#rows + 1] = {
        id = s.id,
        time = os.date("!%Y-%m-%d %H:%M:%S", s.started_at),
        app = s.app and (s.app .. " " .. (s.version or "")) or "-",
        files = s.files,
        bytes = s.bytes,
        sent = s.sent_bytes,
        stored = s.stored_bytes,
        db = s.db_bytes or "-",
      }
    end
    ctx:result(rows, #rows == 0 and ("no snapshots of %s yet (tend backup %s)"):format(args.instance.name, args.instance.name)
      or output.table_text(rows, { "id", "time", "app", "files", "bytes", "sent", "stored", "db" }))
  end,
}
