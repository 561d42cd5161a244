#!/usr/bin/python3
"""tree-walk.py DIR: one line per entry of DIR (DIR itself as "."), sorted, for comparing
two trees byte for byte: path (escaped), type, mode, owner, size, mtime to the
nanosecond, content hash, link target, hard-link group (the group's first path) and
whether a file has holes. Symlinks are never followed; names are bytes."""
import hashlib, os, stat, sys

root = os.fsencode(sys.argv[1])
entries, inodes = [], {}
for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
    for name in [b""] + dirnames + filenames:
        if name == b"" and dirpath != root:
            continue
        full = os.path.join(dirpath, name) if name else dirpath
        rel = os.path.relpath(full, root)
        st = os.lstat(full)
        entries.append((rel, full, st))
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)

def kind(m):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "link"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chardev"),
                       (stat.S_ISBLK, "blockdev")):
        if test(m):
            return name
    return "?"

out = []
for rel, full, st in entries:
    k = kind(st.st_mode)
    size = st.st_size if k == "file" else 0
    digest = link = group = holes = "-"
    if k == "file":
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()[:16]
        holes = "sparse" if st.st_blocks * 512 < st.st_size else "dense"
        names = inodes.get((st.st_dev, st.st_ino))
        if names:
            group = min(names).decode("utf-8", "backslashreplace")
    if k == "link":
        link = os.readlink(full).decode("utf-8", "backslashreplace")
    dev = "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)) if k in ("chardev", "blockdev") else "-"
    name = rel.decode("utf-8", "backslashreplace").encode("unicode_escape").decode("ascii")
    out.append("%s %s %o %d:%d %d %d %s %s %s %s %s" % (name, k, stat.S_IMODE(st.st_mode), st.st_uid,
               st.st_gid, size, st.st_mtime_ns, digest, link.encode("unicode_escape").decode("ascii"),
               group.encode("unicode_escape").decode("ascii"), holes, dev))
for line in sorted(out):
    print(line)
