#!/usr/bin/python3
# http-sink.py PORT DIR: an HTTP server on 127.0.0.1:PORT that keeps each request's body
# in DIR/N.body (N counting from 1), with its method and path in DIR/N.head. It answers
# 200, or the status a path like /status/500 names. For webhook tests; stops when killed.
import http.server, os, sys

port, out = int(sys.argv[1]), sys.argv[2]
count = 0

class Sink(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        global count
        count += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(os.path.join(out, "%d.head" % count), "w") as f:
            f.write("%s %s\n%s" % (self.command, self.path, self.headers))
        with open(os.path.join(out, "%d.body" % count), "wb") as f:
            f.write(body)
        parts = self.path.strip("/").split("/")
        status = int(parts[1]) if len(parts) == 2 and parts[0] == "status" else 200
        self.send_response(status)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    do_GET = do_POST = do_PUT = handle_one

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Sink).serve_forever()
