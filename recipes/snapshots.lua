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
    local rows, data = {}, {}
    for _, s in ipairs(snapshot.list(ctx:catalog(), args.instance)) do
      rows[#rows + 1] = {
        id = s.id,
        time = os.date("!%Y-%m-%d %H:%M:%S UTC", s.started_at),
        app = s.app and (s.app .. " " .. (s.version or "")) or "-",
        files = s.files,
        bytes = s.bytes,
        sent = s.sent_bytes,
        stored = s.stored_bytes,
        db = s.db_bytes or "-",
      }
      -- --json: times in UTC with their zone, app and version apart, no placeholders
      data[#data + 1] = { id = s.id, time = output.time(s.started_at), finished = output.time(s.finished_at),
        app = s.app, version = s.version, files = s.files, bytes = s.bytes, sent_bytes = s.sent_bytes,
        stored_bytes = s.stored_bytes, db_bytes = s.db_bytes, note = s.note }
    end
    ctx:result(data, #rows == 0 and ("no snapshots of %s yet (tend backup %s)"):format(args.instance.name, args.instance.name)
      or output.table_text(rows, { "id", "time", "app", "files", "bytes", "sent", "stored", "db" }))
  end,
}
