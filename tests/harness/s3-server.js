// s3-server.js PORT DIR KEY_ID SECRET BUCKET: an S3-speaking server on 127.0.0.1:PORT for
// the tests. The protocol is s3rver's (objects under DIR); s3rver 3.7.1 checks only the
// access key id of a SigV4 request (its signature check is marked unimplemented), so
// every request first passes a check here: its signature recomputed by aws4 (the npm
// package made for SigV4 signing) from the headers it says it signed, and the body's
// SHA-256 against x-amz-content-sha256, as AWS does. A mismatch is AWS's 403
// SignatureDoesNotMatch (or XAmzContentSHA256Mismatch); unsigned requests are refused.
// Each request is logged to DIR/../requests.log ("METHOD /bucket/key STATUS"), so a
// test can count what a run asked. Prints "ready" when it listens. SIGTERM stops it.
"use strict";
const http = require("http");
const crypto = require("crypto");
const path = require("path");
const modules = path.join(__dirname, "../../vendor/s3/node_modules");
const aws4 = require(path.join(modules, "aws4"));
const S3rver = require(path.join(modules, "s3rver"));

const [port, dir, keyId, secret, bucket] = process.argv.slice(2);
const fs = require("fs");
const requestLog = path.join(dir, "..", "requests.log");
function logRequest(req, status) {
  fs.appendFileSync(requestLog, `${req.method} ${req.url.split("?")[0]} ${status}\n`);
}

function fail(res, status, code, message) {
  res.writeHead(status, { "Content-Type": "application/xml" });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

// The request's own SigV4 fields, or null.
function parseAuthorization(h) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(h || "");
  return m && { keyId: m[1], region: m[3], signed: m[4].split(";"), signature: m[5] };
}

function check(req, body) {
  const auth = parseAuthorization(req.headers.authorization);
  if (!auth) return ["AccessDenied", "a SigV4-signed request is required"];
  if (auth.keyId !== keyId) return ["InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."];
  for (const h of ["host", "x-amz-date", "x-amz-content-sha256"]) {
    if (!auth.signed.includes(h)) return ["AccessDenied", `${h} is not signed`];
  }
  const headers = {}, include = {};
  for (const h of auth.signed) {
    headers[h] = req.headers[h] || "";
    include[h] = true; // what the client signed is signed (aws4 leaves out expect, range, ...)
  }
  // no body given, and the request's own x-amz-date: aws4 adds no header and reads the
  // time from that one, not from its clock
  const signer = aws4.sign({ method: req.method, host: req.headers.host, path: req.url, headers,
    service: "s3", region: auth.region, extraHeadersToInclude: include },
    { accessKeyId: keyId, secretAccessKey: secret });
  const want = /Signature=([0-9a-f]{64})/.exec(signer.headers.Authorization)[1];
  if (want !== auth.signature) {
    return ["SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."];
  }
  const claimed = req.headers["x-amz-content-sha256"];
  if (claimed !== "UNSIGNED-PAYLOAD" && claimed !== crypto.createHash("sha256").update(body).digest("hex")) {
    return ["XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."];
  }
  return null;
}

async function main() {
  const inner = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: dir,
    configureBuckets: [{ name: bucket }] });
  const { port: innerPort } = await inner.run();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const bad = check(req, body);
      if (bad) {
        logRequest(req, 403);
        return fail(res, 403, bad[0], bad[1]);
      }
      // s3rver knows only its own key; the request is checked, so it goes on unsigned
      const headers = { ...req.headers, "content-length": body.length };
      delete headers.authorization;
      const fwd = http.request({ host: "127.0.0.1", port: innerPort, method: req.method, path: req.url,
        headers }, (up) => {
        logRequest(req, up.statusCode);
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      });
      fwd.on("error", (e) => fail(res, 500, "InternalError", e.message));
      fwd.end(body);
    });
  });
  server.listen(Number(port), "127.0.0.1", () => console.log("ready"));
  process.on("SIGTERM", () => { server.close(); inner.close().then(() => process.exit(0)); });
}
main().catch((e) => { console.error(e); process.exit(1); });
